"""What ``resume=`` accepts: the same command only, checked against the config pbgan recorded when
the run began (the crash tests in test_crash.py check what a resume produces)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from omegaconf import OmegaConf
from pbgan_testing import TINY, run_pbgan

from pbgan.store import config_changes

RUN = [
    *TINY,
    "~task_seq.tasks.seg2facade",
    "~task_seq.tasks.edges2bag",
    "data.train_size=32",
    "trainer.max_epochs=40",
]


def pbgan_run(*extra: str) -> subprocess.CompletedProcess:
    return run_pbgan(*RUN, *extra, timeout=600)


@pytest.mark.slow  # the same check as below, where Hydra also writes into the run's folder
def test_resume_refuses_another_config(tmp_path: Path) -> None:
    run = tmp_path / "run"
    first = pbgan_run(f"hydra.run.dir={run}", "trainer.max_epochs=1")
    assert first.returncode == 0, first.stderr[-2000:]
    other = pbgan_run("trainer.max_epochs=1", "ratio=0.5", f"resume={run}", f"hydra.run.dir={tmp_path / 'x'}")
    assert other.returncode == 2
    assert "differs from the run's in ratio" in other.stderr


def test_resume_in_the_run_folder_with_another_option_changes_nothing(tmp_path: Path) -> None:
    run = tmp_path / "run"
    first = pbgan_run(f"hydra.run.dir={run}", "trainer.max_epochs=1", "logger=csv")
    assert first.returncode == 0, first.stderr[-2000:]
    hydra_config = (run / ".hydra" / "config.yaml").read_text()
    log = (run / "logs" / "csv" / "metrics.csv").read_text()
    model = (run / "lifelong.pt").read_bytes()
    # Hydra writes this command's .hydra/ into the run folder before pbgan sees it: put back.
    other = pbgan_run(
        f"hydra.run.dir={run}", f"resume={run}", "trainer.max_epochs=1", "logger=csv", "ratio=0.5"
    )
    assert other.returncode == 2
    assert "differs from the run's in ratio" in other.stderr
    assert (run / ".hydra" / "config.yaml").read_text() == hydra_config
    # The original command still resumes the (finished) run, and its log is kept whole.
    again = pbgan_run(f"resume={run}", "trainer.max_epochs=1", "logger=csv")
    assert again.returncode == 0, again.stderr[-2000:]
    assert "tasks labels2street, map2aerial are done" in again.stdout
    assert (run / "logs" / "csv" / "metrics.csv").read_text() == log
    assert (run / "lifelong.pt").read_bytes() == model
    assert (run / ".hydra" / "config.yaml").read_text() == hydra_config


def test_a_resume_refuses_changed_values_not_the_same_value_written_another_way() -> None:
    """A config file that now writes a value as an interpolation of the same value (as the image
    folders' ``max_images: ${data.max_images}``, null) must not refuse runs begun before it; a
    value that changes is named once, where the command changed it."""
    saved = OmegaConf.create({"data": {"size": 8}, "task": {"max_images": None, "size": "${data.size}"}})
    rewritten = OmegaConf.create(
        {"data": {"size": 8, "max_images": None}, "task": {"max_images": "${data.max_images}", "size": 8}}
    )
    assert config_changes(saved, rewritten) == []
    changed = OmegaConf.create({"data": {"size": 16}, "task": {"max_images": None, "size": "${data.size}"}})
    assert config_changes(saved, changed) == ["data.size"]
    # an interpolation of a whole node against a node of other values: the values are compared
    schedule = OmegaConf.create(
        {"method": {"schedule": {"a": 1.0}, "family": {"schedule": "${method.schedule}"}}}
    )
    other = OmegaConf.create({"method": {"schedule": {"a": 1.0}, "family": {"schedule": {"a": 0.5}}}})
    assert config_changes(schedule, other) == ["method.family.schedule"]
    assert config_changes(other, schedule) == ["method.family.schedule"]
    same = OmegaConf.create({"method": {"schedule": {"a": 1.0}, "family": {"schedule": {"a": 1.0}}}})
    assert config_changes(schedule, same) == []
    gone = OmegaConf.create({"x": "${oc.env:PBGAN_TEST_SURELY_UNSET_VARIABLE}"})
    assert config_changes(gone, OmegaConf.create({"x": 1})) == ["x"]
    older = OmegaConf.create({"data": {"size": 8}, "task": {}})  # before the file gained max_images
    newer = OmegaConf.create(
        {"data": {"size": 8, "max_images": None}, "task": {"max_images": "${data.max_images}"}}
    )
    assert config_changes(older, newer) == []
    resumed = OmegaConf.create({"resume": "run", "a": 1})
    assert config_changes(OmegaConf.create({"resume": None, "a": 1}), resumed) == []
