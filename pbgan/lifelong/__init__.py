"""The lifelong machinery every method shares: the layer interface, layer families, training
plugins and network-wide task bookkeeping. Methods' own layers live in :mod:`pbgan.methods`."""

from pbgan.lifelong.family import ConvSpec, LayerFamily, PlainFamily
from pbgan.lifelong.layers import LifelongLayer, TaskConv, TaskNorm, TaskSpecificConv
from pbgan.lifelong.network import LifelongNet
from pbgan.lifelong.plugin import TrainingPlugin

__all__ = [
    "ConvSpec",
    "LayerFamily",
    "LifelongLayer",
    "LifelongNet",
    "PlainFamily",
    "TaskConv",
    "TaskNorm",
    "TaskSpecificConv",
    "TrainingPlugin",
]
