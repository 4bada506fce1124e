"""Make a restored image agree with the mosaic it came from.

For a mean mosaic every cell of the restoration must average to the observed cell value, per
channel; for a point-sampled mosaic (centre, other centre or first pixel) that pixel must equal it. We correct with a
smooth field first (iterative back-projection: the per-cell residual is interpolated bilinearly
through the cell centres and added, so no new cell edges appear), then remove what is left with an
exact per-cell step that respects clipping to [0, 255] and rounding to integers.

Only cells that lie entirely inside ``mask`` are constrained (a cell cut by a feathered edge was
not observed as a clean cell value).

Compressed input (JPEG, H.264): the observed cell values are only known up to the codec's noise,
and forcing them exactly puts the lattice's edges back. :func:`codec_tolerance` measures that noise
on the observation itself (a mosaic cell is flat, so what varies inside it is the codec), and
``project(..., tolerance=t)`` corrects each cell only by what lies beyond +-t, with the smooth
field alone (no per-cell step, no rounding nudges).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tessera.mosaic.lattice import Lattice
from tessera.mosaic.region import Grid, is_point


@dataclass(frozen=True)
class Consistency:
    """Result of a projection: the image and how far it still is from the observation (grey levels)."""

    image: np.ndarray
    residual_max: float
    residual_mean: float
    cells: int


def _interp_matrix(n: int, centres: np.ndarray) -> np.ndarray:
    """(n, k) matrix of linear-interpolation weights through the k cell centres (constant beyond them)."""
    k = len(centres)
    M = np.zeros((n, k), dtype=np.float64)
    if k == 1:
        M[:, 0] = 1.0
        return M
    pos = np.arange(n, dtype=np.float64)
    j = np.clip(np.searchsorted(centres, pos, side="right") - 1, 0, k - 2)
    c0, c1 = centres[j], centres[j + 1]
    t = np.clip((pos - c0) / np.maximum(c1 - c0, 1e-9), 0.0, 1.0)
    M[np.arange(n), j] = 1.0 - t
    M[np.arange(n), j + 1] = t
    return M


class _Cells(Lattice):
    """The lattice of one grid over an (H, W) image, with interpolation between cell middles."""

    def __init__(self, shape: tuple[int, int], grid: Grid):
        super().__init__(shape, grid)
        ry, rx = self.positions("mean")
        self.Wy = _interp_matrix(shape[0], ry)
        self.Wx = _interp_matrix(shape[1], rx)

    def smooth(self, per_cell: np.ndarray) -> np.ndarray:
        """(nR, nC, z) per-cell values -> (H, W, z), bilinear through the cell middles (two matrix
        products: Wy @ values, then @ Wx^T, each channel side by side)."""
        nR, nC, z = per_cell.shape
        rows = (self.Wy @ per_cell.reshape(nR, nC * z)).reshape(-1, nC, z).transpose(0, 2, 1)  # (H, z, nC)
        return (rows @ self.Wx.T).transpose(0, 2, 1)


def observed_cells(observed: np.ndarray, mask: np.ndarray, grid: Grid) -> tuple[np.ndarray, np.ndarray]:
    """The cell values read off the degraded image (mean or centre pixel), and which cells are constrained."""
    cells = _Cells(mask.shape, grid)
    return cells.values(observed), cells.inside(mask)


def project(
    restored: np.ndarray,
    observed: np.ndarray,
    mask: np.ndarray,
    grid: Grid,
    *,
    smooth_iters: int = 6,
    tolerance: float | np.ndarray = 0.0,
) -> Consistency:
    """Adjust ``restored`` (uint8 (H, W, 3)) inside ``mask`` so that re-mosaicking it with ``grid``
    gives ``observed`` again. Pixels outside the constrained cells are not changed. ``tolerance``
    (grey levels; one number or one per cell (nR, nC), see :func:`cell_tolerance`): accept cells
    within +-tolerance of the observation and correct the rest smoothly up to that band (compressed
    input, lattices that fit only roughly); cells with tolerance 0 are made exact.

    Only the constrained cells and one cell around them are worked on (the smooth correction of a
    constrained pixel interpolates between its own cell's middle and its neighbours'), so a region
    in a large image costs what its box costs; the result is the same as on the whole image."""
    tol = np.asarray(tolerance, np.float64)
    if (tol < 0).any():
        raise ValueError(f"tolerance must be >= 0, got {tolerance}")
    lat = Lattice(mask.shape, grid)
    box = _work_box(lat, lat.inside(mask))
    if box is None:
        return Consistency(restored.copy(), 0.0, 0.0, 0)
    (k0, k1, y0, y1), (j0, j1, x0, x1) = box
    if y1 - y0 == mask.shape[0] and x1 - x0 == mask.shape[1]:
        return _project(restored, observed, mask, grid, smooth_iters, tol)
    if tol.ndim >= 2:
        tol = tol.reshape(tol.shape[:2])[k0:k1, j0:j1]
    sub = _project(restored[y0:y1, x0:x1], observed[y0:y1, x0:x1], mask[y0:y1, x0:x1], grid.window(x0, y0), smooth_iters, tol)
    out = restored.copy() if restored.dtype == np.uint8 else np.rint(restored).astype(np.uint8)
    out[y0:y1, x0:x1] = sub.image
    return Consistency(out, sub.residual_max, sub.residual_mean, sub.cells)


def _work_box(lat: Lattice, active: np.ndarray):
    """The cells to work on: those of ``active`` and one around them, as ((first cell row, end cell
    row, first pixel row, end pixel row), (the same for columns)); None when no cell is active."""
    if not active.any():
        return None
    rows, cols = np.flatnonzero(active.any(axis=1)), np.flatnonzero(active.any(axis=0))
    k0, k1 = max(int(rows[0]) - 1, 0), min(int(rows[-1]) + 2, len(lat.rs))
    j0, j1 = max(int(cols[0]) - 1, 0), min(int(cols[-1]) + 2, len(lat.cs))
    return (k0, k1, int(lat.rs[k0]), int(lat.re[k1 - 1])), (j0, j1, int(lat.cs[j0]), int(lat.ce[j1 - 1]))


def _project(restored: np.ndarray, observed: np.ndarray, mask: np.ndarray, grid: Grid, smooth_iters: int, tol: np.ndarray) -> Consistency:
    cells = _Cells(mask.shape, grid)
    target, active = observed_cells(observed, mask, grid)
    n_active = int(active.sum())
    if n_active == 0:
        return Consistency(restored.copy(), 0.0, 0.0, 0)
    tol = np.broadcast_to(tol if tol.ndim < 2 else tol.reshape(tol.shape[:2]), active.shape)[..., None]
    loose = bool((tol[active] > 0).any())
    centre = is_point(grid.sampling)
    measure = cells.points if centre else cells.means
    act = active[..., None].astype(np.float64)
    region = cells.expand(active)  # (H, W) pixels of constrained cells
    out = restored.astype(np.float64)

    # 1. smooth corrections (iterative back-projection), clipped to the valid range
    for _ in range(2 * smooth_iters if loose else smooth_iters):
        r = (target - measure(out)) * act
        if loose:
            r = r - np.clip(r, -np.maximum(tol, 0.5 - 1e-6), np.maximum(tol, 0.5))  # only what lies beyond the tolerance
            if (np.abs(r) < 0.25).all():
                break
        elif ((r > -0.5) & (r <= 0.5)).all():  # already re-mosaics to the observation
            break
        out = np.where(region[..., None], np.clip(out + cells.smooth(r), 0.0, 255.0), out)
    if loose:  # the exact steps below only for the cells without tolerance
        active = active & (tol[..., 0] == 0)
        act = active[..., None].astype(np.float64)
        region = cells.expand(active)
        if not active.any():
            result = np.rint(out).astype(np.uint8)
            _, all_active = observed_cells(observed, mask, grid)
            res = _remosaic_errors(result, target, all_active, cells, centre)
            return Consistency(result, float(res.max()), float(res.mean()), n_active)

    # 2. exact per-cell step: put the residual on the pixels that are not clipped in its direction
    if centre:
        out[cells.sr[:, None], cells.sc[None, :]] = np.where(active[..., None], target, out[cells.sr[:, None], cells.sc[None, :]])
    else:
        for _ in range(4):
            r = (target - measure(out)) * act  # (nR, nC, 3)
            r = r - np.clip(r, -0.5 + 1e-6, 0.5)  # only what re-mosaicking would see (mean rounded half up)
            if np.abs(r).max() < 1e-6:
                break
            up = cells.expand(r)
            free = np.where(up > 0, out < 255.0, out > 0.0) & region[..., None]
            nfree = cells.sums(free)
            scale = np.where(nfree > 0, cells.counts[..., None] / np.maximum(nfree, 1), 0.0)
            out = np.clip(out + cells.expand(r * scale) * free, 0.0, 255.0)
    out = np.rint(out)
    # 3. rounding: nudge a few pixels by one level so that each cell's integer sum hits its target
    if not centre:
        out = _fix_rounding(out, target, active, cells)
    result = out.astype(np.uint8)
    res = _remosaic_errors(result, target, active, cells, centre)
    return Consistency(result, float(res.max()), float(res.mean()), n_active)


def _remosaic_errors(image: np.ndarray, target: np.ndarray, active: np.ndarray, cells: _Cells, centre: bool) -> np.ndarray:
    """|re-mosaicked value - observed value| per constrained cell and channel (re-mosaic = pixelate's rule:
    the sampled pixel, or the cell mean rounded half up)."""
    img = image.astype(np.float64)
    values = cells.points(img) if centre else np.floor(cells.means(img) + 0.5)
    return np.abs(values - target)[active]


def _fix_rounding(out: np.ndarray, target: np.ndarray, active: np.ndarray, cells: _Cells) -> np.ndarray:
    """After rounding to integers a cell's mean can leave the interval that re-mosaics to the
    observed value (mean rounded half up == target); move single pixels by one level until it is back."""
    sums = cells.sums(out)
    n = cells.counts[..., None]
    lo = np.ceil((np.rint(target) - 0.5) * n)  # smallest integer sum whose mean rounds (half up) to target
    hi = np.ceil((np.rint(target) + 0.5) * n) - 1  # largest
    diff = (np.where(sums < lo, lo - sums, 0) + np.where(sums > hi, hi - sums, 0)) * active[..., None]
    for (i, j, ch) in zip(*np.nonzero(diff)):
        d = int(diff[i, j, ch])
        block = out[cells.rs[i] : cells.re[i], cells.cs[j] : cells.ce[j], ch]
        flat = block.reshape(-1)
        ok = np.flatnonzero(flat < 255) if d > 0 else np.flatnonzero(flat > 0)
        take = ok[: abs(d)]
        flat[take] += np.sign(d)
        block[...] = flat.reshape(block.shape)
    return out


def cell_tolerance(observed: np.ndarray, mask: np.ndarray, grid: Grid, *, lossless: float = 0.25, scale: float = 1.0) -> np.ndarray:
    """Per cell (nR, nC): how far its observed value may be from the truth, in grey levels: the codec's
    noise (:func:`codec_tolerance`, 0 on lossless input) or, where larger, ``scale`` x the spread of the
    cell's own pixels when above ``lossless``: a cell that is not flat is not one of the mosaic's
    cells (a lattice that only roughly fits: non-integer cells, rescaled mosaics), so its value only
    roughly constrains the restoration."""
    cells = _Cells(mask.shape, grid)
    obs = observed.astype(np.float64)
    mean = cells.means(obs)
    spread = np.sqrt(np.maximum(cells.means(obs * obs) - mean * mean, 0.0)).max(axis=2)
    own = np.where(spread > lossless, scale * spread, 0.0)
    return np.maximum(own, codec_tolerance(observed, mask, grid, lossless=lossless, scale=scale))


def codec_tolerance(observed: np.ndarray, mask: np.ndarray, grid: Grid, *, lossless: float = 0.25, scale: float = 1.0) -> float:
    """How far the observed cell values can be from the true ones because of lossy compression
    (grey levels): ``scale`` x the typical spread of the pixels inside the cells under ``mask`` (the
    20th percentile of their per-cell standard deviation, max over channels: a mosaic cell is flat
    before compression). 0 when that spread is below ``lossless`` (a lossless mosaic)."""
    cells = _Cells(mask.shape, grid)
    inside = cells.inside(mask)
    if not inside.any():
        return 0.0
    obs = observed.astype(np.float64)
    mean = cells.means(obs)
    var = np.maximum(cells.means(obs * obs) - mean * mean, 0.0)
    spread = float(np.percentile(np.sqrt(var).max(axis=2)[inside], 20))
    return 0.0 if spread < lossless else scale * spread


def remosaic_residual(restored: np.ndarray, observed: np.ndarray, mask: np.ndarray, grid: Grid) -> float:
    """Mean absolute difference (grey levels) between re-mosaicking the restored image with ``grid``
    and the observed cell values, over the cells entirely inside the mask. 0 = perfectly consistent."""
    cells = _Cells(mask.shape, grid)
    target, active = observed_cells(observed, mask, grid)
    if not active.any():
        return 0.0
    return float(_remosaic_errors(restored, target, active, cells, is_point(grid.sampling)).mean())
