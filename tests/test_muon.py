"""Muon against torch.optim.Muon, Newton-Schulz variants, shapes beyond 2-D, sharding.

torch runs Newton-Schulz in bfloat16. Its algorithm in float32 (float64) is torch's own
code with ``Tensor.bfloat16`` made the identity for the run: optxform with ``ns_dtype``
float32 must equal it to 1e-5 over 100 steps for every option combination, float64 to
1e-10; stock torch (bfloat16) within 5e-2.
"""

from __future__ import annotations

import contextlib
import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch
from jax.sharding import AxisType, NamedSharding
from jax.sharding import PartitionSpec as P

import optxform
from optxform.transforms.orthogonal import POLAR_EXPRESS_COEFFICIENTS
from tests import oracles

STEPS = 100


matrix_params = oracles.matrix_params
matrix_grads = oracles.grad_fn("matrices")


@contextlib.contextmanager
def torch_newton_schulz_in_param_dtype():
    """torch's Muon with its ``grad.bfloat16()`` cast made a copy in the same dtype (its
    algorithm in the param's dtype; a copy, as the cast is, since torch then divides it
    in place)."""
    original = torch.Tensor.bfloat16
    torch.Tensor.bfloat16 = lambda self, *a, **k: self.clone()
    try:
        yield
    finally:
        torch.Tensor.bfloat16 = original


def torch_muon_trajectory(kwargs: dict, dtype=np.float32, steps=STEPS) -> list[dict]:
    if dtype == np.float32:
        return oracles.torch_trajectory("Muon", kwargs, "matrices", steps)
    return oracles.reference_trajectory("torch.optim:Muon", kwargs, "matrices", steps, dtype)


def optxform_trajectory(tx, dtype=np.float32, steps=STEPS) -> list[dict]:
    return oracles.optxform_trajectory(tx, "matrices", steps, params=matrix_params(dtype=dtype))


_TORCH_NAMES = {"learning_rate": "lr"}
# Every combination of the flags, momentum alternating between two values, and the
# remaining options once.
GRID = [dict(nesterov=n, weight_decay=wd, adjust_lr_fn=fn, momentum=0.95 if i % 2 else 0.6)
        for i, (n, wd, fn) in enumerate(itertools.product(
            [True, False], [0.1, 0.0], [None, "match_rms_adamw"]))]
GRID += [{"ns_coefficients": (3.0, -3.2, 1.2), "ns_steps": 3, "eps": 1e-4},
         {"adjust_lr_fn": "original", "learning_rate": 0.01}]


def _kwargs(case: dict) -> tuple[dict, dict]:
    ours = dict({"learning_rate": 0.02}, **case)
    return ours, {_TORCH_NAMES.get(k, k): v for k, v in ours.items()}


def _case_id(case: dict) -> str:
    return ",".join(f"{k}={v}" for k, v in sorted(case.items()))


@pytest.mark.parametrize("case", GRID, ids=_case_id)
def test_matches_torch_algorithm_in_float32(case):
    ours, theirs = _kwargs(case)
    with torch_newton_schulz_in_param_dtype():
        expected = torch_muon_trajectory(theirs)
    actual = optxform_trajectory(optxform.muon(**ours, ns_dtype=jnp.float32))
    oracles.assert_trajectories_close(actual, expected)


@pytest.mark.parametrize("case", GRID[::3], ids=_case_id)
def test_matches_torch_algorithm_in_float64(case, x64):
    ours, theirs = _kwargs(case)
    with torch_newton_schulz_in_param_dtype():
        expected = torch_muon_trajectory(theirs, np.float64)
    actual = optxform_trajectory(optxform.muon(**ours, ns_dtype=jnp.float64), np.float64)
    assert actual[-1]["w1"].dtype == np.float64
    oracles.assert_trajectories_close(actual, expected, rtol=1e-10, atol=1e-12)


def test_bfloat16_newton_schulz_stays_near_stock_torch():
    """Each param within 5e-2 of stock torch (relative, Frobenius norm) at every step.

    One bfloat16 Newton-Schulz equals torch's to about 1e-7; along a trajectory, an f32
    difference of one ulp that lands on the other side of a bfloat16 rounding boundary
    changes an element by one bfloat16 ulp, and such flips accumulate (measured: 5e-4 after
    the first step, 2e-2 after 100).
    """
    expected = torch_muon_trajectory({"lr": 0.02})
    actual = optxform_trajectory(optxform.muon(0.02))
    worst = max(float(np.linalg.norm(a[n] - e[n]) / np.linalg.norm(e[n]))
                for a, e in zip(actual, expected) for n in e)
    assert worst < 5e-2, worst
    # ... and bfloat16 is not float32: the two differ measurably.
    f32 = optxform_trajectory(optxform.muon(0.02, ns_dtype=jnp.float32), steps=5)
    assert max(float(np.max(np.abs(a[n] - b[n]))) for a, b in zip(f32, actual[:5])
               for n in a) > 1e-6


def test_one_bfloat16_newton_schulz_equals_torchs():
    from torch.optim._muon import _zeropower_via_newtonschulz

    rng = np.random.default_rng(0)
    tx = optxform.orthogonalize_by_newton_schulz()
    for shape in [(6, 5), (4, 7), (64, 32)]:
        g = rng.standard_normal(shape).astype(np.float32)
        want = _zeropower_via_newtonschulz(torch.tensor(g), (3.4445, -4.775, 2.0315), 5,
                                           1e-7).float().numpy()
        u, _ = tx.update({"w": jnp.asarray(g)}, tx.init({"w": jnp.asarray(g)}))
        got = np.asarray(u["w"]) / np.sqrt(max(1.0, shape[0] / shape[1]))
        np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-6)


# --- Newton-Schulz ---------------------------------------------------------------------------

def _numpy_polar_express(g: np.ndarray, steps: int) -> np.ndarray:
    """Algorithm 1 of Amsel et al. (2025), in float64 numpy, from the paper's table."""
    table = [(8.28721201814563, -23.595886519098837, 17.300387312530933),
             (4.107059111542203, -2.9478499167379106, 0.5448431082926601),
             (3.9486908534822946, -2.908902115962949, 0.5518191394370137),
             (3.3184196573706015, -2.488488024314874, 0.51004894012372),
             (2.300652019954817, -1.6689039845747493, 0.4188073119525673),
             (1.891301407787398, -1.2679958271945868, 0.37680408948524835),
             (1.8750014808534479, -1.2500016453999487, 0.3750001645474248),
             (1.875, -1.25, 0.375)]
    table = [(a / 1.01, b / 1.01 ** 3, c / 1.01 ** 5) for a, b, c in table[:-1]] + table[-1:]
    x = g.T if g.shape[0] > g.shape[1] else g
    x = x / (np.linalg.norm(x) * 1.01 + 1e-7)
    for a, b, c in (table + [table[-1]] * steps)[:steps]:
        gram = x @ x.T
        x = a * x + (b * gram + c * gram @ gram) @ x
    return x.T if g.shape[0] > g.shape[1] else x


def test_polar_express_coefficients_are_the_papers():
    assert len(POLAR_EXPRESS_COEFFICIENTS) == 8
    np.testing.assert_allclose(POLAR_EXPRESS_COEFFICIENTS[0],
                               (8.28721201814563 / 1.01, -23.595886519098837 / 1.01 ** 3,
                                17.300387312530933 / 1.01 ** 5), rtol=1e-15)
    assert POLAR_EXPRESS_COEFFICIENTS[-1] == (1.875, -1.25, 0.375)


@pytest.mark.parametrize("shape", [(6, 4), (4, 6), (5, 5)])
def test_polar_express_matches_the_paper_and_converges(shape, x64):
    g = np.random.default_rng(1).standard_normal(shape)
    tx = optxform.orthogonalize_by_newton_schulz("polar_express", ns_steps=10,
                                                 ns_dtype=jnp.float64)
    u, _ = tx.update({"w": jnp.asarray(g)}, tx.init({"w": jnp.asarray(g)}))
    ratio = np.sqrt(max(1.0, shape[0] / shape[1]))
    np.testing.assert_allclose(np.asarray(u["w"]) / ratio, _numpy_polar_express(g, 10),
                               rtol=1e-12, atol=1e-13)
    # Ten steps reach the polar factor U V^T (all singular values 1) closely.
    sv = np.linalg.svd(np.asarray(u["w"]) / ratio, compute_uv=False)
    np.testing.assert_allclose(sv, 1.0, atol=1e-3)
    # The quintic does not converge: it hovers in roughly (0.7, 1.2), as its authors say.
    q = optxform.orthogonalize_by_newton_schulz(ns_steps=10, ns_dtype=jnp.float64)
    uq, _ = q.update({"w": jnp.asarray(g)}, q.init({"w": jnp.asarray(g)}))
    svq = np.linalg.svd(np.asarray(uq["w"]) / ratio, compute_uv=False)
    assert 0.6 < svq.min() < 0.95 or svq.max() > 1.05


def test_per_step_coefficients_and_invalid_ones():
    g = {"w": jnp.asarray(np.random.default_rng(2).standard_normal((3, 4)), jnp.float32)}
    table = [(3.4445, -4.775, 2.0315), (2.0, -1.5, 0.5)]
    per_step = optxform.orthogonalize_by_newton_schulz(table, ns_steps=2, ns_dtype=jnp.float32)
    a = optxform.orthogonalize_by_newton_schulz(table[0], ns_steps=1, ns_dtype=jnp.float32)
    u1, _ = a.update(g, a.init(g))
    np.testing.assert_allclose(per_step.update(g, per_step.init(g))[0]["w"],
                               _one_step(u1["w"], table[1]), rtol=1e-5, atol=1e-6)
    for bad in [dict(ns_coefficients=table, ns_steps=3), dict(ns_coefficients="cubic"),
                dict(ns_steps=0), dict(ns_dtype=jnp.int32), dict(adjust_lr_fn="sqrt"),
                dict(flatten="middle"), dict(batch_dims=-1), dict(eps=-1.0)]:
        with pytest.raises(ValueError, match=next(iter(bad))):
            optxform.orthogonalize_by_newton_schulz(**bad)
    with pytest.raises(ValueError, match="weight_decay"):
        optxform.muon(weight_decay=-0.1)
    with pytest.raises(ValueError, match="momentum"):
        optxform.muon(momentum=-0.5)


def _one_step(x, abc):
    """One more step of the iteration (the normalisation happens once, before the first)."""
    a, b, c = abc
    gram = x @ x.T
    return a * x + (b * gram + c * gram @ gram) @ x


# --- shapes -----------------------------------------------------------------------------------

def test_non_matrix_params_name_their_path():
    with pytest.raises(ValueError, match=r"'layer/bias' of shape \(3,\) is not a matrix"):
        optxform.muon().init({"layer": {"bias": jnp.ones(3), "kernel": jnp.ones((3, 3))}})
    with pytest.raises(ValueError, match="'w'.*batch_dims=1"):
        optxform.muon(batch_dims=1).init({"w": jnp.ones((3, 4))})
    with pytest.raises(ValueError, match="complex"):
        tx = optxform.muon()
        p = {"w": jnp.ones((2, 2), jnp.complex64)}
        tx.update(p, tx.init(p), p)


def test_conv_kernels_flatten_as_documented():
    rng = np.random.default_rng(4)
    k = jnp.asarray(rng.standard_normal((3, 3, 4, 8)), jnp.float32)   # flax: kh, kw, in, out
    last = optxform.orthogonalize_by_newton_schulz(ns_dtype=jnp.float32)
    u, _ = last.update({"k": k}, last.init({"k": k}))
    flat, _ = last.update({"k": k.reshape(36, 8)}, last.init({"k": k.reshape(36, 8)}))
    np.testing.assert_allclose(u["k"].reshape(36, 8), flat["k"], rtol=1e-6, atol=1e-7)
    first = optxform.orthogonalize_by_newton_schulz(ns_dtype=jnp.float32, flatten="first")
    kt = jnp.transpose(k, (3, 2, 0, 1))                                # torch: out, in, kh, kw
    u, _ = first.update({"k": kt}, first.init({"k": kt}))
    flat, _ = first.update({"k": kt.reshape(8, 36)}, first.init({"k": kt.reshape(8, 36)}))
    np.testing.assert_allclose(u["k"].reshape(8, 36), flat["k"], rtol=1e-6, atol=1e-7)


def test_stacked_layers_are_orthogonalised_per_matrix_and_same_shapes_batched():
    rng = np.random.default_rng(5)
    stack = jnp.asarray(rng.standard_normal((3, 4, 6)), jnp.float32)
    tx = optxform.muon(0.1, batch_dims=1, ns_dtype=jnp.float32)
    u, _ = tx.update({"s": stack}, tx.init({"s": stack}), {"s": stack})
    single = optxform.muon(0.1, ns_dtype=jnp.float32)
    for i in range(3):
        ui, _ = single.update({"s": stack[i]}, single.init({"s": stack[i]}), {"s": stack[i]})
        np.testing.assert_allclose(u["s"][i], ui["s"], rtol=1e-6, atol=1e-7)
    # Three same-shape leaves: one batched Newton-Schulz (a dot_general of batch 3) in the
    # program, and the result equals three separate calls.
    params = {f"w{i}": stack[i] for i in range(3)}
    ns = optxform.orthogonalize_by_newton_schulz(ns_dtype=jnp.float32)
    hlo = jax.jit(ns.update).lower(params, ns.init(params)).as_text()
    assert "3x4x6" in hlo.replace(",", "x") or "[3,4,6]" in hlo
    together, _ = ns.update(params, ns.init(params))
    for name, leaf in params.items():
        alone, _ = ns.update({name: leaf}, ns.init({name: leaf}))
        np.testing.assert_allclose(together[name], alone[name], rtol=1e-6, atol=1e-7)


def test_non_finite_gradient_gives_a_zero_update_for_that_matrix_only():
    params = {"a": jnp.ones((3, 3)), "b": jnp.eye(3)}
    tx = optxform.muon(0.1, weight_decay=0.0)
    grads = {"a": jnp.full((3, 3), jnp.inf), "b": jnp.eye(3)}
    u, _ = tx.update(grads, tx.init(params), params)
    assert bool(jnp.all(u["a"] == 0)) and bool(jnp.all(jnp.isfinite(u["b"])))
    assert float(jnp.abs(u["b"]).sum()) > 0
    # float16 params whose square overflows in float16: bfloat16 iteration stays finite.
    big = {"w": jnp.full((4, 4), 300.0, jnp.float16) + jnp.eye(4, dtype=jnp.float16)}
    u, _ = tx.update(big, tx.init(big), big)
    assert bool(jnp.all(jnp.isfinite(u["w"])))


def test_muon_under_vmap_inject_state_dict_and_resume(tmp_path):
    params = jax.tree.map(jnp.asarray, matrix_params())
    tx = optxform.inject_hyperparams(optxform.muon)(learning_rate=0.02, momentum=0.9,
                                                     ns_dtype=jnp.float32)
    state = tx.init(params)
    state = optxform.tree_set(state, learning_rate=0.01)
    step = jax.jit(lambda p, s, t: _apply(tx, p, s, t))
    for t in range(3):
        params, state = step(params, state, t)
    path = tmp_path / "muon.state"
    optxform.save_state(path, state)
    restored = optxform.load_state(path, tx.init(params))
    a, b = (params, state), (params, restored)
    for t in range(3, 6):
        a, b = step(*a, t), step(*b, t)
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)):
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y))
    keys = optxform.state_dict(state)
    assert any("muon.mu/w1" in k for k in keys), sorted(keys)
    # vmap over two independent problems equals two runs.
    plain = optxform.muon(0.02, ns_dtype=jnp.float32)
    two = jax.tree.map(lambda x: jnp.stack([x, 2 * x]), jax.tree.map(jnp.asarray, matrix_params()))
    vstep = jax.jit(jax.vmap(lambda p, s: _apply(plain, p, s, 0)))
    out, _ = vstep(two, jax.vmap(plain.init)(two))
    for i in range(2):
        single, _ = _apply(plain, jax.tree.map(lambda x: x[i], two),
                           plain.init(jax.tree.map(lambda x: x[i], two)), 0)
        for n in single:
            np.testing.assert_allclose(out[n][i], single[n], rtol=1e-5, atol=1e-6)


def _apply(tx, params, state, t):
    updates, state = tx.update(matrix_grads(params, t), state, params)
    return optxform.apply_updates(params, updates), state


@pytest.mark.parametrize("kind", [AxisType.Explicit, AxisType.Auto], ids=["explicit", "auto"])
def test_sharded_muon_keeps_layouts_and_matches_one_device(kind):
    """State sharded like its param; Newton-Schulz needs the whole matrix, so each sharded
    matrix is gathered (explicit axes) or XLA moves its pieces (automatic): counted here."""
    from examples import sharded_train

    mesh = jax.make_mesh((8,), ("model",), axis_types=(kind,))
    params = jax.tree.map(jnp.asarray, {"w": np.random.default_rng(6).standard_normal((8, 16)),
                                        "v": np.random.default_rng(7).standard_normal((16, 8))})
    params = jax.tree.map(lambda x: x.astype(jnp.float32), params)
    shardings = {"w": NamedSharding(mesh, P(None, "model")),
                 "v": NamedSharding(mesh, P("model", None))}
    sharded = jax.device_put(params, shardings)
    tx = optxform.muon(0.02, ns_dtype=jnp.float32)
    state = optxform.sharded_init(tx, sharded)
    mu = state["muon"].mu
    assert mu["w"].sharding.is_equivalent_to(shardings["w"], 2)
    assert mu["v"].sharding.is_equivalent_to(shardings["v"], 2)
    step = jax.jit(lambda p, s, g: tx.update(g, s, p))
    grads = jax.tree.map(lambda x: jnp.sin(3 * x), sharded)
    u, new_state = step(sharded, state, grads)
    assert new_state["muon"].mu["w"].sharding.is_equivalent_to(shardings["w"], 2)
    want, _ = tx.update(jax.tree.map(lambda x: jnp.sin(3 * x), params), tx.init(params), params)
    for n in params:
        np.testing.assert_allclose(u[n], want[n], rtol=1e-5, atol=1e-6)
    counts = sharded_train.compiled_collectives(step,
                                                sharded, state, grads)
    assert counts["all-gather"] + counts["all-reduce"] > 0, counts
