"""Loggers: one offline W&B run per sequence, CSV without wandb, several loggers at once."""

from __future__ import annotations

import csv
import subprocess
import sys
from pathlib import Path

import pytest
from pbgan_testing import TINY, compose_config, wandb_history, wandb_records

from pbgan.sequence import run_sequence

ROOT = Path(__file__).resolve().parent.parent
TWO_TASKS = [
    "~task_seq.tasks.seg2facade",
    "~task_seq.tasks.edges2bag",
    "data.train_size=16",
    "trainer.log_every_n_steps=1",
]
NO_LOGGER = [option for option in TINY if not option.startswith("logger=")]


@pytest.fixture
def isolated_wandb(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for variable in ("WANDB_CONFIG_DIR", "WANDB_CACHE_DIR", "WANDB_DATA_DIR"):
        monkeypatch.setenv(variable, str(tmp_path / variable.lower()))
    monkeypatch.setenv("WANDB_SILENT", "true")
    monkeypatch.delenv("WANDB_MODE", raising=False)


def test_offline_wandb_run_holds_the_sequence(tmp_path: Path, isolated_wandb: None) -> None:
    run_sequence(compose_config([*TWO_TASKS, "logger=wandb"]), tmp_path / "run")
    runs = list((tmp_path / "run" / "wandb").glob("offline-run-*/run-*.wandb"))
    assert len(runs) == 1  # one run for the whole sequence, not one per task
    rows = wandb_history(runs[0])
    losses = [row for row in rows if "train/g" in row]
    task_of = {row["trainer/global_step"]: row["task"] for row in losses}
    first = [step for step, task in task_of.items() if task == 1]
    second = [step for step, task in task_of.items() if task == 2]
    assert first and second and min(second) > max(first)  # the step axis keeps counting
    evals = [row for row in rows if "eval/task1_labels2street/acc" in row]
    assert len(evals) == 2  # after task 1 and after task 2
    assert any("eval/task2_map2aerial/fid_domain" in row for row in rows)
    assert any(row.get("matrix/acc/_type") == "table-file" for row in rows)
    assert any(row.get("samples/task2_map2aerial/_type") == "images/separated" for row in rows)
    assert any("params/stored_task" in row for row in rows)
    configs = [record for kind, record in wandb_records(runs[0]) if kind == "config"]
    keys = {item.key for record in configs for item in record.config.update}
    assert "ratio" in keys and "task_seq/name" in keys


def test_csv_logger_works_where_wandb_cannot_be_imported(tmp_path: Path) -> None:
    overrides = [*NO_LOGGER, *TWO_TASKS, "logger=csv", f"hydra.run.dir={tmp_path}"]
    script = (
        "import sys; sys.modules['wandb'] = None; "  # any `import wandb` now raises ImportError
        f"sys.argv = ['pbgan.run', *{overrides!r}]; "
        "from pbgan.run import main; main()"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr[-3000:]
    with open(tmp_path / "logs" / "csv" / "metrics.csv") as handle:
        rows = list(csv.DictReader(handle))
    assert any(row.get("eval/task2_map2aerial/l1") for row in rows)
    assert any(row.get("train/g") for row in rows)


def test_several_loggers_at_once(tmp_path: Path) -> None:
    run_sequence(compose_config([*TWO_TASKS, "logger=[csv,tensorboard]"]), tmp_path)
    assert (tmp_path / "logs" / "csv" / "metrics.csv").is_file()
    assert list((tmp_path / "logs" / "tensorboard").glob("events.out.tfevents.*"))
    tidy = list(csv.DictReader(open(tmp_path / "results.csv")))
    assert {row["metric"] for row in tidy} >= {"l1", "psnr", "ssim", "acc", "fid_domain"}
    assert {row["stage"] for row in tidy} == {"0", "1", "2"}


def test_the_csv_log_appends_its_rows_and_a_failed_write_leaves_whole_rows(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A save adds its rows to the file (not a rewrite of every row logged so far, which made a
    long run's logging quadratic); new columns and a resume's dropped rows rewrite it; a write
    that fails (a full disk) leaves the file as it was, and the rows are saved by the next save."""
    import errno
    import os

    import pbgan.loggers
    from pbgan.io import WriteError
    from pbgan.loggers import DurableCSVWriter

    def rows() -> list[dict[str, str]]:
        with open(path, newline="") as handle:
            return list(csv.DictReader(handle))

    writer = DurableCSVWriter(str(tmp_path))
    path = tmp_path / "metrics.csv"
    writer.log_metrics({"loss": 1.5}, step=0)
    writer.save()
    inode = path.stat().st_ino
    writer.log_metrics({"loss": 1.25}, step=1)
    writer.save()
    assert path.stat().st_ino == inode  # appended in place, not replaced by a rewritten file
    assert rows() == [{"loss": "1.5", "step": "0"}, {"loss": "1.25", "step": "1"}]

    before = path.read_bytes()
    writer.log_metrics({"loss": 1.0}, step=2)

    def full_disk(fd: int) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(pbgan.loggers.os, "fsync", full_disk)
    with pytest.raises(WriteError, match="metrics.csv"):
        writer.save()
    assert path.read_bytes() == before  # the half-written rows are cut back
    monkeypatch.undo()
    writer.save()
    writer.log_metrics({"loss": 0.5, "fid": 3.0}, step=3)  # a new column: rewritten with it
    writer.save()
    assert [row["loss"] for row in rows()] == ["1.5", "1.25", "1.0", "0.5"]
    assert rows()[-1]["fid"] == "3.0" and rows()[0]["fid"] == ""
    assert writer.row_count == 4

    resumed = DurableCSVWriter(str(tmp_path), keep_rows=2)  # the durable state had logged two rows
    assert resumed.row_count == 2 and [row["loss"] for row in rows()] == ["1.5", "1.25"]
    resumed.log_metrics({"loss": 1.0}, step=2)
    resumed.save()
    assert [row["loss"] for row in rows()] == ["1.5", "1.25", "1.0"]


def test_the_csv_log_keeps_whole_rows_under_their_header_whatever_fails(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A disk that fills up part-way through an append (a short write, then an error), a rewrite
    for a new column that fails, and a process killed mid-row: the file keeps whole rows, each
    under the header its columns were written with, and later saves put every row in place."""
    import errno
    import os

    import pbgan.loggers
    from pbgan.io import WriteError
    from pbgan.loggers import DurableCSVWriter

    path = tmp_path / "metrics.csv"

    def rows() -> list[dict[str, str]]:
        with open(path, newline="") as handle:
            return list(csv.DictReader(handle))

    writer = DurableCSVWriter(str(tmp_path))
    writer.log_metrics({"loss": 1.5}, step=0)
    writer.save()
    before = path.read_bytes()

    real_write, calls = os.write, []

    def filling_disk(fd: int, data: bytes) -> int:  # room for 5 more bytes, then none
        calls.append(len(data))
        if len(calls) == 1:
            return real_write(fd, bytes(data[:5]))
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    writer.log_metrics({"loss": 1.25}, step=1)
    monkeypatch.setattr(os, "write", filling_disk)
    with pytest.raises(WriteError, match="metrics.csv"):
        writer.save()
    monkeypatch.undo()
    assert len(calls) == 2 and path.read_bytes() == before  # the 5 bytes written are cut back
    writer.save()
    assert rows() == [{"loss": "1.5", "step": "0"}, {"loss": "1.25", "step": "1"}]

    def failing_write_text(*args: object, **kwargs: object) -> None:
        raise WriteError(f"cannot write {path}: No space left on device")

    writer.log_metrics({"fid": 3.0, "loss": 1.0}, step=2)  # a new column: the file is rewritten
    monkeypatch.setattr(pbgan.loggers, "write_text", failing_write_text)
    with pytest.raises(WriteError):
        writer.save()
    monkeypatch.undo()
    writer.log_metrics({"fid": 2.0, "loss": 0.5}, step=3)
    writer.save()  # not an append under the old header: the rewrite is done now
    assert list(rows()[0]) == ["fid", "loss", "step"]
    assert [(row["fid"], row["loss"], row["step"]) for row in rows()] == [
        ("", "1.5", "0"),
        ("", "1.25", "1"),
        ("3.0", "1.0", "2"),
        ("2.0", "0.5", "3"),
    ]

    with open(path, "ab") as handle:  # a process killed while it appended a row
        handle.write(b"1.0,0.2")
    resumed = DurableCSVWriter(str(tmp_path))  # no durable state's row count: the cut row goes
    assert resumed.row_count == 4 and path.read_bytes().endswith(b"\n") and len(rows()) == 4
    resumed.log_metrics({"fid": 1.0, "loss": 0.25}, step=4)
    resumed.save()
    assert [row["loss"] for row in rows()] == ["1.5", "1.25", "1.0", "0.5", "0.25"]
