"""Named fault points, for the crash tests: ``PBGAN_FAULT`` makes a run die (or its disk fill up)
at an exact moment, so every window between two durable states can be tested deterministically.

``PBGAN_FAULT=POINT[@N][:ACTION]`` acts the ``N``-th time (default 1st) the run reaches ``POINT``:

- ``kill`` (default): SIGKILL the process, so no handler, ``finally`` or atexit code runs;
- ``enospc``: raise ``OSError(ENOSPC)`` as a full disk would.

Points are a phase (``classifier-epoch``, ``train-batch``, ``train-end``, ``evaluation``,
``stage-written``) or a file write: ``write:NAME`` (the temp file is half written),
``written:NAME`` (the temp file is complete, not yet renamed) and ``renamed:NAME`` (in place),
where ``NAME`` is the file name, such as ``lifelong.pt`` or ``last.ckpt``. Unset, each point
costs one dictionary lookup.
"""

from __future__ import annotations

import errno
import os
import signal

ENV = "PBGAN_FAULT"
_reached: dict[str, int] = {}


def _parse(spec: str) -> tuple[str, int, str]:
    action = "kill"
    if spec.rsplit(":", 1)[-1] in ("kill", "enospc"):
        spec, action = spec.rsplit(":", 1)
    point, _, count = spec.partition("@")
    return point, int(count or 1), action


def fault_point(point: str) -> None:
    """Die here (or fail as a full disk would) if ``PBGAN_FAULT`` names this point and count."""
    spec = os.environ.get(ENV)
    if not spec:
        return
    target, count, action = _parse(spec)
    if point != target:
        return
    _reached[point] = _reached.get(point, 0) + 1
    if _reached[point] != count:
        return
    if action == "enospc":
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
    os.kill(os.getpid(), signal.SIGKILL)
