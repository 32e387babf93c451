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
            "piggyback",
            "pf",
            "mask",
            "progressive",
            "sft",
            "ewc",
            "lifelong_gan",
            "full",
        ]
    if experiment.startswith("ablation_ratio"):
        assert params["ratio"] == ["0", "0.25", "0.5", "0.75", "1"]


def test_every_documented_experiment_exists() -> None:
    assert len(EXPERIMENTS) == 14


VARIANTS = sorted(path.stem for path in (CONF / "variant").glob("*.yaml"))


def test_efficiency_sweeps_every_variant_over_two_seeds() -> None:
    params = sweep_params("efficiency")
    assert sorted(params["+variant"]) == VARIANTS and params["seed"] == ["0", "1"]
    assert {"full", "piggyback", "pf", "mask", "lite", "lite_int8"} <= set(VARIANTS)


@pytest.mark.parametrize("variant", VARIANTS)
def test_every_variant_builds_its_generator(variant: str) -> None:
    from pbgan.build import method_family
    from pbgan.config import validate_config

    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        cfg = compose(config_name="config", overrides=["+experiment=efficiency", f"+variant={variant}"])
    validate_config(cfg)
    method_family(cfg)  # the family's options are checked when it is made
    assert cfg.storage.dtype in ("float32", "float16", "bfloat16", "int8")


def test_piggyback_lite_stores_under_a_tenth_of_a_model_per_new_task() -> None:
    """The recommended setting's budget, counted on the generator the cpu scale builds."""
    from pbgan.build import method_family
    from pbgan.lifelong.family import PlainFamily
    from pbgan.networks import UNetGenerator

    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        cfg = compose(config_name="config", overrides=["method=piggyback_lite", "storage.dtype=float16"])
    ngf, downs = int(cfg.model.generator.ngf), 6  # 64x64 images: six halvings
    model = sum(p.numel() for p in UNetGenerator(PlainFamily(), num_downs=downs, ngf=ngf).parameters())
    net = UNetGenerator(method_family(cfg), num_downs=downs, ngf=ngf)
    for task in range(4):
        net.add_task()
        net.end_task()
        net.compress_task(task, cfg.storage.dtype)
        if task:  # and with float16 storage at most 0.05 of the model's float32 bytes
            assert net.stored_parameters(task) <= 0.10 * model
            assert net.stored_bytes(task) <= 0.05 * 4 * model
