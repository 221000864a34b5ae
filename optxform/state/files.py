"""Checkpoint files: save_state, load_state (safe format, checksums, atomic write).

File format (one file, so that one ``os.replace`` publishes it atomically): an uncompressed
``.npz`` (zip) archive holding

* ``a0.npy``, ``a1.npy``, ...: one plain ``.npy`` array per state leaf (never an object
  array; dtypes numpy cannot describe, such as bfloat16, are stored as unsigned-integer
  views of the same bytes);
* ``optxform_state.json``: ``{"format": "optxform-state", "version": 1, "structure":
  <the state's tree structure>, "leaves": [{"key", "member", "dtype", "shape", "sha256"},
  ...]}``, where ``key`` is the :func:`optxform.state_dict` key and ``sha256`` the digest
  of the array's raw bytes;
* as the zip comment (the file's last 80 bytes): ``optxform-sha256:<hex>``, the sha256 of
  every byte of the file before the hex digest.

``np.load(path)`` can read it for inspection. Reading here never unpickles anything
(``allow_pickle=False``): a member holding a pickled object is refused. Every array is
checked against its zip CRC and its sha256, so a flipped byte inside an array is reported
with that array's key; the whole-file digest then catches a flipped byte anywhere else
(zip headers, the structure description).
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import tempfile
import zipfile
from typing import Any

import jax.numpy as jnp
import numpy as np

from optxform.state.dict import _flatten, load_state_dict

__all__ = ["load_state", "save_state"]

FORMAT = "optxform-state"
VERSION = 1
META_MEMBER = "optxform_state.json"
_TRAILER_PREFIX = b"optxform-sha256:"
_DIGEST_LEN = 64  # hex characters of a sha256
_NATIVE_KINDS = "biufc"  # bool, signed, unsigned, float, complex: numpy's own .npy dtypes


def _sha256(array: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(array).tobytes()).hexdigest()


def _storable(array: np.ndarray) -> np.ndarray:
    """The array as numpy can write it without pickle (extension dtypes -> uint views)."""
    if array.dtype.kind in _NATIVE_KINDS and array.dtype.isnative:
        return array
    return np.ascontiguousarray(array).view(np.dtype(f"u{array.dtype.itemsize}"))


def _dtype_from_name(name: str) -> np.dtype:
    try:
        return np.dtype(jnp.dtype(name))
    except TypeError as err:
        raise ValueError(f"load_state: unknown dtype {name!r} in the checkpoint") from err


def _npy_bytes(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.lib.format.write_array(buffer, array, allow_pickle=False)
    return buffer.getvalue()


def _fsync_directory(directory: str) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return  # e.g. Windows: directories cannot be opened; the rename is still atomic
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def save_state(path: str | os.PathLike, state: Any) -> None:
    """Write ``state`` to ``path`` atomically, bit-exact, with a checksum per array.

    The state is copied to host memory, written to a temporary file in the same directory,
    flushed and ``fsync``-ed, then moved over ``path`` with ``os.replace``: a crash at any
    point leaves either the previous file or the new one, never a mix. The format is
    described in the module docstring; it contains no pickle. Torch equivalent:
    ``torch.save(optimizer.state_dict(), path)`` (which pickles).
    """
    path = os.fspath(path)
    keyed, treedef = _flatten(state)
    leaves_meta, members = [], []
    for index, (key, leaf) in enumerate(keyed):
        array = np.array(leaf, copy=True)
        if array.dtype.kind == "O":
            raise ValueError(f"save_state: state leaf {key!r} is not an array ({type(leaf)})")
        member = f"a{index}.npy"
        leaves_meta.append({"key": key, "member": member, "dtype": str(array.dtype),
                            "shape": list(array.shape), "sha256": _sha256(array)})
        members.append((member, _storable(array)))
    meta = {"format": FORMAT, "version": VERSION, "structure": str(treedef),
            "leaves": leaves_meta}
    meta_bytes = json.dumps(meta, indent=1).encode("utf-8")

    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp_path = tempfile.mkstemp(prefix=f".{os.path.basename(path)}.", suffix=".tmp",
                                    dir=directory)
    try:
        with os.fdopen(fd, "w+b") as handle:
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
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp_path, path)
    except BaseException:
        try:
            os.unlink(tmp_path)
        except OSError:
            pass
        raise
    _fsync_directory(directory)


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


def _check_file_digest(path: str) -> None:
    with open(path, "rb") as handle:
        size = handle.seek(0, os.SEEK_END)
        trailer_len = len(_TRAILER_PREFIX) + _DIGEST_LEN
        if size < trailer_len:
            raise ValueError(f"load_state: {path!r} is truncated")
        handle.seek(size - trailer_len)
        trailer = handle.read(trailer_len)
        if not trailer.startswith(_TRAILER_PREFIX):
            raise ValueError(f"load_state: {path!r} is corrupted or truncated: its "
                             f"whole-file checksum trailer is missing")
        expected = trailer[len(_TRAILER_PREFIX):].decode("ascii", errors="replace")
        if _file_digest(handle, size - _DIGEST_LEN) != expected:
            raise ValueError(
                f"load_state: {path!r} is corrupted outside the arrays (zip headers or the "
                f"structure description): the whole-file sha256 does not match")


def _write_member(archive: zipfile.ZipFile, member: str, array: np.ndarray) -> None:
    archive.writestr(member, _npy_bytes(array))


def _read_member(archive: zipfile.ZipFile, member: str, what: str, path: str) -> bytes:
    try:
        return archive.read(member)
    except KeyError as err:
        raise ValueError(f"load_state: {path!r} has no member {member!r} ({what})") from err
    except (zipfile.BadZipFile, OSError, EOFError, ValueError, RuntimeError) as err:
        raise ValueError(
            f"load_state: {path!r} is corrupted: {what} fails its integrity check ({err})"
        ) from err


def _read_checkpoint(path: str) -> tuple[dict, dict[str, np.ndarray]]:
    """The metadata and ``{key: array}`` of a checkpoint file, every array verified."""
    try:
        archive = zipfile.ZipFile(path, "r")
    except FileNotFoundError:
        raise
    except (zipfile.BadZipFile, OSError, EOFError, ValueError) as err:
        raise ValueError(
            f"load_state: {path!r} is not a readable optxform checkpoint (truncated, "
            f"corrupted, or another format): {err}") from err
    with archive:
        raw_meta = _read_member(archive, META_MEMBER, "the structure description", path)
        try:
            meta = json.loads(raw_meta.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as err:
            raise ValueError(f"load_state: {path!r} has an unreadable structure "
                             f"description: {err}") from err
        if not isinstance(meta, dict) or meta.get("format") != FORMAT:
            raise ValueError(f"load_state: {path!r} is not an optxform checkpoint")
        if meta.get("version") != VERSION:
            raise ValueError(f"load_state: {path!r} has format version "
                             f"{meta.get('version')!r}; this optxform reads {VERSION}")
        try:
            entries = [(str(e["key"]), str(e["member"]), str(e["dtype"]), list(e["shape"]),
                        str(e["sha256"])) for e in meta["leaves"]]
        except (KeyError, TypeError) as err:
            raise ValueError(f"load_state: {path!r} has a malformed structure "
                             f"description ({err!r})") from err
        listed = {member for _, member, _, _, _ in entries} | {META_MEMBER}
        unlisted = [name for name in archive.namelist() if name not in listed]
        if unlisted:
            raise ValueError(f"load_state: {path!r} holds an unexpected member "
                             f"{unlisted[0]!r} not described by its structure description")
        arrays = {}
        for key, member, dtype_name, shape, digest in entries:
            what = f"array {key!r} (member {member})"
            data = _read_member(archive, member, what, path)
            try:
                stored = np.lib.format.read_array(io.BytesIO(data), allow_pickle=False)
            except ValueError as err:
                raise ValueError(
                    f"load_state: {path!r}: {what} holds a pickled object or an "
                    f"unreadable array; refusing to load it ({err})") from err
            except Exception as err:  # noqa: BLE001 - any parse failure is corruption
                raise ValueError(f"load_state: {path!r} is corrupted: {what} cannot be "
                                 f"parsed ({err})") from err
            dtype = _dtype_from_name(dtype_name)
            if stored.dtype.kind == "O" or stored.dtype.itemsize != dtype.itemsize:
                raise ValueError(f"load_state: {path!r}: {what} has stored dtype "
                                 f"{stored.dtype}, inconsistent with {dtype_name}")
            array = stored.view(dtype) if stored.dtype != dtype else stored
            if list(array.shape) != shape:
                raise ValueError(f"load_state: {path!r}: {what} has shape {array.shape}, "
                                 f"its description says {tuple(shape)}")
            if _sha256(array) != digest:
                raise ValueError(f"load_state: {path!r} is corrupted: {what} does not match "
                                 f"its sha256 checksum")
            if key in arrays:
                raise ValueError(f"load_state: {path!r} lists key {key!r} twice")
            arrays[key] = array
    return meta, arrays


def load_state(path: str | os.PathLike, template_state: Any) -> Any:
    """Read a :func:`save_state` file into a state shaped like ``template_state``.

    ``template_state`` is the state of the optimizer being resumed (``tx.init(params)``, or
    ``jax.eval_shape(tx.init, params)`` to avoid allocating it). Raises ``ValueError``
    naming what is wrong if the file is truncated or corrupted (a damaged array is named by
    its key), contains a pickled object, was saved from another optimizer (a missing or
    unexpected key, or a different state structure) or from params of other shapes (shape
    or dtype mismatch, naming the key). Everything is verified before the state is built,
    so nothing is half-loaded. The round trip is bit-exact. Torch equivalent:
    ``optimizer.load_state_dict(torch.load(path))``.
    """
    path = os.fspath(path)
    meta, arrays = _read_checkpoint(path)
    _check_file_digest(path)
    keyed, treedef = _flatten(template_state)
    template_keys = [key for key, _ in keyed]
    if set(template_keys) == set(arrays) and meta.get("structure") != str(treedef):
        raise ValueError(
            f"load_state: {path!r} was saved from an optimizer with a different state "
            f"structure (same keys, other node types):\n  checkpoint: "
            f"{meta.get('structure')}\n  template:   {treedef}")
    try:
        return load_state_dict(template_state, arrays)
    except ValueError as err:
        raise ValueError(f"load_state: {path!r} does not fit the template state: "
                         f"{err}") from err
