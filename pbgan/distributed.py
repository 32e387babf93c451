"""DDP: every rank must freeze exactly the same task and grow exactly the same bank.

Gradients are averaged by DDP, so the trained parameters agree across ranks; the norm layers'
running statistics do not (each rank saw its own batches, and the bank is a buffer DDP is told
not to resend every step). When a task ends the statistics are averaged over ranks, rank 0's
tensors of the task are copied everywhere, and after the freeze every rank's digest of its
whole lifelong state is compared: a disagreement stops the run instead of diverging silently.
"""

from __future__ import annotations

import hashlib
import os

import torch
import torch.distributed as dist
from pytorch_lightning.utilities.rank_zero import rank_zero_only

from pbgan.lifelong.network import LifelongNet


def world_size() -> int:
    return dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1


def rank() -> int:
    return dist.get_rank() if world_size() > 1 else 0


def is_main_process() -> bool:
    """Rank 0 of the whole job, also before Lightning sets up DDP (read from the launchers' env:
    a child Lightning starts has LOCAL_RANK, torchrun sets RANK, SLURM sets SLURM_PROCID)."""
    if world_size() > 1:
        return dist.get_rank() == 0
    return rank_zero_only.rank == 0 and int(os.environ.get("NODE_RANK", "0")) == 0


def state_digest(nets: dict[str, LifelongNet]) -> str:
    """A hash of every stored tensor and every bank of ``nets``: equal iff they are bitwise equal."""
    digest = hashlib.sha256()
    for name, net in sorted(nets.items()):
        tensors = dict(net.state_dict())
        tensors.update({f"{key} (buffer)": b for key, b in net.named_buffers()})  # the banks too
        for key in sorted(tensors):
            tensor = tensors[key].detach().cpu().contiguous()
            digest.update(f"{name}.{key}:{tensor.dtype}:{tuple(tensor.shape)}".encode())
            digest.update(tensor.flatten().view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()[:16]


@torch.no_grad()
def synchronize_task(nets: dict[str, LifelongNet], task: int) -> None:
    """Before freezing ``task``: average its running statistics over ranks, then give every rank
    rank 0's copy of all its tensors (and of tensors shared by all tasks)."""
    size = world_size()
    if size == 1:
        return
    for net in nets.values():
        tensors = net.task_tensors(task) + net.shared_tensors()
        statistics = [t for t in tensors if not isinstance(t, torch.nn.Parameter) and t.is_floating_point()]
        for tensor in statistics:
            dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
            tensor.div_(size)
        for tensor in tensors:
            dist.broadcast(tensor.data, src=0)


def check_ranks_agree(nets: dict[str, LifelongNet], what: str) -> str:
    """The digest of ``nets`` after ``what`` (under DDP); raises if any rank's differs from rank 0's."""
    digest = state_digest(nets)
    digests: list[str | None] = [None] * world_size()
    dist.all_gather_object(digests, digest)
    if len(set(digests)) != 1:
        raise RuntimeError(f"DDP ranks disagree after {what}: state digests {digests}")
    return digest
