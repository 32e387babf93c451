"""One process per run folder: ``RUN/.pbgan/lock`` is held (an OS file lock) while a run uses it.

The lock is ``flock`` on an open file, so the OS releases it the moment its process dies,
however it dies. The file records who holds it (PID, host, start time): a second process is
refused at once with that, and a process that finds the file of one that is gone takes the lock
over with a note.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import socket
import time
from pathlib import Path

from pbgan.errors import PbganError
from pbgan.io import write_error

log = logging.getLogger(__name__)


class RunInUse(PbganError):
    """Another process is using the run folder."""


class RunLock:
    """Exclusive use of a run folder by this process, until :meth:`release` or exit."""

    def __init__(self, folder: str | Path) -> None:
        self.folder = Path(folder)
        self.path = self.folder / ".pbgan" / "lock"
        self._fd: int | None = None

    def acquire(self) -> RunLock:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o666)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            holder = self._holder(fd)
            os.close(fd)
            raise RunInUse(
                f"{self.folder} is in use by {holder}: wait for it to finish (or stop it), "
                "or give this run another folder"
            ) from None
        previous = self._holder(fd, default="")  # cleared on release: only a dead process leaves one
        me = {"pid": os.getpid(), "host": socket.gethostname(), "since": time.strftime("%Y-%m-%d %H:%M:%S")}
        if previous:
            log.info("[pbgan] %s was left locked by %s, which is gone: taking it over", self.folder, previous)
        try:
            os.ftruncate(fd, 0)
            os.pwrite(fd, (json.dumps(me) + "\n").encode(), 0)
            os.fsync(fd)
        except OSError as error:  # a full disk: the lock is let go, the run does not start
            os.close(fd)
            raise write_error(self.path, error) from error
        self._fd = fd
        return self

    @staticmethod
    def _read(fd: int) -> dict:
        try:
            return json.loads(os.pread(fd, 4096, 0).decode() or "{}")
        except (ValueError, OSError):
            return {}

    def _holder(self, fd: int, default: str = "another process") -> str:
        info = self._read(fd)
        if "pid" not in info:
            return default
        return f"PID {info['pid']} on host {info.get('host', '?')} (since {info.get('since', '?')})"

    def release(self) -> None:
        if self._fd is not None:
            os.ftruncate(self._fd, 0)  # a clean exit leaves no holder to take over from
            os.close(self._fd)  # closing the descriptor drops the lock
            self._fd = None
