"""One self-contained HTML page per run (``report.html`` in its folder) and per sweep.

The page works offline from the file system: plain HTML and CSS, every image (sample grids,
matplotlib figures) embedded as a PNG data URI, nothing fetched from anywhere. A run's page shows
its settings, every stage's sample grids for every task seen (tiles upscaled to at least
``MIN_TILE`` pixels, nearest neighbour, labelled with the task and the stage), each metric's
continual matrix as a heatmap with the numbers in the cells, the summary (final average, BWT,
forgetting), the stored parameters per task as bars and each task's training time. A sweep's page
has the methods table, FID against ratio, FID against stored share and the storage-against-quality
plot, with a link to each run's own page.

matplotlib draws through its object API (``Figure`` + the Agg canvas): no pyplot, so nothing
changes the backend of a notebook that imports this.
"""

from __future__ import annotations

import base64
import html
import io
import math
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from PIL import Image

from pbgan.io import write_text
from pbgan.report.loading import FID_KEYS, Run
from pbgan.report.tables import SERIES
from pbgan.results import CHANGE, Row

PAGE = "report.html"
MIN_TILE = 128  # sample tiles are shown at least this many pixels wide
GRID_PADDING = 2  # torchvision's make_grid padding in the sample grids (pbgan.evaluation)
GRID_COLUMNS = 3  # input | output | target

STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1200px; color: #222; }
h1 { font-size: 1.5em; } h2 { border-bottom: 1px solid #ccc; padding-bottom: .2em; margin-top: 2em; }
table { border-collapse: collapse; margin: .5em 0; font-size: .9em; }
th, td { border: 1px solid #ccc; padding: .25em .5em; text-align: right; }
th { background: #f3f3f3; } td.text, th.text { text-align: left; }
figure { display: inline-block; margin: .5em 1em .5em 0; vertical-align: top; }
figcaption { font-size: .85em; color: #555; }
img { image-rendering: pixelated; }
pre { background: #f7f7f7; padding: .8em; overflow-x: auto; font-size: .8em; max-height: 30em; }
.stage { margin-bottom: 1em; }
"""


def _png_uri(data: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(data).decode("ascii")


def _figure_uri(figure: Any) -> str:
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    FigureCanvasAgg(figure)
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=100, bbox_inches="tight")
    return _png_uri(buffer.getvalue())


def _new_figure(width: float, height: float) -> Any:
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height))


def _cell(value: Any, digits: int = 4) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return f"{value:.{digits}g}"
    return html.escape(str(value))


def table(rows: list[Row], columns: list[str] | None = None, labels: dict[str, str] | None = None) -> str:
    """Rows of dicts as an HTML table (text columns left-aligned)."""
    if not rows:
        return "<p><em>no rows</em></p>"
    columns = columns or list(rows[0])
    labels = labels or {}
    text = {c for c in columns if all(isinstance(r.get(c), str) or r.get(c) is None for r in rows)}
    head = "".join(
        f'<th class="{"text" if c in text else ""}">{html.escape(labels.get(c, c))}</th>' for c in columns
    )
    body = "".join(
        "<tr>"
        + "".join(f'<td class="{"text" if c in text else ""}">{_cell(row.get(c))}</td>' for c in columns)
        + "</tr>"
        for row in rows
    )
    return f"<table><tr>{head}</tr>{body}</table>"


def _image(uri: str, caption: str, alt: str) -> str:
    return (
        f'<figure><img src="{uri}" alt="{html.escape(alt)}">'
        f"<figcaption>{html.escape(caption)}</figcaption></figure>"
    )


def upscaled_grid(path: Path, image_size: int | None) -> tuple[bytes, int]:
    """A sample grid as PNG bytes with its tiles at least ``MIN_TILE`` pixels wide (nearest
    neighbour), and the factor it was enlarged by."""
    with Image.open(path) as grid:
        grid.load()
        tile = image_size or max(1, (grid.width - GRID_PADDING * (GRID_COLUMNS + 1)) // GRID_COLUMNS)
        factor = max(1, math.ceil(MIN_TILE / tile))
        if factor > 1:
            grid = grid.resize((grid.width * factor, grid.height * factor), Image.NEAREST)
        buffer = io.BytesIO()
        grid.save(buffer, format="PNG")
    return buffer.getvalue(), factor


def heatmap_uri(run: Run, metric: str) -> str:
    """A metric's continual matrix as a heatmap with the value in each measured cell."""
    values = run.matrix_nan(metric)[: run.completed_tasks]
    tasks = run.tasks
    size = max(3.0, 0.9 * len(tasks) + 1.5)
    figure = _new_figure(size + 1.0, size * 0.8)
    axes = figure.add_subplot()
    higher = run.higher_is_better.get(metric, metric != CHANGE)
    image = axes.imshow(values, cmap="viridis" if higher else "viridis_r", aspect="auto")
    finite = [v for row in values for v in row if not math.isnan(v)]
    middle = (min(finite) + max(finite)) / 2 if finite else 0.0
    for i, row in enumerate(values):
        for j, value in enumerate(row):
            if not math.isnan(value):
                dark = (value < middle) == higher
                axes.text(j, i, f"{value:.3g}", ha="center", va="center", fontsize=8,
                          color="white" if dark else "black")  # fmt: skip
    axes.set_xticks(
        range(len(tasks)), [f"{j + 1}: {t}" for j, t in enumerate(tasks)], rotation=30, ha="right"
    )
    axes.set_yticks(range(len(values)), [f"after {i + 1}" for i in range(len(values))])
    axes.set_title(metric + (" (higher is better)" if higher else " (lower is better)"))
    figure.colorbar(image, ax=axes, shrink=0.8)
    return _figure_uri(figure)


def params_uri(run: Run) -> str:
    """Stored parameters per task as bars, with one standalone model's as a line."""
    params = run.results.params()
    per_task = params["per_task"]
    figure = _new_figure(max(4.0, 0.8 * len(per_task) + 2.0), 3.2)
    axes = figure.add_subplot()
    names = [f"{i + 1}: {name}" for i, name in enumerate(run.tasks[: len(per_task)])]
    axes.bar(range(len(per_task)), per_task, color="C0")
    axes.axhline(params["standalone_model"], color="C3", linestyle="--", label="one standalone model")
    axes.set_xticks(range(len(per_task)), names, rotation=30, ha="right")
    axes.set_ylabel("stored parameters")
    axes.legend(fontsize=8)
    return _figure_uri(figure)


def _summary_rows(run: Run) -> list[Row]:
    rows = []
    for metric in run.matrix:
        summary = run.results.metric_summary(metric)
        rows.append({"metric": metric, **summary})
    return rows


def _task_rows(run: Run) -> list[Row]:
    results = run.results
    rows = []
    for i in range(results.completed):
        record = results.storage[i] if i < len(results.storage) else None
        rows.append(
            {
                "task": f"{i + 1}: {results.tasks[i]}",
                "stored params": results.per_task_params[i],
                "stored bytes": results.per_task_bytes[i],
                "storage": (record or {}).get("dtype"),
                "train seconds": round(results.task_seconds[i], 1) if i < len(results.task_seconds) else None,
            }
        )
    return rows


def _config_text(run: Run) -> str:
    """The composed config: Hydra's copy, else the one the run began with (``.pbgan/``)."""
    for config in (run.path / ".hydra" / "config.yaml", run.path / ".pbgan" / "config.yaml"):
        if config.is_file():
            return config.read_text(encoding="utf-8", errors="replace")
    return "\n".join(run.overrides) or "(no config beside this run)"


def _image_size(run: Run) -> int | None:
    data = (run.config or {}).get("data") if run.config else None
    size = data.get("image_size") if isinstance(data, dict) else None
    return int(size) if isinstance(size, int) else None


def _stage_sections(run: Run) -> list[str]:
    parts = []
    size = _image_size(run)
    for stage in range(1, run.completed_tasks + 1):
        grids = run.sample_grids(stage)
        if not grids:
            continue
        name = run.tasks[stage - 1]
        figures = []
        for png in grids:
            data, factor = upscaled_grid(png, size)
            task = png.stem.split("_", 1)
            label = f"after task {stage} ({name}): task {task[0][len('task') :]} {task[-1]}"
            caption = label + f" (input | output | target, x{factor})"
            figures.append(_image(_png_uri(data), caption, label))
        parts.append(
            f'<div class="stage"><h3>After task {stage}: {html.escape(name)}</h3>{"".join(figures)}</div>'
        )
    return parts


def _page(title: str, body: list[str]) -> str:
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{html.escape(title)}</title><style>{STYLE}</style></head><body>"
        f"<h1>{html.escape(title)}</h1>" + "\n".join(body) + "</body></html>\n"
    )


def run_page_html(run: Run) -> str:
    """A run's page (see the module's docstring)."""
    results = run.results
    params = results.params()
    share = params["stored_share"]
    body = [
        "<p>"
        + html.escape(
            f"{run.method}, model {run.model}, task_seq {run.task_seq}, seed {run.seed}: "
            f"{results.completed} of {len(results.tasks)} tasks learned; "
            f"{params['stored_total']:,} stored generator parameters against "
            f"{params['standalone_total']:,} for standalone models"
            + (f" ({share:.3f}x)." if share is not None else ".")
        )
        + "</p>",
        "<h2>Summary</h2>",
        "<p>Final average over the tasks after the last one; BWT: mean of R[T][j] - R[j][j]; "
        "forgetting: mean drop from each task's best (0: nothing forgotten).</p>",
        table(_summary_rows(run), ["metric", "final_average", "bwt", "forgetting"]),
        "<h2>Continual matrices</h2>",
        "<p>Row i: after learning task i; column j: task j; max_abs_change 0 means the task's "
        "outputs did not move.</p>",
    ]
    metrics = [*run.matrix, *([CHANGE] if results.max_abs_change else [])]
    body += [_image(heatmap_uri(run, metric), metric, f"{metric} heatmap") for metric in metrics]
    body += [
        "<h2>Storage and time per task</h2>",
        _image(params_uri(run), "stored parameters per task", "stored parameters per task"),
        table(_task_rows(run)),
        "<h2>Samples after each task</h2>",
        *_stage_sections(run),
        "<h2>Config</h2>",
        f"<pre>{html.escape(_config_text(run))}</pre>",
    ]
    return _page(f"pbgan run: {run.path.name}", body)


def write_run_page(run_dir: str | Path) -> Path:
    """Write ``report.html`` into a run folder (atomically) and return its path."""
    from pbgan.report.loading import load_run
    from pbgan.results import RESULTS_FILE

    run_dir = Path(run_dir)
    run = load_run(run_dir / RESULTS_FILE)
    text = run_page_html(run)
    return write_text(run_dir / PAGE, text)


def _scatter_uri(
    rows: list[Row], x: str, y: str, xlabel: str, ylabel: str, log_x: bool = False, lines: bool = False
) -> str:
    """Each series' points against ``x``, joined where ``lines`` (a series that differs only in
    x). A series is one configuration but ``x`` (:data:`SERIES`); the legend names what differs
    between the plotted series. ``log_x`` takes effect where ``x`` spans more than a factor of 10."""
    figure = _new_figure(6.0, 4.0)
    axes = figure.add_subplot()
    keys = {id(row): tuple(str(row.get(name, "")) for name in SERIES) for row in rows}
    series = list(dict.fromkeys(keys.values()))
    differing = [i for i in range(len(SERIES)) if len({key[i] for key in series}) > 1]
    for index, key in enumerate(series):
        points = sorted((r for r in rows if keys[id(r)] == key), key=lambda r: r[x])
        parts = [_short(key[i]) for i in differing if key[i] not in ("", "None")]
        label = ", ".join(parts) or key[SERIES.index("method")]
        axes.plot([r[x] for r in points], [r[y] for r in points], "o-" if lines else "o",
                  color=f"C{index % 10}", label=label)  # fmt: skip
    values = [float(r[x]) for r in rows if r[x] is not None and float(r[x]) > 0]
    if log_x and values and max(values) > 10 * min(values):
        axes.set_xscale("log")
    axes.set_xlabel(xlabel)
    axes.set_ylabel(ylabel)
    axes.grid(alpha=0.3)
    axes.legend(fontsize=8)
    return _figure_uri(figure)


def _short(text: str, limit: int = 40) -> str:
    """A legend label's part, cut to ``limit`` characters (a run's overrides can be long)."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


def sweep_page_html(
    runs: list[Run], methods: list[Row], ratios: list[Row], efficiency: list[Row], title: str, out: Path
) -> str:
    """A sweep's page: the methods table, its plots and a link to each run's own page."""
    from pbgan.report.render import LABELS, markdown_rows

    shown = markdown_rows(methods)
    body = [f"<p>{len(runs)} runs. Mean over seeds; the CSV files beside this page have the spreads.</p>"]
    if shown:
        columns = [c for c in shown[0] if not c.endswith("_std") and any(r.get(c) is not None for r in shown)]
        body += ["<h2>Methods</h2>", table(shown, columns, LABELS)]
    else:  # every run is still learning its sequence (a sweep looked at while it trains)
        body += ["<h2>Methods</h2>", "<p><em>No run has learned every task of its sequence yet.</em></p>"]
    fid = next((key for key in FID_KEYS if any(row.get(key) is not None for row in methods)), None)
    label = LABELS.get(fid, fid) if fid else ""
    if fid:
        # The ratio table's series differ only in ratio; a study (Optuna) moves other settings with
        # it, so there each configuration is a point of its own, not joined.
        measured = [r for r in (ratios or methods) if r.get(fid) is not None and r.get("ratio") is not None]
        if measured and (ratios or len({r["ratio"] for r in measured}) > 1):
            uri = _scatter_uri(measured, "ratio", fid, "ratio", label, lines=bool(ratios))
            heading = "FID against ratio" + ("" if ratios else " (each configuration: other settings vary)")
            body += [f"<h2>{heading}</h2>", _image(uri, "FID against ratio", "FID against ratio")]
        measured = [r for r in methods if r.get(fid) is not None and r.get("stored_share") is not None]
        if measured:
            uri = _scatter_uri(measured, "stored_share", fid, "stored share of standalone models", label)
            body += [
                "<h2>FID against stored share</h2>",
                _image(uri, "FID against stored share", "FID against stored share"),
            ]
    if fid and len(efficiency) > 1:
        body += [
            "<h2>Storage against quality</h2>",
            _image(
                _scatter_uri(
                    [r for r in efficiency if r.get("new_task_share")],
                    "new_task_share",
                    fid,
                    "parameters per new task / model",
                    LABELS.get(fid, fid),
                    log_x=True,
                ),
                "FID against parameters per new task",
                "storage against quality",
            ),
            table(efficiency, None, LABELS),
        ]
    links = []
    for run in runs:
        page = run.path / PAGE
        if page.is_file():
            href = Path(_relative(page, out)).as_posix()
            anchor = f'<a href="{html.escape(href)}">{html.escape(run.name)}</a>'
            links.append(f"<li>{anchor}: {html.escape(run.label)}</li>")
        else:
            links.append(f"<li>{html.escape(run.name)}: {html.escape(run.label)} (no page)</li>")
    body += ["<h2>Runs</h2>", "<ul>" + "".join(links) + "</ul>"]
    return _page(title, body)


def _relative(path: Path, start: Path) -> str:
    import os

    return os.path.relpath(path.resolve(), start.resolve())


def write_sweep_page(
    runs: Iterable[Run], methods: list[Row], ratios: list[Row], efficiency: list[Row], out: Path, title: str
) -> Path:
    """Write a sweep's ``report.html`` into ``out`` (atomically) and return its path."""
    text = sweep_page_html(list(runs), methods, ratios, efficiency, title, out)
    return write_text(out / PAGE, text)
