"""Folder datasets (pix2pix aligned, CycleGAN unaligned), their bad-input errors, the downloader,
and real-data task sequences through the CLI, all on tiny images generated on disk."""

from __future__ import annotations

import json
import subprocess
import sys
import tarfile
import urllib.error
import zipfile
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
from hydra.utils import instantiate
from pbgan_testing import TINY, compose_config
from PIL import Image

from datamodules import download
from datamodules.folders import AlignedDataModule, UnalignedDataModule, derangement
from pbgan import data as pdata
from pbgan.errors import ConfigError, PbganError

ROOT = Path(__file__).resolve().parent.parent


# -- helpers: tiny datasets on disk ------------------------------------------------------------------
def noise(width: int, height: int, seed: int, channels: tuple[int, ...] = (0, 1, 2)) -> np.ndarray:
    """Random pixels (h, w, 3) in the given channels, zero in the others."""
    rng = np.random.default_rng(seed)
    pixels = np.zeros((height, width, 3), np.uint8)
    for channel in channels:
        pixels[..., channel] = rng.integers(0, 256, (height, width), dtype=np.uint8)
    return pixels


def save(pixels: np.ndarray, path: Path, **options) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels).save(path, **options)
    return path


def write_aligned(
    root: Path,
    splits: dict[str, int] | None = None,
    half: tuple[int, int] = (32, 32),
    copies: bool = False,
    ext: str = "png",
) -> Path:
    """An aligned dataset: A (left) is noise in the red channel, B (right) noise in the blue one;
    with ``copies`` B is an exact copy of A."""
    width, height = half
    for split, count in (splits or {"train": 6, "val": 4}).items():
        for i in range(count):
            seed = zlib.crc32(f"{split}/{i}".encode()) % 10_000
            a = noise(width, height, seed, (0,))
            b = a.copy() if copies else noise(width, height, seed + 1, (2,))
            save(np.concatenate([a, b], 1), root / split / f"{i}.{ext}")
    return root


def write_unaligned(
    root: Path, counts: dict[str, int] | None = None, size: tuple[int, int] = (32, 32)
) -> Path:
    """An unaligned dataset: A images are red noise, B images blue noise."""
    counts = counts or {"trainA": 5, "trainB": 3, "testA": 4, "testB": 2}
    for folder, count in counts.items():
        channel = 0 if folder.endswith("A") else 2
        for i in range(count):
            save(
                noise(*size, zlib.crc32(f"{folder}/{i}".encode()) % 10_000, (channel,)),
                root / folder / f"{i}.jpg",
                quality=95,
            )
    return root


def aligned(root: Path, **options) -> AlignedDataModule:
    options = {"crop_size": 32, "load_size": 36, "batch_size": 2, **options}
    module = AlignedDataModule(str(root), **options)
    module.setup("fit")
    return module


def unaligned(root: Path, **options) -> UnalignedDataModule:
    options = {"crop_size": 32, "load_size": 36, "batch_size": 2, **options}
    module = UnalignedDataModule(str(root), **options)
    module.setup("fit")
    return module


def every(loader) -> tuple[torch.Tensor, torch.Tensor]:
    inputs, targets = zip(*loader)
    return torch.cat(inputs), torch.cat(targets)


def red_and_blue(x: torch.Tensor) -> tuple[bool, bool]:
    """Whether a batch varies in its red channel / its blue channel (A is red, B is blue)."""
    return bool(x[:, 0].std() > 0.1), bool(x[:, 2].std() > 0.1)


# -- the aligned layout ------------------------------------------------------------------------------
def test_aligned_loads_paired_batches_of_the_right_shape_and_range(tmp_path: Path) -> None:
    module = aligned(write_aligned(tmp_path / "set"))
    assert module.paired and (module.input_nc, module.output_nc, module.image_size) == (3, 3, 32)
    for loader, count in ((module.train_dataloader(), 6), (module.val_dataloader(), 4)):
        inputs, targets = every(loader)
        assert inputs.shape == targets.shape == (count, 3, 32, 32)
        assert inputs.dtype == torch.float32
        assert inputs.min() >= -1 and inputs.max() <= 1 and inputs.min() < -0.9 and inputs.max() > 0.9
        assert red_and_blue(inputs) == (True, False) and red_and_blue(targets) == (False, True)


def test_training_crops_and_flips_a_and_b_alike(tmp_path: Path) -> None:
    module = aligned(write_aligned(tmp_path / "set", copies=True), crop_size=24, load_size=40)
    dataset = module.train_dataloader().dataset
    draws = [dataset[0] for _ in range(12)]
    for source, target in draws:
        assert torch.equal(source, target)  # identical halves stay identical: one crop, one flip
    assert len({tuple(source.flatten()[:64].tolist()) for source, _ in draws}) > 1  # crops do vary


def test_training_flips_half_the_time_and_flip_false_never(tmp_path: Path) -> None:
    root = write_aligned(tmp_path / "set")
    still = aligned(root, crop_size=32, load_size=32, flip=False).train_dataloader().dataset
    dataset = aligned(root, crop_size=32, load_size=32).train_dataloader().dataset
    draws = [dataset[0][0] for _ in range(16)]
    assert all(torch.equal(still[0][0], still[0][0]) for _ in range(4))
    flipped = [torch.equal(draw, still[0][0].flip(-1)) for draw in draws]
    assert any(flipped) and not all(flipped)
    assert all(f or torch.equal(draw, still[0][0]) for f, draw in zip(flipped, draws))


def test_direction_btoa_swaps_input_and_target(tmp_path: Path) -> None:
    root = write_aligned(tmp_path / "set")
    a_to_b = every(aligned(root).val_dataloader())
    b_to_a = every(aligned(root, direction="BtoA").val_dataloader())
    assert red_and_blue(b_to_a[0]) == (False, True)
    assert torch.equal(a_to_b[0], b_to_a[1]) and torch.equal(a_to_b[1], b_to_a[0])


def test_one_channel_images(tmp_path: Path) -> None:
    root = write_aligned(tmp_path / "set")
    inputs, targets = every(aligned(root, input_nc=1, output_nc=3).train_dataloader())
    assert inputs.shape == (6, 1, 32, 32) and targets.shape == (6, 3, 32, 32)
    inputs, targets = every(aligned(root, direction="BtoA", input_nc=3, output_nc=1).val_dataloader())
    assert inputs.shape == (4, 3, 32, 32) and targets.shape == (4, 1, 32, 32)
    assert red_and_blue(inputs) == (False, True)  # the input is B (blue) in colour
    inputs, targets = every(
        unaligned(write_unaligned(tmp_path / "u"), input_nc=1, output_nc=1).val_dataloader()
    )
    assert inputs.shape == (4, 1, 32, 32) and targets.shape == (4, 1, 32, 32)


@pytest.mark.parametrize(
    ("preprocess", "load_size", "shape"),
    [
        ("resize_and_crop", 20, (16, 16)),
        ("crop", None, (16, 16)),
        ("scale_width_and_crop", 24, (16, 16)),
        ("none", None, (32, 48)),
    ],
)
def test_non_square_images_with_each_preprocess_option(
    tmp_path: Path, preprocess: str, load_size: int | None, shape: tuple[int, int]
) -> None:
    root = write_aligned(tmp_path / "set", half=(48, 32))
    options = {"preprocess": preprocess, "load_size": load_size, "crop_size": 16, "check_aligned": False}
    module = aligned(root, **options)
    assert module.image_size == (None if preprocess == "none" else 16)
    for loader in (module.train_dataloader(), module.val_dataloader()):
        inputs, targets = every(loader)
        assert inputs.shape[1:] == targets.shape[1:] == (3, *shape)
    del options["check_aligned"]
    inputs, _ = every(unaligned(write_unaligned(tmp_path / "u", size=(48, 32)), **options).train_dataloader())
    assert inputs.shape[1:] == (3, *shape)


def test_val_is_deterministic(tmp_path: Path) -> None:
    root = write_aligned(tmp_path / "set")
    first = every(aligned(root).val_dataloader())
    again = every(aligned(root).val_dataloader())
    assert torch.equal(first[0], again[0]) and torch.equal(first[1], again[1])
    module = unaligned(write_unaligned(tmp_path / "u"))
    assert torch.equal(every(module.val_dataloader())[1], every(module.val_dataloader())[1])


def test_unpaired_aligned_gives_each_a_another_images_b(tmp_path: Path) -> None:
    root = write_aligned(tmp_path / "set", splits={"train": 6, "val": 5}, copies=True)
    module = aligned(root, unpaired=True, seed=3)
    assert not module.paired
    inputs, targets = every(module.val_dataloader())
    for i in range(5):
        assert not torch.equal(inputs[i], targets[i])
        assert any(torch.equal(targets[i], inputs[j]) for j in range(5) if j != i)
    again = every(aligned(root, unpaired=True, seed=3).val_dataloader())
    assert torch.equal(targets, again[1])
    assert sorted(derangement(7, 0)) == list(range(7))
    assert all(partner != i for i, partner in enumerate(derangement(7, 0)))


def test_max_images_limits_every_split(tmp_path: Path) -> None:
    module = aligned(write_aligned(tmp_path / "set"), max_images=2)
    assert len(module.train_dataloader().dataset) == 2 and len(module.val_dataloader().dataset) == 2


# -- the unaligned layout ----------------------------------------------------------------------------
def test_unaligned_loads_and_falls_back_to_test_for_val(tmp_path: Path) -> None:
    root = write_unaligned(tmp_path / "set")
    module = unaligned(root)
    assert not module.paired
    inputs, targets = every(module.train_dataloader())
    assert inputs.shape == targets.shape == (5, 3, 32, 32)  # max(len(A), len(B))
    assert red_and_blue(inputs) == (True, False) and red_and_blue(targets) == (False, True)
    inputs, targets = every(module.val_dataloader())  # testA (4) against testB (2, cycled)
    assert inputs.shape[0] == targets.shape[0] == 4
    inputs, targets = every(unaligned(root, direction="BtoA").val_dataloader())
    assert inputs.shape[0] == 2 and red_and_blue(inputs) == (False, True)


def test_unaligned_prefers_vala_valb(tmp_path: Path) -> None:
    root = write_unaligned(
        tmp_path / "set", {"trainA": 2, "trainB": 2, "testA": 4, "testB": 4, "valA": 3, "valB": 3}
    )
    assert len(unaligned(root).val_dataloader().dataset) == 3


@pytest.mark.filterwarnings("ignore:.*pin_memory.*:UserWarning")
def test_workers_and_pinned_memory(tmp_path: Path) -> None:
    module = aligned(write_aligned(tmp_path / "set"), num_workers=1, pin_memory=True)
    loader = module.train_dataloader()
    assert loader.num_workers == 1
    inputs, _ = every(loader)
    assert inputs.shape == (6, 3, 32, 32)


# -- bad input ---------------------------------------------------------------------------------------
def error_of(make) -> str:
    with pytest.raises(PbganError) as caught:
        make()
    return str(caught.value)


def test_missing_known_dataset_names_the_download_command(tmp_path: Path) -> None:
    message = error_of(lambda: aligned(tmp_path / "facades"))
    assert str(tmp_path / "facades") in message
    assert f"python -m pbgan.data download facades --data-dir {tmp_path}" in message


def test_missing_own_dataset_explains_the_layout(tmp_path: Path) -> None:
    message = error_of(lambda: unaligned(tmp_path / "mine"))
    assert str(tmp_path / "mine") in message and "trainA/" in message


def test_missing_and_empty_split_folders(tmp_path: Path) -> None:
    root = tmp_path / "set"
    root.mkdir()
    assert "has no train/ folder" in error_of(lambda: aligned(root))
    (root / "train").mkdir()
    (root / "train" / "notes.txt").write_text("not an image")
    message = error_of(lambda: aligned(root))
    assert f"{root / 'train'} holds no images (it has 1 other files)" in message
    write_aligned(root, {"train": 2})
    assert "no val/ or test/ folder" in error_of(lambda: aligned(root))
    assert len(aligned(root, val_split="train").val_dataloader().dataset) == 2


def test_wrong_layout_is_recognised(tmp_path: Path) -> None:
    assert "UnalignedDataModule" in error_of(lambda: aligned(write_unaligned(tmp_path / "u")))
    assert "AlignedDataModule" in error_of(lambda: unaligned(write_aligned(tmp_path / "a")))


def test_unreadable_image_is_named_or_skipped_with_a_warning(tmp_path: Path) -> None:
    root = write_aligned(tmp_path / "set")
    bad = root / "train" / "3.png"
    bad.write_bytes(b"this is not a png")
    message = error_of(lambda: aligned(root))
    assert str(bad) in message and "data.skip_bad_images=true" in message
    with pytest.warns(UserWarning, match="3.png"):
        module = aligned(root, skip_bad_images=True)
    assert len(module.train_dataloader().dataset) == 5


def test_truncated_png_is_caught_at_setup(tmp_path: Path) -> None:
    root = write_aligned(tmp_path / "set")
    bad = root / "val" / "1.png"
    bad.write_bytes(bad.read_bytes()[:-300])
    assert str(bad) in error_of(lambda: aligned(root))


def test_truncated_jpeg_is_named_when_read_or_skipped(tmp_path: Path) -> None:
    root = write_aligned(tmp_path / "set", ext="jpg")
    bad = root / "val" / "2.jpg"
    bad.write_bytes(bad.read_bytes()[:-100])  # cut inside the pixel data, after the headers
    module = aligned(root)  # the header is fine: the pixels break when decoded
    message = error_of(lambda: every(module.val_dataloader()))
    assert str(bad) in message and "truncated" in message
    assert str(bad) in error_of(lambda: aligned(root, verify="decode"))  # decode checks it up front
    module = aligned(root, skip_bad_images=True)
    with pytest.warns(UserWarning, match="2.jpg"):
        inputs, _ = every(module.val_dataloader())
    assert inputs.shape[0] == 4  # the bad example is replaced by the next one


def test_aligned_image_must_be_twice_as_wide_as_high(tmp_path: Path) -> None:
    root = write_aligned(tmp_path / "set")
    odd = save(noise(50, 32, 0), root / "train" / "odd.png")
    message = error_of(lambda: aligned(root))
    assert str(odd) in message and "50x32" in message and "check_aligned: false" in message
    assert len(aligned(root, check_aligned=False).train_dataloader().dataset) == 7


def test_crop_larger_than_the_image(tmp_path: Path) -> None:
    root = write_aligned(tmp_path / "set")
    message = error_of(lambda: aligned(root, preprocess="crop", crop_size=40))
    assert "smaller than crop_size=40" in message and "resize_and_crop" in message


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"direction": "AtoC"}, "data.direction='AtoC'"),
        ({"input_nc": 2}, "data.input_nc=2"),
        ({"preprocess": "squash"}, "data.preprocess='squash'"),
        ({"load_size": 16}, "data.load_size=16 is smaller than data.crop_size=32"),
        ({"max_images": 0}, "data.max_images=0"),
    ],
)
def test_bad_options_fail_at_setup_not_construction(tmp_path: Path, options: dict, message: str) -> None:
    root = write_aligned(tmp_path / "set")
    module = AlignedDataModule(str(root), crop_size=32, **options)  # Hydra can always build it
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace("[", r"\[")):
        module.setup("fit")


def test_test_split_loads_on_demand(tmp_path: Path) -> None:
    root = write_aligned(tmp_path / "set", {"train": 2, "val": 2, "test": 3})
    module = aligned(root)
    module.setup("test")
    assert len(module.test_dataloader().dataset) == 3


# -- the shipped task configs -------------------------------------------------------------------------
REAL_TASKS = {
    "cityscapes": ("BtoA", True),
    "maps": ("BtoA", True),
    "facades": ("BtoA", True),
    "edges2handbags": ("AtoB", True),
    "cityscapes_unpaired": ("BtoA", False),
    "maps_unpaired": ("BtoA", False),
    "facades_unpaired": ("BtoA", False),
    "edges2handbags_unpaired": ("AtoB", False),
    "monet": ("BtoA", False),
    "ukiyoe": ("BtoA", False),
}
DATA_KEYS = ["paths.data_dir={}", "data.skip_bad_images=false"]


@pytest.mark.parametrize(
    ("sequence", "tasks"),
    [
        ("paired4", ["cityscapes", "maps", "facades", "edges2handbags"]),
        (
            "unpaired4",
            ["cityscapes_unpaired", "maps_unpaired", "facades_unpaired", "edges2handbags_unpaired"],
        ),
        ("style2", ["monet", "ukiyoe"]),
    ],
)
def test_sequences_compose_the_real_tasks(tmp_path: Path, sequence: str, tasks: list[str]) -> None:
    overrides = [key.format(tmp_path) for key in DATA_KEYS]
    cfg = compose_config([f"task_seq={sequence}", *overrides], tiny=False)  # the paper's scale
    assert cfg.model.name == ("pix2pix" if sequence == "paired4" else "cyclegan")
    assert (cfg.data.image_size, cfg.model.generator.ngf) == (256, 64)
    for task, name in zip(cfg.task_seq.tasks.values(), tasks):
        direction, paired = REAL_TASKS[name]
        module = instantiate(task.data)
        assert task.direction == module.direction == direction, name
        assert module.paired == paired, name
        assert module.crop_size == 256 and module.root.parent == tmp_path  # crop follows data.image_size
        assert module.root.name in download.DATASETS
        message = error_of(lambda module=module: module.setup("fit"))
        assert f"python -m pbgan.data download {module.root.name}" in message
        assert module.load_size == 286  # resolved at setup: the reference's 286 for 256 crops
    assert download.expand_names([sequence]) == list(
        dict.fromkeys(t.data.root.split("/")[-1] for t in cfg.task_seq.tasks.values())
    )


# -- the downloader ----------------------------------------------------------------------------------
def make_tar(source: Path, archive: Path, name: str) -> Path:
    with tarfile.open(archive, "w:gz") as bundle:
        bundle.add(source, arcname=name)
    return archive


def refuse(*args, **kwargs):
    raise AssertionError("the network must not be used")


def leftovers(data_dir: Path) -> list[str]:
    return sorted(p.name for p in data_dir.iterdir() if p.name.startswith(".") or p.name.endswith(".part"))


def test_download_unpacks_checks_and_skips_on_rerun(tmp_path: Path) -> None:
    archive = make_tar(
        write_aligned(tmp_path / "src", {"train": 3, "val": 2, "test": 2}), tmp_path / "f.tgz", "facades"
    )
    data_dir = tmp_path / "data"
    assert download.fetch("facades", data_dir, url=archive.as_uri()) == "downloaded"
    assert len(list((data_dir / "facades" / "train").iterdir())) == 3
    assert sorted(p.name for p in data_dir.iterdir()) == ["facades"]  # archive and temporaries gone
    assert download.fetch("facades", data_dir, opener=refuse) == "present"
    assert "present" in download.list_datasets(data_dir).split("facades", 1)[1].splitlines()[0]
    assert len(aligned(data_dir / "facades").train_dataloader().dataset) == 3


def test_truncated_archive_leaves_no_half_dataset(tmp_path: Path) -> None:
    archive = make_tar(
        write_aligned(tmp_path / "src", {"train": 3, "val": 2, "test": 2}), tmp_path / "f.tgz", "facades"
    )
    cut = tmp_path / "cut.tgz"
    cut.write_bytes(archive.read_bytes()[: archive.stat().st_size // 2])
    data_dir = tmp_path / "data"
    message = error_of(lambda: download.fetch("facades", data_dir, url=cut.as_uri()))
    assert "truncated or corrupt" in message and "rerun" in message
    assert list(data_dir.iterdir()) == []
    assert download.fetch("facades", data_dir, url=archive.as_uri()) == "downloaded"  # a rerun recovers


def test_archive_without_the_expected_folders_is_refused(tmp_path: Path) -> None:
    archive = make_tar(write_aligned(tmp_path / "src", {"train": 3}), tmp_path / "f.tgz", "facades")
    message = error_of(lambda: download.fetch("facades", tmp_path / "data", url=archive.as_uri()))
    assert "val is missing" in message
    assert list((tmp_path / "data").iterdir()) == []


def test_no_network_fails_at_once_naming_the_url_and_the_fix(tmp_path: Path) -> None:
    def offline(url, timeout):
        assert timeout <= 30
        raise urllib.error.URLError("[Errno -3] Temporary failure in name resolution")

    message = error_of(lambda: download.fetch("maps", tmp_path / "data", opener=offline))
    assert "http://efrosgans.eecs.berkeley.edu/pix2pix/datasets/maps.tar.gz" in message
    assert "name resolution" in message and f"unpack it so that {tmp_path / 'data' / 'maps'}" in message
    assert leftovers(tmp_path / "data") == []


def test_cyclegan_zip_and_an_archive_placed_by_hand(tmp_path: Path) -> None:
    source = write_unaligned(tmp_path / "src", {"trainA": 2, "trainB": 2, "testA": 1, "testB": 1})
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    with zipfile.ZipFile(data_dir / "monet2photo.zip", "w") as bundle:
        for path in sorted(source.rglob("*.jpg")):
            bundle.write(path, f"monet2photo/{path.relative_to(source)}")
    assert download.fetch("monet2photo", data_dir, opener=refuse) == "unpacked"
    assert len(unaligned(data_dir / "monet2photo").val_dataloader().dataset) == 1


def test_incomplete_dataset_folder_needs_force(tmp_path: Path) -> None:
    archive = make_tar(
        write_aligned(tmp_path / "src", {"train": 3, "val": 2, "test": 2}), tmp_path / "f.tgz", "facades"
    )
    data_dir = tmp_path / "data"
    write_aligned(data_dir / "facades", {"train": 1})
    message = error_of(lambda: download.fetch("facades", data_dir, url=archive.as_uri()))
    assert "--force" in message and "val is missing" in message
    assert download.fetch("facades", data_dir, url=archive.as_uri(), force=True) == "downloaded"
    assert len(list((data_dir / "facades" / "train").iterdir())) == 3


def test_a_file_where_the_dataset_folder_goes_is_kept_unless_forced(tmp_path: Path) -> None:
    archive = make_tar(
        write_aligned(tmp_path / "src", {"train": 3, "val": 2, "test": 2}), tmp_path / "f.tgz", "facades"
    )
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    (data_dir / "facades").write_text("the user's notes")
    message = error_of(lambda: download.fetch("facades", data_dir, url=archive.as_uri()))
    assert "is a file, not the facades dataset folder" in message and "--force" in message
    assert (data_dir / "facades").read_text() == "the user's notes"
    assert download.fetch("facades", data_dir, url=archive.as_uri(), force=True) == "downloaded"
    assert (data_dir / "facades" / "train").is_dir()
    message = error_of(lambda: download.fetch("facades", archive, url=archive.as_uri()))
    assert f"{archive} is a file, not a folder for datasets" in message


def test_data_cli_list_download_and_errors(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    archive = make_tar(
        write_aligned(tmp_path / "src", {"train": 1, "val": 1, "test": 1}), tmp_path / "f.tgz", "facades"
    )
    data_dir = str(tmp_path / "data")
    assert pdata.main(["download", "facades", "--data-dir", data_dir, "--url", archive.as_uri()]) == 0
    assert pdata.main(["download", "facades", "--data-dir", data_dir], opener=refuse) == 0
    assert pdata.main(["list", "--data-dir", data_dir]) == 0
    out = capsys.readouterr().out
    assert "facades: already complete, skipped" in out and "monet2photo" in out
    assert pdata.main(["download", "nothing", "--data-dir", data_dir]) == 2
    assert "dataset 'nothing' is not known" in capsys.readouterr().err
    result = subprocess.run(
        [sys.executable, "-m", "pbgan.data", "list", "--data-dir", data_dir],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0 and "edges2handbags" in result.stdout


# -- through the CLI ---------------------------------------------------------------------------------
def run_cli(*overrides: str, cwd: Path, env: dict | None = None) -> subprocess.CompletedProcess:
    import os

    return subprocess.run(
        [sys.executable, "-m", "pbgan.run", *overrides],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, **(env or {})},
    )


def test_paired4_without_data_says_how_to_download(tmp_path: Path) -> None:
    empty = tmp_path / "nodata"
    empty.mkdir()
    result = run_cli("task_seq=paired4", "ratio=0.25", cwd=tmp_path, env={"PBGAN_DATA_DIR": str(empty)})
    assert result.returncode != 0
    assert "python -m pbgan.data download" in result.stderr and str(empty) in result.stderr
    assert "Traceback" not in result.stderr


def tiny_sequence(conf: Path, name: str, tasks: dict[str, str], cyclegan: bool = False) -> None:
    lines = ["defaults:"] + [f"  - /task@tasks.{slot}: {task}" for slot, task in tasks.items()]
    if cyclegan:
        lines.append("  - override /model@_global_.model: cyclegan")
    lines += ["  - _self_", "", f"name: {name}", ""]
    (conf / "task_seq").mkdir(parents=True, exist_ok=True)
    (conf / "task_seq" / f"{name}.yaml").write_text("\n".join(lines))


def run_tiny_sequence(tmp_path: Path, name: str, *extra: str) -> dict:
    out = tmp_path / "out"
    result = run_cli(
        *TINY,
        f"hydra.searchpath=[file://{tmp_path / 'conf'}]",
        f"task_seq={name}",
        f"hydra.run.dir={out}",
        *[key.format(tmp_path / "data") for key in DATA_KEYS],
        *extra,
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads((out / "results.json").read_text())


def test_cli_learns_a_two_task_paired_sequence_from_folders(tmp_path: Path) -> None:
    write_aligned(tmp_path / "data" / "facades", {"train": 8, "val": 4, "test": 2})
    write_aligned(tmp_path / "data" / "maps", {"train": 8, "val": 4}, copies=True)
    tiny_sequence(tmp_path / "conf", "tiny_paired", {"seg2facade": "facades", "map2aerial": "maps"})
    results = run_tiny_sequence(tmp_path, "tiny_paired")
    assert results["tasks"] == ["seg2facade", "map2aerial"] and results["completed_tasks"] == 2
    assert results["matrix"]["l1"][1][0] is not None  # paired: judged against the ground truth


def test_cli_learns_a_two_task_unpaired_sequence_from_folders(tmp_path: Path) -> None:
    write_aligned(tmp_path / "data" / "facades", {"train": 8, "val": 4})
    # 3 target images for 4 val inputs: the evaluation's real side takes each once
    write_unaligned(tmp_path / "data" / "monet2photo", {"trainA": 6, "trainB": 8, "testA": 4, "testB": 3})
    tiny_sequence(
        tmp_path / "conf", "tiny_unpaired", {"seg2facade": "facades_unpaired", "photo2monet": "monet"}, True
    )
    results = run_tiny_sequence(
        tmp_path,
        "tiny_unpaired",
        "model.generator.ngf=4",
        "model.generator.n_blocks=1",
        "model.discriminator.ndf=4",
    )
    assert results["model"] == "cyclegan" and results["tasks"] == ["seg2facade", "photo2monet"]
    assert "l1" not in results["matrix"]  # unpaired: no ground truth
    assert results["matrix"]["acc"][1][1] is not None


def test_preprocess_none_with_images_of_two_sizes_is_refused_naming_them(tmp_path: Path) -> None:
    """``preprocess=none`` keeps each image's size: images of two sizes cannot be stacked (in a
    batch, or whole for the evaluation and the classifier), which PyTorch said mid-run naming no
    file, also with batches of one."""
    root = write_aligned(tmp_path / "set", half=(48, 32))
    save(np.zeros((40, 80, 3), np.uint8), root / "train" / "9.png")  # halves 40x40
    options = {"preprocess": "none", "crop_size": 16, "check_aligned": False}
    for batch_size in (1, 2):
        message = error_of(lambda: aligned(root, **options, batch_size=batch_size))  # noqa: B023
        assert "preprocess=none each image keeps its own size" in message and "need one size" in message
        assert "48x32" in message and "40x40" in message and "9.png" in message
    (root / "train" / "9.png").unlink()
    inputs, _ = every(aligned(root, **options).val_dataloader())  # one size (not square): fine
    assert inputs.shape == (4, 3, 32, 48)


def test_float_tiff_images_are_scaled_not_blackened(tmp_path: Path) -> None:
    """A 32-bit float TIFF (PIL mode F) with values in [0, 1] loaded nearly black (PIL keeps the
    numbers); one in [0, 255] is kept; any other range is refused naming the file."""
    from datamodules.images import BadImage, read_image

    grey = noise(8, 8, 3, (0,))[:, :, 0]
    unit = tmp_path / "unit.tif"
    Image.fromarray(grey.astype(np.float32) / 255, mode="F").save(unit)
    assert np.array_equal(np.asarray(read_image(unit)), grey)
    whole = tmp_path / "whole.tif"
    Image.fromarray(grey.astype(np.float32), mode="F").save(whole)
    assert np.array_equal(np.asarray(read_image(whole)), grey)
    wide = tmp_path / "wide.tif"
    Image.fromarray(grey.astype(np.float32) * 100 - 50, mode="F").save(wide)
    with pytest.raises(
        BadImage, match=r"wide.tif: 32-bit float pixels from \S+ to \S+, neither in 0-1 nor in 0-255"
    ):
        read_image(wide)
    unset = tmp_path / "nan.tif"
    Image.fromarray(np.full((4, 4), np.nan, np.float32), mode="F").save(unset)
    with pytest.raises(BadImage, match=r"nan.tif: 32-bit float pixels that are not numbers"):
        read_image(unset)
    # python -m pbgan.generate reads images as training does
    from pbgan.generate import load_image

    assert torch.equal(load_image(unit, 1, 8), load_image(save(grey, tmp_path / "grey.png"), 1, 8))


def test_the_evaluations_real_side_takes_each_target_image_once(tmp_path: Path) -> None:
    """An unaligned val set with fewer targets than inputs pairs the inputs with repeated targets:
    FID's and KID's real images are the distinct ones (repeats bias KID's estimate)."""
    from pbgan.sequence import check_val_size, distinct_targets
    from pbgan.tasks import TaskSpec

    module = unaligned(write_unaligned(tmp_path / "u", {"trainA": 2, "trainB": 2, "testA": 5, "testB": 2}))
    inputs, targets = every(module.val_dataloader())
    assert len(inputs) == 5 and torch.equal(targets[2], targets[0])  # the val set repeats targets
    real = distinct_targets("photo2monet", module, targets)
    assert len(real) == 2 and not torch.equal(real[0], real[1]) and torch.equal(real, targets[:2])
    paired = aligned(write_aligned(tmp_path / "p", {"train": 2, "val": 3}))
    assert torch.equal(distinct_targets("facades", paired, t := every(paired.val_dataloader())[1]), t)
    # FID and KID need two real images: one target image for five inputs is refused up front
    single = unaligned(write_unaligned(tmp_path / "one", {"trainA": 2, "trainB": 2, "testA": 5, "testB": 1}))
    with pytest.raises(ConfigError, match="has 1 validation target image"):
        check_val_size(TaskSpec("photo2monet", "monet", "photo", "BtoA", None), single, ["fid"])
    check_val_size(TaskSpec("photo2monet", "monet", "photo", "BtoA", None), single, ["acc"])
