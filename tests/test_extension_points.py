"""A new method from outside pbgan: a layer family and a training plugin in this file, one YAML in
a temporary config folder, trained through ``python -m pbgan.run``'s own config path.

The toy method ("gain"): task 1 learns ordinary filters, every later task only a gain per output
channel on task 1's frozen filters (its own bias, norm and last layer); its plugin adds an L2
penalty on the trainable parameters to every generator loss and counts the hooks it sees.
"""

from __future__ import annotations

import csv
import os
import subprocess
import sys
from pathlib import Path

import torch
from pbgan_testing import TINY
from torch import nn

from pbgan.lifelong.family import ConvSpec, LayerFamily
from pbgan.lifelong.layers import INIT_STD, TaskConv
from pbgan.lifelong.plugin import TrainingPlugin
from pbgan.lifelong_file import load_lifelong_file, load_task_generator

ROOT = Path(__file__).resolve().parent.parent
HERE = Path(__file__).resolve().parent


class GainConv(TaskConv):
    """Task 0: a weight W. Task t >= 1: W scaled per output channel by a learned gain."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.gains = nn.ParameterList()
        self.first = nn.ParameterList()

    def _channel_axis(self) -> int:
        return 1 if self.transposed else 0

    def _create_task(self, task: int) -> None:
        if task == 0:
            shape = [self.out_channels, self.in_channels, self.kernel_size, self.kernel_size]
            if self.transposed:
                shape[0], shape[1] = shape[1], shape[0]
            self.first.append(nn.Parameter(torch.randn(shape, **self.factory()) * INIT_STD))
        self.gains.append(nn.Parameter(torch.ones(self.out_channels, **self.factory())))
        self._add_bias()

    def task_parameters(self, task: int) -> list[nn.Parameter]:
        own = [self.first[0]] if task == 0 else [self.gains[task]]
        return own + ([self.biases[task]] if self.has_bias else [])

    def task_weight(self, task: int) -> torch.Tensor:
        if task == 0:
            return self.first[0]
        shape = [1, 1, 1, 1]
        shape[self._channel_axis()] = self.out_channels
        return self.first[0] * self.gains[task].view(shape)


class GainFamily(LayerFamily):
    def shared_conv(self, spec: ConvSpec) -> GainConv:
        return GainConv(**spec.arguments())


class PenaltyPlugin(TrainingPlugin):
    """An L2 penalty on what trains now, and a count of every hook (saved with the model)."""

    def __init__(self, weight: float = 1e-3) -> None:
        super().__init__()
        self.weight = weight
        self.register_buffer("calls", torch.zeros(4, dtype=torch.long))  # start, terms, step, end

    def on_task_start(self, module, task: int) -> None:
        self.calls[0] += 1

    def generator_loss_terms(self, module, batch):
        self.calls[1] += 1
        params = [p for group in module.generator_param_groups() for p in group["params"]]
        return {"toy_penalty": self.weight * sum(p.square().sum() for p in params)}

    def after_optimizer_step(self, module, optimizer: str) -> None:
        if optimizer == "generator":
            self.calls[2] += 1

    def on_task_end(self, module, task: int, trainer) -> None:
        assert trainer is not None and module.frozen_tasks == task + 1
        self.calls[3] += 1


TOY_YAML = f"""\
name: gain
family:
  _target_: {__name__}.GainFamily
plugin:
  _target_: {__name__}.PenaltyPlugin
  weight: 1.0e-3
"""


def test_a_method_defined_outside_pbgan_trains_through_the_cli(tmp_path: Path) -> None:
    conf = tmp_path / "conf"
    (conf / "method").mkdir(parents=True)
    (conf / "method" / "gain.yaml").write_text(TOY_YAML)
    out = tmp_path / "run"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(HERE), os.environ.get("PYTHONPATH", "")])}
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "pbgan.run",
            *[o for o in TINY if not o.startswith("logger=")],
            "logger=csv",
            "trainer.log_every_n_steps=1",
            "task_seq=synth_paired2",
            "method=gain",
            f"hydra.searchpath=[file://{conf}]",
            f"hydra.run.dir={out}",
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]

    payload = load_lifelong_file(out / "lifelong.pt")
    results = payload["results"]
    assert results["method"] == "gain" and results["completed_tasks"] == 2
    # task 1 is untouched by task 2 (the family froze it), and task 2 stored only gains and biases
    assert results["forgetting"]["max_abs_change"][1][0] == 0.0
    per_task = results["params"]["per_task"]
    assert per_task[1] < per_task[0] / 10
    # every hook ran: two task starts and ends, one loss term and one after-step per generator step
    start, terms, steps, end = payload["plugin"]["calls"].tolist()
    assert (start, end) == (2, 2) and terms == steps > 0
    # the extra loss term is logged like the module's own
    metrics = out / "logs" / "csv" / "metrics.csv"
    with open(metrics, newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert any(row.get("train/toy_penalty") for row in rows)
    # the file rebuilds the network from its stored node, with the toy family
    node = payload["generators"]["generator"]["node"]
    assert node["family"]["_target_"] == f"{__name__}.GainFamily"
    net, task, _ = load_task_generator(out / "lifelong.pt", "map2aerial")
    assert task == 1 and any(isinstance(layer, GainConv) for layer in net.modules())
