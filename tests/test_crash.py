"""Fault injection: a run killed (SIGKILL) or stopped by a full disk at any moment resumes to the
uninterrupted run, bit for bit: the same results.json metrics, every tensor of lifelong.pt and
the same CSV log, with no temp file, lock holder or checkpoint left behind.

``PBGAN_FAULT`` (see :mod:`pbgan.faults`) picks the moment exactly, so each window between two
durable states is hit every time. A two-task run at tiny sizes with two epochs per task (two
batches each, so four training batches and two checkpoints per task).
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import torch
from pbgan_testing import ROOT, TINY, run_pbgan

from pbgan.lifelong_file import load_lifelong_file

RUN = [
    *TINY,
    "task_seq=synth_paired2",
    "trainer.max_epochs=2",
    "logger=csv",
]
# Recorded per process, not results: wall time, whether the classifier came from the cache and
# where the cache is.
UNTIMED = {"task_seconds", "cached", "path"}


def pbgan_run(
    *extra: str, fault: str | None = None, env: dict[str, str] | None = None, base: list[str] = RUN
) -> subprocess.CompletedProcess:
    environment = {**os.environ, **(env or {})}
    environment.pop("PBGAN_FAULT", None)
    if fault:
        environment["PBGAN_FAULT"] = fault
    return run_pbgan(*base, *extra, env=environment)


def csv_rows(path: Path) -> list[dict[str, str]]:
    """A CSV log's rows, each without its empty cells."""
    with open(path, newline="") as handle:
        return [{key: value for key, value in row.items() if value != ""} for row in csv.DictReader(handle)]


def without_time(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: without_time(item) for key, item in value.items() if key not in UNTIMED}
    if isinstance(value, list):
        return [without_time(item) for item in value]
    return value


def assert_equal_tree(a: Any, b: Any, where: str = "") -> None:
    """Equal values, tensors bit for bit (dtype and shape included)."""
    if isinstance(a, torch.Tensor):
        assert isinstance(b, torch.Tensor) and a.dtype == b.dtype and a.shape == b.shape, where
        assert torch.equal(a, b), f"tensor {where} differs"
    elif isinstance(a, dict):
        assert isinstance(b, dict) and set(a) == set(b), f"{where}: keys {sorted(a)} vs {sorted(b)}"
        for key in a:
            assert_equal_tree(a[key], b[key], f"{where}.{key}")
    elif isinstance(a, (list, tuple)):
        assert isinstance(b, (list, tuple)) and len(a) == len(b), f"{where}: lengths differ"
        for i, (x, y) in enumerate(zip(a, b)):
            assert_equal_tree(x, y, f"{where}[{i}]")
    else:
        assert a == b, f"{where}: {a!r} != {b!r}"


def assert_same_run(run: Path, reference: Path) -> None:
    """``run`` finished as ``reference`` did: metrics, every saved tensor, the CSV log; clean."""
    ours = json.loads((run / "results.json").read_text())
    theirs = json.loads((reference / "results.json").read_text())
    assert_equal_tree(without_time(ours), without_time(theirs), "results.json")
    assert (run / "results.csv").read_text() == (reference / "results.csv").read_text()
    model, ref_model = load_lifelong_file(run / "lifelong.pt"), load_lifelong_file(reference / "lifelong.pt")
    assert_equal_tree(without_time(model), without_time(ref_model), "lifelong.pt")
    log, ref_log = (folder / "logs" / "csv" / "metrics.csv" for folder in (run, reference))
    assert log.read_text() == ref_log.read_text(), "the CSV log differs from the uninterrupted run's"
    assert not (run / "checkpoints").exists()
    assert not [p for p in run.rglob("*.tmp")], "temp files were left behind"
    assert (run / ".pbgan" / "lock").read_text() == ""  # released, no holder recorded


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("crash") / "reference"
    done = pbgan_run(f"hydra.run.dir={folder}")
    assert done.returncode == 0, done.stderr[-3000:]
    return folder


def crash_and_resume(
    folder: Path, fault: str, env: dict[str, str] | None = None, extra: list[str] | tuple[str, ...] = ()
) -> subprocess.CompletedProcess:
    """Run with ``fault`` into ``folder``, then resume it (``extra``: overrides of both commands)."""
    crashed = pbgan_run(*extra, f"hydra.run.dir={folder}", fault=fault, env=env)
    if fault.endswith(":enospc"):
        assert crashed.returncode == 2, crashed.stderr[-3000:]
        assert "Traceback" not in crashed.stderr, crashed.stderr[-3000:]
        message = [line for line in crashed.stderr.splitlines() if line.startswith("error:")]
        assert len(message) == 1 and message[0].startswith("error: could not write "), crashed.stderr[-3000:]
        assert "No space left on device" in message[0] and message == crashed.stderr.strip().splitlines()[-1:]
    else:
        assert crashed.returncode == -signal.SIGKILL, crashed.stderr[-3000:]
    resumed = pbgan_run(*extra, f"resume={folder}", env=env)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    return resumed


# One fault per window between durable states runs in CI; the rest are marked slow.
FAST = [
    "train-batch@3",  # mid-epoch 2 of task 1
    "written:lifelong.pt@1",  # the new lifelong.pt complete in its temp file, not in place
    "write:last.ckpt@3:enospc",  # full disk while checkpointing task 2
]
SLOW = [
    "train-end@2",  # task 2 trained, not frozen (the damaged-lifelong.pt test resumes there too)
    "evaluation@2",  # evaluating after task 1
    "renamed:lifelong.pt@1",  # lifelong.pt in place, results.json not yet
    "train-batch@1",  # before any checkpoint
    "written:last.ckpt@1",  # the log saved for the first checkpoint, the checkpoint not in place
    "train-batch@7",
    "train-end@1",
    "evaluation@3",
    "write:lifelong.pt@2",
    "renamed:lifelong.pt@2",
    "stage-written@1",
    "write:last.ckpt@2",
    "written:last.ckpt@3",
    "renamed:last.ckpt@4",
    "write:metrics.csv@2",
    "written:results.json@1",
    "renamed:results.csv@2",
    "write:lifelong.pt@1:enospc",
    "write:results.json@2:enospc",
    "write:metrics.csv@3:enospc",
    "write:task1_labels2street.png@2:enospc",
]


@pytest.mark.parametrize("fault", FAST + [pytest.param(f, marks=pytest.mark.slow) for f in SLOW])
def test_crash_at_any_moment_resumes_to_the_uninterrupted_run(
    fault: str, reference: Path, tmp_path: Path
) -> None:
    run = tmp_path / "run"
    resumed = crash_and_resume(run, fault)
    if not fault.endswith(":enospc"):
        assert "which is gone: taking it over" in resumed.stdout
    assert_same_run(run, reference)


@pytest.mark.slow
def test_killed_while_the_classifier_trains(reference: Path, tmp_path: Path) -> None:
    cache = {"PBGAN_CACHE_DIR": str(tmp_path / "cache")}  # cold: the classifier must be trained
    crash_and_resume(tmp_path / "run", "classifier-epoch@1", env=cache)
    assert_same_run(tmp_path / "run", reference)


def test_a_damaged_checkpoint_is_set_aside_and_the_previous_one_used(reference: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    crashed = pbgan_run(f"hydra.run.dir={run}", fault="renamed:last.ckpt@4")  # task 2's last epoch saved
    assert crashed.returncode == -signal.SIGKILL
    last = run / "checkpoints" / "task2_map2aerial" / "last.ckpt"
    assert (last.parent / "previous.ckpt").is_file()
    data = bytearray(last.read_bytes())
    middle = len(data) // 2
    data[middle : middle + 4096] = os.urandom(4096)
    last.write_bytes(bytes(data))
    resumed = pbgan_run(f"resume={run}")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    output = resumed.stdout + resumed.stderr
    warning = [line for line in output.splitlines() if "last.ckpt is damaged" in line]
    assert len(warning) == 1 and warning[0].startswith("warning: ") and "fails its checksum" in warning[0]
    assert "previous.ckpt instead" in output
    assert (last.parent.parent.parent / "checkpoints").exists() is False  # task 2 finished
    assert_same_run(run, reference)


def damage(path: Path) -> None:
    """4 KB of random bytes in the middle of ``path``."""
    data = bytearray(path.read_bytes())
    middle = len(data) // 2
    data[middle : middle + 4096] = os.urandom(4096)
    path.write_bytes(bytes(data))


@pytest.mark.parametrize("stage", [2, pytest.param(1, marks=pytest.mark.slow)])
def test_a_damaged_lifelong_file_falls_back_to_the_previous_state(
    stage: int, reference: Path, tmp_path: Path
) -> None:
    """lifelong.pt damaged on disk after task ``stage`` was written: the run sets it aside and
    resumes from the previous file (none after task 1) and that task's kept checkpoint, to the
    uninterrupted run, retraining nothing."""
    run = tmp_path / "run"
    crashed = pbgan_run(f"hydra.run.dir={run}", fault=f"stage-written@{stage}")
    assert crashed.returncode == -signal.SIGKILL
    previous = run / ".pbgan" / "lifelong.previous.pt"
    assert previous.is_file() == (stage > 1)
    newest = run / "checkpoints" / ["task1_labels2street", "task2_map2aerial"][stage - 1]
    assert (newest / "last.ckpt").is_file()  # the written task keeps its trained checkpoint
    damage(run / "lifelong.pt")
    # A training batch beyond task 2's four (after task 1: none after task 2) kills the resume.
    resumed = pbgan_run(f"resume={run}", fault=f"train-batch@{4 * (2 - stage) + 1}")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    output = resumed.stdout + resumed.stderr
    warning = [line for line in output.splitlines() if "is not a readable lifelong model file" in line]
    assert len(warning) == 1 and warning[0].startswith("warning: "), output[-3000:]
    assert "fails its checksum" in warning[0] and "set aside as lifelong.pt.damaged" in warning[0]
    assert (run / "lifelong.pt.damaged").is_file()  # the user's bytes are kept, not deleted
    assert f"continuing task {stage} from" in output
    assert not previous.exists()  # a finished run keeps lifelong.pt alone
    assert_same_run(run, reference)


def test_a_damaged_lifelong_file_with_nothing_to_fall_back_on_is_named(
    reference: Path, tmp_path: Path
) -> None:
    run = tmp_path / "run"
    shutil.copytree(reference, run)
    damage(run / "lifelong.pt")
    resumed = pbgan_run(f"resume={run}")
    assert resumed.returncode == 2
    assert "Traceback" not in resumed.stderr
    message = resumed.stderr.strip().splitlines()[-1]
    assert message.startswith("error: ") and f"{run / 'lifelong.pt'} is not a readable" in message
    assert "no earlier copy to fall back on" in message
    assert (run / "lifelong.pt").is_file()  # left where it is


def test_a_second_process_in_the_same_folder_is_refused(tmp_path: Path) -> None:
    run = tmp_path / "run"
    first = subprocess.Popen(
        [sys.executable, "-m", "pbgan.run", *RUN, "trainer.max_epochs=400", f"hydra.run.dir={run}"],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        lock = run / ".pbgan" / "lock"
        deadline = time.monotonic() + 600
        while not (lock.is_file() and lock.read_text()) and time.monotonic() < deadline:
            assert first.poll() is None, "the first run ended early"
            time.sleep(0.1)
        second = pbgan_run(f"hydra.run.dir={run}")
        assert first.poll() is None, "the first run must still be going for this test to mean anything"
    finally:
        first.kill()
        first.wait()
    assert second.returncode == 2
    assert f"is in use by PID {first.pid} on host" in second.stderr
    assert "Traceback" not in second.stderr


def test_resumed_loggers_continue_the_same_runs(tmp_path: Path) -> None:
    """W&B resumes the run id fixed when the run began; TensorBoard writes on in its one folder;
    the CSV log is continued, not deleted."""
    run = tmp_path / "run"
    loggers = ("logger=many", "logger.wandb.name=crash")
    crashed = pbgan_run(f"hydra.run.dir={run}", *loggers, fault="train-batch@6")
    assert crashed.returncode == -signal.SIGKILL
    rows_before = csv_rows(run / "logs" / "csv" / "metrics.csv")
    assert len(rows_before) >= 2
    resumed = pbgan_run(f"resume={run}", *loggers)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    run_id = json.loads((run / ".pbgan" / "run.json").read_text())["wandb_id"]
    wandb_runs = sorted(p.name for p in (run / "wandb").glob("offline-run-*"))
    assert len(wandb_runs) == 2 and all(name.endswith(f"-{run_id}") for name in wandb_runs)
    assert {p.name for p in (run / "logs").iterdir()} == {"csv", "tensorboard"}  # no version_1
    assert len(list((run / "logs" / "tensorboard").glob("events.out.tfevents.*"))) >= 2  # both processes
    rows_after = csv_rows(run / "logs" / "csv" / "metrics.csv")
    # The columns grow as new keys are logged, so rows compare by their values.
    assert all(row in rows_after for row in rows_before), "rows logged before the kill are gone"
    # TensorBoard's event files are append-only records with checksums, not written atomically:
    # the killed process's file loads, and so does one cut inside its last record.
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    event_files = (run / "logs" / "tensorboard").glob("events.out.tfevents.*")
    killed = min(event_files, key=lambda path: path.stat().st_mtime)
    cut = tmp_path / "cut" / killed.name
    cut.parent.mkdir()
    cut.write_bytes(killed.read_bytes()[:-7])
    counts = []
    for events in (killed, cut):
        reader = EventAccumulator(str(events))
        reader.Reload()
        counts.append(sum(len(reader.Scalars(tag)) for tag in reader.Tags()["scalars"]))
    assert counts[0] >= 2 and counts[1] in (counts[0], counts[0] - 1), counts


def test_run_files_follow_the_umask(reference: Path) -> None:
    mask = os.umask(0)
    os.umask(mask)
    for name in ("results.json", "results.csv", "lifelong.pt", "logs/csv/metrics.csv", ".pbgan/config.yaml"):
        assert (reference / name).stat().st_mode & 0o777 == 0o666 & ~mask, name


@pytest.mark.slow
def test_an_extending_run_killed_before_its_first_new_task_is_written(
    reference: Path, tmp_path: Path
) -> None:
    """init_from: the resumed run loads the file's tasks again and continues the new task."""
    extend = [
        *[option for option in RUN if not option.startswith("task_seq=")],
        "task_seq=synth_paired4",
        "~task_seq.tasks.labels2street",
        "~task_seq.tasks.map2aerial",
        f"init_from={reference / 'lifelong.pt'}",
    ]
    clean = pbgan_run(f"hydra.run.dir={tmp_path / 'clean'}", base=extend)
    assert clean.returncode == 0, clean.stderr[-3000:]
    run = tmp_path / "run"
    crashed = pbgan_run(f"hydra.run.dir={run}", fault="train-batch@3", base=extend)
    assert crashed.returncode == -signal.SIGKILL
    resumed = pbgan_run(f"resume={run}", base=extend)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "continuing task 3 from" in resumed.stdout
    assert_same_run(run, tmp_path / "clean")


def test_a_cyclegan_task_resumed_mid_way_is_the_uninterrupted_run(tmp_path: Path) -> None:
    """CycleGAN's discriminators train on an image pool: the checkpoint carries it, so the resumed
    run draws the same history (an empty pool after the resume made the runs differ)."""
    cycle = [
        "model=cyclegan",
        "model.generator.ngf=4",
        "model.generator.n_blocks=1",
        "model.discriminator.ndf=4",
        "~task_seq.tasks.map2aerial",
        "trainer.max_epochs=3",
        "data.train_size=32",
    ]
    reference = tmp_path / "reference"
    done = pbgan_run(*cycle, f"hydra.run.dir={reference}")
    assert done.returncode == 0, done.stderr[-3000:]
    crash_and_resume(tmp_path / "run", "train-batch@20", extra=cycle)  # the pool holds 32 images then
    assert_same_run(tmp_path / "run", reference)


@pytest.mark.parametrize(
    "steps, fault",
    [
        (12, "train-batch@3"),  # three epochs of two batches; killed mid-epoch 2 of task 1
        pytest.param(10, "train-end@1", marks=pytest.mark.slow),  # max_steps stops mid-epoch 3
        pytest.param(10, "train-batch@5", marks=pytest.mark.slow),  # after epoch 2's checkpoint
        pytest.param(10, "train-batch@8", marks=pytest.mark.slow),  # mid-epoch 2 of task 2
    ],
)
def test_a_task_trained_by_max_steps_resumed_mid_way_is_the_uninterrupted_run(
    steps: int, fault: str, tmp_path: Path
) -> None:
    """With ``trainer.max_steps`` (iteration-based training) Lightning restarts the loop at the
    checkpoint's epoch end and handed the data sampler the epoch after the one to train: every
    epoch after the resume trained on another epoch's order."""
    extra = ["trainer.max_epochs=20", f"+trainer.max_steps={steps}"]
    reference = tmp_path / "reference"
    done = pbgan_run(*extra, f"hydra.run.dir={reference}")
    assert done.returncode == 0, done.stderr[-3000:]
    crash_and_resume(tmp_path / "run", fault, extra=extra)
    assert_same_run(tmp_path / "run", reference)
