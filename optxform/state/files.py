"""Checkpoint files: save_state, load_state (safe format, checksums, atomic write).

File format (one file, so that one ``os.replace`` publishes it atomically): an uncompressed
``.npz`` (zip) archive holding

* ``a0.npy``, ``a1.npy``, ...: one plain ``.npy`` array (version 1.0 header) per array of
  :func:`optxform.state_dict` (never an object array; dtypes numpy cannot describe, such
  as bfloat16, are stored as unsigned-integer views of the same bytes);
* ``optxform_state.json``: ``{"format": "optxform-state", "version": 2, "structure":
  [[key, kind, [child, ...]], ...], "leaves": [{"key", "member", "dtype", "shape",
  "sha256"}, ...]}``, where ``structure`` is the state's node types
  (:mod:`optxform.state.structure`), ``key`` the :func:`optxform.state_dict` key and
  ``sha256`` the digest of the array's raw bytes;
* as the zip comment (the file's last 80 bytes): ``optxform-sha256:<hex>``, the sha256 of
  every byte of the file before the hex digest.

``np.load(path)`` can read it for inspection. Reading checks, in this order, and raises
:class:`CheckpointError` at the first failure:

1. the whole-file sha256, streamed, before anything is parsed (when it fails, the file is
   still examined with the checks below, only to name the damaged array in the message);
2. the zip directory: every member stored (never compressed), not encrypted, inside the
   file, listed once in the description, and nothing else;
3. the description: JSON of the shape above, dtypes numeric (``object`` is refused),
   shapes of non-negative integers;
4. each member, before it is read: its size must be exactly its ``.npy`` header plus
   shape times itemsize; then its header must be the one :func:`save_state` writes for
   that dtype and shape, and its bytes must match their sha256.

Nothing is decompressed or unpickled, and no member is read before its size is known to
fit inside the file, so the memory used is bounded by the file's size whatever the file
holds. Format version 1 files (``structure`` as a string) are still read.
"""

from __future__ import annotations

import hashlib
import io
import json
import math
import os
import re
import zipfile
from typing import Any

import jax.numpy as jnp
import numpy as np

from optxform.state.atomic import write_atomically
from optxform.state.dict import STRUCTURE_KEY, decode_structure, load_arrays, state_dict
from optxform.state.errors import CheckpointError
from optxform.state.keys import keyed_leaves
from optxform.state.structure import Node, structure_from_json

__all__ = ["load_state", "save_state"]

FORMAT = "optxform-state"
VERSION = 2
READS_VERSIONS = (1, 2)
META_MEMBER = "optxform_state.json"
_TRAILER_PREFIX = b"optxform-sha256:"
_DIGEST_LEN = 64  # hex characters of a sha256
_TRAILER_LEN = len(_TRAILER_PREFIX) + _DIGEST_LEN
_HEX = re.compile(r"[0-9a-f]{64}")
_DTYPE_NAME = re.compile(r"[a-z][a-z0-9_]*")  # canonical names: float32, bfloat16, int4, ...
_MAX_NDIM = 32
_DIGEST_MISMATCH = ("is corrupted: the whole-file sha256 does not match (damage outside the "
                    "arrays: a zip header or the structure description)")


def _checkpoint_dtype(name: str) -> np.dtype | None:
    """The dtype called ``name`` if a checkpoint may hold it (bool and numbers), else None."""
    if not _DTYPE_NAME.fullmatch(name):
        return None
    try:
        dtype = np.dtype(jnp.dtype(name))
    except (TypeError, ValueError):
        return None
    if str(dtype) != name or dtype.hasobject or not (
            dtype.kind in "biufc" or jnp.issubdtype(dtype, jnp.number)):
        return None
    return dtype


def _storage_dtype(dtype: np.dtype) -> np.dtype:
    """The dtype of the ``.npy`` member: ``dtype`` itself, or an unsigned view for dtypes
    numpy's format cannot describe (bfloat16, float8, int4)."""
    return dtype if dtype.kind in "biufc" else np.dtype(f"u{dtype.itemsize}")


def _npy_header(dtype: np.dtype, shape: tuple[int, ...]) -> bytes:
    buffer = io.BytesIO()
    np.lib.format.write_array_header_1_0(
        buffer, {"descr": np.lib.format.dtype_to_descr(dtype), "fortran_order": False,
                 "shape": tuple(shape)})
    return buffer.getvalue()


def _stored(array: np.ndarray) -> np.ndarray:
    """The array as its ``.npy`` member holds it (C order, storage dtype)."""
    return np.require(array, requirements="C").view(_storage_dtype(array.dtype))


def _npy_bytes(array: np.ndarray) -> bytes:
    stored = _stored(array)
    return _npy_header(stored.dtype, array.shape) + stored.tobytes()


def _write_member(archive: zipfile.ZipFile, member: str, array: np.ndarray) -> None:
    archive.writestr(member, _npy_bytes(array))


def _file_digest(handle, length: int) -> str:
    """The sha256 hex digest of the first ``length`` bytes of an open binary file."""
    handle.seek(0)
    digest, remaining = hashlib.sha256(), length
    while remaining > 0:
        chunk = handle.read(min(remaining, 1 << 20))
        if not chunk:
            break
        digest.update(chunk)
        remaining -= len(chunk)
    return digest.hexdigest()


def save_state(path: str | os.PathLike, state: Any) -> None:
    """Write ``state`` to ``path`` atomically, bit-exact, with a checksum per array.

    The state is copied to host memory, written to a temporary file in the same directory,
    flushed and ``fsync``-ed, then moved over ``path`` with ``os.replace``: a crash at any
    point leaves either the previous file or the new one, never a mix (a temporary file
    left by a killed process is removed by the next save to that path). The file gets the
    mode ``open(path, "wb")`` would give it (the replaced file's mode, else the umask's);
    a symlink at ``path`` is followed and kept; missing parent folders are created. The
    format is described in the module docstring; it contains no pickle. Raises
    ``ValueError`` if a leaf is not a bool or numeric array (or Python scalar, or PRNG
    key). Torch equivalent: ``torch.save(optimizer.state_dict(), path)`` (which pickles).

    Args:
      path: the file to write (a string or path-like).
      state: an optimizer state (a pytree of arrays), on any devices.

    Returns:
      None; the file at ``path`` holds the state when the call returns.

    Example::

        >>> import jax, jax.numpy as jnp, optxform
        >>> tx = optxform.adam(0.1)
        >>> params = {"w": jnp.ones(2)}
        >>> _, state = tx.update({"w": jnp.array([1.0, -1.0])}, tx.init(params), params)
        >>> optxform.save_state("opt.ckpt", state)
        >>> restored = optxform.load_state("opt.ckpt", jax.eval_shape(tx.init, params))
        >>> restored["adam"].mu
        {'w': Array([ 0.1, -0.1], dtype=float32)}
    """
    flat = state_dict(state)
    structure = decode_structure(flat.pop(STRUCTURE_KEY))
    leaves_meta, members = [], []
    for index, (key, array) in enumerate(flat.items()):
        if _checkpoint_dtype(str(array.dtype)) is None:
            raise ValueError(f"save_state: state leaf {key!r} has dtype {array.dtype}; a "
                             f"checkpoint holds only bool and numeric arrays")
        member = f"a{index}.npy"
        leaves_meta.append({"key": key, "member": member, "dtype": str(array.dtype),
                            "shape": list(array.shape),
                            "sha256": hashlib.sha256(_stored(array).tobytes()).hexdigest()})
        members.append((member, array))
    meta = {"format": FORMAT, "version": VERSION,
            "structure": [[key, kind, list(children)] for key, kind, children in structure],
            "leaves": leaves_meta}
    meta_bytes = json.dumps(meta, indent=1).encode("utf-8")

    def write(handle) -> None:
        with zipfile.ZipFile(handle, "w", compression=zipfile.ZIP_STORED) as archive:
            archive.comment = _TRAILER_PREFIX + b"0" * _DIGEST_LEN
            archive.writestr(META_MEMBER, meta_bytes)
            for member, array in members:
                _write_member(archive, member, array)
        handle.flush()
        size = handle.seek(0, os.SEEK_END)
        digest = _file_digest(handle, size - _DIGEST_LEN)
        handle.seek(size - _DIGEST_LEN)
        handle.write(digest.encode("ascii"))

    write_atomically(path, write)


# --- reading ---------------------------------------------------------------------------------


def _digest_problem(handle, size: int) -> str | None:
    """What is wrong with the whole-file checksum, or ``None`` if it matches."""
    if size < _TRAILER_LEN:
        return "is not an optxform checkpoint, or is truncated: it is too short"
    handle.seek(size - _TRAILER_LEN)
    trailer = handle.read(_TRAILER_LEN)
    if not trailer.startswith(_TRAILER_PREFIX):
        return ("is not an optxform checkpoint, or is truncated or corrupted: it does not "
                "end with its whole-file checksum")
    expected = trailer[len(_TRAILER_PREFIX):]
    if not _HEX.fullmatch(expected.decode("ascii", errors="replace")):
        return "is corrupted: its whole-file checksum is not a sha256 digest"
    if _file_digest(handle, size - _DIGEST_LEN).encode("ascii") != expected:
        return _DIGEST_MISMATCH
    return None


def _read(archive: zipfile.ZipFile, info: zipfile.ZipInfo, what: str, path: str) -> bytes:
    try:
        return archive.read(info)
    except Exception as err:  # noqa: BLE001 - any failure to read a member is damage
        raise CheckpointError(f"load_state: {path!r} is corrupted: {what} cannot be read "
                              f"({type(err).__name__}: {err})") from err


def _local_header_agrees(handle, info: zipfile.ZipInfo) -> bool:
    """Whether the member's local header also says: stored, not encrypted."""
    handle.seek(info.header_offset)
    local = handle.read(30)
    return (len(local) == 30 and local[:4] == b"PK\x03\x04"
            and int.from_bytes(local[8:10], "little") == zipfile.ZIP_STORED
            and not local[6] & 0x1)


def _members(archive: zipfile.ZipFile, handle, size: int,
             path: str) -> dict[str, zipfile.ZipInfo]:
    """The zip members by name, each checked to be stored, plain and inside the file."""
    members: dict[str, zipfile.ZipInfo] = {}
    for info in archive.infolist():
        name = info.filename
        if info.compress_type != zipfile.ZIP_STORED:
            raise CheckpointError(
                f"load_state: {path!r}: member {name!r} is compressed (method "
                f"{info.compress_type}); a checkpoint holds only stored members")
        if info.flag_bits & 0x1:
            raise CheckpointError(f"load_state: {path!r}: member {name!r} is encrypted")
        if (info.compress_size != info.file_size or info.header_offset < 0
                or info.header_offset + info.file_size > size):
            raise CheckpointError(f"load_state: {path!r} is corrupted: member {name!r} "
                                  f"claims {info.file_size} bytes that the file cannot hold")
        if not _local_header_agrees(handle, info):
            raise CheckpointError(f"load_state: {path!r}: the local header of member "
                                  f"{name!r} disagrees with the zip directory (it must "
                                  f"be stored, not encrypted)")
        if name in members:
            raise CheckpointError(f"load_state: {path!r} holds member {name!r} twice")
        members[name] = info
    return members


def _field(entry: dict, name: str, kind: type, path: str) -> Any:
    value = entry.get(name) if isinstance(entry, dict) else None
    if not isinstance(value, kind):
        raise CheckpointError(f"load_state: {path!r} has a malformed structure description: "
                              f"an array entry has no valid {name!r} ({entry!r:.200})")
    return value


def _entries(meta: dict, path: str) -> list[tuple[str, str, np.dtype, tuple[int, ...], str]]:
    """``(key, member, dtype, shape, sha256)`` per array of the description, validated."""
    leaves = meta.get("leaves")
    if not isinstance(leaves, list):
        raise CheckpointError(f"load_state: {path!r} has a malformed structure description: "
                              f"no list of arrays")
    entries, keys, members = [], set(), {META_MEMBER}
    for entry in leaves:
        key = _field(entry, "key", str, path)
        member = _field(entry, "member", str, path)
        dtype_name = _field(entry, "dtype", str, path)
        shape = _field(entry, "shape", list, path)
        digest = _field(entry, "sha256", str, path)
        dtype = _checkpoint_dtype(dtype_name)
        if dtype is None:
            raise CheckpointError(f"load_state: {path!r}: array {key!r} has dtype "
                                  f"{dtype_name!r:.80}; a checkpoint holds only bool and "
                                  f"numeric arrays")
        if (len(shape) > _MAX_NDIM
                or not all(type(n) is int and n >= 0 for n in shape)):
            raise CheckpointError(f"load_state: {path!r}: array {key!r} has an invalid "
                                  f"shape {shape!r:.200}")
        if not _HEX.fullmatch(digest):
            raise CheckpointError(f"load_state: {path!r}: array {key!r} has an invalid "
                                  f"sha256 {digest!r:.80}")
        if key in keys or key == STRUCTURE_KEY or member in members:
            raise CheckpointError(f"load_state: {path!r} lists key {key!r} or member "
                                  f"{member!r} twice (or a reserved one)")
        keys.add(key)
        members.add(member)
        entries.append((key, member, dtype, tuple(shape), digest))
    return entries


def _array(archive: zipfile.ZipFile, info: zipfile.ZipInfo, key: str, dtype: np.dtype,
           shape: tuple[int, ...], digest: str, path: str) -> np.ndarray:
    """One array, its size checked before it is read, its header and sha256 after."""
    what = f"array {key!r} (member {info.filename})"
    stored_dtype = _storage_dtype(dtype)
    header = _npy_header(stored_dtype, shape)
    count = math.prod(shape)
    expected = len(header) + count * stored_dtype.itemsize
    if info.file_size != expected:
        raise CheckpointError(
            f"load_state: {path!r}: {what} holds {info.file_size} bytes, but a {dtype} "
            f"array of shape {shape} takes {expected}")
    data = _read(archive, info, what, path)
    if data[:len(header)] != header:
        raise CheckpointError(
            f"load_state: {path!r}: {what} does not hold a plain {dtype} array of shape "
            f"{shape} (a pickled object or a damaged .npy header); refusing it")
    if hashlib.sha256(memoryview(data)[len(header):]).hexdigest() != digest:
        raise CheckpointError(f"load_state: {path!r} is corrupted: {what} does not match "
                              f"its sha256 checksum")
    array = np.frombuffer(data, stored_dtype, count=count, offset=len(header))
    return array.reshape(shape).view(dtype)


def _parse(handle, size: int, path: str) -> tuple[list[Node] | str, dict[str, np.ndarray]]:
    """The structure description and ``{key: array}`` of an open checkpoint file."""
    try:
        archive = zipfile.ZipFile(handle)
    except Exception as err:  # noqa: BLE001 - zipfile raises many kinds on bad input
        raise CheckpointError(f"load_state: {path!r} is not a readable zip archive "
                              f"({type(err).__name__}: {err})") from err
    with archive:
        members = _members(archive, handle, size, path)
        if META_MEMBER not in members:
            raise CheckpointError(f"load_state: {path!r} has no member {META_MEMBER!r}: it "
                                  f"is not an optxform checkpoint")
        raw = _read(archive, members[META_MEMBER], "the structure description", path)
        try:
            meta = json.loads(raw.decode("utf-8"))
        except Exception as err:  # noqa: BLE001 - bad UTF-8, bad JSON, nesting too deep
            raise CheckpointError(f"load_state: {path!r} has an unreadable structure "
                                  f"description ({type(err).__name__})") from err
        if not isinstance(meta, dict) or meta.get("format") != FORMAT:
            raise CheckpointError(f"load_state: {path!r} is not an optxform checkpoint")
        version = meta.get("version")
        if type(version) is not int or version not in READS_VERSIONS:
            raise CheckpointError(f"load_state: {path!r} has format version {version!r:.40}; "
                                  f"this optxform reads versions {READS_VERSIONS}")
        structure: list[Node] | str = meta.get("structure")
        try:
            if version == 1:
                if not isinstance(structure, str):
                    raise ValueError("the structure description is not a string")
            else:
                structure = structure_from_json(structure)
        except ValueError as err:
            raise CheckpointError(f"load_state: {path!r}: {err}") from err
        entries = _entries(meta, path)
        listed = {member for _, member, _, _, _ in entries} | {META_MEMBER}
        unlisted = [name for name in members if name not in listed]
        if unlisted:
            raise CheckpointError(f"load_state: {path!r} holds an unexpected member "
                                  f"{unlisted[0]!r:.200} not described by its structure "
                                  f"description")
        absent = [member for member in listed if member not in members]
        if absent:
            raise CheckpointError(f"load_state: {path!r} has no member {absent[0]!r}")
        arrays = {key: _array(archive, members[member], key, dtype, shape, digest, path)
                  for key, member, dtype, shape, digest in entries}
    return structure, arrays


def _read_checkpoint(path: str) -> tuple[list[Node] | str, dict[str, np.ndarray]]:
    """The structure description and ``{key: array}`` of a checkpoint, all verified."""
    with open(path, "rb") as handle:
        size = handle.seek(0, os.SEEK_END)
        problem = _digest_problem(handle, size)
        if problem is None:
            return _parse(handle, size, path)
        if problem is _DIGEST_MISMATCH:
            try:  # only to name the damaged array, if the damage is in one
                _parse(handle, size, path)
            except CheckpointError as err:
                raise CheckpointError(f"{err} (its whole-file sha256 does not match "
                                      f"either)") from None
        raise CheckpointError(f"load_state: {path!r} {problem}")


def load_state(path: str | os.PathLike, template_state: Any) -> Any:
    """Read a :func:`save_state` file into a state shaped like ``template_state``.

    ``template_state`` is the state of the optimizer being resumed (``tx.init(params)``, or
    ``jax.eval_shape(tx.init, params)`` to avoid allocating it). Raises
    :class:`CheckpointError` (a ``ValueError``) if the file is not an intact checkpoint:
    truncated, corrupted (a damaged array is named by its key), another format, or crafted
    (compressed members, sizes that disagree with the shapes, a pickled or ``object``
    array); the checks are listed in the module docstring. Raises ``ValueError`` naming
    the first difference if the checkpoint is intact but from another optimizer (other
    state types, even with the same keys, or other keys) or from other params (a missing
    or unexpected key, or a shape or dtype mismatch naming the key). Everything is
    verified before the state is built, so nothing is half-loaded. The round trip is
    bit-exact, PRNG keys and Python scalars included. Torch equivalent:
    ``optimizer.load_state_dict(torch.load(path))``.

    Args:
      path: a file written by :func:`save_state` (a string or path-like).
      template_state: a state of the optimizer being resumed, concrete or abstract; it
        gives the structure, shapes and dtypes.

    Returns:
      A state with the structure of ``template_state`` holding the saved arrays
        (jax arrays, or the template's kind of leaf).

    Example::

        >>> import jax, jax.numpy as jnp, optxform
        >>> tx = optxform.adam(0.1)
        >>> params = {"w": jnp.ones(2)}
        >>> optxform.save_state("opt.ckpt", tx.init(params))
        >>> state = optxform.load_state("opt.ckpt", jax.eval_shape(tx.init, params))
        >>> state["adam"].count
        Array(0, dtype=int32)
        >>> optxform.load_state("opt.ckpt", optxform.sgd(0.1, momentum=0.9).init(params))
        Traceback (most recent call last):
        ...
        ValueError: load_state: 'opt.ckpt': the checkpoint is from another optimizer ...
    """
    path = os.fspath(path)
    structure, arrays = _read_checkpoint(path)
    caller = f"load_state: {path!r}"
    if isinstance(structure, str):  # format version 1: the treedef's text
        keyed, treedef = keyed_leaves(template_state)
        if {key for key, _ in keyed} == set(arrays) and structure != str(treedef):
            raise ValueError(
                f"{caller}: the checkpoint is from an optimizer with a different state "
                f"structure (same keys, other node types):\n  checkpoint: {structure}\n"
                f"  template:   {treedef}")
        structure = None
    return load_arrays(template_state, arrays, structure, caller=caller, source="checkpoint")
