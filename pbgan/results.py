"""The continual results of one task sequence: what results.json holds and how it prints."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

Matrix = list[list[float | None]]


def empty_matrix(size: int) -> Matrix:
    return [[None] * size for _ in range(size)]


@dataclass
class ContinualResults:
    """R[i][j] per metric (metric of task j after learning task i), forgetting and storage."""

    tasks: list[str]
    domains: list[str]
    ratio: float
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

    def __post_init__(self) -> None:
        if not self.max_abs_change:
            self.max_abs_change = empty_matrix(len(self.tasks))

    @property
    def completed(self) -> int:
        """Stages finished: the number of tasks learned so far."""
        return len(self.per_task_params)

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
        standalone = self.per_task_params[0] if self.per_task_params else 0
        standalone_bytes = self.per_task_bytes[0] if self.per_task_bytes else 0
        learned = self.completed
        return {
            "tasks": self.tasks,
            "domains": self.domains,
            "ratio": self.ratio,
            "method": self.method,
            "seed": self.seed,
            "model": self.model,
            "completed_tasks": learned,
            "matrix": self.matrix,
            "untrained": self.untrained,
            "params": {
                "per_task": self.per_task_params,
                "stored_total": sum(self.per_task_params),
                "standalone_total": standalone * learned,
                "stored_share": sum(self.per_task_params) / (standalone * learned) if learned else None,
                "per_task_bytes": self.per_task_bytes,
                "stored_bytes_total": sum(self.per_task_bytes),
                "standalone_bytes_total": standalone_bytes * learned,
            },
            "bank_sizes": self.bank_sizes,
            "forgetting": {"max_abs_change": self.max_abs_change},
            "task_seconds": self.task_seconds,
        }


def format_matrix(results: ContinualResults, metric: str, digits: int = 4) -> str:
    """The metric's continual matrix as an aligned text table (rows: after task i)."""
    matrix = results.matrix[metric] if metric != "max_abs_change" else results.max_abs_change
    header = [f"{metric} after \\ on"] + [f"{j + 1}:{name}" for j, name in enumerate(results.tasks)]
    rows = [header]
    for i, row in enumerate(matrix[: results.completed]):
        cells = ["-" if value is None else f"{value:.{digits}f}" for value in row]
        rows.append([f"{i + 1}:{results.tasks[i]}"] + cells)
    widths = [max(len(row[col]) for row in rows) for col in range(len(header))]
    lines = ["  ".join(cell.rjust(width) for cell, width in zip(row, widths)) for row in rows]
    lines.insert(1, "  ".join("-" * width for width in widths))
    return "\n".join(lines)
