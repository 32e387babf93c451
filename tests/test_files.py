"""The files pbgan writes beside a run: the run lock on a full disk, damaged files set aside."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest

from pbgan.io import WriteError, remove_temp_files, set_damaged_aside
from pbgan.lock import RunLock


def test_a_lock_that_cannot_be_written_is_a_write_error_and_lets_go(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def full_disk(*args: object) -> int:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    with monkeypatch.context() as patch:
        patch.setattr(os, "pwrite", full_disk)
        with pytest.raises(WriteError, match=r"could not write .*lock: No space left on device"):
            RunLock(tmp_path).acquire()
    RunLock(tmp_path).acquire().release()  # not held by the failed attempt


def test_a_damaged_file_set_aside_never_replaces_an_earlier_one(tmp_path: Path) -> None:
    path = tmp_path / "last.ckpt"
    for content in (b"first", b"second", b"third"):
        path.write_bytes(content)
        set_damaged_aside(path, "damaged")
    kept = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    assert kept == {
        "last.ckpt.damaged": b"first",
        "last.ckpt.damaged.1": b"second",
        "last.ckpt.damaged.2": b"third",
    }


def test_a_run_removes_its_own_temp_files_not_a_nested_runs(tmp_path: Path) -> None:
    """A killed process's temp files go when the next process takes the folder; a run folder
    nested inside it (its own ``.pbgan``) belongs to another process, which may be writing."""
    run = tmp_path / "run"
    ours = [run / ".lifelong.pt.a1b2.tmp", run / "checkpoints" / "t1" / ".last.ckpt.c3d4.tmp"]
    theirs = run / "sweep" / "0" / ".lifelong.pt.e5f6.tmp"
    kept = [run / ".notes.tmp", run / "data.tmp"]  # not pbgan's temp-file pattern
    (run / ".pbgan").mkdir(parents=True)
    (run / "sweep" / "0" / ".pbgan").mkdir(parents=True)
    for path in [*ours, theirs, *kept]:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"x")
    assert sorted(remove_temp_files(run, nested_runs=".pbgan")) == sorted(ours)
    assert theirs.exists() and all(path.exists() for path in kept)
    assert not any(path.exists() for path in ours)
