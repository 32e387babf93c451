"""Entry point: ``python -m pbgan.run task_seq=synth_paired4 ratio=0.25`` (Hydra).

Outputs go to Hydra's run directory (``outputs/<task_seq>/<time>/``, or one folder per job
under ``multirun/`` with ``-m``).
"""

from __future__ import annotations

import logging
import sys
import warnings
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig

from pbgan.errors import PbganError
from pbgan.sequence import run_sequence

CONFIG_DIR = str(Path(__file__).resolve().parent.parent / "conf")


class _DropAdverts(logging.Filter):
    """Lightning repeats an advert for its cloud logger at every Trainer; once per task is noise."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "Tip: For seamless cloud logging" not in record.getMessage()


@hydra.main(version_base="1.3", config_path=CONFIG_DIR, config_name="config")
def main(cfg: DictConfig) -> float | None:
    """Learn the configured task sequence; returns the final mean of the first metric for sweepers."""
    logging.getLogger("pytorch_lightning.utilities.rank_zero").addFilter(_DropAdverts())
    warnings.filterwarnings("ignore", message=".*LeafSpec.*")  # Lightning's own, about torch internals
    try:
        results = run_sequence(cfg, HydraConfig.get().runtime.output_dir)
    except PbganError as error:
        print(f"error: {error}", file=sys.stderr, flush=True)
        sys.exit(2)
    for values in results["matrix"].values():
        final = [value for value in values[-1] if value is not None]
        return sum(final) / len(final) if final else None
    return None


if __name__ == "__main__":
    main()
