"""Test helpers: the real configs composed with Hydra's compose API at tiny sizes.

Named uniquely because some installed packages ship a top-level ``tests`` package."""

from __future__ import annotations

import atexit
import json
import os
import shutil
import struct
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from hydra import compose, initialize_config_dir
from omegaconf import DictConfig

# Trained domain classifiers go to a private cache, never the user's ~/.cache/pbgan; removed
# when the test session ends.
if "PBGAN_CACHE_DIR" not in os.environ:
    os.environ["PBGAN_CACHE_DIR"] = tempfile.mkdtemp(prefix="pbgan-test-cache-")
    atexit.register(shutil.rmtree, os.environ["PBGAN_CACHE_DIR"], ignore_errors=True)

ROOT = Path(__file__).resolve().parent.parent
CONF_DIR = str(ROOT / "conf")

# Small enough for 2 CPU cores: 32x32 images, 4-wide networks, a few batches per task.
TINY = [
    "data.image_size=32",
    "data.train_size=8",
    "data.val_size=4",
    "data.batch_size=4",
    "model.generator.ngf=4",
    "model.discriminator.ndf=4",
    "eval.num_images=4",
    "metrics.classifier.train_images=8",
    "metrics.classifier.epochs=1",
    "eval.probe_images=4",
    "eval.sample_images=2",
    "trainer.max_epochs=1",
    "trainer.accelerator=cpu",
    "trainer.enable_progress_bar=false",
    "logger=none",
    "report_html=false",  # the page's figures take ~2 s a run; tests/test_html.py checks it
]


def compose_config(overrides: list[str] | None = None, tiny: bool = True) -> DictConfig:
    """The project's config as ``python -m pbgan.run`` would compose it; ``overrides`` win over TINY."""
    overrides = list(overrides or [])
    given = {option.split("=")[0] for option in overrides}
    base = [option for option in TINY if option.split("=")[0] not in given] if tiny else []
    with initialize_config_dir(config_dir=CONF_DIR, version_base="1.3"):
        return compose(config_name="config", overrides=base + overrides)


def run_pbgan(
    *args: str, env: dict[str, str] | None = None, timeout: int = 900
) -> subprocess.CompletedProcess:
    """``python -m pbgan.run ARGS`` from the project's root, its output captured.

    The run starts its own W&B service, as a command typed in a shell does: an earlier test that
    ran W&B in the test process leaves ``WANDB_SERVICE`` set, and a run killed while connected to
    that shared service would keep its run id "in use" for the run resuming it."""
    environment = dict(os.environ if env is None else env)
    environment.pop("WANDB_SERVICE", None)
    return subprocess.run(
        [sys.executable, "-m", "pbgan.run", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=environment,
    )


def wandb_records(run_file: Path) -> list[tuple[str, Any]]:
    """(record type, record) pairs of an offline W&B run file (``run-<id>.wandb``).

    The file is a LevelDB-style log: 32 KiB blocks of records, each with a 7-byte header
    (crc32, length, type: 1 full, 2 first, 3 middle, 4 last) holding a protobuf ``Record``.
    """
    from wandb.proto import wandb_internal_pb2

    raw = run_file.read_bytes()
    block, offset, pending, records = 32768, 7, b"", []
    while offset + 7 <= len(raw):
        if block - offset % block < 7:
            offset += block - offset % block
            continue
        _, length, kind = struct.unpack("<IHB", raw[offset : offset + 7])
        data = raw[offset + 7 : offset + 7 + length]
        offset += 7 + length
        if kind == 0 and length == 0:
            break
        pending = data if kind in (1, 2) else pending + data
        if kind in (1, 4):
            record = wandb_internal_pb2.Record()
            record.ParseFromString(pending)
            records.append((record.WhichOneof("record_type"), record))
    return records


def wandb_history(run_file: Path) -> list[dict[str, Any]]:
    """The logged rows of an offline W&B run, values decoded from JSON."""
    rows = []
    for kind, record in wandb_records(run_file):
        if kind == "history":
            rows.append(
                {
                    item.key or "/".join(item.nested_key): json.loads(item.value_json)
                    for item in record.history.item
                }
            )
    return rows
