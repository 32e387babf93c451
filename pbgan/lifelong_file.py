"""The lifelong model file: every task's parameters and the nodes that rebuild the generators.

Written atomically after each task. Loaded with ``torch.load(weights_only=True)``, so a file
can hold only tensors and plain containers; the generator nodes' ``_target_`` classes are checked
to be pbgan networks and layer families before anything is built from them.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch

from datamodules import DIRECTIONS
from pbgan.errors import PbganError
from pbgan.io import DamagedFile, save_torch, verify_archive
from pbgan.lifelong.network import LifelongNet
from pbgan.modules.base import LifelongGANModule
from pbgan.nodes import build_generator
from pbgan.tasks import check_task_name

FORMAT = "pbgan-lifelong"
# 2: a transposed layer's new filters are stored in ConvTranspose2d's layout (C_in, n, k, k);
# version 1 files (filter-major) are converted when loaded.
# 3: the last layers are plain task-specific layers (their filters under ``weights``).
# 4: sequential fine-tuning's batch norms keep running statistics per task (``SharedNorm``);
# older files' single statistics become every task's.
# 5: a generator may keep finished tasks compressed (``storage``: task -> codec; their tensors in
# stored form, :mod:`pbgan.lifelong.storage`).
# 6: frozen tasks evaluate with faster kernels computing the same map, rounded differently (group
# norm for instance norm, a 4x4 stride-2 transposed convolution as one convolution): ``legacy_tasks``
# per generator counts the first tasks whose probes the kernels of before recorded (every task of
# an older file); those keep them, so their outputs stay exactly what their probes say.
FORMAT_VERSION = 6
FILE_NAME = "lifelong.pt"


# Format 1 and 2 files named the generator's class and the method instead of storing nodes.
LEGACY_ARCHS = {
    "unet": "pbgan.networks.unet.UNetGenerator",
    "resnet": "pbgan.networks.resnet.ResNetGenerator",
}
LEGACY_FAMILIES = {
    "piggyback": "pbgan.methods.piggyback.PiggybackFamily",
    "pf": "pbgan.methods.piggyback.PiggybackFamily",
    "full": "pbgan.methods.full.FullFamily",
    "sft": "pbgan.methods.finetune.FineTuneFamily",
    "mask": "pbgan.methods.mask.MaskFamily",
}


def legacy_node(settings: dict[str, Any]) -> dict[str, Any]:
    """The generator node a format 1 or 2 file's ``settings`` describe."""
    options = dict(settings)
    arch, method = options.pop("arch"), options.pop("method")
    ratio, method_options = options.pop("ratio", None), options.pop("method_options", {}) or {}
    if arch not in LEGACY_ARCHS or method not in LEGACY_FAMILIES:
        raise PbganError(f"generator arch={arch!r}, method={method!r} is not one this pbgan can rebuild")
    family: dict[str, Any] = {"_target_": LEGACY_FAMILIES[method], **method_options}
    if method in ("piggyback", "pf"):
        family["ratio"] = float(ratio or 0.0)
    return {"_target_": LEGACY_ARCHS[arch], **options, "family": family}


# Generator node keys and the option that sets each, for mismatch messages.
NODE_OPTIONS = {
    "_target_": "model (model.generator._target_)",
    "family.ratio": "ratio",
    "family.rank": "method.rank",
    "family.ratio_schedule": "method.ratio_schedule",
    "family._target_": "method",
    "family": "method (method.family)",
    "ngf": "model.generator.ngf (times method.width)",
    "num_downs": "model.generator.num_downs (auto: from data.image_size)",
    "input_nc": "the tasks' input channels",
    "output_nc": "the tasks' output channels",
}


def _flat(node: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(node, dict):
        return {k: v for key, value in node.items() for k, v in _flat(value, f"{prefix}{key}.").items()}
    return {prefix.rstrip("."): node}


def node_differences(stored: dict[str, dict[str, Any]], current: dict[str, dict[str, Any]]) -> list[str]:
    """Each generator option a file holds that a config would build differently, with its option."""
    if set(stored) != set(current):
        return [f"generators: file {sorted(stored)}, config {sorted(current)} (set model)"]
    problems = []
    for name, mine in current.items():
        theirs, ours = _flat(stored[name]), _flat(mine)
        for key in sorted(set(theirs) | set(ours)):
            if theirs.get(key) != ours.get(key):
                fallback = NODE_OPTIONS.get(key.split(".")[0], f"model.generator.{key}")
                option = NODE_OPTIONS.get(key, fallback)
                problems.append(f"{key}: file {theirs.get(key)!r}, config {ours.get(key)!r} (set {option})")
    return list(dict.fromkeys(problems))


def compact(value: Any) -> Any:
    """``value`` with every tensor in storage of its own size: ``torch.save`` writes a tensor's
    whole underlying storage, so a slice of a big batch would carry the whole batch along."""
    if isinstance(value, torch.Tensor):
        value = value.detach().cpu()
        own = value.untyped_storage().nbytes() == value.numel() * value.element_size()
        if not own or not value.is_contiguous():
            value = value.clone(memory_format=torch.contiguous_format)
        return value
    if isinstance(value, dict):
        return {key: compact(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(compact(item) for item in value)
    return value


def save_lifelong_file(
    path: str | Path,
    module: LifelongGANModule,
    tasks: list[dict[str, str]],
    results: dict[str, Any],
    image_size: int,
    extra: dict[str, Any] | None = None,
) -> Path:
    """Write the learned tasks of ``module``: each lifelong net's node, state and the plugin's state."""
    payload = {
        "format": FORMAT,
        "version": FORMAT_VERSION,
        "model": type(module).__name__,
        "frozen_tasks": module.frozen_tasks,
        "image_size": image_size,
        "tasks": tasks[: module.frozen_tasks],
        "generators": {
            name: {
                "node": node,
                "state_dict": net.stored_state(),
                "storage": dict(net.storage),
                "legacy_tasks": net.legacy_tasks,
            }
            for (name, net), node in zip(module.lifelong_nets().items(), module.generator_nodes().values())
        },
        "plugin": module.plugin.state_dict(),
        "results": results,
        **(extra or {}),
    }
    payload = compact(payload)
    return save_torch(path, payload)


class DamagedLifelongFile(PbganError):
    """A lifelong file whose bytes cannot be read back: truncated, failing its checksums or its
    unpickler, or with generators that cannot be rebuilt."""


MAX_TASKS = 10_000  # far past any sequence; a file claiming more is damaged or hostile


def check_fields(path: Path, payload: dict[str, Any]) -> None:
    """Refuse a file whose fields are not what pbgan writes (types, counts, task names): a damaged
    or hostile file is named here, before anything is built from it."""

    def refuse(what: str) -> None:
        raise DamagedLifelongFile(f"{path} is not a readable lifelong model file: {what}")

    version, frozen, tasks = payload.get("version", 0), payload.get("frozen_tasks"), payload.get("tasks")
    if type(version) is not int or version < 0:
        refuse(f"its format version is {version!r}")
    if type(frozen) is not int or not 0 <= frozen <= MAX_TASKS:
        refuse(f"its task count is {frozen!r}")
    if not isinstance(tasks, list) or len(tasks) != frozen:
        refuse(f"it lists {len(tasks) if isinstance(tasks, list) else 'no'} tasks for {frozen} stored")
    for task in tasks:
        why = check_task_name(task.get("name") if isinstance(task, dict) else None)
        if why:
            refuse(f"a task's name {why}")
    generators = payload.get("generators")
    if not isinstance(generators, dict) or not generators:
        refuse("it holds no generators")
    for name, entry in generators.items():
        if not isinstance(entry, dict) or not isinstance(entry.get("state_dict"), dict):
            refuse(f"its generator {name!r} holds no stored tensors")
        legacy = entry.get("legacy_tasks", 0)
        if type(legacy) is not int or not 0 <= legacy <= frozen:
            refuse(f"its generator {name!r} counts {legacy!r} legacy tasks of {frozen}")


def load_lifelong_file(path: str | Path) -> dict[str, Any]:
    """Read a lifelong model file without executing anything stored in it."""
    path = Path(path)
    if not path.is_file():
        raise PbganError(f"lifelong model file {path} does not exist: pass the {FILE_NAME} of a run")
    try:  # a damaged file is named as such, before the unpickler sees it
        verify_archive(path)
    except DamagedFile as error:
        raise DamagedLifelongFile(f"{path} is not a readable lifelong model file: {error.reason}") from None
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # the unpickler's refusal or a truncated file
        raise DamagedLifelongFile(f"{path} is not a readable lifelong model file ({error})") from error
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise PbganError(f"{path} is not a pbgan lifelong model file")
    check_fields(path, payload)
    if payload.get("version", 0) > FORMAT_VERSION:
        raise PbganError(
            f"{path} has format version {payload['version']}, newer than this pbgan reads "
            f"({FORMAT_VERSION}): upgrade pbgan"
        )
    try:
        for entry in payload["generators"].values():
            if "node" not in entry:
                entry["node"] = legacy_node(entry["settings"])
    except (KeyError, TypeError, AttributeError, PbganError) as error:
        raise DamagedLifelongFile(
            f"{path}: its generators cannot be rebuilt ({error}); the file is damaged"
        ) from None
    return payload


def load_tasks_into(net: LifelongNet, entry: dict[str, Any], frozen_tasks: int, version: int) -> LifelongNet:
    """Give a fresh ``net`` the file's ``frozen_tasks`` frozen tasks and their stored tensors
    (stored by format ``version``: older layouts are converted)."""
    for _ in range(frozen_tasks):
        net.add_task()
        net.end_task()
    state = dict(entry["state_dict"])
    for name, layer in net.lifelong_layers():
        layer.upgrade_state(f"{name}.", state, version)
    try:
        net.load_stored_state(state, entry.get("storage") or {})
    except (ValueError, KeyError, TypeError, RuntimeError) as error:
        raise PbganError(f"the stored tensors cannot be read ({error}); the file is damaged") from None
    net.rebuild_derived()
    # a file of format 5 or before recorded every task's probes with the kernels of then
    net.keep_legacy_kernels(frozen_tasks if version < 6 else entry.get("legacy_tasks", 0))
    return net


@contextmanager
def rebuilding(path: str | Path) -> Iterator[None]:
    """Networks built from a file's records: what fails there (sizes no network takes, tensors that
    do not fit, memory no machine has) is the file's damage, named as such."""
    try:
        yield
    except (RuntimeError, ValueError, KeyError, TypeError, IndexError, AttributeError, MemoryError) as error:
        raise DamagedLifelongFile(
            f"{path}: its generators cannot be rebuilt ({error}); the file is damaged"
        ) from None


def restore_generator(entry: dict[str, Any], frozen_tasks: int, version: int) -> LifelongNet:
    """Rebuild one lifelong net with ``frozen_tasks`` frozen tasks and load its stored tensors."""
    return load_tasks_into(
        build_generator(entry["node"], "lifelong file", imports=False), entry, frozen_tasks, version
    ).eval()


def restore_module(module: LifelongGANModule, payload: dict[str, Any]) -> None:
    """Load a file's learned tasks into a freshly built module of the same settings."""
    for name, net in module.lifelong_nets().items():
        load_tasks_into(net, payload["generators"][name], payload["frozen_tasks"], payload["version"])
    if payload.get("plugin"):
        module.plugin.load_state_dict(payload["plugin"])
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
    if direction not in DIRECTIONS:
        raise PbganError(f"direction={direction!r} is not known: use AtoB or BtoA")
    if names == ["generator"]:
        if direction == "BtoA":
            raise PbganError("this is a pix2pix model: it translates only in its tasks' own direction (AtoB)")
        return "generator"
    return "g_ab" if direction == "AtoB" else "g_ba"


def check_input_size(node: dict[str, Any], size: int, option: str) -> int:
    """``size`` if the stored generator takes images of that size, else a one-line error naming
    ``option`` (the network's own rule: a UNet halves the image ``num_downs`` times)."""
    from pbgan.nodes import target_class

    if size < 1:
        raise PbganError(f"{option} {size}: an image size is a positive number of pixels")
    try:
        target_class(str(node["_target_"]), "lifelong file", imports=False).fit_options(node, size)
    except PbganError as error:
        raise PbganError(f"{option} {size} does not fit this model: {error}") from None
    return size


def load_task_generator(
    path: str | Path, task: str | int, direction: str = "AtoB"
) -> tuple[LifelongNet, int, dict]:
    """The lifelong generator of ``path`` that serves ``task`` in ``direction``, set to that task."""
    payload = load_lifelong_file(path)
    index = resolve_task(payload, task)
    entry = payload["generators"][generator_name(payload, direction)]
    with rebuilding(path):
        net = restore_generator(entry, payload["frozen_tasks"], payload["version"])
    net.set_task(index)
    return net, index, payload
