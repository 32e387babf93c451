"""DDP (trainer=ddp): every rank freezes the same task and grows the same bank, equal to one process."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from pbgan_testing import TINY, compose_config

from pbgan.distributed import state_digest, synchronize_task
from pbgan.lifelong_file import load_lifelong_file, restore_generator
from pbgan.methods.piggyback import PiggybackFamily
from pbgan.networks import UNetGenerator

ROOT = Path(__file__).resolve().parent.parent
TWO_TASKS = [*TINY, "~task_seq.tasks.seg2facade", "~task_seq.tasks.edges2bag", "trainer.max_epochs=2"]
# Lightning gives each CPU rank cores/ranks threads; one thread everywhere keeps the float
# reductions in one order, so a DDP run can match the single-process run bit for bit.
ONE_THREAD = {**os.environ, "OMP_NUM_THREADS": "1"}


def run(folder: Path, *extra: str) -> str:
    result = subprocess.run(
        [sys.executable, "-m", "pbgan.run", *TWO_TASKS, *extra, f"hydra.run.dir={folder}"],
        cwd=ROOT,
        env=ONE_THREAD,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout


def stored(folder: Path) -> tuple[str, torch.Tensor]:
    """Digest of the model file's generator state (banks included) and task 1's outputs."""
    payload = load_lifelong_file(folder / "lifelong.pt")
    net = restore_generator(payload["generators"]["generator"], payload["frozen_tasks"], payload["version"])
    net.set_task(0)
    torch.manual_seed(1)
    with torch.no_grad():
        return state_digest({"generator": net}), net(torch.rand(2, 3, 32, 32) * 2 - 1)


def test_ddp_ranks_agree_and_match_one_process(tmp_path: Path) -> None:
    output = run(
        tmp_path / "ddp",
        "trainer=ddp",
        "trainer.accelerator=cpu",
        "trainer.devices=2",
        "trainer.use_distributed_sampler=false",  # both ranks see every batch, as one process does
    )
    run(tmp_path / "single")
    lines = re.findall(r"\[pbgan\] rank (\d)/2: task (\d) frozen, state digest (\w+)", output)
    digests = {(int(task), int(rank)): digest for rank, task, digest in lines}
    assert set(digests) == {(1, 0), (1, 1), (2, 0), (2, 1)}
    assert digests[(1, 0)] == digests[(1, 1)] and digests[(2, 0)] == digests[(2, 1)]
    ddp_digest, ddp_task1 = stored(tmp_path / "ddp")
    single_digest, single_task1 = stored(tmp_path / "single")
    assert ddp_digest == digests[(2, 0)] == single_digest  # bank and every task's tensors
    assert torch.equal(ddp_task1, single_task1)
    assert not (tmp_path / "ddp" / "checkpoints" / "task2_map2aerial").exists()  # written once, cleaned
    # The same numbers too: each rank scores the whole eval set, no image counted once per rank.
    ddp_results, single_results = (
        json.loads((tmp_path / name / "results.json").read_text()) for name in ("ddp", "single")
    )
    for key in ("untrained", "matrix", "summary", "forgetting"):
        assert ddp_results[key] == single_results[key], key


def _average_statistics(rank: int, store_file: str, results: dict) -> None:
    dist.init_process_group("gloo", init_method=f"file://{store_file}", rank=rank, world_size=2)
    try:
        torch.manual_seed(rank)  # each rank starts from different parameters and statistics
        net = UNetGenerator(PiggybackFamily(0.25), ngf=4, num_downs=5)
        net.add_task()
        norms = [m for m in net.modules() if isinstance(m, torch.nn.BatchNorm2d)]
        for norm in norms:
            norm.running_mean.fill_(float(rank))
        synchronize_task({"generator": net}, 0)
        net.end_task()
        results[rank] = (state_digest({"generator": net}), float(norms[0].running_mean[0]))
    finally:
        dist.destroy_process_group()


def test_synchronize_task_averages_statistics_and_copies_rank_0(tmp_path: Path) -> None:
    with mp.Manager() as manager:
        results = manager.dict()
        mp.spawn(_average_statistics, args=(str(tmp_path / "store"), results), nprocs=2, join=True)
        assert results[0] == results[1]  # bitwise the same lifelong state on both ranks
        assert results[0][1] == 0.5  # running statistics averaged over ranks (0 and 1)


def test_ddp_trainer_config_composes() -> None:
    cfg = compose_config(["trainer=ddp"])
    assert cfg.trainer.strategy.broadcast_buffers is False
    assert cfg.trainer.strategy.find_unused_parameters is True


@pytest.mark.parametrize(
    "method",
    [
        "ewc",
        pytest.param("piggyback_lite storage.dtype=int8", marks=pytest.mark.slow),
        pytest.param("lora", marks=pytest.mark.slow),
        pytest.param("lifelong_gan", marks=pytest.mark.slow),
        pytest.param("progressive", marks=pytest.mark.slow),
    ],
)
def test_ddp_ranks_agree_for_the_other_baselines(method: str, tmp_path: Path) -> None:
    """EWC's Fisher (broadcast from rank 0), Lifelong GAN's distillation, progressive columns,
    low-rank adapters and compressed storage under DDP: both ranks freeze (and store) the same
    tasks, as one process does."""
    name, *options = method.split()
    output = run(
        tmp_path / "ddp",
        f"method={name}",
        *options,
        "trainer=ddp",
        "trainer.accelerator=cpu",
        "trainer.devices=2",
        "trainer.use_distributed_sampler=false",
    )
    run(tmp_path / "single", f"method={name}", *options)
    lines = re.findall(r"\[pbgan\] rank (\d)/2: task (\d) frozen, state digest (\w+)", output)
    digests = {(int(task), int(rank)): digest for rank, task, digest in lines}
    assert digests[(1, 0)] == digests[(1, 1)] and digests[(2, 0)] == digests[(2, 1)]
    ddp_digest, ddp_task1 = stored(tmp_path / "ddp")
    single_digest, single_task1 = stored(tmp_path / "single")
    assert ddp_digest == single_digest
    assert torch.equal(ddp_task1, single_task1)
    if method == "ewc":
        ddp_state = load_lifelong_file(tmp_path / "ddp" / "lifelong.pt")["plugin"]["_extra_state"]
        single_state = load_lifelong_file(tmp_path / "single" / "lifelong.pt")["plugin"]["_extra_state"]
        for ddp_fisher, single_fisher in zip(ddp_state["fishers"], single_state["fishers"]):
            assert all(torch.equal(ddp_fisher[k], single_fisher[k]) for k in single_fisher)


DDP = ["trainer=ddp", "trainer.accelerator=cpu", "trainer.devices=2", "trainer.use_distributed_sampler=false"]


def run_ranks(*args: str, fault: str | None = None) -> subprocess.CompletedProcess:
    """``python -m pbgan.run ARGS`` in a session of its own, so that whatever is left of its
    ranks after a kill or a timeout is killed with it."""
    env = {**ONE_THREAD, **({"PBGAN_FAULT": fault} if fault else {})}
    if not fault:
        env.pop("PBGAN_FAULT", None)
    process = subprocess.Popen(
        [sys.executable, "-m", "pbgan.run", *args],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        stdout, stderr = process.communicate(timeout=600)
    finally:
        try:
            os.killpg(process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        process.wait()
    return subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr)


@pytest.mark.slow
def test_a_killed_ddp_run_resumes_to_the_uninterrupted_one(tmp_path: Path) -> None:
    """Both ranks killed mid-task 2 (an epoch of it checkpointed), then the same DDP command with
    ``resume=``: the uninterrupted DDP run's metrics, tensors and CSV log, bit for bit."""
    from test_crash import assert_same_run

    base = [*TWO_TASKS, *DDP, "logger=csv"]
    clean = run_ranks(*base, f"hydra.run.dir={tmp_path / 'clean'}")
    assert clean.returncode == 0, clean.stderr[-3000:]
    run = tmp_path / "run"
    # 4 batches a task (2 epochs of 2): batch 7 is task 2's second epoch, after its first checkpoint.
    crashed = run_ranks(*base, f"hydra.run.dir={run}", fault="train-batch@7")
    assert crashed.returncode == -signal.SIGKILL, crashed.stderr[-3000:]
    assert (run / "checkpoints" / "task2_map2aerial" / "last.ckpt").is_file()
    resumed = run_ranks(*base, f"resume={run}")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "continuing task 2 from" in resumed.stdout + resumed.stderr
    assert_same_run(run, tmp_path / "clean")
