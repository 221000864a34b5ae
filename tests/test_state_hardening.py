"""Loaders refuse states of other optimizers; checkpoint files resist damage and crafting,
and behave like ordinary files (mode, symlinks, long names, stale temporaries, folders)."""

from __future__ import annotations

import hashlib
import io
import json
import os
import stat
import subprocess
import sys
import tracemalloc
import zipfile
import zlib
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import optxform
from optxform.state import CheckpointError
from optxform.state import atomic
from optxform.state import files as state_files


def _assert_bitwise_equal(a, b):
    assert jax.tree.structure(a) == jax.tree.structure(b)
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)):
        if jax.dtypes.issubdtype(getattr(x, "dtype", np.float32), jax.dtypes.prng_key):
            assert x.dtype == y.dtype
            x, y = jax.random.key_data(x), jax.random.key_data(y)
        assert type(x) is type(y) or isinstance(x, jax.Array) and isinstance(y, jax.Array)
        x, y = np.asarray(x), np.asarray(y)
        assert x.dtype == y.dtype and x.shape == y.shape
        assert x.tobytes() == y.tobytes()


def _trained(tx, params, steps=2):
    state = tx.init(params)
    for t in range(steps):
        grads = jax.tree.map(lambda p: jnp.cos(p * (t + 1.0)), params)
        _, state = tx.update(grads, state, params)
    return state


PARAMS = {"w": jnp.asarray([[0.5, -1.5, 2.0], [1.0, 0.25, -3.0]], jnp.float32),
          "b": jnp.asarray([0.125, -0.5], jnp.float32)}


# --- 1. a state from another optimizer is refused by every loader ---------------------------


def _another_optimizer(found, expected):
    """The first difference between an Adamax and an Adam state, in either chain layout:
    the state type at a chain index, or the chain member's role name."""
    return (f"(at '0' the {found} has a ScaleByAdamaxState where the {expected} has a "
            f"ScaleByAdamState|entry 'adamax' is in the {found} but not in the {expected})")


def test_an_adamax_state_is_refused_by_all_three_loaders_of_adam(tmp_path):
    adamax_state = _trained(optxform.adamax(1e-2), PARAMS)
    adam = optxform.adam(1e-2)
    with pytest.raises(ValueError, match="load_state_dict: .*"
                       + _another_optimizer("state dict", "template state")):
        optxform.load_state_dict(adam.init(PARAMS), optxform.state_dict(adamax_state))
    path = tmp_path / "adamax.ckpt"
    optxform.save_state(path, adamax_state)
    with pytest.raises(ValueError, match="load_state: .*"
                       + _another_optimizer("checkpoint", "template state")):
        optxform.load_state(path, jax.eval_shape(adam.init, PARAMS))
    with pytest.raises(ValueError, match="extend_state: .*"
                       + _another_optimizer("old state", "new state")):
        optxform.extend_state(adam, adamax_state, {**PARAMS, "c": jnp.ones(2)})
    # ... while each loader still accepts adamax's own state.
    adamax = optxform.adamax(1e-2)
    _assert_bitwise_equal(optxform.load_state(path, adamax.init(PARAMS)), adamax_state)
    extended = optxform.extend_state(adamax, adamax_state, {**PARAMS, "c": jnp.ones(2)})
    old_mu, new_mu = (optxform.tree_get(s, "mu") for s in (adamax_state, extended))
    assert float(new_mu["b"][0]) == float(old_mu["b"][0]) != 0.0
    assert float(new_mu["c"][0]) == 0.0


def test_extend_state_lets_a_frozen_param_join_a_trained_label():
    params = {"w1": jnp.ones(3), "b1": jnp.ones(2)}
    groups = {"train": optxform.adam(1e-2), "frozen": optxform.freeze()}
    tx = optxform.multi_transform(groups, {"w1": "train", "b1": "frozen"})
    state = _trained(tx, params)
    tx2 = optxform.multi_transform(groups, {"w1": "train", "b1": "train"})
    extended = optxform.extend_state(tx2, state, params)
    old_mu = optxform.tree_get(state.inner_states["train"], "mu")
    new_mu = optxform.tree_get(extended.inner_states["train"], "mu")
    assert float(new_mu["w1"][0]) == float(old_mu["w1"][0]) != 0.0
    np.testing.assert_array_equal(new_mu["b1"], np.zeros(2, np.float32))
    # The other way, a trained param's state has no place under the frozen label.
    with pytest.raises(ValueError, match="'inner_states/train.*b1' the old state has an array "
                                         "where the new state has a MaskedNode"):
        optxform.extend_state(tx, extended, params)


class _First(NamedTuple):
    x: jax.Array


class _Second(NamedTuple):
    x: jax.Array


_ARRAY = jnp.zeros(2, jnp.float32)

# (saved state, template state, the first difference the message must name)
IDENTITY_CASES = {
    "node type": ((_First(_ARRAY), {"a": _ARRAY}), (_Second(_ARRAY), {"a": _ARRAY}),
                  "at '0' the .* has a _First where the .* has a _Second"),
    "dict key": ({"a": _ARRAY, "b": {"c": _ARRAY}}, {"a": _ARRAY, "b": {"d": _ARRAY}},
                 "entry 'b/c' is in the (state dict|checkpoint|old state) but not"),
    "tuple length": ((_ARRAY, (_ARRAY, _ARRAY)), (_ARRAY, (_ARRAY, _ARRAY, _ARRAY)),
                     "entry '1/2' is in the (template state|new state) but not"),
    "None leaf": ((_First(None), _ARRAY), (_First(_ARRAY), _ARRAY),
                  "at '0.x' the .* has None where the .* has an array"),
    "leaf or node": ({"a": {"b": _ARRAY}}, {"a": _ARRAY},
                     "at 'a' the .* has a dict where the .* has an array"),
}


@pytest.mark.parametrize("case", list(IDENTITY_CASES))
def test_every_loader_names_the_first_difference_of_structure(case, tmp_path):
    saved, template, message = IDENTITY_CASES[case]
    with pytest.raises(ValueError, match=message):
        optxform.load_state_dict(template, optxform.state_dict(saved))
    path = tmp_path / "s.ckpt"
    optxform.save_state(path, saved)
    with pytest.raises(ValueError, match=message):
        optxform.load_state(path, template)
    # extend_state lets dicts and tuples gain entries, but never lose or change one.
    tx = optxform.GradientTransformation(lambda params: template, None)
    if case == "tuple length":
        assert optxform.extend_state(tx, saved, None)[1][2] is _ARRAY
        with pytest.raises(ValueError, match="entry '1/2' is in the old state but not"):
            optxform.extend_state(optxform.GradientTransformation(lambda p: saved, None),
                                  template, None)
    else:
        with pytest.raises(ValueError, match=message):
            optxform.extend_state(tx, saved, None)


def test_the_structure_entry_grows_with_the_number_of_nodes_not_their_square():
    n = 4000
    state = (_First(x={f"param{i}": jnp.zeros(1) for i in range(n)}), {"count": jnp.zeros(1)})
    entry = optxform.state_dict(state)["<structure>"]
    assert entry.ndim == 0 and entry.dtype.kind == "U"
    # Two mentions of each param's key (its own line and its parent's list), ~40 characters.
    assert entry.nbytes < 4 * 100 * n, entry.nbytes
    assert json.loads(str(entry))[1] == ["0", "_First", ["0.x"]]


def test_state_dicts_without_a_structure_entry_and_version_1_files_still_load(tmp_path):
    state = _trained(optxform.adam(1e-2), PARAMS)
    flat = optxform.state_dict(state)
    del flat["<structure>"]
    _assert_bitwise_equal(optxform.load_state_dict(state, flat), state)
    # A format-1 file: the structure stored as the treedef's text.
    path = tmp_path / "v1.ckpt"
    optxform.save_state(path, state)
    members, meta = _members(path)
    meta.update(version=1, structure=str(jax.tree.structure(state)))
    _write_sealed(path, members, meta)
    _assert_bitwise_equal(optxform.load_state(path, jax.eval_shape(lambda: state)), state)
    # Same keys, other node types: refused by the treedef's text.
    optxform.save_state(path, {"s": _First(_ARRAY)})
    members, meta = _members(path)
    meta.update(version=1, structure=str(jax.tree.structure({"s": _First(_ARRAY)})))
    _write_sealed(path, members, meta)
    with pytest.raises(ValueError, match="different state structure"):
        optxform.load_state(path, {"s": _Second(_ARRAY)})
    _assert_bitwise_equal(optxform.load_state(path, {"s": _First(_ARRAY)}),
                          {"s": _First(_ARRAY)})


# --- 3. checkpoints resist damaged and crafted files ------------------------------------------


def _members(path) -> tuple[dict[str, bytes], dict]:
    with zipfile.ZipFile(path) as archive:
        members = {name: archive.read(name) for name in archive.namelist()}
    return members, json.loads(members["optxform_state.json"])


def _seal(data: bytes) -> bytes:
    """``data`` (a zip whose comment is the placeholder trailer) with a valid checksum."""
    return data[:-64] + hashlib.sha256(data[:-64]).hexdigest().encode("ascii")


def _write_sealed(path, members: dict[str, bytes], meta: dict | None = None,
                  compress: dict[str, int] | None = None) -> None:
    """Write a zip of ``members`` (the description replaced by ``meta``) whose whole-file
    checksum is valid, as a crafted file would have."""
    members = dict(members)
    if meta is not None:
        members["optxform_state.json"] = json.dumps(meta).encode("utf-8")
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.comment = b"optxform-sha256:" + b"0" * 64
        for name, content in members.items():
            archive.writestr(name, content, (compress or {}).get(name, zipfile.ZIP_STORED))
    with open(path, "wb") as handle:
        handle.write(_seal(buffer.getvalue()))


@pytest.fixture
def small(tmp_path):
    state = _trained(optxform.adam(1e-2), PARAMS)
    path = tmp_path / "small.ckpt"
    optxform.save_state(path, state)
    return path, state, jax.eval_shape(optxform.adam(1e-2).init, PARAMS)


def test_every_byte_flip_and_every_truncation_raises_checkpoint_error(small, tmp_path):
    path, _, template = small
    data = path.read_bytes()
    bad = tmp_path / "bad.ckpt"
    for position in range(len(data)):
        corrupted = bytearray(data)
        corrupted[position] ^= 0x04
        bad.write_bytes(bytes(corrupted))
        with pytest.raises(CheckpointError):
            optxform.load_state(bad, template)
    for length in sorted({*range(0, len(data), 7), *range(len(data) - 100, len(data))}):
        bad.write_bytes(data[:length])
        with pytest.raises(CheckpointError):
            optxform.load_state(bad, template)


def test_random_edits_of_a_resealed_file_load_intact_or_raise_checkpoint_error(small, tmp_path):
    """A crafted file has a valid whole-file checksum: the reader's own checks must hold."""
    path, state, template = small
    data = path.read_bytes()
    rng = np.random.default_rng(0)
    bad = tmp_path / "edited.ckpt"
    outcomes = {"refused": 0, "loaded": 0}
    for _ in range(400):
        edited = bytearray(data[:-64])
        for _ in range(int(rng.integers(1, 5))):
            position = int(rng.integers(len(edited) - 16))
            if rng.random() < 0.7:
                edited[position] = int(rng.integers(256))
            elif rng.random() < 0.5:
                edited[position:position + 4] = bytes(rng.choice([0, 255], 4).tolist())
            else:
                del edited[position:position + int(rng.integers(1, 40))]
        edited += b"0" * 64
        bad.write_bytes(_seal(bytes(edited)))
        try:
            loaded = optxform.load_state(bad, template)
        except CheckpointError:
            outcomes["refused"] += 1
        else:  # the edit hit bytes nothing depends on (a timestamp, padding)
            _assert_bitwise_equal(loaded, state)
            outcomes["loaded"] += 1
    assert outcomes["refused"] > 300, outcomes


def _edit_entry(field, value):
    def edit(meta):
        meta["leaves"][1][field] = value
    return edit


# name -> (edit of the description, message)
CRAFTED = {
    "object dtype": (_edit_entry("dtype", "object"), "dtype 'object'"),
    "string dtype": (_edit_entry("dtype", "<U3"), "dtype '<U3'"),
    "huge shape": (_edit_entry("shape", [10**12, 10**6]), "takes"),
    "negative shape": (_edit_entry("shape", [-2, 3]), "invalid shape"),
    "bool shape": (_edit_entry("shape", [True, 3]), "invalid shape"),
    "text shape": (_edit_entry("shape", "2,3"), "no valid 'shape'"),
    "other dtype, same size": (_edit_entry("dtype", "int32"), "does not hold a plain int32"),
    "reserved key": (_edit_entry("key", "<structure>"), "reserved"),
    "duplicate member": (_edit_entry("member", "a0.npy"), "twice"),
    "missing member": (_edit_entry("member", "zz.npy"), "unexpected member|no member"),
    "bad digest": (_edit_entry("sha256", "x" * 64), "invalid sha256"),
    "version 3": (lambda meta: meta.update(version=3), "format version 3"),
    "version as text": (lambda meta: meta.update(version="2"), "format version '2'"),
    "other format": (lambda meta: meta.update(format="npz"), "not an optxform checkpoint"),
    "no leaves": (lambda meta: meta.pop("leaves"), "no list of arrays"),
    "bad structure": (lambda meta: meta.update(structure=[["<root>", 3, []]]), "malformed"),
    "nested structure": (lambda meta: meta.update(structure=[[[["<root>"]]]]), "malformed"),
}


@pytest.mark.parametrize("case", list(CRAFTED))
def test_crafted_descriptions_with_valid_checksums_raise_checkpoint_error(case, small,
                                                                         tmp_path):
    path, _, template = small
    members, meta = _members(path)
    edit, message = CRAFTED[case]
    edit(meta)
    bad = tmp_path / "crafted.ckpt"
    _write_sealed(bad, members, meta)
    with pytest.raises(CheckpointError, match=message):
        optxform.load_state(bad, template)


def test_crafted_members_and_zip_headers_raise_checkpoint_error(small, tmp_path):
    path, state, template = small
    members, meta = _members(path)
    bad = tmp_path / "crafted.ckpt"
    # A pickled object array in place of an array, sized like the real one or not.
    buffer = io.BytesIO()
    np.lib.format.write_array(buffer, np.array([{"evil": 1}], dtype=object), allow_pickle=True)
    _write_sealed(bad, {**members, "a1.npy": buffer.getvalue()})
    with pytest.raises(CheckpointError, match="a1.npy"):
        optxform.load_state(bad, template)
    pickled = buffer.getvalue()
    real = members["a3.npy"]
    _write_sealed(bad, {**members, "a3.npy": pickled.ljust(len(real), b" ")[:len(real)]})
    with pytest.raises(CheckpointError, match="does not hold a plain float32 array"):
        optxform.load_state(bad, template)
    # A description nested too deeply for the JSON parser, or not UTF-8.
    for text in (b"[" * 100_000 + b"]" * 100_000, b"\xff\xfe"):
        _write_sealed(bad, {**members, "optxform_state.json": text})
        with pytest.raises(CheckpointError, match="unreadable structure description"):
            optxform.load_state(bad, template)
    # An extra member, a compressed member, an unsupported zip version, a deflate flag.
    _write_sealed(bad, {**members, "extra.npy": real})
    with pytest.raises(CheckpointError, match="unexpected member 'extra.npy'"):
        optxform.load_state(bad, template)
    _write_sealed(bad, members, compress={"a2.npy": zipfile.ZIP_DEFLATED})
    with pytest.raises(CheckpointError, match="'a2.npy' is compressed"):
        optxform.load_state(bad, template)
    data = path.read_bytes()
    central = data.index(b"PK\x01\x02")
    for offset, value, message in ((6, 99, "not a readable zip"), (10, 8, "compressed"),
                                   (10, 12, "compressed"), (8, 1, "encrypted")):
        edited = bytearray(data)
        edited[central + offset:central + offset + 2] = value.to_bytes(2, "little")
        bad.write_bytes(_seal(bytes(edited)))
        with pytest.raises(CheckpointError, match=message):
            optxform.load_state(bad, template)
    edited = bytearray(data)  # the local header of the first member says "deflated"
    edited[8:10] = (8).to_bytes(2, "little")
    bad.write_bytes(_seal(bytes(edited)))
    with pytest.raises(CheckpointError, match="local header"):
        optxform.load_state(bad, template)
    # The untouched file still loads.
    _assert_bitwise_equal(optxform.load_state(path, template), state)


def test_a_deflate_bomb_is_refused_before_anything_is_decompressed(small, tmp_path):
    path, _, template = small
    members, meta = _members(path)
    n = 155 * 2**20  # float32 elements: 620 MiB once decompressed
    meta["leaves"][1]["shape"] = [n]
    header = state_files._npy_header(np.dtype("float32"), (n,))
    # Deflate 1 MiB of zeros once; after a full flush the compressor starts afresh, so the
    # same bytes repeated 620 times are a valid stream of 620 MiB of zeros.
    compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
    block = compressor.compress(bytes(2**20)) + compressor.flush(zlib.Z_FULL_FLUSH)
    stream = compressor.compress(header) + compressor.flush(zlib.Z_FULL_FLUSH) + block * 620
    stream += compressor.flush()
    crc = zlib.crc32(header)
    for _ in range(620):
        crc = zlib.crc32(bytes(2**20), crc)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.comment = b"optxform-sha256:" + b"0" * 64
        archive.writestr("optxform_state.json", json.dumps(meta))
        for name, content in members.items():
            if name.startswith("a") and name != "a1.npy":
                archive.writestr(name, content)
        info = zipfile.ZipInfo("a1.npy", (2026, 1, 1, 0, 0, 0))
        info.compress_type = zipfile.ZIP_DEFLATED
        archive.writestr(info, b"")  # placeholder, replaced below by the raw stream
    # Rebuild the archive with the raw deflate stream: patch sizes, crc and offsets.
    bomb = _zip_with_raw_member(buffer.getvalue(), "a1.npy", stream, crc,
                                len(header) + 620 * 2**20)
    bad = tmp_path / "bomb.ckpt"
    bad.write_bytes(_seal(bomb))
    assert 600_000 < bad.stat().st_size < 700_000  # a 604 KB file ...
    with zipfile.ZipFile(bad) as archive:  # ... that really holds 620 MiB
        assert archive.getinfo("a1.npy").file_size > 600 * 2**20
        with archive.open("a1.npy") as member:
            assert member.read(len(header)) == header
    tracemalloc.start()
    try:
        with pytest.raises(CheckpointError, match="'a1.npy' is compressed"):
            optxform.load_state(bad, template)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 16 * 2**20, peak


def _zip_with_raw_member(data: bytes, name: str, raw: bytes, crc: int, size: int) -> bytes:
    """``data`` (a zip whose member ``name`` is an empty deflated placeholder) with that
    member's compressed bytes replaced by ``raw`` and its headers patched to match."""
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        info = archive.getinfo(name)
        infos = archive.infolist()
    local = info.header_offset
    name_len, extra_len = (int.from_bytes(data[local + 26:local + 28], "little"),
                           int.from_bytes(data[local + 28:local + 30], "little"))
    start = local + 30 + name_len + extra_len
    end = start + info.compress_size
    grow = len(raw) - info.compress_size
    out = bytearray(data[:start] + raw + data[end:])
    fields = crc.to_bytes(4, "little") + len(raw).to_bytes(4, "little") \
        + size.to_bytes(4, "little")
    out[local + 14:local + 26] = fields
    position = out.index(b"PK\x01\x02", start + len(raw))
    for entry in infos:
        entry_name_len = int.from_bytes(out[position + 28:position + 30], "little")
        lengths = sum(int.from_bytes(out[position + k:position + k + 2], "little")
                      for k in (28, 30, 32))
        offset = int.from_bytes(out[position + 42:position + 46], "little")
        if out[position + 46:position + 46 + entry_name_len] == name.encode():
            out[position + 16:position + 28] = fields
        elif offset > local:
            out[position + 42:position + 46] = (offset + grow).to_bytes(4, "little")
        position += 46 + lengths
    end_record = out.rindex(b"PK\x05\x06")
    cd_offset = int.from_bytes(out[end_record + 16:end_record + 20], "little")
    out[end_record + 16:end_record + 20] = (cd_offset + grow).to_bytes(4, "little")
    return bytes(out)


def test_prng_keys_and_python_scalars_round_trip_exactly(tmp_path):
    assert not jax.config.jax_enable_x64
    keys = {"key": jax.random.key(7), "w": jnp.asarray([0.1, 0.2], jnp.float32),
            "keys": jax.random.split(jax.random.key(1, impl="rbg"), 3)}
    state = {**keys, "lr": 0.1, "steps": 3, "flag": True, "z": 1.5 - 2j,
             "host": np.asarray([0.1, 0.2])}
    path = tmp_path / "state.ckpt"
    optxform.save_state(path, state)
    loaded = optxform.load_state(path, state)
    _assert_bitwise_equal(loaded, state)
    assert loaded["lr"] == 0.1 and type(loaded["lr"]) is float  # not float32(0.1)
    assert loaded["host"].dtype == np.float64  # a numpy leaf is not cast by jax
    assert jax.random.key_impl(loaded["keys"]) == "rbg"
    np.testing.assert_array_equal(jax.random.uniform(loaded["key"], (4,)),
                                  jax.random.uniform(state["key"], (4,)))
    _assert_bitwise_equal(optxform.load_state_dict(state, optxform.state_dict(state)), state)
    # An abstract template (no memory allocated) gives keys back too.
    optxform.save_state(path, keys)
    _assert_bitwise_equal(optxform.load_state(path, jax.eval_shape(lambda: keys)), keys)
    with pytest.raises(ValueError, match="at 'key' the checkpoint has a PRNG key array "
                                         r"\(key<fry>\) where the template state has an array"):
        optxform.load_state(path, {**keys, "key": jnp.zeros(2, jnp.uint32)})


def test_sharded_checkpoints_keep_prng_keys(tmp_path):
    from jax.sharding import Mesh, NamedSharding, PartitionSpec

    mesh_a = Mesh(np.array(jax.devices()[:8]).reshape(8), ("x",))
    mesh_b = Mesh(np.array(jax.devices()[:4]).reshape(4), ("x",))
    state = {"keys": jax.random.split(jax.random.key(3), 8), "w": jnp.arange(8.0)}
    on_a = jax.device_put(state, NamedSharding(mesh_a, PartitionSpec("x")))
    optxform.save_sharded_state(tmp_path / "keys.ckpt", on_a)
    shardings = jax.tree.map(lambda _: NamedSharding(mesh_b, PartitionSpec("x")), state)
    restored = optxform.load_sharded_state(tmp_path / "keys.ckpt", jax.eval_shape(lambda: state),
                                           shardings)
    _assert_bitwise_equal(restored, state)
    assert restored["keys"].sharding == shardings["keys"]


def test_save_refuses_leaves_a_checkpoint_cannot_hold(tmp_path):
    with pytest.raises(ValueError, match="'name' has dtype <U3"):
        optxform.save_state(tmp_path / "s.ckpt", {"name": "abc", "w": jnp.ones(2)})
    assert not os.listdir(tmp_path)


# --- 4. checkpoint files behave like files -----------------------------------------------------


def _mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def test_files_get_the_umask_mode_or_keep_the_mode_they_replace(tmp_path):
    state = {"w": jnp.ones(3)}
    previous = os.umask(0o027)
    try:
        optxform.save_state(tmp_path / "new.ckpt", state)
        assert _mode(tmp_path / "new.ckpt") == 0o640
        os.umask(0o022)
        optxform.save_state(tmp_path / "other.ckpt", state)
        assert _mode(tmp_path / "other.ckpt") == 0o644
        os.chmod(tmp_path / "new.ckpt", 0o604)
        optxform.save_state(tmp_path / "new.ckpt", {"w": jnp.zeros(3)})
        assert _mode(tmp_path / "new.ckpt") == 0o604
    finally:
        os.umask(previous)
    _assert_bitwise_equal(optxform.load_state(tmp_path / "new.ckpt", state),
                          {"w": jnp.zeros(3)})


def test_saving_through_a_symlink_writes_the_target_and_keeps_the_link(tmp_path):
    (tmp_path / "runs").mkdir()
    target = tmp_path / "runs" / "step100.ckpt"
    link = tmp_path / "latest.ckpt"
    optxform.save_state(target, {"w": jnp.ones(2)})
    link.symlink_to(target)
    optxform.save_state(link, {"w": jnp.zeros(2)})
    assert link.is_symlink() and os.readlink(link) == str(target)
    _assert_bitwise_equal(optxform.load_state(target, {"w": jnp.ones(2)}), {"w": jnp.zeros(2)})
    # A dangling link gets its target created.
    dangling = tmp_path / "dangling.ckpt"
    dangling.symlink_to(tmp_path / "later" / "made.ckpt")
    optxform.save_state(dangling, {"w": jnp.ones(2)})
    assert dangling.is_symlink() and (tmp_path / "later" / "made.ckpt").is_file()


def test_names_up_to_the_filesystem_limit_and_missing_folders_work(tmp_path):
    limit = os.pathconf(tmp_path, "PC_NAME_MAX")
    state = {"w": jnp.arange(3.0)}
    for name in ("n" * limit, "é" * (limit // 2) + "x" * (limit % 2), "n" * (limit - 30)):
        assert len(os.fsencode(name)) <= limit
        path = tmp_path / "a" / "b" / name
        optxform.save_state(path, state)
        optxform.save_state(path, state)  # replacing works too
        _assert_bitwise_equal(optxform.load_state(path, state), state)
    assert sorted(os.listdir(tmp_path / "a" / "b")) == sorted(
        ["n" * limit, "é" * (limit // 2) + "x" * (limit % 2), "n" * (limit - 30)])
    with pytest.raises(OSError):
        optxform.save_state(tmp_path / ("n" * (limit + 1)), state)


_KILLED_SAVE = """
import importlib.util, os, signal, sys
spec = importlib.util.spec_from_file_location("atomic", sys.argv[1])
atomic = importlib.util.module_from_spec(spec)
spec.loader.exec_module(atomic)

def write(handle):
    handle.write(b"half a checkpoint")
    handle.flush()
    os.kill(os.getpid(), signal.SIGKILL)

atomic.write_atomically(sys.argv[2], write)
"""


def test_a_temp_file_left_by_a_killed_save_is_removed_by_the_next_save(tmp_path):
    path = tmp_path / "opt.ckpt"
    optxform.save_state(path, {"w": jnp.ones(2)})
    before = path.read_bytes()
    for _ in range(2):
        result = subprocess.run([sys.executable, "-c", _KILLED_SAVE, atomic.__file__,
                                 str(path)], capture_output=True)
        assert result.returncode == -9, result.stderr
        left = sorted(name for name in os.listdir(tmp_path) if name != "opt.ckpt")
        # Each killed save leaves its temporary file and removes the one before it.
        assert len(left) == 1 and left[0].startswith(".opt.ckpt."), left
    assert path.read_bytes() == before
    # A save in progress (its temporary file locked) is left alone.
    live = atomic._create_temp(str(tmp_path), atomic._temp_stem(str(tmp_path), "opt.ckpt"))
    try:
        with os.fdopen(live[0], "w+b") as handle:
            assert atomic._lock(handle.fileno(), blocking=False) is True
            optxform.save_state(path, {"w": jnp.zeros(2)})
            assert sorted(os.listdir(tmp_path)) == sorted(["opt.ckpt",
                                                           os.path.basename(live[1])])
    finally:
        os.unlink(live[1])
    _assert_bitwise_equal(optxform.load_state(path, {"w": jnp.ones(2)}), {"w": jnp.zeros(2)})
