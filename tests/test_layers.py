"""The piggyback layers against DESIGN section 1, computed independently of the implementation."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from pbgan.errors import ConfigError
from pbgan.lifelong import TaskNorm
from pbgan.lifelong.costs import MIXING_RATE
from pbgan.lifelong.network import LifelongNet
from pbgan.methods.piggyback import PiggybackConv, PiggybackFamily, unconstrained_count
from pbgan.networks import UNetGenerator


def torch_filters(layer: PiggybackConv, task: int) -> list[torch.Tensor]:
    """Filter j in PyTorch's own layout: Conv2d w[j], ConvTranspose2d w[:, j]."""
    weight = layer.weight(task).detach()
    count = layer.out_channels
    return [weight[:, j] if layer.transposed else weight[j] for j in range(count)]


def grow(layer: PiggybackConv, tasks: int) -> None:
    """Add ``tasks`` tasks, ending all but the last, with random values everywhere."""
    for task in range(tasks):
        layer.add_task()
        with torch.no_grad():
            for param in layer.task_parameters(task):
                param.normal_()
        if task < tasks - 1:
            layer.end_task()


@pytest.mark.parametrize("transposed", [False, True])
@pytest.mark.parametrize("ratio", [0.0, 0.25, 0.5])
def test_piggyback_filter_is_sum_over_bank_filters(transposed: bool, ratio: float) -> None:
    layer = PiggybackConv(3, 8, 3, 1, 1, transposed=transposed, ratio=ratio, bias=True)
    grow(layer, 3)
    # The bank in torch layout, built by hand: all task-1 filters, then task 2's new ones.
    bank = torch_filters(layer, 0) + torch_filters(layer, 1)[: layer.n_new]
    for task in (1, 2):
        rows = 8 + (task - 1) * layer.n_new
        assert layer.bank_rows(task) == rows
        mix = layer.piggyback[task].detach()
        assert mix.shape == (rows, 8 - layer.n_new)
        filters = torch_filters(layer, task)
        for j in range(8 - layer.n_new):
            expected = torch.zeros_like(bank[0])
            for m in range(rows):
                expected += mix[m, j] * bank[m]
            torch.testing.assert_close(filters[layer.n_new + j], expected, rtol=1e-5, atol=1e-5)
        stored = layer.unconstrained[task].detach()  # new filters in PyTorch's layout
        for j in range(layer.n_new):
            assert torch.equal(filters[j], stored[:, j] if transposed else stored[j])


@pytest.mark.parametrize("transposed", [False, True])
def test_forward_equals_plain_convolution_with_composed_weight(transposed: bool) -> None:
    layer = PiggybackConv(4, 6, 4, 2, 1, transposed=transposed, ratio=0.5)
    grow(layer, 2)
    layer.set_task(1)
    x = torch.randn(2, 4, 8, 8)
    weight, bias = layer.weight(1), layer.biases[1]
    expected = (F.conv_transpose2d if transposed else F.conv2d)(x, weight, bias, 2, 1)
    torch.testing.assert_close(layer(x), expected)


def norm_params(norm: TaskNorm, task: int) -> int:
    return 2 * norm.channels if norm.kind == "batch" else 0


def expected_task_params(net: LifelongNet, task: int, ratio: float) -> int:
    """DESIGN: n_u*d + M_t*(N - n_u) + N (bias) + norm for shareable layers; task-specific whole."""
    total = 0
    for _, layer in net.lifelong_layers():
        if isinstance(layer, TaskNorm):
            total += norm_params(layer, task)
            continue
        n, d = layer.out_channels, layer.in_channels * layer.kernel_size**2
        bias = n if layer.has_bias else 0
        if task == 0 or layer.task_specific:
            total += n * d + bias
            continue
        n_u = int(ratio * n + 0.5)
        m_t = n + (task - 1) * n_u
        total += n_u * d + m_t * (n - n_u) + bias
    return total


@pytest.mark.parametrize("ratio", [0.0, 0.25, 1.0])
def test_bank_sizes_and_stored_parameters_after_three_tasks(ratio: float) -> None:
    net = UNetGenerator(PiggybackFamily(ratio), num_downs=5, ngf=8)
    sizes = []
    for task in range(3):
        net.add_task()
        assert net.stored_parameters(task) == expected_task_params(net, task, ratio)
        net.end_task()
        sizes.append(net.bank_sizes())
    shareable = [layer for _, layer in net.lifelong_layers() if isinstance(layer, PiggybackConv)]
    for layer in shareable:
        if layer.task_specific:
            assert layer.bank.shape[0] == 0
            continue
        n = layer.out_channels
        n_u = int(ratio * n + 0.5)
        label = layer.label
        # B_2 = W_1; B_{t+1} = concat(B_t, U_t): N, N + n_u, N + 2 n_u rows after tasks 1..3.
        assert [stage[label] for stage in sizes] == [n, n + n_u, n + 2 * n_u]
    total = sum(p.numel() for p in net.parameters())
    assert total == sum(expected_task_params(net, t, ratio) for t in range(3))


def test_ratio_rounds_half_up_and_refuses_out_of_range() -> None:
    assert unconstrained_count(0.25, 64) == 16
    assert unconstrained_count(0.5, 5) == 3
    assert unconstrained_count(0.0, 7) == 0
    assert unconstrained_count(1.0, 7) == 7
    for bad in (-0.1, 1.5, "half", True):
        with pytest.raises(ConfigError, match="ratio"):
            PiggybackFamily(bad)


def snapshot(net: LifelongNet, tasks: range) -> dict[str, torch.Tensor]:
    state = {f"task{t}.{i}": p.detach().clone() for t in tasks for i, p in enumerate(net.task_tensors(t))}
    banks = {name: layer.bank.clone() for name, layer in net.lifelong_layers() if hasattr(layer, "bank")}
    state.update(banks)
    return state


def test_training_step_changes_nothing_of_the_bank_or_earlier_tasks() -> None:
    net = UNetGenerator(PiggybackFamily(0.25), num_downs=4, ngf=4)
    for _ in range(2):
        net.add_task()
        net.end_task()
    net.add_task()
    before = snapshot(net, range(2))
    newest = [p.detach().clone() for p in net.task_parameters(2)]
    trainable = [p for p in net.parameters() if p.requires_grad]
    assert {id(p) for p in trainable} == {id(p) for p in net.task_parameters(2)}
    # Even an optimizer over every parameter (frozen ones included) must not move them.
    optimizer = torch.optim.Adam(net.parameters(), lr=0.1)
    net.train()
    for _ in range(2):
        optimizer.zero_grad()
        net(torch.randn(4, 3, 16, 16)).square().mean().backward()
        optimizer.step()
    after = snapshot(net, range(2))
    for key, value in before.items():
        assert torch.equal(value, after[key]), key
    changed = [not torch.equal(a, b) for a, b in zip(newest, net.task_parameters(2)) if a.numel()]
    assert any(changed)


def test_frozen_task_keeps_its_running_statistics_in_train_mode() -> None:
    norm = TaskNorm("batch", 3)
    norm.add_task()
    norm.train()
    norm.set_task(0)
    norm(torch.randn(4, 3, 5, 5))
    norm.end_task()
    stats = norm.norms[0].running_mean.clone()
    norm(torch.randn(4, 3, 5, 5) + 10)
    assert torch.equal(norm.norms[0].running_mean, stats)


def test_an_instance_norm_runs_through_the_group_norm_kernel_with_the_same_numbers() -> None:
    """A task's instance norm runs as a group norm with a group per channel (faster on the CPU):
    the same outputs and gradients up to rounding, in training and evaluation, trainable or frozen,
    so a probe recorded after training holds. A legacy task (from a file of format 5 or before,
    whose probes instance_norm recorded) stays instance_norm bit for bit."""
    norm = TaskNorm("instance", 16)
    norm.add_task()
    norm.set_task(0)
    norm.train()
    x = (torch.randn(4, 16, 8, 8) * 3 + 1).requires_grad_()
    out = norm(x)
    assert torch.equal(out, F.group_norm(x, 16, eps=1e-5))  # the kernel it trains through
    expected = F.instance_norm(x, eps=1e-5)
    torch.testing.assert_close(out, expected, atol=2e-6, rtol=0)
    weights = torch.randn_like(out)
    (mine,) = torch.autograd.grad(out, x, weights)
    (theirs,) = torch.autograd.grad(expected, x, weights)
    torch.testing.assert_close(mine, theirs, atol=2e-6, rtol=1e-5)
    with torch.no_grad():
        assert torch.equal(norm(x), out)
    norm.end_task()
    norm.eval()
    assert torch.equal(norm(x), out)  # frozen, evaluated: the kernel its probes were recorded with
    norm.legacy_tasks = 1
    assert torch.equal(norm(x), expected)  # a legacy task: instance_norm's numbers
    with torch.no_grad():
        assert torch.equal(norm(x), expected)
    norm.add_task()
    norm.set_task(1)
    with pytest.raises(ValueError, match="more than 1 spatial element"):  # as instance_norm says
        norm(torch.randn(2, 16, 1, 1, requires_grad=True))


def test_adding_a_task_before_ending_the_last_is_refused() -> None:
    layer = PiggybackConv(3, 4, 3)
    layer.add_task()
    with pytest.raises(RuntimeError, match="end the current task"):
        layer.add_task()


def test_frozen_task_weights_are_composed_once_and_kept_until_another_task_runs() -> None:
    layer = PiggybackConv(3, 8, 3, 1, 1, ratio=0.25)
    grow(layer, 3)  # tasks 0 and 1 frozen, task 2 open
    x = torch.randn(2, 3, 6, 6)
    layer.eval()
    layer.set_task(1)
    first = layer(x)
    cached = layer._cached
    assert cached is not None and cached[0] == 1
    assert torch.equal(layer(x), first) and layer._cached is cached  # reused, not recomposed
    assert torch.equal(first, F.conv2d(x, layer.weight(1), layer.biases[1], 1, 1))
    layer.train()
    layer.eval()  # switching modes (what translate does around every batch) keeps it
    assert layer._cached is cached
    layer.set_task(2)
    layer(x)
    assert layer._cached is cached  # the open task is never cached
    layer.end_task()
    assert layer._cached is None  # the bank changed


def test_schedule_is_the_one_with_fewer_multiply_adds() -> None:
    layer = PiggybackConv(16, 32, 4, 2, 1, ratio=0.5)
    grow(layer, 3)
    layer.set_task(2)
    for x in (torch.randn(8, 16, 64, 64, requires_grad=True), torch.randn(2, 16, 2, 2)):
        composed, mixed = layer.schedule_macs([layer.conv_call(x)], 2)
        assert layer.mixes_outputs(x, 2) == (mixed < MIXING_RATE * composed)
    big = torch.randn(8, 16, 64, 64, requires_grad=True)
    assert not layer.mixes_outputs(big, 2)  # half the filters new, an input gradient: compose
    layer.begin_step(1)
    with torch.no_grad():
        assert layer.mixes_outputs(torch.randn(1, 16, 2, 2), 2)
    layer.end_step()


def test_step_shares_one_composed_weight_across_calls() -> None:
    layer = PiggybackConv(8, 8, 3, 1, 1, ratio=0.5)
    grow(layer, 2)
    layer.set_task(1)
    x = torch.randn(2, 8, 16, 16, requires_grad=True)
    assert not layer.mixes_outputs(x, 1)  # many positions: composing is the cheaper way
    calls = []
    compose = layer.task_weight
    layer.task_weight = lambda task: calls.append(task) or compose(task)
    separate = sum(layer(x).square().sum() for _ in range(3))
    grads = torch.autograd.grad(separate, layer.task_parameters(1))
    assert len(calls) == 3
    calls.clear()
    layer.begin_step(3)
    shared = sum(layer(x).square().sum() for _ in range(3))
    layer.end_step()
    assert calls == [1]
    for a, b in zip(torch.autograd.grad(shared, layer.task_parameters(1)), grads):
        torch.testing.assert_close(a, b)


@pytest.mark.parametrize("transposed", [False, True])
@pytest.mark.parametrize("ratio", [0.0, 0.25])
def test_mixing_bank_outputs_equals_composing_filters(transposed: bool, ratio: float) -> None:
    """Deep layers train by mixing the bank's outputs: the same map and gradients as P^T B."""
    layer = PiggybackConv(16, 32, 4, 2, 1, transposed=transposed, ratio=ratio)
    grow(layer, 3)
    layer.set_task(2)
    x = torch.randn(2, 16, 2, 2)
    assert layer.mixes_outputs(x, 2)  # few positions: mixing is the cheaper way
    mixed = layer(x)
    composed = (F.conv_transpose2d if transposed else F.conv2d)(x, layer.weight(2), layer.biases[2], 2, 1)
    scale = composed.abs().max()
    torch.testing.assert_close(mixed / scale, composed / scale, rtol=0, atol=1e-5)
    params = [p for p in layer.task_parameters(2) if p.numel()]
    grads_mixed = torch.autograd.grad(mixed.square().sum(), params)
    grads_composed = torch.autograd.grad(composed.square().sum(), params)
    for a, b in zip(grads_mixed, grads_composed):
        torch.testing.assert_close(a / b.abs().max(), b / b.abs().max(), rtol=0, atol=1e-5)


@pytest.mark.parametrize(
    ("transposed", "kernel", "stride", "padding", "output_padding"),
    [(False, 4, 2, 1, 0), (False, 3, 1, 1, 0), (True, 4, 2, 1, 0), (True, 3, 2, 1, 1)],
)
def test_bank_product_equals_bank_convolution(
    monkeypatch: pytest.MonkeyPatch,
    transposed: bool,
    kernel: int,
    stride: int,
    padding: int,
    output_padding: int,
) -> None:
    """On the CPU a mixing layer convolves small inputs with its bank as one matrix product: the
    convolution's values and input gradient, whichever way the layer takes."""
    from pbgan.lifelong import bankconv

    layer = PiggybackConv(
        6, 10, kernel, stride, padding, output_padding=output_padding, transposed=transposed, ratio=0.3
    )
    grow(layer, 3)
    x = torch.randn(3, 6, 5, 4, requires_grad=True)
    rows = layer.bank_rows(2)
    bank = layer.bank[:rows].view(rows, 6, kernel, kernel)
    if transposed:
        expected = F.conv_transpose2d(x, bank.transpose(0, 1), None, stride, padding, output_padding)
    else:
        expected = F.conv2d(x, bank, None, stride, padding)
    weights = torch.randn_like(expected)
    (grad_expected,) = torch.autograd.grad((expected * weights).sum(), x)
    for limit, product in ((10**6, True), (0, False)):
        monkeypatch.setattr(bankconv, "GEMM_POSITIONS", limit)
        layer.drop_cache()
        out = layer.bank_outputs(x, rows)
        assert (layer._gemm is not None) == product  # the path the threshold asks for was taken
        (grad,) = torch.autograd.grad((out * weights).sum(), x)
        torch.testing.assert_close(out, expected, rtol=1e-5, atol=1e-5 * expected.abs().max().item())
        torch.testing.assert_close(
            grad, grad_expected, rtol=1e-5, atol=1e-5 * grad_expected.abs().max().item()
        )
    assert not layer.bank.requires_grad  # the bank never trains: the product keeps no gradient for it


def force_schedule(monkeypatch: pytest.MonkeyPatch, layer: PiggybackConv, schedule: str) -> None:
    monkeypatch.setattr(layer, "schedule", lambda x, task: schedule)


@pytest.mark.parametrize(
    ("transposed", "ratio", "rank", "batch", "bias"),
    [
        (False, 0.25, None, 2, True),
        (True, 0.25, None, 3, False),
        (False, 0.0, None, 1, True),
        (True, 0.5, 2, 2, True),
        (False, 0.25, None, 1, False),
    ],
)
def test_split_schedule_equals_composing_filters(
    monkeypatch: pytest.MonkeyPatch, transposed: bool, ratio: float, rank: int | None, batch: int, bias: bool
) -> None:
    """Mixed forward, input gradient through the composed weight: the same map and gradients."""
    layer = PiggybackConv(
        6, 8, 3, 2, 1, output_padding=int(transposed), transposed=transposed, ratio=ratio, bias=bias
    )
    layer.rank = rank
    grow(layer, 3)
    layer.set_task(2)
    x = torch.randn(batch, 6, 5, 5, requires_grad=True)
    params = [p for p in layer.task_parameters(2) if p.numel()]
    force_schedule(monkeypatch, layer, "composed")
    composed = layer(x)
    reference = torch.autograd.grad(composed.square().sum(), [x, *params])
    force_schedule(monkeypatch, layer, "split")
    split = layer(x)
    assert split.grad_fn is not None
    scale = composed.abs().max()
    torch.testing.assert_close(split / scale, composed / scale, rtol=0, atol=1e-5)
    for a, b in zip(torch.autograd.grad(split.square().sum(), [x, *params]), reference):
        torch.testing.assert_close(a / b.abs().max(), b / b.abs().max(), rtol=0, atol=1e-5)


def test_split_schedule_composes_once_per_step_and_not_at_all_without_input_gradient(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    layer = PiggybackConv(8, 8, 3, 1, 1, ratio=0.25)
    grow(layer, 2)
    layer.set_task(1)
    force_schedule(monkeypatch, layer, "split")
    calls = []
    compose = layer.weight
    monkeypatch.setattr(layer, "weight", lambda task: calls.append(task) or compose(task))
    x = torch.randn(2, 8, 6, 6, requires_grad=True)
    layer.begin_step(3)
    total = sum(layer(x).square().sum() for _ in range(3))
    total.backward()
    layer.end_step()
    assert calls == [1]  # three calls' input gradients share one composed weight
    calls.clear()
    layer(torch.randn(2, 8, 6, 6)).square().sum().backward()  # the first layer of a network
    assert calls == []  # no input gradient: nothing composed, P's gradient from the bank outputs
    assert layer.piggyback[1].grad is not None


def test_split_schedule_is_chosen_for_large_calls_while_the_bank_is_small() -> None:
    """The rule measured on 2 CPU cores (pbgan.lifelong.costs): a big call of task 2 splits, the
    same call composes once the bank has grown (task 4), a small call composes, and so does
    every call under autocast or without an input gradient."""
    layer = PiggybackConv(128, 128, 3, 1, 1, ratio=0.25)
    grow(layer, 2)
    layer.set_task(1)
    big = torch.randn(1, 128, 64, 64, requires_grad=True)  # n_u d P = 32 * 1152 * 4096: 151M
    assert layer.schedule(big, 1) == "split"
    assert layer.schedule(big.detach(), 1) == "composed"
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert layer.schedule(big, 1) == "composed"
    assert layer.schedule(torch.randn(1, 128, 32, 32, requires_grad=True), 1) == "composed"  # 38M
    layer.end_task()
    layer.add_task()
    layer.end_task()
    layer.add_task()
    layer.set_task(3)
    assert layer.bank_rows(3) == 192
    assert layer.schedule(big, 3) == "composed"


def test_a_frozen_tasks_output_for_an_image_does_not_depend_on_its_batch() -> None:
    """Extending a model file compares its old tasks' outputs on the stored probe images, computed
    in other batches than when they were learned, for exact equality; so every frozen call must
    give an image the same output whatever else is in the batch (oneDNN's convolution does; a
    product over the whole batch's columns, tried for speed, did not: 2e-6 apart)."""
    torch.manual_seed(0)
    net = UNetGenerator(PiggybackFamily(0.25), num_downs=5, ngf=8)
    for _ in range(3):
        net.add_task()
        net.end_task()
    net.eval()
    x = torch.randn(16, 3, 32, 32)
    with torch.no_grad():
        for task in range(3):
            net.set_task(task)
            whole = net(x)
            assert torch.equal(net(x[:4]), whole[:4])
            assert torch.equal(net(x[5:6]), whole[5:6])


def test_weights_cached_in_inference_mode_do_not_break_later_training(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A frozen task's cached weight and a mixing layer's bank product made under
    ``torch.inference_mode`` (a user's sampling, Lightning's predict) are made again for training."""
    from pbgan.lifelong import bankconv

    monkeypatch.setattr(bankconv, "GEMM_POSITIONS", 10**6)  # the bank product path on the CPU
    layer = PiggybackConv(6, 8, 3, 1, 1, ratio=0.25)
    grow(layer, 3)
    force_schedule(monkeypatch, layer, "mixed")
    x = torch.randn(2, 6, 5, 5)
    with torch.inference_mode():
        for task in (0, 2):
            layer.set_task(task)
            layer(x)
    assert layer._gemm is not None and layer._cached is not None
    layer.set_task(2)  # the trainable task: mixes through the bank product
    layer(x.requires_grad_()).square().sum().backward()
    assert layer.piggyback[2].grad is not None
    layer.set_task(0)
    with torch.inference_mode():
        layer(x.detach())
    layer(x).square().sum().backward()  # a frozen task passing an input gradient on
    assert x.grad is not None


def test_split_schedule_refuses_a_backward_after_its_matrix_changed(monkeypatch: pytest.MonkeyPatch) -> None:
    """As autograd does for the other schedules: a mixing matrix changed in place between forward
    and backward is an error, not a silently different input gradient."""
    layer = PiggybackConv(6, 8, 3, 1, 1, ratio=0.25)
    grow(layer, 2)
    layer.set_task(1)
    force_schedule(monkeypatch, layer, "split")
    out = layer(torch.randn(2, 6, 5, 5, requires_grad=True))
    with torch.no_grad():
        layer.piggyback[1].add_(1.0)
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        out.square().sum().backward()


def test_a_step_never_hands_a_weight_made_without_gradients_to_a_call_with_them() -> None:
    layer = PiggybackConv(6, 8, 3, 1, 1, ratio=0.25)
    grow(layer, 2)
    layer.set_task(1)
    x = torch.randn(2, 6, 5, 5)
    layer.begin_step(2)
    with torch.no_grad():
        layer(x)
    layer(x).square().sum().backward()
    layer.end_step()
    assert layer.piggyback[1].grad is not None and layer.unconstrained[1].grad is not None


def test_loading_a_state_dict_rebuilds_the_bank_and_drops_cached_weights() -> None:
    """A plain ``load_state_dict`` into a layer or a network (no call of ``rebuild_derived``)
    computes what the source computes."""
    torch.manual_seed(0)
    source, target = (PiggybackConv(6, 8, 3, 1, 1, ratio=0.25) for _ in range(2))
    grow(source, 3)
    grow(target, 3)
    x = torch.randn(2, 6, 5, 5)
    target.set_task(1)
    target(x)  # caches task 1's weight, composed from the target's own bank
    target.load_state_dict(source.state_dict())
    for task in range(3):
        source.set_task(task)
        target.set_task(task)
        assert torch.equal(target(x), source(x))
    nets = [UNetGenerator(PiggybackFamily(ratio=0.25), ngf=4, num_downs=5) for _ in range(2)]
    for net in nets:
        for _ in range(2):
            net.add_task()
            net.end_task()
        net.add_task()
        net.eval()
    image = torch.randn(1, 3, 32, 32)
    nets[1](image)
    nets[1].load_state_dict(nets[0].state_dict())
    for task in range(3):
        for net in nets:
            net.set_task(task)
        assert torch.equal(nets[1](image), nets[0](image))


def test_a_frozen_weight_composed_under_autocast_stays_float32() -> None:
    layer = PiggybackConv(6, 8, 3, 1, 1, ratio=0.25)
    grow(layer, 3)
    layer.set_task(1)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        layer(torch.randn(2, 6, 5, 5))
    cached = layer._cached[1]
    with torch.no_grad():
        exact = layer.task_weight(1)
    assert cached.dtype == torch.float32 and torch.equal(cached, exact)


def test_a_frozen_4x4_transposed_layer_runs_as_one_convolution_with_the_same_numbers() -> None:
    """A frozen task's 4x4 stride-2 transposed convolution runs as one ordinary convolution on the
    CPU (pbgan.lifelong.subpixel): within rounding of F.conv_transpose2d, made once per task, the
    same output for an image in any batch, gradients through it; a legacy task and a float64
    layer keep F.conv_transpose2d's numbers exactly."""
    from pbgan.lifelong.layers import TaskSpecificConv

    torch.manual_seed(0)
    piggyback = PiggybackConv(12, 8, 4, 2, 1, transposed=True, ratio=0.25)
    grow(piggyback, 3)
    specific = TaskSpecificConv(12, 8, 4, 2, 1, transposed=True)
    for _ in range(2):
        specific.add_task()
        specific.end_task()
    x = torch.randn(6, 12, 5, 7)
    for layer in (piggyback, specific):
        layer.eval()
        for task in (0, 1):
            layer.set_task(task)
            plain = F.conv_transpose2d(x, layer.task_weight(task), layer.biases[task], 2, 1)
            out = layer(x)
            assert out.shape == plain.shape == (6, 8, 10, 14) and out.is_contiguous()
            torch.testing.assert_close(out, plain, atol=1e-5, rtol=1e-5)  # unit-normal weights: |out| ~ 50
            assert layer._cached_subpixel[0] == task
            cached = layer._cached_subpixel
            assert torch.equal(layer(x[2:3]), out[2:3]) and layer._cached_subpixel is cached
            grad_in = x.clone().requires_grad_()
            layer(grad_in).sum().backward()
            assert grad_in.grad is not None
        layer.legacy_tasks = 2  # tasks of a format 5 file: the kernel their probes were recorded with
        assert torch.equal(layer(x), F.conv_transpose2d(x, layer.task_weight(1), layer.biases[1], 2, 1))
        layer.legacy_tasks = 0
        layer.double()
        wide = x.double()
        assert torch.equal(layer(wide), F.conv_transpose2d(wide, layer.task_weight(1), layer.biases[1], 2, 1))
    # other geometries (the ResNet's 3x3 upsampling) keep the transposed convolution
    resnet_up = TaskSpecificConv(12, 8, 3, 2, 1, output_padding=1, transposed=True)
    resnet_up.add_task()
    resnet_up.end_task()
    assert not resnet_up.runs_subpixel(x, 0)
