"""Feather inversion: recover the part of the photo that a feathered mosaic leaves visible.

A feathered (or soft-edged) mosaic blends its cells into the photo over a band around the fully
mosaicked cells (the *core*): ``observed = w * cell + (1 - w) * original`` with ``w`` falling from 1
at the core to 0 outside. Where ``w < 1`` the original is still there, scaled by ``1 - w``. Given
``w`` the cell values follow in closed form (a mean cell is the mean of the original over the whole
cell, so ``cell = sum(o / (1 - w)) / sum(1 / (1 - w))`` over its pixels; a centre-sampled cell is the
observed centre pixel) and then ``original = (o - w * cell) / (1 - w)``.

``w`` is not known: :func:`invert_feather` tries a family of profiles as a function of the distance
from the core (linear over N px, as tessera's and most editors' feathers, and Gaussian edges of
sigma s, as a mosaic pasted through a blurred mask) and keeps the one that best explains how much
of the photo's texture shows at each distance (the mean step between neighbours in one cell at
one distance, where the cell value cancels, is (1 - w) times the photo's, measured beyond the
band), or none when no profile beats "no feather". The recovered pixels are noisy where ``1 - w`` is small (rounding
and codec noise is divided by it); :class:`FeatherFit.trust` weighs them against a restorer's guess
by their expected error (inverse variance).
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from tessera.mosaic.lattice import Lattice
from tessera.mosaic.region import Grid, is_point

LINEAR = tuple(range(1, 11))  # linear feathers of 1..10 px (weight (N + 1 - d) / (N + 1) at Chebyshev distance d)
GAUSSIAN = (1.0, 1.5, 2.0, 3.0, 4.0)  # sigmas of Gaussian-blurred paste edges
MIN_GAIN = 0.25  # a profile must explain the visibility per ring this much better (relative) than no feather
RING = 8  # px: a feather's half-weight line lies at most this (+ one cell, partly feathered) outside the flat cells
SPLIT_SHARE = 0.2  # cells split by a straight line among the rough ones: more, and the lattice does not fit
DEEP_FLAT = 0.9  # share of flat cells needed deep inside the mask (else the lattice does not fit: no inversion)
LOSSY = 0.25  # core cells spread more than this (grey levels): the input went through a lossy codec
CODEC_FACTOR = 4.0
MODEL_SIGMA = 12.0  # grey levels: the typical error of a restorer's guess in a band pixel


@dataclass(frozen=True)
class FeatherFit:
    """profile: ('linear', N) or ('gaussian', sigma). weight: float (H, W), 1 on the core cells.
    recovered: float (H, W, 3), the original where 0 < weight < 1, else the observation. trust:
    (H, W) in [0, 1], how much to believe ``recovered`` over a restorer (0 on the core). core:
    bool (H, W), the fully mosaicked cells. noise: the observation's noise (grey levels)."""

    profile: tuple[str, float]
    weight: np.ndarray
    recovered: np.ndarray
    trust: np.ndarray
    core: np.ndarray
    noise: float


class _Lattice(Lattice):
    """float64 sums (the recovery divides by them)."""

    def sums(self, x: np.ndarray) -> np.ndarray:
        return super().sums(np.asarray(x, np.float64))


def _core(obs: np.ndarray, mask: np.ndarray, cells: _Lattice) -> tuple[np.ndarray, float]:
    """The fully mosaicked pixels: those in ``mask`` of the cells (at least half in the mask) whose
    pixels in the mask are (nearly) constant (a cell cut by a hard-edged shape is still a clean
    cell), and the noise level there."""
    n = cells.counts[..., None].astype(np.float64)
    mk = mask[..., None].astype(np.float64)
    n_in = cells.sums(mk)
    eligible = n_in[..., 0] >= np.maximum(0.5 * cells.counts, 1)
    inside = n_in[..., 0] >= cells.counts - 0.5
    if not eligible.any():
        return np.zeros(mask.shape, bool), 0.0
    mean = cells.sums(obs * mk) / np.maximum(n_in, 1)
    var = np.maximum(cells.sums(obs * obs * mk) / np.maximum(n_in, 1) - mean * mean, 0.0)
    std = np.sqrt(var).max(axis=2)
    noise = float(np.percentile(std[eligible], 20))
    flat = eligible & (std <= max(1.0, 2.0 * noise + 0.5))
    # the lattice must fit: cells deeper inside than any feather reaches are all flat (a lattice that
    # only roughly fits a mosaic with non-integer cells leaves stripes of cells cut by true edges)
    depth = cv2.distanceTransform(np.pad(mask, 1).astype(np.uint8), cv2.DIST_C, 3)[1:-1, 1:-1]
    deep = cells.sums(depth > max(LINEAR) + 1) >= cells.counts
    if deep.sum() >= 4:
        fits = flat[deep].mean() >= DEEP_FLAT
    else:
        fits = flat[eligible].mean() >= 0.2
    # ... and cells that are not flat must not be two flat parts split by a straight line (a lattice
    # off by a pixel from the mosaic's true cells), but the photo showing through
    rough = inside & ~flat
    if fits and rough.any():
        tol2 = (2.0 * noise + 1.0) ** 2
        split = np.zeros_like(rough)
        for axis in (0, 1):  # constant along rows within the cell, or along columns
            starts, index, size = (cells.cs, cells.ci, cells.ce - cells.cs) if axis == 1 else (cells.rs, cells.ri, cells.re - cells.rs)
            part = np.add.reduceat(obs, starts, axis=axis)
            part = part / (size[None, :, None] if axis == 1 else size[:, None, None])
            back = part[:, index] if axis == 1 else part[index]
            resid = cells.sums((obs - back) ** 2) / n
            split |= resid.max(axis=2) <= tol2
        split &= rough
        fits = split.sum() < max(2, SPLIT_SHARE * rough.sum())
    return (cells.expand(flat) & mask if fits else np.zeros(mask.shape, bool)), noise


def _weights(core: np.ndarray, profile: tuple[str, float], dist: np.ndarray) -> np.ndarray:
    kind, p = profile
    if kind == "linear":
        w = np.clip(1.0 - dist / (p + 1.0), 0.0, 1.0)
    else:
        # a shape pasted through a Gaussian edge: alpha ~ 1 about 2 sigma inside the shape's edge
        r = int(round(2 * p))
        grown = cv2.dilate(core.astype(np.uint8), np.ones((2 * r + 1, 2 * r + 1), np.uint8)) if r else core.astype(np.uint8)
        w = cv2.GaussianBlur(grown.astype(np.float32), (0, 0), p).astype(np.float64)
        w = np.where(w < 0.02, 0.0, w)
    w[core] = 1.0
    return np.minimum(w, 1.0)


def _recover(obs: np.ndarray, w: np.ndarray, grid: Grid, cells: _Lattice) -> np.ndarray:
    band = (w > 0) & (w < 1)
    wc = np.where(band, w, 0.0)[..., None]
    inv = 1.0 / (1.0 - np.minimum(wc, 0.98))
    if is_point(grid.sampling):
        c = cells.points(obs)
    else:
        c = cells.sums(obs * inv) / np.maximum(cells.sums(np.broadcast_to(inv, obs.shape).copy()), 1e-9)
    cell = cells.expand(c)
    x = (obs - wc * cell) * inv
    return np.where(band[..., None], np.clip(x, 0.0, 255.0), obs)


def _ring_visibility(obs: np.ndarray, dist: np.ndarray, grid: Grid, cells: _Lattice, reach: int) -> tuple[np.ndarray, np.ndarray]:
    """Per ring d = 1..reach around the core: how much of the photo's texture shows, 1 - w(d),
    measured as the mean absolute step between neighbours in the same cell at the same distance
    (the cell value cancels) over the same in the rings beyond (reach, 2 reach] (w = 0 there).
    Returns (visibility (reach,), pixel pairs per ring (reach,))."""
    g = obs.mean(axis=2)
    d = np.rint(dist).astype(np.int64)
    steps, rings = [], []
    for axis, index in ((1, cells.ci), (0, cells.ri)):
        diff = np.abs(np.diff(g, axis=axis))
        a = d[:, 1:] if axis == 1 else d[1:]
        b = d[:, :-1] if axis == 1 else d[:-1]
        same_cell = (index[1:] == index[:-1])
        same_cell = same_cell[None, :] if axis == 1 else same_cell[:, None]
        ok = (a == b) & same_cell & (a > 0) & (a <= 2 * reach)
        steps.append(diff[ok])
        rings.append(a[ok])
    st, rg = np.concatenate(steps), np.concatenate(rings)
    sums = np.bincount(rg, st, minlength=2 * reach + 1)
    counts = np.bincount(rg, minlength=2 * reach + 1).astype(np.float64)
    out_n = counts[reach + 1 :].sum()
    if out_n < 20:
        return np.ones(reach), np.zeros(reach)
    ref = sums[reach + 1 :].sum() / out_n + 1e-6
    vis = sums[1 : reach + 1] / np.maximum(counts[1 : reach + 1], 1) / ref
    return np.clip(vis, 0.0, 1.5), counts[1 : reach + 1]


def invert_feather(
    observed: np.ndarray, mask: np.ndarray, grid: Grid, *, model_sigma: float = MODEL_SIGMA
) -> FeatherFit | None:
    """Fit a feather profile to the band around the mosaic under ``mask`` (bool (H, W)) of
    ``observed`` (RGB uint8) with lattice ``grid`` and recover the original there. None when the
    mosaic has no fully mosaicked cells or no profile explains the band better than no feather."""
    obs = observed.astype(np.float64)
    cells = _Lattice(mask.shape, grid)
    core, noise = _core(obs, mask, cells)
    if not core.any() or core.all():
        return None
    dist = cv2.distanceTransform((~core).astype(np.uint8), cv2.DIST_C, 3).astype(np.float64)
    rest = mask & ~core
    if rest.any() and (dist[rest] > RING + max(grid.cell_h, grid.cell_w)).mean() > 0.05:
        return None  # the rest of the mask is no thin ring around the mosaic: not a feather
    reach = max(LINEAR) + 2
    vis, n = _ring_visibility(obs, dist, grid, cells, reach)
    if n.sum() < 20:
        return None
    ring = np.clip(np.rint(dist).astype(np.int64), 0, reach + 1)
    best, best_err = None, float((n * (vis - 1.0) ** 2).sum())  # no feather: everything visible beyond the core
    base = best_err
    for profile in [("linear", float(k)) for k in LINEAR] + [("gaussian", s) for s in GAUSSIAN]:
        w = _weights(core, profile, dist)
        wsum = np.bincount(ring.ravel(), w.ravel(), minlength=reach + 2)[1 : reach + 1]
        cnt = np.bincount(ring.ravel(), minlength=reach + 2)[1 : reach + 1]
        pred = 1.0 - wsum / np.maximum(cnt, 1)
        err = float((n * (vis - pred) ** 2).sum())
        if err < best_err:
            best, best_err, best_w = profile, err, w
    if best is None or best_err > (1.0 - MIN_GAIN) * base:
        return None
    best_x = _recover(obs, best_w, grid, cells)
    band = (best_w > 0) & (best_w < 1)
    # rounding / codec noise divided by 1 - w. A codec is measured on the flat core cells, but it errs
    # several times more on the photo's texture in the band: lossy input counts CODEC_FACTOR x that
    sigma_o = 0.5 if noise < LOSSY else CODEC_FACTOR * noise
    sigma_r = sigma_o / np.maximum(1.0 - best_w, 1e-3)
    trust = np.where(band, model_sigma**2 / (model_sigma**2 + sigma_r**2), 0.0)
    return FeatherFit(best, best_w, best_x, trust, core, noise)
