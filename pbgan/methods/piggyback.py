"""Piggyback GAN (Zhai et al., ECCV 2020; DESIGN section 1): per layer, a share ``ratio`` of new
filters per task and the rest as learned combinations ``P_t^T B_t`` of a frozen, growing bank.

Two ways to store a task with fewer numbers (issue 16), alone or together:

- ``rank``: low-rank piggyback matrices ``P_t = A_t C_t`` (``A_t``: ``M_t x r``, ``C_t``:
  ``r x (N - n_u)``), so a layer's mixing costs ``r (M_t + N - n_u)`` numbers instead of
  ``M_t (N - n_u)``; a layer whose full matrix is no larger keeps the full matrix.
- ``ratio_schedule``: the share of new filters per layer, as an ordered mapping from layer-name
  patterns (``down1``, ``down*``, ``block*``; :mod:`fnmatch`) to shares; a layer takes the first
  pattern that matches its name, and ``ratio`` where none does.

The method is this file plus ``conf/method/piggyback.yaml`` (``pf.yaml``: ratio 0).
"""

from __future__ import annotations

import fnmatch
import math
from collections.abc import Mapping

import torch
import torch.nn.functional as F
from torch import nn

from pbgan.errors import ConfigError
from pbgan.lifelong.bankconv import bank_conv2d, bank_conv_transpose2d, uses_gemm
from pbgan.lifelong.costs import (
    SPLIT_RATE,
    ConvCall,
    composed_macs,
    conv_positions,
    mixed_macs,
    mixing_rate,
    split_macs,
    splits,
)
from pbgan.lifelong.family import ConvSpec, LayerFamily
from pbgan.lifelong.layers import INIT_STD, TaskConv, unusable_for_autograd
from pbgan.lifelong.splitconv import SplitConv


def unconstrained_count(ratio: float, filters: int) -> int:
    """n_u = round(ratio * N), rounding halves up so the count never depends on float parity."""
    check_ratio(ratio)
    return int(math.floor(ratio * filters + 0.5))


def check_ratio(ratio: float, option: str = "ratio") -> None:
    """Refuse a share of new filters outside [0, 1] with the option name and the fix."""
    if isinstance(ratio, bool) or not isinstance(ratio, (int, float)) or not 0.0 <= ratio <= 1.0:
        raise ConfigError(
            f"{option}={ratio!r} is not a share of filters: use a number in [0, 1] "
            "(0 = pure factorization over the bank, 1 = all filters new for every task), "
            "for example ratio=0.25"
        )


def check_rank(rank: int | None) -> None:
    """Refuse a rank that is not a positive whole number (or null: full-rank matrices)."""
    if rank is None:
        return
    if isinstance(rank, bool) or not isinstance(rank, int) or rank < 1:
        raise ConfigError(
            f"method.rank={rank!r} is not a rank: use a whole number >= 1 for low-rank piggyback "
            "matrices P = A C (for example method.rank=8), or null for full matrices"
        )


def check_schedule(schedule: Mapping[str, float] | None) -> dict[str, float]:
    """An ordered ``{pattern: share}`` mapping, each share checked; {} for none."""
    if schedule is None:
        return {}
    if not isinstance(schedule, Mapping):
        raise ConfigError(
            f"method.ratio_schedule={schedule!r} is not a mapping: give layer-name patterns and "
            "shares, for example 'method.ratio_schedule={down1:0.5,down*:0.1}'"
        )
    checked = {}
    for pattern, share in schedule.items():
        check_ratio(share, f"method.ratio_schedule.{pattern}")
        checked[str(pattern)] = float(share)
    return checked


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
    """

    def __init__(self, *args, ratio: float = 0.25, rank: int | None = None, **kwargs) -> None:
        """:class:`TaskConv`'s geometry arguments, ``ratio``: the share of new filters, and
        ``rank``: the rank of the piggyback matrices (None: full)."""
        super().__init__(*args, **kwargs)
        check_rank(rank)
        self.ratio = float(ratio)
        self.rank = rank
        self.n_new = unconstrained_count(self.ratio, self.out_channels)
        self.unconstrained = nn.ParameterList()
        self.piggyback = nn.ParameterList()  # P_t, or A_t where the task's matrix is low-rank
        self.piggyback_right = nn.ParameterList()  # C_t of a low-rank task, else an empty tensor
        self.register_buffer("bank", torch.empty(0, self.filter_size), persistent=False)
        # A transposed layer's bank in conv_transpose2d's layout (C_in, M, k, k), for mixing.
        self.register_buffer("bank_t", torch.empty(0), persistent=False)
        # (rows, bank, bank transposed) as the product of pbgan.lifelong.bankconv multiplies them
        self._gemm: tuple[int, torch.Tensor, torch.Tensor] | None = None

    def bank_rows(self, task: int) -> int:
        """M_t: bank filters task ``task`` combines (N + (t - 1) * n_u for t >= 1, else 0)."""
        if task == 0:
            return 0
        return self.out_channels + (task - 1) * self.n_new

    def new_filters(self, task: int) -> int:
        """Unconstrained filters of ``task``: all N for task 0."""
        return self.out_channels if task == 0 else self.n_new

    def bank_size(self) -> int:
        return self.bank.shape[0]

    def low_rank(self, task: int) -> bool:
        """Whether ``task`` keeps its matrix as ``A_t C_t``: a rank is set and the two factors
        store fewer numbers than the full ``M_t x (N - n_u)`` matrix."""
        rows, combos = self.bank_rows(task), self.out_channels - self.new_filters(task)
        return self.rank is not None and rows * combos > 0 and self.rank * (rows + combos) < rows * combos

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
        if self.low_rank(task):
            # A ~ N(0, 1/M), C ~ N(0, 1/r): each entry of A C has variance 1/M, as a full P's.
            self.piggyback.append(nn.Parameter(torch.randn(rows, self.rank, **factory) * std))
            right = torch.randn(self.rank, combos, **factory) / math.sqrt(self.rank)
            self.piggyback_right.append(nn.Parameter(right))
        else:
            self.piggyback.append(nn.Parameter(torch.randn(rows, combos, **factory) * std))
            if self.rank is not None:
                self.piggyback_right.append(nn.Parameter(torch.empty(0, **factory)))
        self._add_bias()

    def matrices(self, task: int) -> list[nn.Parameter]:
        """``task``'s piggyback matrix, or its two low-rank factors ``A_t``, ``C_t``."""
        if self.rank is None:
            return [self.piggyback[task]]
        return [self.piggyback[task], self.piggyback_right[task]]

    def mixing_matrix(self, task: int) -> torch.Tensor:
        """``P_t`` (``M_t x (N - n_u)``): the stored matrix, or ``A_t C_t``."""
        if self.low_rank(task):
            return self.piggyback[task] @ self.piggyback_right[task]
        return self.piggyback[task]

    def task_parameters(self, task: int) -> list[nn.Parameter]:
        params = [self.unconstrained[task], *self.matrices(task)]
        if self.has_bias:
            params.append(self.biases[task])
        return params

    def parameter_groups(self, task: int) -> dict[str, list[nn.Parameter]]:
        """The matrices P (or their factors) train in the ``mixing`` group
        (``model.optim.piggyback_lr_scale``)."""
        mixing = [m for m in self.matrices(task) if m.numel()]
        return {
            "weights": [p for p in self.task_parameters(task) if not any(p is m for m in mixing)],
            "mixing": mixing,
        }

    def upgrade_state(self, prefix: str, state: dict[str, torch.Tensor], version: int) -> None:
        """Format 1 kept a transposed layer's new filters filter-major ``(n, C_in, k, k)``."""
        if version >= 2 or not self.transposed:
            return
        for key in [k for k in state if k.startswith(f"{prefix}unconstrained.")]:
            state[key] = state[key].transpose(0, 1).contiguous()

    def filter_major(self, new: torch.Tensor) -> torch.Tensor:
        """New filters as rows ``(n, C_in k k)``, whatever the layer's layout."""
        return (new.transpose(0, 1) if self.transposed else new).reshape(-1, self.filter_size)

    def drop_cache(self) -> None:
        super().drop_cache()
        self._gemm = None

    def rebuild_derived(self) -> None:
        super().rebuild_derived()
        frozen = [self.filter_major(u.detach()) for u in self.unconstrained[: self.frozen]]
        # Nothing frozen yet (a checkpoint of the first task): the bank is still empty.
        self.bank = torch.cat(frozen) if frozen else self.bank.new_empty(0, self.filter_size)
        if self.transposed and frozen:
            k = self.kernel_size
            self.bank_t = self.bank.view(-1, self.in_channels, k, k).transpose(0, 1).contiguous()

    def _combined(self, task: int, rows: int) -> torch.Tensor:
        """``P_t^T B_t`` as filters ``(N - n_u, C_in, k, k)``."""
        if self.bank.shape[0] < rows:
            raise RuntimeError(f"task {task} needs {rows} bank filters, the bank has {self.bank.shape[0]}")
        if self.low_rank(task):  # C^T (A^T B): r (M + N - n_u) d multiply-adds instead of M (N - n_u) d
            combined = self.piggyback_right[task].t() @ (self.piggyback[task].t() @ self.bank[:rows])
        else:
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

    def _gemm_bank(self, rows: int) -> tuple[torch.Tensor, torch.Tensor]:
        """The first ``rows`` bank filters in the two orientations :mod:`pbgan.lifelong.bankconv`
        multiplies by (made once per bank, only for layers that take that path)."""
        if self._gemm is None or self._gemm[0] != rows or unusable_for_autograd(*self._gemm[1:]):
            k = self.kernel_size
            bank = self.bank[:rows]
            if self.transposed:  # (M k k, C_in) and (C_in, M k k)
                spread = bank.view(rows, self.in_channels, k, k).permute(0, 2, 3, 1).reshape(rows * k * k, -1)
                gather = self.bank_t[:, :rows].reshape(self.in_channels, rows * k * k)
                self._gemm = (rows, spread.contiguous(), gather.contiguous())
            else:  # (M, C_in k k) and (C_in k k, M)
                self._gemm = (rows, bank, bank.t().contiguous())
        return self._gemm[1], self._gemm[2]

    def bank_weight(self, rows: int) -> torch.Tensor:
        """The first ``rows`` bank filters in the layout of this layer's kind of convolution."""
        if self.transposed:
            return self.bank_t[:, :rows]
        return self.bank[:rows].view(rows, self.in_channels, self.kernel_size, self.kernel_size)

    def bank_outputs(self, x: torch.Tensor, rows: int) -> torch.Tensor:
        """``x`` convolved with the first ``rows`` bank filters: one matrix product on the CPU
        where the call has few positions (:mod:`pbgan.lifelong.bankconv`), else a convolution."""
        k = self.kernel_size
        positions, _ = conv_positions(
            tuple(x.shape), k, self.stride, self.padding, self.output_padding, self.transposed
        )
        if uses_gemm(x, positions):
            weight, weight_t = self._gemm_bank(rows)
            if self.transposed:
                return bank_conv_transpose2d(
                    x, weight, weight_t, k, self.stride, self.padding, self.output_padding
                )
            return bank_conv2d(x, weight, weight_t, k, self.stride, self.padding)
        return self._convolve(x, self.bank_weight(rows))

    def _trains_combinations(self, task: int) -> bool:
        return task >= self.frozen and self.bank_rows(task) > 0 and self.out_channels > self.n_new

    def schedule_macs(self, calls: list[ConvCall], task: int) -> tuple[int, int]:
        """(composed, mixed) multiply-adds of ``calls`` of the trainable ``task``."""
        rows = self.bank_rows(task)
        return (
            composed_macs(self.out_channels, self.n_new, rows, calls),
            mixed_macs(self.out_channels, self.n_new, rows, calls),
        )

    def schedule(self, x: torch.Tensor, task: int) -> str:
        """How the trainable task runs this call: ``composed`` (P^T B, then one convolution),
        ``mixed`` (bank outputs mixed by P) or ``split`` (mixed forward, input gradient through the
        composed weight; :mod:`pbgan.lifelong.splitconv`). Same linear map and gradients; the
        choice counts forward and backward as this call will run them, one composition per step,
        and the measured rates of the mixed and split schedules (:mod:`pbgan.lifelong.costs`; on a
        GPU a layer always composes). Chosen once per step for all its calls."""
        rate = mixing_rate(x.device.type)
        if not rate or not self._trains_combinations(task):
            return "composed"
        return self.per_step("schedule", lambda: self._cheapest(x, task, rate))

    def _cheapest(self, x: torch.Tensor, task: int, rate: float) -> str:
        calls = [self.conv_call(x)] * self.step_calls
        composed, mixed = self.schedule_macs(calls, task)
        if mixed < rate * composed:
            return "mixed"
        if (
            not torch.is_autocast_enabled("cpu")
            and splits(self.n_new, calls[0])
            and split_macs(self.out_channels, self.n_new, self.bank_rows(task), calls) < SPLIT_RATE * composed
        ):
            return "split"
        return "composed"

    def mixes_outputs(self, x: torch.Tensor, task: int) -> bool:
        """Whether the trainable task's forward pass mixes bank outputs (the mixed or the split
        schedule) rather than convolving with the composed weight."""
        return self.schedule(x, task) != "composed"

    def floor_macs(self, calls: list[ConvCall], task: int) -> int:
        if not self._trains_combinations(task):
            return super().floor_macs(calls, task)
        return min(self.schedule_macs(calls, task))

    def _composed_detached(self, task: int) -> torch.Tensor:
        """The composed weight without autograd, once per step while the step shares weights."""

        def compose() -> torch.Tensor:
            with torch.no_grad():
                return self.weight(task).contiguous()

        return self.per_step("detached", compose)

    def _split(self, x: torch.Tensor, task: int) -> torch.Tensor:
        rows, new = self.bank_rows(task), self.unconstrained[task]

        def joined() -> torch.Tensor:  # the new filters and the bank: the forward's one convolution
            with torch.no_grad():
                return torch.cat([new, self.bank_weight(rows)], 1 if self.transposed else 0)

        geometry = (self.stride, self.padding, self.output_padding, self.transposed)
        bias = self.biases[task] if self.has_bias else None
        compose = lambda: self._composed_detached(task)  # noqa: E731
        weights = self.per_step("joined", joined)
        return SplitConv.apply(x, new, self.mixing_matrix(task), bias, weights, geometry, compose)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        task = self.active
        if task < self.frozen:  # a frozen task: its cached weight, as a plain layer
            return super().forward(x)
        schedule = self.schedule(x, task)
        if schedule == "composed":
            return super().forward(x)
        if schedule == "split":
            return self._split(x, task)
        mixing = self.mixing_matrix(task).t()[:, :, None, None]  # a 1x1 convolution over bank outputs
        parts = [F.conv2d(self.bank_outputs(x, self.bank_rows(task)), mixing)]
        if self.n_new:
            parts.insert(0, self._convolve(x, self.unconstrained[task]))
        out = torch.cat(parts, 1)
        return out + self.biases[task].view(1, -1, 1, 1) if self.has_bias else out

    def role(self) -> str:
        rank = f", rank={self.rank}" if self.rank is not None else ""
        return f"ratio={self.ratio}, n_u={self.n_new}{rank}, bank={self.bank.shape[0]}"


class PiggybackFamily(LayerFamily):
    """Piggyback layers with a share ``ratio`` of unconstrained filters per new task (per layer
    where ``ratio_schedule`` names the layer) and optionally low-rank matrices of ``rank``."""

    def __init__(
        self, ratio: float, rank: int | None = None, ratio_schedule: Mapping[str, float] | None = None
    ) -> None:
        check_ratio(ratio)
        check_rank(rank)
        self.ratio = float(ratio)
        self.rank = rank
        self.schedule = check_schedule(ratio_schedule)

    @property
    def share_of_new_filters(self) -> float:
        return self.ratio

    def layer_ratio(self, label: str) -> float:
        """The share of new filters of the layer named ``label``: the first schedule pattern that
        matches it, else ``ratio``."""
        for pattern, share in self.schedule.items():
            if fnmatch.fnmatchcase(label, pattern):
                return share
        return self.ratio

    def shared_conv(self, spec: ConvSpec) -> PiggybackConv:
        return PiggybackConv(**spec.arguments(), ratio=self.layer_ratio(spec.label), rank=self.rank)
