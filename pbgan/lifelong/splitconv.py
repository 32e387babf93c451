"""A third exact schedule for a trainable piggyback layer: mix forward, compose for the input gradient.

The layer computes ``y = conv(x, concat(U, P^T B))`` (:mod:`pbgan.lifelong.costs` has the two
schedules the floor counts). Its backward pass needs three things, and each can come from the
cheaper of the two schedules:

- the gradient of ``P`` is ``sum over positions of (B * x) dy_P^T``: the bank outputs ``B * x``
  that the mixed forward computed anyway, times the gradient, ``M c`` per position. The composed
  schedule gets it as ``B dW_P^T`` instead, after a weight gradient over all ``N - n_u`` combined
  filters (``(N - n_u) d`` per position): skipping that weight gradient is the saving;
- the gradient of ``U``: the weight gradient of the ``n_u`` new filters alone, as both schedules;
- the input gradient goes through the composed weight ``concat(U, P^T B)`` (``N d`` per position)
  rather than back through the bank (``(n_u + M) d`` plus the mixing's ``M c``): composing costs
  ``M c d`` once per training step and needs no gradient of its own, since ``P``'s comes from the
  bank outputs.

Per call, against the composed schedule's ``3 N d`` per position, this costs ``(n_u + M) d + 2 M c``
(forward, mixing, and the gradient of ``P``) plus ``n_u d`` plus ``N d``: at a task whose bank is
still small (``M = N`` at task 2, ``n_u = N / 4``) about 0.88 of the composed schedule's
multiply-adds, and more than it once the bank has grown past ``1.5 N`` (task 4). It is the same
linear map with the same gradients, summed in another order (the tests compare it with the
composed schedule). No gradient of a gradient goes through it (nothing in pbgan takes one).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch.autograd.function import once_differentiable


class SplitConv(torch.autograd.Function):
    """``concat(conv(x, U), P^T conv(x, B)) + bias`` for a constant bank ``B``; see the module's
    text.

    ``weights``: ``concat(U, B)`` along the filter axis in the convolution's layout, detached (the
    forward's one convolution); ``compose``: returns the detached composed weight for the input
    gradient (a step may share one for all its calls). The bias is added inside the convolution
    for the new filters and inside the mixing product for the combined ones, and the output is
    written in place: no separate pass over the output for either.
    """

    @staticmethod
    def forward(
        ctx,
        x: torch.Tensor,
        new: torch.Tensor,
        mixing: torch.Tensor,
        bias: torch.Tensor | None,
        weights: torch.Tensor,
        geometry: tuple,
        compose: Callable[[], torch.Tensor],
    ) -> torch.Tensor:
        stride, padding, output_padding, transposed = geometry
        n_new, rows = new.shape[1 if transposed else 0], mixing.shape[0]
        conv_bias = None
        if bias is not None and n_new:
            conv_bias = torch.cat([bias[:n_new], bias.new_zeros(rows)])
        if transposed:
            z = F.conv_transpose2d(x, weights, conv_bias, stride, padding, output_padding)
        else:
            z = F.conv2d(x, weights, conv_bias, stride, padding)
        batch, _, height, width = z.shape
        filters = n_new + mixing.shape[1]
        bank_out = z[:, n_new:].reshape(batch, rows, height * width)  # (B, M, L)
        out = z.new_empty(batch, filters, height, width)
        out[:, :n_new] = z[:, :n_new]
        combined_t = mixing.t()
        for b in range(batch):  # each image's combined outputs are one contiguous block of out
            target = out[b, n_new:].view(-1, height * width)
            if bias is None:
                torch.mm(combined_t, bank_out[b], out=target)
            else:
                torch.addmm(bias[n_new:, None].expand_as(target), combined_t, bank_out[b], out=target)
        # The mixing matrix is saved only so that autograd's version check refuses a backward
        # after it changed in place (the input gradient composes it again at backward time).
        ctx.save_for_backward(x, new, bank_out, mixing)
        ctx.geometry, ctx.compose, ctx.n_new = geometry, compose, n_new
        return out

    @staticmethod
    @once_differentiable
    def backward(ctx, grad: torch.Tensor):
        x, new, bank_out, _ = ctx.saved_tensors
        stride, padding, output_padding, transposed = ctx.geometry
        n_new = ctx.n_new
        grad = grad.contiguous()
        batch, filters, height, width = grad.shape
        strides, pads, outpads = [stride] * 2, [padding] * 2, [output_padding] * 2
        grad_x = grad_new = grad_mixing = grad_bias = None
        if ctx.needs_input_grad[2]:
            grad_combined = grad[:, n_new:].reshape(batch, filters - n_new, height * width)
            grad_mixing = torch.matmul(bank_out, grad_combined.transpose(1, 2)).sum(0)  # (M, N - n_u)
        if ctx.needs_input_grad[1] and n_new:
            grad_new = torch.ops.aten.convolution_backward(
                grad[:, :n_new].contiguous(), x, new, None, strides, pads, [1, 1], transposed, outpads, 1,
                [False, True, False],
            )[1]  # fmt: skip
        if ctx.needs_input_grad[3]:
            grad_bias = grad.sum((0, 2, 3))
        if ctx.needs_input_grad[0]:
            grad_x = torch.ops.aten.convolution_backward(
                grad, x, ctx.compose(), None, strides, pads, [1, 1], transposed, outpads, 1,
                [True, False, False],
            )[0]  # fmt: skip
        return grad_x, grad_new, grad_mixing, grad_bias, None, None, None
