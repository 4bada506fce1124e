"""DCGAN (Radford et al. 2016) for completion by latent search (Yeh et al. 2017, "Semantic Image
Inpainting with Deep Generative Models").

``DCGANGenerator``: z (N, z_dim) -> image (N, 3, size, size) in [-1, 1]: a 4x4 projection by a
transposed convolution, then stride-2 4x4 transposed convolutions with batch norm and ReLU that
double the size and halve the width, and tanh.
``DCGANCritic``: image -> real/fake logit (N,): stride-2 4x4 convolutions with batch norm (not on
the first) and LeakyReLU 0.2 down to 4x4, then a 4x4 convolution to one logit.
``DCGAN``: both in one module, so one safetensors file holds what completion needs (the
generator for G(z), the critic for the perceptual loss and for the patch-synthesis features).
"""

from __future__ import annotations

import math

import torch
from torch import nn


def _levels(size: int) -> int:
    n = int(round(math.log2(size / 4)))
    if size < 8 or 4 * 2**n != size:
        raise ValueError(f"size must be a power of two >= 8, got {size}")
    return n


class DCGANGenerator(nn.Module):
    def __init__(self, *, z_dim: int = 100, base: int = 64, size: int = 64, out_channels: int = 3) -> None:
        super().__init__()
        n = _levels(size)  # number of doublings from 4x4
        self.z_dim, self.size = z_dim, size
        widths = [base * 2 ** (n - 1 - i) for i in range(n)]  # 64: [8b, 4b, 2b, b]
        layers: list[nn.Module] = [
            nn.ConvTranspose2d(z_dim, widths[0], 4, 1, 0, bias=False),
            nn.BatchNorm2d(widths[0]),
            nn.ReLU(True),
        ]
        for a, b in zip(widths[:-1], widths[1:]):
            layers += [nn.ConvTranspose2d(a, b, 4, 2, 1, bias=False), nn.BatchNorm2d(b), nn.ReLU(True)]
        layers += [nn.ConvTranspose2d(widths[-1], out_channels, 4, 2, 1, bias=False), nn.Tanh()]
        self.net = nn.Sequential(*layers)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        # (N, z) -> (N, z, 1, 1) -> (N, 8b, 4, 4) -> ... -> (N, 3, size, size)
        return self.net(z.reshape(z.shape[0], self.z_dim, 1, 1))


class DCGANCritic(nn.Module):
    def __init__(self, *, base: int = 64, size: int = 64, in_channels: int = 3) -> None:
        super().__init__()
        n = _levels(size)
        widths = [base * 2**i for i in range(n)]  # 64: [b, 2b, 4b, 8b] at 32, 16, 8, 4 px
        self.blocks = nn.ModuleList()
        prev = in_channels
        for i, w in enumerate(widths):
            layers: list[nn.Module] = [nn.Conv2d(prev, w, 4, 2, 1, bias=i == 0)]
            if i > 0:
                layers.append(nn.BatchNorm2d(w))
            layers.append(nn.LeakyReLU(0.2, True))
            self.blocks.append(nn.Sequential(*layers))
            prev = w
        self.head = nn.Conv2d(prev, 1, 4, 1, 0)

    def forward(self, x: torch.Tensor, features: bool = False):
        """Logits (N,); with ``features`` also the activations after every block, finest first."""
        feats = []
        h = x
        for block in self.blocks:
            h = block(h)  # (N, b * 2**i, size / 2**(i+1), ...)
            feats.append(h)
        logit = self.head(h).reshape(x.shape[0])
        return (logit, feats) if features else logit


def init_weights(module: nn.Module) -> None:
    """DCGAN initialization: convolutions N(0, 0.02), batch-norm scales N(1, 0.02), biases 0."""
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
            nn.init.normal_(m.weight, 0.0, 0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.normal_(m.weight, 1.0, 0.02)
            nn.init.zeros_(m.bias)


class DCGAN(nn.Module):
    """Generator and critic of one DCGAN. ``forward(z)`` is the generator."""

    def __init__(self, *, z_dim: int = 100, g_base: int = 64, d_base: int = 64, size: int = 64) -> None:
        super().__init__()
        self.z_dim, self.size = z_dim, size
        self.generator = DCGANGenerator(z_dim=z_dim, base=g_base, size=size)
        self.critic = DCGANCritic(base=d_base, size=size)
        init_weights(self)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.generator(z)
