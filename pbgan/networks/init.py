"""The reference initialisation (pix2pix ``init_weights(..., 'normal', 0.02)``)."""

from torch import nn

from pbgan.lifelong.layers import INIT_STD


def init_plain_weights(net: nn.Module) -> nn.Module:
    """Conv weights N(0, 0.02), biases 0, BatchNorm weight N(1, 0.02); lifelong layers init themselves."""
    for module in net.modules():
        if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d)):
            nn.init.normal_(module.weight, 0.0, INIT_STD)
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, nn.BatchNorm2d):
            nn.init.normal_(module.weight, 1.0, INIT_STD)
            nn.init.zeros_(module.bias)
    return net
