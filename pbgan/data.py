"""``python -m pbgan.data download NAME`` and ``list``: fetch and list the public datasets.

    python -m pbgan.data list                                   # known datasets, and which are here
    python -m pbgan.data download facades maps                  # into $PBGAN_DATA_DIR or ./data
    python -m pbgan.data download paired4 --data-dir /big/disk  # a sequence's datasets

Only the command line: the known datasets, the download and its checks are in
:mod:`datamodules.download`, next to the datamodules that read them.
"""

from __future__ import annotations

import argparse
import sys
import urllib.request
from pathlib import Path

from datamodules.download import (
    DEFAULT_TIMEOUT,
    ENV_VAR,
    Opener,
    default_data_dir,
    expand_names,
    fetch,
    list_datasets,
)
from pbgan.cli import add_verbosity, returns_status, setup_logging
from pbgan.errors import PbganError

DONE = {"present": "already complete, skipped", "unpacked": "unpacked", "downloaded": "downloaded"}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m pbgan.data", description="Fetch and list the public pix2pix and CycleGAN datasets."
    )
    commands = parser.add_subparsers(dest="command", required=True)
    data_dir_help = f"where datasets live (default: ${ENV_VAR}, else ./data)"
    get = commands.add_parser("download", help="download and unpack datasets (skips complete ones)")
    get.add_argument("names", nargs="+", metavar="NAME", help="datasets, or a sequence: paired4, style2")
    get.add_argument("--data-dir", type=Path, default=None, help=data_dir_help)
    get.add_argument("--url", default=None, help="download from this URL instead (a mirror; one NAME only)")
    get.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT, help="network timeout in seconds")
    get.add_argument("--force", action="store_true", help="replace an existing incomplete dataset folder")
    get.add_argument("--keep-archive", action="store_true", help="keep the archive after unpacking")
    show = commands.add_parser("list", help="show the known datasets and which are present")
    show.add_argument("--data-dir", type=Path, default=None, help=data_dir_help)
    for command in (get, show):  # on the subcommands, where they are written last
        add_verbosity(command)
    return parser


@returns_status
def main(argv: list[str] | None = None, opener: Opener = urllib.request.urlopen) -> int:
    args = build_parser().parse_args(argv)
    setup_logging(args.verbose - args.quiet)
    data_dir = args.data_dir if args.data_dir is not None else default_data_dir()
    if args.command == "list":
        print(list_datasets(data_dir))
        return 0
    names = expand_names(args.names)
    if args.url and len(names) > 1:
        raise PbganError("--url names one archive: give exactly one dataset NAME with it")
    for name in names:
        done = fetch(
            name,
            data_dir,
            url=args.url,
            opener=opener,
            timeout=args.timeout,
            force=args.force,
            keep_archive=args.keep_archive,
        )
        print(f"{name}: {DONE[done]} ({data_dir / name})", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
