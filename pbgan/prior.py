"""What a run starts from besides its config: tasks already learned and frozen.

``resume=RUN_DIR`` (the run's own lifelong file) and ``init_from=MODEL_FILE`` (another run's)
both produce one :class:`PriorState`: the frozen tasks and their stored tensors, the continual
results so far and each task's probe outputs. An ``init_from`` file's tasks come first in the
new sequence without their data; what they looked like is checked on the probe inputs the file
keeps, whose outputs after every new task are compared with the outputs stored at save time.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from pbgan.errors import PbganError
from pbgan.evaluation import TaskEvalSet
from pbgan.lifelong_file import load_lifelong_file, node_differences, rebuilding, restore_module
from pbgan.modules.base import LifelongGANModule
from pbgan.results import ContinualResults
from pbgan.tasks import TaskSpec

log = logging.getLogger(__name__)


@dataclass
class PriorState:
    """Frozen tasks read from a lifelong file (``option`` says which setting named it)."""

    path: Path
    payload: dict[str, Any]
    option: str

    @classmethod
    def read(cls, path: str | Path, option: str) -> PriorState:
        path = Path(path).expanduser()
        try:
            payload = load_lifelong_file(path)
        except PbganError as error:
            raise PbganError(f"{option}={path}: {error}") from None
        return cls(path, payload, option)

    @property
    def num_tasks(self) -> int:
        return int(self.payload["frozen_tasks"])

    @property
    def task_names(self) -> list[str]:
        return [entry["name"] for entry in self.payload["tasks"][: self.num_tasks]]

    def specs(self) -> list[TaskSpec]:
        return [TaskSpec.learned(entry) for entry in self.payload["tasks"][: self.num_tasks]]

    def nodes(self) -> dict[str, dict[str, Any]]:
        return {name: entry["node"] for name, entry in self.payload["generators"].items()}

    def results(self) -> ContinualResults:
        results = ContinualResults.from_dict(self.payload["results"])
        if results.completed != self.num_tasks:
            raise PbganError(
                f"{self.option}={self.path}: its results and its tasks disagree; the file is damaged"
            )
        return results

    def probe_baselines(self) -> list[torch.Tensor]:
        return list(self.payload["probe_baselines"])[: self.num_tasks]

    def probe_sets(self) -> list[TaskEvalSet | None]:
        """Each task's stored probe inputs (and targets: CycleGAN's backward probes)."""
        inputs = self.payload.get("probe_inputs") or [None] * self.num_tasks
        targets = self.payload.get("probe_targets") or [None] * self.num_tasks
        return [
            None if x is None else TaskEvalSet(spec.name, x, y)
            for spec, x, y in zip(self.specs(), inputs, targets)
        ]

    def load_into(self, module: LifelongGANModule) -> None:
        with rebuilding(self.path):
            restore_module(module, self.payload)

    # -- init_from ------------------------------------------------------------------------------
    def check_new_tasks(self, specs: list[TaskSpec]) -> None:
        """New tasks need names of their own: tasks are picked by name when generating."""
        old = set(self.task_names)
        clashes = [spec.name for spec in specs if spec.name in old]
        if clashes:
            raise PbganError(
                f"init_from={self.path} already holds task(s) {', '.join(clashes)}: give the new "
                "task another name (task_seq.tasks.KEY.name=NEW_NAME) or pick another task_seq"
            )

    def check_architecture(self, model: str, nodes: dict[str, dict[str, Any]]) -> None:
        """The config must rebuild exactly the file's generators, or old tasks could not load."""
        stored = self.nodes()
        theirs_model = self.payload["results"].get("model", self.payload.get("model"))
        if set(stored) != set(nodes):
            raise PbganError(
                f"init_from={self.path} holds a {theirs_model} model (generators {sorted(stored)}); "
                f"this config builds {model} ({sorted(nodes)}): pass model={theirs_model}"
            )
        problems = node_differences(stored, nodes)
        if problems:
            raise PbganError(
                f"init_from={self.path} does not match this config's architecture: {'; '.join(problems)}. "
                "Extend with the settings the model was trained with"
            )

    def check_settings(self, cfg: Any) -> None:
        """Settings that change what the old tasks' numbers mean, beyond the architecture: the
        method that trains (methods sharing a layer family build the same generators), the image
        size the tasks were learned at, and how probe outputs are computed (the forgetting audit
        compares them with the stored ones)."""
        theirs = self.payload["results"].get("method")
        if theirs is not None and theirs != str(cfg.method.name):
            raise PbganError(
                f"{self.option}={self.path} was trained with method={theirs}, this config trains with "
                f"method={cfg.method.name}: pass method={theirs}"
            )
        size = self.payload.get("image_size")
        if size is not None and int(size) != int(cfg.data.image_size):
            raise PbganError(
                f"{self.option}={self.path} learned its tasks at {size} pixels, this config at "
                f"data.image_size={cfg.data.image_size}: pass data.image_size={size} (or a scale group "
                "of that size)"
            )
        stored = self.payload.get("probe_protocol")  # files written before it was kept: not checked
        if stored is not None:
            protocol, seed = str(cfg.eval.protocol), int(cfg.seed)
            if stored["protocol"] != protocol:
                raise PbganError(
                    f"{self.option}={self.path} computed its probe outputs with eval.protocol="
                    f"{stored['protocol']}, this config with eval.protocol={protocol}: the old tasks would "
                    f"seem to change; pass eval.protocol={stored['protocol']}"
                )
            if protocol == "reference" and stored["seed"] != seed:
                raise PbganError(
                    f"{self.option}={self.path} drew its probes' dropout with seed={stored['seed']} "
                    f"(eval.protocol=reference), this config with seed={seed}: pass seed={stored['seed']}"
                )

    def extended_results(self, new_specs: list[TaskSpec], seed: int) -> ContinualResults:
        """The file's continual results with rows and columns to come for the new tasks."""
        results = self.results()
        results.extend([spec.name for spec in new_specs], [spec.domain for spec in new_specs])
        results.seed = seed
        results.extended_from = {
            "file": str(self.path.resolve()),
            "tasks": self.num_tasks,
            "classifier": results.classifier,
            "previous": results.extended_from,
        }
        return results

    # -- resume -----------------------------------------------------------------------------------
    def check_resumes(self, tasks: list[str], nodes: dict[str, dict[str, Any]]) -> None:
        """The run's file must hold the first tasks of this sequence, built as this config builds."""
        names = [task["name"] for task in self.payload["tasks"]]
        if names != tasks[: len(names)]:
            raise PbganError(
                f"{self.path} learned tasks {names}, which do not start this sequence {tasks}: "
                "resume with the command that made the run"
            )
        changed = node_differences(self.nodes(), nodes)
        if changed:
            raise PbganError(
                f"{self.path} was trained with other model settings than this command's "
                f"({'; '.join(changed)}): resume with the command that made the run"
            )
