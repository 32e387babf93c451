"""A mixing piggyback layer's bank convolution as one matrix product, where that is faster.

When a trainable piggyback layer mixes (see :mod:`pbgan.lifelong.costs`), it convolves its input
with every bank filter. In the deep layers that bank is large and the input small: at unet_256's
task 8 a layer convolves a 2x2 input with 1,280 filters of 8,192 numbers (42 MB). On the CPU,
oneDNN's convolution takes time in proportion to such a weight rather than to the arithmetic
(23-28 ms forward for a 2x2 and for an 8x8 input alike; 0.5-19 GMAC/s measured on 2 cores),
while the same arithmetic as ``bank @ columns`` (``F.unfold`` / ``F.fold`` around one
matrix product) streams the bank once: 2.5-12x faster for the forward and input-gradient pass of
those layers on 2 CPU cores (``python -m pbgan.bench`` has the whole-step figures; the README
says where).

The bank is a constant, so the product needs only the input's gradient, and both passes use the
one orientation BLAS handles well for few columns: a contiguous matrix times the transpose of a
contiguous ``(positions, K)`` matrix. (``W.t() @ g``, what autograd would run for the input
gradient, is 5-40x slower than ``W_t @ g`` for 2-8 columns on this machine's BLAS.) So each
layer keeps the bank in both orientations while it trains by this path.

The product computes the same sums as the convolution in another order: the same map and the same
gradients, rounded differently (the tests compare both ways).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from pbgan.lifelong.costs import output_size

#: the product replaces the convolution on the CPU where the call has at most this many kernel
#: positions (output positions of a convolution, input positions of a transposed one). Measured on
#: 2 CPU cores (forward + input gradient, product over oneDNN): 64-px UNet at batch 8, 8-32
#: positions 1.35-1.48x faster, 128 positions 1.11-1.23x, 512 positions 0.52-0.79x (slower);
#: unet_256 at batch 1, 1-64 positions 2.5-12x, 256 positions 1.09-1.85x.
GEMM_POSITIONS = 256


def uses_gemm(x: torch.Tensor, positions: int) -> bool:
    """Whether a bank convolution of ``x`` with ``positions`` kernel positions runs as a product."""
    return x.device.type == "cpu" and positions <= GEMM_POSITIONS


class _ConstantProduct(torch.autograd.Function):
    """``weight @ rows.t()`` for a constant ``weight`` ``(M, K)`` and ``rows`` ``(N, K)``; the
    backward pass multiplies by ``weight_t`` ``(K, M)``, the same matrix kept transposed."""

    @staticmethod
    @torch.amp.custom_fwd(device_type="cpu")
    def forward(ctx, rows: torch.Tensor, weight: torch.Tensor, weight_t: torch.Tensor) -> torch.Tensor:
        ctx.save_for_backward(weight_t)
        return weight @ rows.t()

    @staticmethod
    @torch.amp.custom_bwd(device_type="cpu")  # under autocast as the forward was
    def backward(ctx, grad: torch.Tensor):
        (weight_t,) = ctx.saved_tensors
        grad_rows = None
        if ctx.needs_input_grad[0]:
            grad_rows = (weight_t @ grad.t().contiguous().t()).t()
        return grad_rows, None, None


def bank_conv2d(
    x: torch.Tensor, bank: torch.Tensor, bank_t: torch.Tensor, kernel: int, stride: int, padding: int
) -> torch.Tensor:
    """``F.conv2d(x, bank.view(M, C, k, k), None, stride, padding)`` as a product.

    ``bank``: ``(M, C k k)`` filter-major; ``bank_t``: the same, transposed and contiguous.
    """
    batch, _, height, width = x.shape
    out_h, out_w = output_size(height, width, kernel, stride, padding, 0, False)
    columns = F.unfold(x, kernel, padding=padding, stride=stride)  # (B, C k k, L)
    rows = columns.transpose(1, 2).reshape(-1, columns.shape[1])  # (B L, C k k)
    out = _ConstantProduct.apply(rows, bank, bank_t)  # (M, B L)
    return out.view(-1, batch, out_h, out_w).transpose(0, 1)


def bank_conv_transpose2d(
    x: torch.Tensor,
    spread: torch.Tensor,
    gather: torch.Tensor,
    kernel: int,
    stride: int,
    padding: int,
    output_padding: int,
) -> torch.Tensor:
    """``F.conv_transpose2d(x, bank_t, None, stride, padding, output_padding)`` as a product.

    ``spread``: ``(M k k, C)``, what each input channel adds to each output channel at each kernel
    offset; ``gather``: ``(C, M k k)``, the same transposed and contiguous (``bank_t`` viewed).
    """
    batch, channels, height, width = x.shape
    out_size = output_size(height, width, kernel, stride, padding, output_padding, True)
    rows = x.permute(0, 2, 3, 1).reshape(-1, channels)  # (B H W, C)
    columns = _ConstantProduct.apply(rows, spread, gather)  # (M k k, B H W)
    columns = columns.view(spread.shape[0], batch, height * width).transpose(0, 1)
    return F.fold(columns, out_size, kernel, padding=padding, stride=stride)
