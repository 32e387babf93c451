"""What the method promises at scale: compact model files, one composition per evaluation, the
documented learning-rate decay under max_steps, and new tasks in the model's dtype."""

from __future__ import annotations

from pathlib import Path

import torch
from hydra.utils import instantiate
from pbgan_testing import compose_config

from pbgan.build import build_module
from pbgan.evaluation import translate_all
from pbgan.lifelong_file import FILE_NAME, load_lifelong_file
from pbgan.methods.piggyback import PiggybackConv
from pbgan.sequence import build_trainer, run_sequence, task_specs

TWO_TASKS = ["~task_seq.tasks.seg2facade", "~task_seq.tasks.edges2bag"]


def tensor_bytes(value) -> int:
    """numel * element_size of every tensor in a nested payload."""
    if isinstance(value, torch.Tensor):
        return value.numel() * value.element_size()
    if isinstance(value, dict):
        return sum(tensor_bytes(v) for v in value.values())
    if isinstance(value, (list, tuple)):
        return sum(tensor_bytes(v) for v in value)
    return 0


def test_model_file_holds_only_its_tensors(tmp_path: Path) -> None:
    # 32 eval images per task but 4 probes: a probe slice saved as is would carry all 32.
    cfg = compose_config([*TWO_TASKS, "data.val_size=32", "eval.num_images=32", "eval.probe_images=4"])
    run_sequence(cfg, tmp_path)
    path = tmp_path / FILE_NAME
    payload = load_lifelong_file(path)
    assert all(len(x) == 4 for x in payload["probe_inputs"] + payload["probe_baselines"])
    counted = tensor_bytes(payload)
    size = path.stat().st_size
    assert counted <= size <= 1.02 * counted + 256 * 1024, (size, counted)


def test_evaluation_composes_each_frozen_task_once(monkeypatch) -> None:
    cfg = compose_config()
    module = build_module(cfg)
    for name in ("a", "b", "c"):
        module.begin_task(name)
        module.end_task()
    module.begin_task("d")  # an open task, as while a sequence runs
    composed: list[tuple[int, int]] = []
    compose = PiggybackConv.task_weight

    def counting(layer, task):
        composed.append((id(layer), task))
        return compose(layer, task)

    monkeypatch.setattr(PiggybackConv, "task_weight", counting)
    inputs = torch.rand(12, 3, 32, 32) * 2 - 1
    layers = [layer for _, layer in module.generator.lifelong_layers() if isinstance(layer, PiggybackConv)]
    for task in (1, 2):
        composed.clear()
        translate_all(module, task, inputs, batch_size=4)  # 3 batches, eval/train switched per batch
        assert sorted(composed) == sorted((id(layer), task) for layer in layers)


def test_evaluation_runs_deterministic_kernels_and_restores_the_settings(monkeypatch) -> None:
    """The forgetting audit compares outputs exactly, so evaluation asks cuDNN for deterministic
    algorithms picked without timing (on a GPU the same weights could otherwise give other last
    bits); training's own settings (here a user's ``benchmark=True``) come back afterwards."""
    module = build_module(compose_config())
    module.begin_task("a")
    module.end_task()
    seen: list[tuple[bool, bool]] = []
    translate = type(module).translate

    def recording(self, *args, **kwargs):
        seen.append((torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark))
        return translate(self, *args, **kwargs)

    monkeypatch.setattr(type(module), "translate", recording)
    monkeypatch.setattr(torch.backends.cudnn, "deterministic", False)
    monkeypatch.setattr(torch.backends.cudnn, "benchmark", True)
    for protocol in ("eval", "reference"):
        translate_all(module, 0, torch.rand(3, 3, 32, 32) * 2 - 1, batch_size=2, protocol=protocol)
    assert seen and all(flags == (True, False) for flags in seen)
    assert (torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark) == (False, True)


def test_max_steps_decays_the_rate_to_its_floor(tmp_path: Path) -> None:
    cfg = compose_config(["trainer.max_epochs=50", "+trainer.max_steps=8", "data.train_size=40"])
    spec = task_specs(cfg)[0]
    module = build_module(cfg)
    module.begin_task(spec.name)
    trainer = build_trainer(cfg, tmp_path, [])
    trainer.fit(module, datamodule=instantiate(spec.data))
    assert module.training_batches() == 4  # 8 optimizer steps = 4 batches of two optimizers
    assert module.sequence_step == 4
    for optimizer in trainer.optimizers:
        # after the last batch the linear decay has reached 0 (the rate the task ends at)
        assert optimizer.param_groups[0]["lr"] == 0.0


def test_new_tasks_take_the_models_dtype() -> None:
    module = build_module(compose_config(["method=mask"]))
    module.begin_task("a")
    module.end_task()
    module.to(torch.float64)
    module.begin_task("b")
    params = module.generator.task_parameters(1)
    assert params and all(p.dtype == torch.float64 for p in params)
    assert all(b.dtype == torch.float64 for b in module.generator.task_tensors(1) if b.is_floating_point())
    module.eval()
    out = module.translate(torch.rand(1, 3, 32, 32, dtype=torch.float64), 1)
    assert out.dtype == torch.float64
