"""The public pix2pix and CycleGAN datasets: which exist, whether one is here, and fetching one.

A download goes to ``NAME.tar.gz.part`` (or ``.zip.part``) and is renamed when complete; it is
unpacked into a hidden temporary folder, checked (the expected folders exist and hold readable
images) and only then renamed to ``DATA_DIR/NAME``. So ``DATA_DIR/NAME`` is always a whole dataset,
a rerun skips what is already there, and an interrupted run leaves nothing half-made behind.
The command line is ``python -m pbgan.data`` (:mod:`pbgan.data`).
"""

from __future__ import annotations

import http.client
import logging
import os
import shutil
import sys
import tarfile
import urllib.error
import urllib.request
import zipfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from datamodules.images import BadImage, check_image, list_images
from pbgan.errors import PbganError

PIX2PIX_URL = "http://efrosgans.eecs.berkeley.edu/pix2pix/datasets/{name}.tar.gz"
CYCLEGAN_URL = "http://efrosgans.eecs.berkeley.edu/cyclegan/datasets/{name}.zip"
ENV_VAR = "PBGAN_DATA_DIR"
DEFAULT_TIMEOUT = 10.0  # seconds to connect (and between reads): no network fails at once
CHUNK = 1 << 20
ALIGNED, UNALIGNED = "aligned", "unaligned"

# The command line's name, under "pbgan" so that its setup_logging (-q, -v) shows these messages.
log = logging.getLogger("pbgan.data")


@dataclass(frozen=True)
class KnownDataset:
    """A public dataset: its folder layout, the folders it must hold, and where it comes from."""

    name: str
    layout: str  # aligned (pix2pix: A|B side by side) or unaligned (CycleGAN: trainA/trainB/...)
    splits: tuple[str, ...]
    about: str

    @property
    def url(self) -> str:
        return (PIX2PIX_URL if self.layout == ALIGNED else CYCLEGAN_URL).format(name=self.name)

    @property
    def archive_name(self) -> str:
        return self.url.rsplit("/", 1)[1]


def _pix2pix(name: str, splits: tuple[str, ...], about: str) -> KnownDataset:
    return KnownDataset(name, ALIGNED, splits, about)


def _cyclegan(name: str, about: str) -> KnownDataset:
    return KnownDataset(name, UNALIGNED, ("trainA", "trainB", "testA", "testB"), about)


DATASETS: dict[str, KnownDataset] = {
    d.name: d
    for d in (
        _pix2pix("cityscapes", ("train", "val"), "A = street photo, B = colour labels (2975 train)"),
        _pix2pix("maps", ("train", "val"), "A = aerial photo, B = map (1096 train)"),
        _pix2pix("facades", ("train", "val", "test"), "A = facade photo, B = labels (400 train)"),
        _pix2pix("edges2handbags", ("train", "val"), "A = edges, B = handbag photo (137k train, 8.6 GB)"),
        _pix2pix("edges2shoes", ("train", "val"), "A = edges, B = shoe photo (50k train)"),
        _pix2pix("night2day", ("train", "val", "test"), "A = night, B = day"),
        _cyclegan("monet2photo", "A = Monet paintings, B = landscape photos"),
        _cyclegan("ukiyoe2photo", "A = Ukiyo-e prints, B = landscape photos"),
        _cyclegan("cezanne2photo", "A = Cezanne paintings, B = landscape photos"),
        _cyclegan("vangogh2photo", "A = Van Gogh paintings, B = landscape photos"),
        _cyclegan("horse2zebra", "A = horses, B = zebras"),
        _cyclegan("apple2orange", "A = apples, B = oranges"),
        _cyclegan("summer2winter_yosemite", "A = summer, B = winter"),
        _cyclegan("iphone2dslr_flower", "A = iPhone flowers, B = DSLR flowers"),
    )
}

# Names that stand for the datasets of a shipped task sequence.
GROUPS: dict[str, tuple[str, ...]] = {
    "paired4": ("cityscapes", "maps", "facades", "edges2handbags"),
    "unpaired4": ("cityscapes", "maps", "facades", "edges2handbags"),
    "style2": ("monet2photo", "ukiyoe2photo"),
}

CITYSCAPES_NOTE = (
    "The reference scripts no longer hand out cityscapes (licence): if its download fails, get "
    "gtFine_trainvaltest.zip and leftImg8bit_trainvaltest.zip from https://www.cityscapes-dataset.com and "
    "build the aligned images (photo left = A, colour labels right = B, 256x256 each) with the reference's "
    "datasets/prepare_cityscapes_dataset.py --output_dir DATA_DIR/cityscapes."
)

Opener = Callable[..., Any]


def default_data_dir() -> Path:
    """``$PBGAN_DATA_DIR``, else ``./data`` (the same default as the config's ``paths.data_dir``)."""
    return Path(os.environ.get(ENV_VAR) or "data")


def download_command(name: str, data_dir: Path | str | None = None) -> str:
    """The shell command that fetches a known dataset into ``data_dir``."""
    command = f"python -m pbgan.data download {name}"
    if data_dir is not None and Path(data_dir).resolve() != default_data_dir().resolve():
        command += f" --data-dir {data_dir}"
    return command


def expand_names(names: list[str]) -> list[str]:
    """Dataset names with sequence names (``paired4``, ``style2``) expanded; unknown names refused."""
    result: list[str] = []
    for name in names:
        members = GROUPS.get(name, (name,))
        for member in members:
            if member not in DATASETS:
                known = ", ".join(list(DATASETS) + list(GROUPS))
                raise PbganError(f"dataset {name!r} is not known: use one of {known}")
            if member not in result:
                result.append(member)
    return result


# -- checking a dataset folder ------------------------------------------------------------------
def layout_problems(folder: Path, dataset: KnownDataset, read_images: bool = False) -> list[str]:
    """What is wrong with ``folder`` as ``dataset`` (empty when it is complete).

    Every expected split must exist and hold images; ``read_images`` also opens every image's
    header and decodes the first and last image of each split.
    """
    problems = []
    for split in dataset.splits:
        path = folder / split
        if not path.is_dir():
            problems.append(f"{path} is missing")
            continue
        files = list_images(path)
        if not files:
            problems.append(f"{path} holds no images")
            continue
        if read_images:
            try:
                for index, file in enumerate(files):
                    check_image(file, decode=index in (0, len(files) - 1))
            except BadImage as error:
                problems.append(f"cannot read image {error}")
    return problems


def status(data_dir: Path, dataset: KnownDataset) -> str:
    """``present``, ``incomplete``, ``archive only`` or ``missing`` (no image is read)."""
    folder = data_dir / dataset.name
    if folder.is_dir():
        return "incomplete" if layout_problems(folder, dataset) else "present"
    if (data_dir / dataset.archive_name).is_file():
        return "archive only"
    return "missing"


# -- downloading --------------------------------------------------------------------------------
def _offline_help(dataset: KnownDataset, data_dir: Path, url: str) -> str:
    splits = ", ".join(f"{split}/" for split in dataset.splits)
    text = (
        f"Without network access here: download {url} on another machine and unpack it so that "
        f"{data_dir / dataset.name} holds {splits} (or copy the archive to "
        f"{data_dir / dataset.archive_name} and rerun this command, which then unpacks it)."
    )
    return text + (" " + CITYSCAPES_NOTE if dataset.name == "cityscapes" else "")


def _download(url: str, part: Path, dataset: KnownDataset, data_dir: Path, opener: Opener, timeout: float):
    from tqdm import tqdm

    try:
        response = opener(url, timeout=timeout)
    except (urllib.error.URLError, OSError, http.client.HTTPException, ValueError) as error:
        reason = getattr(error, "reason", None) or error
        raise PbganError(
            f"could not download {dataset.name} from {url}: {reason}. {_offline_help(dataset, data_dir, url)}"
        ) from error
    received = 0
    try:
        with response, open(part, "wb") as out:
            length = response.headers.get("Content-Length") if getattr(response, "headers", None) else None
            total = int(length) if length and str(length).isdigit() else None
            with tqdm(
                total=total, unit="B", unit_scale=True, unit_divisor=1024, desc=dataset.name, file=sys.stderr
            ) as bar:
                while chunk := response.read(CHUNK):
                    out.write(chunk)
                    received += len(chunk)
                    bar.update(len(chunk))
    except (OSError, http.client.HTTPException) as error:
        part.unlink(missing_ok=True)
        raise PbganError(
            f"the download of {dataset.name} from {url} broke off after {received:,} bytes ({error}): "
            f"rerun the command to start it again. {_offline_help(dataset, data_dir, url)}"
        ) from error
    if total is not None and received != total:
        part.unlink(missing_ok=True)
        raise PbganError(
            f"the download of {dataset.name} from {url} stopped at {received:,} of {total:,} bytes: "
            f"rerun the command to start it again"
        )


def _safe_members(archive: tarfile.TarFile, into: Path) -> list[tarfile.TarInfo]:
    """Members that stay inside ``into`` (for Pythons without tarfile's ``data`` filter)."""
    root = into.resolve()
    members = []
    for member in archive.getmembers():
        target = (into / member.name).resolve()
        if not (member.isfile() or member.isdir()) or not target.is_relative_to(root):
            continue
        members.append(member)
    return members


def _unpack(archive: Path, into: Path) -> None:
    if zipfile.is_zipfile(archive):
        with zipfile.ZipFile(archive) as bundle:
            bundle.extractall(into)  # zipfile drops absolute paths and '..' parts itself
        return
    with tarfile.open(archive, "r:*") as bundle:
        if hasattr(tarfile, "data_filter"):
            bundle.extractall(into, filter="data")
        else:  # pragma: no cover - Python < 3.10.12 / 3.11.4
            bundle.extractall(into, members=_safe_members(bundle, into))


def _dataset_root(unpacked: Path, dataset: KnownDataset) -> Path:
    """The folder holding the splits: ``NAME/`` inside the archive, or the archive's only folder."""
    if (unpacked / dataset.name).is_dir():
        return unpacked / dataset.name
    entries = [p for p in unpacked.iterdir() if not p.name.startswith((".", "__MACOSX"))]
    if len(entries) == 1 and entries[0].is_dir():
        return entries[0]
    return unpacked


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    elif path.exists() or path.is_symlink():
        path.unlink(missing_ok=True)


def _clear_leftovers(data_dir: Path, dataset: KnownDataset) -> None:
    """Remove what an interrupted earlier run left: a partial download, temporary folders."""
    _remove(data_dir / f"{dataset.archive_name}.part")
    for leftover in data_dir.glob(f".{dataset.name}.unpack-*"):
        _remove(leftover)
    for leftover in data_dir.glob(f".{dataset.name}.old-*"):
        _remove(leftover)


def fetch(
    name: str,
    data_dir: Path | str | None = None,
    *,
    url: str | None = None,
    opener: Opener = urllib.request.urlopen,
    timeout: float = DEFAULT_TIMEOUT,
    force: bool = False,
    keep_archive: bool = False,
) -> str:
    """Make ``data_dir/name`` a complete copy of a known dataset; returns what was done.

    ``present``: it was already complete (nothing is fetched). ``unpacked``: an archive already in
    ``data_dir`` was unpacked. ``downloaded``: it was downloaded from ``url`` (default: the
    reference URL) with ``opener`` (``urllib.request.urlopen``'s signature) and unpacked.
    """
    if name not in DATASETS:
        expand_names([name])  # refuses an unknown name, listing the known ones
        raise PbganError(
            f"{name!r} names several datasets: fetch them one by one ({', '.join(GROUPS[name])})"
        )
    dataset = DATASETS[name]
    data_dir = Path(data_dir) if data_dir is not None else default_data_dir()
    target = data_dir / dataset.name
    if data_dir.exists() and not data_dir.is_dir():
        raise PbganError(f"{data_dir} is a file, not a folder for datasets: pass another --data-dir")
    if (target.exists() or target.is_symlink()) and not target.is_dir() and not force:
        raise PbganError(
            f"{target} is a file, not the {dataset.name} dataset folder: move it away, or rerun with "
            f"--force to replace it (`{download_command(dataset.name, data_dir)} --force`)"
        )
    if target.is_dir() and not force:
        problems = layout_problems(target, dataset)
        if not problems:
            return "present"
        raise PbganError(
            f"{target} exists but is not a complete {dataset.name} dataset ({'; '.join(problems)}): "
            f"rerun with --force to replace it (`{download_command(dataset.name, data_dir)} --force`), "
            f"or move it away"
        )
    data_dir.mkdir(parents=True, exist_ok=True)
    _clear_leftovers(data_dir, dataset)
    archive = data_dir / dataset.archive_name
    downloaded = not archive.is_file()
    source = url or dataset.url
    if downloaded:
        part = archive.with_name(archive.name + ".part")
        _download(source, part, dataset, data_dir, opener, timeout)
        os.replace(part, archive)
    scratch = data_dir / f".{dataset.name}.unpack-{os.getpid()}"
    try:
        scratch.mkdir()
        log.info("unpacking %s", archive)
        try:
            _unpack(archive, scratch)
        except (tarfile.TarError, zipfile.BadZipFile, EOFError, zlib.error, OSError) as error:
            if downloaded:
                archive.unlink(missing_ok=True)
            what = f"the archive downloaded from {source}" if downloaded else f"the archive {archive}"
            fix = (
                "it was deleted: rerun the command to download it again"
                if downloaded
                else "delete it and rerun the command to download it again"
            )
            raise PbganError(f"{what} is truncated or corrupt ({error}): {fix}") from error
        unpacked = _dataset_root(scratch, dataset)
        problems = layout_problems(unpacked, dataset, read_images=True)
        if problems:
            if downloaded:
                archive.unlink(missing_ok=True)
            raise PbganError(
                f"the {dataset.name} archive ({source}) does not hold the expected dataset: "
                f"{'; '.join(p.replace(str(unpacked), dataset.name) for p in problems)}"
            )
        if target.exists() or target.is_symlink():  # only with force
            old = data_dir / f".{dataset.name}.old-{os.getpid()}"
            os.replace(target, old)
            _remove(old)
        os.replace(unpacked, target)
    finally:
        _remove(scratch)
    if not keep_archive:
        archive.unlink(missing_ok=True)
    return "downloaded" if downloaded else "unpacked"


def list_datasets(data_dir: Path) -> str:
    """A table of the known datasets and whether each is in ``data_dir``."""
    rows = [("name", "layout", "status", "contents")]
    for dataset in DATASETS.values():
        rows.append((dataset.name, dataset.layout, status(data_dir, dataset), dataset.about))
    widths = [max(len(row[i]) for row in rows) for i in range(3)]
    lines = [f"datasets in {data_dir.resolve()} (set {ENV_VAR} or --data-dir to look elsewhere):"]
    lines += [
        "  " + "  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row[:3])) + "  " + row[3]
        for row in rows
    ]
    lines.append("sequences: " + "; ".join(f"{group} = {' '.join(names)}" for group, names in GROUPS.items()))
    return "\n".join(lines)
