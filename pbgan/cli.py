"""What every command line shares: a user error is one line on stderr and exit status 2, and
messages go through :mod:`logging` (the main process only under DDP)."""

from __future__ import annotations

import argparse
import functools
import logging
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from pbgan.errors import PbganError

EXIT_USER_ERROR = 2
F = TypeVar("F", bound=Callable[..., Any])


def exits_on_user_error(main: F) -> F:
    """Run ``main``; a :class:`PbganError` prints ``error: MESSAGE`` and exits with status 2
    (``SystemExit``, so Hydra entry points and argparse ones end the same way)."""

    @functools.wraps(main)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return main(*args, **kwargs)
        except PbganError as error:
            sys.stdout.flush()
            sys.stderr.write(f"error: {error}\n")
            sys.stderr.flush()
            raise SystemExit(EXIT_USER_ERROR) from None

    return wrapper  # type: ignore[return-value]


def returns_status(main: Callable[..., int]) -> Callable[..., int]:
    """For ``main(argv) -> int`` entry points: a user error returns 2 instead of exiting."""
    guarded = exits_on_user_error(main)

    @functools.wraps(main)
    def wrapper(*args: Any, **kwargs: Any) -> int:
        try:
            return guarded(*args, **kwargs)
        except SystemExit as done:
            if done.code == EXIT_USER_ERROR:
                return EXIT_USER_ERROR
            raise

    return wrapper


def output_folder(path: str | Path, option: str) -> Path:
    """A folder to write into (created if missing); an existing file there is refused, not
    overwritten."""
    folder = Path(path).expanduser()
    if folder.exists() and not folder.is_dir():
        raise PbganError(f"{option} {folder} is a file: name a folder (it is created if missing)")
    return folder


def add_imports(parser: argparse.ArgumentParser) -> None:
    """``--import MODULE``: modules the user trusts, imported before a model file is read (a file
    that names classes of other packages is built only from modules already imported)."""
    parser.add_argument(
        "--import",
        dest="imports",
        action="append",
        default=[],
        metavar="MODULE",
        help="import MODULE first: where the model was trained with your own network, layer "
        "family or plugin (repeatable)",
    )


def import_trusted(modules: list[str]) -> None:
    """Import each of ``modules`` (the user's ``--import``), naming one that cannot be."""
    import importlib

    for module in modules:
        try:
            importlib.import_module(module)
        except ImportError as error:
            raise PbganError(f"--import {module}: {error}") from None


def add_verbosity(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-q", "--quiet", action="count", default=0, help="fewer messages (warnings only)")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more messages (debug)")


class _StderrHandler(logging.StreamHandler):
    """Writes to whatever ``sys.stderr`` is when a message is emitted (tests capture it)."""

    @property
    def stream(self):  # type: ignore[override]
        return sys.stderr

    @stream.setter
    def stream(self, value) -> None:
        pass


class _PlainFormatter(logging.Formatter):
    """A message as it is; warnings and errors say so first, as the CLIs always have."""

    def format(self, record: logging.LogRecord) -> str:
        message = super().format(record)
        if record.levelno >= logging.WARNING and not message.startswith(("warning:", "error:")):
            return f"{record.levelname.lower()}: {message}"
        return message


def setup_logging(verbosity: int = 0) -> None:
    """pbgan's messages as plain lines on stderr, for the argparse entry points (Hydra's job
    logging does this for ``pbgan.run``). ``verbosity``: -1 warnings only, 0 info, 1 debug."""
    level = logging.WARNING if verbosity < 0 else logging.DEBUG if verbosity > 0 else logging.INFO
    logger = logging.getLogger("pbgan")
    logger.setLevel(level)
    if not any(getattr(h, "_pbgan", False) for h in logger.handlers):
        handler = _StderrHandler()
        handler.setFormatter(_PlainFormatter("%(message)s"))
        handler._pbgan = True  # type: ignore[attr-defined]
        logger.addHandler(handler)
        logger.propagate = False


def quiet_other_ranks(main_process: bool) -> None:
    """Under DDP every rank runs the sequence: only the main process says what it does."""
    if not main_process:
        logging.getLogger("pbgan").setLevel(logging.WARNING)
