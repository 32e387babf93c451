"""Multiply-add counts of a convolution call, and of the two exact ways to run a piggyback layer.

A trainable piggyback layer computes ``conv(x, concat(U, P^T B))``. Two schedules give the same
linear map and the same gradients:

- **composed**: form ``P^T B`` (``M c d`` multiply-adds, and as many again in backward for the
  gradient of ``P``), then one ordinary convolution with all ``N`` filters. Composing is paid once
  per training step however many times the step calls the layer (CycleGAN calls each generator
  three times; see :meth:`pbgan.lifelong.network.LifelongNet.sharing_weights`).
- **mixed**: convolve with the ``n_u`` new filters and the ``M`` bank filters, then mix the bank
  outputs with ``P`` (a 1x1 convolution, ``M c`` per output position).

Composing costs ``O(M c d)`` whatever the batch; mixing costs ``O(M (d + c))`` per position. Deep
layers with few positions are cheaper mixed, shallow ones composed. The layer picks, per step, the
schedule with fewer multiply-adds (forward and backward, as the step will run them), and the
benchmark sums the same counts into the floor an exact schedule of these two ways allows.

Mixing runs as several smaller kernels (the bank convolution, a 1x1 convolution, a concatenation)
whose multiply-adds go at a lower rate than one convolution's, so a layer mixes only where that
needs fewer than ``MIXING_RATE`` times the composed schedule's multiply-adds. Measured with
``python -m pbgan.bench`` on 2 CPU cores: counting multiply-adds alone (rate 1) made the CycleGAN
step 1.17x the reference at task 2 against 1.02x with composing only (its layers sit at 0.9-1.0),
while the UNet's deep layers need mixing (composing only: 1.24x at task 8). Between the two, the
UNet's middle layers (``down4`` at 0.51-0.61, ``up4`` at 0.64-0.75 of composing's count) run
faster mixed: raising the rate from 0.5 to 0.8 made them mix and took the UNet step down by 3-9%
at tasks 2, 4 and 8, at 64 and 256 pixels (the README's benchmark section has the figures). No
ResNet layer comes under 0.8, so CycleGAN runs as before.

On a GPU a layer always composes (:func:`mixing_rate` is 0 there). Mixing turns one
convolution call into three, and at the batch sizes these networks train with, a GPU step is
bound by the host's work per call rather than by multiply-adds. Measured with ``python -m
pbgan.bench --scale paper`` on an NVIDIA H200: the UNet step with the CPU's rule (10 of its 15
shared layers mixing) took 1.35x / 1.33x / 1.41x the reference at tasks 2 / 4 / 8, composing
1.25x / 1.32x / 1.30x, although composing keeps the GPU busier (task 8: 19.4 against 13.3 ms of
GPU time per profiled step); the README's benchmark section has the figures.

A third exact schedule, **split** (:mod:`pbgan.lifelong.splitconv`), runs the forward pass and
``P``'s gradient as the mixed one and the input gradient through the composed weight: no weight
gradient over the combined filters, one composition per step and none in backward. It costs fewer
multiply-adds than both while the bank is small (about 0.88 of composing at task 2 with ratio
0.25), so it beats the floor above, which counts only the two ways the issue named. Its smallest
convolution is the weight gradient of the ``n_u`` new filters alone, which oneDNN runs at a low
rate when it is small, so a call splits only where that product has at least ``SPLIT_MIN_MACS``
multiply-adds and the split count is under ``SPLIT_RATE`` times the composed one. Measured per
layer on 2 CPU cores at task 2 (three calls per step for the ResNet, one for the UNet; time over
composing's): resnet_9blocks' residual convolutions (``n_u d P`` = 604M) 0.93-0.96, unet_256's
``down3`` and its two outer up layers (134M-268M) 0.83-0.94 and ``down2`` (134M) 0.99; at the
64-px scale the residual convolutions (75M) 1.04-1.08 and the UNet's layers (17M-34M) 1.02-1.25,
which therefore compose. Past task 2 the grown bank makes the split count exceed the rate.

How the mixed schedule's bank convolution runs is not counted here: on the CPU, calls with few
positions run as one matrix product (:mod:`pbgan.lifelong.bankconv`), the same multiply-adds at a
higher rate than oneDNN's convolution reaches on those shapes, which is how the deep UNet steps
come in under the floor these counts give.

Counts per call of a convolution with ``K`` filters of size ``d`` over ``P`` kernel positions:
forward ``K d P``, weight gradient ``K d P``, input gradient ``K d P`` (only when the input needs
one: the first layer of a generator fed with data does not).
"""

from __future__ import annotations

from dataclasses import dataclass

MIXING_RATE = 0.8  # on the CPU; see mixing_rate
SPLIT_RATE = 0.9  # on the CPU; see splits
SPLIT_MIN_MACS = 10**8  # on the CPU; see splits


def mixing_rate(device_type: str) -> float:
    """The share of the composed schedule's multiply-adds under which a layer on ``device_type``
    mixes: ``MIXING_RATE`` on the CPU, 0 (never: it composes) on a GPU or any other device, where
    the rate was not measured."""
    return MIXING_RATE if device_type == "cpu" else 0.0


@dataclass(frozen=True)
class ConvCall:
    """One call of a convolution: its sizes and which gradients its backward pass computes."""

    filter_size: int  # d = C_in * k * k
    positions: int  # kernel positions: output positions (conv) or input positions (transposed)
    outputs: int  # output positions (where a 1x1 mixing runs)
    input_grad: bool = False  # backward computes the gradient of the input
    weight_grad: bool = False  # backward computes the gradient of the trainable weights


def splits(new: int, call: ConvCall) -> bool:
    """Whether a call may take the split schedule (:mod:`pbgan.lifelong.splitconv`): it computes
    an input gradient and a weight gradient, and its smallest convolution, the weight gradient of
    the ``new`` filters, has at least ``SPLIT_MIN_MACS`` multiply-adds (see the module's text)."""
    return call.input_grad and call.weight_grad and new * call.filter_size * call.positions >= SPLIT_MIN_MACS


def output_size(
    height: int, width: int, kernel: int, stride: int, padding: int, output_padding: int, transposed: bool
) -> tuple[int, int]:
    """(height, width) of a convolution's output over a ``height x width`` input."""
    if transposed:
        return (
            (height - 1) * stride - 2 * padding + kernel + output_padding,
            (width - 1) * stride - 2 * padding + kernel + output_padding,
        )
    return (height + 2 * padding - kernel) // stride + 1, (width + 2 * padding - kernel) // stride + 1


def conv_positions(
    shape: tuple[int, ...], kernel: int, stride: int, padding: int, output_padding: int, transposed: bool
) -> tuple[int, int]:
    """(kernel positions, output positions) of a convolution over an input of ``shape`` (NCHW)."""
    batch, _, height, width = shape
    out_h, out_w = output_size(height, width, kernel, stride, padding, output_padding, transposed)
    return batch * (height * width if transposed else out_h * out_w), batch * out_h * out_w


def plain_macs(filters: int, calls: list[ConvCall]) -> int:
    """An ordinary convolution with ``filters`` filters: forward and the gradients each call needs."""
    return sum(
        filters * call.filter_size * call.positions * (1 + call.weight_grad + call.input_grad)
        for call in calls
    )


def composed_macs(filters: int, new: int, rows: int, calls: list[ConvCall]) -> int:
    """Compose ``P^T B`` once for all ``calls`` (and its gradient once), then convolve."""
    if not calls:
        return 0
    combos, d = filters - new, calls[0].filter_size
    compose = rows * combos * d * (1 + any(call.weight_grad for call in calls))
    return compose + plain_macs(filters, calls)


def _mixed_passes(filters: int, new: int, rows: int, call: ConvCall) -> tuple[int, int, int]:
    """(forward, weight gradient, input gradient) of one mixed call: convolve with the new and the
    bank filters, mix the bank outputs with ``P`` (0 for a gradient the call does not compute)."""
    combos, d, positions, outputs = filters - new, call.filter_size, call.positions, call.outputs
    forward = (new + rows) * d * positions + rows * combos * outputs
    weight_grad = (new * d * positions + rows * combos * outputs) if call.weight_grad else 0
    input_grad = ((new + rows) * d * positions + rows * combos * outputs) if call.input_grad else 0
    return forward, weight_grad, input_grad


def mixed_macs(filters: int, new: int, rows: int, calls: list[ConvCall]) -> int:
    """Convolve with the new and the bank filters, then mix the bank outputs with ``P``."""
    return sum(sum(_mixed_passes(filters, new, rows, call)) for call in calls)


def split_macs(filters: int, new: int, rows: int, calls: list[ConvCall]) -> int:
    """Mix in the forward pass and for the gradient of ``P``, but take the input gradient through
    the composed weight (:mod:`pbgan.lifelong.splitconv`): one composition per step, no gradient
    of it."""
    total = 0
    for call in calls:
        forward, weight_grad, _ = _mixed_passes(filters, new, rows, call)
        total += (
            forward + weight_grad + (filters * call.filter_size * call.positions if call.input_grad else 0)
        )
    if calls and any(call.input_grad for call in calls):
        total += rows * (filters - new) * calls[0].filter_size
    return total
