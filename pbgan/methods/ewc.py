"""Elastic weight consolidation for GANs (Kirkpatrick et al. 2017; Seff et al. 2017): one shared
generator fine-tuned task after task (as ``sft``: only the last layers are per task) plus the
penalty ``lambda / 2 * sum_i F_i (theta_i - theta*_i)^2`` that keeps the shared parameters near
the values earlier tasks ended with, in proportion to how much each one mattered to them.

``F`` is a diagonal Fisher estimated when a task ends, from the squared gradients of the
generators' training loss (:meth:`~pbgan.modules.base.LifelongGANModule.generator_objective`) on
the first ``fisher_batches`` batches of that task's training data, with the networks in eval mode
(no dropout; the norms' stored statistics are not moved). Separate EWC keeps one (F, theta*) per
earlier task and sums their penalties; online EWC (Schwarz et al. 2018) keeps one running Fisher,
``F <- decay * F + F_t``, anchored at the newest task's parameters.

What it keeps to go on learning (the Fisher and the anchors) is saved with the plugin: in the
checkpoints and in ``lifelong.pt``, so a resumed or extended run keeps its penalty. It is training
state, not part of the model a task needs to run, so it is not counted in the stored parameters.

The method is this file plus ``conf/method/ewc.yaml``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytorch_lightning as pl
import torch
from torch import nn

from pbgan.errors import ConfigError, PbganError
from pbgan.lifelong.plugin import TrainingPlugin

if TYPE_CHECKING:
    from pbgan.modules.base import LifelongGANModule


def shared_parameters(module: LifelongGANModule) -> dict[str, nn.Parameter]:
    """The generators' parameters outside every lifelong layer, by name: the ones every task
    shares and fine-tuning moves (the per-task last layers are frozen with their task)."""
    params: dict[str, nn.Parameter] = {}
    for net_name, net in module.lifelong_nets().items():
        shared = {id(t) for t in net.shared_tensors()}
        for name, param in net.named_parameters():
            if id(param) in shared:
                params[f"{net_name}.{name}"] = param
    return params


class EWCPlugin(TrainingPlugin):
    """The EWC penalty on the shared generator parameters, and the Fisher at every task's end."""

    def __init__(
        self, strength: float = 1.0e5, fisher_batches: int = 16, online: bool = False, decay: float = 1.0
    ) -> None:
        """``strength``: lambda (``method.lambda``); ``fisher_batches``: training batches the Fisher
        is estimated on; ``online``: one running Fisher with ``decay`` (gamma) instead of one per task."""
        super().__init__()
        if isinstance(strength, bool) or not isinstance(strength, (int, float)) or strength < 0:
            raise ConfigError(
                f"method.lambda={strength!r}: the EWC strength is a number >= 0, for example 1000"
            )
        if isinstance(fisher_batches, bool) or not isinstance(fisher_batches, int) or fisher_batches < 1:
            raise ConfigError(f"method.plugin.fisher_batches={fisher_batches!r}: use a whole number >= 1")
        if not 0.0 <= float(decay) <= 1.0:
            raise ConfigError(f"method.plugin.decay={decay!r}: online EWC's decay is in [0, 1]")
        self.strength = float(strength)
        self.fisher_batches = fisher_batches
        self.online = bool(online)
        self.decay = float(decay)
        # One (anchor, Fisher) pair per earlier task (online: one pair), by parameter name.
        self.anchors: list[dict[str, torch.Tensor]] = []
        self.fishers: list[dict[str, torch.Tensor]] = []

    # -- the penalty -------------------------------------------------------------------------
    def penalty(self, module: LifelongGANModule) -> torch.Tensor:
        """``lambda / 2 * sum_k sum_i F_k,i (theta_i - theta*_k,i)^2`` over the stored pairs."""
        params = shared_parameters(module)
        total = torch.zeros((), device=module.device)
        for anchor, fisher in zip(self.anchors, self.fishers):
            for name, param in params.items():
                if name not in fisher:
                    continue
                f, a = self._on(fisher, name, param), self._on(anchor, name, param)
                total = total + (f * (param - a) ** 2).sum()
        return 0.5 * self.strength * total

    @staticmethod
    def _on(store: dict[str, torch.Tensor], name: str, like: torch.Tensor) -> torch.Tensor:
        """``store[name]`` on ``like``'s device and dtype (moved once, then kept there)."""
        tensor = store[name]
        if tensor.device != like.device or tensor.dtype != like.dtype:
            tensor = store[name] = tensor.to(device=like.device, dtype=like.dtype)
        return tensor

    def generator_loss_terms(self, module: LifelongGANModule, batch) -> dict[str, torch.Tensor]:
        if not self.anchors or self.strength == 0:
            return {}
        return {"ewc": self.penalty(module)}

    # -- the Fisher ----------------------------------------------------------------------------
    def estimate_fisher(self, module: LifelongGANModule, loader) -> dict[str, torch.Tensor]:
        """Diagonal Fisher: the mean over the first ``fisher_batches`` batches of ``loader`` of the
        squared gradient of the generators' loss, per shared parameter (never negative)."""
        params = shared_parameters(module)
        fisher = {name: torch.zeros_like(p) for name, p in params.items()}
        was_training = module.training
        module.eval()
        batches = 0
        try:
            with torch.enable_grad():
                for batch in loader:
                    batch = tuple(x.to(module.device) for x in batch)
                    loss = module.generator_objective(batch)
                    grads = torch.autograd.grad(loss, list(params.values()), allow_unused=True)
                    for (name, _), grad in zip(params.items(), grads):
                        if grad is not None:
                            fisher[name] += grad.detach() ** 2
                    batches += 1
                    if batches >= self.fisher_batches:
                        break
        finally:
            module.train(was_training)
        if batches == 0:
            raise PbganError("EWC: the task's training data gave no batch to estimate the Fisher on")
        return {name: value / batches for name, value in fisher.items()}

    def on_task_end(self, module: LifelongGANModule, task: int, trainer: pl.Trainer | None) -> None:
        datamodule = getattr(trainer, "datamodule", None) if trainer is not None else None
        if datamodule is None:
            raise PbganError(
                f"EWC: task {task + 1} ended without its training data (no trainer with a datamodule), "
                "so its Fisher cannot be estimated; end tasks through Trainer.fit"
            )
        fisher = self.estimate_fisher(module, datamodule.train_dataloader())
        if torch.distributed.is_available() and torch.distributed.is_initialized():
            # Every rank read the same batches from the same (synchronised) parameters; rank 0's
            # Fisher is given to all, so no rounding difference between devices can split them.
            for value in fisher.values():
                torch.distributed.broadcast(value, src=0)
        anchor = {name: p.detach().clone() for name, p in shared_parameters(module).items()}
        if self.online and self.fishers:
            old = self.fishers[0]
            fisher = {
                name: self.decay * self._on(old, name, f) + f if name in old else f
                for name, f in fisher.items()
            }
            self.anchors, self.fishers = [anchor], [fisher]
        else:
            self.anchors.append(anchor)
            self.fishers.append(fisher)

    # -- saved with the module -------------------------------------------------------------------
    def get_extra_state(self) -> dict[str, Any]:
        return {"anchors": self.anchors, "fishers": self.fishers, "online": self.online}

    def set_extra_state(self, state: dict[str, Any]) -> None:
        if bool(state.get("online", False)) != self.online:
            kind = "online" if state.get("online") else "separate"
            raise PbganError(
                f"EWC: the saved state is {kind} EWC's; set method.plugin.online={bool(state.get('online'))}"
            )
        self.anchors = [dict(a) for a in state.get("anchors", [])]
        self.fishers = [dict(f) for f in state.get("fishers", [])]

    def extra_repr(self) -> str:
        kind = f"online, decay={self.decay}" if self.online else "separate"
        return (
            f"lambda={self.strength}, fisher_batches={self.fisher_batches}, {kind}, pairs={len(self.anchors)}"
        )
