"""Multi-device training on 8 host CPU devices: pmap, sharded jit, ZeRO-1, sharded checkpoints.

The examples (examples/pmap_train.py, examples/sharded_train.py) are imported and run here,
so what the docs show is what is tested.
"""

from __future__ import annotations

import importlib.util
import pathlib

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.sharding import AxisType, NamedSharding
from jax.sharding import PartitionSpec as P

import optxform
from optxform import tree as otu

ROOT = pathlib.Path(__file__).resolve().parents[1]
STEPS = 8
pytestmark = pytest.mark.skipif(jax.device_count() < 8, reason="needs 8 (host) devices")


def _load_example(name):
    spec = importlib.util.spec_from_file_location(f"example_{name}",
                                                  ROOT / "examples" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


pmap_train = _load_example("pmap_train")
sharded_train = _load_example("sharded_train")


def _assert_trees_close(actual, expected, rtol=1e-5, atol=1e-6):
    for (path, a), b in zip(otu.leaves_with_paths(actual), jax.tree.leaves(expected)):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=rtol, atol=atol,
                                   err_msg=path)


def _mesh(shape, names, kind=AxisType.Auto, devices=None):
    return jax.make_mesh(shape, names, axis_types=(kind,) * len(shape), devices=devices)


# --------------------------------------------------------------------------------- pmap


def test_pmap_over_8_devices_matches_one_device_on_the_full_batch():
    params, x, y = pmap_train.make_problem()
    tx = pmap_train.make_optimizer(STEPS)  # clip_by_global_norm + adamw + warm-up cosine
    got, losses = pmap_train.train_pmap(tx, params, x, y, STEPS, batch_size=64, n_devices=8)
    want, want_losses = pmap_train.train_single(tx, params, x, y, STEPS, batch_size=64)
    _assert_trees_close(got, want)
    np.testing.assert_allclose(losses, want_losses, rtol=1e-5)
    # the run did train (so the comparison is not between two unchanged params)
    assert losses[-1] < losses[0]
    moved = max(float(jnp.max(jnp.abs(jnp.asarray(a) - b)))
                for a, b in zip(jax.tree.leaves(params), jax.tree.leaves(got)))
    assert moved > 1e-3


# ------------------------------------------------------------------------- sharded jit


def _assert_state_mirrors_params(state, params):
    """Every state leaf that mirrors a param has its sharding; scalars are replicated."""
    index = {path: leaf for path, leaf in otu.leaves_with_paths(params)}
    mirrored = 0
    for path, leaf in otu.leaves_with_paths(state):
        param_path = next((p for p in sorted(index, key=len, reverse=True)
                           if path.endswith("/" + p)), None)
        if leaf.ndim == 0:
            assert leaf.sharding.is_fully_replicated, path
            assert leaf.sharding.device_set == index["w1"].sharding.device_set, path
        else:
            assert param_path is not None, path
            param = index[param_path]
            assert leaf.sharding.is_equivalent_to(param.sharding, leaf.ndim), \
                f"{path}: {leaf.sharding} vs {param.sharding}"
            mirrored += 1
    return mirrored


@pytest.mark.parametrize("kind", [AxisType.Auto, AxisType.Explicit], ids=["auto", "explicit"])
def test_sharded_init_gives_each_state_leaf_its_params_sharding(kind):
    mesh = _mesh((2, 4), ("data", "model"), kind)
    tx = sharded_train.make_optimizer(STEPS)
    params, state, _, _ = sharded_train.setup(mesh, tx)
    assert params["w1"].sharding.spec == P(None, "model")
    assert _assert_state_mirrors_params(state, params) == 8  # mu and nu of 4 params
    counters = [leaf for leaf in jax.tree.leaves(state) if leaf.ndim == 0]
    assert counters and all(c.sharding.is_fully_replicated for c in counters)
    # the shards of a moment really are split: each device holds a quarter of mu["w1"]
    mu_w1 = next(leaf for path, leaf in otu.leaves_with_paths(state) if path.endswith("mu/w1"))
    assert {s.data.shape for s in mu_w1.addressable_shards} == {(16, 16)}


def test_sharded_step_compiles_once_and_keeps_the_layout():
    mesh = sharded_train.make_mesh((2, 4))
    tx = sharded_train.make_optimizer(STEPS)
    params, state, x, y = sharded_train.setup(mesh, tx)
    traces = []
    step = sharded_train.make_train_step(tx, on_trace=lambda: traces.append(1))
    losses = []
    for t in range(4):
        xb, yb = sharded_train.batch_at(mesh, x, y, t, 64)
        params, state, loss = step(params, state, xb, yb)
        losses.append(float(loss))
    assert len(traces) == 1
    assert params["w1"].sharding.spec == P(None, "model")
    _assert_state_mirrors_params(state, params)
    assert losses[-1] < losses[0]


def test_sharded_training_matches_one_device():
    mesh = sharded_train.make_mesh((2, 4))
    tx = sharded_train.make_optimizer(STEPS)
    got, _, _ = sharded_train.train(mesh, tx, STEPS)
    one = _mesh((1, 1), ("data", "model"), devices=jax.devices()[:1])
    want, _, _ = sharded_train.train(one, tx, STEPS)
    _assert_trees_close(got, want)


def test_optimizer_step_moves_data_only_for_the_global_norm():
    mesh = sharded_train.make_mesh((2, 4))
    counts = {}
    for clip in (False, True):
        tx = sharded_train.make_optimizer(STEPS, clip=clip)
        params, state, _, _ = sharded_train.setup(mesh, tx)
        grads = jax.tree.map(jnp.ones_like, params)
        counts[clip] = sharded_train.compiled_collectives(
            sharded_train.make_optimizer_step(tx), params, state, grads)
    # elementwise chain (adamw + schedule): nothing crosses devices
    assert counts[False] == dict.fromkeys(sharded_train.COLLECTIVES, 0)
    # clip_by_global_norm: the partial sums of squares are all-reduced, once, nothing else
    assert counts[True] == dict(dict.fromkeys(sharded_train.COLLECTIVES, 0), **{"all-reduce": 1})


def test_count_collectives_reads_hlo():
    text = ("%all-reduce.3 = (f32[], f32[]) all-reduce(%a, %b), channel_id=3\n"
            "%ag = f32[8] all-gather-start(%c)\n%d = f32[] add(%x, %y)")
    assert sharded_train.count_collectives(text)["all-reduce"] == 1
    assert sharded_train.count_collectives(text)["all-gather"] == 1
    assert sharded_train.count_collectives(text)["all-to-all"] == 0


def test_state_shardings_rules():
    mesh = _mesh((2, 4), ("data", "model"))
    w = NamedSharding(mesh, P(None, "model"))
    params = {"w": jax.ShapeDtypeStruct((6, 8), jnp.float32),
              "v": jax.ShapeDtypeStruct((3,), jnp.float32)}
    shardings = {"w": w, "v": NamedSharding(mesh, P())}
    state = {"count": jnp.zeros([], jnp.int32),
             "mu": {"w": jnp.zeros((6, 8)), "v": jnp.zeros((3,))},
             "row": {"w": jnp.zeros((6, 1))},        # factored: (n, 1) of an (n, m) weight
             "col": {"w": jnp.zeros((1, 8))},
             "other": jnp.zeros((5,))}
    out = optxform.state_shardings(state, params, shardings)
    assert out["mu"]["w"] == w
    assert out["row"]["w"].spec == P(None, None)
    assert out["col"]["w"].spec == P(None, "model")
    for leaf in (out["count"], out["other"], out["mu"]["v"]):
        assert leaf.is_fully_replicated and leaf.mesh == mesh
    with pytest.raises(ValueError, match="param_shardings"):
        optxform.sharded_init(optxform.identity(), {"w": np.zeros(3)})


# ------------------------------------------------------------------------------ ZeRO-1


def _expected_zero1_bytes(state, n):
    """Per-device bytes if every leaf with a dim divisible by ``n`` is split ``n`` ways."""
    total = 0
    for leaf in jax.tree.leaves(state):
        splittable = any(d % n == 0 and d >= n for d in leaf.shape)
        nbytes = int(np.prod(leaf.shape)) * np.dtype(leaf.dtype).itemsize
        total += nbytes // n if splittable else nbytes
    return total


@pytest.mark.parametrize("kind", [AxisType.Auto, AxisType.Explicit], ids=["auto", "explicit"])
def test_zero1_divides_state_memory_and_keeps_the_trajectory(kind):
    mesh = _mesh((8,), ("data",), kind)
    params, x, y = sharded_train.make_problem()
    params = jax.device_put(params, NamedSharding(mesh, P()))
    base = sharded_train.make_optimizer(STEPS)

    def run(tx):
        state = tx.init(params)
        step = sharded_train.make_train_step(tx)
        p = jax.tree.map(jnp.copy, params)
        for t in range(STEPS):
            xb, yb = sharded_train.batch_at(mesh, x, y, t, 64)
            p, state, _ = step(p, state, xb, yb)
        return p, state

    want_params, replicated_state = run(base)
    got_params, zero_state = run(optxform.zero1(base, mesh, "data"))

    _assert_trees_close(got_params, want_params)
    _assert_trees_close(zero_state, replicated_state)
    assert jax.tree.structure(zero_state) == jax.tree.structure(replicated_state)
    # params stay replicated; updates were all-gathered
    assert all(p.sharding.is_fully_replicated for p in jax.tree.leaves(got_params))

    before = optxform.bytes_per_device(replicated_state)
    after = optxform.bytes_per_device(zero_state)
    assert len(set(before.values())) == 1 and len(set(after.values())) == 1
    per_device_before, per_device_after = next(iter(before.values())), next(iter(after.values()))
    assert per_device_before == _expected_zero1_bytes(replicated_state, 1)
    assert per_device_after == _expected_zero1_bytes(replicated_state, 8)
    assert per_device_before / per_device_after > 7.0


def test_zero1_spec_and_state_shardings():
    assert optxform.zero1_spec((3, 16), None, "data", 8) == P(None, "data")
    assert optxform.zero1_spec((5,), None, "data", 8) == P(None)
    assert optxform.zero1_spec((), None, "data", 8) == P()
    # tensor-parallel param: the data axis goes on another, free dimension
    assert optxform.zero1_spec((16, 8), P(None, "model"), "data", 2) == P("data", "model")
    assert optxform.zero1_spec((16, 8), P("data", None), "data", 2) == P("data", None)
    mesh = _mesh((2, 4), ("data", "model"))
    params = {"w": jnp.zeros((4, 8))}
    state = (jnp.zeros([], jnp.int32), {"w": jnp.zeros((4, 8))})
    out = optxform.zero1_state_shardings(state, params, mesh, "data",
                                         param_shardings={"w": P(None, "model")})
    assert out[1]["w"].spec == P("data", "model")
    assert out[0].spec == P()
    with pytest.raises(ValueError, match="axis_name"):
        optxform.zero1(optxform.identity(), mesh, "batch")


# ------------------------------------------------------------------------- checkpoints


def test_checkpoint_saved_on_8_devices_restores_onto_4_and_onto_another_mesh(tmp_path):
    tx = sharded_train.make_optimizer(STEPS)
    mesh_a = sharded_train.make_mesh((2, 4))
    params, state, x, y = sharded_train.setup(mesh_a, tx)
    step = sharded_train.make_train_step(tx)
    for t in range(3):
        xb, yb = sharded_train.batch_at(mesh_a, x, y, t, 64)
        params, state, _ = step(params, state, xb, yb)
    path = tmp_path / "opt.ckpt"
    optxform.save_sharded_state(path, state)
    expected = jax.tree.map(np.asarray, state)

    by_rows = {"w1": P("model", None), "b1": P("model"), "w2": P("model", None), "b2": P()}
    first4, last4 = jax.devices()[:4], jax.devices()[4:]
    layouts = {
        "4 devices (1x4)": (_mesh((1, 4), ("data", "model"), devices=first4),
                            sharded_train.PARAM_SPECS),
        "mesh 4x2": (_mesh((4, 2), ("data", "model")), sharded_train.PARAM_SPECS),
        "4 other devices, split by rows": (_mesh((1, 4), ("data", "model"), devices=last4),
                                           by_rows),
    }
    for name, (mesh_b, specs) in layouts.items():
        shardings = sharded_train.param_shardings(mesh_b, specs)
        template = optxform.sharded_template(tx, params, param_shardings=shardings)
        restored = optxform.load_sharded_state(path, template)
        for (key, got), want, tmpl in zip(otu.leaves_with_paths(restored),
                                          jax.tree.leaves(expected), jax.tree.leaves(template)):
            np.testing.assert_array_equal(np.asarray(got), want, err_msg=f"{name}: {key}")
            assert got.sharding == tmpl.sharding, f"{name}: {key}"
            assert got.sharding.device_set == set(mesh_b.devices.flat), f"{name}: {key}"
        # training resumes on the new layout
        new_params = jax.device_put(jax.tree.map(np.asarray, params), shardings)
        new_params, new_state, _ = sharded_train.make_train_step(tx)(
            new_params, restored, *sharded_train.batch_at(mesh_b, x, y, 3, 64))
        counts = [int(leaf) for leaf in jax.tree.leaves(new_state)
                  if leaf.ndim == 0 and leaf.dtype == jnp.int32]
        assert counts and all(c == 4 for c in counts), f"{name}: {counts}"


def test_zero1_checkpoint_restores_onto_a_smaller_data_axis(tmp_path):
    params, _, _ = sharded_train.make_problem()
    tx = sharded_train.make_optimizer(STEPS)
    mesh8 = _mesh((8,), ("data",))
    state = optxform.zero1_init(tx, jax.device_put(params, NamedSharding(mesh8, P())), mesh8)
    state = jax.tree.map(lambda leaf: leaf + jnp.ones_like(leaf), state)  # non-trivial values
    optxform.save_sharded_state(tmp_path / "z.ckpt", state)
    mesh4 = _mesh((4,), ("data",), devices=jax.devices()[:4])
    abstract = jax.eval_shape(tx.init, params)
    shardings = optxform.zero1_state_shardings(abstract, params, mesh4, "data")
    restored = optxform.load_sharded_state(tmp_path / "z.ckpt", abstract, shardings)
    _assert_trees_close(restored, state, rtol=0, atol=0)
    per_device = optxform.bytes_per_device(restored)
    assert set(per_device) == set(jax.devices()[:4])
    assert max(per_device.values()) == _expected_zero1_bytes(abstract, 4)
    with pytest.raises(ValueError, match="sharding"):
        optxform.load_sharded_state(tmp_path / "z.ckpt", jax.tree.map(np.asarray, state))
