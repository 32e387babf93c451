"""Durable file writes: a crash at any instant leaves either the old file or the new one.

Every file pbgan writes goes through :func:`atomic_write`: a temp file beside the target (so the
rename never crosses a filesystem), written, flushed and fsynced, given the mode the user's umask
asks for, renamed over the target, and the folder fsynced so the rename itself survives a power
cut. A failed write (a full disk, an unwritable folder) removes its temp file and raises
:class:`WriteError`, one line naming the path; the previous file is untouched. A SIGKILL can leave
a temp file, which the next process to lock the run folder removes (:func:`remove_temp_files`).
Files ``torch.save`` wrote are zip archives with a CRC-32 per record: :func:`verify_archive`
checks every record, so a damaged model file or checkpoint is named before anything loads it.
"""

from __future__ import annotations

import functools
import json
import logging
import os
import tempfile
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pbgan.errors import PbganError
from pbgan.faults import fault_point

TEMP_SUFFIX = ".tmp"
DAMAGED_SUFFIX = ".damaged"

log = logging.getLogger(__name__)


class WriteError(PbganError):
    """A file could not be written (full disk, permissions); earlier files are intact."""


class DamagedFile(PbganError):
    """A file pbgan wrote no longer holds what was written (truncated, overwritten bytes)."""

    def __init__(self, path: Path, reason: str) -> None:
        super().__init__(f"{path} is damaged: {reason}")
        self.path = path
        self.reason = reason


@functools.cache
def _file_mode() -> int:
    """The mode a plain ``open(..., "w")`` would give: 0666 less the process's umask (read once:
    reading it means setting it, which other threads' files must not see more than once)."""
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


def _fsync_folder(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:  # some filesystems cannot open folders; the rename is still atomic
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def write_error(path: Path, error: OSError) -> WriteError:
    """One line naming the path, the reason and the way out."""
    reason = error.strerror or str(error)
    hint = {
        28: "free some space there (or point the run elsewhere)",  # ENOSPC
        122: "free some space there (the disk quota is reached)",  # EDQUOT
        13: "make the folder writable or pick another one",  # EACCES
        30: "the filesystem is read-only: pick another folder",  # EROFS
    }.get(error.errno or 0, "check the folder")
    return WriteError(f"could not write {path}: {reason}; {hint}. Every file written before is intact")


def _os_error_behind(error: BaseException) -> OSError | None:
    """The ``OSError`` an error was raised while handling (torch's zip writer, failing to write
    through a Python file, raises its own ``RuntimeError`` when it closes the archive)."""
    seen = set()
    while error is not None and id(error) not in seen:
        if isinstance(error, OSError):
            return error
        seen.add(id(error))
        error = error.__cause__ or error.__context__
    return None


def atomic_write(path: str | Path, write: Callable[[Path], None]) -> Path:
    """Call ``write(tmp_path)`` on a temp file beside ``path``, then rename it over ``path``."""
    path = Path(path)
    tmp: Path | None = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=TEMP_SUFFIX, dir=path.parent)
        os.close(fd)
        tmp = Path(tmp_name)
        fault_point(f"write:{path.name}")
        write(tmp)
        with open(tmp, "rb+") as handle:
            os.fsync(handle.fileno())
        os.chmod(tmp, _file_mode())  # mkstemp makes 0600; the user's umask decides
        fault_point(f"written:{path.name}")
        os.replace(tmp, path)
        tmp = None
        _fsync_folder(path.parent)
        fault_point(f"renamed:{path.name}")
    except OSError as error:
        raise write_error(path, error) from error
    except RuntimeError as error:  # torch.save's writer reports a failed write as RuntimeError
        cause = _os_error_behind(error)  # writing to a file: the OSError it ran into (save_torch)
        if cause is not None:
            raise write_error(path, cause) from error
        if "writ" not in str(error):
            raise
        raise write_error(path, OSError(0, "the write failed (is the disk full?)")) from error
    finally:
        if tmp is not None:
            tmp.unlink(missing_ok=True)
    return path


def write_torch(tmp: Path, obj: Any, save: Callable[[Any, Any], None] | None = None) -> None:
    """``save(obj)`` (default ``torch.save``; ``torch.jit.save`` for TorchScript) into ``tmp``
    through an open file. To a path, torch reports a full disk as an opaque ``RuntimeError``
    (``unexpected pos ...``), and TorchScript's writer aborts the whole process; through a file
    the failure is the ``OSError`` it is, which :func:`atomic_write` turns into the one-line
    :class:`WriteError`."""
    import torch

    with open(tmp, "wb") as handle:
        (save or torch.save)(obj, handle)


def save_torch(path: str | Path, obj: Any, save: Callable[[Any, Any], None] | None = None) -> Path:
    """:func:`write_torch` to ``path``, atomically."""
    return atomic_write(path, lambda tmp: write_torch(tmp, obj, save))


def write_json(path: str | Path, data: Any) -> Path:
    """Write ``data`` as indented JSON, atomically."""
    return write_text(path, json.dumps(data, indent=2, allow_nan=True) + "\n")


def write_text(path: str | Path, text: str) -> Path:
    """Write ``text`` atomically, UTF-8 encoded."""
    return atomic_write(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))


def is_temp_file(path: Path) -> bool:
    """A temp file :func:`atomic_write` makes (``.NAME.RANDOM.tmp``)."""
    return path.name.startswith(".") and path.name.endswith(TEMP_SUFFIX) and path.name.count(".") >= 3


def remove_temp_files(folder: str | Path, nested_runs: str | None = None) -> list[Path]:
    """Remove the temp files a killed process left under ``folder``; the ones removed.

    Only call this holding the folder's lock: then no other process is writing there. A
    subfolder holding ``nested_runs`` (a run's ``.pbgan``) is another run's folder, which its own
    process may be writing to: it is not searched."""
    removed = []
    for top, folders, files in os.walk(folder):
        if nested_runs is not None:
            folders[:] = [name for name in folders if not os.path.isdir(os.path.join(top, name, nested_runs))]
        folders.sort()
        for name in sorted(files):
            path = Path(top, name)
            if is_temp_file(path) and path.is_file():
                path.unlink(missing_ok=True)
                removed.append(path)
    return removed


def verify_archive(path: str | Path) -> None:
    """Check every record of a ``torch.save`` archive against its CRC-32; raises
    :class:`DamagedFile` naming the file and what is wrong."""
    path = Path(path)
    try:
        with zipfile.ZipFile(path) as archive:
            bad = archive.testzip()
    except (zipfile.BadZipFile, EOFError, ValueError) as error:
        raise DamagedFile(path, f"truncated or not an archive ({error})") from None
    except OSError as error:
        raise DamagedFile(path, f"it cannot be read ({error.strerror or error})") from None
    if bad is not None:
        record = bad.split("/", 1)[-1]  # inside the archive's folder, named after the temp file
        raise DamagedFile(path, f"its record {record} fails its checksum")


def set_damaged_aside(path: Path, error: object, then: str = "") -> Path:
    """Rename a damaged file ``NAME`` to ``NAME.damaged`` (kept, never deleted: the bytes are the
    user's) and say so in one warning line: the error, the new name and ``then``, what happens next.
    """
    aside = path.with_name(path.name + DAMAGED_SUFFIX)
    number = 1
    while aside.exists():  # an earlier damaged copy is the user's too: never replaced
        aside = path.with_name(f"{path.name}{DAMAGED_SUFFIX}.{number}")
        number += 1
    os.replace(path, aside)
    log.warning("warning: %s; set aside as %s%s", error, aside.name, f", {then}" if then else "")
    return aside
