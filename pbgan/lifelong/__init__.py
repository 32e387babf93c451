"""Lifelong layers, layer families and network-wide task bookkeeping."""

from pbgan.lifelong.family import LayerFamily, PiggybackFamily, PlainFamily, make_family
from pbgan.lifelong.layers import LifelongLayer, PiggybackConv, TaskNorm, unconstrained_count
from pbgan.lifelong.network import LifelongNet

__all__ = [
    "LayerFamily",
    "LifelongLayer",
    "LifelongNet",
    "PiggybackConv",
    "PiggybackFamily",
    "PlainFamily",
    "TaskNorm",
    "make_family",
    "unconstrained_count",
]
