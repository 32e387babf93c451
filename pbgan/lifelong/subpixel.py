"""A frozen task's 4x4 stride-2 transposed convolution as one ordinary convolution: the faster
exact way to run the pix2pix UNet's upsampling layers on the CPU.

``F.conv_transpose2d(x, w, b, stride=2, padding=1)`` with a 4x4 kernel makes each output pixel
from a 2x2 patch of the input: output row ``2m`` from input rows ``m - 1`` and ``m`` (kernel rows
3 and 1), row ``2m + 1`` from rows ``m`` and ``m + 1`` (kernel rows 2 and 0); columns alike. So the
four output phases ``(row parity, column parity)`` are four 2x2 convolutions of the input, which
one convolution computes at once: a 2x2 kernel with ``4 C_out`` filters over the input padded by
one pixel, each phase reading its window of that ``(H + 1) x (W + 1)`` output, interleaved back
into ``2H x 2W`` by one strided copy. The same sums as the transposed convolution in another
order: the same map, rounded differently (within 1e-5 of it; the tests compare both).

On 2 CPU cores oneDNN runs most of these shapes faster as an ordinary convolution than as a
transposed one (each layer alone: the cpu-scale UNet's six upsampling layers 6.8 ms against
9.0 ms, unet_256's eight 42.1 ms against 52.8 ms; the README's benchmark section has the
whole-network figures). A frozen task's weight is fixed, so its 2x2 filters are
made once, with its cached weight. Tasks stored by lifelong file format 5 and before keep the
transposed convolution, the kernel their probes were recorded with
(:attr:`pbgan.lifelong.layers.LifelongLayer.legacy_tasks`).
"""

from __future__ import annotations

import torch

#: kernel rows (columns) of each output parity: even outputs read input m - 1 and m through kernel
#: rows 3 and 1, odd outputs read m and m + 1 through rows 2 and 0 (stride 2, padding 1)
PHASE_TAPS = ((3, 1), (2, 0))


def subpixel_serves(x: torch.Tensor) -> bool:
    """Whether a frozen task's 4x4 stride-2 transposed convolution of ``x`` runs as
    :func:`subpixel_conv`: on the CPU, where it was measured faster, in float32 outside autocast
    (oneDNN's float32 convolution, which it calls directly)."""
    return (
        x.device.type == "cpu"
        and x.dtype == torch.float32
        and not torch.is_autocast_enabled("cpu")
        and torch.backends.mkldnn.is_available()
    )


def subpixel_runs(x: torch.Tensor, transposed: bool, geometry: tuple[int, int, int, int]) -> bool:
    """Whether a convolution of ``x`` (``transposed`` or not; ``geometry``: kernel size, stride,
    padding, output padding) runs as :func:`subpixel_conv`: a 4x4 stride-2 transposed one, where
    :func:`subpixel_serves` says it is faster."""
    return transposed and geometry == (4, 2, 1, 0) and subpixel_serves(x)


def subpixel_weight(weight: torch.Tensor) -> torch.Tensor:
    """A transposed convolution's weight ``(C_in, C_out, 4, 4)`` as the ordinary convolution's
    ``(4 C_out, C_in, 2, 2)``: filters ordered by row parity, column parity, output channel."""
    phases = []
    for rows in PHASE_TAPS:
        for cols in PHASE_TAPS:
            phases.append(weight[:, :, list(rows)][:, :, :, list(cols)])  # (C_in, C_out, 2, 2)
    stacked = torch.stack(phases)  # (4, C_in, C_out, 2, 2)
    return stacked.transpose(1, 2).reshape(-1, weight.shape[0], 2, 2).contiguous()


@torch.compiler.disable  # oneDNN's operator has no fake-tensor form: compiled networks call it as is
def subpixel_conv(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
    """``F.conv_transpose2d(x, w, bias, stride=2, padding=1)`` of a 4x4 kernel ``w``, given
    ``weight = subpixel_weight(w)``: ``x`` (N, C_in, H, W) to (N, C_out, 2H, 2W)."""
    n, _, h, w = x.shape
    channels = weight.shape[0] // 4
    # oneDNN's convolution called directly: F.conv2d would run a kernel this small on a small
    # single image through another implementation, which rounds differently, and a frozen task
    # must give an image the same output whatever batch it comes in (probes are compared exactly)
    bias = None if bias is None else bias.repeat(4)
    out = torch.ops.aten.mkldnn_convolution(x, weight, bias, [1, 1], [1, 1], [1, 1], 1)
    # phase (a, b) of output channel c at (m, j) is out[:, (2a + b) C + c, m + a, j + b]
    s_n, s_c, s_h, s_w = out.stride()
    phases = out.as_strided(
        (n, channels, h, 2, w, 2),
        (s_n, s_c, s_h, 2 * channels * s_c + s_h, s_w, channels * s_c + s_w),
        out.storage_offset(),
    )
    return phases.reshape(n, channels, 2 * h, 2 * w).contiguous()  # a 1x1 input's would be a view
