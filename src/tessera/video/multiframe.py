"""Recover, not imagine: combine the frames of a clip in which content moves under a fixed mosaic.

When the camera pans behind a mosaic that stays put, every frame averages a *different* part of
the hidden content into its cells, and the content that slides out from under the mosaic is seen
directly. Together the frames are many linear measurements of one image, and where they are
enough the hidden pixels can be computed instead of guessed.

The model (everything in a reference frame's pixel coordinates, ``motion.Motion`` maps frame ``t``
into them):

* unknown: the content ``u`` on a rectangle ``D`` of the reference frame that covers the region in
  every frame (one grey value per pixel and channel);
* frame ``t`` sees ``u`` through ``W_t``: each of its pixels ``p`` is ``u`` interpolated at
  ``A_t p`` (cubic, Keys a = -0.5);
* measurements: every unmasked pixel of frame ``t`` that falls in ``D`` (noise ``pixel_std``:
  interpolation, compression and motion errors, measured by the motion's ring residual) and every
  mosaic cell of frame ``t`` entirely inside its mask: the mean of ``W_t u`` over the cell (or its
  centre pixel), noise ``cell_std`` (rounding to integers, 1/sqrt(12), plus what the cell's own
  pixels say about compression);
* prior: ``u ~ N(u0, prior_std^2)`` per pixel, ``u0`` the frame-by-frame restorations moved into
  the reference and averaged.

The posterior mean solves ``(A^T S^-1 A + I / prior_std^2) u = A^T S^-1 y + u0 / prior_std^2``
(conjugate gradients with a Jacobi preconditioner on scipy.sparse operators, all three colour
channels at once). The same solve, fed random right-hand sides with the measurements' and the
prior's covariance, draws samples of the posterior error; their spread is each pixel's posterior
standard deviation: near 0 where the frames determine the pixel, ``prior_std`` where they say
nothing about it. A pixel is **recovered** when that spread is at most ``recovered_std`` grey
levels, otherwise **imagined**.

Output frame ``t`` = ``W_t u`` where recovered; where the spread reaches ``blend_std``, its own
frame-by-frame restoration plus the correction the frames made to the prior, ``W_t (u - u0)`` (so
where nothing moves the output *is* the frame-by-frame result); linear in between; then projected onto frame ``t``'s own cells
(``restore.consistency.project``): re-mosaicking every output frame gives its mosaic back.

Seam for the video pipeline (``tessera.video.pipeline``): a clip restorer is called per chunk of a
region track with ``frames`` (RGB uint8, full frames or crops around the track), the track's
``masks`` (bool per frame) and the track's ``grid`` (one Grid, or one per frame), and returns
:class:`Recovery`; :func:`restore_clip` does motion estimation, frame-by-frame priors and recovery
in one call and falls back to the priors for frames whose motion is not trusted. Everything but the
posterior mean and the output frames needs no prior (:func:`prepare`: motion, measurements, normal
equations, probes), so :class:`MultiframeRestorer` computes it while its fallback makes the priors.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace

import cv2
import numpy as np

from tessera.mosaic.lattice import Lattice
from tessera.mosaic.region import Grid, is_point
from tessera.restore.classical import _keys
from tessera.restore.consistency import project
from tessera.video.motion import Motion, MotionConfig, available_cpus, estimate_motion

QUANTIZATION_STD = float(np.sqrt(1.0 / 12.0))  # rounding a cell's mean to an integer


class TooLarge(ValueError):
    """The region (over the clip's motion) needs more unknowns than ``max_unknowns``."""


@dataclass(frozen=True)
class MultiframeConfig:
    """prior_std: how far (grey levels, per pixel) the prior (the learned restorer's output) is
    trusted to be from the truth; sets how weak the prior is. pixel_std: noise of unmasked pixels
    as seen through the motion (None: from the motions' ring residuals). cell_std: noise of a cell
    value (None: rounding plus what compression left inside the cells). recovered_std: posterior
    spread (grey levels) at or below which a pixel counts as recovered. blend_std: spread at which
    the output is the prior again (linear in between). min_confidence: frames whose motion
    confidence is lower are not used (and keep their prior). probes: random solves for the spread.
    iterations/tol: conjugate-gradient stopping rule. margin: pixels of context around the region
    in the unknown rectangle. max_unknowns: refuse larger problems (split the clip or the region).
    guard: unmasked pixels this close to the mask are not used (compression rings around the mosaic's
    edges); None: 0 when the mosaic's cells are flat (no lossy compression), else 2. max_misfit:
    the solution must explain the observed cells to within this many times their noise (RMS);
    otherwise the content did not move as the pixels around it did (a moving object, a face, parallax)
    and the clip is left to the prior (``Recovery.info['rejected']``). min_recovered: so is a clip in
    which less than this fraction of the region's pixels would be recovered (the frames do not
    determine the content; their correction to the prior would be mostly motion-model error)."""

    prior_std: float = 20.0
    pixel_std: float | None = None
    cell_std: float | None = None
    recovered_std: float = 3.0
    blend_std: float = 8.0
    min_confidence: float = 0.9
    probes: int = 16
    iterations: int = 500
    tol: float = 1e-5
    probe_tol: float = 3e-3
    margin: int = 4
    max_unknowns: int = 400_000
    guard: int | None = None
    max_misfit: float = 4.0
    min_recovered: float = 0.002
    seed: int = 0

    def __post_init__(self) -> None:
        if self.prior_std <= 0:
            raise ValueError(f"prior_std must be > 0, got {self.prior_std}")
        for name in ("pixel_std", "cell_std"):
            v = getattr(self, name)
            if v is not None and v <= 0:
                raise ValueError(f"{name} must be > 0 (or None to estimate it), got {v}")
        if not 0 < self.recovered_std < self.blend_std:
            raise ValueError(f"need 0 < recovered_std < blend_std, got {self.recovered_std}, {self.blend_std}")
        if not 0 <= self.min_confidence <= 1:
            raise ValueError(f"min_confidence must lie in [0, 1], got {self.min_confidence}")
        if self.guard is not None and self.guard < 0:
            raise ValueError(f"guard must be >= 0 (or None), got {self.guard}")
        if self.max_misfit <= 0:
            raise ValueError(f"max_misfit must be > 0, got {self.max_misfit}")
        if not 0 <= self.min_recovered < 1:
            raise ValueError(f"min_recovered must lie in [0, 1), got {self.min_recovered}")
        if self.probes < 2 or self.iterations < 1 or self.tol <= 0 or self.margin < 3 or self.max_unknowns < 1:
            raise ValueError("need probes >= 2, iterations >= 1, tol > 0, margin >= 3, max_unknowns >= 1")


@dataclass
class Recovery:
    """frames: the restored frames (RGB uint8), each re-mosaicking to its observed mosaic.
    std: per frame, float32 (H, W) posterior spread in grey levels inside the mask (0 outside: seen).
    determined: per frame, float32 (H, W) in [0, 1]: 1 - std / prior_std (1 outside the mask).
    recovered / imagined: per frame, bool (H, W) split of the mask. used: which frames' measurements
    entered the solve. residual: the largest re-mosaic residual of the outputs (grey levels).
    content / content_std: the reconstruction (float (h, w, 3)) and its posterior spread (h, w) on
    the rectangle of the reference frame whose top-left pixel is ``origin`` (x, y); None when no
    frame was used."""

    frames: list[np.ndarray]
    std: list[np.ndarray]
    determined: list[np.ndarray]
    recovered: list[np.ndarray]
    imagined: list[np.ndarray]
    used: list[bool]
    residual: float
    content: np.ndarray | None = None
    content_std: np.ndarray | None = None
    origin: tuple[int, int] = (0, 0)
    info: dict = field(default_factory=dict)


# ----------------------------------------------------------------------------- operators


def _cubic_weights(t: np.ndarray) -> np.ndarray:
    """(N,) fractions in [0, 1) -> (N, 4) Keys (a = -0.5) weights of the samples at offsets -1, 0, 1, 2
    (``tessera.restore.classical._keys`` at t + 1, t, 1 - t, 2 - t, written out)."""
    s = 1.0 - t
    near = lambda d: (1.5 * d - 2.5) * d * d + 1.0  # noqa: E731  |d| <= 1
    far = lambda d: ((-0.5 * d + 2.5) * d - 4.0) * d + 2.0  # noqa: E731  1 < |d| < 2
    return np.stack([far(t + 1.0), near(t), near(s), far(s + 1.0)], axis=1)


def _sample_matrix(xy: np.ndarray, origin: tuple[int, int], shape: tuple[int, int]):
    """Rows sampling an image on the rectangle ``shape`` at ``origin`` (x0, y0) at points ``xy``
    (N, 2) with the cubic kernel -> (csr (N, h*w), ok (N,) bool: support inside the rectangle).
    Built in CSR form directly: 16 entries a row (clamped at the rectangle's edges, where a row
    may name a column twice: only rows with ``ok`` False, which callers drop or ignore)."""
    import scipy.sparse as sp

    h, w = shape
    x = xy[:, 0] - origin[0]
    y = xy[:, 1] - origin[1]
    fx, fy = np.floor(x), np.floor(y)
    ok = (fx >= 1) & (fx <= w - 3) & (fy >= 1) & (fy <= h - 3)
    offs = np.arange(-1, 3)
    ix = np.clip(fx.astype(np.int64)[:, None] + offs, 0, w - 1)
    iy = np.clip(fy.astype(np.int64)[:, None] + offs, 0, h - 1) * w
    cols = (iy[:, :, None] + ix[:, None, :]).reshape(-1)
    vals = (_cubic_weights(y - fy)[:, :, None] * _cubic_weights(x - fx)[:, None, :]).reshape(-1)
    index = np.int32 if h * w < 2**31 and 16 * len(xy) < 2**31 else np.int64
    indptr = np.arange(0, 16 * len(xy) + 1, 16, dtype=index)
    M = sp.csr_matrix((vals, cols.astype(index), indptr), shape=(len(xy), h * w))
    return M, ok


def _pixel_coords(rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    return np.stack([cols.astype(np.float64), rows.astype(np.float64)], axis=1)


def _cg(apply_Q, B: np.ndarray, X0: np.ndarray, diag: np.ndarray, iterations: int, tol: float, stop=None) -> tuple[np.ndarray, int, float]:
    """Jacobi-preconditioned conjugate gradients on Q X = B from X0, every column independently
    (vectorized). The residual is relative to the larger of B and the starting residual. ``stop``:
    a threading.Event that ends the iterations early when set. Returns (X, iterations run, largest
    relative residual)."""
    X = np.array(X0, dtype=np.float64, order="C")
    R = B - apply_Q(X)
    Minv = (1.0 / diag)[:, None]
    Z = Minv * R
    P = Z.copy()
    tmp = np.empty_like(R)
    rz = np.einsum("ij,ij->j", R, Z)
    bnorm = np.maximum(np.sqrt(np.maximum(np.einsum("ij,ij->j", B, B), np.einsum("ij,ij->j", R, R))), 1e-30)
    rel = float(np.max(np.sqrt(np.einsum("ij,ij->j", R, R)) / bnorm))
    it = 0
    for it in range(1, iterations + 1):
        if rel <= tol or (stop is not None and stop.is_set()):
            it -= 1
            break
        QP = apply_Q(P)
        pq = np.einsum("ij,ij->j", P, QP)
        alpha = np.where(pq > 0, rz / np.where(pq > 0, pq, 1.0), 0.0)
        X += np.multiply(P, alpha, out=tmp)
        R -= np.multiply(QP, alpha, out=tmp)
        np.multiply(R, Minv, out=Z)
        rz_new = np.einsum("ij,ij->j", R, Z)
        beta = np.where(rz > 0, rz_new / np.where(rz > 0, rz, 1.0), 0.0)
        P *= beta
        P += Z
        rz = rz_new
        rel = float(np.max(np.sqrt(np.einsum("ij,ij->j", R, R)) / bnorm))
    return X, it, rel


def _map(fn, items: list) -> list:
    """[fn(x) for x in items], on two threads when this process may use more than one CPU (the
    per-frame work is mostly numpy, scipy and OpenCV, which release the GIL); order kept."""
    if len(items) < 2 or available_cpus() < 2:
        return [fn(x) for x in items]
    with ThreadPoolExecutor(2) as pool:
        return list(pool.map(fn, items))


PROBE_GROUPS = 2  # the probes are solved in this many column groups (fixed, so results do not depend on the machine)


def _grids(grid: Grid | Sequence[Grid], n: int) -> list[Grid]:
    if isinstance(grid, Grid):
        return [grid] * n
    grids = list(grid)
    if len(grids) != n or not all(isinstance(g, Grid) for g in grids):
        raise ValueError(f"grid must be one Grid or one Grid per frame ({n})")
    return grids


def _check_clip(frames, masks) -> tuple[list[np.ndarray], list[np.ndarray]]:
    n = len(frames)
    if n == 0:
        raise ValueError("no frames")
    if len(masks) != n:
        raise ValueError(f"{n} frames but {len(masks)} masks")
    fr = [np.asarray(f) for f in frames]
    shape = fr[0].shape
    if len(shape) != 3 or shape[2] != 3 or fr[0].dtype != np.uint8:
        raise ValueError(f"frames must be RGB uint8 (H, W, 3), got {fr[0].dtype} {shape}")
    ms = []
    for i, (f, m) in enumerate(zip(fr, masks)):
        m = np.asarray(m).astype(bool)
        if f.shape != shape or f.dtype != np.uint8 or m.shape != shape[:2]:
            raise ValueError(f"frame {i} or its mask does not match frame 0 ({shape[1]}x{shape[0]} RGB uint8)")
        ms.append(m)
    return fr, ms


# ----------------------------------------------------------------------------- recovery


@dataclass
class Prepared:
    """What a clip's frames, masks, grids and motions alone give (no prior needed), from
    :func:`prepare`: the unknown rectangle ``D`` (x, y, w, h in the reference), which frames are used,
    the noise levels, the normal equations (``system``) and, when asked for, the posterior error
    samples (``probes``, (N, k)). :func:`recover_clip` takes it as ``prepared=`` so that this part can
    run while the priors are being made (the video pipeline does)."""

    used: list[bool]
    D: tuple[int, int, int, int] | None = None
    system: "_System | None" = None
    probes: np.ndarray | None = None
    spreads: dict[int, np.ndarray] | None = None  # used frame -> _frame_spread
    info: dict = field(default_factory=dict)


def prepare(frames, masks, grid, motions, *, config: MultiframeConfig = MultiframeConfig(), probes: bool = True, stop=None) -> Prepared:
    """The measurements of a clip over the unknown rectangle, their normal equations and (``probes``)
    the posterior error samples; raises :class:`TooLarge`. ``stop``: a threading.Event that ends the
    probe solves early (what they have then errs towards imagined)."""
    frames, masks = _check_clip(frames, masks)
    n = len(frames)
    grids = _grids(grid, n)
    if len(motions) != n:
        raise ValueError(f"{n} frames but {len(motions)} motions")
    cfg = config
    used = [bool(m.any()) and mo.confidence >= cfg.min_confidence for m, mo in zip(masks, motions)]
    info: dict = {"unknowns": 0, "iterations": 0, "cg_residual": 0.0}
    if not any(used):
        return Prepared(used, info=info)
    # 1. the unknown rectangle D (reference coordinates): every used frame's region, plus a margin
    D = _domain(masks, motions, used, cfg.margin)
    N = D[2] * D[3]
    if N > cfg.max_unknowns:
        raise TooLarge(f"multi-frame recovery would solve for {N} pixels (> max_unknowns {cfg.max_unknowns}): split the clip or the region")
    info["unknowns"] = N
    # 2. noise levels
    pixel_std, guard = _noise(frames, masks, grids, motions, used, cfg)
    info["pixel_std"], info["guard"] = pixel_std, guard
    # 3. measurements: unmasked pixels (direct) and mosaic cells, as sparse rows over D
    direct, cells = [], []
    for d, c in _map(lambda t: (_direct_rows(frames[t], masks[t], motions[t], D, guard),
                                _cell_rows(frames[t], masks[t], grids[t], motions[t], D, pixel_std, cfg.cell_std)), [t for t in range(n) if used[t]]):
        direct.append(d)
        cells.append(c)
    system = _System([d for d in direct if d is not None], [c for c in cells if c is not None], N, pixel_std, cfg)
    info["measurements"] = system.measurements
    out = Prepared(used, D, system, info=info)
    if probes:
        out.probes = system.probes(cfg, stop, info)
        out.spreads = _spreads(out.probes, D, masks, grids, motions, used, cfg)
    return out


def _spreads(probes, D, masks, grids, motions, used, cfg: MultiframeConfig) -> dict[int, np.ndarray]:
    todo = [t for t in range(len(masks)) if used[t]]
    return dict(zip(todo, _map(lambda t: _frame_spread(masks[t], grids[t], motions[t], D, probes, cfg), todo)))


def recover_clip(
    frames: Sequence[np.ndarray],
    masks: Sequence[np.ndarray],
    grid: Grid | Sequence[Grid],
    motions: Sequence[Motion],
    prior: Sequence[np.ndarray] | None = None,
    *,
    config: MultiframeConfig = MultiframeConfig(),
    prepared: Prepared | None = None,
) -> Recovery:
    """Reconstruct what the mosaic hides from all frames of a clip (see the module docstring).

    frames: RGB uint8 (H, W, 3), the mosaicked frames as observed. masks: bool (H, W) per frame,
    True = hidden by the mosaic. grid: the mosaic's lattice (one Grid, or one per frame).
    motions: per frame, its map into the reference frame (:func:`tessera.video.motion.estimate_motion`).
    prior: per frame, a restoration of it to start from and to fall back on (e.g. the learned
    restorer's output, already consistent with the mosaic); None = the classical ``smooth``
    interpolation. Pixels outside the masks are returned unchanged. ``prepared``: :func:`prepare`'s
    result for these frames and motions with this config (else computed here).

    A clip is left to the prior (``info['rejected']``, every output its prior) when the solution
    does not explain the cells (see ``max_misfit``) or when less than ``min_recovered`` of the
    region's pixels would be recovered: there the frames do not determine the content, and the
    correction they would make to the prior is mostly the motion model's error.
    """
    frames, masks = _check_clip(frames, masks)
    n = len(frames)
    grids = _grids(grid, n)
    prior = _check_prior(prior, frames, masks, grids)
    cfg = config
    if prepared is None:
        prepared = prepare(frames, masks, grids, motions, config=cfg, probes=False)
    used, D, info = prepared.used, prepared.D, dict(prepared.info)
    out_frames = [np.where(m[..., None], p, f) for f, m, p in zip(frames, masks, prior)]
    std_maps = [np.where(m, np.float32(cfg.prior_std), np.float32(0)).astype(np.float32) for m in masks]
    if not any(used):
        return _finish(out_frames, std_maps, frames, masks, grids, used, cfg, info)
    todo = [t for t in range(n) if used[t]]
    probes, spreads = prepared.probes, prepared.spreads
    if spreads is not None and _nothing_recovered(spreads, cfg, info):  # the mean is not needed
        return _finish(out_frames, std_maps, frames, masks, grids, used, cfg, info)

    # 4.-6. the prior moved into the reference, then the posterior mean (and its spread)
    u0 = _prior_in_reference([prior[t] for t in todo], [motions[t] for t in todo], D[:2], (D[3], D[2]))
    u, probes = _solve(prepared.system, u0, cfg, info, probes)
    if info["cell_misfit"] > cfg.max_misfit:  # the motion model does not hold: nothing is recovered
        info["rejected"] = f"cell misfit {info['cell_misfit']:.1f} > {cfg.max_misfit}"
        return _finish(out_frames, std_maps, frames, masks, grids, [False] * n, cfg, info)
    if spreads is None:
        spreads = _spreads(probes, D, masks, grids, motions, used, cfg)
        if _nothing_recovered(spreads, cfg, info):
            return _finish(out_frames, std_maps, frames, masks, grids, used, cfg, info)
    std = np.minimum(np.sqrt(np.mean(probes**2, axis=1)), cfg.prior_std)  # (N,) posterior spread
    content = (u.reshape(D[3], D[2], 3), std.reshape(D[3], D[2]), D[:2])

    # 7. each used frame: its prior moved towards W_t u where the frames determine the pixels
    done = _map(lambda t: _frame_output(out_frames[t], frames[t], masks[t], grids[t], prior[t], motions[t], D, u, u0, spreads[t], cfg), todo)
    for t, (img, sd) in zip(todo, done):
        out_frames[t], std_maps[t] = img, sd
    return _finish(out_frames, std_maps, frames, masks, grids, used, cfg, info, content)


def _nothing_recovered(spreads: dict[int, np.ndarray], cfg: MultiframeConfig, info: dict) -> bool:
    """Whether less than ``min_recovered`` of the used frames' region pixels have a posterior spread
    of at most ``recovered_std``; if so the clip is marked rejected in ``info``."""
    hit = sum(int(np.count_nonzero(s <= cfg.recovered_std)) for s in spreads.values())
    info["recoverable"] = hit / max(sum(s.size for s in spreads.values()), 1)
    if info["recoverable"] >= cfg.min_recovered:
        return False
    info["rejected"] = f"{100 * info['recoverable']:.2f} % recoverable < {100 * cfg.min_recovered:g} %"
    return True


def _noise(frames, masks, grids, motions, used, cfg: MultiframeConfig) -> tuple[float, int]:
    """(pixel_std, guard): the unmasked pixels' noise through the motion (the ring residuals of the
    frames other than the reference) and how far from the mask they are trusted."""
    ref = _reference(motions)
    res = [mo.residual for t, mo in enumerate(motions) if used[t] and t != ref and np.isfinite(mo.residual)]
    pixel_std = cfg.pixel_std if cfg.pixel_std is not None else max(float(np.median(res)) / np.sqrt(2.0) if res else 1.0, 0.5)
    guard = cfg.guard if cfg.guard is not None else (2 if _compressed(frames, masks, grids, used) else 0)
    return pixel_std, guard


def _check_prior(prior, frames, masks, grids) -> list[np.ndarray]:
    if prior is None:
        from tessera.restore.classical import smooth

        prior = [project(smooth(f, m, g), f, m, g).image if m.any() else f.copy() for f, m, g in zip(frames, masks, grids)]
    prior = [np.asarray(p) for p in prior]
    if len(prior) != len(frames) or any(p.shape != frames[0].shape or p.dtype != np.uint8 for p in prior):
        raise ValueError("prior must be one RGB uint8 image per frame, of the frames' size")
    return prior


def _domain(masks, motions, used, margin: int) -> tuple[int, int, int, int]:
    """(ox, oy, dw, dh): the rectangle of the reference frame that covers every used frame's region
    (its box grown by ``margin``) moved into the reference, plus the cubic kernel's reach."""
    corners = []
    for t, m in enumerate(masks):
        if not used[t]:
            continue
        ys, xs = np.nonzero(m)
        x0, y0 = xs.min() - margin, ys.min() - margin
        x1, y1 = xs.max() + margin, ys.max() + margin
        corners.append(motions[t].apply(np.array([[x0, y0], [x1, y0], [x0, y1], [x1, y1]], np.float64)))
    allc = np.concatenate(corners)
    ox, oy = int(np.floor(allc[:, 0].min())) - 2, int(np.floor(allc[:, 1].min())) - 2
    return ox, oy, int(np.ceil(allc[:, 0].max())) + 3 - ox, int(np.ceil(allc[:, 1].max())) + 3 - oy


def _direct_rows(f: np.ndarray, m: np.ndarray, mo: Motion, D, guard: int):
    """The frame's unmasked pixels (``guard`` px away from the mask) whose position in the reference
    lies inside D: (sparse rows over D, observed values (k, 3)), or None."""
    H, W = m.shape
    ox, oy, dw, dh = D
    near = cv2.dilate(m.astype(np.uint8), np.ones((2 * guard + 1, 2 * guard + 1), np.uint8)) > 0 if guard else m
    inv = np.linalg.inv(mo.matrix)
    back = (np.c_[[[ox, oy], [ox + dw, oy], [ox, oy + dh], [ox + dw, oy + dh]], np.ones(4)] @ inv.T)
    back = back[:, :2] / back[:, 2:3]
    bx0, by0 = max(int(np.floor(back[:, 0].min())), 0), max(int(np.floor(back[:, 1].min())), 0)
    bx1, by1 = min(int(np.ceil(back[:, 0].max())) + 1, W), min(int(np.ceil(back[:, 1].max())) + 1, H)
    if bx1 <= bx0 or by1 <= by0:
        return None
    rr, cc = np.mgrid[by0:by1, bx0:bx1]
    keep = ~near[by0:by1, bx0:bx1]
    rr, cc = rr[keep], cc[keep]
    M, ok = _sample_matrix(mo.apply(_pixel_coords(rr, cc)), (ox, oy), (dh, dw))
    return M[ok], f[rr[ok], cc[ok]].astype(np.float64)


def _cell_rows(f: np.ndarray, m: np.ndarray, g: Grid, mo: Motion, D, pixel_std: float, cell_std: float | None):
    """The mosaic cells entirely inside the mask whose pixels all map into D: (sparse rows over D,
    observed values (k, 3), weights 1/noise (k,)), or None."""
    import scipy.sparse as sp

    ox, oy, dw, dh = D
    lat = Lattice(m.shape, g)
    active = lat.inside(m)
    if not active.any():
        return None
    values = lat.values(f)
    ai, aj = np.nonzero(active)
    if is_point(g.sampling):
        pr, pc, owner, weight = lat.sr[ai], lat.sc[aj], np.arange(len(ai)), np.ones(len(ai))
    else:
        number = np.full(active.size, -1)
        number[np.flatnonzero(active)] = np.arange(len(ai))  # active cell -> its row
        cell_of = number[lat.ids()]  # (H, W): the row of every pixel's cell, -1 if not active
        pr, pc = np.nonzero(cell_of >= 0)
        owner = cell_of[pr, pc]
        weight = 1.0 / lat.counts[ai, aj][owner]
    M, ok = _sample_matrix(mo.apply(_pixel_coords(pr, pc)), (ox, oy), (dh, dw))
    cell_ok = np.bincount(owner, weights=(~ok).astype(np.float64), minlength=len(ai)) == 0
    C = sp.csr_matrix((weight, (owner, np.arange(len(owner)))), shape=(len(ai), len(owner)))
    # cell noise: rounding, the interpolation model averaged over the cell, compression inside it
    npx = lat.counts[ai, aj]
    if cell_std is not None:
        sd = np.full(len(ai), cell_std)
    else:
        sd = np.sqrt(QUANTIZATION_STD**2 + pixel_std**2 / npx + _within_cell_var(f, lat)[ai, aj] / npx)
    return (C @ M)[cell_ok], values[ai, aj][cell_ok], 1.0 / sd[cell_ok]


class _System:
    """The normal equations of a clip's measurements, kept factored:
    Q = Ad^T Ad / s^2 + Ac^T diag(wc^2) Ac + I / prior^2, and the data term A^T S^-1 y."""

    def __init__(self, direct, cells, N: int, pixel_std: float, cfg: MultiframeConfig):
        import scipy.sparse as sp

        Ad = sp.vstack([d[0] for d in direct]).tocsr() if direct else sp.csr_matrix((0, N))
        yd = np.concatenate([d[1] for d in direct]) if direct else np.zeros((0, 3))
        self.Ac = sp.vstack([c[0] for c in cells]).tocsr() if cells else sp.csr_matrix((0, N))
        self.yc = np.concatenate([c[1] for c in cells]) if cells else np.zeros((0, 3))
        self.wc = np.concatenate([c[2] for c in cells]) if cells else np.zeros(0)
        self.Acw = sp.diags(self.wc) @ self.Ac  # whitened cell rows
        self.Qd = ((Ad.T @ Ad) / pixel_std**2).tocsr()
        self.AcwT = self.Acw.T.tocsr()
        self.lam = 1.0 / cfg.prior_std**2
        self.diag = self.Qd.diagonal() + np.asarray(self.Acw.multiply(self.Acw).sum(axis=0)).ravel() + self.lam
        self.data = (Ad.T @ yd) / pixel_std**2 + self.AcwT @ (self.wc[:, None] * self.yc)
        self.measurements = {"pixels": int(Ad.shape[0]), "cells": int(self.Ac.shape[0])}
        # posterior error samples e = x - E[x | y] for x drawn from the prior and y = A x + noise, i.e.
        # Q e = x / prior^2 - A^T S^-1/2 noise, solved from e = x: where CG has not converged yet a probe
        # keeps the prior's spread, so a loose probe_tol errs towards imagined, never towards recovered
        rng = np.random.default_rng(cfg.seed)
        k = cfg.probes
        eps_d = rng.standard_normal((Ad.shape[0], k))
        eps_c = rng.standard_normal((self.Ac.shape[0], k))
        self.x = rng.standard_normal((N, k)) * cfg.prior_std
        self.B_probe = self.lam * self.x - (Ad.T @ eps_d) / pixel_std - self.AcwT @ eps_c
        self._32 = tuple(A.astype(np.float32) for A in (self.Qd, self.Acw, self.AcwT))

    def apply_Q(self, X: np.ndarray) -> np.ndarray:
        return _spmm(self.Qd, X) + _spmm(self.AcwT, _spmm(self.Acw, X)) + self.lam * X

    def mean(self, u0: np.ndarray, cfg: MultiframeConfig) -> tuple[np.ndarray, int, float]:
        return _cg(self.apply_Q, self.data + self.lam * u0, u0, self.diag, cfg.iterations, cfg.tol)

    def misfit(self, u: np.ndarray) -> float:
        """How well ``u`` explains the cells, in units of their noise (about 1 or less when the motion
        model holds; content that moves otherwise than the pixels around it leaves far more)."""
        return float(np.sqrt(np.mean((((self.Ac @ u) - self.yc) * self.wc[:, None]) ** 2))) if self.Ac.shape[0] else 0.0

    def _apply_Q32(self, X: np.ndarray) -> np.ndarray:
        """Q X with the operators in single precision (the probes only estimate a spread; 30 % faster)."""
        Qd, Acw, AcwT = self._32
        X32 = X.astype(np.float32)
        return Qd @ X32 + AcwT @ (Acw @ X32) + self.lam * X

    def _probe_group(self, cols, cfg: MultiframeConfig, stop):
        return _cg(self._apply_Q32, np.ascontiguousarray(self.B_probe[:, cols]), self.x[:, cols], self.diag, cfg.iterations, cfg.probe_tol, stop)

    def start_probes(self, cfg: MultiframeConfig, stop: threading.Event):
        """The probe solves in PROBE_GROUPS column groups, on threads when this process may use more
        than one CPU: -> a function that waits for them and returns (probes, iterations, residual)."""
        groups = np.array_split(np.arange(cfg.probes), min(PROBE_GROUPS, cfg.probes))
        if available_cpus() < 2:
            return lambda: _joined([self._probe_group(g, cfg, stop) for g in groups])
        pool = ThreadPoolExecutor(len(groups))
        running = [pool.submit(self._probe_group, g, cfg, stop) for g in groups]

        def wait():
            try:
                return _joined([r.result() for r in running])
            finally:  # done or interrupted: the probe threads stop at their next iteration
                stop.set()
                pool.shutdown(wait=True)

        return wait

    def probes(self, cfg: MultiframeConfig, stop: threading.Event | None, info: dict) -> np.ndarray:
        probes, it, rel = self.start_probes(cfg, stop if stop is not None else threading.Event())()
        info["iterations"], info["cg_residual"] = max(info.get("iterations", 0), it), max(info.get("cg_residual", 0.0), rel)
        return probes


def _spmm(A, X: np.ndarray) -> np.ndarray:
    """A @ X (sparse CSR times a few dense float64 columns), one column at a time: scipy's
    one-vector product is ~1.4x faster than its several-vector one here, with the same sums in the
    same order (bit-identical)."""
    out = np.empty((A.shape[0], X.shape[1]), dtype=np.result_type(A.dtype, X.dtype), order="F")
    for j in range(X.shape[1]):
        out[:, j] = A @ X[:, j]
    return out


def _joined(done) -> tuple[np.ndarray, int, float]:
    return np.concatenate([d[0] for d in done], axis=1), max(d[1] for d in done), max(d[2] for d in done)


def _solve(system: _System, u0: np.ndarray, cfg: MultiframeConfig, info: dict, probes: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray | None]:
    """Posterior mean (N, 3), then (unless ``probes`` are given, or its cell misfit refuses the clip:
    None) ``probes`` posterior samples of its error (N, k), solved while the mean is."""
    stop = threading.Event()
    wait = system.start_probes(cfg, stop) if probes is None else None
    try:
        u, it, rel = system.mean(u0, cfg)
    except BaseException:  # interrupted: the probe threads stop at their next iteration
        stop.set()
        if wait is not None:
            wait()
        raise
    info["cell_misfit"] = system.misfit(u)
    info["iterations"], info["cg_residual"] = max(info.get("iterations", 0), it), max(info.get("cg_residual", 0.0), rel)
    if wait is None:
        return u, probes
    if info["cell_misfit"] > cfg.max_misfit:  # refused: the probes would be wasted
        stop.set()
        wait()
        return u, None
    probes, pit, prel = wait()
    info["iterations"], info["cg_residual"] = max(info["iterations"], pit), max(info["cg_residual"], prel)
    return u, probes


def _frame_spread(m, g: Grid, mo: Motion, D, probes, cfg: MultiframeConfig) -> np.ndarray:
    """One used frame's posterior spread of W_t u at its mask pixels (``np.nonzero(m)`` order): the
    probes moved into the frame; ``prior_std`` where the kernel leaves D."""
    y0, y1, x0, x1 = _cell_box(m, g)
    rr, cc = np.nonzero(m[y0:y1, x0:x1])
    M, ok = _sample_matrix(mo.apply(_pixel_coords(rr + y0, cc + x0)), D[:2], (D[3], D[2]))
    s = np.sqrt(np.mean((M @ probes) ** 2, axis=1))
    return np.where(ok, np.minimum(s, cfg.prior_std), cfg.prior_std).astype(np.float32)


def _frame_output(out: np.ndarray, f, m, g: Grid, prior_t, mo: Motion, D, u, u0, s, cfg: MultiframeConfig):
    """One used frame: W_t u where recovered (spread ``s``, from :func:`_frame_spread`); elsewhere its
    own prior plus the correction the frames made to the (averaged) prior, moved into this frame;
    then fitted to its cells. -> (image, spread map). Worked on the whole cells around the mask only
    (the rest of the frame is not touched)."""
    y0, y1, x0, x1 = _cell_box(m, g)
    box = (slice(y0, y1), slice(x0, x1))
    rr, cc = np.nonzero(m[box])
    M, _ = _sample_matrix(mo.apply(_pixel_coords(rr + y0, cc + x0)), D[:2], (D[3], D[2]))
    moved = M @ np.concatenate([u, u0], axis=1)  # W_t u and W_t u0
    s = s.astype(np.float64)
    wgt = np.clip((cfg.blend_std - s) / (cfg.blend_std - cfg.recovered_std), 0.0, 1.0)[:, None]
    img = out[box].astype(np.float64)
    img[rr, cc] = moved[:, :3] + (1.0 - wgt) * (prior_t[box][rr, cc].astype(np.float64) - moved[:, 3:6])
    var = np.zeros((y1 - y0, x1 - x0))
    var[rr, cc] = s**2 + 1e-2
    sm = np.zeros(m.shape, np.float32)
    sm[rr + y0, cc + x0] = s
    result = out.copy()
    result[box] = _fit_cells(img, f[box], m[box], g.window(x0, y0), var)
    return result, sm


def _cell_box(m: np.ndarray, g: Grid) -> tuple[int, int, int, int]:
    """(y0, y1, x0, x1): the whole cells of ``g`` that the mask's box touches (edges on cell edges or
    on the image's border, so the cells inside are the image's own)."""
    lat = Lattice(m.shape, g)
    ys, xs = np.nonzero(m.any(axis=1))[0], np.nonzero(m.any(axis=0))[0]
    return int(lat.rs[lat.ri[ys[0]]]), int(lat.re[lat.ri[ys[-1]]]), int(lat.cs[lat.ci[xs[0]]]), int(lat.ce[lat.ci[xs[-1]]])


def _reference(motions: Sequence[Motion]) -> int:
    """The frame whose motion is the identity (the reference), or -1."""
    for t, mo in enumerate(motions):
        if np.allclose(mo.matrix, np.eye(3)) and mo.residual == 0.0:
            return t
    return -1


def _fit_cells(img: np.ndarray, observed: np.ndarray, mask: np.ndarray, g: Grid, var: np.ndarray) -> np.ndarray:
    """Make every constrained mean cell of ``img`` (float) re-mosaic to its observed value again,
    moving each pixel in proportion to its posterior variance ``var`` (the exact-constraint update
    of a Gaussian with that diagonal covariance): recovered pixels stay, imagined ones absorb the
    difference, also of the rounding to integers. Returns uint8; ``project`` then has nothing left
    to do but check."""
    if g.sampling == "mean":
        lat = Lattice(mask.shape, g)
        target, active = lat.values(observed), lat.inside(mask)
        n = lat.counts[..., None].astype(np.float64)
        for _ in range(3):  # clipping to [0, 255] can leave a little; repeat on what is left
            r = (target - lat.means(img)) * active[..., None]  # (nR, nC, 3)
            r = r - np.clip(r, -0.5 + 1e-6, 0.5)  # only what re-mosaicking (mean rounded half up) would see
            if not r.any():
                break
            gain = lat.expand(lat.counts / np.maximum(lat.sums(var), 1e-12)) * var  # (H, W): n var_p / sum var
            img = np.clip(img + lat.expand(r) * gain[..., None], 0.0, 255.0)
        img = np.rint(img)
        # rounding: move the least determined pixels of a cell by one level until its integer sum
        # re-mosaics to the observed value (mean rounded half up)
        sums = lat.sums(img)
        lo = np.ceil((np.rint(target) - 0.5) * n)
        hi = np.ceil((np.rint(target) + 0.5) * n) - 1
        diff = (np.where(sums < lo, lo - sums, 0) + np.where(sums > hi, hi - sums, 0)) * active[..., None]
        rs, re, cs, ce = lat.rs, lat.re, lat.cs, lat.ce
        for i, j, ch in zip(*np.nonzero(diff)):
            d = int(diff[i, j, ch])
            block = img[rs[i] : re[i], cs[j] : ce[j], ch]
            order = np.argsort(-var[rs[i] : re[i], cs[j] : ce[j]].ravel(), kind="stable")
            flat = block.reshape(-1)
            order = order[flat[order] < 255] if d > 0 else order[flat[order] > 0]
            flat[order[: abs(d)]] += np.sign(d)
            img[rs[i] : re[i], cs[j] : ce[j], ch] = flat.reshape(block.shape)
    return np.clip(np.rint(img), 0, 255).astype(np.uint8)


def _compressed(frames, masks, grids, used) -> bool:
    """Whether the mosaic's cells are not flat (lossy compression): mean within-cell variance > 0.5."""
    for f, m, g, u in zip(frames, masks, grids, used):
        lat = Lattice(m.shape, g)
        active = lat.inside(m)
        if u and active.any():
            return float(_within_cell_var(f, lat)[active].mean()) > 0.5
    return False


def _within_cell_var(f: np.ndarray, lat: Lattice) -> np.ndarray:
    """(nR, nC): mean over channels of the variance of the observed pixels inside each cell (0 for a
    clean mosaic, compression noise otherwise)."""
    f = f.astype(np.float64)
    return np.maximum(lat.means(f * f) - lat.means(f) ** 2, 0.0).mean(axis=2)


def _bilinear(img: np.ndarray, xy: np.ndarray, fill: float) -> np.ndarray:
    """img (h, w) sampled bilinearly at (N, 2) positions (x, y); ``fill`` outside."""
    mx = xy[:, 0].astype(np.float32).reshape(1, -1)
    my = xy[:, 1].astype(np.float32).reshape(1, -1)
    out = cv2.remap(img.astype(np.float32), mx, my, cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=float(fill))
    return out.reshape(-1).astype(np.float64)


def _prior_in_reference(priors, motions, origin, shape) -> np.ndarray:
    """Average of the priors moved into the rectangle (bilinear, inverse map), (h*w, 3) float."""
    h, w = shape
    ox, oy = origin
    acc = np.zeros((h, w, 3), np.float64)
    wsum = np.zeros((h, w), np.float64)
    shift = np.array([[1, 0, ox], [0, 1, oy], [0, 0, 1]], np.float64)  # rectangle -> reference coords
    for p, mo in zip(priors, motions):
        Hh, Ww = p.shape[:2]
        to_frame = np.linalg.inv(mo.matrix) @ shift  # rectangle pixel -> frame pixel
        flags = cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP
        img = cv2.warpPerspective(p.astype(np.float32), to_frame, (w, h), flags=flags, borderMode=cv2.BORDER_REPLICATE)
        ok = cv2.warpPerspective(np.ones((Hh, Ww), np.float32), to_frame, (w, h), flags=flags, borderValue=0)
        acc += img * ok[..., None]
        wsum += ok
    filled = wsum > 1e-6
    mean = acc.reshape(-1, 3)[filled.ravel()].sum(0) / max(wsum[filled].sum(), 1e-6) if filled.any() else np.full(3, 127.5)
    out = np.where(filled[..., None], acc / np.maximum(wsum, 1e-6)[..., None], mean)
    return out.reshape(-1, 3)


def _finish(out_frames, std_maps, frames, masks, grids, used, cfg: MultiframeConfig, info, content=(None, None, (0, 0))) -> Recovery:
    """Project every output frame onto its own cells and build the maps."""
    outs, det, rec, ima = [], [], [], []
    residual = 0.0
    for img, s, f, m, g in zip(out_frames, std_maps, frames, masks, grids):
        if m.any():
            proj = project(img, f, m, g)
            img = proj.image
            residual = max(residual, proj.residual_max)
        img = img.copy()
        img[~m] = f[~m]
        outs.append(img)
        d = np.where(m, 1.0 - s / cfg.prior_std, 1.0).astype(np.float32)
        det.append(np.clip(d, 0.0, 1.0))
        r = m & (s <= cfg.recovered_std)
        rec.append(r)
        ima.append(m & ~r)
    stds = [s.astype(np.float32) for s in std_maps]
    return Recovery(outs, stds, det, rec, ima, list(used), residual, content[0], content[1], content[2], info)


# ----------------------------------------------------------------------------- one call


def _frame_priors(frames, masks, grids, restorer) -> list[np.ndarray]:
    """Each frame restored on its own (the full image pipeline: model, blend, consistency)."""
    from tessera.mosaic.region import Region
    from tessera.restore.pipeline import restore_image

    out = []
    for f, m, g in zip(frames, masks, grids):
        if not m.any():
            out.append(f.copy())
            continue
        region = Region.from_mask(m, g, kind="mosaic")
        out.append(restore_image(f, regions=[region], restorer=restorer).image)
    return out


def displacement(motions: Sequence[Motion], masks: Sequence[np.ndarray]) -> float:
    """The largest distance (px) any corner of the region's box moves in the reference, over the clip."""
    worst = 0.0
    for mo, m in zip(motions, masks):
        ys, xs = np.nonzero(m)
        if ys.size == 0:
            continue
        c = np.array([[xs.min(), ys.min()], [xs.max(), ys.min()], [xs.min(), ys.max()], [xs.max(), ys.max()]], np.float64)
        worst = max(worst, float(np.abs(mo.apply(c) - c).max()))
    return worst


def restore_clip(
    frames: Sequence[np.ndarray],
    masks: Sequence[np.ndarray],
    grid: Grid | Sequence[Grid],
    *,
    model: str = "default",
    prior: Sequence[np.ndarray] | None = None,
    motion: MotionConfig = MotionConfig(),
    config: MultiframeConfig = MultiframeConfig(),
    reference: int | None = None,
) -> Recovery:
    """Motion around the region, frame-by-frame restorations with ``model`` (unless ``prior`` is
    given), then :func:`recover_clip`."""
    frames, masks = _check_clip(frames, masks)
    grids = _grids(grid, len(frames))
    motions = estimate_motion(frames, masks, reference=reference, config=motion)
    if prior is None:
        from tessera.restore.restorer import resolve_model

        prior = _frame_priors(frames, masks, grids, resolve_model(model))
    rec = recover_clip(frames, masks, grids, motions, prior, config=config)
    rec.info["motions"] = motions
    return rec


@dataclass
class MultiframeRestorer:
    """The video seam: restores the crops of one region track over a chunk of frames.

    Mosaics whose content moves under a fixed grid are recovered from all frames
    (:func:`recover_clip`, priors from ``restorer`` frame by frame, or from ``fallback``); anything
    else (no grid, not a mosaic, a grid that follows the content, less than ``min_motion`` px of
    motion, untrusted motion) is left to ``fallback`` (e.g. the video pipeline's frame-by-frame
    restorer with temporal smoothing), or to ``restorer`` frame by frame when there is none.

    Two call forms: ``restore_clip(frames, masks, grid, kind)`` (tessera.restore.restorer.ClipRestorer)
    and ``restorer(clip)`` for a track clip with ``frames``, ``regions`` (mask and grid per frame) and
    ``follows_content`` (tessera.video.pipeline.TrackClip). ``last`` keeps the latest
    :class:`Recovery` (None after a fallback) and ``last_recovered`` its recovered-pixel masks in
    the clip's frame coordinates: what marking needs to tell recovered from imagined pixels.
    """

    restorer: object  # a tessera.restore.restorer.Restorer
    config: MultiframeConfig = MultiframeConfig()
    motion: MotionConfig = MotionConfig()
    min_motion: float = 0.25
    fallback: object | None = None  # a callable clip -> frames, for the clip form
    overlap: int = 0  # > 0: the pipeline hands over clips that repeat frames of the track's previous clip
    last: Recovery | None = field(default=None, init=False)
    last_recovered: list[np.ndarray] | None = field(default=None, init=False)
    _held: dict = field(default_factory=dict, init=False, repr=False)  # track -> {frame index: fallback output}

    @property
    def name(self) -> str:
        return f"{self.restorer.name}+multiframe"

    @property
    def model_calls(self) -> int:
        return int(getattr(self.fallback, "model_calls", 0))

    def recover(self, frames, masks, grid: Grid | None, kind: str = "mosaic", prior=None, motions=None, prepared=None) -> Recovery | None:
        """The recovery of one chunk, or None when it falls back to frame by frame. ``motions``: the
        clip's motions when already estimated (``estimate_motion`` with ``self.motion``);
        ``prepared``: :meth:`prepare`'s result for them."""
        self.last = self.last_recovered = None
        frames, masks = _check_clip(frames, masks)
        if grid is None or kind != "mosaic" or len(frames) < 2 or not any(m.any() for m in masks):
            return None
        grids = _grids(grid, len(frames))
        if motions is None:
            motions = estimate_motion(frames, masks, config=self.motion)
        if not self._moves(motions, masks):
            return None
        if prior is None:
            prior = _frame_priors(frames, masks, grids, self.restorer)
        rec = recover_clip(frames, masks, grids, motions, prior, config=self.config, prepared=prepared)
        rec.info["motions"] = motions
        if "rejected" in rec.info:
            return None
        self.last, self.last_recovered = rec, rec.recovered
        return rec

    def _moves(self, motions, masks) -> bool:
        trusted = [mo for mo in motions if mo.confidence >= self.config.min_confidence]
        return len(trusted) >= 2 and displacement(trusted, masks) >= self.min_motion

    def prepare(self, frames, masks, grid: Grid, stop=None) -> tuple[list[Motion], Prepared | None]:
        """What needs no prior (run while the fallback makes the priors): the motions and, when the
        content moves, :func:`prepare` with the probes. Prepared None: not moving or too large."""
        motions = estimate_motion(frames, masks, config=self.motion)
        if not self._moves(motions, masks):
            return motions, None
        try:
            return motions, prepare(frames, masks, grid, motions, config=self.config, probes=True, stop=stop)
        except TooLarge:  # a region too large to solve for at once: frame by frame
            return motions, None

    def restore_clip(self, frames, masks, grid: Grid | None, kind: str) -> list[np.ndarray]:
        rec = self.recover(frames, masks, grid, kind)
        if rec is not None:
            return rec.frames
        return [self.restorer(f, m, grid, kind) for f, m in zip(frames, masks)]

    def __call__(self, clip) -> list[np.ndarray]:
        """A track clip: recover inside a window around the track (full frames are large), paste back.
        The motion around the track is estimated while ``fallback`` restores the clip (it does not
        need the priors)."""
        frames = [np.asarray(f) for f in clip.frames]
        masks = [r.full_mask() for r in clip.regions]
        grid, kind = clip.regions[0].grid, clip.regions[0].kind
        self.last = self.last_recovered = None
        union = np.logical_or.reduce(masks)
        fixed = not getattr(clip, "follows_content", False) and grid is not None and kind == "mosaic"
        if not fixed or not union.any():
            prior = self._fallback(clip)
            if prior is not None:
                return [np.asarray(p) for p in prior]
            return self.restore_clip(frames, masks, grid, kind) if not fixed else [f.copy() for f in frames]
        x0, y0, x1, y1 = _grown_box(union, self.motion.ring + self.motion.guard + self.config.margin + 24)
        g = grid.window(x0, y0)
        crop = [f[y0:y1, x0:x1] for f in frames]
        cmasks = [m[y0:y1, x0:x1] for m in masks]
        stop = threading.Event()
        moving = (lambda: self.prepare(crop, cmasks, g, stop)) if len(frames) >= 2 else None
        ahead, prior = _beside(moving, lambda: self._fallback(clip), stop)
        base = [np.asarray(p) for p in prior] if prior is not None else None
        cprior = [np.where(m[..., None], p[y0:y1, x0:x1], f) for p, m, f in zip(base, cmasks, crop)] if base is not None else None
        motions, prepared = ahead if ahead is not None else (None, None)
        try:
            rec = self.recover(crop, cmasks, g, kind, prior=cprior, motions=motions, prepared=prepared) if prepared is not None else None
        except TooLarge:  # a region too large to solve for at once: frame by frame
            rec = None
        if rec is None:
            return base if base is not None else self.restore_clip(frames, masks, grid, kind)
        out, self.last_recovered = _paste(rec, base if base is not None else frames, cmasks, (x0, y0, x1, y1))
        return out


    def _fallback(self, clip) -> list[np.ndarray] | None:
        """``fallback(clip)``; the frames a clip repeats from the track's previous one (``overlap`` > 0)
        are not restored again: their outputs are kept from then (the fallback's own temporal state
        continues from the frame after them)."""
        if self.fallback is None:
            return None
        idx, tid = list(getattr(clip, "indices", None) or []), getattr(clip, "track_id", None)
        held = self._held.pop(tid, {}) if self.overlap and idx else {}
        k = 0
        while k < len(idx) and idx[k] in held:
            k += 1
        if k == 0:
            outs = [np.asarray(p) for p in self.fallback(clip)]
        else:
            rest = self.fallback(replace(clip, indices=idx[k:], frames=clip.frames[k:], regions=clip.regions[k:], first=False)) if k < len(idx) else []
            outs = [held[i] for i in idx[:k]] + [np.asarray(p) for p in rest]
        if self.overlap and idx:
            for t in [t for t, h in self._held.items() if max(h) < idx[0] - 64]:  # tracks that ended
                del self._held[t]
            self._held[tid] = dict(zip(idx, outs))
        return outs


def _paste(rec: Recovery, under: list[np.ndarray], cmasks: list[np.ndarray], box) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """The recovered crops pasted into (copies of) the full frames ``under`` at ``box`` (x0, y0, x1,
    y1), and the recovered-pixel masks in full-frame coordinates."""
    x0, y0, x1, y1 = box
    out, recovered = [], []
    for i, f in enumerate(under):
        img = np.array(f, copy=True)
        img[y0:y1, x0:x1][cmasks[i]] = rec.frames[i][cmasks[i]]
        out.append(img)
        r = np.zeros(img.shape[:2], bool)
        r[y0:y1, x0:x1] = rec.recovered[i]
        recovered.append(r)
    return out, recovered


def _grown_box(mask: np.ndarray, pad: int) -> tuple[int, int, int, int]:
    """(x0, y0, x1, y1): the mask's box grown by ``pad`` pixels, clipped to the image."""
    H, W = mask.shape
    ys, xs = np.nonzero(mask)
    return max(int(xs.min()) - pad, 0), max(int(ys.min()) - pad, 0), min(int(xs.max()) + 1 + pad, W), min(int(ys.max()) + 1 + pad, H)


def _beside(background, foreground, stop: threading.Event | None = None):
    """(background(), foreground()), the two side by side when this process may use more than one
    CPU (foreground in this thread); ``background`` None: (None, foreground()). ``stop`` is set when
    the foreground fails (an interrupt included), so that the background can end early."""
    if background is None or available_cpus() < 2:
        return (background() if background is not None else None), foreground()
    with ThreadPoolExecutor(1) as pool:
        job = pool.submit(background)
        try:
            front = foreground()
        except BaseException:
            if stop is not None:
                stop.set()
            raise
        return job.result(), front
