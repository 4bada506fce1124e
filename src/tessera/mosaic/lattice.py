"""The maths of a mosaic lattice, in one place: which cell every pixel falls in, where cells start,
end and have their centre, and per-cell reductions (sums, means, centre samples, coverage).

Pure numpy. Every module that works with cells (pixelate, consistency, classical, grid analysis,
detection, latent search, training data) goes through :func:`lattice` or :class:`Lattice`.
"""

from __future__ import annotations

import numpy as np

from tessera.mosaic.region import POINT_SAMPLINGS, SAMPLINGS, Grid

__all__ = ["lattice", "Lattice"]


def lattice(n: int, cell: int, phase: int, pitch: float | None = None, origin: float = 0.0) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Along one axis of length n: the cell index of every pixel, and each cell's
    start, end (exclusive) and centre pixel, for cells of ``cell`` pixels with an edge at ``phase``
    (or, with ``pitch``, cells of ``pitch`` fractional pixels with edges at ``origin + k * pitch``:
    a cell starts at the first pixel at or after its edge)."""
    if pitch is not None:
        return _fractional(n, float(pitch), float(origin))
    offset = (cell - phase % cell) % cell
    index = (np.arange(n) + offset) // cell
    k = np.arange(int(index[-1]) + 1 if n else 0)
    starts = np.clip(k * cell - offset, 0, n)
    ends = np.clip((k + 1) * cell - offset, 0, n)
    centres = (starts + ends - 1) // 2
    return index, starts, ends, centres


def _fractional(n: int, pitch: float, origin: float) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    # pixel i is in the cell of the last edge at or before it: floor((i - origin) / pitch)
    k = np.floor((np.arange(n) - origin) / pitch + 1e-9).astype(np.int64)
    _, first, index = np.unique(k, return_index=True, return_inverse=True)
    starts = first.astype(np.int64)
    ends = np.append(starts[1:], n).astype(np.int64)
    centres = (starts + ends - 1) // 2
    return index.astype(np.int64), starts, ends, centres


def point(starts: np.ndarray, ends: np.ndarray, sampling: str) -> np.ndarray:
    """The pixel a point sampling (:data:`POINT_SAMPLINGS`) takes of each cell [start, end)."""
    if sampling == "first":
        return starts.copy()
    if sampling == "centre-up":
        return np.minimum((starts + ends) // 2, np.maximum(ends - 1, starts))
    if sampling == "centre":
        return (starts + ends - 1) // 2
    raise ValueError(f"not a point sampling: {sampling!r} (one of {', '.join(POINT_SAMPLINGS)})")


class Lattice:
    """The cells of ``grid`` over an (H, W) image. Rows: ``ri`` (cell row of every pixel row), ``rs``,
    ``re``, ``rc`` (each cell row's start, end and centre); columns likewise (``ci``, ``cs``, ``ce``, ``cc``).
    ``sr``, ``sc``: the pixel row / column each cell's value is taken from when the grid's sampling is a
    point sampling (its centre, its other centre, or its first pixel; the centre for 'mean').
    ``counts`` (nR, nC): pixels per cell (edge cells are cut by the image border)."""

    def __init__(self, shape: tuple[int, int], grid: Grid):
        H, W = shape[:2]
        self.grid = grid
        py, px = grid.pitch if grid.pitch is not None else (None, None)
        self.ri, self.rs, self.re, self.rc = lattice(H, grid.cell_h, grid.phase_y, py, grid.origin[0])
        self.ci, self.cs, self.ce, self.cc = lattice(W, grid.cell_w, grid.phase_x, px, grid.origin[1])
        self.counts = (self.re - self.rs)[:, None] * (self.ce - self.cs)[None, :]
        self.sr, self.sc = self.samples(grid.sampling)

    def samples(self, sampling: str) -> tuple[np.ndarray, np.ndarray]:
        """The pixel rows and columns a point ``sampling`` takes (the centres for 'mean')."""
        if sampling not in POINT_SAMPLINGS or sampling == "centre":
            return self.rc, self.cc
        return point(self.rs, self.re, sampling), point(self.cs, self.ce, sampling)

    def points(self, img: np.ndarray) -> np.ndarray:
        """Each cell's sampled pixel (nR, nC, ...): :attr:`sr`, :attr:`sc`."""
        return img[self.sr][:, self.sc]

    @property
    def shape(self) -> tuple[int, int]:
        """(nR, nC): cells per column and per row."""
        return len(self.rs), len(self.cs)

    def row_bands(self, per_row: int, budget: int = 1 << 22):
        """Bands of whole cell rows, about ``budget`` values each for ``per_row`` values per pixel
        row: yields (k0, k1, r0, r1), cell rows k0..k1-1 covering pixel rows r0..r1-1. Per-cell work
        done band by band equals the work done on the whole image, with band-sized temporaries."""
        nR = len(self.rs)
        band = max(1, budget // max(1, int(self.grid.cell_h) * int(per_row)))
        for k0 in range(0, nR, band):
            k1 = min(nR, k0 + band)
            yield k0, k1, int(self.rs[k0]), int(self.re[k1 - 1])

    def band(self, r0: int, r1: int, width: int) -> "Lattice":
        """The lattice of the pixel rows r0..r1-1 (a band from :meth:`row_bands`) on its own."""
        return Lattice((r1 - r0, width), self.grid.window(0, r0))

    def sums(self, img: np.ndarray) -> np.ndarray:
        """Per-cell sums (nR, nC, ...) of an (H, W, ...) array (int64 for integers, else float64)."""
        acc = np.int64 if np.issubdtype(img.dtype, np.integer) or img.dtype == bool else np.float64
        # in bands of whole cell rows, so a big image is never copied whole into 8-byte accumulators
        out = None
        for k0, k1, r0, r1 in self.row_bands(int(np.prod(img.shape[1:], dtype=np.int64))):
            block = img[r0:r1].astype(acc)
            part = np.add.reduceat(np.add.reduceat(block, self.rs[k0:k1] - r0, axis=0), self.cs, axis=1)
            if out is None:
                out = np.empty((len(self.rs),) + part.shape[1:], part.dtype)
            out[k0:k1] = part
        return out

    def means(self, img: np.ndarray) -> np.ndarray:
        """Per-cell means, float64 (nR, nC, ...)."""
        counts = self.counts.reshape(self.counts.shape + (1,) * (img.ndim - 2))
        return self.sums(img) / counts

    def rounded_means(self, img: np.ndarray) -> np.ndarray:
        """Per-cell means of an integer image, rounded half up with integer arithmetic (exact)."""
        counts = self.counts.reshape(self.counts.shape + (1,) * (img.ndim - 2))
        return (2 * self.sums(img) + counts) // (2 * counts)

    def centres(self, img: np.ndarray) -> np.ndarray:
        """Each cell's centre pixel (nR, nC, ...)."""
        return img[self.rc][:, self.cc]

    def values(self, img: np.ndarray, sampling: str | None = None) -> np.ndarray:
        """What a mosaic with this lattice shows per cell: float means or point samples."""
        sampling = sampling or self.grid.sampling
        if sampling in POINT_SAMPLINGS:
            rows, cols = self.samples(sampling)
            return img[rows][:, cols].astype(np.float64)
        if sampling == "mean":
            return self.means(img)
        raise ValueError(f"sampling must be one of {', '.join(SAMPLINGS)}, got {sampling!r}")

    def positions(self, sampling: str | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Where each cell's value sits, in pixels (float): its sampled pixel for a point sampling,
        the middle of its extent for 'mean'."""
        sampling = sampling or self.grid.sampling
        if sampling in POINT_SAMPLINGS:
            rows, cols = self.samples(sampling)
            return rows.astype(np.float64), cols.astype(np.float64)
        return (self.rs + self.re - 1) / 2.0, (self.cs + self.ce - 1) / 2.0

    def expand(self, per_cell: np.ndarray) -> np.ndarray:
        """(nR, nC, ...) -> (H, W, ...): every pixel takes its cell's value."""
        return per_cell[self.ri][:, self.ci]

    def ids(self) -> np.ndarray:
        """(H, W) int: the flat index (row * nC + col) of every pixel's cell, for np.bincount."""
        return self.ri[:, None] * len(self.cs) + self.ci[None, :]

    def inside(self, mask: np.ndarray) -> np.ndarray:
        """(nR, nC) bool: cells lying entirely inside ``mask``."""
        return self.sums(mask) >= self.counts

    def selected(self, region: np.ndarray) -> np.ndarray:
        """(H, W) bool: the pixels of the cells whose centre pixel lies in ``region``."""
        return self.expand(self.centres(region))
