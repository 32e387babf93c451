"""The benchmark command runs and reports every figure it promises (no timing assertions)."""

from __future__ import annotations

import json
from pathlib import Path

from pbgan.bench import main


def test_bench_writes_all_figures(tmp_path: Path, capsys) -> None:
    out = tmp_path / "bench.json"
    assert (
        main(
            ["--scale", "tiny", "--arch", "both", "--repeats", "1", "--warmup", "0", "--out", str(out)]
            + ["--switches", "channels_last,bf16"]
        )
        == 0
    )
    results = json.loads(out.read_text())
    assert [r["arch"] for r in results] == ["unet", "resnet"]
    for result in results:
        assert set(result["rows"]) == {"full", "piggyback_task2", "piggyback_task4"}
        assert set(result["ratios"]) == {"train_task2_vs_full", "train_task4_vs_full", "inference_vs_full"}
        assert 0 < result["stored"]["share"] < 1
        assert result["switches"]["channels_last"]["vs_off"] > 0
        if result["device"] == "cpu":
            assert result["switches_skipped"] == ["bf16"]
    printed = capsys.readouterr().out
    assert "stored after 4 tasks" in printed
    assert "piggyback_task2 + channels_last" in printed
