"""Estimate a mosaic's lattice (cell size, phase, sampling) from pixels alone.

A mosaic is flat inside its cells and jumps on a lattice. Per axis we take the absolute
colour differences between neighbouring pixels inside the region (horizontal differences
for the column lattice, vertical ones for the row lattice), project them on that axis, and
fold the profile modulo every candidate period p: for the true cell size one phase holds
nearly all the energy. Divisors of the cell fold just as well (their lattice contains the
true one) and multiples hold about 1/k of it, so we keep the largest period whose folded
energy is close to the best. A second, robust check asks that the lattice lines be
*consistently* strong (a low quantile of the per-line energy against the mean off-lattice
energy), which a single strong natural edge, JPEG's faint 8x8 block seams, a flat sky or a
flat UI panel cannot fake. Rows and columns are estimated independently (rectangular cells).

Sampling (mean vs centre) is a statistical guess: a centre-sampled mosaic keeps single-pixel
noise and aliasing, so the differences between neighbouring cells are rougher than for a
mean-sampled one (see :func:`estimate_sampling`).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import cv2
import numpy as np

from tessera.mosaic.region import Grid


@dataclass(frozen=True)
class AxisFit:
    """The lattice along one axis: ``period`` pixels, edges at ``phase + k * period``."""

    period: int
    phase: int
    fraction: float  # share of the edge energy on the lattice lines, 0..1
    consistency: float  # how uniformly strong the lines are vs. the off-lattice energy, 0..1
    lines: int  # lattice lines inside the region
    pitch: float | None = None  # a lattice of fractional period: cells of ``pitch`` px, edges at ``origin + k * pitch``
    origin: float = 0.0

    @property
    def score(self) -> float:
        return float(min(self.fraction, self.consistency))


@dataclass(frozen=True)
class GridEstimate:
    grid: Grid
    score: float  # 0..1, min of both axes' scores
    y: AxisFit
    x: AxisFit


#: pixels per band when differences and profiles are computed band by band (bounded temporaries)
BAND = 1 << 20


def _diffs(image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """|I(y, x) - I(y, x-1)| and |I(y, x) - I(y-1, x)| summed over channels, float32; index 0 unused (0).
    Worked out in bands of rows, so the only image-sized arrays are the two results."""
    img = image if image.ndim == 3 else image[..., None]
    H, W = img.shape[:2]
    dx = np.zeros((H, W), np.float32)
    dy = np.zeros((H, W), np.float32)
    step = max(1, BAND // max(W, 1))
    for y0 in range(0, H, step):
        y1 = min(H, y0 + step)
        a = img[y0:y1].astype(np.int16)
        dx[y0:y1, 1:] = np.abs(a[:, 1:] - a[:, :-1]).sum(-1)
        if y0 > 0:
            a = img[y0 - 1 : y1].astype(np.int16)
        dy[max(y0, 1) : y1] = np.abs(a[1:] - a[:-1]).sum(-1)
    return dx, dy


def _sparse(d: np.ndarray, axis: int, tol: float, radius: int = 12, density: float = 0.36) -> np.ndarray:
    """Keep differences only where jumps (> tol) along ``axis`` are sparse, as in a mosaic (at most one
    per cell, i.e. a density <= 1/3 for cells >= 3); textured clean areas jump almost everywhere."""
    nz = (d > tol).astype(np.float32)
    ksize = (2 * radius + 1, 1) if axis == 1 else (1, 2 * radius + 1)  # (width, height)
    dens = cv2.blur(nz, ksize, borderType=cv2.BORDER_REFLECT)
    return np.where(dens <= density, d, 0.0).astype(np.float32)


def _profile(d: np.ndarray, valid: np.ndarray, axis: int) -> tuple[np.ndarray, np.ndarray]:
    """Energy per line along the other axis (sum over ``axis``) and the number of valid pixels per line
    (in bands of rows; the sums are of whole numbers, so they equal one pass over the whole array)."""
    H, W = d.shape
    step = max(1, BAND // max(W, 1))
    parts = [((d[y : y + step] * valid[y : y + step]).sum(axis=axis, dtype=np.float64),
              valid[y : y + step].sum(axis=axis, dtype=np.float64)) for y in range(0, H, step)]
    if axis == 0:
        return sum(p[0] for p in parts), sum(p[1] for p in parts)
    return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])


def fit_axis(
    energy: np.ndarray, count: np.ndarray, *, min_cell: int = 3, max_cell: int = 64, keep: float = 0.45
) -> AxisFit | None:
    """Best lattice of a 1-D edge-energy profile (``energy[i]``: energy of the edge between i-1 and i).

    ``count[i]`` is the number of pixels behind ``energy[i]`` (0 = outside the region).
    Returns None when the region has too few edges to say anything.
    """
    n = energy.size
    support = np.nonzero(count > 0)[0]
    if support.size < 2 * min_cell:
        return None
    lo, hi = int(support[0]), int(support[-1]) + 1
    span = hi - lo
    total = float(energy.sum())
    if total <= 1e-6:
        return None
    max_cell = min(max_cell, span // 2)  # need at least two lattice lines inside
    if max_cell < min_cell:
        return None
    idx = np.arange(n)
    per_px = np.where(count > 0, energy / np.maximum(count, 1), 0.0)
    # lines at the region's extreme ends see few pixels; judge consistency on well-supported lines
    supported = count >= 0.25 * count.max()
    folded_all = {p: np.bincount(idx % p, weights=energy, minlength=p) for p in range(min_cell, max_cell + 1)}
    shares = {p: float(f.max()) / total for p, f in folded_all.items()}
    best = max(shares.values())
    # candidates hold a good share of the energy (divisors and multiples of the cell do too);
    # among them the true cell has the most uniformly strong lines over the quietest gaps
    fits: dict[int, tuple[int, float, float, int]] = {}
    for p, share in shares.items():
        if share < keep * best:
            continue
        ph = int(np.argmax(folded_all[p]))
        on = idx % p == ph
        lines = per_px[on & supported]
        gap = ~on
        if p >= 5 and NEAR_GAP:  # compression smears a step over its neighbours: judge the gaps beyond them
            gap &= ((idx - ph) % p != 1) & ((idx - ph) % p != p - 1)
        off = per_px[gap & supported]
        if lines.size == 0:
            continue
        low = _quantile(lines, 0.25)
        off_mean = float(off.mean()) if off.size else 0.0
        # how much stronger the weaker lattice lines are than the mean off-lattice level
        ratio = low / (off_mean + 1e-3 + 0.002 * float(lines.mean()))
        fits[p] = (ph, share, ratio, int(lines.size))
    if not fits:
        return None
    if SELECT == "ratio":
        period = max(fits, key=lambda p: (round(fits[p][2], 6), p))
    else:
        # share above chance (1/p) for a lattice of period p; divisors of the cell score about
        # the same as the cell, multiples about 1/k of it: keep the largest near-best period
        excess = {p: (f[1] - 1.0 / p) / (1 - 1.0 / p) for p, f in fits.items()}
        top = max(excess.values())
        period = max(p for p, e in excess.items() if e >= EXCESS_KEEP * top)
    period = _refine_divisors(period, fits[period][0], per_px, supported, min_cell)
    phase, fraction, ratio, nlines = fits[period]
    consistency = float(np.clip((ratio - 1.5) / 6.5, 0.0, 1.0))
    frac = float(np.clip((fraction - 1.0 / period) / (1 - 1.0 / period), 0, 1))
    return AxisFit(period, phase, frac, consistency, nlines)


def _quantile(a: np.ndarray, q: float) -> float:
    """``np.quantile(a, q)`` (its default, linear method; the same value) without its overhead: it is
    called for every candidate period of every profile."""
    v = (a.size - 1) * q
    i = int(np.floor(v))
    j = min(i + 1, a.size - 1)
    part = np.partition(a, (i, j) if j > i else i)
    lo, hi = float(part[i]), float(part[j])
    t = v - i
    return hi - (hi - lo) * (1 - t) if t >= 0.5 else lo + (hi - lo) * t


RATIO_EXTRA, OFF_EXTRA = 0.3, 3.0
SELECT, EXCESS_KEEP = "excess", 0.93


def _refine_divisors(period: int, phase: int, per_px: np.ndarray, supported: np.ndarray, min_cell: int) -> int:
    """Step down from a multiple of the cell to the cell: a divisor d of ``period`` is the better
    lattice when its extra lines (not on the ``period`` lattice) are about as strong as the
    ``period`` lines and clearly stronger than the d-lattice's gaps."""
    idx = np.arange(per_px.size)
    on_p = (idx % period == phase % period) & supported
    if not on_p.any():
        return period
    line_mean = float(per_px[on_p].mean())
    best = period
    for d in range(min_cell, period // 2 + 1):
        if period % d:
            continue
        on_d = (idx % d == phase % d) & supported
        extra = on_d & ~on_p
        off = ~on_d & supported
        if not extra.any() or not off.any():
            continue
        e = float(per_px[extra].mean())
        if e >= RATIO_EXTRA * line_mean and e >= OFF_EXTRA * float(per_px[off].mean()) + 1e-3:
            return d  # the smallest divisor that passes
    return best


JPEG_SEAMS, SEAM_MAX = True, 5.0


def remove_jpeg_seams(energy: np.ndarray, count: np.ndarray, origin: int) -> np.ndarray:
    """Subtract the typical extra energy of JPEG block seams (every 8th edge of the full picture)
    from those edges; a mosaic's own lines there stay far above it."""
    n = energy.size
    if n < 24:
        return energy
    seam = (np.arange(n) + origin) % 8 == 0
    ok = count > 0
    on, off = energy[seam & ok], energy[~seam & ok]
    if on.size < 3 or off.size < 3:
        return energy
    base = float(np.median(off))
    excess = float(np.median(on)) - base
    if excess <= 0 or excess > SEAM_MAX * base:
        return energy  # no seams, or seams as strong as lines: a mosaic on the 8-lattice, keep it
    out = energy.copy()
    out[seam] = np.maximum(out[seam] - excess, 0.0)
    return out


RUNS = True
NEAR_GAP = True

# ----------------------------------------------------------------------------- fractional periods
#
# Tools that scale a mosaic up by a non-integer factor (ImageMagick -scale, ffmpeg, OpenCV on a box
# whose side is no multiple of the cell) or resize it after pixelation make cells of h / n pixels:
# 19 and 20 px in turn, say. A whole-pixel lattice drifts off such lines within a few cells (or the
# fold prefers a multiple of the cell that happens to re-align, e.g. 46 px for 5.11 px cells). The
# edge profile's Fourier transform finds the period to a fraction of a pixel: a comb of lines every
# P px has a coefficient at frequency 1/P as large as its energy (and its multiples' are near 0).

#: a fractional lattice replaces the whole-pixel one when it holds at least this much more edge energy
FRACTION_GAIN = 1.15
#: ... and its period is at least this far from a whole number of pixels
FRACTION_MIN = 0.03
#: ... and the region spans at least this many of its cells (a Fourier peak of fewer is too broad)
FRACTION_LINES = 4
#: ... and at least this many pixels (over fewer a whole-pixel lattice drifts little, and a few small
#: fractional cells can look better than two big whole ones: a 2 x 2-cell mosaic of 14 px read as 6.1 px)
FRACTION_SPAN = 48
#: ... except down to this many pixels when the whole-pixel lattice's period is a whole number of the
#: fractional cells (cells of 6.5 px read as pairs of 13: the fractional lattice holds the same lines
#: and those between them; a 32-px ellipse of ffmpeg-nearest cells in the zoo)
FRACTION_SPAN_MULTIPLE = 20


def _captured(energy: np.ndarray, lo: int, hi: int, pitch, origin: np.ndarray) -> np.ndarray:
    """Edge energy on the lines ceil(origin + k * pitch) within [lo, hi), for each origin (1-D array),
    or for many pitches at once: ``pitch`` (P,) and ``origin`` (P, O) -> (P, O)."""
    many = np.ndim(pitch) > 0
    p = np.asarray(pitch, np.float64).reshape(-1, 1, 1)
    o = np.asarray(origin, np.float64).reshape(p.shape[0], -1, 1)
    # one range of k for every pitch: lines outside [lo, hi) count nothing
    k0 = np.floor((lo - o.max(axis=(1, 2), keepdims=True)) / p) - 1
    count = np.ceil((hi - lo) / p) + 3
    k = np.arange(float(k0.min()), float((k0 + count).max()))
    lines = np.ceil(o + k * p - 1e-9).astype(np.int64)
    ok = (lines >= lo) & (lines < hi)
    cap = np.where(ok, energy[np.clip(lines, 0, energy.size - 1)], 0.0).sum(axis=2)
    return cap if many else cap[0]


def _fourier(e: np.ndarray, lo: int, pitches: np.ndarray) -> np.ndarray:
    """sum over x of e[x - lo] exp(-2 pi i x / p) for each pitch p (x = lo .. lo + e.size - 1): with
    x = lo + a B + b (B about sqrt(n)) as two short tables of exponentials per pitch and one matrix
    product, about 2 sqrt(n) exponentials per pitch instead of n."""
    n = e.size
    B = int(np.ceil(np.sqrt(n)))
    A = -(-n // B)
    E = np.zeros(A * B)
    E[:n] = e
    w = (-2j * np.pi) / pitches[:, None]
    inner = np.exp(w * np.arange(B)) @ E.reshape(A, B).T.astype(np.complex128)  # (P, A)
    inner *= np.exp(w * (lo + B * np.arange(A)))
    return inner.sum(axis=1)


def fit_pitch(energy: np.ndarray, count: np.ndarray, *, min_cell: int = 3, max_cell: int = 64,
              keep: float = 0.7, drift: float = 1.0) -> tuple[float, float, float] | None:
    """The best lattice of any real period >= ``min_cell`` of a 1-D edge-energy profile (as in
    :func:`fit_axis`) -> (pitch, origin, share of the energy on its lines), or None. Pitches are
    tried in steps that move the last line of the region by ``drift`` px (then refined ten times
    finer on the energy the lines hold); the largest pitch
    whose Fourier magnitude is within ``keep`` of the best is the cell (its harmonics P/2, P/3 ...
    are as strong, its multiples are not)."""
    support = np.nonzero(count > 0)[0]
    if support.size < 2 * min_cell:
        return None
    lo, hi = int(support[0]), int(support[-1]) + 1
    span = hi - lo
    top_cell = min(float(max_cell), span / 2.0)
    total = float(energy[lo:hi].sum())
    if top_cell < min_cell or total <= 1e-6:
        return None
    e = energy[lo:hi].astype(np.float64)
    ratio = 1.0 + drift / span
    pitches = min_cell * ratio ** np.arange(int(np.log(top_cell / min_cell) / np.log(ratio)) + 1)
    f = _fourier(e, lo, pitches)
    mag, arg = np.abs(f), np.angle(f)
    peaks = np.flatnonzero((mag >= np.roll(mag, 1)) & (mag >= np.roll(mag, -1)))
    if peaks.size == 0:
        return None
    best = float(mag[peaks].max())
    j = int(max(peaks[mag[peaks] >= keep * best]))
    pitch = float(pitches[j])
    # lines sit on average half a pixel after their edges (a cell starts at ceil(edge))
    centre = (arg[j] / (-2 * np.pi) * pitch) % pitch - 0.5
    # refine pitch and origin on the captured energy itself
    ps = pitch * (1.0 + drift / span * np.linspace(-1.0, 1.0, 21))
    origins = (centre + np.linspace(-1.0, 1.0, 41)[None, :]) % ps[:, None]
    caps = _captured(energy, lo, hi, ps, origins)  # (pitches, origins)
    fits = []
    for p, cap, ori in zip(ps, caps, origins):
        good = np.flatnonzero(cap >= cap.max() - 1e-9)
        fits.append((float(cap.max()), float(p), float(ori[good[len(good) // 2]])))
    # the middle of the pitches holding the most (a few lines fit a range of pitches equally well)
    top = max(f[0] for f in fits)
    cap, pitch, origin = [f for f in fits if f[0] >= top - 1e-9 * max(top, 1.0)][sum(f[0] >= top - 1e-9 * max(top, 1.0) for f in fits) // 2]
    # least squares through the strongest pixel near each line: the pitch to a small fraction of a pixel
    k = np.arange(np.floor((lo - origin) / pitch), np.ceil((hi - origin) / pitch) + 1)
    near = np.ceil(origin + k * pitch - 1e-9).astype(np.int64)[:, None] + np.arange(-1, 2)[None, :]
    ok = (near >= lo) & (near < hi)
    strength = np.where(ok, energy[np.clip(near, 0, energy.size - 1)], -1.0)
    at = near[np.arange(near.shape[0]), strength.argmax(axis=1)]
    use = strength.max(axis=1) > 0
    if use.sum() >= 3:
        slope, icept = np.polyfit(k[use], at[use] - 0.5, 1)  # a cell starts at ceil(edge): edges ~ starts - 0.5
        if abs(slope - pitch) < 0.5 * drift * pitch / span * 4:
            origins = (icept + np.linspace(-0.6, 0.6, 25)) % slope
            caps = _captured(energy, lo, hi, float(slope), origins)
            if caps.max() >= cap - 1e-9:
                good = np.flatnonzero(caps >= caps.max() - 1e-9)
                cap, pitch, origin = float(caps.max()), float(slope), float(origins[good[len(good) // 2]])
    return pitch, origin, cap / total


def robust_profile(energy: np.ndarray, count: np.ndarray, cap: float = 4.0) -> np.ndarray:
    """Lattice lines stand out of their neighbours: the energy per pixel of each line above the median
    of the 5 around it (a slow trend, e.g. texture on one side, would look periodic at long pitches),
    capped at ``cap`` x the median of the lines that stand out (one strong natural edge, or the
    region's outline, would look periodic at every pitch)."""
    per_px = np.where(count > 0, energy / np.maximum(count, 1), 0.0)
    around = np.median(np.lib.stride_tricks.sliding_window_view(np.pad(per_px, 2, mode="edge"), 5), axis=1)
    peak = np.maximum(per_px - around, 0.0)
    some = peak[peak > 1e-6]
    if some.size == 0:
        return peak
    return np.minimum(peak, cap * float(np.median(some)))


def _fractional_fit(energy: np.ndarray, count: np.ndarray, min_cell: int, max_cell: int, period: int | None = None) -> AxisFit | None:
    """A fractional lattice of the profile (:func:`fit_pitch` on :func:`robust_profile`), or None when
    its period is a whole number of pixels or the region spans too few of its cells (FRACTION_SPAN, or
    FRACTION_SPAN_MULTIPLE when the whole-pixel fit's ``period`` is a multiple of the pitch). Whether it
    replaces the whole-pixel one is judged on the pixels (:func:`lattice_fit`)."""
    support = np.nonzero(count > 0)[0]
    span = int(support[-1]) + 1 - int(support[0]) if support.size else 0
    if span < (FRACTION_SPAN if period is None else min(FRACTION_SPAN, FRACTION_SPAN_MULTIPLE)):
        return None  # too short for a fractional lattice whatever the profile: skip the search
    got = fit_pitch(robust_profile(energy, count), count, min_cell=min_cell, max_cell=max_cell)
    if got is None:
        return None
    pitch, origin, share = got
    k = round(period / pitch) if period is not None else 0
    if span < FRACTION_SPAN and not (k >= 2 and abs(period - k * pitch) <= 1.0):
        return None
    whole = int(round(pitch))
    lines = int(np.ceil(span / pitch))
    frac = float(np.clip((share - 1.0 / pitch) / (1 - 1.0 / pitch), 0, 1))
    if abs(pitch - whole) < FRACTION_MIN or lines < FRACTION_LINES or frac <= 0:
        return None
    return AxisFit(whole, int(np.ceil(origin - 1e-9)) % whole, frac, frac, lines, pitch, origin)


def lattice_fit(image: np.ndarray, region: np.ndarray, grid: Grid) -> float:
    """How well ``grid`` explains the pixels of ``region``: the F statistic of its cells (variance
    between the cells' means per cell over the variance within cells per pixel, channels pooled).
    A mosaic's own lattice leaves only the codec's noise within cells; a drifting or wrong one
    leaves steps inside cells; splitting cells further (a divisor) adds cells and no explanation."""
    from tessera.mosaic.lattice import Lattice

    img = image if image.ndim == 3 else image[..., None]  # uint8: one channel at a time in float64 below
    ids = Lattice(region.shape, grid).ids()[region]
    if ids.size:  # the cells present, numbered in order (np.unique's inverse, without its sort of every pixel)
        ids = (np.cumsum(np.bincount(ids) > 0) - 1)[ids]
    k, n = int(ids.max()) + 1 if ids.size else 0, int(ids.size)
    if k < 2 or n <= k:
        return 0.0
    cnt = np.bincount(ids, minlength=k).astype(np.float64)
    within, between = 0.0, 0.0
    for c in range(img.shape[2]):
        v = img[..., c][region].astype(np.float64)
        mean = np.bincount(ids, weights=v, minlength=k) / cnt
        d = mean[ids]
        d -= v
        d *= d  # (v - mean)^2 in place: no further pixel-sized temporaries
        within += float(d.sum())
        between += float((cnt * (mean - v.mean()) ** 2).sum())
    return (between / (k - 1)) / ((within + 0.01 * n) / (n - k))


#: a lattice is a mosaic's when it explains the pixels at least this many times better than itself half a
#: cell off (:func:`lattice_contrast`). Detected regions left without a lattice, 16 zoo cases: 2.2-204;
#: 19 Gaussian-blurred photo regions (sigma 2 and 5): 0.91-1.41 (a blur has no phase); lattices the
#: detector read into clean photos (defocused backgrounds, a shaded sphere): 1.3-1.8
LATTICE_CONTRAST = 2.0


def lattice_contrast(image: np.ndarray, region: np.ndarray, grid: Grid) -> float:
    """How much better ``grid`` explains the pixels of ``region`` (:func:`lattice_fit`) than the same
    lattice moved by half a cell on both axes: a mosaic's cells are flat between its lines, so its own
    lattice is far better than one half a cell off (zoo mosaics: 2-200x); a lattice read into a smooth
    picture or a blur has no phase (about 1x)."""
    (py, px), (oy, ox) = (grid.pitch, grid.origin) if grid.pitch else ((grid.cell_h, grid.cell_w), (grid.phase_y, grid.phase_x))
    half = Grid.fractional(py, px, oy + py / 2, ox + px / 2)
    fit, off = lattice_fit(image, region, grid), lattice_fit(image, region, half)
    return fit / off if off > 0 else float("inf")


def _with_fractional(image, region, grid: Grid, fy: AxisFit | None, fx: AxisFit | None, y_frac: AxisFit | None,
                     x_frac: AxisFit | None) -> tuple[AxisFit | None, AxisFit | None]:
    """The axis fits to keep: a fractional one replaces the whole-pixel one when the lattice with it
    explains the pixels FRACTION_GAIN times better (:func:`lattice_fit`), or when there was none."""
    def as_grid(ay: AxisFit, ax: AxisFit) -> Grid:
        return Grid.fractional(ay.pitch or ay.period, ax.pitch or ax.period, ay.origin if ay.pitch else ay.phase,
                               ax.origin if ax.pitch else ax.phase)

    base = lattice_fit(image, region, grid) if grid is not None else 0.0
    best, choice = base * FRACTION_GAIN, (fy, fx)
    for ay, ax in ((y_frac, fx), (fy, x_frac), (y_frac, x_frac)):
        if ay is None or ax is None or (ay is fy and ax is fx):
            continue
        score = lattice_fit(image, region, as_grid(ay, ax))
        if score > best:
            best, choice = score, (ay, ax)
    return choice


def fit_runs(d: np.ndarray, valid: np.ndarray, *, min_cell: int = 3, max_cell: int = 64) -> AxisFit | None:
    """Lattice along axis 1 from the lengths of flat runs between jumps (``d[:, x]``: difference
    between x-1 and x) inside ``valid``: in a mosaic most runs span exactly one cell (a few span
    several equal cells). Works with only one or two cells between the region's edges."""
    inside = d[valid]
    if inside.size == 0:
        return None
    tol = max(6.0, 4.0 * float(np.median(inside)))
    del inside
    # runs lie within rows, so bands of whole rows give exactly the runs of the whole array
    step = max(1, BAND // max(d.shape[1], 1))
    jumps_seen, lengths, run_starts = 0, [], []
    for y0 in range(0, d.shape[0], step):
        vb = valid[y0 : y0 + step]
        rows, cols = np.nonzero((d[y0 : y0 + step] > tol) & vb)
        jumps_seen += rows.size
        same = rows[1:] == rows[:-1]
        a, b, r = cols[:-1][same], cols[1:][same], rows[:-1][same]
        cv = np.concatenate([np.zeros((vb.shape[0], 1), np.int32), np.cumsum(vb, axis=1, dtype=np.int32)], axis=1)
        ok = (cv[r, b] - cv[r, a]) == (b - a)  # no pixel outside ``valid`` between the two jumps
        lengths.append((b - a)[ok])
        run_starts.append(a[ok])
    if jumps_seen < 4:
        return None
    length, starts = np.concatenate(lengths), np.concatenate(run_starts)
    runs = length[(length >= 2)]
    if runs.size < 4:
        return None
    hist = np.bincount(runs, minlength=max_cell + 1)
    cand = hist[min_cell : max_cell + 1]
    if cand.sum() == 0:
        return None
    period = int(np.argmax(cand)) + min_cell
    share = float(hist[period]) / float(runs.size)
    sel = length == period
    phase = int(np.argmax(np.bincount(starts[sel] % period, minlength=period)))
    phase_share = float(np.bincount(starts[sel] % period, minlength=period)[phase]) / max(int(sel.sum()), 1)
    score = float(np.clip((share - 0.3) / 0.5, 0, 1) * np.clip((phase_share - 0.5) / 0.4, 0, 1))
    n_lines = len(set((starts[sel] % 100000).tolist()))
    return AxisFit(period, phase, score, score, n_lines)


def _score(fit: AxisFit | None) -> float:
    return fit.score if fit is not None else 0.0


def _fractional_axes(image, region, y: tuple, x: tuple, min_cell: int, max_cell: int, min_lines: int,
                     min_score: float) -> tuple[AxisFit | None, AxisFit | None] | None:
    """The axis fits (y, x) once fractional lattices are tried (:func:`_fractional_fit` per axis,
    :func:`_with_fractional` to choose), from each axis' (energy, count, whole-pixel fit); None as
    soon as an axis can reach no ``min_score`` with either of its fits (the other is then not searched)."""
    (ey, cy, fy), (ex, cx, fx) = y, x
    fracs = {}
    for name, e, c, fit in sorted((("y", ey, cy, fy), ("x", ex, cx, fx)), key=lambda a: _score(a[3])):  # weaker first
        fracs[name] = _fractional_fit(e, c, min_cell, max_cell, fit.period if fit is not None else None)
        if max(_score(fit), _score(fracs[name])) < min_score:
            return None  # the axis keeps one of these two fits: the estimate's score stays below min_score
    y_frac, x_frac = fracs["y"], fracs["x"]
    if y_frac is None and x_frac is None:
        return fy, fx
    ok = fx is not None and fy is not None and fx.lines >= min_lines and fy.lines >= min_lines
    grid = Grid(fy.period, fx.period, fy.phase % fy.period, fx.phase % fx.period) if ok else None
    return _with_fractional(image, region, grid, fy if ok else None, fx if ok else None, y_frac or fy, x_frac or fx)


def _better(fit: AxisFit | None, runs: AxisFit | None) -> AxisFit | None:
    if runs is None or runs.score < 0.3:
        return fit
    if fit is None or runs.score > fit.score or (fit.lines < 3 and runs.score >= 0.5):
        return runs
    return fit


def estimate_grid(
    image: np.ndarray,
    mask: np.ndarray | None = None,
    *,
    min_cell: int = 3,
    max_cell: int = 64,
    erode: int = 1,
    min_lines: int = 2,
    sparse: bool = False,
    origin: tuple[int, int] = (0, 0),
    fractional: bool = False,
    min_score: float = 0.0,
) -> GridEstimate | None:
    """Cell size, phase and sampling of the mosaic in ``image`` (RGB or grey uint8) within ``mask``.

    ``erode`` pixels of the mask's edge are ignored (a pasted mosaic's outline is no lattice line).
    ``sparse``: ignore differences where jumps are dense (texture), for regions that are only
    partly mosaic (e.g. a search window).
    ``origin``: where ``image`` lies in the full picture (y, x), so that JPEG's 8x8 block seams
    (on multiples of 8 in the full picture) can be told apart; phases are returned for ``image``.
    ``fractional``: also try lattices whose cells are no whole number of pixels (:func:`fit_pitch`;
    a :meth:`Grid.fractional` when one holds clearly more of the edges).
    ``min_score``: None also for a lattice scoring below it (for a caller that rejects weaker ones:
    their fractional search, the choice between fits and the sampling are skipped).
    Returns None when no lattice can be seen on one of the axes (e.g. a flat or too small region).
    """
    image = np.asarray(image)
    H, W = image.shape[:2]
    if H < 2 * min_cell or W < 2 * min_cell:
        return None
    region = np.ones((H, W), bool) if mask is None else np.asarray(mask, bool)
    if erode > 0 and mask is not None:
        region = cv2.erode(region.astype(np.uint8), np.ones((2 * erode + 1, 2 * erode + 1), np.uint8)).astype(bool)
    if not region.any():
        return None
    dx, dy = _diffs(image)
    if sparse:
        dx, dy = _sparse(dx, 1, 12.0), _sparse(dy, 0, 12.0)
    vx = np.zeros_like(region)
    vx[:, 1:] = region[:, 1:] & region[:, :-1]
    vy = np.zeros_like(region)
    vy[1:] = region[1:] & region[:-1]
    ex, cx = _profile(dx, vx, axis=0)
    ey, cy = _profile(dy, vy, axis=1)
    if JPEG_SEAMS:
        ex = remove_jpeg_seams(ex, cx, origin[1])
        ey = remove_jpeg_seams(ey, cy, origin[0])
    fx = fit_axis(ex, cx, min_cell=min_cell, max_cell=max_cell)
    fy = fit_axis(ey, cy, min_cell=min_cell, max_cell=max_cell)
    if RUNS and mask is not None:
        # few lattice lines inside (a region a few cells across): measure flat runs instead,
        # including the run that ends on the region's own outline
        outer = cv2.dilate(np.asarray(mask, np.uint8), np.ones((5, 5), np.uint8)).astype(bool)
        if fx is None or fx.lines < 3 or fx.score < 0.3:
            fx = _better(fx, fit_runs(dx, outer, min_cell=min_cell, max_cell=max_cell))
        if fy is None or fy.lines < 3 or fy.score < 0.3:
            fy = _better(fy, fit_runs(dy.T, outer.T, min_cell=min_cell, max_cell=max_cell))
    if fractional:
        fits = _fractional_axes(image, region, (ey, cy, fy), (ex, cx, fx), min_cell, max_cell, min_lines, min_score)
        if fits is None:
            return None
        fy, fx = fits
    ok = fx is not None and fy is not None and fx.lines >= min_lines and fy.lines >= min_lines
    if not ok or min(fx.score, fy.score) < min_score:
        return None
    grid = Grid(fy.period, fx.period, fy.phase % fy.period, fx.phase % fx.period, "mean")
    if fx.pitch is not None or fy.pitch is not None:
        grid = Grid.fractional(fy.pitch or fy.period, fx.pitch or fx.period,
                               fy.origin if fy.pitch else fy.phase, fx.origin if fx.pitch else fx.phase)
    grid = replace(grid, sampling=estimate_sampling(image, region, grid))
    return GridEstimate(grid, float(min(fx.score, fy.score)), fy, fx)


def cell_values(image: np.ndarray, region: np.ndarray, grid: Grid) -> tuple[np.ndarray, np.ndarray]:
    """Per-cell median colour (nR, nC, C) float and whether the whole cell lies in ``region`` (nR, nC)."""
    from tessera.mosaic.lattice import Lattice

    img = image if image.ndim == 3 else image[..., None]
    H, W = img.shape[:2]
    cells = Lattice((H, W), grid)
    rs, re, cs, ce = cells.rs, cells.re, cells.cs, cells.ce
    full_r = (re - rs) == grid.cell_h
    full_c = (ce - cs) == grid.cell_w
    # sample each cell at its inner points (away from the edges JPEG smears)
    my, mx = grid.cell_h // 2, grid.cell_w // 2
    ys = np.clip(rs + my, 0, H - 1)
    xs = np.clip(cs + mx, 0, W - 1)
    vals = img[ys][:, xs].astype(np.float32)
    inside = cv2.erode(region.astype(np.uint8), np.ones((3, 3), np.uint8)).astype(bool)
    ok = inside[np.ix_(rs.clip(0, H - 1), cs.clip(0, W - 1))] & inside[np.ix_((re - 1).clip(0, H - 1), (ce - 1).clip(0, W - 1))]
    ok &= full_r[:, None] & full_c[None, :]
    return vals, ok


def estimate_sampling(image: np.ndarray, region: np.ndarray, grid: Grid, threshold: float = 1.57) -> str:
    """Guess 'mean' or 'centre' sampling from the roughness of neighbouring cell values (a weak cue,
    about 70 % right on balanced synthetic cases): mean |second difference| / mean |first
    difference| of the cell values on both axes; point samples (centre) alias and keep noise, so
    they are rougher than cell means."""
    vals, ok = cell_values(image, region, grid)
    v = vals.mean(-1)
    num, den = 0.0, 0.0
    for a in (0, 1):
        if v.shape[a] < 3:
            continue
        lo = tuple(slice(None, -1) if i == a else slice(None) for i in range(2))
        hi = tuple(slice(1, None) if i == a else slice(None) for i in range(2))
        d1, d2 = np.diff(v, axis=a), np.diff(v, n=2, axis=a)
        ok1 = ok[hi] & ok[lo]
        ok2 = ok1[hi] & ok1[lo]
        if ok2.sum() < 4:
            continue
        num += float(np.abs(d2[ok2]).mean())
        den += float(np.abs(d1[ok1]).mean())
    if den <= 1e-6:
        return "mean"
    return "centre" if num / den > threshold else "mean"
