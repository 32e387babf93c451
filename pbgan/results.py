"""The continual results of one task sequence: the one reader and writer of results.json.

The runner records into :class:`ContinualResults` and writes ``to_dict()`` as results.json (and
``tidy_rows()`` as results.csv); resuming and extending read it back with ``from_dict``; the
report reads run folders with ``ContinualResults.load``. Everything results.json holds besides
the recorded values (summary, params) is derived here, so every reader sees the same numbers.
"""

from __future__ import annotations

import csv
import io
import json
import statistics
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pbgan.errors import PbganError

Matrix = list[list[float | None]]
Row = dict[str, Any]

RESULTS_FILE = "results.json"
# What every results.json the runner writes holds (the report's first five first); ``width``,
# ``params.standalone_model`` and ``extended_from`` came later and are optional.
REQUIRED_FIELDS = (
    "tasks",
    "method",
    "matrix",
    "params",
    "summary",
    "domains",
    "ratio",
    "seed",
    "model",
    "untrained",
    "higher_is_better",
    "bank_sizes",
    "forgetting",
    "task_seconds",
)
REQUIRED_NESTED = {"params": ("per_task", "per_task_bytes"), "forgetting": ("max_abs_change",)}
CHANGE = "max_abs_change"  # the matrix of the largest change of a task's outputs


def empty_matrix(size: int) -> Matrix:
    return [[None] * size for _ in range(size)]


def continual_summary(matrix: Matrix, stages: int, higher_is_better: bool) -> dict[str, float | None]:
    """Final average, BWT and forgetting of one metric after ``stages`` learned tasks.

    BWT = mean over j < T of R[T][j] - R[j][j] (its sign reads with the metric's direction).
    Forgetting = mean over j < T of how much worse R[T][j] is than the best R[i][j], i < T:
    >= 0, and 0 when nothing was forgotten, for metrics of either direction.
    Cells that were not measured (None: a task learned in an earlier run whose data this run
    does not have) are left out of every mean.
    """
    summary: dict[str, float | None] = {"final_average": None, "bwt": None, "forgetting": None}
    if stages == 0:
        return summary
    last = stages - 1
    final = [matrix[last][j] for j in range(stages) if matrix[last][j] is not None]
    if final:
        summary["final_average"] = sum(final) / len(final)
    measured = [j for j in range(last) if matrix[last][j] is not None and matrix[j][j] is not None]
    if measured:
        summary["bwt"] = sum(matrix[last][j] - matrix[j][j] for j in measured) / len(measured)
        sign = 1.0 if higher_is_better else -1.0  # compare as "higher is better"
        drops = [
            max(sign * matrix[i][j] for i in range(j, last) if matrix[i][j] is not None)
            - sign * matrix[last][j]
            for j in measured
        ]
        summary["forgetting"] = sum(drops) / len(measured)
    return summary


def grown(matrix: Matrix, size: int) -> Matrix:
    """``matrix`` padded with unmeasured cells to ``size`` x ``size``."""
    rows = [list(row) + [None] * (size - len(row)) for row in matrix]
    return rows + [[None] * size for _ in range(size - len(rows))]


@dataclass
class ContinualResults:
    """R[i][j] per metric (metric of task j after learning task i), forgetting and storage."""

    tasks: list[str]
    domains: list[str]
    ratio: float | None
    method: str
    seed: int
    model: str
    matrix: dict[str, Matrix] = field(default_factory=dict)
    max_abs_change: Matrix = field(default_factory=list)
    untrained: dict[str, list[float | None]] = field(default_factory=dict)
    per_task_params: list[int] = field(default_factory=list)
    per_task_bytes: list[int] = field(default_factory=list)
    bank_sizes: dict[str, list[int]] = field(default_factory=dict)
    task_seconds: list[float] = field(default_factory=list)
    width: float | None = 1.0  # None: read from a results.json that did not record it
    standalone_params: int | None = None  # one ordinary full-width model; default: task 1's storage
    classifier: dict[str, Any] = field(default_factory=dict)
    higher_is_better: dict[str, bool] = field(default_factory=dict)
    # Set when the sequence extends a model file: its file and how many tasks came from it.
    # Those tasks' rows were measured by the run that learned them (with its own classifier).
    extended_from: dict[str, Any] | None = None
    # storage.dtype per finished task: its codec, float32 and stored bytes, and for a compressed
    # task the one-time change compressing made (outputs, metrics just before); None: not recorded.
    storage: list[dict[str, Any] | None] = field(default_factory=list)

    def __post_init__(self) -> None:
        if not self.max_abs_change:
            self.max_abs_change = empty_matrix(len(self.tasks))

    @property
    def completed(self) -> int:
        """Stages finished: the number of tasks learned so far."""
        return len(self.per_task_params)

    def extend(self, tasks: list[str], domains: list[str]) -> None:
        """Follow the tasks learned so far with ``tasks`` (learned by a later run)."""
        keep = self.completed
        self.tasks = self.tasks[:keep] + tasks
        self.domains = self.domains[:keep] + domains
        size = len(self.tasks)

        def cut(matrix: Matrix) -> Matrix:
            return grown([row[:keep] for row in matrix[:keep]], size)

        self.matrix = {name: cut(matrix) for name, matrix in self.matrix.items()}
        self.max_abs_change = cut(self.max_abs_change)
        self.storage = self.storage[:keep]
        self.untrained = {
            name: values[:keep] + [None] * (size - keep) for name, values in self.untrained.items()
        }

    def record_untrained(self, task: int, metrics: dict[str, float]) -> None:
        for name, value in metrics.items():
            self.untrained.setdefault(name, [None] * len(self.tasks))[task] = value

    def record_metrics(self, stage: int, task: int, metrics: dict[str, float]) -> None:
        for name, value in metrics.items():
            self.matrix.setdefault(name, empty_matrix(len(self.tasks)))[stage][task] = value

    def record_storage(self, task: int, record: dict[str, Any]) -> None:
        """How task ``task`` was stored when it ended (``storage.dtype``)."""
        self.storage += [None] * (task + 1 - len(self.storage))
        self.storage[task] = record

    def record_change(self, stage: int, task: int, change: float) -> None:
        self.max_abs_change[stage][task] = change

    def record_stage(self, params: int, stored_bytes: int, banks: dict[str, int], seconds: float) -> None:
        """Close a stage: what the newest task stores and the banks' sizes after it."""
        self.per_task_params.append(params)
        self.per_task_bytes.append(stored_bytes)
        self.task_seconds.append(seconds)
        for layer, rows in banks.items():
            self.bank_sizes.setdefault(layer, []).append(rows)

    # --- results.json ----------------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """What results.json holds."""
        return {
            "tasks": self.tasks,
            "domains": self.domains,
            "ratio": self.ratio,
            "method": self.method,
            "width": self.width,
            "seed": self.seed,
            "model": self.model,
            "completed_tasks": self.completed,
            "matrix": self.matrix,
            "untrained": self.untrained,
            "params": self.params(),
            "summary": self.summary(),
            "higher_is_better": {name: self.higher_is_better[name] for name in self.matrix},
            "classifier": self.classifier,
            "bank_sizes": self.bank_sizes,
            "forgetting": {CHANGE: self.max_abs_change},
            "task_seconds": self.task_seconds,
            "extended_from": self.extended_from,
            "storage": self.storage,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ContinualResults:
        """Results as a results.json holds them (to resume a sequence, to report on it)."""
        params = data["params"]
        return cls(
            tasks=data["tasks"],
            domains=data["domains"],
            ratio=data["ratio"],
            method=data["method"],
            seed=data["seed"],
            model=data["model"],
            matrix=data["matrix"],
            max_abs_change=data["forgetting"][CHANGE],
            untrained=data["untrained"],
            per_task_params=params["per_task"],
            per_task_bytes=params["per_task_bytes"],
            bank_sizes=data["bank_sizes"],
            task_seconds=data["task_seconds"],
            width=data.get("width"),
            standalone_params=_standalone_model(params),
            classifier=data.get("classifier", {}),
            higher_is_better=data["higher_is_better"],
            extended_from=data.get("extended_from"),
            storage=list(data.get("storage") or []),
        )

    @classmethod
    def load(cls, path: str | Path) -> ContinualResults:
        """A results.json file, read and checked.

        Raises PbganError naming the file when it cannot be read, is not JSON, or is not what
        the runner writes (a missing field, a metric without its direction, a wrong shape)."""
        path = Path(path)
        try:
            data = json.loads(path.read_text())
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
            raise PbganError(f"{path}: not a readable {RESULTS_FILE} ({error})") from error
        if not isinstance(data, dict):
            raise PbganError(f"{path}: not a {RESULTS_FILE} (a JSON object is expected)")
        missing = [key for key in REQUIRED_FIELDS if key not in data]
        missing += [
            f"{key}.{inner}"
            for key, inners in REQUIRED_NESTED.items()
            if isinstance(data.get(key), dict)
            for inner in inners
            if inner not in data[key]
        ]
        if missing:
            raise PbganError(f"{path}: not a pbgan {RESULTS_FILE} (missing {', '.join(missing)})")
        try:
            results = cls.from_dict(data)
            undirected = [name for name in results.matrix if name not in results.higher_is_better]
            if undirected:
                raise PbganError(
                    f"{path}: not a pbgan {RESULTS_FILE} (no higher_is_better for {', '.join(undirected)})"
                )
            results.params()
            results.summary()
            results.tidy_rows(by_metric=True, with_change=True)
        except (AttributeError, IndexError, KeyError, TypeError, ValueError, ZeroDivisionError) as error:
            reason = f"{type(error).__name__}: {error}"
            raise PbganError(f"{path}: not a pbgan {RESULTS_FILE} ({reason})") from error
        return results

    # --- what results.json derives from the recorded values --------------------------------------

    def params(self) -> dict[str, Any]:
        """Stored parameters and bytes against standalone models (results.json's ``params``)."""
        first = self.per_task_params[0] if self.per_task_params else 0
        standalone = self.standalone_params or first
        first_bytes = self.per_task_bytes[0] if self.per_task_bytes else 0
        first_record = self.storage[0] if self.storage else None
        if first_record and first_record.get("float32_bytes"):  # a standalone model is float32
            first_bytes = int(first_record["float32_bytes"])
        standalone_bytes = first_bytes * standalone // first if first else 0
        learned = self.completed
        return {
            "per_task": self.per_task_params,
            "stored_total": sum(self.per_task_params),
            "standalone_total": standalone * learned,
            "standalone_model": standalone,
            "stored_share": sum(self.per_task_params) / (standalone * learned) if learned else None,
            "per_task_bytes": self.per_task_bytes,
            "stored_bytes_total": sum(self.per_task_bytes),
            "standalone_bytes_total": standalone_bytes * learned,
        }

    def summary(self) -> dict[str, dict[str, float | None]]:
        """Per metric: final average over tasks, BWT and forgetting after the last learned task."""
        return {name: self.metric_summary(name) for name in self.matrix}

    def metric_summary(self, metric: str) -> dict[str, float | None]:
        """One metric's final average, BWT and forgetting (all None where it was not measured). A
        measurement's spread (``kid_domain_std``, beside ``kid_domain``) has a final average only:
        a change in a spread is neither transfer nor forgetting."""
        if metric not in self.matrix:
            return continual_summary([], 0, True)
        summary = continual_summary(self.matrix[metric], self.completed, self.higher_is_better[metric])
        if self.is_spread(metric):
            summary.update(bwt=None, forgetting=None)
        return summary

    def is_spread(self, name: str) -> bool:
        """Whether ``name`` is the spread of another measured metric (``X_std`` beside ``X``)."""
        return name.endswith("_std") and name[: -len("_std")] in self.matrix

    def matrix_of(self, metric: str) -> Matrix:
        """A metric's continual matrix, or ``max_abs_change``'s."""
        return self.max_abs_change if metric == CHANGE else self.matrix[metric]

    def last_learned(self, metric: str) -> float | None:
        """The last learned task's metric right after learning it (the ablations' "task 2" figure)."""
        matrix, stage = self.matrix.get(metric), self.completed - 1
        return matrix[stage][stage] if matrix and stage >= 0 else None

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
        """Mean parameters each task after the first stores, over one standalone model (full width,
        also for narrower ``full`` runs)."""
        params = self.params()
        per_task, standalone = params["per_task"], params["standalone_total"]
        if len(per_task) < 2 or not standalone:
            return None
        return statistics.mean(per_task[1:]) / (standalone / len(per_task))

    def new_task_bytes_share(self) -> float | None:
        """Mean bytes each task after the first stores (as stored: compressed where it is), over
        one standalone float32 model's bytes."""
        params = self.params()
        per_task, standalone = params["per_task_bytes"], params["standalone_bytes_total"]
        if len(per_task) < 2 or not standalone:
            return None
        return statistics.mean(per_task[1:]) / (standalone / len(per_task))

    def bytes_share(self) -> float | None:
        """Stored bytes over the bytes of T standalone models."""
        params = self.params()
        standalone = params["standalone_bytes_total"]
        return params["stored_bytes_total"] / standalone if standalone else None

    # --- tidy form -------------------------------------------------------------------------------

    def tidy_rows(self, by_metric: bool = False, with_change: bool = False) -> list[Row]:
        """One row per measured (stage, task, metric): stage, stage_task, task, task_name, metric,
        value; stage 0 holds the untrained generators' values.

        results.csv's order: every metric's untrained values, then every metric's matrix.
        ``by_metric`` (the report's): each metric's untrained values, then its matrix (untrained
        values of a metric without a matrix left out). ``with_change``: max_abs_change's last."""
        cells: list[tuple[str, int, Matrix]] = []  # (metric, first stage, rows)
        if by_metric:
            for name, matrix in self.matrix.items():
                cells += [(name, 0, [self.untrained.get(name) or []]), (name, 1, matrix)]
        else:
            cells += [(name, 0, [values]) for name, values in self.untrained.items()]
            cells += [(name, 1, matrix) for name, matrix in self.matrix.items()]
        if with_change:
            cells.append((CHANGE, 1, self.max_abs_change))
        return [
            self._row(first + stage, task, name, value)
            for name, first, matrix in cells
            for stage, row in enumerate(matrix)
            for task, value in enumerate(row)
            if value is not None
        ]

    def _row(self, stage: int, task: int, metric: str, value: float) -> Row:
        return {
            "stage": stage,
            "stage_task": self.tasks[stage - 1] if stage else "untrained",
            "task": task + 1,
            "task_name": self.tasks[task],
            "metric": metric,
            "value": value,
        }


def _standalone_model(params: dict[str, Any]) -> int | None:
    """One standalone model's parameters; results.json files older than ``standalone_model``
    have it as ``standalone_total`` over the tasks learned."""
    model = params.get("standalone_model")
    if model is None and params.get("standalone_total") and params["per_task"]:
        model = params["standalone_total"] // len(params["per_task"])
    return model


def csv_text(rows: list[Row], columns: list[str] | None = None) -> str:
    """Rows of dicts as CSV: header first (``columns``, default the first row's keys; other keys
    left out), None as an empty cell."""
    buffer = io.StringIO()
    columns = list(columns if columns is not None else (rows[0] if rows else []))
    writer = csv.DictWriter(buffer, fieldnames=columns, lineterminator="\n", extrasaction="ignore")
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue()


def format_table(rows: list[list[str]]) -> str:
    """Right-aligned text columns with a rule under the header row."""
    widths = [max(len(row[col]) for row in rows) for col in range(len(rows[0]))]
    lines = ["  ".join(cell.rjust(width) for cell, width in zip(row, widths)) for row in rows]
    lines.insert(1, "  ".join("-" * width for width in widths))
    return "\n".join(lines)


def format_summary(results: ContinualResults) -> str:
    """Final average, BWT and forgetting of every metric as a text table."""
    rows = [["metric", "final avg", "BWT", "forgetting", "better"]]
    for name, values in results.summary().items():
        cells = [
            "-" if values[key] is None else f"{values[key]:.4f}"
            for key in ("final_average", "bwt", "forgetting")
        ]
        rows.append([name, *cells, "higher" if results.higher_is_better[name] else "lower"])
    return format_table(rows)


# What a sweeper can minimise or maximise (``objective``): every metric's final average by its
# name (``fid`` and ``kid``: whichever kind the run measured), and the storage figures.
STORAGE_OBJECTIVES = ("stored_share", "new_task_share", "bytes_share", "new_task_bytes_share")
OBJECTIVE_ALIASES = {"fid": ("fid_domain", "fid_inception"), "kid": ("kid_domain", "kid_inception")}


def objective_value(results: ContinualResults, name: str) -> float:
    """One objective of a finished run (see ``STORAGE_OBJECTIVES``, ``OBJECTIVE_ALIASES``)."""
    if name in STORAGE_OBJECTIVES:
        value = results.params()["stored_share"] if name == "stored_share" else getattr(results, name)()
    else:
        keys = OBJECTIVE_ALIASES.get(name, (name,))
        key = next((k for k in keys if k in results.matrix), None)
        if key is None:
            measured = ", ".join([*results.matrix, *OBJECTIVE_ALIASES, *STORAGE_OBJECTIVES])
            raise PbganError(f"objective {name!r} was not measured by this run: use one of {measured}")
        value = results.metric_summary(key)["final_average"]
    if value is None:
        raise PbganError(f"objective {name!r} has no value for this run (a later task is needed for shares)")
    return float(value)


def format_tasks(results: ContinualResults) -> str:
    """Per task: its training wall time, stored parameters and bytes, as a text table."""
    rows = [["task", "train seconds", "stored params", "stored bytes"]]
    for i in range(results.completed):
        seconds = results.task_seconds[i] if i < len(results.task_seconds) else None
        rows.append(
            [
                f"{i + 1}:{results.tasks[i]}",
                "-" if seconds is None else f"{seconds:.1f}",
                f"{results.per_task_params[i]:,}",
                f"{results.per_task_bytes[i]:,}",
            ]
        )
    return format_table(rows)


def format_matrix(results: ContinualResults, metric: str, digits: int = 4) -> str:
    """The metric's continual matrix as an aligned text table (rows: after task i)."""
    header = [f"{metric} after \\ on"] + [f"{j + 1}:{name}" for j, name in enumerate(results.tasks)]
    rows = [header]
    for i, row in enumerate(results.matrix_of(metric)[: results.completed]):
        cells = ["-" if value is None else f"{value:.{digits}f}" for value in row]
        rows.append([f"{i + 1}:{results.tasks[i]}"] + cells)
    return format_table(rows)
