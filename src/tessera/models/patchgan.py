"""The 70x70 PatchGAN discriminator of pix2pix (Isola et al. 2017).

It reads cat([condition, image]) and returns one logit per overlapping 70x70 patch
(for ``n_layers=3``): (N, 1, H/8 - 2, W/8 - 2).
"""

from __future__ import annotations

import torch
from torch import nn

from tessera.models.unet import make_norm


class PatchGAN(nn.Module):
    def __init__(self, *, in_channels: int = 7, base: int = 64, n_layers: int = 3, norm: str = "batch") -> None:
        super().__init__()
        self.in_channels = in_channels
        bias = norm != "batch"
        layers: list[nn.Module] = [nn.Conv2d(in_channels, base, 4, 2, 1), nn.LeakyReLU(0.2)]
        ch = base
        for n in range(1, n_layers + 1):
            prev, ch = ch, base * min(2**n, 8)
            stride = 2 if n < n_layers else 1
            layers += [nn.Conv2d(prev, ch, 4, stride, 1, bias=bias), make_norm(norm, ch), nn.LeakyReLU(0.2)]
        layers.append(nn.Conv2d(ch, 1, 4, 1, 1))
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)  # (N, 1, H', W') patch logits


def receptive_field(n_layers: int = 3) -> int:
    """Receptive field in pixels of one output logit (70 for n_layers=3)."""
    rf = 1
    for k, s in reversed([(4, 2)] + [(4, 2 if n < n_layers else 1) for n in range(1, n_layers + 1)] + [(4, 1)]):
        rf = rf * s + (k - s)
    return rf
