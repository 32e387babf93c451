"""Datamodules: the embedded synthetic tasks, the pix2pix / CycleGAN image folders, and the
public datasets' download tool."""

DIRECTIONS = ("AtoB", "BtoA")  # a task's direction: AtoB learns A -> B, BtoA swaps input and target


def is_whole(value: object) -> bool:
    """A whole number as a config gives it: an ``int``, not a ``bool`` (``True`` is an int too)."""
    return isinstance(value, int) and not isinstance(value, bool)
