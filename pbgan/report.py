"""Paper-style tables from many runs: ``python -m pbgan.report DIR [--out OUTDIR]``.

Finds every ``results.json`` under DIR (a multirun directory, or any folder of runs), reads
each with its Hydra overrides and config, and writes into OUTDIR (default ``DIR/report``):

- ``report.md``: the methods table, the ratio table and every run's continual matrices;
- ``methods.csv``: one row per run configuration, seeds averaged (mean and ``*_std``);
- ``ratio.csv``: FID, Acc and stored parameters against ratio, for runs that differ in ratio;
- ``runs.csv``: one row per run, nothing averaged;
- ``matrices.csv``: every run's continual matrices in tidy form.

A library too (the results notebook uses it)::

    runs = load_runs("multirun/synth_paired4/2026-01-01_00-00-00")
    print(to_markdown(methods_table(runs)))

Light on purpose: no torch, no pandas; plain dicts that ``csv`` writes.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import math
import statistics
import sys
import warnings
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from pbgan.errors import PbganError

RESULTS_FILE = "results.json"
FID_KEYS = ("fid_domain", "fid_inception")  # never averaged together nor shown in one column
REQUIRED_FIELDS = ("tasks", "method", "matrix", "params", "summary")
# Overrides that the tables show in their own columns, or that change no result.
SETTING_KEYS = ("seed", "ratio", "method", "method.width", "task_seq", "logger")
SETTING_PREFIXES = ("hydra.", "paths.", "logger.")
METHOD_ORDER = ("piggyback", "pf", "mask", "sft", "full")

Row = dict[str, Any]


class SkippedRunWarning(UserWarning):
    """A results.json that could not be read; the report goes on without it."""


@dataclass
class Run:
    """One run (one Hydra job): its results.json parsed, with where it lies and how it was launched."""

    path: Path  # the run directory (the folder holding results.json)
    results: dict[str, Any]  # results.json as read
    overrides: list[str] = field(default_factory=list)  # .hydra/overrides.yaml
    config: dict[str, Any] | None = None  # .hydra/config.yaml (the composed config), when present
    root: Path | None = None  # the directory the run was found under

    @property
    def tasks(self) -> list[str]:
        return list(self.results["tasks"])

    @property
    def domains(self) -> list[str]:
        return list(self.results.get("domains") or [])

    @property
    def method(self) -> str:
        return str(self.results["method"])

    @property
    def ratio(self) -> float | None:
        ratio = self.results.get("ratio")
        return None if ratio is None else float(ratio)

    @property
    def seed(self) -> int | None:
        return self.results.get("seed")

    @property
    def model(self) -> str | None:
        return self.results.get("model")

    @property
    def completed_tasks(self) -> int:
        return int(self.results.get("completed_tasks", len(self.params.get("per_task", []))))

    @property
    def complete(self) -> bool:
        """Whether every task of the sequence was learned (results.json is rewritten after each)."""
        return self.completed_tasks == len(self.tasks)

    @property
    def matrix(self) -> dict[str, list[list[float | None]]]:
        return self.results.get("matrix") or {}

    @property
    def untrained(self) -> dict[str, list[float | None]]:
        return self.results.get("untrained") or {}

    @property
    def params(self) -> dict[str, Any]:
        return self.results.get("params") or {}

    @property
    def summary(self) -> dict[str, dict[str, float | None]]:
        return self.results.get("summary") or {}

    @property
    def higher_is_better(self) -> dict[str, bool]:
        return self.results.get("higher_is_better") or {}

    @property
    def classifier(self) -> dict[str, Any]:
        return self.results.get("classifier") or {}

    @property
    def bank_sizes(self) -> dict[str, list[int]]:
        return self.results.get("bank_sizes") or {}

    @property
    def max_abs_change(self) -> list[list[float | None]]:
        return (self.results.get("forgetting") or {}).get("max_abs_change") or []

    @property
    def task_seconds(self) -> list[float]:
        return list(self.results.get("task_seconds") or [])

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
        width = self.results.get("width")
        if width is None and self.config:
            method_cfg = self.config.get("method")
            if isinstance(method_cfg, dict):
                width = method_cfg.get("width")
        return None if width is None else float(width)

    @property
    def fid_key(self) -> str | None:
        """``fid_domain`` or ``fid_inception``: the FID this run measured (never both)."""
        return next((key for key in FID_KEYS if key in self.matrix), None)

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
            parts.append(f"width {_number(self.width)}")
        if self.ratio is not None:
            parts.append(f"ratio {_number(self.ratio)}")
        parts.append(f"seed {self.seed}")
        return ", ".join(parts)

    def final(self, metric: str) -> float | None:
        """Final average of a metric over all tasks (the mean of the matrix's last row)."""
        return (self.summary.get(metric) or {}).get("final_average")

    def last(self, metric: str) -> float | None:
        """The last learned task's metric right after learning it (the ablations' "task 2" figure)."""
        matrix, stage = self.matrix.get(metric), self.completed_tasks - 1
        return matrix[stage][stage] if matrix and stage >= 0 else None

    def bwt(self, metric: str) -> float | None:
        return (self.summary.get(metric) or {}).get("bwt")

    def forgetting(self, metric: str) -> float | None:
        return (self.summary.get(metric) or {}).get("forgetting")

    def matrix_nan(self, metric: str) -> list[list[float]]:
        """A metric's continual matrix with NaN for the cells not measured (for plotting)."""
        rows = self.max_abs_change if metric == "max_abs_change" else self.matrix[metric]
        return [[math.nan if value is None else float(value) for value in row] for row in rows]

    def output_change(self) -> float | None:
        """Largest change of any old task's outputs on the probe inputs (0.0: nothing forgotten)."""
        cells = [
            value
            for i, row in enumerate(self.max_abs_change)
            for j, value in enumerate(row)
            if j < i and value is not None
        ]
        return max(cells) if cells else None

    def new_task_share(self) -> float | None:
        """Mean parameters each task after the first stores, over one standalone model (the model
        results.json's ``standalone_total`` counts T of: full width, also for narrower ``full`` runs)."""
        per_task = self.params.get("per_task") or []
        standalone = self.params.get("standalone_total")
        if len(per_task) < 2 or not standalone:
            return None
        return statistics.mean(per_task[1:]) / (standalone / len(per_task))

    def bytes_share(self) -> float | None:
        stored, standalone = self.params.get("stored_bytes_total"), self.params.get("standalone_bytes_total")
        return stored / standalone if stored is not None and standalone else None

    def sample_grids(self, stage: int | None = None) -> list[Path]:
        """Sample grids (PNG) saved after learning task ``stage`` (1-based; default the last one)."""
        folder = self.path / "samples"
        stages = sorted(
            (p for p in folder.glob("after*_*") if p.is_dir()),
            key=lambda p: int(p.name[len("after") :].split("_", 1)[0]),
        )
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
        warnings.warn(f"{path}: cannot read it ({error}); going on without it", SkippedRunWarning, 3)
        return None


def load_run(results_path: str | Path, root: str | Path | None = None) -> Run:
    """One run from its results.json (and the ``.hydra/`` folder beside it, when present).

    Raises PbganError when the file cannot be read or lacks the fields a report needs."""
    results_path = Path(results_path)
    try:
        results = json.loads(results_path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise PbganError(f"{results_path}: not a readable results.json ({error})") from error
    if not isinstance(results, dict):
        raise PbganError(f"{results_path}: not a results.json (a JSON object is expected)")
    missing = [key for key in REQUIRED_FIELDS if key not in results]
    if missing:
        raise PbganError(f"{results_path}: not a pbgan results.json (missing {', '.join(missing)})")
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


def _natural_key(path: Path) -> list[Any]:
    """Sort job folders as numbers (2_... before 10_...)."""
    key: list[Any] = []
    for part in path.parts:
        head = part.split("_", 1)[0]
        key.append((0, int(head), part) if head.isdigit() else (1, 0, part))
    return key


def load_runs(directory: str | Path) -> list[Run]:
    """Every run under ``directory``; unreadable results.json files are skipped with a warning.

    Raises PbganError when there is no directory, no results.json, or not one readable."""
    root = Path(directory)
    runs = []
    for path in find_results(root):
        try:
            runs.append(load_run(path, root=root if root.is_dir() else root.parent))
        except PbganError as error:
            warnings.warn(f"skipping {error}", SkippedRunWarning, stacklevel=2)
    if not runs:
        raise PbganError(f"{root}: none of its {RESULTS_FILE} files could be read (see the warnings above)")
    return runs


# --- tables ------------------------------------------------------------------------------------


def _mean_std(values: Iterable[float | None]) -> tuple[float | None, float | None]:
    present = [float(v) for v in values if v is not None]
    if not present:
        return None, None
    if len(present) == 1:
        return present[0], None
    return statistics.mean(present), statistics.stdev(present)


def _config_key(run: Run) -> tuple:
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
        groups.setdefault(_config_key(run), []).append(run)
    ordered = sorted(groups, key=_sort_key)
    return [sorted(groups[key], key=lambda run: (run.seed is None, run.seed or 0)) for key in ordered]


def _fid_keys(runs: Iterable[Run]) -> list[str]:
    present = {run.fid_key for run in runs}
    return [key for key in FID_KEYS if key in present]


def _has_metric(runs: Iterable[Run], metric: str) -> bool:
    return any(metric in run.matrix for run in runs)


def _complete(runs: Iterable[Run], what: str) -> list[Run]:
    runs = list(runs)
    partial = [run for run in runs if not run.complete]
    for run in partial:
        warnings.warn(
            f"{run.path}: learned {run.completed_tasks} of {len(run.tasks)} tasks; left out of the {what}",
            SkippedRunWarning,
            stacklevel=3,
        )
    return [run for run in runs if run.complete]


def _sequence_labels(runs: list[Run]) -> dict[tuple, str]:
    """task_seq name per (name, tasks); the task list is added where one name covers several lists."""
    lists: dict[str, set[tuple[str, ...]]] = {}
    for run in runs:
        lists.setdefault(run.task_seq, set()).add(tuple(run.tasks))
    return {
        (name, tasks): name if len(variants) == 1 else f"{name} ({'+'.join(tasks)})"
        for name, variants in lists.items()
        for tasks in variants
    }


def _differing_overrides(groups: list[list[Run]]) -> list[str]:
    """Per group, the overrides that set it apart from the others (those common to all dropped)."""
    extras = [group[0].extra_overrides() for group in groups]
    common = frozenset.intersection(*extras) if extras else frozenset()
    return [" ".join(sorted(extra - common)) for extra in extras]


def _stat_columns(row: Row, name: str, values: Iterable[float | None], std: bool = True) -> None:
    mean, spread = _mean_std(values)
    row[name] = mean
    if std:
        row[f"{name}_std"] = spread


def _group_row(group: list[Run], fid_keys: list[str], with_l1: bool) -> Row:
    """The averaged columns of a configuration's runs (everything after the identifying ones)."""
    row: Row = {
        "n": len(group),
        "seeds": ",".join(str(run.seed) for run in group),
        "tasks": len(group[0].tasks),
    }
    _stat_columns(row, "acc", (run.final("acc") for run in group))
    for key in fid_keys:
        _stat_columns(row, key, (run.final(key) for run in group))
    if with_l1:
        _stat_columns(row, "l1", (run.final("l1") for run in group))
    for metric in ["acc", *fid_keys]:
        _stat_columns(row, f"last_{metric}", (run.last(metric) for run in group))
    _stat_columns(row, "stored_params", (run.params.get("stored_total") for run in group), std=False)
    _stat_columns(row, "standalone_params", (run.params.get("standalone_total") for run in group), std=False)
    _stat_columns(row, "stored_share", (run.params.get("stored_share") for run in group), std=False)
    _stat_columns(row, "new_task_share", (run.new_task_share() for run in group), std=False)
    _stat_columns(row, "stored_bytes", (run.params.get("stored_bytes_total") for run in group), std=False)
    _stat_columns(row, "bytes_share", (run.bytes_share() for run in group), std=False)
    for metric in ["acc", *fid_keys]:
        _stat_columns(row, f"bwt_{metric}", (run.bwt(metric) for run in group))
    for metric in ["acc", *fid_keys]:
        _stat_columns(row, f"forgetting_{metric}", (run.forgetting(metric) for run in group))
    changes = [run.output_change() for run in group]
    row["output_change"] = max((c for c in changes if c is not None), default=None)
    for key in ("stored_params", "standalone_params", "stored_bytes"):
        if row[key] is not None and float(row[key]).is_integer():
            row[key] = int(row[key])
    return row


def _identity(group: list[Run], labels: dict[tuple, str], overrides: str) -> Row:
    run = group[0]
    return {
        "task_seq": labels[(run.task_seq, tuple(run.tasks))],
        "model": run.model,
        "method": run.method,
        "width": run.width,
        "ratio": run.ratio,
        "overrides": overrides or None,
    }


def methods_table(runs: Iterable[Run]) -> list[Row]:
    """One row per run configuration (task_seq, model, method, width, ratio, other overrides).

    Seeds are averaged: each averaged column ``X`` has ``X_std`` beside it (the sample standard
    deviation, None for one run), ``n`` counts the runs and ``seeds`` lists them. Acc, FID and
    L1 are final averages over the tasks; ``last_*`` the last task's value right after learning it
    (the ablations' figure); ``stored_share`` is stored parameters over T standalone
    models; ``new_task_share`` the mean parameters a later task stores over one standalone model;
    ``output_change`` the largest max-abs change of an old task's outputs. Runs that did not learn
    every task are left out with a warning."""
    runs = _complete(runs, "methods table")
    groups = group_runs(runs)
    labels = _sequence_labels(runs)
    fid_keys, with_l1 = _fid_keys(runs), _has_metric(runs, "l1")
    return [
        {**_identity(group, labels, extra), **_group_row(group, fid_keys, with_l1)}
        for group, extra in zip(groups, _differing_overrides(groups))
    ]


RATIO_COLUMNS = (
    "task_seq",
    "model",
    "method",
    "width",
    "overrides",
    "ratio",
    "n",
    "seeds",
    "acc",
    "acc_std",
    "l1",
    "l1_std",
    "stored_params",
    "stored_share",
    "new_task_share",
    "stored_bytes",
    "bytes_share",
)


def ratio_table(runs: Iterable[Run]) -> list[Row]:
    """FID, Acc and stored parameters against ratio: the configurations that differ only in ratio.

    One row per (series, ratio), series being everything else of the configuration; a series
    with a single ratio is left out."""
    return ratio_rows(methods_table(runs))


def ratio_columns(methods: list[Row]) -> list[str]:
    """The ratio table's columns for these methods-table rows (FID first, then Acc, then storage)."""
    present = set(methods[0]) if methods else set(RATIO_COLUMNS)
    columns = [column for column in RATIO_COLUMNS if column in present]
    fid_columns = [column for key in FID_KEYS for column in (key, f"{key}_std") if column in present]
    at = columns.index("acc")
    return columns[:at] + fid_columns + columns[at:]


def ratio_rows(methods: list[Row]) -> list[Row]:
    """The ratio table from rows of methods_table."""
    series: dict[tuple, list[Row]] = {}
    for row in methods:
        key = (row["task_seq"], row["model"], row["method"], row["width"], row["overrides"])
        series.setdefault(key, []).append(row)
    columns = ratio_columns(methods)
    table = []
    for members in series.values():
        if len({row["ratio"] for row in members}) < 2:
            continue
        for row in sorted(members, key=lambda r: (r["ratio"] is None, r["ratio"] or 0.0)):
            table.append({column: row.get(column) for column in columns})
    return table


def runs_table(runs: Iterable[Run]) -> list[Row]:
    """One row per run, nothing averaged, with the run's folder (``run``)."""
    runs = list(runs)
    labels = _sequence_labels(runs)
    fid_keys, with_l1 = _fid_keys(runs), _has_metric(runs, "l1")
    rows = []
    for run in runs:
        row = {"run": run.name, **_identity([run], labels, " ".join(sorted(run.extra_overrides())))}
        row["seed"] = run.seed
        row["completed_tasks"] = run.completed_tasks
        averaged = _group_row([run], fid_keys, with_l1)
        row.update({k: v for k, v in averaged.items() if not k.endswith("_std") and k not in ("n", "seeds")})
        rows.append(row)
    return rows


def matrix_rows(runs: Iterable[Run]) -> list[Row]:
    """Every run's continual matrices, tidy: run, metric, stage (0: untrained), task, value."""
    rows = []
    for run in runs:
        for metric, matrix in run.matrix.items():
            for task, value in enumerate(run.untrained.get(metric) or []):
                if value is not None:
                    rows.append(_matrix_row(run, metric, 0, task, value))
            for stage, values in enumerate(matrix):
                for task, value in enumerate(values):
                    if value is not None:
                        rows.append(_matrix_row(run, metric, stage + 1, task, value))
        for stage, values in enumerate(run.max_abs_change):
            for task, value in enumerate(values):
                if value is not None:
                    rows.append(_matrix_row(run, "max_abs_change", stage + 1, task, value))
    return rows


def _matrix_row(run: Run, metric: str, stage: int, task: int, value: float) -> Row:
    return {
        "run": run.name,
        "method": run.method,
        "ratio": run.ratio,
        "seed": run.seed,
        "metric": metric,
        "stage": stage,
        "stage_task": run.tasks[stage - 1] if stage else "untrained",
        "task": task + 1,
        "task_name": run.tasks[task],
        "value": value,
    }


# --- formatting ----------------------------------------------------------------------------------

LABELS = {
    "task_seq": "task_seq",
    "acc": "Acc ↑",
    "fid_domain": "FID (domain) ↓",
    "fid_inception": "FID (Inception) ↓",
    "l1": "L1 ↓",
    "last_acc": "Acc last task ↑",
    "last_fid_domain": "FID (domain) last task ↓",
    "last_fid_inception": "FID (Inception) last task ↓",
    "stored_params": "stored params",
    "standalone_params": "standalone params",
    "stored_share": "share of standalone",
    "new_task_share": "per new task / model",
    "stored_bytes": "stored bytes",
    "bytes_share": "bytes share",
    "bwt_acc": "BWT Acc",
    "bwt_fid_domain": "BWT FID (domain)",
    "bwt_fid_inception": "BWT FID (Inception)",
    "forgetting_acc": "forgetting Acc",
    "forgetting_fid_domain": "forgetting FID (domain)",
    "forgetting_fid_inception": "forgetting FID (Inception)",
    "output_change": "max output change",
}


def format_value(value: Any, digits: int = 4) -> str:
    """A table cell: ints with thousands separators, floats to ``digits`` significant digits."""
    if value is None:
        return "-"
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        if math.isnan(value):
            return "-"
        if value != 0 and abs(value) >= 10**digits:
            return f"{value:,.0f}"
        return f"{value:.{digits}g}"
    return str(value).replace("|", "\\|")


def _number(value: float) -> str:
    return f"{value:g}"


def to_markdown(rows: list[Row], columns: list[str] | None = None, keep_empty: bool = False) -> str:
    """Rows of dicts as a markdown table.

    A column ``X_std`` is merged into ``X`` as ``mean ± std``; columns empty in every row are
    dropped unless ``keep_empty``; known keys get readable headers (``LABELS``)."""
    if not rows:
        return "_no rows_"
    columns = list(columns or rows[0])
    shown = [c for c in columns if not (c.endswith("_std") and c[: -len("_std")] in columns)]
    if not keep_empty:
        shown = [c for c in shown if any(row.get(c) is not None for row in rows)]
    lines = [
        "| " + " | ".join(LABELS.get(c, c) for c in shown) + " |",
        "|" + "|".join("---" if c in _TEXT_COLUMNS else "---:" for c in shown) + "|",
    ]
    for row in rows:
        cells = []
        for column in shown:
            cell = format_value(row.get(column))
            spread = row.get(f"{column}_std")
            if spread is not None and row.get(column) is not None:
                cell += f" ± {format_value(spread, 2)}"
            cells.append(cell)
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


_TEXT_COLUMNS = {"task_seq", "model", "method", "overrides", "seeds", "run", "metric", "after \\ on"}


def matrix_markdown(run: Run, metric: str) -> str:
    """One continual matrix as markdown: rows after learning task i (an untrained row first)."""
    matrix = run.max_abs_change if metric == "max_abs_change" else run.matrix[metric]
    header = ["after \\ on"] + [f"{j + 1}: {name}" for j, name in enumerate(run.tasks)]
    lines = ["| " + " | ".join(header) + " |", "|---|" + "---:|" * len(run.tasks)]
    untrained = run.untrained.get(metric)
    if untrained:
        lines.append("| untrained | " + " | ".join(format_value(v) for v in untrained) + " |")
    for i, values in enumerate(matrix[: run.completed_tasks]):
        cells = [format_value(v) for v in values]
        lines.append(f"| {i + 1}: {run.tasks[i]} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _direction(run: Run, metric: str) -> str:
    if metric == "max_abs_change":
        return "0 means the task's outputs did not move"
    better = run.higher_is_better.get(metric)
    return "" if better is None else ("higher is better" if better else "lower is better")


MARKDOWN_HIDDEN = ("standalone_params", "stored_bytes")  # in the CSV files; too wide for the page


def _hide(row: Row, columns: Iterable[str]) -> Row:
    return {key: value for key, value in row.items() if key not in columns}


def markdown_rows(rows: list[Row]) -> list[Row]:
    """Rows for the page: the widest CSV-only columns out, and ``width`` when every run is full width."""
    hidden = list(MARKDOWN_HIDDEN)
    if all(row.get("width") in (None, 1.0) for row in rows):
        hidden.append("width")
    return [_hide(row, hidden) for row in rows]


def report_markdown(
    runs: list[Run],
    title: str = "pbgan report",
    methods: list[Row] | None = None,
    ratios: list[Row] | None = None,
) -> str:
    """The whole report as markdown: methods table, ratio table, per-run matrices.

    ``methods`` and ``ratios`` are the tables when already made (else they are made here)."""
    methods = methods_table(runs) if methods is None else methods
    ratios = ratio_rows(methods) if ratios is None else ratios
    complete = [run for run in runs if run.complete]
    fid_keys = _fid_keys(runs)
    parts = [f"# {title}", ""]
    parts.append(f"{len(runs)} runs ({len(complete)} with every task learned).")
    if "fid_domain" in fid_keys:
        parts.append(
            "FID (domain) is measured in the domain classifier's feature space: compare it between "
            "methods and ratios of the same settings only, never with published or Inception FIDs."
        )
    if len(fid_keys) > 1:
        parts.append("These runs measured FID in two ways; the two are kept in separate columns.")
    parts += [
        "",
        "## Methods",
        "",
        "Acc, FID and L1: final averages over the tasks after the last one; 'last task': the "
        "last task's value right after learning it. Mean ± std over seeds (n runs). Acc and BWT "
        "Acc: higher is better; FID, L1 and forgetting: lower is better (forgetting 0: nothing "
        "forgotten). share of standalone: stored generator parameters over T standalone models; "
        "per new task / model: parameters each later task stores over one standalone model.",
        "",
        to_markdown(markdown_rows(methods)),
        "",
        "## Against ratio",
        "",
    ]
    parts.append(to_markdown(markdown_rows(ratios)) if ratios else "_No runs differ only in ratio._")
    parts += ["", "## Continual matrices", "", "Rows: after learning task i; columns: task j.", ""]
    for run in runs:
        state = "" if run.complete else f" (learned {run.completed_tasks} of {len(run.tasks)} tasks)"
        parts += [f"### {run.name}: {run.label}{state}", ""]
        context = [f"task_seq {run.task_seq}", f"model {run.model}"]
        if run.overrides:
            context.append("overrides `" + " ".join(run.overrides) + "`")
        parts += ["; ".join(context), ""]
        for metric in [*run.matrix, "max_abs_change"]:
            if metric == "max_abs_change" and not run.max_abs_change:
                continue
            direction = _direction(run, metric)
            parts += [
                f"{metric}" + (f" ({direction})" if direction else ""),
                "",
                matrix_markdown(run, metric),
                "",
            ]
    return "\n".join(parts).rstrip() + "\n"


def csv_text(rows: list[Row], columns: list[str] | None = None) -> str:
    """Rows of dicts as CSV (header first; None as an empty cell)."""
    buffer = io.StringIO()
    columns = list(columns or (rows[0] if rows else []))
    writer = csv.DictWriter(buffer, fieldnames=columns, lineterminator="\n", extrasaction="ignore")
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue()


@dataclass
class Report:
    """What write_report wrote: the markdown text and the files, by name."""

    markdown: str
    files: dict[str, Path]
    runs: list[Run]


def write_report(directory: str | Path, out: str | Path | None = None) -> Report:
    """Read every run under ``directory``; write report.md and the CSV tables into ``out``
    (default ``directory/report``)."""
    directory = Path(directory)
    runs = load_runs(directory)
    out = Path(out) if out is not None else (directory if directory.is_dir() else directory.parent) / "report"
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise PbganError(
            f"{out}: cannot create the report folder ({error}); pick another with --out"
        ) from error
    methods = methods_table(runs)
    ratios = ratio_rows(methods)
    markdown = report_markdown(runs, f"pbgan report: {directory}", methods, ratios)
    tables = {
        "report.md": markdown,
        "methods.csv": csv_text(methods),
        "ratio.csv": csv_text(ratios, ratio_columns(methods)),
        "runs.csv": csv_text(runs_table(runs)),
        "matrices.csv": csv_text(matrix_rows(runs)),
    }
    files = {}
    for name, text in tables.items():
        files[name] = out / name
        files[name].write_text(text, encoding="utf-8")
    return Report(markdown=markdown, files=files, runs=runs)


def _print_warning(message: Warning | str, category: type[Warning], *_: Any, **__: Any) -> None:
    print(f"warning: {message}", file=sys.stderr, flush=True)


def main(argv: list[str] | None = None, show_warning: Callable[..., None] = _print_warning) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m pbgan.report",
        description="Paper-style tables (markdown and CSV) from every results.json under DIR.",
    )
    parser.add_argument("dir", metavar="DIR", help="a multirun directory, or any folder of runs")
    parser.add_argument("--out", metavar="OUTDIR", help="where to write the report (default: DIR/report)")
    args = parser.parse_args(argv)
    with warnings.catch_warnings():
        warnings.simplefilter("always", SkippedRunWarning)
        warnings.showwarning = show_warning
        try:
            report = write_report(args.dir, args.out)
        except PbganError as error:
            print(f"error: {error}", file=sys.stderr, flush=True)
            return 2
    print(report.markdown)
    print(f"report written to {report.files['report.md'].parent}: {', '.join(report.files)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
