"""The run's and the sweep's report.html: one offline page, checked with an HTML parser (and in
headless Chromium where it is installed or can be: the slow test)."""

from __future__ import annotations

import base64
import io
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import pytest
from pbgan_testing import compose_config
from PIL import Image

from pbgan.report import methods_table, ratio_rows, write_report
from pbgan.report.html import MIN_TILE, PAGE, sweep_page_html
from pbgan.report.loading import load_run
from pbgan.results import RESULTS_FILE
from pbgan.sequence import run_sequence

THREE = ["~task_seq.tasks.edges2bag", "trainer.max_epochs=1", "report_html=true"]


class Page(HTMLParser):
    """What a page holds: its images (src, alt), links, headings, table cells and any reference to
    something outside the file."""

    def __init__(self) -> None:
        super().__init__()
        self.images: list[dict[str, str]] = []
        self.links: list[str] = []
        self.headings: list[str] = []
        self.cells: list[str] = []
        self.external: list[str] = []
        self._heading = False
        self._cell = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {key: value or "" for key, value in attrs}
        if tag == "img":
            self.images.append(values)
        if tag == "a":
            self.links.append(values.get("href", ""))
        if tag in ("script", "link", "iframe"):
            self.external.append(tag)
        for key in ("src", "href"):
            if values.get(key, "").startswith(("http:", "https:", "//")):
                self.external.append(values[key])
        self._heading = tag in ("h1", "h2", "h3")
        self._cell = tag == "td"

    def handle_endtag(self, tag: str) -> None:
        self._heading = self._cell = False

    def handle_data(self, data: str) -> None:
        if self._heading:
            self.headings.append(data.strip())
        if self._cell:
            self.cells.append(data.strip())


def parse(path: Path) -> Page:
    page = Page()
    page.feed(path.read_text(encoding="utf-8"))
    return page


def decoded(image: dict[str, str]) -> Image.Image:
    prefix = "data:image/png;base64,"
    assert image["src"].startswith(prefix), image["src"][:40]
    return Image.open(io.BytesIO(base64.b64decode(image["src"][len(prefix) :])))


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("run")
    run_sequence(compose_config(THREE), folder)
    return folder


def test_a_run_page_has_every_part_offline(run_dir: Path) -> None:
    page_path = run_dir / PAGE
    assert page_path.is_file()
    page = parse(page_path)
    assert not page.external  # nothing fetched: no scripts, stylesheets or remote images
    for heading in (
        "Summary",
        "Continual matrices",
        "Storage and time per task",
        "Samples after each task",
        "Config",
    ):
        assert heading in page.headings
    alts = [image["alt"] for image in page.images]
    # one heatmap per metric and the forgetting audit, the bars, one grid per task per stage (1+2+3)
    for metric in ("acc", "fid_domain", "l1", "psnr", "ssim", "max_abs_change"):
        assert f"{metric} heatmap" in alts
    assert "stored parameters per task" in alts
    grids = [image for image in page.images if image["alt"].startswith("after task")]
    assert len(grids) == 6
    assert "after task 3 (seg2facade): task 1 labels2street" in alts
    for image in page.images:
        picture = decoded(image)
        assert picture.width > 50 and picture.height > 50
    # 32-pixel tiles shown at >= 128: every grid enlarged 4x, nearest neighbour
    original = Image.open(run_dir / "samples" / "after1_labels2street" / "task1_labels2street.png")
    first = decoded(grids[0])
    assert first.size == (original.width * 4, original.height * 4)
    tile = (first.width - 4 * 2 * 4) // 3
    assert tile >= MIN_TILE
    # the summary table and the per-task table show the run's numbers
    assert "fid_domain" in page.cells and "1: labels2street" in page.cells


def test_the_sweep_page_links_every_run(run_dir: Path, tmp_path: Path) -> None:
    sweep = tmp_path / "sweep"
    shutil.copytree(run_dir, sweep / "0_a")
    (sweep / "0_a" / PAGE).unlink()  # made again by the report
    report = write_report(sweep)
    assert (sweep / "0_a" / PAGE).is_file()
    page = parse(report.files[PAGE])
    assert not page.external
    assert "Methods" in page.headings and "Runs" in page.headings
    assert page.links == ["../0_a/report.html"]
    assert (report.files[PAGE].parent / page.links[0]).resolve() == (sweep / "0_a" / PAGE).resolve()


def chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(name)
        if found:
            return found
    installer = Path(__file__).resolve().parent / "install_chromium.sh"
    subprocess.run(["bash", str(installer)], capture_output=True, timeout=900)
    return shutil.which("chromium")


@pytest.mark.slow
def test_the_run_page_loads_in_headless_chromium(run_dir: Path, tmp_path: Path) -> None:
    """Chromium opens the page from the file system with no failed request, and its images have
    been decoded (their natural width is known to the page's own DOM)."""
    browser = chromium()
    if browser is None:
        pytest.fail("chromium is not installed and tests/install_chromium.sh could not install it")
    page = (run_dir / PAGE).resolve().as_uri()
    done = subprocess.run(
        [
            browser,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--enable-logging=stderr",
            "--v=0",
            "--virtual-time-budget=5000",
            "--dump-dom",
            page,
        ],
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    dom = done.stdout
    assert "Continual matrices" in dom and dom.count("<img") == parse(run_dir / PAGE).images.__len__()
    failures = [line for line in done.stderr.splitlines() if "net::ERR" in line or "Failed to load" in line]
    assert not failures, failures
    shot = tmp_path / "page.png"
    subprocess.run(
        [browser, "--headless", "--no-sandbox", "--disable-gpu", f"--screenshot={shot}",
         "--window-size=1280,2400", page],
        capture_output=True,
        timeout=180,
    )  # fmt: skip
    picture = Image.open(shot).convert("RGB")
    # not a blank page: the heatmaps and grids put many colours on it
    assert len(set(picture.resize((160, 300)).getdata())) > 200


def test_a_study_page_plots_each_configuration_against_ratio(run_dir: Path, tmp_path: Path) -> None:
    # Optuna trials move the ratio with other settings: no series differs in ratio alone, yet the
    # page still shows FID against ratio, as unjoined points
    run = load_run(run_dir / RESULTS_FILE)
    (row,) = methods_table([run])
    assert row.get("fid_domain") is not None
    rows = [
        dict(row, ratio=r, overrides=f"model.optim.piggyback_lr_scale={i}") for i, r in ((2, 0.2), (8, 0.6))
    ]
    assert ratio_rows(rows) == []
    page = sweep_page_html([run], rows, [], [], "study", tmp_path)
    assert "<h2>FID against ratio (each configuration: other settings vary)</h2>" in page
    assert "<h2>FID against ratio" not in sweep_page_html([run], rows[:1], [], [], "one", tmp_path)
