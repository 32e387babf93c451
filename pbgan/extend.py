"""Extend a lifelong model file with new tasks, without the old tasks' data.

The file's tasks come first in the new sequence, frozen; the new tasks grow the bank as any
later task does. What the old tasks looked like is checked on the probe inputs the file
keeps: their outputs after every new task are compared with the outputs stored at save time.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from pbgan.errors import PbganError
from pbgan.evaluation import TaskEvalSet
from pbgan.lifelong_file import load_lifelong_file, restore_module, settings_differences
from pbgan.modules.base import LifelongGANModule
from pbgan.results import ContinualResults
from pbgan.tasks import TaskSpec


@dataclass
class PriorModel:
    """The lifelong model file a sequence starts from (``init_from=MODEL_FILE``)."""

    path: Path
    payload: dict[str, Any]

    @classmethod
    def load(cls, path: str | Path) -> PriorModel:
        path = Path(path).expanduser()
        try:
            payload = load_lifelong_file(path)
        except PbganError as error:
            raise PbganError(f"init_from={path}: {error}") from None
        return cls(path, payload)

    @property
    def num_tasks(self) -> int:
        return int(self.payload["frozen_tasks"])

    def specs(self) -> list[TaskSpec]:
        return [TaskSpec.learned(entry) for entry in self.payload["tasks"][: self.num_tasks]]

    def check_new_tasks(self, specs: list[TaskSpec]) -> None:
        """New tasks need names of their own: tasks are picked by name when generating."""
        old = {spec.name for spec in self.specs()}
        clashes = [spec.name for spec in specs if spec.name in old]
        if clashes:
            raise PbganError(
                f"init_from={self.path} already holds task(s) {', '.join(clashes)}: give the new "
                "task another name (task_seq.tasks.KEY.name=NEW_NAME) or pick another task_seq"
            )

    def check_architecture(self, model: str, settings: dict[str, dict[str, Any]]) -> None:
        """The config must rebuild exactly the file's generators, or old tasks could not load."""
        stored = {name: entry["settings"] for name, entry in self.payload["generators"].items()}
        theirs_model = self.payload["results"].get("model", self.payload.get("model"))
        if set(stored) != set(settings):
            raise PbganError(
                f"init_from={self.path} holds a {theirs_model} model (generators {sorted(stored)}); "
                f"this config builds {model} ({sorted(settings)}): pass model={theirs_model}"
            )
        problems = settings_differences(stored, settings)
        if problems:
            raise PbganError(
                f"init_from={self.path} does not match this config's architecture: {'; '.join(problems)}. "
                "Extend with the settings the model was trained with"
            )

    def load_into(self, module: LifelongGANModule) -> None:
        restore_module(module, self.payload)

    def probe_sets(self) -> list[TaskEvalSet | None]:
        """Each old task's stored probe inputs (and targets: CycleGAN's backward probes)."""
        inputs = self.payload.get("probe_inputs") or [None] * self.num_tasks
        targets = self.payload.get("probe_targets") or [None] * self.num_tasks
        return [
            None if x is None else TaskEvalSet(spec.name, x, y)
            for spec, x, y in zip(self.specs(), inputs, targets)
        ]

    def probe_baselines(self) -> list[torch.Tensor]:
        return list(self.payload["probe_baselines"])[: self.num_tasks]

    def results(self, new_specs: list[TaskSpec], seed: int) -> ContinualResults:
        """The file's continual results with rows and columns to come for the new tasks."""
        results = ContinualResults.from_dict(self.payload["results"])
        if results.completed != self.num_tasks:
            raise PbganError(
                f"init_from={self.path}: its results and its tasks disagree; the file is damaged"
            )
        results.extend([spec.name for spec in new_specs], [spec.domain for spec in new_specs])
        results.seed = seed
        results.extended_from = {
            "file": str(self.path.resolve()),
            "tasks": self.num_tasks,
            "classifier": results.classifier,
            "previous": results.extended_from,
        }
        return results
