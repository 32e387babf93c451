"""eval.protocol=reference: the reference test scripts' evaluation (batch 1, batch statistics,
dropout on), seeded so every evaluation of a task gives the same outputs."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from pbgan_testing import compose_config

from pbgan.build import build_module
from pbgan.errors import ConfigError
from pbgan.evaluation import translate_all
from pbgan.lifelong_file import load_lifelong_file
from pbgan.prior import PriorState
from pbgan.sequence import run_sequence

# 64x64: the UNet has one block with dropout (num_downs 6; 32x32 has none, as the reference's)
TWO = ["task_seq=synth_paired2", "trainer.max_epochs=1", "data.image_size=64"]


@pytest.mark.parametrize("method", ["piggyback", "sft"])
def test_reference_protocol_is_deterministic_and_keeps_the_audit_exact(method: str, tmp_path: Path) -> None:
    results = run_sequence(compose_config([*TWO, f"method={method}", "eval.protocol=reference"]), tmp_path)
    if method == "piggyback":
        assert results["forgetting"]["max_abs_change"][1][0] == 0.0
    cfg = compose_config([*TWO, f"method={method}"])
    payload = load_lifelong_file(tmp_path / "lifelong.pt")
    module = build_module(cfg, 3, 3)
    assert any(isinstance(m, torch.nn.Dropout) for m in module.modules())
    PriorState.read(tmp_path / "lifelong.pt", "test").load_into(module)
    inputs = payload["probe_inputs"][0]
    buffers = {name: b.clone() for name, b in module.named_buffers()}
    first = translate_all(module, 0, inputs, 32, protocol="reference", seed=0)
    second = translate_all(module, 0, inputs, 2, protocol="reference", seed=0)  # other batching
    assert torch.equal(first, second)
    # no running statistics read or moved, and not what eval mode computes
    assert all(torch.equal(b, buffers[name]) for name, b in module.named_buffers())
    plain = translate_all(module, 0, inputs, 32)
    assert not torch.equal(first, plain)
    # the run recorded these very outputs as task 1's probe baseline (right after task 1)
    if method == "piggyback":
        assert torch.equal(payload["probe_baselines"][0], first)
    # another seed draws other dropout
    assert not torch.equal(first, translate_all(module, 0, inputs, 32, protocol="reference", seed=1))


def test_an_unknown_protocol_is_refused() -> None:
    from pbgan.config import validate_config

    with pytest.raises(ConfigError, match="eval.protocol"):
        validate_config(compose_config(["eval.protocol=test"]))
