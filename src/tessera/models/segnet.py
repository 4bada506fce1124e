"""A small U-Net that segments mosaicked / blurred regions (a few hundred thousand parameters).

The image is seen at full resolution through a space-to-depth step: RGB plus the absolute
horizontal and vertical differences of its grey level (5 channels, the differences make
"flat inside, jumps on a lattice" easy to see) are folded into ``fold x fold`` blocks, so all
convolutions run at 1/fold of the resolution; the head predicts ``fold * fold`` logits per
block and unfolds them back to one logit per pixel. This keeps a 512x512 image well under
100 ms on one CPU core while edges stay pixel-accurate.

Weights are stored like every network's (:mod:`tessera.weights`); see :func:`load_segnet`.
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F


def _block(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(cin, cout, 3, padding=1),
        nn.BatchNorm2d(cout),
        nn.ReLU(inplace=True),
        nn.Conv2d(cout, cout, 3, padding=1),
        nn.BatchNorm2d(cout),
        nn.ReLU(inplace=True),
    )


class MosaicSegNet(nn.Module):
    """U-Net over a space-to-depth view of the image; returns per-pixel logits (N, 1, H, W).

    fold: space-to-depth factor; base: channels at the first level; depth: number of 2x downsamplings.
    Input: float32 (N, 3, H, W) in [-1, 1], any H, W (padded internally).
    """

    def __init__(self, fold: int = 4, base: int = 16, depth: int = 3) -> None:
        super().__init__()
        self.fold, self.base, self.depth = fold, base, depth
        chans = [base * 2**i for i in range(depth + 1)]
        self.stem = _block(5 * fold * fold, chans[0])
        self.down = nn.ModuleList(_block(chans[i], chans[i + 1]) for i in range(depth))
        self.up = nn.ModuleList(_block(chans[i + 1] + chans[i], chans[i]) for i in reversed(range(depth)))
        self.head = nn.Conv2d(chans[0], fold * fold, 1)
        self.strided_stem: nn.Conv2d | None = None

    def fold_stem(self) -> MosaicSegNet:
        """Inference speed-up: pixel_unshuffle + the stem's 3x3 conv equal one conv with a
        (3 fold)x(3 fold) kernel, stride fold and padding fold on the full-resolution features."""
        conv = self.stem[0]
        r, cin = self.fold, conv.in_channels // (self.fold * self.fold)
        w = conv.weight.detach()  # (O, cin * r * r, 3, 3), channel = c * r^2 + i * r + j
        w = w.reshape(w.shape[0], cin, r, r, 3, 3).permute(0, 1, 4, 2, 5, 3)  # (O, c, ky, i, kx, j)
        big = nn.Conv2d(cin, conv.out_channels, 3 * r, stride=r, padding=r, bias=conv.bias is not None)
        with torch.no_grad():
            big.weight.copy_(w.reshape(w.shape[0], cin, 3 * r, 3 * r))
            if conv.bias is not None:
                big.bias.copy_(conv.bias)
        self.strided_stem = big.eval()
        return self

    @property
    def multiple(self) -> int:
        return self.fold * 2**self.depth

    @staticmethod
    def features(x: torch.Tensor) -> torch.Tensor:
        """(N, 3, H, W) in [-1, 1] -> (N, 5, H, W): RGB, |d/dx grey|, |d/dy grey| (scaled)."""
        g = x.mean(dim=1, keepdim=True)
        dx = F.pad((g[..., :, 1:] - g[..., :, :-1]).abs(), (1, 0, 0, 0))
        dy = F.pad((g[..., 1:, :] - g[..., :-1, :]).abs(), (0, 0, 1, 0))
        return torch.cat([x, 4 * dx, 4 * dy], dim=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        N, _, H, W = x.shape
        m = self.multiple
        ph, pw = (-H) % m, (-W) % m
        # 1. features and padding to a multiple of fold * 2**depth, (N, 5, H', W')
        f = self.features(x)
        if ph or pw:
            f = F.pad(f, (0, pw, 0, ph), mode="replicate")
        # 2. space to depth, (N, 5 * fold^2, H'/fold, W'/fold), then the stem
        #    (inference after fold_stem(): one strided conv on the full-resolution features)
        if self.strided_stem is not None:
            h = self.stem[1:](self.strided_stem(f))
        else:
            h = self.stem(F.pixel_unshuffle(f, self.fold))
        skips = [h]
        # 3. encoder, (N, base * 2^i, H'/(fold 2^i), ...)
        for blk in self.down:
            h = blk(F.max_pool2d(h, 2))
            skips.append(h)
        # 4. decoder with skips back to (N, base, H'/fold, W'/fold)
        for blk, skip in zip(self.up, reversed(skips[:-1])):
            h = F.interpolate(h, size=skip.shape[-2:], mode="nearest")
            h = blk(torch.cat([h, skip], dim=1))
        # 5. fold^2 logits per block -> one per pixel, (N, 1, H, W)
        out = F.pixel_shuffle(self.head(h), self.fold)
        return out[..., :H, :W]


def fuse_batchnorm(model: MosaicSegNet) -> MosaicSegNet:
    """Fold every BatchNorm into the convolution before it (inference only; same outputs, faster)."""
    model.eval()
    for module in model.modules():
        if not isinstance(module, nn.Sequential):
            continue
        layers = list(module)
        for i in range(len(layers) - 1):
            conv, bn = layers[i], layers[i + 1]
            if isinstance(conv, nn.Conv2d) and isinstance(bn, nn.BatchNorm2d):
                scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)
                with torch.no_grad():
                    conv.weight.mul_(scale[:, None, None, None])
                    bias = conv.bias if conv.bias is not None else torch.zeros_like(bn.running_mean)
                    conv.bias = nn.Parameter((bias - bn.running_mean) * scale + bn.bias)
                module[i + 1] = nn.Identity()
    return model


def segnet_kwargs(model: MosaicSegNet) -> dict:
    return {"fold": model.fold, "base": model.base, "depth": model.depth}


def save_segnet(model: MosaicSegNet, path: str | Path, extra: dict | None = None) -> None:
    """Save weights as safetensors with the constructor kwargs in the metadata (tessera.weights.save)."""
    from tessera import weights

    weights.save(model, path, "segnet", segnet_kwargs(model), extra)


def load_segnet(path: str | Path, *, fuse: bool = False) -> MosaicSegNet:
    """Build a :class:`MosaicSegNet` from a weight file or the shipped name ``detector`` (eval mode;
    ``fuse=True`` folds the BatchNorms into the convolutions and the space-to-depth step into the
    stem, for faster inference with the same outputs)."""
    from tessera import weights

    model = weights.load(path, expect="segnet")
    return fuse_batchnorm(model).fold_stem() if fuse else model
