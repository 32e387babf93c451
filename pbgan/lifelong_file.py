"""The lifelong model file: every task's parameters and the settings to rebuild the generators.

Written atomically after each task. Loaded with ``torch.load(weights_only=True)``, so a file
can hold only tensors and plain containers and loading never runs code from it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from pbgan.build import build_generator
from pbgan.errors import PbganError
from pbgan.io import atomic_write
from pbgan.lifelong.network import LifelongNet
from pbgan.modules.base import LifelongGANModule

FORMAT = "pbgan-lifelong"
FORMAT_VERSION = 1
FILE_NAME = "lifelong.pt"


# Generator settings and the option that sets each, for settings-mismatch messages.
SETTING_OPTIONS = {
    "arch": "model.generator.arch",
    "method": "method",
    "ratio": "ratio",
    "method_options": "method.*",
    "ngf": "model.generator.ngf (times method.width)",
    "num_downs": "model.generator.num_downs (auto: from data.image_size)",
    "input_nc": "the tasks' input channels",
    "output_nc": "the tasks' output channels",
}


def settings_differences(stored: dict[str, dict[str, Any]], current: dict[str, dict[str, Any]]) -> list[str]:
    """Each generator setting a file holds that a config would build differently, with its option."""
    if set(stored) != set(current):
        return [f"generators: file {sorted(stored)}, config {sorted(current)} (set model)"]
    problems = []
    for name, mine in current.items():
        theirs = stored[name]
        for key in sorted(set(mine) | set(theirs)):
            if mine.get(key) != theirs.get(key):
                option = SETTING_OPTIONS.get(key, f"model.generator.{key}")
                problems.append(f"{key}: file {theirs.get(key)!r}, config {mine.get(key)!r} (set {option})")
    return list(dict.fromkeys(problems))


def save_lifelong_file(
    path: str | Path,
    module: LifelongGANModule,
    settings: dict[str, dict[str, Any]],
    tasks: list[dict[str, str]],
    results: dict[str, Any],
    image_size: int,
    extra: dict[str, Any] | None = None,
) -> Path:
    """Write the learned tasks of ``module``: ``settings`` rebuilds each lifelong net by name."""
    payload = {
        "format": FORMAT,
        "version": FORMAT_VERSION,
        "model": type(module).__name__,
        "frozen_tasks": module.frozen_tasks,
        "image_size": image_size,
        "tasks": tasks[: module.frozen_tasks],
        "generators": {
            name: {
                "settings": settings[name],
                "state_dict": {k: v.detach().cpu().clone() for k, v in net.state_dict().items()},
            }
            for name, net in module.lifelong_nets().items()
        },
        "results": results,
        **(extra or {}),
    }
    return atomic_write(path, lambda tmp: torch.save(payload, tmp))


def load_lifelong_file(path: str | Path) -> dict[str, Any]:
    """Read a lifelong model file without executing anything stored in it."""
    path = Path(path)
    if not path.is_file():
        raise PbganError(f"lifelong model file {path} does not exist: pass the {FILE_NAME} of a run")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # the unpickler's refusal or a truncated file
        raise PbganError(f"{path} is not a readable lifelong model file ({error})") from error
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise PbganError(f"{path} is not a pbgan lifelong model file")
    if payload.get("version", 0) > FORMAT_VERSION:
        raise PbganError(
            f"{path} has format version {payload['version']}, newer than this pbgan reads "
            f"({FORMAT_VERSION}): upgrade pbgan"
        )
    return payload


def load_tasks_into(net: LifelongNet, entry: dict[str, Any], frozen_tasks: int) -> LifelongNet:
    """Give a fresh ``net`` the file's ``frozen_tasks`` frozen tasks and their stored tensors."""
    for _ in range(frozen_tasks):
        net.add_task()
        net.end_task()
    net.load_state_dict(entry["state_dict"])
    net.rebuild_derived()
    return net


def restore_generator(entry: dict[str, Any], frozen_tasks: int) -> LifelongNet:
    """Rebuild one lifelong net with ``frozen_tasks`` frozen tasks and load its stored tensors."""
    return load_tasks_into(build_generator(entry["settings"]), entry, frozen_tasks).eval()


def restore_module(module: LifelongGANModule, payload: dict[str, Any]) -> None:
    """Load a file's learned tasks into a freshly built module of the same settings."""
    for name, net in module.lifelong_nets().items():
        load_tasks_into(net, payload["generators"][name], payload["frozen_tasks"])
    module.task_names = [task["name"] for task in payload["tasks"]]
    module.sequence_step = int(payload.get("sequence_step", 0))


def resolve_task(payload: dict[str, Any], task: str | int) -> int:
    """A task's index from its name or its 1-based number in the file's sequence."""
    names = [entry["name"] for entry in payload["tasks"]]
    if str(task) in names:
        return names.index(str(task))
    if str(task).isdigit() and 1 <= int(task) <= len(names):
        return int(task) - 1
    listing = ", ".join(f"{i + 1}:{name}" for i, name in enumerate(names))
    raise PbganError(f"task {task!r} is not in this model file: use a name or number from {listing}")


def generator_name(payload: dict[str, Any], direction: str) -> str:
    """Which stored generator translates in ``direction`` (AtoB: the task's own direction)."""
    names = list(payload["generators"])
    if direction not in ("AtoB", "BtoA"):
        raise PbganError(f"direction={direction!r} is not known: use AtoB or BtoA")
    if names == ["generator"]:
        if direction == "BtoA":
            raise PbganError("this is a pix2pix model: it translates only in its tasks' own direction (AtoB)")
        return "generator"
    return "g_ab" if direction == "AtoB" else "g_ba"


def load_task_generator(
    path: str | Path, task: str | int, direction: str = "AtoB"
) -> tuple[LifelongNet, int, dict]:
    """The lifelong generator of ``path`` that serves ``task`` in ``direction``, set to that task."""
    payload = load_lifelong_file(path)
    index = resolve_task(payload, task)
    net = restore_generator(
        payload["generators"][generator_name(payload, direction)], payload["frozen_tasks"]
    )
    net.set_task(index)
    return net, index, payload
