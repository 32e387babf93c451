"""Bad options and data are refused before any work, in one line naming the option or file."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from pbgan_testing import TINY, compose_config
from PIL import Image

from datamodules.folders import AlignedDataModule
from pbgan.config import validate_config
from pbgan.errors import ConfigError
from pbgan.sequence import (
    check_image_sizes,
    check_val_size,
    instantiate_data,
    task_specs,
    unused_data_options,
)

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("seed=abc", r"seed='abc' must be a whole number"),
        ("seed=1.5", r"seed=1.5 must be a whole number"),
        ("trainer.max_epochs=0", r"trainer.max_epochs=0 trains nothing: use at least 1"),
        ("+trainer.max_steps=1", r"trainer.max_steps=1 trains no batch"),
        ("model.generator.ngf=0", r"model.generator.ngf=0 must be a whole number of at least 1"),
        ("model.discriminator.ndf=-2", r"model.discriminator.ndf=-2 must be a whole number of at least 1"),
        ("seed=-1", r"seed=-1 must be a whole number of 0 or more"),
        ("eval.sample_images=-1", r"eval.sample_images=-1 must be a whole number of 0 or more"),
        ("metrics.kid.subsets=0", r"metrics.kid.subsets=0 must be a whole number of at least 1"),
        ("metrics.kid.subset_size=0", r"metrics.kid.subset_size=0 must be a whole number of at least 1"),
        ("+metrics.classifier.bogus=1", r"metrics.classifier.bogus is not a classifier setting: use "),
        ("metrics.classifier.epochs=0", r"metrics.classifier.epochs=0 must be a whole number of at least 1"),
        ("trainer.max_epochs=null", r"trainer.max_epochs=null with no trainer.max_steps would train"),
        ("data.skip_bad_images=maybe", r"data.skip_bad_images='maybe' is a switch: use true or false"),
        ("speed.compile=yes", r"speed.compile='yes' is a switch: use true or false"),
        ("metrics.classifier.augment=1", r"metrics.classifier.augment=1 is a switch: use true or false"),
        ("method=ewc method.plugin.online=no", r"method.plugin.online='no' is a switch"),
    ],
)
def test_impossible_options_are_named(override: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        validate_config(compose_config(override.split()))


def test_a_bad_option_on_the_command_line_is_one_line_without_a_traceback(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "pbgan.run", *TINY, "seed=abc", f"hydra.run.dir={tmp_path / 'run'}"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines() == [
        "error: seed='abc' must be a whole number of 0 or more, for example seed=0"
    ]
    assert not (tmp_path / "run" / "lifelong.pt").exists()


def test_a_val_folder_too_small_for_fid_names_the_task_and_the_fix(tmp_path: Path) -> None:
    root = tmp_path / "tiny_pairs"
    for split, count in (("train", 3), ("val", 1)):
        (root / split).mkdir(parents=True)
        for i in range(count):
            pixels = np.full((32, 64, 3), 40 * i, dtype=np.uint8)
            Image.fromarray(pixels).save(root / split / f"{i}.png")
    datamodule = AlignedDataModule(str(root), crop_size=32, load_size=32, batch_size=2)
    datamodule.setup("fit")
    spec = task_specs(compose_config())[0]
    with pytest.raises(
        ConfigError, match=r"has 1 validation image\(s\) and its metrics need at least 2: .*drop fid"
    ):
        check_val_size(spec, datamodule, ["l1", "fid"])
    check_val_size(spec, datamodule, ["l1"])  # one image is enough without FID


@pytest.mark.parametrize("name", ["../up", "a/b", ".."])
def test_a_task_name_that_cannot_name_files_is_refused(name: str) -> None:
    """Task names become folder and file names (samples, checkpoints, exports): a name with a
    path in it is refused before anything runs, naming the option."""
    with pytest.raises(ConfigError, match=r"task_seq.tasks.map2aerial: the name .* cannot name files"):
        task_specs(compose_config([f"task_seq.tasks.map2aerial.name='{name}'"]))


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("batch_size=abc", r"data.batch_size='abc' must be a whole number of at least 1"),
        ("batch_size=2.5", r"data.batch_size=2.5 must be a whole number of at least 1"),
        ("num_workers=-1", r"data.num_workers=-1 must be a whole number of at least 0"),
        ("image_size=8", r"data.image_size=8 must be a whole number of at least 16"),
        ("_target_=datamodules.NoSuch", r"the data node of task map2aerial cannot be built"),
    ],
)
def test_a_task_data_node_with_impossible_options_is_named(override: str, message: str) -> None:
    spec = next(
        s
        for s in task_specs(compose_config([f"task_seq.tasks.map2aerial.data.{override}"]))
        if s.name == "map2aerial"
    )
    with pytest.raises(ConfigError, match=message):
        instantiate_data(spec)


def test_a_task_whose_images_are_not_the_generators_size_is_refused_before_training() -> None:
    cfg = compose_config(["task_seq.tasks.map2aerial.data.image_size=48"])
    specs = task_specs(cfg)
    datamodules = [instantiate_data(spec) for spec in specs]
    message = r"task map2aerial gives 48-pixel images .* data.image_size=32: set them equal"
    with pytest.raises(ConfigError, match=message):
        check_image_sizes(cfg, specs, datamodules)


def test_fewer_val_images_than_eval_num_images_is_said_not_hidden(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    from pbgan.sequence import run_sequence

    one_task = [f"~task_seq.tasks.{name}" for name in ("map2aerial", "seg2facade", "edges2bag")]
    run_sequence(compose_config([*one_task, "eval.num_images=6"]), tmp_path)
    assert "task labels2street has 4 validation images, fewer than eval.num_images=6" in caplog.text


def test_data_sizes_a_task_does_not_take_are_named() -> None:
    """``data.train_size`` sizes the synthetic tasks only and ``data.max_images`` the image folders
    only: given on the command line for a task that ignores it, a warning names the task."""
    cfg = compose_config(["task_seq=synth_paired2"])
    synthetic = task_specs(cfg)
    folder = task_specs(compose_config(["task_seq=paired4", "data.max_images=5"]))
    assert folder[0].data.max_images == 5  # the folder tasks take the global option
    assert unused_data_options(synthetic, ["data.seed=1", "ratio=0.5"]) == []
    assert unused_data_options(folder, ["data.max_images=5"]) == []
    (warning,) = unused_data_options(folder, ["data.train_size=100"])
    assert "data.train_size applies to synthetic tasks only" in warning
    assert folder[0].name in warning and "data.max_images=N" in warning
    (warning,) = unused_data_options(synthetic, ["+data.max_images=3"])
    assert "data.max_images applies to image-folder tasks only" in warning
    # a task whose node sets its own number keeps it: said, not silent
    own = compose_config(
        ["task_seq=paired4", "data.max_images=5", "task_seq.tasks.map2aerial.data.max_images=7"]
    )
    specs = task_specs(own)
    assert unused_data_options(specs, ["data.max_images=5"], own.data) == [
        f"warning: task {specs[1].name}'s data node sets its own max_images=7, so data.max_images=5 does "
        "not apply to it (change or remove max_images in that task's data node)"
    ]
    assert unused_data_options(folder, ["data.max_images=5"], own.data) == []


def test_a_switch_of_a_task_data_node_must_be_true_or_false() -> None:
    cfg = compose_config(["task_seq=synth_paired2", "task_seq.tasks.labels2street.data.paired=no"])
    with pytest.raises(ConfigError, match=r"data.paired='no' is a switch: use true or false"):
        instantiate_data(task_specs(cfg)[0])
    folder = compose_config(["task_seq=paired4", "+task_seq.tasks.labels2street.data.flip=maybe"])
    with pytest.raises(ConfigError, match=r"data.flip='maybe' is a switch"):
        instantiate_data(task_specs(folder)[0])
