"""On a CUDA GPU: a sequence trains there, keeps its old tasks exactly, and its file serves on a CPU.

CI has no GPU, so these are skipped there; on a machine with one, ``pytest tests/test_gpu.py``."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from pbgan_testing import compose_config

from pbgan.build import build_module
from pbgan.lifelong_file import load_lifelong_file, load_task_generator
from pbgan.methods.piggyback import PiggybackConv
from pbgan.sequence import run_sequence

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")

TWO_TASKS = ["trainer.accelerator=gpu", "~task_seq.tasks.seg2facade", "~task_seq.tasks.edges2bag"]
# Outputs are tanh images in [-1, 1]; a GPU's convolutions (TF32 on Ampere and later) round otherwise
# than the CPU's, so the same stored tensors give the same images up to this.
CPU_GPU_ATOL = 2e-2


@pytest.mark.parametrize("method", ["piggyback", "mask"])
def test_a_sequence_trained_on_a_gpu_keeps_old_tasks_and_serves_on_a_cpu(method: str, tmp_path: Path) -> None:
    results = run_sequence(compose_config([*TWO_TASKS, f"method={method}"]), tmp_path)
    assert results["completed_tasks"] == 2
    # task 1 after task 2 was learned gives the very outputs it gave when it was learned
    assert results["forgetting"]["max_abs_change"][1][0] == 0.0
    payload = load_lifelong_file(tmp_path / "lifelong.pt")
    for index, task in enumerate(payload["tasks"]):
        net, _, _ = load_task_generator(tmp_path / "lifelong.pt", task["name"])
        assert all(t.device.type == "cpu" for t in net.state_dict().values())
        with torch.no_grad():
            on_cpu = net(payload["probe_inputs"][index])
        torch.testing.assert_close(on_cpu, payload["probe_baselines"][index], atol=CPU_GPU_ATOL, rtol=0)


def test_bf16_trains_a_task_on_a_gpu(tmp_path: Path) -> None:
    results = run_sequence(
        compose_config([*TWO_TASKS, "~task_seq.tasks.map2aerial", "speed.bf16=true"]), tmp_path
    )
    assert results["completed_tasks"] == 1


def test_new_tasks_join_the_gpu_model() -> None:
    module = build_module(compose_config(["method=piggyback"]))
    module.begin_task("a")
    module.end_task()
    module.to("cuda")
    module.begin_task("b")
    params = module.generator.task_parameters(1)
    assert params and all(p.device.type == "cuda" for p in params)
    module.eval()
    out = module.translate(torch.rand(1, 3, 32, 32, device="cuda") * 2 - 1, 1)
    assert out.device.type == "cuda" and torch.isfinite(out).all()


def test_piggyback_layers_compose_on_a_gpu(monkeypatch) -> None:
    monkeypatch.setattr(torch.backends.cudnn, "allow_tf32", False)  # full float32, to compare closely
    monkeypatch.setattr(torch.backends.cuda.matmul, "allow_tf32", False)
    layer = PiggybackConv(16, 32, 4, 2, 1, ratio=0.5)
    for task in range(3):
        layer.add_task()
        if task < 2:
            layer.end_task()
    layer.set_task(2)
    x = torch.randn(1, 16, 2, 2)
    assert layer.mixes_outputs(x, 2)  # on the CPU this deep call runs as bank outputs mixed by P
    layer.to("cuda")
    assert not layer.mixes_outputs(x.cuda(), 2)  # on a GPU it composes (pbgan.lifelong.costs)
    composed = layer(x.cuda())
    layer.to("cpu")
    torch.testing.assert_close(composed.cpu(), layer(x), atol=1e-5, rtol=1e-4)
