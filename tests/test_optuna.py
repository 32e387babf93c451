"""objective and hydra/sweeper=optuna: a tiny multi-objective study through the CLI, read by the
report like any sweep."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from pbgan_testing import TINY, compose_config, run_pbgan

from pbgan.config import check_objective_directions, validate_config
from pbgan.errors import ConfigError
from pbgan.report import load_runs, methods_table, write_report
from pbgan.results import ContinualResults, objective_value
from pbgan.run import objectives
from pbgan.sequence import run_sequence


def test_a_tiny_optuna_study_returns_its_objectives_and_the_report_reads_it(tmp_path: Path) -> None:
    pytest.importorskip("hydra_plugins.hydra_optuna_sweeper")
    study = tmp_path / "study"
    done = run_pbgan(
        "-m",
        "+experiment=tune_ratio",
        *TINY,
        "hydra.sweeper.n_trials=3",
        "hydra.sweeper.sampler.population_size=2",
        f"hydra.sweep.dir={study}",
    )
    assert done.returncode == 0, done.stderr[-3000:]
    runs = load_runs(study)
    assert len(runs) == 3
    assert all(0.0 <= run.ratio <= 1.0 for run in runs)  # NSGA-II may draw a ratio twice
    best = yaml.safe_load((study / "optimization_results.yaml").read_text())
    assert best["name"] == "optuna" and best["solutions"]
    # each solution's values are the objectives its run returned: [fid, new_task_share]
    by_ratio = {round(run.ratio, 12): run.results for run in runs}
    for solution in best["solutions"]:
        values = solution["values"]
        matches = [
            r
            for r in by_ratio.values()
            if objective_value(r, "fid") == pytest.approx(values[0])
            and objective_value(r, "new_task_share") == pytest.approx(values[1])
        ]
        assert matches, (
            solution,
            {k: (objective_value(r, "fid"), r.new_task_share()) for k, r in by_ratio.items()},
        )
    assert len(methods_table(runs)) == 3
    # the sweep page plots FID against ratio although the trials move the learning rate too
    page = write_report(study).files["report.html"].read_text()
    assert ("<h2>FID against ratio" in page) == (len({run.ratio for run in runs}) > 1)


def test_objectives_are_checked_before_any_work() -> None:
    validate_config(compose_config(["objective=[fid,new_task_share]"]))
    validate_config(compose_config(["objective=kid_domain"]))
    with pytest.raises(ConfigError, match="objective 'fid'"):
        validate_config(compose_config(["objective=fid", "eval.metrics=[l1]"]))
    with pytest.raises(ConfigError, match="objective 'sharpness'"):
        validate_config(compose_config(["objective=sharpness"]))


def test_objective_values_are_the_results_figures() -> None:
    results = ContinualResults(
        tasks=["a", "b"], domains=["x", "y"], ratio=0.25, method="piggyback", seed=0, model="m"
    )
    results.record_metrics(0, 0, {"fid_domain": 4.0, "l1": 0.5})
    results.record_stage(100, 400, {}, 1.0)
    results.record_metrics(1, 0, {"fid_domain": 4.0, "l1": 0.5})
    results.record_metrics(1, 1, {"fid_domain": 2.0, "l1": 0.3})
    results.record_stage(25, 100, {}, 1.0)
    results.higher_is_better.update({"fid_domain": False, "l1": False})
    assert objective_value(results, "fid") == 3.0 == objective_value(results, "fid_domain")
    assert objective_value(results, "l1") == pytest.approx(0.4)
    assert objective_value(results, "new_task_share") == 0.25
    assert objective_value(results, "stored_share") == pytest.approx(125 / 200)


def test_a_sweeper_direction_that_makes_an_objective_worse_is_refused() -> None:
    check = check_objective_directions
    check(compose_config(["objective=acc"]), "maximize")
    check(compose_config(["objective=[fid,new_task_share]"]), ["minimize", "minimize"])
    check(compose_config(["objective=acc"]), None)  # the basic launcher: no direction
    with pytest.raises(ConfigError, match=r"direction=minimize for objective 'acc'.*use maximize"):
        check(compose_config(["objective=acc"]), "minimize")
    with pytest.raises(ConfigError, match=r"direction\[1\]=maximize for objective 'new_task_share'"):
        check(compose_config(["objective=[psnr,new_task_share]"]), ["maximize", "maximize"])
    with pytest.raises(ConfigError, match="returns 2 value"):
        check(compose_config(["objective=[fid,new_task_share]"]), "minimize")
    with pytest.raises(ConfigError, match="objective 'accuracy' is not measured"):  # not "use minimize"
        check(compose_config(["objective=accuracy"]), "maximize")


def test_a_one_name_objective_list_returns_a_number_as_a_one_objective_study_needs() -> None:
    results = ContinualResults(tasks=["a"], domains=["x"], ratio=0.25, method="piggyback", seed=0, model="m")
    results.record_metrics(0, 0, {"acc": 0.75})
    results.record_stage(100, 400, {}, 1.0)
    results.higher_is_better["acc"] = True
    assert objectives(compose_config(["objective=[acc]"]), results) == 0.75
    assert objectives(compose_config(["objective=acc"]), results) == 0.75
    share = objective_value(results, "stored_share")
    assert objectives(compose_config(["objective=[acc,stored_share]"]), results) == [0.75, share]


def test_optunas_default_direction_against_a_higher_is_better_objective_stops_before_training(
    tmp_path: Path,
) -> None:
    pytest.importorskip("hydra_plugins.hydra_optuna_sweeper")
    study = tmp_path / "study"
    done = run_pbgan(
        "-m",
        "hydra/sweeper=optuna",  # direction: minimize unless given
        "objective=acc",
        *TINY,
        "hydra.sweeper.n_trials=1",
        f"hydra.sweep.dir={study}",
    )
    assert done.returncode != 0
    assert "hydra.sweeper.direction=minimize for objective 'acc'" in done.stderr
    assert not list(study.rglob("lifelong.pt")) and not list(study.rglob("*.ckpt"))


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["task_seq=synth_unpaired4", "objective=psnr"], "no task of task_seq=synth_unpaired4"),
        (
            ["task_seq=synth_paired2", "~task_seq.tasks.map2aerial", "objective=new_task_share"],
            "use stored_share",
        ),
    ],
)
def test_an_objective_the_sequence_cannot_measure_stops_before_training(
    overrides: list[str], message: str, tmp_path: Path
) -> None:
    with pytest.raises(ConfigError, match=message):
        run_sequence(compose_config(overrides), tmp_path / "run")
    assert not (tmp_path / "run" / "lifelong.pt").exists()
    assert not list((tmp_path / "run").rglob("*.ckpt"))
