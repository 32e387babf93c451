"""Lifelong layers: per-task weights over a frozen, growing filter bank (DESIGN section 1).

Every lifelong layer speaks one small interface (:class:`LifelongLayer`): add a task, make a
task the active one, end the active task (freeze it forever), and count what a task stores.
Networks are built from these layers and never need to know which method a layer implements.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from pbgan.errors import ConfigError
from pbgan.lifelong.costs import (
    MIXING_RATE,
    ConvCall,
    composed_macs,
    conv_positions,
    mixed_macs,
    plain_macs,
)

INIT_STD = 0.02  # reference init: conv weights N(0, 0.02), BatchNorm weight N(1, 0.02)


def unconstrained_count(ratio: float, filters: int) -> int:
    """n_u = round(ratio * N), rounding halves up so the count never depends on float parity."""
    check_ratio(ratio)
    return int(math.floor(ratio * filters + 0.5))


def check_ratio(ratio: float) -> None:
    """Refuse a share of new filters outside [0, 1] with the option name and the fix."""
    if isinstance(ratio, bool) or not isinstance(ratio, (int, float)) or not 0.0 <= ratio <= 1.0:
        raise ConfigError(
            f"ratio={ratio!r} is not a share of filters: use a number in [0, 1] "
            "(0 = pure factorization over the bank, 1 = all filters new for every task), "
            "for example ratio=0.25"
        )


class LifelongLayer(nn.Module):
    """Interface of every layer that keeps separate parameters per task.

    ``num_tasks`` tasks exist; tasks ``0 .. frozen - 1`` are frozen forever. Only the newest task
    may be unfrozen, and only it is trained. A new task's tensors are created on the device and
    in the dtype of the layer (``.to()`` moves an empty anchor buffer along with everything else).
    """

    def __init__(self) -> None:
        super().__init__()
        self.num_tasks = 0
        self.frozen = 0
        self.active = -1
        self.register_buffer("_anchor", torch.empty(0), persistent=False)

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
    the number of batches. Inside :meth:`pbgan.lifelong.network.LifelongNet.sharing_weights` the
    trainable task's weight is composed once per training step and reused by every call.
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
    ) -> None:
        super().__init__()
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
        # Calls per training step and the step's shared weights (set by LifelongNet.sharing_weights).
        self.step_calls = 1
        self._step: dict | None = None

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
            if self._cached is None or self._cached[0] != task:
                with torch.no_grad():
                    self._cached = (task, self.task_weight(task).contiguous())
            return self._cached[1]
        if self._step is None:
            return self.task_weight(task)
        if "weight" not in self._step:
            self._step["weight"] = self.task_weight(task)
        return self._step["weight"]

    def begin_step(self, calls: int) -> None:
        """Share the trainable weight across the next ``calls`` calls (one training step)."""
        self.step_calls, self._step = max(1, int(calls)), {}

    def end_step(self) -> None:
        self.step_calls, self._step = 1, None

    def drop_cache(self) -> None:
        self._cached = None

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

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        task = self.active
        weight, bias = self.forward_weight(task), self.biases[task] if self.has_bias else None
        if self.transposed:
            return F.conv_transpose2d(x, weight, bias, self.stride, self.padding, self.output_padding)
        return F.conv2d(x, weight, bias, self.stride, self.padding)


class PiggybackConv(TaskConv):
    """Conv2d or ConvTranspose2d whose filters are partly new, partly combinations of the bank.

    Task 0: all N filters unconstrained. Task t >= 1: ``n_u`` unconstrained filters U_t and
    ``N - n_u`` piggyback filters ``P_t^T B_t`` where B_t is the first M_t rows of the bank.
    A task's new filters are stored in PyTorch's layout for the kind of convolution
    (``(n, C_in, k, k)``, transposed ``(C_in, n, k, k)``), so a task with only new filters runs
    exactly as a plain layer. The bank is derived from frozen tasks only, B = concat(W_0, U_1,
    U_2, ...) filter-major ``(M, C_in k k)`` (and, for a transposed layer, also in its layout for
    the mixing schedule), so it is kept as non-persistent buffers and the saved state holds exactly
    the stored parameters.

    ``task_specific=True`` gives a layer whose every task has all-new filters and that never
    feeds the bank (the UNet's last layer, the ResNet's last two).
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
        ratio: float = 0.25,
        task_specific: bool = False,
    ) -> None:
        super().__init__(
            in_channels, out_channels, kernel_size, stride, padding, output_padding, bias, transposed
        )
        self.task_specific = task_specific
        self.ratio = 1.0 if task_specific else float(ratio)
        self.n_new = unconstrained_count(self.ratio, out_channels)
        self.unconstrained = nn.ParameterList()
        self.piggyback = nn.ParameterList()
        self.register_buffer("bank", torch.empty(0, self.filter_size), persistent=False)
        # A transposed layer's bank in conv_transpose2d's layout (C_in, M, k, k), for mixing.
        self.register_buffer("bank_t", torch.empty(0), persistent=False)

    @property
    def shares_bank(self) -> bool:
        return not self.task_specific

    def bank_rows(self, task: int) -> int:
        """M_t: bank filters task ``task`` combines (N + (t - 1) * n_u for t >= 1, else 0)."""
        if task == 0 or not self.shares_bank:
            return 0
        return self.out_channels + (task - 1) * self.n_new

    def new_filters(self, task: int) -> int:
        """Unconstrained filters of ``task``: all N for task 0 and for task-specific layers."""
        return self.out_channels if task == 0 or not self.shares_bank else self.n_new

    def _create_task(self, task: int) -> None:
        n_new = self.new_filters(task)
        shape = (n_new, self.in_channels, self.kernel_size, self.kernel_size)
        factory = self.factory()
        # Drawn filter-major (one random stream for both kinds), stored in PyTorch's layout.
        new = torch.randn(shape, **factory) * INIT_STD
        self.unconstrained.append(nn.Parameter(new.transpose(0, 1).contiguous() if self.transposed else new))
        rows = self.bank_rows(task)
        combos = self.out_channels - n_new
        # Scaled so a composed filter starts with the spread of a bank filter.
        std = 1.0 / math.sqrt(rows) if rows else 0.0
        self.piggyback.append(nn.Parameter(torch.randn(rows, combos, **factory) * std))
        self._add_bias()

    def task_parameters(self, task: int) -> list[nn.Parameter]:
        params = [self.unconstrained[task], self.piggyback[task]]
        if self.has_bias:
            params.append(self.biases[task])
        return params

    def upgrade_state(self, prefix: str, state: dict[str, torch.Tensor], version: int) -> None:
        """Format 1 kept a transposed layer's new filters filter-major ``(n, C_in, k, k)``."""
        if version >= 2 or not self.transposed:
            return
        for key in [k for k in state if k.startswith(f"{prefix}unconstrained.")]:
            state[key] = state[key].transpose(0, 1).contiguous()

    def filter_major(self, new: torch.Tensor) -> torch.Tensor:
        """New filters as rows ``(n, C_in k k)``, whatever the layer's layout."""
        return (new.transpose(0, 1) if self.transposed else new).reshape(-1, self.filter_size)

    def rebuild_derived(self) -> None:
        super().rebuild_derived()
        if not self.shares_bank:
            return
        frozen = self.unconstrained[: self.frozen]
        self.bank = torch.cat([self.filter_major(u.detach()) for u in frozen])
        if self.transposed:
            k = self.kernel_size
            self.bank_t = self.bank.view(-1, self.in_channels, k, k).transpose(0, 1).contiguous()

    def _combined(self, task: int, rows: int) -> torch.Tensor:
        """``P_t^T B_t`` as filters ``(N - n_u, C_in, k, k)``."""
        if self.bank.shape[0] < rows:
            raise RuntimeError(f"task {task} needs {rows} bank filters, the bank has {self.bank.shape[0]}")
        combined = self.piggyback[task].t() @ self.bank[:rows]
        return combined.view(-1, self.in_channels, self.kernel_size, self.kernel_size)

    def weight(self, task: int) -> torch.Tensor:
        """Task ``task``'s weight in PyTorch's layout: its new filters, then ``P_t^T B_t``."""
        new = self.unconstrained[task]
        rows = self.bank_rows(task)
        if rows == 0 or new.shape[1 if self.transposed else 0] == self.out_channels:
            return new
        combined = self._combined(task, rows)
        if self.transposed:
            return torch.cat([new, combined.transpose(0, 1)], dim=1)
        return torch.cat([new, combined], dim=0)

    def task_weight(self, task: int) -> torch.Tensor:
        return self.weight(task)

    def _convolve(self, x: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
        """``x`` through ``weight`` in this layer's layout, without bias."""
        if self.transposed:
            return F.conv_transpose2d(x, weight, None, self.stride, self.padding, self.output_padding)
        return F.conv2d(x, weight, None, self.stride, self.padding)

    def _trains_combinations(self, task: int) -> bool:
        return task >= self.frozen and self.bank_rows(task) > 0 and self.out_channels > self.n_new

    def schedule_macs(self, calls: list[ConvCall], task: int) -> tuple[int, int]:
        """(composed, mixed) multiply-adds of ``calls`` of the trainable ``task``."""
        rows = self.bank_rows(task)
        return (
            composed_macs(self.out_channels, self.n_new, rows, calls),
            mixed_macs(self.out_channels, self.n_new, rows, calls),
        )

    def mixes_outputs(self, x: torch.Tensor, task: int) -> bool:
        """Whether the trainable task runs cheaper as bank outputs mixed by P than as P^T B composed
        (same linear map, same gradients; see :mod:`pbgan.lifelong.costs`), counting forward and
        backward as this call will run them, one composition per step, and mixing's lower rate."""
        if not self._trains_combinations(task):
            return False
        if self._step is not None and "mixed" in self._step:
            return self._step["mixed"]
        composed, mixed = self.schedule_macs([self.conv_call(x)] * self.step_calls, task)
        mixes = mixed < MIXING_RATE * composed
        if self._step is not None:
            self._step["mixed"] = mixes
        return mixes

    def floor_macs(self, calls: list[ConvCall], task: int) -> int:
        if not self._trains_combinations(task):
            return super().floor_macs(calls, task)
        return min(self.schedule_macs(calls, task))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        task = self.active
        if not self.mixes_outputs(x, task):
            return super().forward(x)
        rows = self.bank_rows(task)
        if self.transposed:
            bank = self.bank_t[:, :rows]
        else:
            bank = self.bank[:rows].view(rows, self.in_channels, self.kernel_size, self.kernel_size)
        mixing = self.piggyback[task].t()[:, :, None, None]  # a 1x1 convolution over bank outputs
        parts = [F.conv2d(self._convolve(x, bank), mixing)]
        if self.n_new:
            parts.insert(0, self._convolve(x, self.unconstrained[task]))
        out = torch.cat(parts, 1)
        return out + self.biases[task].view(1, -1, 1, 1) if self.has_bias else out

    def extra_repr(self) -> str:
        kind = "transposed, " if self.transposed else ""
        role = "task-specific" if self.task_specific else f"ratio={self.ratio}, n_u={self.n_new}"
        return (
            f"{self.in_channels}, {self.out_channels}, k={self.kernel_size}, s={self.stride}, "
            f"{kind}{role}, tasks={self.num_tasks}, bank={self.bank.shape[0]}"
        )


class TaskNorm(LifelongLayer):
    """A separate normalisation layer (affine parameters and running statistics) per task.

    A frozen task always normalises with its stored running statistics, even in train mode,
    so no later forward pass can move them.
    """

    def __init__(self, kind: str, channels: int) -> None:
        super().__init__()
        if kind not in ("batch", "instance"):
            raise ConfigError(f"norm={kind!r} is not known: use 'batch' or 'instance'")
        self.kind = kind
        self.channels = channels
        self.norms = nn.ModuleList()

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

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        norm = self.norms[self.active]
        if self.active < self.frozen and isinstance(norm, nn.BatchNorm2d):
            return F.batch_norm(
                x, norm.running_mean, norm.running_var, norm.weight, norm.bias, False, 0.0, norm.eps
            )
        return norm(x)

    def extra_repr(self) -> str:
        return f"{self.kind}, {self.channels}, tasks={self.num_tasks}"


class _BinarizeSTE(torch.autograd.Function):
    """Forward: exactly 1 where score > threshold, else 0. Backward: the gradient unchanged."""

    @staticmethod
    def forward(ctx, scores: torch.Tensor, threshold: float) -> torch.Tensor:
        return (scores > threshold).to(scores.dtype)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor, None]:
        return grad, None


class MaskedConv(TaskConv):
    """Mallya et al.'s binary masks: task 0 learns the weights, later tasks learn which to keep.

    Task 0 trains an ordinary weight W (then frozen forever). Task t >= 1 learns a real-valued
    score per weight, initialised to ``init_score``; its weight is ``W * (score > threshold)``
    with a straight-through gradient to the scores. Every task has its own bias. What a later
    task must store is one bit per weight plus its bias (see :meth:`stored_counts`).
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
        threshold: float = 5e-3,
        init_score: float = 1e-2,
    ) -> None:
        super().__init__(
            in_channels, out_channels, kernel_size, stride, padding, output_padding, bias, transposed
        )
        self.threshold, self.init_score = threshold, init_score
        shape = (in_channels, out_channels) if transposed else (out_channels, in_channels)
        self.weight = nn.Parameter(torch.randn(*shape, kernel_size, kernel_size) * INIT_STD)
        self.scores = nn.ParameterList()

    def _create_task(self, task: int) -> None:
        fill = self.init_score if task > 0 else 0.0
        shape = self.weight.shape if task > 0 else (0,)
        self.scores.append(nn.Parameter(torch.full(shape, fill, **self.factory())))
        self._add_bias()

    def task_parameters(self, task: int) -> list[nn.Parameter]:
        params = [self.weight] if task == 0 else [self.scores[task]]
        if self.has_bias:
            params.append(self.biases[task])
        return params

    def mask(self, task: int) -> torch.Tensor:
        """The binary mask of ``task`` in the forward pass, the identity gradient in the backward."""
        return _BinarizeSTE.apply(self.scores[task], self.threshold)

    def task_weight(self, task: int) -> torch.Tensor:
        return self.weight if task == 0 else self.weight * self.mask(task)

    def stored_counts(self, task: int) -> tuple[int, int]:
        if task == 0:
            return super().stored_counts(task)
        bits = self.weight.numel()
        bias = self.biases[task].numel() if self.has_bias else 0
        return bias + math.ceil(bits / 32), 4 * bias + math.ceil(bits / 8)

    def extra_repr(self) -> str:
        kind = "transposed, " if self.transposed else ""
        return f"{self.in_channels}, {self.out_channels}, k={self.kernel_size}, {kind}tasks={self.num_tasks}"
