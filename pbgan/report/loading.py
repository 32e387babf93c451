"""Finding and reading the runs under a folder, and grouping a sweep's runs by configuration."""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from pbgan.errors import PbganError
from pbgan.results import RESULTS_FILE, ContinualResults, Matrix

log = logging.getLogger("pbgan.report")

FID_KEYS = ("fid_domain", "fid_inception")  # never averaged together nor shown in one column
KID_KEYS = ("kid_domain", "kid_inception")  # likewise
# Overrides that the tables show in their own columns, or that change no result.
SETTING_KEYS = ("seed", "ratio", "method", "method.width", "task_seq", "logger")
SETTING_PREFIXES = ("hydra.", "paths.", "logger.")
# The tables' order of methods: the exact ones by stored size, then those that forget, then the
# standalone models they are all measured against. Methods not listed follow, by name.
METHOD_ORDER = (
    "piggyback",
    "pf",
    "mask",
    "lora",
    "progressive",
    "sft",
    "ewc",
    "ewc_online",
    "lifelong_gan",
    "full",
)


@dataclass
class Run:
    """One run (one Hydra job): its results, and what only its folder tells (where it lies, how it
    was launched, its sample grids)."""

    path: Path  # the run directory (the folder holding results.json)
    results: ContinualResults  # results.json as read
    overrides: list[str] = field(default_factory=list)  # .hydra/overrides.yaml
    config: dict[str, Any] | None = None  # .hydra/config.yaml (the composed config), when present
    root: Path | None = None  # the directory the run was found under

    # Shorthands for the results the tables and the notebook read most.

    @property
    def tasks(self) -> list[str]:
        return self.results.tasks

    @property
    def method(self) -> str:
        return self.results.method

    @property
    def ratio(self) -> float | None:
        ratio = self.results.ratio
        return None if ratio is None else float(ratio)

    @property
    def seed(self) -> int | None:
        return self.results.seed

    @property
    def model(self) -> str | None:
        return self.results.model

    @property
    def matrix(self) -> dict[str, Matrix]:
        return self.results.matrix

    @property
    def higher_is_better(self) -> dict[str, bool]:
        return self.results.higher_is_better

    @property
    def completed_tasks(self) -> int:
        return self.results.completed

    @property
    def complete(self) -> bool:
        """Whether every task of the sequence was learned (results.json is rewritten after each)."""
        return self.completed_tasks == len(self.tasks)

    @property
    def fid_key(self) -> str | None:
        """``fid_domain`` or ``fid_inception``: the FID this run measured (never both)."""
        return next((key for key in FID_KEYS if key in self.matrix), None)

    def matrix_nan(self, metric: str) -> list[list[float]]:
        """A metric's continual matrix with NaN for the cells not measured (for plotting)."""
        rows = self.results.matrix_of(metric)
        return [[math.nan if value is None else float(value) for value in row] for row in rows]

    # What the run's folder tells.

    @property
    def task_seq(self) -> str:
        """The sequence's name from the composed config (or the overrides); else its tasks joined."""
        name = (self.config or {}).get("task_seq", {}).get("name") if self.config else None
        if name is None:
            name = dict(_parse_override(o) for o in self.overrides).get("task_seq")
        return str(name) if name is not None else "+".join(self.tasks)

    @property
    def width(self) -> float | None:
        """The method's width multiplier (the narrower ``full`` variants), where its config has one."""
        width = self.results.width
        if width is None and self.config:
            method_cfg = self.config.get("method")
            if isinstance(method_cfg, dict):
                width = method_cfg.get("width")
        return None if width is None else float(width)

    @property
    def name(self) -> str:
        """The run directory relative to where it was found (``0_ratio=0``, ...)."""
        if self.root is not None:
            try:
                relative = self.path.relative_to(self.root).as_posix()
                return relative if relative != "." else self.path.name
            except ValueError:
                pass
        return self.path.name

    @property
    def label(self) -> str:
        parts = [self.method]
        if self.width not in (None, 1.0):
            parts.append(f"width {self.width:g}")
        if self.ratio is not None:
            parts.append(f"ratio {self.ratio:g}")
        parts.append(f"seed {self.seed}")
        return ", ".join(parts)

    def sample_grids(self, stage: int | None = None) -> list[Path]:
        """Sample grids (PNG) saved after learning task ``stage`` (1-based; default the last one)."""
        folder = self.path / "samples"
        stages = sorted((p for p in folder.glob("after*_*") if p.is_dir()), key=_stage)
        if not stages:
            return []
        chosen = stages[-1] if stage is None else next((p for p in stages if _stage(p) == stage), None)
        return sorted(chosen.glob("*.png"), key=_task_number) if chosen else []

    def extra_overrides(self) -> frozenset[str]:
        """Overrides that may change results and have no column of their own (seed excluded)."""
        kept = set()
        for override in self.overrides:
            key, _ = _parse_override(override)
            if key in SETTING_KEYS or key.startswith(SETTING_PREFIXES):
                continue
            kept.add(override)
        return frozenset(kept)


def _stage(folder: Path) -> int:
    return int(folder.name[len("after") :].split("_", 1)[0])


def _task_number(png: Path) -> int:
    head = png.stem.split("_", 1)[0]
    return int(head[len("task") :]) if head[len("task") :].isdigit() else 0


def _parse_override(override: str) -> tuple[str, str | None]:
    """``+key=value`` -> (key, value); ``~key`` -> (key, None)."""
    text = override.lstrip("~+")
    key, sep, value = text.partition("=")
    return key.strip(), (value.strip() if sep else None)


def _read_yaml(path: Path) -> Any:
    if not path.is_file():
        return None
    try:
        return yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as error:
        log.warning("%s: cannot read it (%s); going on without it", path, error)
        return None


def load_run(results_path: str | Path, root: str | Path | None = None) -> Run:
    """One run from its results.json (and the ``.hydra/`` folder beside it, when present).

    Raises PbganError when the file cannot be read or is not a pbgan results.json."""
    results_path = Path(results_path)
    results = ContinualResults.load(results_path)
    run_dir = results_path.parent
    overrides = _read_yaml(run_dir / ".hydra" / "overrides.yaml")
    config = _read_yaml(run_dir / ".hydra" / "config.yaml")
    return Run(
        path=run_dir,
        results=results,
        overrides=[str(o) for o in overrides] if isinstance(overrides, list) else [],
        config=config if isinstance(config, dict) else None,
        root=Path(root) if root is not None else None,
    )


def find_results(directory: str | Path) -> list[Path]:
    """Every results.json under ``directory`` (recursively), in a stable order.

    Raises PbganError when the directory does not exist or holds none."""
    directory = Path(directory)
    if directory.is_file() and directory.name == RESULTS_FILE:
        return [directory]
    if not directory.exists():
        raise PbganError(f"{directory}: no such directory (give the multirun or run directory to report on)")
    if not directory.is_dir():
        raise PbganError(f"{directory}: not a directory (give the multirun or run directory to report on)")
    found = sorted(directory.rglob(RESULTS_FILE), key=_natural_key)
    if not found:
        raise PbganError(
            f"{directory}: no {RESULTS_FILE} under it; point the report at a folder of runs "
            "(e.g. multirun/<task_seq>/<date>_<time>, written by python -m pbgan.run -m ...)"
        )
    return found


def runs_without_results(root: Path, found: list[Path]) -> list[Path]:
    """Run folders under ``root`` (a ``.hydra`` or ``.pbgan`` folder in them) that hold no
    results.json: a job of a sweep that failed or is still on its first task."""
    if not root.is_dir():
        return []
    done = {path.parent.resolve() for path in found}
    folders = {
        marker.parent
        for name in (".pbgan", ".hydra")
        for marker in root.rglob(name)
        if marker.is_dir() and marker.parent.resolve() not in done
    }
    return sorted(folders, key=_natural_key)


def _natural_key(path: Path) -> list[Any]:
    """Sort job folders as numbers (2_... before 10_...)."""
    key: list[Any] = []
    for part in path.parts:
        head = part.split("_", 1)[0]
        key.append((0, int(head), part) if head.isdigit() else (1, 0, part))
    return key


def load_runs(directory: str | Path) -> list[Run]:
    """Every run under ``directory``; unreadable results.json files are skipped with a warning
    (on the ``pbgan.report`` logger).

    Raises PbganError when there is no directory, no results.json, or not one readable."""
    root = Path(directory)
    runs = []
    found = find_results(root)
    for path in found:
        try:
            runs.append(load_run(path, root=root if root.is_dir() else root.parent))
        except PbganError as error:
            log.warning("skipping %s", error)
    for folder in runs_without_results(root, found):
        log.warning(
            "skipping %s: a run folder without %s (the run has not written its first task yet, or "
            "stopped before; resume=%s continues it)",
            folder,
            RESULTS_FILE,
            folder,
        )
    if not runs:
        raise PbganError(f"{root}: none of its {RESULTS_FILE} files could be read (see the warnings above)")
    return runs


def config_key(run: Run) -> tuple:
    """What sets a run's configuration apart: everything but the seed."""
    return (
        run.task_seq,
        tuple(run.tasks),
        run.model or "",
        run.method,
        run.width,
        run.ratio,
        run.fid_key,
        run.extra_overrides(),
    )


def _sort_key(key: tuple) -> tuple:
    task_seq, tasks, model, method, width, ratio, fid_key, extra = key
    order = METHOD_ORDER.index(method) if method in METHOD_ORDER else len(METHOD_ORDER)
    return (
        task_seq,
        tasks,
        model,
        order,
        method,
        -(width if width is not None else math.inf),
        ratio if ratio is not None else -1.0,
        fid_key or "",
        sorted(extra),
    )


def group_runs(runs: Iterable[Run]) -> list[list[Run]]:
    """Runs grouped by configuration (everything but the seed), in table order."""
    groups: dict[tuple, list[Run]] = {}
    for run in runs:
        groups.setdefault(config_key(run), []).append(run)
    ordered = sorted(groups, key=_sort_key)
    return [sorted(groups[key], key=lambda run: (run.seed is None, run.seed or 0)) for key in ordered]
