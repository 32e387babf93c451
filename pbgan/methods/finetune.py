"""Sequential fine-tuning (SFT): one shared generator trained task after task; only the
task-specific layers (the last layer) are per task. It forgets: that is what it measures."""

from __future__ import annotations

from pbgan.lifelong.family import LayerFamily, PlainFamily


class FineTuneFamily(PlainFamily):
    """Plain shared layers (one copy drifts across tasks), per-task last layers."""

    task_specific_conv = LayerFamily.task_specific_conv
