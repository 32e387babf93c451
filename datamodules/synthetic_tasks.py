"""Where the synthetic tasks' ``_target_`` points (``conf/task/synth_*.yaml``).

The class lives in :mod:`datamodules.synthetic`; this path stays because a task's data node,
``_target_`` included, is part of the domain classifier's cache key (``pbgan.sequence.data_key``):
another path would miss every cached classifier and change results.json's fingerprint.
"""

from datamodules.synthetic.datamodule import SyntheticDataModule

__all__ = ["SyntheticDataModule"]
