"""What ``resume=`` accepts: the same command only, checked against the config pbgan recorded when
the run began (the crash tests in test_crash.py check what a resume produces)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

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


def test_resume_in_the_run_folder_with_another_option_changes_nothing(tmp_path: Path) -> None:
    run = tmp_path / "run"
    first = subprocess.run(
        command(f"hydra.run.dir={run}", "trainer.max_epochs=1", "logger=csv"),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert first.returncode == 0, first.stderr[-2000:]
    hydra_config = (run / ".hydra" / "config.yaml").read_text()
    log = (run / "logs" / "csv" / "metrics.csv").read_text()
    model = (run / "lifelong.pt").read_bytes()
    # Hydra writes this command's .hydra/ into the run folder before pbgan sees it: put back.
    other = subprocess.run(
        command(f"hydra.run.dir={run}", f"resume={run}", "trainer.max_epochs=1", "logger=csv", "ratio=0.5"),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert other.returncode == 2
    assert "differs from the run's in ratio" in other.stderr
    assert (run / ".hydra" / "config.yaml").read_text() == hydra_config
    # The original command still resumes the (finished) run, and its log is kept whole.
    again = subprocess.run(
        command(f"resume={run}", "trainer.max_epochs=1", "logger=csv"),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert again.returncode == 0, again.stderr[-2000:]
    assert "tasks labels2street, map2aerial are done" in again.stdout
    assert (run / "logs" / "csv" / "metrics.csv").read_text() == log
    assert (run / "lifelong.pt").read_bytes() == model
    assert (run / ".hydra" / "config.yaml").read_text() == hydra_config
