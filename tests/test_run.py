"""End to end: the real configs through Hydra, results.json, the lifelong file, CLI errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from pbgan_testing import TINY, compose_config

from pbgan.lifelong_file import load_lifelong_file, restore_generator
from pbgan.sequence import run_sequence

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("run")
    returned = run_sequence(compose_config(["trainer.max_epochs=2"]), out)
    return out, returned


def test_results_json_holds_the_documented_fields(finished_run: tuple[Path, dict]) -> None:
    out, returned = finished_run
    results = json.loads((out / "results.json").read_text())
    assert results == json.loads(json.dumps(returned))
    tasks = results["tasks"]
    assert tasks == ["labels2street", "map2aerial", "seg2facade", "edges2bag"]
    assert (results["ratio"], results["method"], results["seed"]) == (0.25, "piggyback", 0)
    size = len(tasks)
    l1 = results["matrix"]["l1"]
    assert len(l1) == size and all(len(row) == size for row in l1)
    for i in range(size):
        for j in range(size):
            assert (l1[i][j] is None) == (j > i)
    params = results["params"]
    assert len(params["per_task"]) == size
    assert params["stored_total"] == sum(params["per_task"])
    assert params["standalone_total"] == size * params["per_task"][0]
    assert params["stored_total"] < params["standalone_total"]
    for layer, sizes in results["bank_sizes"].items():
        assert len(sizes) == size and sizes == sorted(sizes), layer
    change = results["forgetting"]["max_abs_change"]
    seen = [[value for value in row if value is not None] for row in change]
    assert seen == [[0.0] * (i + 1) for i in range(size)]
    # Piggyback keeps every old task exactly: its column never moves after its own stage.
    for j in range(size):
        assert len({l1[i][j] for i in range(j, size)}) == 1


def test_run_writes_samples_and_a_lifelong_file_that_reproduces_outputs(
    finished_run: tuple[Path, dict],
) -> None:
    out, results = finished_run
    grids = sorted(p.relative_to(out).as_posix() for p in (out / "samples").rglob("*.png"))
    assert len(grids) == 1 + 2 + 3 + 4
    assert "samples/after4_edges2bag/task1_labels2street.png" in grids
    payload = load_lifelong_file(out / "lifelong.pt")
    assert payload["frozen_tasks"] == 4
    assert [task["name"] for task in payload["tasks"]] == results["tasks"]
    generator = restore_generator(
        payload["generators"]["generator"], payload["frozen_tasks"], payload["version"]
    )
    assert generator.bank_sizes() == {k: v[-1] for k, v in results["bank_sizes"].items()}
    assert sum(p.numel() for p in generator.parameters()) == results["params"]["stored_total"]


def test_lifelong_file_refuses_a_pickled_object_that_would_run_code(tmp_path: Path) -> None:
    class Payload:
        def __reduce__(self):
            return (os.system, ("echo pwned > " + str(tmp_path / "pwned"),))

    bad = tmp_path / "evil.pt"
    torch.save({"format": "pbgan-lifelong", "version": 1, "x": Payload()}, bad)
    from pbgan.errors import PbganError

    with pytest.raises(PbganError, match="evil.pt"):
        load_lifelong_file(bad)
    assert not (tmp_path / "pwned").exists()


def run_cli(*overrides: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "pbgan.run", *TINY, f"hydra.run.dir={cwd}", *overrides],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["ratio=1.5"], "ratio=1.5 is not a share of filters: use a number in [0, 1]"),
        pytest.param(["ratio=-0.2"], "ratio=-0.2 is not a share of filters", marks=pytest.mark.slow),
        pytest.param(
            ["task_seq=no_such_seq"], "Could not find 'task_seq/no_such_seq'", marks=pytest.mark.slow
        ),
        (["method=no_such_method"], "Could not find 'method/no_such_method'"),
        (["data.image_size=48", "model.generator.num_downs=6"], "image size 48 cannot pass through a UNet"),
    ],
)
def test_bad_input_exits_non_zero_with_a_clear_message(
    overrides: list[str], message: str, tmp_path: Path
) -> None:
    result = run_cli(*overrides, cwd=tmp_path)
    assert result.returncode != 0
    assert message in result.stderr
    assert "Traceback" not in result.stderr


def test_ddp_sweep_with_the_basic_launcher_is_refused(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "pbgan.run", "-m", *TINY, "trainer=ddp", f"hydra.sweep.dir={tmp_path}"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 2
    assert "trainer=ddp in a multirun (-m) needs a launcher that starts one process" in result.stderr


def test_cli_trains_and_prints_the_matrix(tmp_path: Path) -> None:
    result = run_cli("task_seq=synth_paired4", cwd=tmp_path / "cli")
    assert result.returncode == 0, result.stderr[-2000:]
    assert "[pbgan] task 4/4: edges2bag" in result.stdout
    assert "l1 after \\ on" in result.stdout
    assert (tmp_path / "cli" / "results.json").is_file()
