"""The two-sample critic: a fresh small CNN trained to tell real crops from restored ones
(crops of train cases), scored on held-out crops: 50 % accuracy = indistinguishable.

Crops are RGB + mask taken at seeded positions inside the hidden region, the same positions for
the photo and its restoration.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from tessera.evaluate.cases import Case


def region_crops(image: np.ndarray, mask: np.ndarray, n: int, size: int, rng: np.random.Generator) -> np.ndarray:
    """(n, size, size, 4) uint8 crops (RGB + mask * 255) whose centre pixel lies in ``mask``,
    at seeded positions (the same for the same rng state, so real and restored crops pair up)."""
    H, W = mask.shape
    if H < size or W < size:
        raise ValueError(f"critic crops of {size} px need an image at least that large, got {H}x{W}")
    ys, xs = np.nonzero(mask)
    out = np.empty((n, size, size, 4), np.uint8)
    for k in range(n):
        i = rng.integers(len(ys))
        y0 = min(max(int(ys[i]) - size // 2, 0), H - size)
        x0 = min(max(int(xs[i]) - size // 2, 0), W - size)
        out[k, ..., :3] = image[y0 : y0 + size, x0 : x0 + size, :3]
        out[k, ..., 3] = mask[y0 : y0 + size, x0 : x0 + size] * 255
    return out


def pair_crops(
    restored: Sequence[np.ndarray], originals: Sequence[np.ndarray], masks: Sequence[np.ndarray], *, per_case: int = 8, size: int = 32, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Real and restored crops at the same seeded positions of each case: two (N, size, size, 4) arrays."""
    rng = np.random.default_rng(seed)
    real, fake = [], []
    for out, clean, mask in zip(restored, originals, masks):
        state = rng.bit_generator.state
        real.append(region_crops(clean, mask, per_case, size, rng))
        rng.bit_generator.state = state
        fake.append(region_crops(out, mask, per_case, size, rng))
    return np.concatenate(real), np.concatenate(fake)


def _critic(width: int):
    from torch import nn

    return nn.Sequential(
        nn.Conv2d(4, width, 3, 1, 1), nn.LeakyReLU(0.2),
        nn.Conv2d(width, 2 * width, 3, 2, 1), nn.LeakyReLU(0.2),
        nn.Conv2d(2 * width, 2 * width, 3, 2, 1), nn.LeakyReLU(0.2),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(2 * width, 1),
    )


def _tensor(crops: np.ndarray):
    import torch

    t = torch.from_numpy(crops).permute(0, 3, 1, 2).float() / 127.5 - 1
    return t


def two_sample_critic(
    train_real: np.ndarray, train_fake: np.ndarray, test_real: np.ndarray, test_fake: np.ndarray,
    *, steps: int = 300, batch: int = 64, width: int = 16, lr: float = 1e-3, seed: int = 0,
) -> float:
    """Accuracy (0-1) on the test crops of a fresh critic trained ``steps`` Adam steps to tell
    the train real crops from the train restored ones (half of each batch each). 0.5 = the
    restorations cannot be told from photos by this critic; 1.0 = always told apart."""
    import torch
    import torch.nn.functional as F

    if min(len(train_real), len(train_fake), len(test_real), len(test_fake)) == 0:
        raise ValueError("the two-sample critic needs real and restored crops for training and testing")
    g = torch.Generator().manual_seed(seed)
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        net = _critic(width)
    opt = torch.optim.Adam(net.parameters(), lr=lr, betas=(0.5, 0.999))
    tr, tf = _tensor(train_real), _tensor(train_fake)
    half = max(batch // 2, 1)
    y = torch.cat([torch.ones(half), torch.zeros(half)])
    net.train()
    for _ in range(steps):
        ir = torch.randint(len(tr), (half,), generator=g)
        jf = torch.randint(len(tf), (half,), generator=g)
        logits = net(torch.cat([tr[ir], tf[jf]]))[:, 0]
        loss = F.binary_cross_entropy_with_logits(logits, y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    net.eval()
    with torch.no_grad():
        pr = torch.cat([net(c)[:, 0] for c in _tensor(test_real).split(256)])
        pf = torch.cat([net(c)[:, 0] for c in _tensor(test_fake).split(256)])
    return float(0.5 * ((pr > 0).float().mean() + (pf <= 0).float().mean()))


def critic_accuracy(model: str, train_cases: Sequence[Case], val_cases: Sequence[Case], val_outputs: Sequence[np.ndarray], *, steps: int = 300, seed: int = 0) -> float:
    """The two-sample test: a fresh critic learns to tell real crops from ``model``'s restorations
    of ``train_cases``; its accuracy on the crops of the val cases and their restorations
    ``val_outputs`` (0.5 = indistinguishable)."""
    from tessera.restore.pipeline import restore_image
    from tessera.restore.restorer import from_spec

    restorer = from_spec(model)
    train_out = [
        restore_image(c.degraded, c.mask, restorer=restorer, grid=c.grid, kind="mosaic" if c.grid else "auto").image for c in train_cases
    ]
    tr_real, tr_fake = pair_crops(train_out, [c.clean for c in train_cases], [c.mask for c in train_cases], seed=seed + 1)
    va_real, va_fake = pair_crops(val_outputs, [c.clean for c in val_cases], [c.mask for c in val_cases], seed=seed)
    return two_sample_critic(tr_real, tr_fake, va_real, va_fake, steps=steps, seed=seed)
