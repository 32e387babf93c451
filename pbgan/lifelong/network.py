"""Task bookkeeping for a whole network built from lifelong layers."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import torch
from torch import nn

from pbgan.lifelong import storage
from pbgan.lifelong.layers import LifelongLayer, TaskConv


def _stack_columns(net: LifelongNet, args: tuple) -> tuple | None:
    columns = net.columns()
    if columns == 1:
        return None
    return (args[0].repeat(columns, *([1] * (args[0].dim() - 1))), *args[1:])


def _last_column(net: LifelongNet, args: tuple, output: torch.Tensor) -> torch.Tensor | None:
    columns = net.columns()
    if columns == 1:
        return None
    return output.chunk(columns, 0)[-1]


class LifelongNet(nn.Module):
    """A network whose lifelong layers all switch, grow and freeze together.

    Subclasses build their layers in ``__init__``; the task operations here fan out to every
    :class:`LifelongLayer` inside. A network built from plain layers has none: it then acts as
    one ordinary model shared by every task (sequential fine-tuning), which forgets.
    """

    def __init__(self) -> None:
        super().__init__()
        self._num_tasks = 0
        self._frozen = 0
        self._active = -1
        self._legacy_tasks = 0
        # Column layers (progressive networks) compute every column up to the active task on one
        # batch stacked column after column: the input is repeated per column on the way in and
        # the last column's output handed back. Other nets pass through unchanged.
        self.fixed_columns: int | None = None  # a standalone copy computes exactly this many
        self._stacks_columns: bool | None = None
        # Compressed storage (storage.dtype): the codec of each finished task stored compressed,
        # and each compressed tensor's stored form by state-dict key (what the model file keeps).
        self.storage: dict[int, str] = {}
        self._codes: dict[str, Any] = {}
        self.register_forward_pre_hook(_stack_columns)
        self.register_forward_hook(_last_column)

    def columns(self) -> int:
        """Columns one call computes: 1 unless the net is built from column layers, where it is
        every column up to the active task (``fixed_columns`` in a standalone copy)."""
        if not self.stacks_columns():
            return 1
        return self.fixed_columns or self._active + 1

    def stacks_columns(self) -> bool:
        """Whether the net is built from column layers (progressive networks)."""
        if self._stacks_columns is None:
            self._stacks_columns = any(getattr(m, "column_layer", False) for m in self.modules())
        return self._stacks_columns

    @classmethod
    def fit_options(cls, node: dict, image_size: int) -> dict:
        """The config node's options made concrete for ``image_size`` (a depth set to ``auto``
        resolved, sizes the network cannot take refused); subclasses check what they need."""
        return dict(node)

    def lifelong_layers(self) -> Iterator[tuple[str, LifelongLayer]]:
        for name, module in self.named_modules():
            if isinstance(module, LifelongLayer):
                yield name, module

    @property
    def num_tasks(self) -> int:
        return self._num_tasks

    @property
    def frozen_tasks(self) -> int:
        return self._frozen

    @property
    def active_task(self) -> int:
        return self._active

    def add_task(self) -> int:
        """Create a new task's parameters, make it active and return its index."""
        for _, layer in self.lifelong_layers():
            layer.add_task()
        self._num_tasks += 1
        self.set_task(self._num_tasks - 1)
        return self._active

    def set_task(self, task: int) -> None:
        if not 0 <= task < self._num_tasks:
            raise IndexError(f"task {task} does not exist: the network has {self._num_tasks} tasks")
        for _, layer in self.lifelong_layers():
            layer.set_task(task)
        self._active = task

    def end_task(self) -> None:
        """Freeze the newest task and append its unconstrained filters to every bank."""
        for _, layer in self.lifelong_layers():
            layer.end_task()
        self._frozen += 1

    @property
    def legacy_tasks(self) -> int:
        """Tasks (the first ones) whose probes a lifelong file of format 5 or before recorded: they
        evaluate with the kernels of then (``F.instance_norm``, ``F.conv_transpose2d``), so they
        give exactly those outputs; later tasks run faster kernels computing the same map
        (:func:`pbgan.lifelong.layers.group_norm_serves`, :mod:`pbgan.lifelong.subpixel`)."""
        return self._legacy_tasks

    def keep_legacy_kernels(self, tasks: int) -> None:
        """Make the first ``tasks`` tasks legacy ones (see :attr:`legacy_tasks`). Nothing cached
        goes stale: a frozen task's weights never change, whichever kernel runs them."""
        for _, layer in self.lifelong_layers():
            layer.legacy_tasks = tasks
        self._legacy_tasks = tasks

    def rebuild_derived(self) -> None:
        """Recompute the banks from the frozen tasks (after loading a state dict)."""
        for _, layer in self.lifelong_layers():
            layer.rebuild_derived()

    @contextmanager
    def sharing_weights(self, calls: int) -> Iterator[None]:
        """Within one training step that calls the network ``calls`` times (CycleGAN: three), each
        layer composes the trainable task's weight once and every call reuses it (one autograd
        node, so the gradients are those of the separate calls summed); the schedule of each layer
        is chosen for all ``calls`` together."""
        layers = [layer for _, layer in self.lifelong_layers() if isinstance(layer, TaskConv)]
        for layer in layers:
            layer.begin_step(calls)
        try:
            yield
        finally:
            for layer in layers:
                layer.end_step()

    def task_parameters(self, task: int) -> list[nn.Parameter]:
        return [p for _, layer in self.lifelong_layers() for p in layer.task_parameters(task)]

    def trainable_parameter_groups(self) -> dict[str, list[nn.Parameter]]:
        """The parameters that train now, by the learning-rate group their layer puts them in
        (frozen tasks never train; a parameter outside every lifelong layer is a ``weights`` one)."""
        roles = {
            id(p): role
            for _, layer in self.lifelong_layers()
            for task in range(layer.num_tasks)
            for role, params in layer.parameter_groups(task).items()
            for p in params
        }
        groups: dict[str, list[nn.Parameter]] = {"weights": []}
        for p in self.parameters():
            if p.requires_grad:
                groups.setdefault(roles.get(id(p), "weights"), []).append(p)
        return groups

    def task_tensors(self, task: int) -> list[torch.Tensor]:
        """Everything the lifelong model file stores for ``task``: parameters and buffers."""
        return self.task_parameters(task) + [
            b for _, layer in self.lifelong_layers() for b in layer.task_buffers(task)
        ]

    def shared_tensors(self) -> list[torch.Tensor]:
        """Parameters and buffers outside every lifelong layer: one copy serves (and drifts for)
        all tasks, as in sequential fine-tuning. Stored once, counted with task 0."""
        layers = [layer for _, layer in self.lifelong_layers()]
        shared = {id(t) for layer in layers for t in layer.shared_tensors()}
        inside = {id(t) for layer in layers for t in [*layer.parameters(), *layer.buffers()]} - shared
        return [t for t in [*self.parameters(), *self.buffers()] if id(t) not in inside]

    def compressible(self, task: int) -> list[tuple[str, nn.Parameter, int]]:
        """(state-dict key, parameter, filter axis) of each tensor of ``task`` that compressed
        storage rounds."""
        names = {id(p): name for name, p in self.named_parameters(remove_duplicate=False)}
        return [
            (names[id(p)], p, axis)
            for _, layer in self.lifelong_layers()
            for p, axis in layer.compressible(task)
        ]

    @torch.no_grad()
    def compress_task(self, task: int, codec: str) -> None:
        """Store the finished task ``task`` with ``codec``: its weight tensors take, once and in
        place, the values the codec keeps, so the task computes from then on exactly what the model
        file can restore (:mod:`pbgan.lifelong.storage`)."""
        storage.check_codec(codec)
        if task >= self._frozen:
            raise RuntimeError(f"task {task} is not finished: only a frozen task is stored compressed")
        if task in self.storage:
            raise RuntimeError(f"task {task} is stored already (as {self.storage[task]})")
        for name, param, axis in self.compressible(task):
            if codec == "float32":
                continue
            entry = storage.encode(param, codec, axis)
            param.copy_(storage.decode(entry))
            self._codes[name] = entry
        self.storage[task] = codec
        self.rebuild_derived()

    def stored_state(self) -> dict[str, Any]:
        """The state dict as the model file keeps it: compressed tasks' tensors in stored form."""
        state = self.state_dict()
        return {key: self._codes.get(key, value) for key, value in state.items()}

    def load_stored_state(self, state: dict[str, Any], codecs: dict[int, str]) -> None:
        """Load a state kept by :meth:`stored_state` (``codecs``: each compressed task's codec)."""
        self._codes = {key: value for key, value in state.items() if not isinstance(value, torch.Tensor)}
        self.load_state_dict({key: storage.decode(value) for key, value in state.items()})
        self.storage = {int(task): storage.check_codec(str(codec)) for task, codec in codecs.items()}

    def stored_counts(self, task: int) -> tuple[int, int]:
        """(parameters, bytes) task ``task`` adds: DESIGN section 1's formula for piggyback; bytes
        as stored (a compressed task's tensors at the codec's size)."""
        params = sum(layer.stored_counts(task)[0] for _, layer in self.lifelong_layers())
        size = sum(layer.stored_counts(task)[1] for _, layer in self.lifelong_layers())
        codec = self.storage.get(task, "float32")
        if codec != "float32":
            for _, param, axis in self.compressible(task):
                size += storage.stored_bytes(param, codec, axis) - param.numel() * param.element_size()
        if task == 0:
            shared = self.shared_tensors()
            params += sum(t.numel() for t in shared if isinstance(t, nn.Parameter))
            size += sum(t.numel() * t.element_size() for t in shared)
        return params, size

    def stored_parameters(self, task: int) -> int:
        """Parameters task ``task`` adds to the lifelong model (DESIGN section 1 formula)."""
        return self.stored_counts(task)[0]

    def stored_bytes(self, task: int) -> int:
        """Bytes task ``task`` adds to the lifelong model, running statistics included."""
        return self.stored_counts(task)[1]

    def bank_sizes(self) -> dict[str, int]:
        """Current bank rows M per shareable layer (0 before the first task ends)."""
        sizes = {layer.label or name: layer.bank_size() for name, layer in self.lifelong_layers()}
        return {label: size for label, size in sizes.items() if size is not None}
