"""The report command and the results notebook, on a real tiny multirun (two ratios, two tasks)."""

from __future__ import annotations

import csv
import json
import logging
import shutil
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import yaml
from pbgan_testing import TINY

from pbgan.errors import PbganError
from pbgan.report import (
    load_runs,
    main,
    methods_table,
    ratio_table,
    to_markdown,
    write_report,
)
from pbgan.results import ContinualResults, continual_summary, csv_text

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOK = ROOT / "notebooks" / "results.ipynb"
TASKS = ["labels2street", "map2aerial"]
# TINY with one batch per task and two of the four tasks: a two-job sweep over ratio.
SWEEP = [o for o in TINY if not o.startswith("data.train_size=")] + [
    "data.train_size=4",
    "~task_seq.tasks.seg2facade",
    "~task_seq.tasks.edges2bag",
    "ratio=0,1",
]


@pytest.fixture(scope="module")
def multirun(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``python -m pbgan.run -m ratio=0,1`` for real: two jobs under one sweep directory."""
    sweep = tmp_path_factory.mktemp("multirun") / "synth_paired4" / "2026-01-01_00-00-00"
    command = [
        sys.executable,
        "-m",
        "pbgan.run",
        "-m",
        *SWEEP,
        f"hydra.sweep.dir={sweep}",
    ]
    done = subprocess.run(command, cwd=sweep.parent.parent, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert len(job_dirs(sweep)) == 2
    return sweep


class _Messages(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


@contextmanager
def report_warnings() -> Iterator[list[str]]:
    """The warnings of the ``pbgan.report`` logger (skipped runs), whether or not a command set up
    pbgan's logging in this process."""
    handler = _Messages()
    logger = logging.getLogger("pbgan.report")
    logger.addHandler(handler)
    try:
        yield handler.messages
    finally:
        logger.removeHandler(handler)


@pytest.fixture
def pbgan_logging() -> Iterator[None]:
    """Put the ``pbgan`` logger back as it was after a test that runs a command's main in-process
    (its handler writes to the captured stderr of that test only)."""
    logger = logging.getLogger("pbgan")
    handlers, level, propagate = list(logger.handlers), logger.level, logger.propagate
    yield
    logger.handlers[:] = handlers
    logger.setLevel(level)
    logger.propagate = propagate


def job_dirs(sweep: Path) -> list[Path]:
    """The sweep's job folders (``<num>_...``), in job order."""
    jobs = [p for p in sweep.iterdir() if p.is_dir() and p.name.split("_")[0].isdigit()]
    return sorted(jobs, key=lambda p: int(p.name.split("_")[0]))


def results_of(directory: Path) -> dict[float, dict]:
    """results.json of every job, by ratio."""
    found = [json.loads(p.read_text()) for p in directory.rglob("results.json")]
    return {results["ratio"]: results for results in found}


def clone_run(
    source: Path,
    target: Path,
    results: dict | None = None,
    method_cfg: dict | None = None,
    drop: tuple[str, ...] = (),
) -> Path:
    """A copy of a run folder with results.json fields (and the config's method) replaced."""
    shutil.copytree(source, target)
    data = json.loads((target / "results.json").read_text())
    data.update(results or {})
    for key in drop:
        data.pop(key, None)
    (target / "results.json").write_text(json.dumps(data))
    if method_cfg is not None:
        config_file = target / ".hydra" / "config.yaml"
        config = yaml.safe_load(config_file.read_text())
        config["method"] = method_cfg
        config_file.write_text(yaml.safe_dump(config))
    return target


def test_runs_are_read_with_their_overrides_and_config(multirun: Path) -> None:
    runs = load_runs(multirun)
    assert [run.name for run in runs] == [job.name for job in job_dirs(multirun)]
    assert [run.ratio for run in runs] == [0.0, 1.0]
    first = runs[0]
    assert "ratio=0" in first.overrides and "data.train_size=4" in first.overrides
    assert (first.task_seq, first.model, first.method, first.seed) == (
        "synth_paired4",
        "pix2pix",
        "piggyback",
        0,
    )
    assert first.tasks == TASKS and first.complete and first.width in (None, 1.0)
    assert first.fid_key == "fid_domain"
    assert [png.name for png in first.sample_grids()] == ["task1_labels2street.png", "task2_map2aerial.png"]
    assert [png.name for png in first.sample_grids(stage=1)] == ["task1_labels2street.png"]
    assert first.results.output_change() == 0.0  # piggyback keeps task 1's outputs exactly


def test_results_json_and_csv_have_one_reader_and_writer(multirun: Path, tmp_path: Path) -> None:
    """ContinualResults reads what the runner wrote back to the same results.json and results.csv."""
    for job in job_dirs(multirun):
        written = json.loads((job / "results.json").read_text())
        results = ContinualResults.load(job / "results.json")
        assert results.to_dict() == written
        assert csv_text(results.tidy_rows()) == (job / "results.csv").read_text()
    broken = tmp_path / "results.json"
    for text, reason in (
        ("{not json", "not a readable results.json"),
        ("[]", "a JSON object is expected"),
        (
            json.dumps({k: v for k, v in written.items() if k not in ("matrix", "seed")}),
            "missing matrix, seed",
        ),
    ):
        broken.write_text(text)
        with pytest.raises(PbganError, match=reason) as error:
            ContinualResults.load(broken)
        assert str(error.value).startswith(f"{broken}: ")


def test_methods_table_has_a_row_per_ratio_with_results_json_values(multirun: Path) -> None:
    rows = methods_table(load_runs(multirun))
    truth = results_of(multirun)
    assert [row["ratio"] for row in rows] == [0.0, 1.0]
    for column in (
        "method",
        "width",
        "task_seq",
        "n",
        "seeds",
        "acc",
        "fid_domain",
        "stored_params",
        "stored_share",
        "bwt_acc",
        "bwt_fid_domain",
        "forgetting_acc",
        "forgetting_fid_domain",
    ):
        assert column in rows[0], column
    assert "fid_inception" not in rows[0]  # no run measured it: no empty column for it
    for row in rows:
        results = truth[row["ratio"]]
        assert (row["method"], row["task_seq"], row["n"], row["seeds"]) == (
            "piggyback",
            "synth_paired4",
            1,
            "0",
        )
        assert row["stored_share"] == results["params"]["stored_share"]
        assert row["stored_params"] == results["params"]["stored_total"]
        assert row["acc"] == results["summary"]["acc"]["final_average"]
        assert row["fid_domain"] == results["summary"]["fid_domain"]["final_average"]
        assert row["bwt_fid_domain"] == results["summary"]["fid_domain"]["bwt"]
        assert row["acc_std"] is None  # one seed: no spread
        assert row["overrides"] is None  # every other override is common to both jobs
    assert rows[0]["stored_share"] < rows[1]["stored_share"] == 1.0  # ratio 1: every task all-new filters

    ratios = ratio_table(load_runs(multirun))
    assert [row["ratio"] for row in ratios] == [0.0, 1.0]
    assert list(ratios[0])[:9] == [
        "task_seq",
        "model",
        "method",
        "width",
        "overrides",
        "ratio",
        "n",
        "seeds",
    ] + ["fid_domain"]
    assert [row["stored_params"] for row in ratios] == [row["stored_params"] for row in rows]


def test_cli_quiet_prints_the_report_and_nothing_else(multirun: Path, tmp_path: Path, capsys) -> None:
    from pbgan.report.cli import main

    logger = logging.getLogger("pbgan")
    level = logger.level
    try:
        assert main([str(multirun), "--out", str(tmp_path / "quiet"), "-q"]) == 0
    finally:
        logger.setLevel(level)  # setup_logging's level is global: leave it as other tests found it
    captured = capsys.readouterr()
    assert captured.out.strip() == (tmp_path / "quiet" / "report.md").read_text().strip()
    assert captured.err == ""


def test_cli_prints_and_writes_the_markdown_and_csv_tables(multirun: Path, tmp_path: Path) -> None:
    copy = shutil.copytree(multirun, tmp_path / "sweep")
    done = subprocess.run(
        [sys.executable, "-m", "pbgan.report", str(copy)], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert "report written to" in done.stderr and "report written to" not in done.stdout
    out = copy / "report"  # the default OUTDIR
    assert sorted(p.name for p in out.iterdir()) == [
        "efficiency.csv",
        "matrices.csv",
        "methods.csv",
        "ratio.csv",
        "report.html",
        "report.md",
        "runs.csv",
    ]
    names = [job.name for job in job_dirs(copy)]
    markdown = (out / "report.md").read_text()
    assert markdown in done.stdout
    for heading in ("## Methods", "## Against ratio", "## Continual matrices", *(f"### {n}:" for n in names)):
        assert heading in markdown
    assert "| task_seq | model | method | ratio | n | seeds |" in markdown
    assert "| 2: map2aerial | " in markdown  # a matrix row: after learning task 2
    truth = results_of(copy)
    with open(out / "methods.csv", newline="") as handle:
        methods = list(csv.DictReader(handle))
    assert [float(row["ratio"]) for row in methods] == [0.0, 1.0]
    for row in methods:
        assert float(row["stored_share"]) == truth[float(row["ratio"])]["params"]["stored_share"]
    with open(out / "ratio.csv", newline="") as handle:
        assert len(list(csv.DictReader(handle))) == 2
    with open(out / "runs.csv", newline="") as handle:
        assert [row["run"] for row in csv.DictReader(handle)] == names
    with open(out / "matrices.csv", newline="") as handle:
        cells = list(csv.DictReader(handle))
    acc = [row for row in cells if row["run"] == names[0] and row["metric"] == "acc" and row["stage"] != "0"]
    assert len(acc) == 3  # the lower triangle of a 2 x 2 matrix

    # Running it again (the report folder now lies inside DIR) reads the same two runs.
    again = write_report(copy, tmp_path / "elsewhere")
    assert len(again.runs) == 2 and (tmp_path / "elsewhere" / "report.md").read_text() == again.markdown


def test_cli_errors_on_a_missing_or_empty_directory(
    tmp_path: Path, capsys: pytest.CaptureFixture, pbgan_logging: None
) -> None:
    assert main([str(tmp_path)]) == 2
    error = capsys.readouterr().err
    assert error.startswith("error: ") and str(tmp_path) in error and "no results.json" in error
    done = subprocess.run(
        [sys.executable, "-m", "pbgan.report", str(tmp_path / "nowhere")], capture_output=True, text=True
    )
    assert done.returncode == 2
    assert done.stderr.startswith("error: ") and "nowhere: no such directory" in done.stderr
    assert "Traceback" not in done.stderr
    (tmp_path / "results.json").write_text("{not json")
    with report_warnings() as warned, pytest.raises(PbganError, match="none of"):
        load_runs(tmp_path)
    assert len(warned) == 1 and f"skipping {tmp_path / 'results.json'}: " in warned[0]
    # The command says so on stderr before the error.
    capsys.readouterr()
    assert main([str(tmp_path)]) == 2
    lines = capsys.readouterr().err.splitlines()
    assert lines[0].startswith(f"warning: skipping {tmp_path / 'results.json'}: not a readable results.json")
    assert lines[1].startswith("error: ") and "none of its results.json files could be read" in lines[1]


def test_seeds_are_averaged_and_fid_kinds_and_widths_kept_apart(multirun: Path, tmp_path: Path) -> None:
    sweep = tmp_path / "sweep"
    base = job_dirs(multirun)[0]  # ratio 0
    original = json.loads((base / "results.json").read_text())
    clone_run(base, sweep / "0_ratio0")
    # Another seed whose final Acc (the mean of the matrix's last row) is 0.5 higher.
    matrix = json.loads(json.dumps(original["matrix"]))
    matrix["acc"][-1] = [None if v is None else v + 0.5 for v in matrix["acc"][-1]]
    summary = {**original["summary"], "acc": continual_summary(matrix["acc"], len(TASKS), True)}
    clone_run(base, sweep / "2_seed=1", {"seed": 1, "matrix": matrix, "summary": summary})
    # The same run measured with Inception FID: a configuration of its own, its own column.
    inception = {
        key: {("fid_inception" if k == "fid_domain" else k): v for k, v in original[key].items()}
        for key in ("matrix", "summary", "untrained", "higher_is_better")
    }
    clone_run(base, sweep / "3_inception", inception)
    # Narrower full models: the width from results.json, else from the config's method group.
    clone_run(base, sweep / "4_full", {"method": "full"}, {"name": "full", "width": 0.5}, drop=("width",))
    clone_run(base, sweep / "7_full", {"method": "full", "width": 0.25, "seed": 3})
    # Stopped after task 1: results.json as the runner wrote it then.
    learned = ContinualResults.from_dict(json.loads(json.dumps(original)))
    for values in [
        learned.per_task_params,
        learned.per_task_bytes,
        learned.task_seconds,
        *learned.bank_sizes.values(),
    ]:
        del values[1:]
    for cells in [*learned.matrix.values(), learned.max_abs_change]:
        cells[1] = [None] * len(TASKS)
    learned.seed = 7
    partial = clone_run(base, sweep / "5_partial", learned.to_dict())
    (sweep / "6_broken").mkdir()
    (sweep / "6_broken" / "results.json").write_text('{"tasks": []')

    with report_warnings() as messages:
        runs = load_runs(sweep)
        rows = methods_table(runs)
    assert any("6_broken" in m and "results.json" in m for m in messages)  # named, then skipped
    assert any(str(partial) in m and "1 of 2 tasks" in m for m in messages)  # left out of the tables
    assert len(runs) == 6

    width = original.get("width")
    assert [(row["method"], row["width"]) for row in rows] == [("piggyback", width)] * 2 + [
        ("full", 0.5),
        ("full", 0.25),
    ]
    averaged, measured_apart = rows[0], rows[1]
    assert (averaged["n"], averaged["seeds"]) == (2, "0,1")
    first = original["summary"]["acc"]["final_average"]
    assert averaged["acc"] == pytest.approx(first + 0.25)
    assert averaged["acc_std"] == pytest.approx(0.5 / 2**0.5)  # sample stdev of (a, a + 0.5)
    assert averaged["fid_inception"] is None and averaged["fid_domain"] is not None
    assert measured_apart["fid_domain"] is None
    assert measured_apart["fid_inception"] == original["summary"]["fid_domain"]["final_average"]
    markdown = to_markdown(rows)
    assert "FID (domain) ↓" in markdown and "FID (Inception) ↓" in markdown
    assert f"{averaged['acc']:.4g} ± {averaged['acc_std']:.2g}" in markdown
    assert "| width |" in markdown and "| 0.5 |" in markdown
    with report_warnings() as messages:
        assert ratio_table(runs) == []  # nothing here differs only in ratio
    assert any("5_partial" in m for m in messages)


def test_notebook_is_committed_without_outputs() -> None:
    import nbformat

    notebook = nbformat.read(NOTEBOOK, as_version=4)
    nbformat.validate(notebook)
    code = [cell for cell in notebook.cells if cell.cell_type == "code"]
    assert code and all(cell.outputs == [] and cell.execution_count is None for cell in code)
    assert "PBGAN_RUN_DIR" in code[0].source and "RUN_DIR =" in code[0].source


def test_notebook_runs_on_the_multirun(multirun: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import nbclient  # the dev extra: nbformat, nbclient, ipykernel, matplotlib
    import nbformat

    monkeypatch.setenv("PBGAN_RUN_DIR", str(multirun))
    monkeypatch.setenv("MPLBACKEND", "module://matplotlib_inline.backend_inline")
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    client = nbclient.NotebookClient(
        notebook,
        timeout=120,
        kernel_name="python3",
        resources={"metadata": {"path": str(NOTEBOOK.parent)}},
    )
    client.execute()  # raises CellExecutionError, with the cell and traceback, if a cell fails
    outputs = [output for cell in notebook.cells if cell.cell_type == "code" for output in cell.outputs]
    assert not [output for output in outputs if output.output_type == "error"]
    images = [output for output in outputs if "image/png" in output.get("data", {})]
    # ratio plot, FID against parameters, task 1 across stages, a heatmap and a sample figure for
    # each of the two runs
    # (and the storage-against-quality figure: two ratios are two configurations)
    assert len(images) == 1 + 1 + 1 + 1 + 2 + 2
    text = "".join(output.get("text", "") for output in outputs)
    assert f"2 runs under {multirun.resolve()}" in text


def test_forward_transfer_is_each_new_task_right_after_learning_it_minus_full(
    multirun: Path, tmp_path: Path
) -> None:
    """With a ``full`` run of the same sequence and seed in the folder, every row gets ``fwt_*``:
    the mean over tasks 2..T of the diagonal minus full's diagonal."""
    folder = tmp_path / "sweep"
    shutil.copytree(multirun, folder)
    jobs = job_dirs(folder)
    baseline_file = jobs[1] / "results.json"
    baseline = json.loads(baseline_file.read_text())
    baseline["method"], baseline["ratio"] = "full", None
    baseline_file.write_text(json.dumps(baseline))
    mine = json.loads((jobs[0] / "results.json").read_text())
    rows = {row["method"]: row for row in methods_table(load_runs(folder))}
    assert set(rows) == {"piggyback", "full"}
    for metric in ("l1", "acc", "fid_domain"):
        expected = mine["matrix"][metric][1][1] - baseline["matrix"][metric][1][1]
        assert rows["piggyback"][f"fwt_{metric}"] == pytest.approx(expected)
        assert rows["full"][f"fwt_{metric}"] == 0.0
    write_report(folder)
    assert "FWT L1 vs full" in (folder / "report" / "report.md").read_text()


def test_without_a_full_run_there_is_no_forward_transfer(multirun: Path) -> None:
    rows = methods_table(load_runs(multirun))
    assert all(row.get("fwt_l1") is None for row in rows)


def test_pareto_front_keeps_the_points_nothing_beats() -> None:
    from pbgan.report.tables import pareto_front

    points = [(1.0, 5.0), (2.0, 4.0), (3.0, 6.0), (0.5, 10.0), (2.0, 4.0)]
    # (3, 6) is beaten by (1, 5) and (2, 4); a tie is not a defeat.
    assert pareto_front(points) == [True, True, False, True, True]


def test_storage_against_quality_is_a_table_and_a_csv(multirun: Path, tmp_path: Path) -> None:
    from pbgan.report import efficiency_rows

    runs = load_runs(multirun)
    rows = efficiency_rows(methods_table(runs))
    by_ratio = {row["ratio"]: row for row in rows}
    assert set(by_ratio) == {0.0, 1.0}
    for ratio, row in by_ratio.items():
        results = next(run.results for run in runs if run.ratio == ratio)
        assert row["new_task_share"] == pytest.approx(results.new_task_share())
        per_task, standalone = results.per_task_bytes, results.params()["standalone_bytes_total"]
        assert row["new_task_bytes_share"] == pytest.approx(per_task[1] / (standalone / 2))
        assert row["fid_domain"] == pytest.approx(results.metric_summary("fid_domain")["final_average"])
    cheap, dear = by_ratio[0.0], by_ratio[1.0]
    assert cheap["front_params"] is True  # nothing stores less
    assert dear["front_params"] is (dear["fid_domain"] < cheap["fid_domain"])
    assert cheap["front_l1_params"] is True
    assert dear["front_l1_params"] is (dear["l1"] < cheap["l1"])
    report = write_report(multirun, tmp_path / "report")
    assert "## Storage against quality" in report.markdown
    with open(report.files["efficiency.csv"], newline="") as handle:
        assert len(list(csv.DictReader(handle))) == 2


def test_a_run_page_that_cannot_be_written_is_a_warning_not_the_end_of_the_report(
    multirun: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """Runs that ended before pages existed get theirs written by the report; a full disk there
    leaves the run unlinked with a warning, and the sweep's report is still written."""
    from pbgan.report.render import write_report

    copy = shutil.copytree(multirun, tmp_path / "sweep")
    for page in copy.rglob("report.html"):
        page.unlink()
    import pbgan.faults

    monkeypatch.setattr(pbgan.faults, "_reached", {})
    monkeypatch.setenv("PBGAN_FAULT", "write:report.html@1:enospc")  # the first run's page
    report = write_report(copy)
    assert "cannot write its report.html" in caplog.text
    assert report.files["report.html"].is_file() and report.files["report.md"].is_file()


def test_a_sweep_looked_at_while_every_run_trains_gets_its_report(multirun: Path, tmp_path: Path) -> None:
    """A run that has learned only part of its sequence is left out of the methods table; with
    only such runs the sweep page crashed (IndexError) after writing the tables."""
    source = job_dirs(multirun)[0]
    data = json.loads((source / "results.json").read_text())
    done = 1
    stages = len(data["tasks"])
    for matrix in data["matrix"].values():
        for stage in range(done, stages):
            matrix[stage] = [None] * stages
    changes = data["forgetting"]["max_abs_change"]
    data["forgetting"]["max_abs_change"] = [r if i < done else [None] * stages for i, r in enumerate(changes)]
    for key in ("per_task", "per_task_bytes"):
        data["params"][key] = data["params"][key][:done]
    data.update(completed_tasks=done, task_seconds=data["task_seconds"][:done])
    data["storage"] = data["storage"][:done]
    clone_run(source, tmp_path / "sweep" / "0_training", results=data)
    with report_warnings() as messages:
        report = write_report(tmp_path / "sweep")
    assert any(f"learned {done} of {stages} tasks" in message for message in messages)
    page = report.files["report.html"].read_text()
    assert "No run has learned every task of its sequence yet." in page
    for name in ("methods.csv", "ratio.csv", "efficiency.csv"):  # tables without rows, not empty files
        header = report.files[name].read_text().splitlines()
        assert len(header) == 1 and header[0].startswith("task_seq,model,method"), (name, header)


def test_a_job_that_wrote_no_results_is_named_not_dropped_silently(multirun: Path, tmp_path: Path) -> None:
    """A job of a sweep that failed (or is still on its first task) has no results.json: the
    report said "2 runs" for three jobs without a word about the third."""
    sweep = tmp_path / "sweep"
    shutil.copytree(multirun, sweep)
    failed = sweep / "2_failed"
    (failed / ".hydra").mkdir(parents=True)
    (failed / ".hydra" / "config.yaml").write_text("seed: 0\n")
    with report_warnings() as messages:
        write_report(sweep)
    assert [m for m in messages if m.startswith(f"skipping {failed}: a run folder without results.json")]
