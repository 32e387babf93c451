"""A run's folder: everything a run writes, each file atomically, and where it finds it again.

``results.json`` and ``results.csv`` (the continual results), ``samples/after<i>_<task>/`` (a
grid per seen task after each stage), ``lifelong.pt`` (every frozen task, rebuilt by its nodes),
``checkpoints/task<i>_<name>/{last,previous}.ckpt`` (the task in training) and ``.pbgan/`` (the
lock, the config the run began with, Hydra's files as they were then, the W&B run id).

Durable states. A task goes through four: *training* (its newest checkpoint holds the epochs
done), *trained* (the checkpoint of its last epoch), *frozen and evaluated* (in memory: both are
recomputed from the trained checkpoint, deterministically) and *written*: ``lifelong.pt`` holds it,
and that file is the record of what is done. It is written before results.json and results.csv,
which are views of the results it holds (a resume writes them again from it). ``resume=``
continues from the newest durable state.

Two records of each written state while the run goes on: before ``lifelong.pt`` is replaced the
file it replaces becomes ``.pbgan/lifelong.previous.pt`` (a hard link: no copy), and the newest
written task keeps its trained checkpoint until the next task is written. A ``lifelong.pt``
damaged on disk is then set aside (``lifelong.pt.damaged``) and the run resumes from the previous
file and that checkpoint, retraining nothing. A finished run keeps ``lifelong.pt`` alone.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from omegaconf import DictConfig, ListConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from pbgan.checkpoints import pick_checkpoint
from pbgan.errors import PbganError
from pbgan.evaluation import SampleRows, save_sample_grid
from pbgan.io import atomic_write, remove_temp_files, set_damaged_aside, write_error, write_json, write_text
from pbgan.lifelong_file import FILE_NAME, DamagedLifelongFile, load_lifelong_file, save_lifelong_file
from pbgan.lock import RunInUse, RunLock
from pbgan.modules.base import LifelongGANModule
from pbgan.results import ContinualResults, csv_text
from pbgan.tasks import TaskSpec

log = logging.getLogger(__name__)

RESULTS_JSON = "results.json"
RESULTS_CSV = "results.csv"
META = ".pbgan"
HYDRA_FILES = ("config.yaml", "hydra.yaml", "overrides.yaml")
PREVIOUS_FILE = "lifelong.previous.pt"


def differences(saved: object, current: object, prefix: str = "") -> list[str]:
    """Dotted keys whose values differ between two plain config trees."""
    if isinstance(saved, dict) and isinstance(current, dict):
        keys = sorted(set(saved) | set(current))
        return [d for key in keys for d in differences(saved.get(key), current.get(key), f"{prefix}{key}.")]
    return [] if saved == current else [prefix.rstrip(".")]


def config_changes(saved: DictConfig, current: DictConfig) -> list[str]:
    """The options a resume changes: those written differently whose resolved values differ too.

    As written, so that an environment variable read by the config (``PBGAN_CACHE_DIR``) may
    differ between the run and its resume; resolved, so that a config file that now writes the
    same value another way (``max_images: null`` become ``${data.max_images}``, which is null)
    does not refuse a run begun before it. An option missing counts as null (as it reads), and
    one that does not resolve as changed."""
    written = [OmegaConf.to_container(config, resolve=False) for config in (saved, current)]
    for tree in written:
        tree.pop("resume", None)
    changed = []
    for key in differences(*written):
        values = []
        for config in (saved, current):
            try:
                value = OmegaConf.select(config, key, default=None, throw_on_resolution_failure=True)
                if isinstance(value, (DictConfig, ListConfig)):
                    value = OmegaConf.to_container(value, resolve=True)
            except OmegaConfBaseException:  # no longer resolves: counts as changed
                value = _UNRESOLVED
            values.append(value)
        if values[0] != values[1] or _UNRESOLVED in values:
            changed.append(key)
    return changed


_UNRESOLVED = object()


@dataclass
class ResumePoint:
    """Where a resumed run continues: ``done`` tasks written, and the newest checkpoint of the
    next task if its training had begun; what the loggers had recorded by then."""

    done: int = 0
    checkpoint: Path | None = None
    step: int = 0  # the loggers' step of that state
    log_rows: int | None = None  # rows of logs/csv/metrics.csv that state had written


class RunStore:
    """The files of one run folder."""

    def __init__(self, folder: str | Path) -> None:
        self.folder = Path(folder)
        self.lock = RunLock(self.folder)

    @property
    def lifelong_path(self) -> Path:
        return self.folder / FILE_NAME

    @property
    def meta(self) -> Path:
        return self.folder / META

    @property
    def previous_path(self) -> Path:
        """The lifelong file ``lifelong.pt`` replaced, while the run goes on."""
        return self.meta / PREVIOUS_FILE

    @property
    def config_path(self) -> Path:
        return self.meta / "config.yaml"

    # -- beginning a session ----------------------------------------------------------------------
    def open(self, cfg: DictConfig, resume: bool, hydra_dir: Path | None = None) -> None:
        """Lock the folder for this process, then check (resume) or record (new run) its config,
        and remove the temp files of a process that was killed while writing.

        Before the lock is held and the config accepted nothing in the folder changes, except
        Hydra's own ``.hydra/`` files when Hydra runs in this folder: those are put back."""
        if resume and not (self.config_path.is_file() or (self.folder / ".hydra" / "config.yaml").is_file()):
            raise PbganError(
                f"resume={self.folder}: no run there ({self.config_path} is missing); "
                "pass the folder of a run"
            )
        self.folder.mkdir(parents=True, exist_ok=True)
        same_folder = hydra_dir is not None and hydra_dir.resolve() == self.folder.resolve()
        try:
            self.lock.acquire()
        except RunInUse:
            if same_folder:  # Hydra has just written over the running run's .hydra files
                self._restore_hydra_files()
            raise
        try:
            if resume:
                self._check_config(cfg, same_folder)
            else:
                self._begin(cfg, hydra_dir)
            for path in remove_temp_files(self.folder, nested_runs=META):
                log.info("[pbgan] removed %s, left by a process that was killed while writing it", path)
        except BaseException:
            self.lock.release()
            raise

    def close(self) -> None:
        self.lock.release()

    def has_progress(self) -> bool:
        """Whether anything learned is stored here (a frozen task or a checkpoint)."""
        return (
            self.lifelong_path.is_file()
            or self.previous_path.is_file()
            or any((self.folder / "checkpoints").glob("*/*.ckpt"))
        )

    def _begin(self, cfg: DictConfig, hydra_dir: Path | None) -> None:
        if self.has_progress():
            raise PbganError(
                f"{self.folder} holds a run already: continue it with resume={self.folder}, "
                "or give this run another folder"
            )
        # Hydra's files as they are now (the command that made the run): a resume that runs Hydra
        # in this folder overwrites them, and they are put back from here.
        if hydra_dir is not None:
            for name in HYDRA_FILES:
                source = hydra_dir / ".hydra" / name
                if source.is_file():
                    write_text(self.meta / "hydra" / name, source.read_text())
        write_json(self.meta / "run.json", {"wandb_id": secrets.token_hex(4)})
        write_text(self.config_path, OmegaConf.to_yaml(cfg))

    def _check_config(self, cfg: DictConfig, same_folder: bool) -> None:
        """``same_folder``: Hydra ran in the run's folder and wrote this command's files there."""
        saved_path = self.config_path
        if not saved_path.is_file():  # a run from before pbgan kept its own copy
            saved_path = self.folder / ".hydra" / "config.yaml"
        if same_folder:
            self._restore_hydra_files()
        changed = config_changes(OmegaConf.load(saved_path), cfg)
        if changed:
            raise PbganError(
                f"resume={self.folder}: this command's config differs from the run's in "
                f"{', '.join(changed)}; resume with the same command (and overrides) that made the run"
            )

    def _restore_hydra_files(self) -> None:
        for name in HYDRA_FILES:
            copy = self.meta / "hydra" / name
            if copy.is_file():
                write_text(self.folder / ".hydra" / name, copy.read_text())

    def run_info(self) -> dict[str, Any]:
        """What the run recorded when it began (``wandb_id``)."""
        path = self.meta / "run.json"
        return json.loads(path.read_text()) if path.is_file() else {}

    # -- resuming ---------------------------------------------------------------------------------
    def written_state(self, main: bool = True) -> tuple[Path, dict[str, Any]] | None:
        """The newest readable lifelong file and its payload: ``lifelong.pt``, or where that is
        damaged (or was set aside), the previous one; None before any task was written.

        The main process sets a damaged ``lifelong.pt`` aside (renamed, not deleted), with one
        line naming it and why; the other ranks read whichever file is there and reach the same
        state."""
        path = self.lifelong_path
        if path.is_file():
            try:
                return path, load_lifelong_file(path)
            except DamagedLifelongFile as error:
                checkpoints = any((self.folder / "checkpoints").glob("*/*.ckpt"))
                if not self.previous_path.is_file() and not checkpoints:
                    raise PbganError(
                        f"{error}; there is no earlier copy to fall back on ({self.previous_path} "
                        "is missing): restore the file from a backup or start the run again"
                    ) from None
                if main:
                    source = self.previous_path if self.previous_path.is_file() else "its task's checkpoint"
                    set_damaged_aside(path, error, then=f"continuing from {source}")
            except PbganError:
                if path.is_file():
                    raise
                # another rank's main process set the damaged file aside between the two looks
        if self.previous_path.is_file():  # lifelong.pt damaged or set aside after it was found so
            return self.previous_path, load_lifelong_file(self.previous_path)
        return None

    def checkpoint_dir(self, task: int, spec: TaskSpec) -> Path:
        return self.folder / "checkpoints" / f"task{task + 1}_{spec.name}"

    def resume_point(
        self,
        done: int,
        specs: list[TaskSpec],
        payload: dict[str, Any] | None,
        main: bool = True,
        step: int = 0,
    ) -> ResumePoint:
        """The newest durable state, given the ``done`` tasks ``lifelong.pt`` holds (``payload``).

        Checkpoints of tasks the file holds are leftovers of a kill after it was written: the
        main process removes them (``main``: it also sets damaged checkpoints aside)."""
        point = ResumePoint(done=done, step=step)  # ``step``: the loggers' step of the loaded tasks
        if payload is not None:
            point.step = int(payload.get("sequence_step", 0))
            point.log_rows = payload.get("log_rows")
        # The newest written task keeps its checkpoint: the fallback if lifelong.pt is damaged.
        for task in range(min(done - 1, len(specs)) if main else 0):
            if self.checkpoint_dir(task, specs[task]).exists():
                self.remove_checkpoints(task, specs[task])
        if done < len(specs):
            point.checkpoint = pick_checkpoint(self.checkpoint_dir(done, specs[done]), set_aside=main)
        if payload is None and point.checkpoint is None:
            point.log_rows = 0  # no durable state: what the logs hold is all done again
        if point.checkpoint is not None:
            state = torch.load(point.checkpoint, map_location="cpu", weights_only=True, mmap=True)
            point.step = int(state.get("pbgan", {}).get("sequence_step", point.step))
            resume_state = next(
                (value for key, value in state.get("callbacks", {}).items() if "ResumeState" in key), {}
            )
            point.log_rows = resume_state.get("log_rows", point.log_rows)
        return point

    def remove_checkpoints(self, task: int, spec: TaskSpec) -> None:
        """A task's checkpoints, once two lifelong files hold it frozen (or the run is done)."""
        folder = self.checkpoint_dir(task, spec)
        shutil.rmtree(folder, ignore_errors=True)
        if folder.parent.is_dir() and not any(folder.parent.iterdir()):
            folder.parent.rmdir()

    # -- a stage's files --------------------------------------------------------------------------
    def write_samples(self, stage: int, spec: TaskSpec, rows: list[SampleRows]) -> dict[str, torch.Tensor]:
        """One grid per task (input | output | target rows) after learning task ``stage``; returns
        the grids by their loggers' names."""
        folder = self.folder / "samples" / f"after{stage + 1}_{spec.name}"
        return {
            f"samples/task{row.task + 1}_{row.name}": save_sample_grid(
                folder / f"task{row.task + 1}_{row.name}.png", row.inputs, row.outputs, row.targets
            )
            for row in rows
        }

    def write_results(self, results: ContinualResults) -> None:
        """results.json and results.csv: views of the results ``lifelong.pt`` holds."""
        write_json(self.folder / RESULTS_JSON, results.to_dict())
        write_text(self.folder / RESULTS_CSV, csv_text(results.tidy_rows()))

    def write_stage(
        self,
        module: LifelongGANModule,
        results: ContinualResults,
        specs: list[TaskSpec],
        image_size: int,
        extra: dict[str, Any],
    ) -> None:
        """The lifelong model file after a stage (the durable record that the task is done), then
        results.json and results.csv.

        The file keeps each task's probe images with their outputs (``extra``), so a later run
        that extends it (init_from) can check every old task without the old data."""
        self._keep_previous()
        save_lifelong_file(
            self.lifelong_path,
            module,
            [spec.describe() for spec in specs],
            results.to_dict(),
            image_size,
            extra,
        )
        self.write_results(results)

    def _keep_previous(self) -> None:
        """``lifelong.pt`` becomes the previous file before a new one replaces it: a hard link
        (a copy where the filesystem has none), put in place atomically."""
        current = self.lifelong_path
        if not current.is_file():
            return
        target = self.previous_path
        target.parent.mkdir(parents=True, exist_ok=True)
        link = target.with_name(f".{target.name}.link.tmp")
        try:
            link.unlink(missing_ok=True)
            try:
                os.link(current, link)
            except OSError:  # no hard links here: copy
                atomic_write(target, lambda tmp: shutil.copyfile(current, tmp))
                return
            os.replace(link, target)
        except OSError as error:
            raise write_error(target, error) from error
        finally:
            link.unlink(missing_ok=True)

    def finish(self, specs: list[TaskSpec]) -> None:
        """Every task is written: the last task's checkpoints and the previous lifelong file go."""
        if specs:
            self.remove_checkpoints(len(specs) - 1, specs[-1])
        self.previous_path.unlink(missing_ok=True)
