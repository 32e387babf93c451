"""Paper-style tables from many runs: ``python -m pbgan.report DIR [--out OUTDIR]``.

Finds every ``results.json`` under DIR (a multirun directory, or any folder of runs), reads
each with its Hydra overrides and config, and writes into OUTDIR (default ``DIR/report``):

- ``report.md``: the methods table, the ratio table and every run's continual matrices;
- ``methods.csv``: one row per run configuration, seeds averaged (mean and ``*_std``);
- ``ratio.csv``: FID, Acc and stored parameters against ratio, for runs that differ in ratio;
- ``efficiency.csv``: storage per new task (parameters, bytes) against final FID and L1, with the
  Pareto front per sequence and model (the efficiency study);
- ``runs.csv``: one row per run, nothing averaged;
- ``matrices.csv``: every run's continual matrices in tidy form.

Runs that cannot be read are skipped with a warning on the ``pbgan.report`` logger.

A library too (the results notebook uses it)::

    runs = load_runs("multirun/synth_paired4/2026-01-01_00-00-00")
    print(to_markdown(methods_table(runs)))

Light on purpose: no torch, no pandas; plain dicts that ``csv`` writes. The modules:
``loading`` (finding and reading runs, grouping a sweep), ``tables`` (the rows of each table),
``render`` (markdown, CSV and the report files), ``cli`` (the command). results.json itself is
read by :class:`pbgan.results.ContinualResults`, the one reader and writer of its schema.
"""

from pbgan.report.cli import main
from pbgan.report.loading import (
    FID_KEYS,
    METHOD_ORDER,
    Run,
    find_results,
    group_runs,
    load_run,
    load_runs,
)
from pbgan.report.render import (
    LABELS,
    Report,
    format_value,
    markdown_rows,
    matrix_markdown,
    report_markdown,
    to_markdown,
    write_report,
)
from pbgan.report.tables import (
    efficiency_rows,
    matrix_rows,
    methods_table,
    ratio_columns,
    ratio_rows,
    ratio_table,
    runs_table,
)
from pbgan.results import RESULTS_FILE, csv_text

__all__ = [
    "FID_KEYS",
    "LABELS",
    "METHOD_ORDER",
    "RESULTS_FILE",
    "Report",
    "Run",
    "csv_text",
    "efficiency_rows",
    "find_results",
    "format_value",
    "group_runs",
    "load_run",
    "load_runs",
    "main",
    "markdown_rows",
    "matrix_markdown",
    "matrix_rows",
    "methods_table",
    "ratio_columns",
    "ratio_rows",
    "ratio_table",
    "report_markdown",
    "runs_table",
    "to_markdown",
    "write_report",
]
