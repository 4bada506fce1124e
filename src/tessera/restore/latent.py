"""Completion by latent search (Yeh et al. 2017, "Semantic Image Inpainting with Deep Generative
Models"), with a mosaic variant, and Poisson blending.

1. Find the latent code whose image fits the known pixels: minimize over z

       L(z) = L_context(z) + lam * L_perceptual(z)  [+ mosaic_weight * L_mosaic(z)]

   L_context = || W * (G(z) - y) ||_1 over the known pixels, where W_i (the paper's importance
   weight) is the fraction of unknown pixels in the ``window`` x ``window`` neighbourhood of known
   pixel i (0 on unknown pixels): known pixels next to the hole count most, far ones not at all.
   L_perceptual = log(1 - D(G(z))) = -softplus(logit): small when the critic believes G(z) is real.
   L_mosaic (our variant for mosaics) = the L1 distance, summed over the pixels of the mosaic cells
   inside the hole, between the cell averages of G(z) and the observed mosaic: the mosaic is a
   measurement of the hidden pixels, so it constrains z too.
   Adam over z for ``iters`` steps, ``restarts`` codes at once (one batch); z is kept in
   [-z_clip, z_clip] (the prior N(0, 1) has almost no mass beyond 3); the code with the lowest
   final loss wins.
2. Blend G(z) into the image with Poisson blending: inside the hole solve Laplace(x) = Laplace(G(z))
   with x = the image on the hole's border (Dirichlet), by conjugate gradients on the 5-point
   Laplacian, so that G(z)'s gradients are kept and its colour offset disappears.

:class:`LatentRestorer` puts both behind the pipeline's restorer signature: it cuts a square
around the hole ("face space", as the DCGAN saw whole face crops), resizes it to the generator's
size, searches z, resizes G(z) back and Poisson-blends it into the crop at native resolution.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from tessera.mosaic.lattice import lattice, point
from tessera.mosaic.region import Grid, is_point


@dataclass(frozen=True)
class LatentConfig:
    iters: int = 100  # Adam steps over z (the contextual loss is within ~3% of its 300-step value)
    restarts: int = 8  # codes searched at once; the best is kept
    lam: float = 0.003  # weight of the perceptual (critic) loss; the paper's 0.003
    lr: float = 0.1  # Adam step size on z
    window: int = 7  # importance-weight neighbourhood (the paper's 7 at 64x64)
    mosaic_weight: float = 1.0  # weight of the mosaic loss (mosaic regions only)
    z_clip: float = 3.0  # keep every coordinate of z in [-z_clip, z_clip]
    margin: float = 1.5  # the square cut around the hole is at least margin x its longer side
    seed: int = 0

    def __post_init__(self) -> None:
        if self.iters < 0 or self.restarts < 1 or self.window < 1 or self.window % 2 == 0:
            raise ValueError("latent search needs iters >= 0, restarts >= 1 and an odd window >= 1")


# ----------------------------------------------------------------------------- losses


def importance_weights(known: torch.Tensor, window: int = 7) -> torch.Tensor:
    """W (..., H, W): for each known pixel the fraction of unknown pixels among the window x window
    pixels centred on it (neighbours outside the image count as known), 0 on unknown pixels."""
    k = known.float()
    shape = k.shape
    k4 = k.reshape(-1, 1, *shape[-2:])
    unknown = F.avg_pool2d(1.0 - k4, window, stride=1, padding=window // 2, count_include_pad=True)
    return (unknown * k4).reshape(shape)


def contextual_loss(gz: torch.Tensor, y: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """|| W * (G(z) - y) ||_1 per sample: gz (R, C, H, W), y (C, H, W) or (R, C, H, W), weights (H, W) -> (R,)."""
    return (weights * (gz - y).abs()).flatten(1).sum(1)


def perceptual_loss(logits: torch.Tensor) -> torch.Tensor:
    """log(1 - D(G(z))) with D = sigmoid(logit), computed stably as -softplus(logit). (R,) -> (R,)."""
    return -F.softplus(logits)


@dataclass
class MosaicTarget:
    """The observed mosaic as a linear measurement of an (h, w) image: cell values ``rows @ x @ cols.T``
    (rows (ky, h), cols (kx, w) average or pick the centre), compared with ``values`` (C, ky, kx) on the
    cells where ``weight`` (ky, kx) = the cell's pixel count (0 for cells not wholly hidden)."""

    rows: torch.Tensor
    cols: torch.Tensor
    values: torch.Tensor
    weight: torch.Tensor

    @property
    def size(self) -> tuple[int, int]:
        return self.rows.shape[1], self.cols.shape[1]


def _axis_operator(n: int, cell: int, phase: int, sampling: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    _, starts, ends, centres = lattice(n, cell, phase)
    if is_point(sampling):
        centres = point(starts, ends, sampling)
    op = np.zeros((len(starts), n), np.float32)
    for i, (s, e, c) in enumerate(zip(starts, ends, centres)):
        if is_point(sampling):
            op[i, c] = 1.0
        else:
            op[i, s:e] = 1.0 / max(e - s, 1)
    return op, ends - starts, centres


def mosaic_target(observed: np.ndarray, mask: np.ndarray, grid: Grid) -> MosaicTarget | None:
    """The mosaic seen in ``observed`` (uint8 (h, w, 3)) on the cells of ``grid`` that lie wholly in
    ``mask``, or None when no cell does."""
    h, w = mask.shape
    rows, len_y, cy = _axis_operator(h, grid.cell_h, grid.phase_y, grid.sampling)
    cols, len_x, cx = _axis_operator(w, grid.cell_w, grid.phase_x, grid.sampling)
    iy = np.repeat(np.arange(len(len_y)), len_y)
    ix = np.repeat(np.arange(len(len_x)), len_x)
    outside = np.zeros((len(len_y), len(len_x)), np.int64)
    np.add.at(outside, (iy[:, None], ix[None, :]), (~mask).astype(np.int64))
    full = outside == 0
    if not full.any():
        return None
    values = observed[cy][:, cx].astype(np.float32) / 127.5 - 1.0  # (ky, kx, 3): a wholly hidden cell is flat
    weight = np.where(full, len_y[:, None] * len_x[None, :], 0).astype(np.float32)
    return MosaicTarget(
        torch.from_numpy(rows), torch.from_numpy(cols), torch.from_numpy(values).permute(2, 0, 1).contiguous(), torch.from_numpy(weight)
    )


def mosaic_loss(x: torch.Tensor, target: MosaicTarget) -> torch.Tensor:
    """Sum over the pixels of wholly hidden cells of |cell value of x - observed| (x (R, C, h, w)) -> (R,)."""
    cells = target.rows @ x @ target.cols.T  # (R, C, ky, kx)
    return (target.weight * (cells - target.values).abs()).flatten(1).sum(1)


# ----------------------------------------------------------------------------- search


@dataclass
class LatentResult:
    z: torch.Tensor  # (z_dim,) the best code
    image: torch.Tensor  # (C, S, S) G(z) in [-1, 1]
    best: int  # its restart index
    history: np.ndarray  # (iters + 1, restarts): the total loss before each step and after the last
    context: np.ndarray  # (iters + 1, restarts): the contextual loss alone


def search_latent(
    generator: torch.nn.Module,
    critic: torch.nn.Module | None,
    y: torch.Tensor,
    known: torch.Tensor,
    cfg: LatentConfig = LatentConfig(),
    mosaic: MosaicTarget | None = None,
    z0: torch.Tensor | None = None,
) -> LatentResult:
    """Adam over ``cfg.restarts`` latent codes so that G(z) fits ``y`` (C, S, S) on ``known`` (S, S)
    (and the mosaic, whose size may differ from S: G(z) is resized bilinearly to it)."""
    generator.eval()
    if critic is not None:
        critic.eval()
    params = list(generator.parameters()) + (list(critic.parameters()) if critic is not None else [])
    flags = [p.requires_grad for p in params]
    for p in params:
        p.requires_grad_(False)
    try:
        z_dim = generator.z_dim
        if z0 is None:
            gen = torch.Generator().manual_seed(cfg.seed)
            z0 = torch.randn(cfg.restarts, z_dim, generator=gen).clamp_(-cfg.z_clip, cfg.z_clip)
        z = z0.clone().requires_grad_(True)
        opt = torch.optim.Adam([z], lr=cfg.lr)
        W = importance_weights(known, cfg.window)
        history, context = [], []

        def losses() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
            gz = generator(z)  # (R, C, S, S)
            lc = contextual_loss(gz, y, W)
            total = lc
            if critic is not None and cfg.lam:
                total = total + cfg.lam * perceptual_loss(critic(gz))
            if mosaic is not None and cfg.mosaic_weight:
                up = gz if tuple(gz.shape[-2:]) == mosaic.size else F.interpolate(gz, size=mosaic.size, mode="bilinear", align_corners=False)
                total = total + cfg.mosaic_weight * mosaic_loss(up, mosaic)
            return total, lc, gz

        for _ in range(cfg.iters):
            total, lc, _ = losses()
            history.append(total.detach().numpy().copy())
            context.append(lc.detach().numpy().copy())
            opt.zero_grad(set_to_none=True)
            total.sum().backward()
            opt.step()
            with torch.no_grad():
                z.clamp_(-cfg.z_clip, cfg.z_clip)
        with torch.no_grad():
            total, lc, gz = losses()
        history.append(total.numpy().copy())
        context.append(lc.numpy().copy())
        best = int(torch.argmin(total))
        return LatentResult(z.detach()[best].clone(), gz[best].clone(), best, np.stack(history), np.stack(context))
    finally:
        for p, f in zip(params, flags):
            p.requires_grad_(f)


# ----------------------------------------------------------------------------- Poisson blending


def _shift(a: np.ndarray, dy: int, dx: int) -> np.ndarray:
    """b[y, x] = a[y + dy, x + dx], zero where that falls outside."""
    H, W = a.shape[:2]
    b = np.zeros_like(a)
    ys, yd = (slice(dy, None), slice(0, H - dy)) if dy >= 0 else (slice(0, H + dy), slice(-dy, None))
    xs, xd = (slice(dx, None), slice(0, W - dx)) if dx >= 0 else (slice(0, W + dx), slice(-dx, None))
    b[yd, xd] = a[ys, xs]
    return b


_OFFSETS = ((-1, 0), (1, 0), (0, -1), (0, 1))


def harmonic_fill(values: np.ndarray, mask: np.ndarray, *, tol: float = 1e-6, max_iter: int = 5000) -> np.ndarray:
    """``values`` (H, W, C) float with the pixels of ``mask`` replaced by the solution of Laplace(x) = 0
    (5-point stencil over the pixel pairs inside the image, i.e. Neumann at the image border) that
    equals ``values`` on the known pixels next to the mask. Every mask component must touch a known
    pixel. Conjugate gradients to relative residual ``tol``, started from the solution at half
    resolution (recursively), so that only the fine detail is left to iterate."""
    H, W = mask.shape
    v = values.astype(np.float64)
    mm = mask[..., None]
    ones = np.ones((H, W), bool)
    deg = sum(_shift(ones, dy, dx).astype(np.float64) for dy, dx in _OFFSETS)[..., None]
    nbr = [_shift(mask, dy, dx)[..., None] for dy, dx in _OFFSETS]  # the neighbour exists and is unknown
    known_v = v * ~mm
    b = sum(_shift(known_v, dy, dx) for dy, dx in _OFFSETS) * mm  # known neighbours' values

    def A(x: np.ndarray) -> np.ndarray:  # x is zero outside the mask
        y = deg * x
        for (dy, dx), nb in zip(_OFFSETS, nbr):
            y -= nb * _shift(x, dy, dx)
        return y * mm

    # initial guess: the half-resolution solution, upsampled
    x = np.zeros_like(v)
    if min(H, W) >= 16 and mask.sum() > 256:
        h2, w2 = (H + 1) // 2, (W + 1) // 2
        pad = ((0, 2 * h2 - H), (0, 2 * w2 - W))
        k = np.pad((~mask).astype(np.float64), pad).reshape(h2, 2, w2, 2).sum((1, 3))
        vs = np.pad(known_v, pad + ((0, 0),)).reshape(h2, 2, w2, 2, -1).sum((1, 3))
        coarse_mask = k == 0
        ok = np.isin(cv2.connectedComponents(coarse_mask.astype(np.uint8), connectivity=4)[1], _anchored_labels(coarse_mask))
        if coarse_mask.any() and ok[coarse_mask].all():
            coarse = harmonic_fill(vs / np.maximum(k, 1)[..., None], coarse_mask, tol=1e-3, max_iter=max_iter)
            x = cv2.resize(coarse.astype(np.float32), (w2 * 2, h2 * 2), interpolation=cv2.INTER_LINEAR)[:H, :W].reshape(H, W, -1).astype(np.float64)
    x = x * mm
    r = b - A(x)
    p = r.copy()
    rs = (r * r).sum(axis=(0, 1))
    bn = np.sqrt((b * b).sum(axis=(0, 1))) + 1e-12
    for _ in range(max_iter):
        if np.all(np.sqrt(rs) <= tol * bn):
            break
        Ap = A(p)
        alpha = rs / np.maximum((p * Ap).sum(axis=(0, 1)), 1e-300)
        x += alpha * p
        r -= alpha * Ap
        rs_new = (r * r).sum(axis=(0, 1))
        p = r + (rs_new / np.maximum(rs, 1e-300)) * p
        rs = rs_new
    return np.where(mm, x, v)


def _anchored_labels(mask: np.ndarray) -> np.ndarray:
    """Labels (4-connected) of the components of ``mask`` that touch a pixel outside it."""
    _, labels = cv2.connectedComponents(mask.astype(np.uint8), connectivity=4)
    ring = cv2.dilate((~mask).astype(np.uint8), np.array([[0, 1, 0], [1, 1, 1], [0, 1, 0]], np.uint8)).astype(bool) & mask
    return np.unique(labels[ring])


def poisson_blend(target: np.ndarray, source: np.ndarray, mask: np.ndarray, *, tol: float = 1e-5) -> np.ndarray:
    """Seamless cloning (Perez et al. 2003): inside ``mask`` the x with Laplace(x) = Laplace(source)
    (5-point stencil over pixel pairs inside the image) and x = target on the known pixels next to
    the mask; ``target`` elsewhere. Solved as x = source + the harmonic fill of (target - source)
    (:func:`harmonic_fill`). target, source: (H, W[, C]) uint8 or float; returns float64 of that
    shape. A mask component that touches no known pixel keeps the source as it is."""
    t = np.asarray(target, np.float64)
    s = np.asarray(source, np.float64)
    flat = t.ndim == 2
    if flat:
        t, s = t[..., None], s[..., None]
    m = np.asarray(mask, bool)
    out = t.copy()
    if m.any():
        _, labels = cv2.connectedComponents(m.astype(np.uint8), connectivity=4)
        anchored = m & np.isin(labels, _anchored_labels(m))
        out[m & ~anchored] = s[m & ~anchored]
        if anchored.any():
            d = harmonic_fill(t - s, anchored, tol=tol)
            out[anchored] = s[anchored] + d[anchored]
    return out[..., 0] if flat else out


# ----------------------------------------------------------------------------- the restorer


def square_box(mask: np.ndarray, margin: float) -> tuple[int, int, int]:
    """(y0, x0, side) of a square around ``mask``'s bounding box: side = max(margin x its longer side,
    the crop's shorter side), at least the longer side, centred on the box and moved inside the
    crop as far as it fits (it may stick out when the crop is narrower than the side)."""
    ys, xs = np.nonzero(mask)
    H, W = mask.shape
    bh, bw = ys.max() - ys.min() + 1, xs.max() - xs.min() + 1
    side = int(max(bh, bw, min(max(bh, bw) * margin, max(H, W)), min(H, W)))
    cy, cx = (ys.min() + ys.max() + 1) / 2, (xs.min() + xs.max() + 1) / 2

    def place(c: float, n: int) -> int:
        lo = int(round(c - side / 2))
        if side <= n:
            return min(max(lo, 0), n - side)
        return int(round((n - side) / 2))  # centred, sticking out on both sides

    return place(cy, H), place(cx, W), side


class LatentRestorer:
    """The restorer behind ``model='dcgan'``: (crop uint8 (H, W, 3), mask, grid, kind) -> uint8 (H, W, 3)."""

    def __init__(self, model: torch.nn.Module, cfg: LatentConfig = LatentConfig(), name: str = "dcgan") -> None:
        self.model = model.eval()
        self.cfg = cfg
        self.name = name
        self.last: LatentResult | None = None
        self.seconds: dict[str, float] = {}  # the last call's time in the search and in the blend

    def __call__(self, image: np.ndarray, mask: np.ndarray, grid: Grid | None, kind: str) -> np.ndarray:
        if not mask.any():
            return image.copy()
        H, W = mask.shape
        S = int(self.model.size)
        # 1. a square around the hole, padded by edge replication where it sticks out
        y0, x0, side = square_box(mask, self.cfg.margin)
        pt, pl = max(-y0, 0), max(-x0, 0)
        pb, pr = max(y0 + side - H, 0), max(x0 + side - W, 0)
        img = cv2.copyMakeBorder(image, pt, pb, pl, pr, cv2.BORDER_REPLICATE)
        hid = np.pad(mask, ((pt, pb), (pl, pr)))
        pad = np.pad(np.zeros_like(mask), ((pt, pb), (pl, pr)), constant_values=True)
        ys, xs = y0 + pt, x0 + pl
        sq, sq_hid, sq_pad = img[ys : ys + side, xs : xs + side], hid[ys : ys + side, xs : xs + side], pad[ys : ys + side, xs : xs + side]
        # 2. down to the generator's size: a pixel is known when every pixel under it is
        interp = cv2.INTER_AREA if side > S else cv2.INTER_CUBIC
        y = cv2.resize(sq, (S, S), interpolation=interp).astype(np.float32) / 127.5 - 1.0
        unknown = cv2.resize((sq_hid | sq_pad).astype(np.float32), (S, S), interpolation=cv2.INTER_AREA if side > S else cv2.INTER_LINEAR)
        known = torch.from_numpy(unknown < 1e-3)
        target = None
        if kind == "mosaic" and grid is not None:
            g = Grid(grid.cell_h, grid.cell_w, (grid.phase_y + ys - pt) % grid.cell_h, (grid.phase_x + xs - pl) % grid.cell_w, grid.sampling)
            target = mosaic_target(sq, sq_hid & ~sq_pad, g)
        # 3. search z
        t0 = time.perf_counter()
        res = search_latent(self.model.generator, self.model.critic, torch.from_numpy(y).permute(2, 0, 1), known, self.cfg, target)
        self.last = res
        t1 = time.perf_counter()
        # 4. back to native size, Poisson-blended into the hole
        gz = ((res.image.permute(1, 2, 0).numpy() + 1.0) * 127.5).clip(0, 255).astype(np.float32)
        up = cv2.resize(gz, (side, side), interpolation=cv2.INTER_CUBIC if side > S else cv2.INTER_AREA)
        blended = poisson_blend(sq, up, sq_hid & ~sq_pad)
        self.seconds = {"search": t1 - t0, "blend": time.perf_counter() - t1}
        out = img.copy()
        piece = out[ys : ys + side, xs : xs + side]
        piece[sq_hid] = np.clip(np.rint(blended[sq_hid]), 0, 255).astype(np.uint8)
        out = out[pt : pt + H, pl : pl + W]
        return np.where(mask[..., None], out, image)
