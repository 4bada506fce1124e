"""U-Net generators: the autoencoder baseline and the pix2pix generator.

Both read ``x`` = cat([degraded RGB in [-1, 1], mask in {0, 1}]) shaped (N, 4, H, W) and
return the full predicted image (N, 3, H, W) in [-1, 1]; the caller composites it inside
the mask. H and W must be multiples of ``size_multiple`` (= 2 ** depth).

The layers follow pix2pix (Isola et al. 2017, "U-Net 256"): 4x4 stride-2 convolutions with
LeakyReLU(0.2) down, 4x4 stride-2 transposed convolutions with ReLU up, a norm after every
layer except the outermost ones and the innermost down layer, dropout in the three innermost
up layers, tanh at the end, and skip connections that concatenate encoder features.

``blocks`` adds capacity where pix2pix has one thin layer per level: residual blocks
(conv 3x3, ReLU, conv 3x3, added to their input) on the decoder's features of a level. Their
last convolution starts at zero, so a model grown from a trained one computes exactly what the
trained one did (see ``tessera.train.loop.init_generator``) and training adds from there.
"""

from __future__ import annotations

import torch
from torch import nn

NORMS = ("batch", "instance", "none")


def make_norm(kind: str, channels: int) -> nn.Module:
    if kind == "batch":
        return nn.BatchNorm2d(channels)
    if kind == "instance":
        return nn.InstanceNorm2d(channels, affine=True)
    if kind == "none":
        return nn.Identity()
    raise ValueError(f"norm must be one of {NORMS}, got {kind!r}")


class ResBlock(nn.Module):
    """x + conv(relu(conv(x))), 3x3 convolutions; starts as the identity (last conv zero)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(channels, channels, 3, 1, 1)
        self.conv2 = nn.Conv2d(channels, channels, 3, 1, 1)
        nn.init.zeros_(self.conv2.weight)
        nn.init.zeros_(self.conv2.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv2(torch.relu(self.conv1(x)))


def _check_unet_args(depth: int, norm: str, prefill: str, blocks: tuple[int, ...]) -> tuple[int, ...]:
    if depth < 1:
        raise ValueError(f"depth must be >= 1, got {depth}")
    if len(blocks) > depth or any(b < 0 for b in blocks) or (blocks and blocks[0]):
        raise ValueError(f"blocks must be at most {depth} counts >= 0 with blocks[0] == 0, got {blocks}")
    if prefill not in ("none", "smooth"):
        raise ValueError(f"prefill must be 'none' or 'smooth', got {prefill!r}")
    if norm not in NORMS:
        raise ValueError(f"norm must be one of {NORMS}, got {norm!r}")
    return blocks


def _down_layer(i: int, depth: int, cin: int, cout: int, norm: str) -> nn.Sequential:
    """Encoder level i: (LeakyReLU,) 4x4 stride-2 conv (, norm); the outermost and innermost have no norm."""
    layers: list[nn.Module] = [] if i == 0 else [nn.LeakyReLU(0.2)]
    layers.append(nn.Conv2d(cin, cout, 4, 2, 1, bias=norm != "batch" or i in (0, depth - 1)))
    if 0 < i < depth - 1:
        layers.append(make_norm(norm, cout))
    return nn.Sequential(*layers)


def _up_layer(i: int, depth: int, cin: int, cout: int, norm: str, dropout: float) -> nn.Sequential:
    """Decoder level i: ReLU, 4x4 stride-2 transposed conv, then norm (+ dropout on the innermost
    three levels) or, at level 0, tanh."""
    layers: list[nn.Module] = [nn.ReLU(), nn.ConvTranspose2d(cin, cout, 4, 2, 1, bias=norm != "batch" or i == 0)]
    if i > 0:
        layers.append(make_norm(norm, cout))
        if dropout > 0 and i >= depth - 3:
            layers.append(nn.Dropout(dropout))
    else:
        layers.append(nn.Tanh())
    return nn.Sequential(*layers)


class UNet(nn.Module):
    """U-Net autoencoder baseline (the source article's model; trained with MSE).

    base: channels of the first layer; each level doubles them up to ``base * max_mult``.
    depth: number of stride-2 levels (the input shrinks to H / 2**depth).
    skip: concatenate encoder features into the decoder (False gives a plain autoencoder).
    residual: predict a correction added to the input RGB (the last layer starts at zero, so an
        untrained model returns its input).
    prefill: the input this model was trained on: "none" (the degraded pixels as they are) or
        "smooth" (mosaic cells replaced by their grid-aware cubic interpolation,
        :func:`tessera.restore.classical.smooth`, before the model sees them).
    blocks: residual blocks per decoder level, ``blocks[i]`` on the features at 1/2**i of the
        input size (``blocks[0]`` must be 0: level 0 is the output image). Shorter tuples are
        padded with zeros; () adds none (the pix2pix layout).
    """

    def __init__(
        self,
        *,
        in_channels: int = 4,
        out_channels: int = 3,
        base: int = 32,
        depth: int = 5,
        max_mult: int = 8,
        norm: str = "batch",
        dropout: float = 0.0,
        skip: bool = True,
        residual: bool = False,
        prefill: str = "none",
        blocks: tuple[int, ...] | list[int] = (),
    ) -> None:
        super().__init__()
        blocks = _check_unet_args(depth, norm, prefill, tuple(int(b) for b in blocks))
        self.residual = residual
        self.prefill = prefill
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.size_multiple = 2**depth
        self.depth = depth
        self.skip = skip
        ch = [base * min(2**i, max_mult) for i in range(depth)]
        self.down = nn.ModuleList(_down_layer(i, depth, in_channels if i == 0 else ch[i - 1], ch[i], norm) for i in range(depth))
        self.up = nn.ModuleList(
            _up_layer(i, depth, ch[i] * (2 if skip and i < depth - 1 else 1), ch[i - 1] if i > 0 else out_channels, norm, dropout)
            for i in range(depth)
        )
        counts = blocks + (0,) * (depth - len(blocks))
        self.blocks = nn.ModuleList(nn.Sequential(*[ResBlock(ch[i - 1]) for _ in range(counts[i])]) for i in range(depth))
        if residual:  # start as the identity: the last convolution outputs zeros
            last = self.up[0][1]
            nn.init.zeros_(last.weight)
            if last.bias is not None:
                nn.init.zeros_(last.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        H, W = x.shape[-2:]
        if H % self.size_multiple or W % self.size_multiple:
            raise ValueError(f"input {H}x{W} must be a multiple of {self.size_multiple} (pad it first)")
        # 1. encoder: feats[i] is (N, ch[i], H / 2**(i+1), W / 2**(i+1))
        feats = []
        h = x
        for layer in self.down:
            h = layer(h)
            feats.append(h)
        # 2. decoder from the innermost level, concatenating the encoder feature of each level
        for i in reversed(range(self.depth)):
            if self.skip and i < self.depth - 1:
                h = torch.cat([h, feats[i]], dim=1)  # (N, 2 * ch[i], H / 2**(i+1), ...)
            h = self.blocks[i](self.up[i](h))
        if self.residual:
            return (x[:, : self.out_channels] + h).clamp(-1.0, 1.0)  # (N, out_channels, H, W)
        return h  # (N, out_channels, H, W) in [-1, 1]


class Pix2PixGenerator(UNet):
    """The pix2pix U-Net generator (base 64, 8 levels for 256x256, dropout 0.5).

    The paper's size has 54 M parameters; ``PRESETS['pix2pix']['small']`` in
    :mod:`tessera.models` is the CPU-friendly size we ship.
    """

    def __init__(self, *, base: int = 64, depth: int = 8, dropout: float = 0.5, **kwargs) -> None:
        super().__init__(base=base, depth=depth, dropout=dropout, **kwargs)
