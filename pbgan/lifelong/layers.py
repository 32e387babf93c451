"""Lifelong layers: the interface every per-task layer speaks, and the layers all methods share.

Every lifelong layer speaks one small interface (:class:`LifelongLayer`): add a task, make a
task the active one, end the active task (freeze it forever), count what a task stores, and say
which of its parameters train at which rate and how big its bank is. Networks are built from
these layers and never need to know which method a layer implements; a method's own layers live
in its file under :mod:`pbgan.methods`.
"""

from __future__ import annotations

import copy
from dataclasses import asdict, dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from pbgan.errors import ConfigError
from pbgan.lifelong.costs import ConvCall, conv_positions, plain_macs
from pbgan.lifelong.subpixel import subpixel_conv, subpixel_runs, subpixel_weight

INIT_STD = 0.02  # reference init: conv weights N(0, 0.02), BatchNorm weight N(1, 0.02)


NORMS = ("batch", "instance")


def check_norm(kind: str) -> None:
    if kind not in NORMS:
        raise ConfigError(f"norm={kind!r} is not known: use one of {', '.join(NORMS)}")


@dataclass(frozen=True)
class ConvSpec:
    """What a network asks of one convolution: its geometry and its name in tables."""

    in_channels: int
    out_channels: int
    kernel_size: int
    stride: int = 1
    padding: int = 0
    output_padding: int = 0
    bias: bool = True
    transposed: bool = False
    label: str = ""

    def arguments(self) -> dict[str, Any]:
        """Keyword arguments of every :class:`~pbgan.lifelong.layers.TaskConv`."""
        return asdict(self)


def plain_conv(spec: ConvSpec) -> nn.Module:
    """An ordinary ``nn.Conv2d`` / ``nn.ConvTranspose2d`` of ``spec``."""
    if spec.transposed:
        return nn.ConvTranspose2d(
            spec.in_channels,
            spec.out_channels,
            spec.kernel_size,
            spec.stride,
            spec.padding,
            spec.output_padding,
            bias=spec.bias,
        )
    return nn.Conv2d(
        spec.in_channels, spec.out_channels, spec.kernel_size, spec.stride, spec.padding, bias=spec.bias
    )


def unusable_for_autograd(*tensors: torch.Tensor) -> bool:
    """Whether a cached tensor was made in inference mode and is wanted outside it, where it
    cannot take part in autograd: the cache must be made again."""
    return not torch.is_inference_mode_enabled() and any(t.is_inference() for t in tensors)


def _rebuild_after_load(layer: LifelongLayer, incompatible_keys: object) -> None:
    layer.rebuild_derived()


class LifelongLayer(nn.Module):
    """Interface of every layer that keeps separate parameters per task.

    ``num_tasks`` tasks exist; tasks ``0 .. frozen - 1`` are frozen forever. Only the newest task
    may be unfrozen, and only it is trained. A new task's tensors are created on the device and
    in the dtype of the layer (``.to()`` moves an empty anchor buffer along with everything else).
    """

    #: every task has its own copy of this layer's weights, in every method (the network's last
    #: layers); such a layer never shares filters with other tasks
    task_specific = False

    def __init__(self, label: str = "") -> None:
        super().__init__()
        self.num_tasks = 0
        self.frozen = 0
        self.active = -1
        # Tasks 0 .. legacy_tasks - 1 came from a lifelong file of format 5 or before: they keep
        # the kernels their probes were recorded with (``F.instance_norm``, ``F.conv_transpose2d``)
        # where later tasks run faster ones computing the same map (set by the network).
        self.legacy_tasks = 0
        self.label = label  # the layer's name in tables (``down3``, ``block2a``); set by the network
        self.register_buffer("_anchor", torch.empty(0), persistent=False)
        # Loaded tensors invalidate what is derived from them (a bank, cached weights), also for a
        # caller that loads a plain state dict into a layer or a network.
        self.register_load_state_dict_post_hook(_rebuild_after_load)

    def factory(self) -> dict:
        """``device`` and ``dtype`` keyword arguments for a new task's tensors."""
        return {"device": self._anchor.device, "dtype": self._anchor.dtype}

    def add_task(self) -> None:
        """Create the parameters of a new task; every earlier task must be frozen first."""
        if self.frozen != self.num_tasks:
            raise RuntimeError("end the current task before adding a new one")
        self._create_task(self.num_tasks)
        self.num_tasks += 1

    def set_task(self, task: int) -> None:
        """Make ``task`` the one that ``forward`` computes."""
        if not 0 <= task < self.num_tasks:
            raise IndexError(f"task {task} does not exist: this layer has {self.num_tasks} tasks")
        self.active = task

    def end_task(self) -> None:
        """Freeze the newest task: its parameters never change again."""
        if self.frozen >= self.num_tasks:
            raise RuntimeError("there is no unfrozen task to end")
        for param in self.task_parameters(self.frozen):
            param.requires_grad_(False)
        self.frozen += 1
        self.rebuild_derived()

    def task_parameters(self, task: int) -> list[nn.Parameter]:
        """Parameters that belong to ``task`` alone."""
        raise NotImplementedError

    def task_buffers(self, task: int) -> list[torch.Tensor]:
        """Buffers (running statistics) that belong to ``task`` alone."""
        return []

    def compressible(self, task: int) -> list[tuple[nn.Parameter, int]]:
        """``task``'s weight tensors that compressed storage may round (``storage.dtype``), each
        with the axis of its filters: every task parameter with two or more dimensions (biases and
        norms stay float32)."""
        return [(p, self.filter_axis(p)) for p in self.task_parameters(task) if p.dim() >= 2 and p.numel()]

    def filter_axis(self, param: nn.Parameter) -> int:
        """The axis along which ``param`` holds one filter (or matrix row) per index."""
        return 0

    def shared_tensors(self) -> list[torch.Tensor]:
        """Tensors of this layer that every task shares and that keep training task after task
        (stored once, as the network's shared tensors); none in most layers."""
        return []

    def parameter_groups(self, task: int) -> dict[str, list[nn.Parameter]]:
        """``task``'s parameters by the learning-rate group they train in (``weights`` at the base
        rate; a method may name others, such as piggyback's ``mixing``)."""
        return {"weights": self.task_parameters(task)}

    def bank_size(self) -> int | None:
        """Filters in this layer's shared bank now, or None where the layer keeps no bank."""
        return None

    def plain_layer(self, task: int) -> nn.Module:
        """The ordinary PyTorch layer this layer computes for ``task`` (export)."""
        raise NotImplementedError(f"{type(self).__name__} has no plain equivalent")

    def stored_counts(self, task: int) -> tuple[int, int]:
        """(parameters, bytes) that ``task`` adds to what the method must keep.

        Parameters count as the reference tables do (no running statistics); bytes include them.
        """
        params = self.task_parameters(task)
        tensors = params + self.task_buffers(task)
        return sum(p.numel() for p in params), sum(t.numel() * t.element_size() for t in tensors)

    def _create_task(self, task: int) -> None:
        raise NotImplementedError

    def upgrade_state(self, prefix: str, state: dict[str, torch.Tensor], version: int) -> None:
        """Convert this layer's entries (keys starting with ``prefix``) of a state saved by an
        older lifelong file format ``version`` to the current layout, in place."""

    def rebuild_derived(self) -> None:
        """Hook for layers that derive state (the bank) from frozen tasks."""


class TaskConv(LifelongLayer):
    """The geometry and forward pass that every per-task Conv2d / ConvTranspose2d shares.

    Subclasses say how a task's weight is made (:meth:`task_weight`, in PyTorch's layout for the
    kind of convolution); every task has its own bias where the layer has one.

    A frozen task's weight can never change, so it is composed once and kept until another task
    runs, the layer moves or the bank changes: an evaluation composes each task once, whatever
    the number of batches (a 4x4 stride-2 transposed layer on the CPU keeps it in the layout of
    :mod:`pbgan.lifelong.subpixel`, which runs it faster). Inside
    :meth:`pbgan.lifelong.network.LifelongNet.sharing_weights` the trainable task's weight is
    composed once per training step and reused by every call.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        stride: int = 1,
        padding: int = 0,
        output_padding: int = 0,
        bias: bool = True,
        transposed: bool = False,
        label: str = "",
    ) -> None:
        super().__init__(label)
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.kernel_size = kernel_size
        self.stride = stride
        self.padding = padding
        self.output_padding = output_padding
        self.transposed = transposed
        self.has_bias = bias
        self.biases = nn.ParameterList()
        self._cached: tuple[int, torch.Tensor] | None = None
        self._cached_subpixel: tuple[int, torch.Tensor] | None = None  # :mod:`pbgan.lifelong.subpixel`
        # Calls per training step and the step's shared weights (set by LifelongNet.sharing_weights).
        self.step_calls = 1
        self._step: dict | None = None

    def filter_axis(self, param: nn.Parameter) -> int:
        """A transposed layer's weight holds its filters along axis 1 ``(C_in, N, k, k)``."""
        return 1 if self.transposed and param.dim() == 4 else 0

    @property
    def filter_size(self) -> int:
        """d = C_in * k * k, the numbers in one filter."""
        return self.in_channels * self.kernel_size * self.kernel_size

    def task_weight(self, task: int) -> torch.Tensor:
        """Task ``task``'s weight in PyTorch's layout for this kind of convolution."""
        raise NotImplementedError

    def forward_weight(self, task: int) -> torch.Tensor:
        """The weight ``forward`` uses: a frozen task's composed once and cached; the trainable
        task's composed on every call, or once per step while the step shares weights."""
        if task < self.frozen:
            cached = self._cached
            # Composed in float32 whatever autocast is on (the cache serves every later call), and
            # again outside inference mode if it was made inside it (an inference tensor cannot
            # take part in autograd).
            if cached is None or cached[0] != task or unusable_for_autograd(cached[1]):
                with torch.no_grad(), torch.autocast(self._anchor.device.type, enabled=False):
                    self._cached = (task, self.task_weight(task).contiguous())
            return self._cached[1]
        return self.per_step("weight", lambda: self.task_weight(task))

    def runs_subpixel(self, x: torch.Tensor, task: int) -> bool:
        """Whether ``task`` convolves ``x`` as :func:`pbgan.lifelong.subpixel.subpixel_conv`: a
        frozen task, not a legacy one, of a 4x4 stride-2 transposed layer, where that is faster."""
        geometry = (self.kernel_size, self.stride, self.padding, self.output_padding)
        return self.legacy_tasks <= task < self.frozen and subpixel_runs(x, self.transposed, geometry)

    def cached_subpixel_weight(self, task: int) -> torch.Tensor:
        """A frozen task's weight in :func:`subpixel_conv`'s layout, made once and cached as
        :meth:`forward_weight` caches the composed one."""
        cached = self._cached_subpixel
        if cached is None or cached[0] != task or unusable_for_autograd(cached[1]):
            with torch.no_grad(), torch.autocast(self._anchor.device.type, enabled=False):
                self._cached_subpixel = (task, subpixel_weight(self.task_weight(task)))
        return self._cached_subpixel[1]

    def per_step(self, key: str, make):
        """``make()``, made once per training step while the step shares weights (kept under
        ``key`` and the grad mode until :meth:`end_step`: a call without gradients never hands its
        product to one with them), else made on every call."""
        if self._step is None:
            return make()
        slot = (key, torch.is_grad_enabled())
        if slot not in self._step:
            self._step[slot] = make()
        return self._step[slot]

    def begin_step(self, calls: int) -> None:
        """Share the trainable weight across the next ``calls`` calls (one training step)."""
        self.step_calls, self._step = max(1, int(calls)), {}

    def end_step(self) -> None:
        self.step_calls, self._step = 1, None

    def drop_cache(self) -> None:
        self._cached = self._cached_subpixel = None

    def _apply(self, fn, *args, **kwargs):  # .to(), .cuda(), .half(): the cache would stay behind
        self.drop_cache()
        return super()._apply(fn, *args, **kwargs)

    def add_task(self) -> None:
        self.drop_cache()  # a cached evaluation weight is not needed while the new task trains
        super().add_task()

    def rebuild_derived(self) -> None:
        self.drop_cache()

    def _add_bias(self) -> None:
        if self.has_bias:
            self.biases.append(nn.Parameter(torch.zeros(self.out_channels, **self.factory())))

    def conv_call(self, x: torch.Tensor) -> ConvCall:
        """This call's sizes and the gradients its backward pass will compute."""
        positions, outputs = conv_positions(
            tuple(x.shape), self.kernel_size, self.stride, self.padding, self.output_padding, self.transposed
        )
        grad = torch.is_grad_enabled()
        params = self.task_parameters(self.active)
        trainable = self.active >= self.frozen and any(p.requires_grad for p in params)
        return ConvCall(self.filter_size, positions, outputs, grad and x.requires_grad, grad and trainable)

    def floor_macs(self, calls: list[ConvCall], task: int) -> int:
        """Multiply-adds of ``calls`` of ``task`` by the cheapest exact schedule."""
        return plain_macs(self.out_channels, calls)

    @property
    def spec(self) -> ConvSpec:
        return ConvSpec(
            self.in_channels,
            self.out_channels,
            self.kernel_size,
            self.stride,
            self.padding,
            self.output_padding,
            self.has_bias,
            self.transposed,
            self.label,
        )

    @torch.no_grad()
    def plain_layer(self, task: int) -> nn.Module:
        weight = self.task_weight(task)
        conv = plain_conv(self.spec)
        conv.weight.copy_(weight)
        if self.has_bias:
            conv.bias.copy_(self.biases[task])
        return conv.to(weight.device)

    def role(self) -> str:
        """What the layer keeps per task, for its printed form."""
        return ""

    def extra_repr(self) -> str:
        kind = "transposed, " if self.transposed else ""
        return (
            f"{self.in_channels}, {self.out_channels}, k={self.kernel_size}, s={self.stride}, "
            f"{kind}{self.role()}, tasks={self.num_tasks}"
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        task = self.active
        bias = self.biases[task] if self.has_bias else None
        if self.runs_subpixel(x, task):
            return subpixel_conv(x, self.cached_subpixel_weight(task), bias)
        weight = self.forward_weight(task)
        if self.transposed:
            return F.conv_transpose2d(x, weight, bias, self.stride, self.padding, self.output_padding)
        return F.conv2d(x, weight, bias, self.stride, self.padding)


class TaskSpecificConv(TaskConv):
    """Conv2d or ConvTranspose2d with all-new filters for every task and nothing shared: the
    network's last layers in every lifelong method, and every layer of a standalone model per task
    (``full``). Filters are stored in PyTorch's layout for the kind of convolution."""

    task_specific = True

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.weights = nn.ParameterList()

    def _create_task(self, task: int) -> None:
        shape = (self.out_channels, self.in_channels, self.kernel_size, self.kernel_size)
        # Drawn filter-major (the same random stream as every other conv), stored in its layout.
        new = torch.randn(shape, **self.factory()) * INIT_STD
        self.weights.append(nn.Parameter(new.transpose(0, 1).contiguous() if self.transposed else new))
        self._add_bias()

    def task_parameters(self, task: int) -> list[nn.Parameter]:
        return [self.weights[task], *([self.biases[task]] if self.has_bias else [])]

    def task_weight(self, task: int) -> torch.Tensor:
        return self.weights[task]

    def upgrade_state(self, prefix: str, state: dict[str, torch.Tensor], version: int) -> None:
        """Formats 1 and 2 kept these layers as piggyback layers: new filters under
        ``unconstrained`` (format 1: filter-major also when transposed) and empty matrices."""
        if version >= 3:
            return
        for key in [k for k in state if k.startswith(f"{prefix}piggyback.")]:
            del state[key]
        for key in [k for k in state if k.startswith(f"{prefix}unconstrained.")]:
            value = state.pop(key)
            if version < 2 and self.transposed:
                value = value.transpose(0, 1).contiguous()
            state[f"{prefix}weights.{key[len(prefix) + len('unconstrained.') :]}"] = value

    def role(self) -> str:
        return "task-specific"


def group_norm_serves(device_type: str) -> bool:
    """Whether an instance norm on ``device_type`` may run as a group norm with one group per
    channel: the same numbers up to rounding (at most 7e-7 apart on unit-variance inputs) from one
    kernel, where ``F.instance_norm`` reshapes its input into a batch norm's. On 2 CPU cores that
    took the 64-px CycleGAN ResNet's training step from 1.00x to 0.93x of the plain network's,
    which uses ``nn.InstanceNorm2d``, and a frozen task's inference from 1.01x to 0.92x; on an H200
    the training step from 1.03x to 0.95x (paired medians; the README's benchmark section has the
    figures). CPU and CUDA, where it was measured."""
    return device_type in ("cpu", "cuda")


def instance_norm(x: torch.Tensor, eps: float, group: bool) -> torch.Tensor:
    """Instance norm of ``x`` (N, C, H, W; no affine, no running statistics): with ``group``
    through the group-norm kernel with one group per channel (the same normalisation, see
    :func:`group_norm_serves`), else what ``InstanceNorm2d`` calls. A 1x1 map stays with
    instance_norm, which refuses it (the group norm would give zeros), and so does a map in
    another memory format (channels_last): the group-norm kernel's path for it rounds an image's
    numbers differently in batches of different sizes (up to 5e-6 apart), and a frozen task must
    give an image the same output in any batch."""
    if group and x.shape[2] * x.shape[3] > 1 and x.is_contiguous() and group_norm_serves(x.device.type):
        return F.group_norm(x, x.shape[1], eps=eps)
    return F.instance_norm(x, eps=eps)


class InstanceNorm(nn.InstanceNorm2d):
    """``nn.InstanceNorm2d`` without affine parameters or running statistics (the plain layers'
    and the discriminators' instance norm) that, while gradients are on, normalises through the
    group-norm kernel as :class:`TaskNorm` does (:func:`instance_norm`). Without gradients it keeps
    ``F.instance_norm``: sequential fine-tuning's outputs stay what its files' probes recorded."""

    def __init__(self, channels: int) -> None:
        super().__init__(channels, affine=False, track_running_stats=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return instance_norm(x, self.eps, torch.is_grad_enabled()) if x.dim() == 4 else super().forward(x)


class TaskNorm(LifelongLayer):
    """A separate normalisation layer (affine parameters and running statistics) per task.

    A frozen task always normalises with its stored running statistics, even in train mode,
    so no later forward pass can move them.
    """

    def __init__(self, kind: str, channels: int) -> None:
        super().__init__()
        check_norm(kind)
        self.kind = kind
        self.channels = channels
        self.norms = nn.ModuleList()
        # eval.protocol=reference: the statistics of the input itself, none read or updated
        self.batch_statistics = False

    def _create_task(self, task: int) -> None:
        if self.kind == "batch":
            norm: nn.Module = nn.BatchNorm2d(self.channels)
            nn.init.normal_(norm.weight, 1.0, INIT_STD)
            nn.init.zeros_(norm.bias)
        else:
            norm = nn.InstanceNorm2d(self.channels, affine=False, track_running_stats=False)
        factory = self.factory()
        # running statistics and affine parameters in the layer's dtype; the batch counter stays int
        self.norms.append(norm.to(device=factory["device"], dtype=factory["dtype"]))

    def task_parameters(self, task: int) -> list[nn.Parameter]:
        return list(self.norms[task].parameters())

    def task_buffers(self, task: int) -> list[torch.Tensor]:
        return list(self.norms[task].buffers())

    def plain_layer(self, task: int) -> nn.Module:
        return copy.deepcopy(self.norms[task]).eval()

    def normalise(self, x: torch.Tensor, task: int) -> torch.Tensor:
        """``x`` through task ``task``'s norm (a frozen task's with its stored statistics)."""
        norm = self.norms[task]
        if self.kind == "instance":
            if x.dim() != 4:
                raise ValueError(f"expected a 4-D input (N, C, H, W), got {x.dim()}-D")
            # without InstanceNorm2d's module call; a legacy task's as its probes recorded
            return instance_norm(x, norm.eps, group=task >= self.legacy_tasks)
        if self.batch_statistics:
            return F.batch_norm(x, None, None, norm.weight, norm.bias, True, 0.0, norm.eps)
        if task < self.frozen:
            return F.batch_norm(
                x, norm.running_mean, norm.running_var, norm.weight, norm.bias, False, 0.0, norm.eps
            )
        return norm(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.normalise(x, self.active)

    def extra_repr(self) -> str:
        return f"{self.kind}, {self.channels}, tasks={self.num_tasks}"
