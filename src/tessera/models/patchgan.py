"""The 70x70 PatchGAN discriminator of pix2pix (Isola et al. 2017).

It reads cat([condition, image]) and returns one logit per overlapping 70x70 patch
(for ``n_layers=3``): (N, 1, H/8 - 2, W/8 - 2).

``spectral=True`` wraps every convolution in spectral normalization (Miyato et al. 2018; the
Real-ESRGAN discriminators), which keeps the critic 1-Lipschitz-ish and the adversarial
fine-tuning of a pretrained generator stable; use it with ``norm="none"``.
``forward(x, features=True)`` also returns the activations after each LeakyReLU (for a
feature-matching perceptual loss).
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm

from tessera.models.unet import make_norm


class PatchGAN(nn.Module):
    def __init__(self, *, in_channels: int = 7, base: int = 64, n_layers: int = 3, norm: str = "batch", spectral: bool = False) -> None:
        super().__init__()
        self.in_channels = in_channels

        def conv(*args, **kw) -> nn.Module:
            c = nn.Conv2d(*args, **kw)
            return spectral_norm(c) if spectral else c

        bias = norm != "batch"
        layers: list[nn.Module] = [conv(in_channels, base, 4, 2, 1), nn.LeakyReLU(0.2)]
        ch = base
        for n in range(1, n_layers + 1):
            prev, ch = ch, base * min(2**n, 8)
            stride = 2 if n < n_layers else 1
            layers += [conv(prev, ch, 4, stride, 1, bias=bias), make_norm(norm, ch), nn.LeakyReLU(0.2)]
        layers.append(conv(ch, 1, 4, 1, 1))
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor, features: bool = False):
        if not features:
            return self.net(x)  # (N, 1, H', W') patch logits
        feats = []
        for layer in self.net:
            x = layer(x)
            if isinstance(layer, nn.LeakyReLU):
                feats.append(x)
        return x, feats


def receptive_field(n_layers: int = 3) -> int:
    """Receptive field in pixels of one output logit (70 for n_layers=3)."""
    rf = 1
    for k, s in reversed([(4, 2)] + [(4, 2 if n < n_layers else 1) for n in range(1, n_layers + 1)] + [(4, 1)]):
        rf = rf * s + (k - s)
    return rf
