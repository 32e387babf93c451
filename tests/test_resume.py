"""A run killed mid-task resumes: completed tasks are loaded (bit-identical), the rest continues."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from pbgan_testing import TINY

from pbgan.lifelong_file import load_lifelong_file, restore_generator

ROOT = Path(__file__).resolve().parent.parent
RUN = [
    *TINY,
    "~task_seq.tasks.seg2facade",
    "~task_seq.tasks.edges2bag",
    "data.train_size=32",
    "trainer.max_epochs=40",
]


def command(*extra: str) -> list[str]:
    return [sys.executable, "-m", "pbgan.run", *RUN, *extra]


def task_outputs(model: Path, task: int) -> torch.Tensor:
    payload = load_lifelong_file(model)
    net = restore_generator(payload["generators"]["generator"], payload["frozen_tasks"])
    net.set_task(task)
    torch.manual_seed(3)
    with torch.no_grad():
        return net(torch.rand(4, 3, 32, 32) * 2 - 1)


def test_run_killed_in_task_2_resumes_and_matches_an_uninterrupted_run(tmp_path: Path) -> None:
    run = tmp_path / "run"
    process = subprocess.Popen(
        command(f"hydra.run.dir={run}"), cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    checkpoint = run / "checkpoints" / "task2_map2aerial" / "last.ckpt"
    deadline = time.monotonic() + 900  # generous: a busy machine must not fail the test
    while not checkpoint.is_file() and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.3)
    process.kill()  # SIGKILL: no handler runs, whatever was being written stays half-written
    process.wait()
    if not checkpoint.is_file():
        pytest.fail("the run never reached a checkpoint in task 2")
    assert load_lifelong_file(run / "lifelong.pt")["frozen_tasks"] == 1  # killed inside task 2

    resumed = subprocess.run(
        command(f"resume={run}", f"hydra.run.dir={tmp_path / 'again'}"),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "tasks labels2street are done" in resumed.stdout
    assert "continuing task 2 from" in resumed.stdout
    assert load_lifelong_file(run / "lifelong.pt")["frozen_tasks"] == 2
    assert not (run / "checkpoints" / "task2_map2aerial").exists()

    clean = tmp_path / "clean"
    finished = subprocess.run(
        command(f"hydra.run.dir={clean}"), cwd=ROOT, capture_output=True, text=True, timeout=600
    )
    assert finished.returncode == 0, finished.stderr[-3000:]
    assert torch.equal(task_outputs(run / "lifelong.pt", 0), task_outputs(clean / "lifelong.pt", 0))


def test_resume_refuses_another_config(tmp_path: Path) -> None:
    run = tmp_path / "run"
    first = subprocess.run(
        command(f"hydra.run.dir={run}", "trainer.max_epochs=1"),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert first.returncode == 0, first.stderr[-2000:]
    other = subprocess.run(
        command("trainer.max_epochs=1", "ratio=0.5", f"resume={run}", f"hydra.run.dir={tmp_path / 'x'}"),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert other.returncode == 2
    assert "differs from the run's in ratio" in other.stderr
