"""The report's tables, as rows of plain dicts: methods (seeds averaged), ratio, runs, matrices."""

from __future__ import annotations

import logging
import statistics
from collections.abc import Iterable

from pbgan.report.loading import FID_KEYS, KID_KEYS, Run, group_runs
from pbgan.results import Row

log = logging.getLogger("pbgan.report")

RATIO_COLUMNS = (
    "task_seq",
    "model",
    "method",
    "width",
    "overrides",
    "ratio",
    "n",
    "seeds",
    "acc",
    "acc_std",
    "l1",
    "l1_std",
    "stored_params",
    "stored_share",
    "new_task_share",
    "stored_bytes",
    "bytes_share",
)


def _mean_std(values: Iterable[float | None]) -> tuple[float | None, float | None]:
    present = [float(v) for v in values if v is not None]
    if not present:
        return None, None
    if len(present) == 1:
        return present[0], None
    return statistics.mean(present), statistics.stdev(present)


def measured_fids(runs: Iterable[Run]) -> list[str]:
    """The FID kinds (``FID_KEYS``) some of these runs measured, in that order."""
    present = {run.fid_key for run in runs}
    return [key for key in FID_KEYS if key in present]


def _has_metric(runs: Iterable[Run], metric: str) -> bool:
    return any(metric in run.matrix for run in runs)


def _complete(runs: Iterable[Run], what: str) -> list[Run]:
    runs = list(runs)
    for run in runs:
        if not run.complete:
            log.warning(
                "%s: learned %d of %d tasks; left out of the %s",
                run.path,
                run.completed_tasks,
                len(run.tasks),
                what,
            )
    return [run for run in runs if run.complete]


def _sequence_labels(runs: list[Run]) -> dict[tuple, str]:
    """task_seq name per (name, tasks); the task list is added where one name covers several lists."""
    lists: dict[str, set[tuple[str, ...]]] = {}
    for run in runs:
        lists.setdefault(run.task_seq, set()).add(tuple(run.tasks))
    return {
        (name, tasks): name if len(variants) == 1 else f"{name} ({'+'.join(tasks)})"
        for name, variants in lists.items()
        for tasks in variants
    }


def _differing_overrides(groups: list[list[Run]]) -> list[str]:
    """Per group, the overrides that set it apart from the others (those common to all dropped)."""
    extras = [group[0].extra_overrides() for group in groups]
    common = frozenset.intersection(*extras) if extras else frozenset()
    return [" ".join(sorted(extra - common)) for extra in extras]


def _stat_columns(row: Row, name: str, values: Iterable[float | None], std: bool = True) -> None:
    mean, spread = _mean_std(values)
    row[name] = mean
    if std:
        row[f"{name}_std"] = spread


def _summary(group: list[Run], metric: str, key: str) -> list[float | None]:
    """``final_average``, ``bwt`` or ``forgetting`` of a metric, per run of the group."""
    return [run.results.metric_summary(metric)[key] for run in group]


# Overrides that belong to how a method stores its tasks, not to the data or the schedule.
METHOD_OWN = ("method.", "variant=", "storage.")


def _baseline_key(run: Run) -> tuple:
    """What a run must share with the ``full`` run its forward transfer is measured against: the
    sequence, model, seed, FID kind and every override outside the method's own (``method.*``,
    ``storage.*`` and the efficiency study's ``+variant``)."""
    extra = frozenset(o for o in run.extra_overrides() if not o.lstrip("~+").startswith(METHOD_OWN))
    return (run.task_seq, tuple(run.tasks), run.model or "", run.seed, run.fid_key, extra)


def full_baselines(runs: Iterable[Run]) -> dict[tuple, Run]:
    """The complete full-width ``full`` runs, by :func:`_baseline_key`."""
    return {
        _baseline_key(run): run
        for run in runs
        if run.method == "full" and run.width in (None, 1.0) and run.complete
    }


def forward_transfer(run: Run, baseline: Run | None, metric: str) -> float | None:
    """Mean over tasks 2..T of (the run's metric on task t right after learning it) minus the
    ``full`` run's: what learning the earlier tasks first gives (or costs) a new task, with the
    metric's own sign (for FID and L1 lower is better, so negative is a gain). None without a
    ``full`` run of the same sequence and seed."""
    if baseline is None or metric not in run.matrix or metric not in baseline.matrix:
        return None
    mine, theirs = run.matrix[metric], baseline.matrix[metric]
    diffs = [
        mine[t][t] - theirs[t][t]
        for t in range(1, min(run.completed_tasks, baseline.completed_tasks))
        if mine[t][t] is not None and theirs[t][t] is not None
    ]
    return statistics.mean(diffs) if diffs else None


def _group_row(
    group: list[Run], fid_keys: list[str], with_l1: bool, baselines: dict[tuple, Run] | None = None
) -> Row:
    """The averaged columns of a configuration's runs (everything after the identifying ones)."""
    row: Row = {
        "n": len(group),
        "seeds": ",".join(str(run.seed) for run in group),
        "tasks": len(group[0].tasks),
    }
    _stat_columns(row, "acc", _summary(group, "acc", "final_average"))
    for key in fid_keys:
        _stat_columns(row, key, _summary(group, key, "final_average"))
    for key in KID_KEYS:  # final KID (its spread over subsets is in the matrices); empty if unmeasured
        _stat_columns(row, key, _summary(group, key, "final_average"))
    if with_l1:
        _stat_columns(row, "l1", _summary(group, "l1", "final_average"))
    for metric in ["acc", *fid_keys]:
        _stat_columns(row, f"last_{metric}", (run.results.last_learned(metric) for run in group))
    params = [run.results.params() for run in group]
    _stat_columns(row, "stored_params", (p["stored_total"] for p in params), std=False)
    _stat_columns(row, "standalone_params", (p["standalone_total"] for p in params), std=False)
    _stat_columns(row, "stored_share", (p["stored_share"] for p in params), std=False)
    _stat_columns(row, "new_task_share", (run.results.new_task_share() for run in group), std=False)
    _stat_columns(row, "stored_bytes", (p["stored_bytes_total"] for p in params), std=False)
    _stat_columns(row, "bytes_share", (run.results.bytes_share() for run in group), std=False)
    _stat_columns(
        row, "new_task_bytes_share", (run.results.new_task_bytes_share() for run in group), std=False
    )
    for metric in ["acc", *fid_keys]:
        _stat_columns(row, f"bwt_{metric}", _summary(group, metric, "bwt"))
    for metric in ["acc", *fid_keys]:
        _stat_columns(row, f"forgetting_{metric}", _summary(group, metric, "forgetting"))
    if baselines:
        for metric in ["acc", *fid_keys, *(["l1"] if with_l1 else [])]:
            _stat_columns(
                row,
                f"fwt_{metric}",
                (forward_transfer(run, baselines.get(_baseline_key(run)), metric) for run in group),
            )
    changes = [run.results.output_change() for run in group]
    row["output_change"] = max((c for c in changes if c is not None), default=None)
    for key in ("stored_params", "standalone_params", "stored_bytes"):
        if row[key] is not None and float(row[key]).is_integer():
            row[key] = int(row[key])
    return row


def _identity(group: list[Run], labels: dict[tuple, str], overrides: str) -> Row:
    run = group[0]
    return {
        "task_seq": labels[(run.task_seq, tuple(run.tasks))],
        "model": run.model,
        "method": run.method,
        "width": run.width,
        "ratio": run.ratio,
        "overrides": overrides or None,
    }


def methods_table(runs: Iterable[Run]) -> list[Row]:
    """One row per run configuration (task_seq, model, method, width, ratio, other overrides).

    Seeds are averaged: each averaged column ``X`` has ``X_std`` beside it (the sample standard
    deviation, None for one run), ``n`` counts the runs and ``seeds`` lists them. Acc, FID and
    L1 are final averages over the tasks; ``last_*`` the last task's value right after learning it
    (the ablations' figure); ``stored_share`` is stored parameters over T standalone
    models; ``new_task_share`` the mean parameters a later task stores over one standalone model;
    ``output_change`` the largest max-abs change of an old task's outputs; ``fwt_*`` the forward
    transfer (:func:`forward_transfer`), where the runs include ``full`` runs of the same sequence
    and seeds. Runs that did not learn every task are left out with a warning."""
    runs = _complete(runs, "methods table")
    groups = group_runs(runs)
    labels = _sequence_labels(runs)
    fid_keys, with_l1 = measured_fids(runs), _has_metric(runs, "l1")
    baselines = full_baselines(runs)
    return [
        {**_identity(group, labels, extra), **_group_row(group, fid_keys, with_l1, baselines)}
        for group, extra in zip(groups, _differing_overrides(groups))
    ]


#: what tells one series of the ratio table (and the sweep page's plots against ratio) from another
SERIES = ("task_seq", "model", "method", "width", "overrides")

# methods.csv's first columns: its header when no run has learned its whole sequence yet
METHOD_KEYS = ("task_seq", "model", "method", "width", "ratio", "overrides", "n", "seeds", "tasks")

EFFICIENCY_COLUMNS = (
    "task_seq",
    "model",
    "method",
    "width",
    "ratio",
    "overrides",
    "n",
    "seeds",
    "new_task_share",
    "new_task_bytes_share",
    "l1",
    "l1_std",
    "output_change",
    "front_params",
    "front_bytes",
    "front_l1_params",
    "front_l1_bytes",
)


def pareto_front(points: list[tuple[float, float]]) -> list[bool]:
    """Which (cost, loss) points no other point beats: another with cost and loss both no higher
    and one of them lower. Lower is better on both axes."""
    return [
        not any(other[0] <= point[0] and other[1] <= point[1] and other != point for other in points)
        for point in points
    ]


def efficiency_rows(methods: list[Row]) -> list[Row]:
    """Storage against quality, from rows of methods_table: per configuration its parameters and
    bytes per new task over one standalone (float32) model, final FID and L1 (seeds averaged), and
    whether it is on the Pareto front of FID against parameters (``front_params``) and against
    bytes (``front_bytes``), and of L1 against each (``front_l1_params``, ``front_l1_bytes``),
    among the configurations of its sequence and model. Configurations
    without a later task or without FID are left out."""
    fid_keys = [key for key in FID_KEYS if any(row.get(key) is not None for row in methods)]
    if not fid_keys:
        return []
    fid = fid_keys[0]
    columns = list(EFFICIENCY_COLUMNS)
    at = columns.index("l1")
    columns[at:at] = [fid, f"{fid}_std"]
    rows = [
        {column: row.get(column) for column in columns}
        for row in methods
        if row.get("new_task_share") is not None and row.get(fid) is not None
    ]
    series: dict[tuple, list[Row]] = {}
    for row in rows:
        series.setdefault((row["task_seq"], row["model"]), []).append(row)
    fronts = [
        ("new_task_share", fid, "front_params"),
        ("new_task_bytes_share", fid, "front_bytes"),
        ("new_task_share", "l1", "front_l1_params"),
        ("new_task_bytes_share", "l1", "front_l1_bytes"),
    ]
    for members in series.values():
        for cost, quality, flag in fronts:
            measured = [row for row in members if row.get(cost) is not None and row.get(quality) is not None]
            points = [(float(row[cost]), float(row[quality])) for row in measured]
            for row, front in zip(measured, pareto_front(points)):
                row[flag] = front
    return sorted(rows, key=lambda r: (r["task_seq"], r["model"] or "", r["new_task_share"]))


def ratio_table(runs: Iterable[Run]) -> list[Row]:
    """FID, Acc and stored parameters against ratio: the configurations that differ only in ratio.

    One row per (series, ratio), series being everything else of the configuration; a series
    with a single ratio is left out."""
    return ratio_rows(methods_table(runs))


def ratio_columns(methods: list[Row]) -> list[str]:
    """The ratio table's columns for these methods-table rows (FID first, then Acc, then storage)."""
    present = set(methods[0]) if methods else set(RATIO_COLUMNS)
    columns = [column for column in RATIO_COLUMNS if column in present]
    fid_columns = [column for key in FID_KEYS for column in (key, f"{key}_std") if column in present]
    at = columns.index("acc")
    return columns[:at] + fid_columns + columns[at:]


def ratio_rows(methods: list[Row]) -> list[Row]:
    """The ratio table from rows of methods_table."""
    series: dict[tuple, list[Row]] = {}
    for row in methods:
        key = tuple(row[name] for name in SERIES)
        series.setdefault(key, []).append(row)
    columns = ratio_columns(methods)
    table = []
    for members in series.values():
        if len({row["ratio"] for row in members}) < 2:
            continue
        for row in sorted(members, key=lambda r: (r["ratio"] is None, r["ratio"] or 0.0)):
            table.append({column: row.get(column) for column in columns})
    return table


def runs_table(runs: Iterable[Run]) -> list[Row]:
    """One row per run, nothing averaged, with the run's folder (``run``)."""
    runs = list(runs)
    labels = _sequence_labels(runs)
    fid_keys, with_l1 = measured_fids(runs), _has_metric(runs, "l1")
    rows = []
    for run in runs:
        row = {"run": run.name, **_identity([run], labels, " ".join(sorted(run.extra_overrides())))}
        row["seed"] = run.seed
        row["completed_tasks"] = run.completed_tasks
        averaged = _group_row([run], fid_keys, with_l1)
        row.update({k: v for k, v in averaged.items() if not k.endswith("_std") and k not in ("n", "seeds")})
        rows.append(row)
    return rows


def matrix_rows(runs: Iterable[Run]) -> list[Row]:
    """Every run's continual matrices, tidy: run, method, ratio, seed, metric, stage (0:
    untrained), stage_task, task, task_name, value; max_abs_change's after each run's metrics."""
    rows = []
    for run in runs:
        identity = {"run": run.name, "method": run.method, "ratio": run.ratio, "seed": run.seed}
        for cell in run.results.tidy_rows(by_metric=True, with_change=True):
            rows.append({**identity, "metric": cell.pop("metric"), **cell})
    return rows
