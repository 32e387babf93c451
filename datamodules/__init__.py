"""Datamodules: the embedded synthetic tasks, the pix2pix / CycleGAN image folders, and the
public datasets' download tool."""

DIRECTIONS = ("AtoB", "BtoA")  # a task's direction: AtoB learns A -> B, BtoA swaps input and target


def is_whole(value: object) -> bool:
    """A whole number as a config gives it: an ``int``, not a ``bool`` (``True`` is an int too)."""
    return isinstance(value, int) and not isinstance(value, bool)


def switch(value: object, option: str) -> bool:
    """An on/off option as a config gives it: ``true`` or ``false``. A string such as ``maybe``
    or ``no`` (Hydra keeps words it does not read as booleans as strings) would read as on."""
    if not isinstance(value, bool):
        from pbgan.errors import ConfigError

        raise ConfigError(f"{option}={value!r} is a switch: use true or false")
    return value
