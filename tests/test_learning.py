"""The generator really learns each task, and a run is reproducible from its seed."""

from __future__ import annotations

from pathlib import Path

from pbgan_testing import compose_config

from pbgan.sequence import run_sequence

# Two tasks, 32x32, 16-wide: 80 batches per task, a few seconds on 2 cores.
LEARNING = [
    "trainer.max_epochs=10",
    "data.train_size=64",
    "data.batch_size=8",
    "data.val_size=16",
    "eval.num_images=16",
    "model.generator.ngf=16",
    "model.discriminator.ndf=16",
    "~task_seq.tasks.seg2facade",
    "~task_seq.tasks.edges2bag",
]


def test_each_task_ends_clearly_below_its_untrained_l1(tmp_path: Path) -> None:
    results = run_sequence(compose_config(LEARNING), tmp_path)
    assert results["tasks"] == ["labels2street", "map2aerial"]
    for task, untrained in enumerate(results["untrained"]["l1"]):
        assert results["matrix"]["l1"][task][task] < 0.85 * untrained


def test_same_seed_same_results_other_seed_other_results(tmp_path: Path) -> None:
    quick = ["~task_seq.tasks.seg2facade", "~task_seq.tasks.edges2bag", "trainer.max_epochs=2"]
    first = run_sequence(compose_config(quick), tmp_path / "a")
    again = run_sequence(compose_config(quick), tmp_path / "b")
    other = run_sequence(compose_config([*quick, "seed=1"]), tmp_path / "c")
    assert first["matrix"] == again["matrix"]
    assert first["matrix"] != other["matrix"]
