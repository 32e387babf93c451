"""Compressed storage of a finished task (``storage.dtype``): float32, float16, bfloat16 or int8.

A task is compressed once, when it ends and before its outputs are recorded: each of its weight
tensors (every task tensor with two or more dimensions: filters, piggyback matrices, low-rank
factors; biases and norms stay float32) is rounded in place to the nearest value the codec can
store, so from then on the network computes with exactly the values the file keeps and the frozen
task stays bit-identical. The lifelong file keeps the compressed form (half the bytes, or a
quarter plus one float32 scale per filter); decoding gives the same float32 values bit for bit.

int8 is symmetric per filter: ``scale = max |w| / 127`` over each filter (a row of a matrix),
``q = round(w / scale)``, stored ``q`` (int8) and ``scale`` (float32); the value is ``q * scale``
computed in float32.
"""

from __future__ import annotations

from typing import Any

import torch

from pbgan.errors import ConfigError

CODECS = ("float32", "float16", "bfloat16", "int8")
HALF = {"float16": torch.float16, "bfloat16": torch.bfloat16}


def check_codec(codec: str) -> str:
    """``codec`` if pbgan can store a task with it, else a ConfigError naming ``storage.dtype``."""
    if codec not in CODECS:
        raise ConfigError(f"storage.dtype={codec!r} is not known: use one of {', '.join(CODECS)}")
    return codec


def _filter_major(tensor: torch.Tensor, axis: int) -> torch.Tensor:
    """``tensor`` as rows ``(filters, numbers per filter)`` with the filter axis first."""
    return tensor.movedim(axis, 0).reshape(tensor.shape[axis], -1)


def _int8_parts(tensor: torch.Tensor, axis: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(q as int8, scale per filter shaped to broadcast over ``tensor``)."""
    rows = _filter_major(tensor.detach().float(), axis)
    peak = rows.abs().amax(dim=1)
    scale = torch.where(peak > 0, peak / 127.0, torch.ones_like(peak))
    shape = [1] * tensor.dim()
    shape[axis] = -1
    scale = scale.view(shape)
    q = torch.round(tensor.detach().float() / scale).clamp_(-127, 127).to(torch.int8)
    return q, scale


def _int8_value(q: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    return q.to(torch.float32) * scale


def quantize(tensor: torch.Tensor, codec: str, axis: int = 0) -> torch.Tensor:
    """The float32 values ``tensor`` has once stored with ``codec`` (what decoding gives back)."""
    if codec == "float32":
        return tensor.detach().clone()
    if codec in HALF:
        return tensor.detach().to(HALF[codec]).to(tensor.dtype)
    q, scale = _int8_parts(tensor, axis)
    return _int8_value(q, scale).to(tensor.dtype)


def encode(tensor: torch.Tensor, codec: str, axis: int = 0) -> Any:
    """What the lifelong file keeps for a tensor already quantized with ``codec``."""
    if codec == "float32":
        return tensor
    if codec in HALF:
        return {"codec": codec, "values": tensor.detach().to(HALF[codec])}
    q, scale = _int8_parts(tensor, axis)
    return {"codec": codec, "q": q, "scale": scale.reshape(-1), "axis": axis}


def decode(value: Any, like: torch.Tensor | None = None) -> torch.Tensor:
    """A stored entry back as the float32 tensor the network computed with."""
    if isinstance(value, torch.Tensor):
        return value
    codec = value.get("codec") if isinstance(value, dict) else None
    if codec in HALF:
        return value["values"].to(torch.float32)
    if codec == "int8":
        q, axis = value["q"], int(value["axis"])
        shape = [1] * q.dim()
        shape[axis] = -1
        return _int8_value(q, value["scale"].view(shape))
    raise ValueError(f"an entry with codec {codec!r} is not a stored tensor")


def stored_bytes(tensor: torch.Tensor, codec: str, axis: int = 0) -> int:
    """Bytes ``tensor`` takes stored with ``codec`` (int8: one float32 scale per filter too)."""
    if codec == "float32":
        return tensor.numel() * tensor.element_size()
    if codec in HALF:
        return tensor.numel() * 2
    return tensor.numel() + 4 * tensor.shape[axis]
