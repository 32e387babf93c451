"""The tasks of a sequence as the config (or an extended model file) describes them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from omegaconf import DictConfig

from pbgan.errors import ConfigError


@dataclass
class TaskSpec:
    """One task of the sequence; ``data`` is None for a task learned earlier, in another run."""

    name: str
    domain: str
    source_domain: str
    direction: str
    data: DictConfig | None

    def describe(self) -> dict[str, str]:
        return {
            "name": self.name,
            "domain": self.domain,
            "source_domain": self.source_domain,
            "direction": self.direction,
        }

    @classmethod
    def learned(cls, entry: dict[str, Any]) -> TaskSpec:
        """A task as a lifelong model file describes it: learned, its data not at hand."""
        return cls(
            name=str(entry["name"]),
            domain=str(entry.get("domain", entry["name"])),
            source_domain=str(entry.get("source_domain", f"{entry['name']}_input")),
            direction=str(entry.get("direction", "AtoB")),
            data=None,
        )


def check_task_name(name: object) -> str | None:
    """Why ``name`` cannot name a task (it becomes part of file names: samples, checkpoints,
    exports), or None."""
    if not isinstance(name, str) or not name:
        return f"{name!r} is not a name"
    if name in (".", "..") or any(c in name for c in "/\\\0"):
        return f"{name!r} is not a plain file name"
    return None


def task_specs(cfg: DictConfig) -> list[TaskSpec]:
    """The tasks of ``cfg.task_seq`` in order."""
    tasks = cfg.task_seq.get("tasks") or {}
    if not tasks:
        raise ConfigError(f"task_seq={cfg.task_seq.get('name')!r} lists no tasks under 'tasks'")
    for key, task in tasks.items():
        name = str(task.get("name", key))
        if check_task_name(name):
            raise ConfigError(
                f"task_seq.tasks.{key}: the name {name!r} cannot name files; "
                "use letters, digits, '_', '-' or '.' (no '/')"
            )
    return [
        TaskSpec(
            name=str(task.get("name", key)),
            domain=str(task.get("domain", key)),
            source_domain=str(task.get("source_domain") or f"{task.get('name', key)}_input"),
            direction=str(task.get("direction", "AtoB")),
            data=task.data,
        )
        for key, task in tasks.items()
    ]
