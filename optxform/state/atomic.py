"""Writing a file atomically, the way a user expects a saved file to behave.

:func:`write_atomically` writes through a temporary file in the target's directory,
flushed and ``fsync``-ed, then moved over the target with ``os.replace``: a crash at any
point leaves either the previous file or the new one, never a mix. Besides:

* the file gets the mode a plain ``open(path, "wb")`` would give it: the existing file's
  mode when it replaces one, otherwise ``0o666`` less the process umask;
* a symlink is followed: its target is replaced and the link kept;
* names up to the filesystem's limit work (the temporary name is shortened to fit);
* a temporary file abandoned by a killed writer is removed by the next write to the same
  path (a live writer holds a lock on its temporary file, so it is never removed; where
  files cannot be locked, nothing is removed);
* missing parent folders are created.
"""

from __future__ import annotations

import os
import secrets
import stat
from typing import BinaryIO, Callable

try:
    import fcntl
except ImportError:  # Windows: an open file cannot be removed anyway
    fcntl = None

__all__ = ["write_atomically"]

_TOKEN_LEN = 16  # hex characters of the random part of a temporary name
_TMP_SUFFIX = ".tmp"


def _name_max(directory: str) -> int:
    try:
        return os.pathconf(directory, "PC_NAME_MAX")
    except (AttributeError, OSError, ValueError):
        return 255


def _temp_stem(directory: str, name: str) -> str:
    """``".<name>."``, ``name`` shortened so that stem + token + suffix fits the limit."""
    room = _name_max(directory) - 2 - _TOKEN_LEN - len(_TMP_SUFFIX)
    encoded = os.fsencode(name)
    return "." + os.fsdecode(encoded[:max(room, 1)]) + "."


def _is_temp_of(candidate: str, stem: str) -> bool:
    token = candidate[len(stem):len(candidate) - len(_TMP_SUFFIX)]
    return (candidate.startswith(stem) and candidate.endswith(_TMP_SUFFIX)
            and len(token) == _TOKEN_LEN and all(c in "0123456789abcdef" for c in token))


def _lock(fd: int, blocking: bool) -> bool | None:
    """Take an exclusive lock on ``fd``: ``True`` if taken, ``False`` if another process
    holds one, ``None`` where files cannot be locked (Windows, some network filesystems)."""
    if fcntl is None:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | (0 if blocking else fcntl.LOCK_NB))
    except BlockingIOError:
        return False
    except OSError:
        return None
    return True


def _remove_abandoned(directory: str, stem: str) -> None:
    """Remove temporary files of this target that no live writer holds."""
    try:
        names = os.listdir(directory)
    except OSError:
        return
    for candidate in names:
        if not _is_temp_of(candidate, stem):
            continue
        full = os.path.join(directory, candidate)
        try:
            fd = os.open(full, os.O_RDONLY)
        except OSError:
            continue
        try:
            if _lock(fd, blocking=False) is True:  # no live writer holds it
                os.unlink(full)
        except OSError:
            pass
        finally:
            os.close(fd)


def _create_temp(directory: str, stem: str) -> tuple[int, str]:
    flags = os.O_RDWR | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0) \
        | getattr(os, "O_CLOEXEC", 0)
    while True:
        path = os.path.join(directory, stem + secrets.token_hex(_TOKEN_LEN // 2) + _TMP_SUFFIX)
        try:
            return os.open(path, flags, 0o666), path  # the umask applies, as for open()
        except FileExistsError:
            continue


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


def write_atomically(path: str | os.PathLike, write: Callable[[BinaryIO], None]) -> None:
    """Call ``write(handle)`` on a fresh binary file (readable too), then publish it at
    ``path`` atomically (see the module docstring). If ``write`` raises, the temporary file
    is removed and ``path`` is left as it was."""
    target = os.path.realpath(os.fspath(path))
    directory, name = os.path.split(target)
    os.makedirs(directory, exist_ok=True)
    try:
        mode = stat.S_IMODE(os.stat(target).st_mode)
    except FileNotFoundError:
        mode = None
    stem = _temp_stem(directory, name)
    _remove_abandoned(directory, stem)
    fd, tmp_path = _create_temp(directory, stem)
    try:
        with os.fdopen(fd, "w+b") as handle:
            _lock(handle.fileno(), blocking=True)
            if mode is not None:
                os.chmod(tmp_path, mode)
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
            if fcntl is not None:  # publish while still holding the lock
                os.replace(tmp_path, target)
        if fcntl is None:
            os.replace(tmp_path, target)
    except BaseException:
        try:
            os.unlink(tmp_path)
        except OSError:
            pass
        raise
    _fsync_directory(directory)
