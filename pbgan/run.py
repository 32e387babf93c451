"""Entry point: ``python -m pbgan.run task_seq=synth_paired4 ratio=0.25`` (Hydra).

Outputs go to Hydra's run directory (``outputs/<task_seq>/<time>/``, or one folder per job
under ``multirun/`` with ``-m``).
"""

from __future__ import annotations

import logging
import warnings
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf

from pbgan.cli import exits_on_user_error
from pbgan.config import check_objective_directions, objective_names
from pbgan.errors import PbganError
from pbgan.results import ContinualResults, objective_value
from pbgan.sequence import run_sequence

CONFIG_DIR = str(Path(__file__).resolve().parent.parent / "conf")


class _DropAdverts(logging.Filter):
    """Lightning repeats an advert for its cloud logger at every Trainer; once per task is noise."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "Tip: For seamless cloud logging" not in record.getMessage()


def run_dir(resume: str | None, default: str) -> str:
    """Hydra's run folder: the run being resumed (``resume=R``), else a new timestamped one."""
    return str(Path(str(resume)).expanduser()) if resume else default


# Registered at import, before Hydra resolves hydra.run.dir (conf/config.yaml uses it).
if not OmegaConf.has_resolver("pbgan_run_dir"):
    OmegaConf.register_new_resolver("pbgan_run_dir", run_dir)


def check_launcher(cfg: DictConfig) -> None:
    """DDP in a sweep needs a launcher that starts one process per device: Lightning would
    otherwise start its extra ranks as copies of the whole sweep."""
    hydra_cfg = HydraConfig.get()
    strategy = str(cfg.trainer.get("strategy", "")).lower()
    launcher = str(hydra_cfg.launcher.get("_target_", ""))
    if hydra_cfg.mode == RunMode.MULTIRUN and "ddp" in strategy and "submitit" not in launcher.lower():
        raise PbganError(
            "trainer=ddp in a multirun (-m) needs a launcher that starts one process per device, such as "
            "hydra/launcher=slurm with tasks_per_node = trainer.devices; with the basic launcher, run the "
            "sweep's jobs one by one without -m"
        )


@hydra.main(version_base="1.3", config_path=CONFIG_DIR, config_name="config")
@exits_on_user_error
def main(cfg: DictConfig) -> float | list[float] | None:
    """Learn the configured task sequence; returns ``objective`` for sweepers (Optuna): one value,
    or a list when ``objective`` is a list (a multi-objective study)."""
    logging.getLogger("pytorch_lightning.utilities.rank_zero").addFilter(_DropAdverts())
    warnings.filterwarnings("ignore", message=".*LeafSpec.*")  # Lightning's own, about torch internals
    check_launcher(cfg)
    if HydraConfig.get().mode == RunMode.MULTIRUN:  # a study (-m): its sweeper's direction
        check_objective_directions(cfg, HydraConfig.get().sweeper.get("direction"))
    resume = cfg.get("resume")
    hydra_dir = Path(HydraConfig.get().runtime.output_dir)
    out_dir = Path(run_dir(resume, str(hydra_dir)))
    results = run_sequence(cfg, out_dir, resume=bool(resume), hydra_dir=hydra_dir)
    return objectives(cfg, ContinualResults.from_dict(results))


def objectives(cfg: DictConfig, results: ContinualResults) -> float | list[float] | None:
    """The run's ``objective`` (a name or a list of names; null: none). A list of one name gives
    its value alone: a one-objective study takes a number."""
    if cfg.get("objective") is None:
        return None
    values = [objective_value(results, name) for name in objective_names(cfg)]
    return values[0] if len(values) == 1 else values


if __name__ == "__main__":
    main()
