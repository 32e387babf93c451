"""Every study config composes, and sweeps what the README says it sweeps."""

from __future__ import annotations

from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir

CONF = Path(__file__).resolve().parent.parent / "conf"
EXPERIMENTS = sorted(path.stem for path in (CONF / "experiment").glob("*.yaml"))


def sweep_params(experiment: str) -> dict[str, list[str]]:
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        cfg = compose(config_name="config", overrides=[f"+experiment={experiment}"], return_hydra_config=True)
    return {key: str(value).split(",") for key, value in cfg.hydra.sweeper.params.items()}


@pytest.mark.parametrize("experiment", EXPERIMENTS)
def test_experiment_composes_with_a_sweep(experiment: str) -> None:
    params = sweep_params(experiment)
    assert params, f"{experiment} sweeps nothing"
    if experiment.startswith("compare_"):
        # every method the paper compares: the exact ones, those that forget, and the standalone models
        assert params["method"] == [
            "piggyback", "pf", "mask", "progressive", "sft", "ewc", "lifelong_gan", "full"
        ]
    if experiment.startswith("ablation_ratio"):
        assert params["ratio"] == ["0", "0.25", "0.5", "0.75", "1"]


def test_every_documented_experiment_exists() -> None:
    assert len(EXPERIMENTS) == 12
