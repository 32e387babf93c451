"""Full: a standalone generator per task (the quality "upper bound"; ``method.width`` < 1 gives the
paper's narrower variants). Every layer is task-specific, nothing is shared."""

from __future__ import annotations

from torch import nn

from pbgan.lifelong.family import ConvSpec, LayerFamily


class FullFamily(LayerFamily):
    """All-new filters for every task in every layer, no bank."""

    def shared_conv(self, spec: ConvSpec) -> nn.Module:
        return self.task_specific_conv(spec)
