"""The report as text: markdown tables and matrices, CSV files, readable labels and cells."""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pbgan.errors import PbganError
from pbgan.io import WriteError, write_text
from pbgan.report.loading import Run, load_runs
from pbgan.report.tables import (
    EFFICIENCY_COLUMNS,
    METHOD_KEYS,
    efficiency_rows,
    matrix_rows,
    measured_fids,
    methods_table,
    ratio_columns,
    ratio_rows,
    runs_table,
)
from pbgan.results import CHANGE, Row, csv_text

log = logging.getLogger("pbgan.report")

LABELS = {
    "task_seq": "task_seq",
    "acc": "Acc ↑",
    "fid_domain": "FID (domain) ↓",
    "fid_inception": "FID (Inception) ↓",
    "kid_domain": "KID (domain) ↓",
    "kid_inception": "KID (Inception) ↓",
    "l1": "L1 ↓",
    "last_acc": "Acc last task ↑",
    "last_fid_domain": "FID (domain) last task ↓",
    "last_fid_inception": "FID (Inception) last task ↓",
    "stored_params": "stored params",
    "standalone_params": "standalone params",
    "stored_share": "share of standalone",
    "new_task_share": "per new task / model",
    "stored_bytes": "stored bytes",
    "bytes_share": "bytes share",
    "new_task_bytes_share": "bytes per new task / float32 model",
    "front_params": "Pareto (params)",
    "front_bytes": "Pareto (bytes)",
    "front_l1_params": "Pareto L1 (params)",
    "front_l1_bytes": "Pareto L1 (bytes)",
    "bwt_acc": "BWT Acc",
    "bwt_fid_domain": "BWT FID (domain)",
    "bwt_fid_inception": "BWT FID (Inception)",
    "forgetting_acc": "forgetting Acc",
    "forgetting_fid_domain": "forgetting FID (domain)",
    "forgetting_fid_inception": "forgetting FID (Inception)",
    "output_change": "max output change",
    "fwt_acc": "FWT Acc vs full",
    "fwt_fid_domain": "FWT FID (domain) vs full",
    "fwt_fid_inception": "FWT FID (Inception) vs full",
    "fwt_l1": "FWT L1 vs full",
}
_TEXT_COLUMNS = {"task_seq", "model", "method", "overrides", "seeds", "run", "metric", "after \\ on"}
MARKDOWN_HIDDEN = ("standalone_params", "stored_bytes")  # in the CSV files; too wide for the page


def format_value(value: Any, digits: int = 4) -> str:
    """A table cell: ints with thousands separators, floats to ``digits`` significant digits."""
    if value is None:
        return "-"
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        if math.isnan(value):
            return "-"
        if value != 0 and abs(value) >= 10**digits:
            return f"{value:,.0f}"
        return f"{value:.{digits}g}"
    return str(value).replace("|", "\\|")


def to_markdown(rows: list[Row], columns: list[str] | None = None, keep_empty: bool = False) -> str:
    """Rows of dicts as a markdown table.

    A column ``X_std`` is merged into ``X`` as ``mean ± std``; columns empty in every row are
    dropped unless ``keep_empty``; known keys get readable headers (``LABELS``)."""
    if not rows:
        return "_no rows_"
    columns = list(columns or rows[0])
    shown = [c for c in columns if not (c.endswith("_std") and c[: -len("_std")] in columns)]
    if not keep_empty:
        shown = [c for c in shown if any(row.get(c) is not None for row in rows)]
    lines = [
        "| " + " | ".join(LABELS.get(c, c) for c in shown) + " |",
        "|" + "|".join("---" if c in _TEXT_COLUMNS else "---:" for c in shown) + "|",
    ]
    for row in rows:
        cells = []
        for column in shown:
            cell = format_value(row.get(column))
            spread = row.get(f"{column}_std")
            if spread is not None and row.get(column) is not None:
                cell += f" ± {format_value(spread, 2)}"
            cells.append(cell)
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def matrix_markdown(run: Run, metric: str) -> str:
    """One continual matrix as markdown: rows after learning task i (an untrained row first)."""
    results = run.results
    header = ["after \\ on"] + [f"{j + 1}: {name}" for j, name in enumerate(results.tasks)]
    lines = ["| " + " | ".join(header) + " |", "|---|" + "---:|" * len(results.tasks)]
    untrained = results.untrained.get(metric)
    if untrained:
        lines.append("| untrained | " + " | ".join(format_value(v) for v in untrained) + " |")
    for i, values in enumerate(results.matrix_of(metric)[: results.completed]):
        cells = [format_value(v) for v in values]
        lines.append(f"| {i + 1}: {results.tasks[i]} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _direction(run: Run, metric: str) -> str:
    if metric == CHANGE:
        return "0 means the task's outputs did not move"
    better = run.higher_is_better.get(metric)
    return "" if better is None else ("higher is better" if better else "lower is better")


def _hide(row: Row, columns: Iterable[str]) -> Row:
    return {key: value for key, value in row.items() if key not in columns}


def markdown_rows(rows: list[Row]) -> list[Row]:
    """Rows for the page: the widest CSV-only columns out, and ``width`` when every run is full width."""
    hidden = list(MARKDOWN_HIDDEN)
    if all(row.get("width") in (None, 1.0) for row in rows):
        hidden.append("width")
    return [_hide(row, hidden) for row in rows]


def _run_section(run: Run) -> list[str]:
    """A run's heading, settings and continual matrices."""
    state = "" if run.complete else f" (learned {run.completed_tasks} of {len(run.tasks)} tasks)"
    parts = [f"### {run.name}: {run.label}{state}", ""]
    context = [f"task_seq {run.task_seq}", f"model {run.model}"]
    if run.overrides:
        context.append("overrides `" + " ".join(run.overrides) + "`")
    parts += ["; ".join(context), ""]
    for metric in [*run.matrix, CHANGE]:
        if metric == CHANGE and not run.results.max_abs_change:
            continue
        direction = _direction(run, metric)
        parts += [
            f"{metric}" + (f" ({direction})" if direction else ""),
            "",
            matrix_markdown(run, metric),
            "",
        ]
    return parts


def report_markdown(
    runs: list[Run],
    title: str = "pbgan report",
    methods: list[Row] | None = None,
    ratios: list[Row] | None = None,
) -> str:
    """The whole report as markdown: methods table, ratio table, per-run matrices.

    ``methods`` and ``ratios`` are the tables when already made (else they are made here)."""
    methods = methods_table(runs) if methods is None else methods
    ratios = ratio_rows(methods) if ratios is None else ratios
    complete = [run for run in runs if run.complete]
    fid_keys = measured_fids(runs)
    parts = [f"# {title}", ""]
    parts.append(f"{len(runs)} runs ({len(complete)} with every task learned).")
    if "fid_domain" in fid_keys:
        parts.append(
            "FID (domain) is measured in the domain classifier's feature space: compare it between "
            "methods and ratios of the same settings only, never with published or Inception FIDs."
        )
    if len(fid_keys) > 1:
        parts.append("These runs measured FID in two ways; the two are kept in separate columns.")
    parts += [
        "",
        "## Methods",
        "",
        "Acc, FID and L1: final averages over the tasks after the last one; 'last task': the "
        "last task's value right after learning it. Mean ± std over seeds (n runs). Acc and BWT "
        "Acc: higher is better; FID, L1 and forgetting: lower is better (forgetting 0: nothing "
        "forgotten). share of standalone: stored generator parameters over T standalone models; "
        "per new task / model: parameters each later task stores over one standalone model.",
        "",
        to_markdown(markdown_rows(methods)),
        "",
        "## Against ratio",
        "",
    ]
    parts.append(to_markdown(markdown_rows(ratios)) if ratios else "_No runs differ only in ratio._")
    efficiency = efficiency_rows(methods)
    if len(efficiency) > 1:
        parts += [
            "",
            "## Storage against quality",
            "",
            "Per configuration: parameters and bytes each later task stores over one standalone "
            "float32 model (bytes as stored: compressed where storage.dtype says), against the final "
            "FID and L1; Pareto: no other configuration of the same sequence and model has both "
            "less storage and a lower FID (Pareto L1: a lower L1).",
            "",
            to_markdown(markdown_rows(efficiency)),
        ]
    parts += ["", "## Continual matrices", "", "Rows: after learning task i; columns: task j.", ""]
    for run in runs:
        parts += _run_section(run)
    return "\n".join(parts).rstrip() + "\n"


@dataclass
class Report:
    """What write_report wrote: the markdown text and the files, by name."""

    markdown: str
    files: dict[str, Path]
    runs: list[Run]


def write_report(directory: str | Path, out: str | Path | None = None) -> Report:
    """Read every run under ``directory``; write report.md and the CSV tables into ``out``
    (default ``directory/report``)."""
    directory = Path(directory)
    runs = load_runs(directory)
    out = Path(out) if out is not None else (directory if directory.is_dir() else directory.parent) / "report"
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise PbganError(
            f"{out}: cannot create the report folder ({error}); pick another with --out"
        ) from error
    methods = methods_table(runs)
    ratios = ratio_rows(methods)
    efficiency = efficiency_rows(methods)
    markdown = report_markdown(runs, f"pbgan report: {directory}", methods, ratios)
    tables = {
        "report.md": markdown,
        # with no row yet (every run still training) a header still makes the file a table
        "methods.csv": csv_text(methods, None if methods else list(METHOD_KEYS)),
        "ratio.csv": csv_text(ratios, ratio_columns(methods)),
        "efficiency.csv": csv_text(efficiency, None if efficiency else list(EFFICIENCY_COLUMNS)),
        "runs.csv": csv_text(runs_table(runs)),
        "matrices.csv": csv_text(matrix_rows(runs)),
    }
    files = {}
    for name, text in tables.items():
        files[name] = write_text(out / name, text)
    from pbgan.report.html import PAGE, write_run_page, write_sweep_page

    for run in runs:  # each run's own page, for runs that ended before pages existed
        if not (run.path / PAGE).is_file():
            try:
                write_run_page(run.path)
            except (OSError, WriteError) as error:
                log.warning(
                    "%s: cannot write its %s (%s); the sweep's page lists it unlinked", run.path, PAGE, error
                )
    files[PAGE] = write_sweep_page(runs, methods, ratios, efficiency, out, f"pbgan report: {directory}")
    return Report(markdown=markdown, files=files, runs=runs)
