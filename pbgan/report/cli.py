"""``python -m pbgan.report DIR [--out OUTDIR]``: the report on stdout (markdown) and in OUTDIR; where
it was written on stderr (``-q``: not at all)."""

from __future__ import annotations

import argparse
import logging
import sys

from pbgan.cli import add_verbosity, returns_status, setup_logging
from pbgan.report.render import write_report

log = logging.getLogger(__name__)


@returns_status
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m pbgan.report",
        description="Paper-style tables (markdown and CSV) from every results.json under DIR.",
    )
    parser.add_argument("dir", metavar="DIR", help="a multirun directory, or any folder of runs")
    parser.add_argument("--out", metavar="OUTDIR", help="where to write the report (default: DIR/report)")
    add_verbosity(parser)
    args = parser.parse_args(argv)
    setup_logging(args.verbose - args.quiet)  # skipped runs are warnings on stderr
    report = write_report(args.dir, args.out)
    if hasattr(sys.stdout, "reconfigure"):  # a console without UTF-8 still gets the report
        sys.stdout.reconfigure(errors="replace")
    print(report.markdown)  # the report itself: stdout, whatever the verbosity
    log.info("report written to %s: %s", report.files["report.md"].parent, ", ".join(report.files))
    return 0
