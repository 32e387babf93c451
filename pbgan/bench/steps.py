"""The networks and training steps the benchmark times: every row runs exactly the same step.

pix2pix: a UNet generator and a PatchGAN on (input, output) pairs, the discriminator step then
the generator step with the discriminator frozen (as :class:`pbgan.modules.pix2pix.Pix2PixModule`).
CycleGAN: two ResNet generators, each called three times in the generator step (translation,
cycle, identity), then the two discriminators (as :class:`pbgan.modules.cyclegan.CycleGANModule`).
Lifelong generators share their composed weights across a step's calls as the module does.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager

import torch
import torch.nn.functional as F
from torch import nn

from pbgan.bench.reference import ReferencePatchGAN, ReferenceResNet, ReferenceUNet
from pbgan.build import method_config
from pbgan.lifelong.network import LifelongNet
from pbgan.networks import UNetGenerator
from pbgan.networks.resnet import ResNetGenerator
from pbgan.nodes import build

SCALES = {
    "tiny": {"image_size": 32, "ngf": 4, "batch": 2, "num_downs": 5, "n_blocks": 1},
    "cpu": {"image_size": 64, "ngf": 32, "batch": 8, "num_downs": 6, "n_blocks": 4},
    "paper": {"image_size": 256, "ngf": 64, "batch": 1, "num_downs": 8, "n_blocks": 9},
}
NORMS = {"unet": "batch", "resnet": "instance"}  # the reference pix2pix / CycleGAN settings


def build_generator(arch: str, method: str, size: dict, ratio: float) -> nn.Module:
    """The reference network (``method='reference'``) or a lifelong one of ``method``'s family."""
    norm = NORMS[arch]
    if method == "reference":
        if arch == "unet":
            return ReferenceUNet(num_downs=size["num_downs"], ngf=size["ngf"], norm=norm)
        return ReferenceResNet(ngf=size["ngf"], n_blocks=size["n_blocks"], norm=norm)
    family = build(method_config(method, ratio).method.family, f"method={method}")
    if arch == "unet":
        return UNetGenerator(family, ngf=size["ngf"], num_downs=size["num_downs"], norm=norm)
    return ResNetGenerator(family, ngf=size["ngf"], n_blocks=size["n_blocks"], norm=norm)


def grow_to(net: nn.Module, tasks: int) -> None:
    """Learned (frozen) tasks until task ``tasks`` is the open one (plain networks: nothing)."""
    if not isinstance(net, LifelongNet):
        return
    while net.num_tasks < tasks:
        if net.num_tasks:
            net.end_task()
        net.add_task()


@contextmanager
def sharing(nets: list[nn.Module], calls: int) -> Iterator[None]:
    """Lifelong generators compose once for the step's ``calls`` calls; plain ones do nothing."""
    with ExitStack() as stack:
        for net in nets:
            if isinstance(net, LifelongNet):
                stack.enter_context(net.sharing_weights(calls))
        yield


@contextmanager
def frozen(net: nn.Module) -> Iterator[None]:
    """The generator step trains only the generators (Lightning's ``toggle_optimizer``)."""
    flags = [p.requires_grad for p in net.parameters()]
    for p in net.parameters():
        p.requires_grad_(False)
    try:
        yield
    finally:
        for p, flag in zip(net.parameters(), flags):
            p.requires_grad_(flag)


def adam(params) -> torch.optim.Optimizer:
    return torch.optim.Adam([p for p in params if p.requires_grad], lr=2e-4, betas=(0.5, 0.999))


class PluginHost:
    """What a training plugin reads of its module, for networks the benchmark builds itself."""

    def __init__(self, nets: dict[str, LifelongNet], device: torch.device) -> None:
        self.nets, self.device = nets, device

    def lifelong_nets(self) -> dict[str, LifelongNet]:
        return self.nets

    @property
    def newest_task(self) -> int:
        return next(iter(self.nets.values())).num_tasks - 1

    def net_inputs(self, batch: tuple[torch.Tensor, torch.Tensor]) -> dict:
        a, b = batch
        if list(self.nets) == ["generator"]:
            return {"generator": (a, b)}
        return {"g_ab": (a, b), "g_ba": (b, a)}


Extra = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def plugin_term(method: str, nets: list[nn.Module], device: torch.device) -> Extra | None:
    """The method's training plugin as an extra generator loss term of the step (None: it has
    none): EWC's penalty with one (anchor, Fisher) pair per learned task, Lifelong GAN's
    distillation from a snapshot taken at the open task's start."""
    node = method_config(method).method.get("plugin")
    if not node or not all(isinstance(net, LifelongNet) for net in nets):
        return None
    plugin = build(node, f"method={method}")
    names = ["generator"] if len(nets) == 1 else ["g_ab", "g_ba"]
    host = PluginHost(dict(zip(names, nets)), device)
    learned = host.newest_task
    if hasattr(plugin, "fishers"):  # EWC: pairs of the right shapes (values do not change the cost)
        from pbgan.methods.ewc import shared_parameters

        params = shared_parameters(host)
        for _ in range(1 if getattr(plugin, "online", False) else learned):
            plugin.anchors.append({n: p.detach() + 0.01 for n, p in params.items()})
            plugin.fishers.append({n: torch.rand_like(p) for n, p in params.items()})
    else:
        plugin.on_task_start(host, learned)

    def term(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        terms = plugin.generator_loss_terms(host, (a, b))
        return sum(terms.values(), torch.zeros((), device=device))

    return term


def pix2pix_step(
    gen: nn.Module, size: dict, device: torch.device, extra: Extra | None = None
) -> Callable[[], None]:
    """One pix2pix training step (vanilla GAN loss + 100 L1) on fixed random data (plus ``extra``,
    a training plugin's term)."""
    disc = ReferencePatchGAN(6, ndf=size["ngf"], norm="batch").to(device)
    opt_g, opt_d = adam(gen.parameters()), adam(disc.parameters())
    shape = (size["batch"], 3, size["image_size"], size["image_size"])
    a, b = torch.randn(shape, device=device), torch.randn(shape, device=device)
    gan = nn.BCEWithLogitsLoss()
    gen.train()

    def step() -> None:
        fake = gen(a)
        pred_fake, pred_real = disc(torch.cat([a, fake.detach()], 1)), disc(torch.cat([a, b], 1))
        loss_d = 0.5 * (
            gan(pred_fake, torch.zeros_like(pred_fake)) + gan(pred_real, torch.ones_like(pred_real))
        )
        opt_d.zero_grad(set_to_none=True)
        loss_d.backward()
        opt_d.step()
        with frozen(disc):
            pred = disc(torch.cat([a, fake], 1))
            loss_g = gan(pred, torch.ones_like(pred)) + 100.0 * F.l1_loss(fake, b)
            if extra is not None:
                loss_g = loss_g + extra(a, b)
            opt_g.zero_grad(set_to_none=True)
            loss_g.backward()
        opt_g.step()

    return step


def cyclegan_step(
    g_ab: nn.Module, g_ba: nn.Module, size: dict, device: torch.device, extra: Extra | None = None
) -> Callable[[], None]:
    """One CycleGAN training step (LSGAN, cycle 10, identity 0.5): three calls per generator (plus
    ``extra``, a training plugin's term)."""
    d_a = ReferencePatchGAN(3, ndf=size["ngf"], norm="instance").to(device)
    d_b = ReferencePatchGAN(3, ndf=size["ngf"], norm="instance").to(device)
    opt_g = adam([*g_ab.parameters(), *g_ba.parameters()])
    opt_d = adam([*d_a.parameters(), *d_b.parameters()])
    shape = (size["batch"], 3, size["image_size"], size["image_size"])
    a, b = torch.randn(shape, device=device), torch.randn(shape, device=device)

    def lsgan(pred: torch.Tensor, real: bool) -> torch.Tensor:
        return F.mse_loss(pred, torch.full_like(pred, float(real)))

    g_ab.train()
    g_ba.train()

    def step() -> None:
        with frozen(d_a), frozen(d_b), sharing([g_ab, g_ba], 3):
            fake_b, fake_a = g_ab(a), g_ba(b)
            loss_g = (
                lsgan(d_a(fake_b), True)
                + lsgan(d_b(fake_a), True)
                + 10.0 * (F.l1_loss(g_ba(fake_b), a) + F.l1_loss(g_ab(fake_a), b))
                + 5.0 * (F.l1_loss(g_ab(b), b) + F.l1_loss(g_ba(a), a))
            )
            if extra is not None:
                loss_g = loss_g + extra(a, b)
            opt_g.zero_grad(set_to_none=True)
            loss_g.backward()
        opt_g.step()
        fake_b, fake_a = fake_b.detach(), fake_a.detach()
        loss_d = 0.5 * (lsgan(d_a(b), True) + lsgan(d_a(fake_b), False)) + 0.5 * (
            lsgan(d_b(a), True) + lsgan(d_b(fake_a), False)
        )
        opt_d.zero_grad(set_to_none=True)
        loss_d.backward()
        opt_d.step()

    return step


def inference_step(gen: nn.Module, task: int | None, size: dict, device: torch.device) -> Callable[[], None]:
    """One batch through ``gen`` in eval mode (a lifelong net set to ``task``)."""
    gen.eval()
    if isinstance(gen, LifelongNet):
        gen.set_task(task)
    x = torch.randn(size["batch"], 3, size["image_size"], size["image_size"], device=device)

    @torch.no_grad()
    def step() -> None:
        gen(x)

    return step
