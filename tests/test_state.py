"""State utilities: state_dict/load_state_dict, save_state/load_state, extend_state, orbax."""

from __future__ import annotations

import io
import os
import pickle
import zipfile

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import optxform
from optxform.state import CheckpointError
from optxform.state import files as state_files
from tests import oracles


def _params():
    return {"layer1": {"w": jnp.asarray(np.arange(12.0, dtype=np.float32).reshape(3, 4) / 7),
                       "b": jnp.asarray(np.linspace(-1, 1, 4, dtype=np.float32))},
            "out": jnp.asarray(np.ones((4, 2), np.float32))}


def _trained_state(tx, params, steps=3):
    update = jax.jit(tx.update)
    state = tx.init(params)
    for t in range(steps):
        grads = jax.tree.map(lambda p: jnp.sin(p * (t + 1.0)), params)
        updates, state = update(grads, state, params)
        params = optxform.apply_updates(params, updates)
    return state


def _assert_bitwise_equal(a, b):
    assert jax.tree.structure(a) == jax.tree.structure(b)
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)):
        x, y = np.asarray(x), np.asarray(y)
        assert x.dtype == y.dtype and x.shape == y.shape
        assert x.tobytes() == y.tobytes()


# --- state_dict / load_state_dict --------------------------------------------------------


def test_state_dict_has_readable_keys_and_round_trips_exactly():
    params = _params()
    tx = optxform.adam(1e-2, weight_decay=0.1)  # chain(add_decayed_weights, adam, lr)
    state = _trained_state(tx, params)
    sd = optxform.state_dict(state)
    assert "adam.mu/layer1/w" in sd and "adam.nu/out" in sd and "adam.count" in sd
    assert int(sd["adam.count"]) == 3 and sd["adam.count"].dtype == np.int32
    assert all(isinstance(v, np.ndarray) for v in sd.values())
    assert list(sd) == optxform.state_keys(state) + ["<structure>"]
    assert sd["<structure>"].dtype.kind == "U"  # the node types, as JSON text
    _assert_bitwise_equal(optxform.load_state_dict(state, sd), state)
    # An abstract template works too, and the result continues under jit.
    loaded = optxform.load_state_dict(jax.eval_shape(tx.init, params), sd)
    _assert_bitwise_equal(loaded, state)
    grads = jax.tree.map(jnp.ones_like, params)
    _assert_bitwise_equal(jax.jit(tx.update)(grads, loaded, params),
                          jax.jit(tx.update)(grads, state, params))


def test_load_state_dict_rejects_missing_extra_shape_and_dtype_naming_the_key():
    params = _params()
    tx = optxform.adam(1e-2, weight_decay=0.1)
    state = _trained_state(tx, params)
    sd = optxform.state_dict(state)
    snapshot = optxform.state_dict(state)

    missing = dict(sd)
    del missing["adam.nu/layer1/b"]
    with pytest.raises(ValueError, match="'adam.nu/layer1/b'.*missing"):
        optxform.load_state_dict(state, missing)
    with pytest.raises(ValueError, match="unexpected key 'adam.mu/extra'"):
        optxform.load_state_dict(state, {**sd, "adam.mu/extra": np.zeros(2, np.float32)})
    with pytest.raises(ValueError, match=r"shape mismatch for key 'adam.mu/out'.*\(4, 3\)"):
        optxform.load_state_dict(state, {**sd, "adam.mu/out": np.zeros((4, 3), np.float32)})
    with pytest.raises(ValueError, match="dtype mismatch for key 'adam.count'"):
        optxform.load_state_dict(state, {**sd, "adam.count": np.int64(3)})
    # Failures leave the inputs as they were.
    for key in snapshot:
        np.testing.assert_array_equal(optxform.state_dict(state)[key], snapshot[key])


# --- files -----------------------------------------------------------------------------------


def test_save_load_is_bit_exact_for_low_precision_nan_payloads_and_negative_zero(tmp_path):
    params = {"w": jnp.asarray([[0.5, -1.5], [2.0, 3.0]], jnp.float32), "b": jnp.zeros(3)}
    tx = optxform.chain(optxform.adam(1e-2), optxform.ema(0.9))
    state = _trained_state(tx, params)
    low = {"w": jnp.asarray([[0.5, -1.5]], jnp.bfloat16), "h": jnp.asarray([1.5], jnp.float16)}
    special = np.array([np.nan, -0.0, np.inf], np.float32)
    special.view(np.uint32)[0] = 0x7FC01234  # a NaN with a payload
    state = (state, {"special": jnp.asarray(special), "flag": jnp.asarray([True, False]),
                     "low": low})
    path = tmp_path / "opt.ckpt"
    optxform.save_state(path, state)
    loaded = optxform.load_state(path, jax.eval_shape(lambda: state))
    _assert_bitwise_equal(loaded, state)
    assert loaded[1]["low"]["w"].dtype == jnp.bfloat16
    # A plain np.load can inspect it (no pickle needed).
    with np.load(path, allow_pickle=False) as archive:
        assert "optxform_state.json" in archive.files
    assert not [name for name in os.listdir(tmp_path) if name.endswith(".tmp")]


def _small_checkpoint(tmp_path):
    params = {"w": jnp.asarray(np.linspace(-1, 1, 6, dtype=np.float32).reshape(2, 3)),
              "b": jnp.asarray([0.25, -0.5], jnp.float32)}
    tx = optxform.adam(1e-2)
    state = _trained_state(tx, params, steps=2)
    path = tmp_path / "small.ckpt"
    optxform.save_state(path, state)
    return path, state, jax.eval_shape(tx.init, params)


def test_every_single_flipped_byte_is_detected_and_a_damaged_array_is_named(tmp_path):
    path, state, template = _small_checkpoint(tmp_path)
    data = path.read_bytes()
    bad = tmp_path / "bad.ckpt"
    for position in range(0, len(data), 5):
        corrupted = bytearray(data)
        corrupted[position] ^= 0x10
        bad.write_bytes(bytes(corrupted))
        with pytest.raises(ValueError):
            optxform.load_state(bad, template)
    # A flip inside the bytes of one array names that array.
    nu_w = np.asarray(optxform.tree_get(state, "adam.nu")["w"]).tobytes()
    offset = data.index(nu_w) + len(nu_w) // 2
    corrupted = bytearray(data)
    corrupted[offset] ^= 0x01
    bad.write_bytes(bytes(corrupted))
    with pytest.raises(ValueError, match="corrupted.*'adam.nu/w'"):
        optxform.load_state(bad, template)


def test_truncated_files_and_pickles_are_refused(tmp_path):
    path, state, template = _small_checkpoint(tmp_path)
    data = path.read_bytes()
    bad = tmp_path / "bad.ckpt"
    for length in (0, 10, len(data) // 2, len(data) - 30, len(data) - 1):
        bad.write_bytes(data[:length])
        with pytest.raises(ValueError):
            optxform.load_state(bad, template)
    # A plain pickle, and a torch.save file (a zip holding a pickle).
    bad.write_bytes(pickle.dumps(optxform.state_dict(state)))
    with pytest.raises(CheckpointError, match="not an optxform checkpoint"):
        optxform.load_state(bad, template)
    import torch

    torch.save({"state": {0: {"exp_avg": torch.zeros(3)}}}, bad)
    with pytest.raises(CheckpointError, match="not an optxform checkpoint"):
        optxform.load_state(bad, template)
    # Our own format with one member swapped for a pickled object array.
    with zipfile.ZipFile(path) as archive:
        members = {name: archive.read(name) for name in archive.namelist()}
    buffer = io.BytesIO()
    np.lib.format.write_array(buffer, np.array([{"evil": 1}], dtype=object), allow_pickle=True)
    members["a1.npy"] = buffer.getvalue()
    with zipfile.ZipFile(bad, "w") as archive:
        for name, content in members.items():
            archive.writestr(name, content)
    with pytest.raises(CheckpointError, match="not an optxform checkpoint"):
        optxform.load_state(bad, template)  # no whole-file checksum


def test_checkpoint_of_another_optimizer_or_other_param_shapes_is_named(tmp_path):
    path, state, _ = _small_checkpoint(tmp_path)  # adam on {"w": (2, 3), "b": (2,)}
    params = {"w": jnp.zeros((2, 3)), "b": jnp.zeros(2)}
    with pytest.raises(ValueError, match="another optimizer|missing|unexpected"):
        optxform.load_state(path, optxform.sgd(0.1, momentum=0.9).init(params))
    with pytest.raises(ValueError, match=r"'adam.mu/w'.*\(2, 3\).*\(3, 3\)"):
        optxform.load_state(path, optxform.adam(1e-2).init({"w": jnp.zeros((3, 3)),
                                                            "b": jnp.zeros(2)}))
    with pytest.raises(ValueError, match="'adam.mu/c'"):
        optxform.load_state(path, optxform.adam(1e-2).init({**params, "c": jnp.zeros(1)}))
    # Same keys, other node types: the stored structure tells them apart.
    optxform.save_state(path, {"count": jnp.zeros([], jnp.int32)})
    with pytest.raises(ValueError, match="'<root>' the checkpoint has a dict where the "
                                         "template state has a ScaleByLearningRateState"):
        optxform.load_state(path, optxform.scale_by_learning_rate(0.1).init(params))


def test_a_crash_while_writing_leaves_the_previous_checkpoint_intact(tmp_path, monkeypatch):
    path, state, template = _small_checkpoint(tmp_path)
    before = path.read_bytes()
    calls = []

    def failing_write(archive, member, array):
        calls.append(member)
        if len(calls) == 2:
            raise OSError("disk full (simulated)")
        archive.writestr(member, state_files._npy_bytes(array))

    monkeypatch.setattr(state_files, "_write_member", failing_write)
    with pytest.raises(OSError, match="simulated"):
        optxform.save_state(path, jax.tree.map(lambda x: x + 1, state))
    assert path.read_bytes() == before
    _assert_bitwise_equal(optxform.load_state(path, template), state)
    assert sorted(os.listdir(tmp_path)) == ["small.ckpt"]  # the temp file was removed


# --- extend_state (add_param_group) ------------------------------------------------------------


def test_extend_state_keeps_old_entries_and_gives_new_params_fresh_state():
    params = _params()
    tx = optxform.adam(1e-2)
    state = _trained_state(tx, params)
    new_params = {**params, "adapter": jnp.ones((2, 2))}
    extended = optxform.extend_state(tx, state, new_params)
    old, new = optxform.state_dict(state), optxform.state_dict(extended)
    del old["<structure>"]  # the structure gained the adapter's entries
    for key, value in old.items():
        assert new[key].tobytes() == value.tobytes(), key
    assert int(new["adam.count"]) == 3
    np.testing.assert_array_equal(new["adam.mu/adapter"], np.zeros((2, 2), np.float32))
    grads = jax.tree.map(jnp.ones_like, new_params)
    updates, _ = jax.jit(tx.update)(grads, extended, new_params)
    assert updates["adapter"].shape == (2, 2)

    with pytest.raises(ValueError, match="'adam.mu/out'"):
        optxform.extend_state(tx, state, {"layer1": params["layer1"]})
    with pytest.raises(ValueError, match=r"'adam.mu/out'.*shape"):
        optxform.extend_state(tx, state, {**params, "out": jnp.ones((4, 3))})


def test_extend_state_as_a_new_param_group_matches_torch_add_param_group():
    import torch

    make, _ = oracles.PROBLEMS["mlp"]
    full = make()
    base_names, new_names = ["w1", "b1"], ["w2", "k"]
    grad = oracles.grad_fn("mlp")
    first, then, lr_base, lr_new = 4, 6, 1e-2, 3e-2

    def full_grads(p, t):
        return grad(jax.tree.map(jnp.asarray, p), jnp.asarray(t, jnp.int32))

    # torch: Adam over the base params, then add_param_group for the rest.
    tp = {n: torch.tensor(full[n], requires_grad=True) for n in full}
    opt = torch.optim.Adam([tp[n] for n in base_names], lr=lr_base)
    for t in range(first + then):
        if t == first:
            opt.add_param_group({"params": [tp[n] for n in new_names], "lr": lr_new})
        g = full_grads({n: x.detach().numpy() for n, x in tp.items()}, t)
        for n in full:
            tp[n].grad = torch.from_numpy(np.array(g[n]))
        opt.step()

    # optxform: adam over the base params (others fixed), then extend_state into a group.
    p = jax.tree.map(jnp.asarray, full)
    tx = optxform.adam(lr_base)
    base = {n: p[n] for n in base_names}
    state = tx.init(base)
    for t in range(first):
        g = full_grads(p, t)
        updates, state = jax.jit(tx.update)({n: g[n] for n in base_names}, state, base)
        base = optxform.apply_updates(base, updates)
        p = {**p, **base}
    tx2 = optxform.multi_transform(
        {"base": optxform.adam(lr_base), "new": optxform.adam(lr_new)},
        {n: ("base" if n in base_names else "new") for n in full})
    state2 = optxform.extend_state(tx2, state, p, old_group="base")
    update2 = jax.jit(tx2.update)
    for t in range(first, first + then):
        updates, state2 = update2(full_grads(p, t), state2, p)
        p = optxform.apply_updates(p, updates)
    for n in full:
        np.testing.assert_allclose(p[n], tp[n].detach().numpy(), rtol=1e-5, atol=1e-6,
                                   err_msg=n)
    with pytest.raises(ValueError, match="old_group"):
        optxform.extend_state(tx2, state, p, old_group="nope")


# --- orbax ---------------------------------------------------------------------------------------


def test_state_round_trips_through_orbax(tmp_path):
    import orbax.checkpoint as ocp
    params = _params()
    tx = optxform.chain(  # NamedTuples, None leaves (no amsgrad) and masked-out params
        optxform.MultiSteps(optxform.adam(1e-2), 2).gradient_transformation(),
        optxform.masked(optxform.sgd(0.1, momentum=0.9), {"layer1": True, "out": False}),
        optxform.ema(0.9))
    state = _trained_state(tx, params, steps=3)
    with ocp.StandardCheckpointer() as checkpointer:
        checkpointer.save(tmp_path / "orbax_state", state)
        checkpointer.wait_until_finished()
        restored = checkpointer.restore(tmp_path / "orbax_state",
                                        jax.eval_shape(tx.init, params))
    _assert_bitwise_equal(restored, state)
