"""Extend a lifelong model file with new tasks (init_from): old tasks stay bit-identical."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import torch
from pbgan_testing import TINY, compose_config

from pbgan.errors import PbganError
from pbgan.lifelong_file import load_lifelong_file, load_task_generator
from pbgan.sequence import run_sequence

ROOT = Path(__file__).resolve().parent.parent
FIRST = ["~task_seq.tasks.map2aerial", "~task_seq.tasks.seg2facade", "~task_seq.tasks.edges2bag"]
SECOND = ["~task_seq.tasks.labels2street", "~task_seq.tasks.seg2facade", "~task_seq.tasks.edges2bag"]
BOTH = ["~task_seq.tasks.seg2facade", "~task_seq.tasks.edges2bag"]
CYCLE = ["model=cyclegan", "model.generator.ngf=4", "model.generator.n_blocks=1", "model.discriminator.ndf=4"]


def outputs(model: Path, task: str, direction: str = "AtoB") -> torch.Tensor:
    net, _, _ = load_task_generator(model, task, direction)
    torch.manual_seed(5)
    with torch.no_grad():
        return net(torch.rand(3, 3, 32, 32) * 2 - 1)


@pytest.fixture(scope="module")
def first_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("first")
    run_sequence(compose_config(FIRST), out)
    return out / "lifelong.pt"


def test_extend_keeps_old_tasks_and_grows_the_bank_like_one_run(first_file: Path, tmp_path: Path) -> None:
    results = run_sequence(compose_config([*SECOND, f"init_from={first_file}"]), tmp_path / "extended")
    extended = tmp_path / "extended" / "lifelong.pt"
    assert results["tasks"] == ["labels2street", "map2aerial"]
    assert torch.equal(outputs(first_file, "labels2street"), outputs(extended, "labels2street"))
    # Checked inside the run too, on the probe images the first file kept: exactly unchanged.
    assert results["forgetting"]["max_abs_change"][1][0] == 0.0
    # The old task was not evaluated on data (the run has none of it), the new one was.
    assert results["matrix"]["acc"][1][0] is None and results["matrix"]["acc"][1][1] is not None
    assert results["extended_from"]["tasks"] == 1
    # Storage and bank growth are those of learning both tasks in one run.
    straight = run_sequence(compose_config(BOTH), tmp_path / "straight")
    assert results["params"]["per_task"] == straight["params"]["per_task"]
    assert results["bank_sizes"] == straight["bank_sizes"]
    assert any(sizes[1] > sizes[0] for sizes in results["bank_sizes"].values())
    payload = load_lifelong_file(extended)
    assert [task["name"] for task in payload["tasks"]] == ["labels2street", "map2aerial"]
    assert len(payload["probe_inputs"]) == 2  # a further extension can check both tasks


def test_extended_cyclegan_keeps_both_directions(tmp_path: Path) -> None:
    run_sequence(compose_config([*FIRST, *CYCLE]), tmp_path / "first")
    first = tmp_path / "first" / "lifelong.pt"
    results = run_sequence(compose_config([*SECOND, *CYCLE, f"init_from={first}"]), tmp_path / "ext")
    extended = tmp_path / "ext" / "lifelong.pt"
    for direction in ("AtoB", "BtoA"):
        assert torch.equal(outputs(first, "1", direction), outputs(extended, "1", direction))
    assert results["forgetting"]["max_abs_change"][1][0] == 0.0


def test_extend_refuses_what_cannot_fit(first_file: Path, tmp_path: Path) -> None:
    with pytest.raises(PbganError, match="already holds task.s. labels2street"):
        run_sequence(compose_config([*FIRST, f"init_from={first_file}"]), tmp_path / "clash")
    with pytest.raises(PbganError, match="holds a pix2pix model.*pass model=pix2pix"):
        run_sequence(compose_config([*SECOND, *CYCLE, f"init_from={first_file}"]), tmp_path / "model")
    with pytest.raises(PbganError, match=r"ratio: file 0.25, config 0.5 \(set ratio\)"):
        run_sequence(compose_config([*SECOND, "ratio=0.5", f"init_from={first_file}"]), tmp_path / "ratio")
    with pytest.raises(PbganError, match="init_from=.*missing.pt does not exist"):
        run_sequence(compose_config([*SECOND, f"init_from={tmp_path / 'missing.pt'}"]), tmp_path / "none")


def test_extend_cli_names_the_mismatched_option(first_file: Path, tmp_path: Path) -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pbgan.run",
            *TINY,
            *SECOND,
            "model.generator.ngf=8",
            f"init_from={first_file}",
            f"hydra.run.dir={tmp_path / 'run'}",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 2
    assert "ngf: file 4, config 8 (set model.generator.ngf" in result.stderr
    assert not (tmp_path / "run" / "lifelong.pt").exists()


def test_extend_refuses_settings_that_change_what_the_old_numbers_mean(
    first_file: Path, tmp_path: Path
) -> None:
    """The architecture matching is not enough: the method (methods sharing a layer family build
    the same generators), the image size and the probe protocol must match the file's too."""
    with pytest.raises(PbganError, match=r"computed its probe outputs with eval.protocol=eval.*pass eval"):
        run_sequence(
            compose_config([*SECOND, "eval.protocol=reference", f"init_from={first_file}"]), tmp_path / "p"
        )
    num_downs = load_lifelong_file(first_file)["generators"]["generator"]["node"]["num_downs"]
    with pytest.raises(PbganError, match=r"learned its tasks at 32 pixels.*pass data.image_size=32"):
        run_sequence(
            compose_config(
                [
                    *SECOND,
                    "data.image_size=64",
                    f"model.generator.num_downs={num_downs}",
                    f"init_from={first_file}",
                ]
            ),
            tmp_path / "size",
        )
    payload = load_lifelong_file(first_file)
    payload["results"]["method"] = "sft"
    other = tmp_path / "sft.pt"
    torch.save(payload, other)
    with pytest.raises(
        PbganError, match=r"trained with method=sft, this config trains with method=piggyback"
    ):
        run_sequence(compose_config([*SECOND, f"init_from={other}"]), tmp_path / "method")


@pytest.mark.parametrize("model", ["pix2pix", "cyclegan"])
def test_a_format_5_file_extends_with_its_tasks_exact(
    model: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Files of format 5 and before recorded their probes through ``F.instance_norm`` and
    ``F.conv_transpose2d``, where frozen tasks now run faster kernels that round differently: their
    tasks keep the kernels of then (legacy tasks), in the extended file too, so they stay exact."""
    from pbgan.lifelong import layers, subpixel

    extra = CYCLE if model == "cyclegan" else []
    with monkeypatch.context() as old_kernels:  # what pbgan of format 5 evaluated with
        old_kernels.setattr(subpixel, "subpixel_serves", lambda x: False)
        old_kernels.setattr(layers, "group_norm_serves", lambda device_type: False)
        run_sequence(compose_config([*FIRST, *extra]), tmp_path / "first")
    payload = torch.load(tmp_path / "first" / "lifelong.pt", weights_only=True)
    payload["version"] = 5
    for entry in payload["generators"].values():
        del entry["legacy_tasks"]
    old = tmp_path / "v5.pt"
    torch.save(payload, old)
    results = run_sequence(compose_config([*SECOND, *extra, f"init_from={old}"]), tmp_path / "ext")
    assert results["forgetting"]["max_abs_change"][1][0] == 0.0
    extended = load_lifelong_file(tmp_path / "ext" / "lifelong.pt")
    assert all(entry["legacy_tasks"] == 1 for entry in extended["generators"].values())
    # the new task runs the faster kernels, and a further extension keeps both tasks exact
    more = ["~task_seq.tasks.labels2street", "~task_seq.tasks.map2aerial", "~task_seq.tasks.edges2bag"]
    again = run_sequence(
        compose_config([*more, *extra, f"init_from={tmp_path / 'ext' / 'lifelong.pt'}"]), tmp_path / "again"
    )
    assert again["forgetting"]["max_abs_change"][2][:2] == [0.0, 0.0]
