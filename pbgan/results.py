"""The continual results of one task sequence: what results.json holds and how it prints."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from typing import Any

Matrix = list[list[float | None]]


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
    width: float = 1.0
    standalone_params: int | None = None  # one ordinary full-width model; default: task 1's storage
    classifier: dict[str, Any] = field(default_factory=dict)
    higher_is_better: dict[str, bool] = field(default_factory=dict)
    # Set when the sequence extends a model file: its file and how many tasks came from it.
    # Those tasks' rows were measured by the run that learned them (with its own classifier).
    extended_from: dict[str, Any] | None = None

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
        self.untrained = {
            name: values[:keep] + [None] * (size - keep) for name, values in self.untrained.items()
        }

    def record_untrained(self, task: int, metrics: dict[str, float]) -> None:
        for name, value in metrics.items():
            self.untrained.setdefault(name, [None] * len(self.tasks))[task] = value

    def record_metrics(self, stage: int, task: int, metrics: dict[str, float]) -> None:
        for name, value in metrics.items():
            self.matrix.setdefault(name, empty_matrix(len(self.tasks)))[stage][task] = value

    def record_change(self, stage: int, task: int, change: float) -> None:
        self.max_abs_change[stage][task] = change

    def record_stage(self, params: int, stored_bytes: int, banks: dict[str, int], seconds: float) -> None:
        """Close a stage: what the newest task stores and the banks' sizes after it."""
        self.per_task_params.append(params)
        self.per_task_bytes.append(stored_bytes)
        self.task_seconds.append(seconds)
        for layer, rows in banks.items():
            self.bank_sizes.setdefault(layer, []).append(rows)

    def to_dict(self) -> dict[str, Any]:
        first = self.per_task_params[0] if self.per_task_params else 0
        standalone = self.standalone_params or first
        first_bytes = self.per_task_bytes[0] if self.per_task_bytes else 0
        standalone_bytes = first_bytes * standalone // first if first else 0
        learned = self.completed
        return {
            "tasks": self.tasks,
            "domains": self.domains,
            "ratio": self.ratio,
            "method": self.method,
            "width": self.width,
            "seed": self.seed,
            "model": self.model,
            "completed_tasks": learned,
            "matrix": self.matrix,
            "untrained": self.untrained,
            "params": {
                "per_task": self.per_task_params,
                "stored_total": sum(self.per_task_params),
                "standalone_total": standalone * learned,
                "standalone_model": standalone,
                "stored_share": sum(self.per_task_params) / (standalone * learned) if learned else None,
                "per_task_bytes": self.per_task_bytes,
                "stored_bytes_total": sum(self.per_task_bytes),
                "standalone_bytes_total": standalone_bytes * learned,
            },
            "summary": self.summary(),
            "higher_is_better": {name: self.higher_is_better[name] for name in self.matrix},
            "classifier": self.classifier,
            "bank_sizes": self.bank_sizes,
            "forgetting": {"max_abs_change": self.max_abs_change},
            "task_seconds": self.task_seconds,
            "extended_from": self.extended_from,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ContinualResults:
        """Results as a results.json holds them (to resume a sequence)."""
        params = data["params"]
        return cls(
            tasks=data["tasks"],
            domains=data["domains"],
            ratio=data["ratio"],
            method=data["method"],
            seed=data["seed"],
            model=data["model"],
            matrix=data["matrix"],
            max_abs_change=data["forgetting"]["max_abs_change"],
            untrained=data["untrained"],
            per_task_params=params["per_task"],
            per_task_bytes=params["per_task_bytes"],
            bank_sizes=data["bank_sizes"],
            task_seconds=data["task_seconds"],
            width=data.get("width", 1.0),
            standalone_params=params.get("standalone_model"),
            classifier=data.get("classifier", {}),
            higher_is_better=data["higher_is_better"],
            extended_from=data.get("extended_from"),
        )

    def summary(self) -> dict[str, dict[str, float | None]]:
        """Per metric: final average over tasks, BWT and forgetting after the last learned task."""
        return {
            name: continual_summary(matrix, self.completed, self.higher_is_better[name])
            for name, matrix in self.matrix.items()
        }

    def tidy_rows(self) -> list[dict[str, Any]]:
        """One row per (stage, task, metric); stage 0 holds the untrained generators' values."""
        rows = []
        for name, values in self.untrained.items():
            for task, value in enumerate(values):
                if value is not None:
                    rows.append(self._row(0, task, name, value))
        for name, matrix in self.matrix.items():
            for stage, row in enumerate(matrix):
                for task, value in enumerate(row):
                    if value is not None:
                        rows.append(self._row(stage + 1, task, name, value))
        return rows

    def _row(self, stage: int, task: int, metric: str, value: float) -> dict[str, Any]:
        return {
            "stage": stage,
            "stage_task": self.tasks[stage - 1] if stage else "untrained",
            "task": task + 1,
            "task_name": self.tasks[task],
            "metric": metric,
            "value": value,
        }


def csv_text(rows: list[dict[str, Any]]) -> str:
    """Rows of equal keys as CSV text (header first)."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(rows[0]) if rows else ["stage"], lineterminator="\n")
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


def format_matrix(results: ContinualResults, metric: str, digits: int = 4) -> str:
    """The metric's continual matrix as an aligned text table (rows: after task i)."""
    matrix = results.matrix[metric] if metric != "max_abs_change" else results.max_abs_change
    header = [f"{metric} after \\ on"] + [f"{j + 1}:{name}" for j, name in enumerate(results.tasks)]
    rows = [header]
    for i, row in enumerate(matrix[: results.completed]):
        cells = ["-" if value is None else f"{value:.{digits}f}" for value in row]
        rows.append([f"{i + 1}:{results.tasks[i]}"] + cells)
    return format_table(rows)
