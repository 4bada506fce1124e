"""Find mosaicked (and blurred) regions in an image by themselves, each with its grid.

Two parts, each doing what it is best at:

- the segmentation net (:mod:`tessera.models.segnet`) says *where*: a per-pixel probability
  that is good at outlines (feathered, pasted, non grid-aligned) and at small mosaics;
- grid analysis (:mod:`tessera.mosaic.grid`) says *what*: the cell size, phase and sampling of
  each proposed region, and vetoes proposals without a lattice (a region with a clear lattice
  is a mosaic; one without is kept only as a confident ``blur`` region). Where the grid is
  known, outline cells that are flat as a whole are filled in completely.

Without weights (none shipped, or ``weights=""``) detection falls back to grid analysis only:
windows of the image are searched for a lattice and the flat cells of each lattice found are
the mosaic. That finds grid-aligned mosaics on clean (PNG) images, not blurs.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from tessera.mosaic.grid import LATTICE_CONTRAST, GridEstimate, estimate_grid, lattice_contrast
from tessera.mosaic.lattice import Lattice
from tessera.mosaic.region import Grid, Region, mask_box


@dataclass(frozen=True)
class DetectConfig:
    """min_area: smallest region kept (pixels). sensitivity: 0..1, higher finds fainter regions
    (and more false ones). weights: a detector .safetensors path; None = the shipped weights;
    "" = no net (grid analysis only). blur: also report regions the net finds without a lattice
    (Gaussian blurs) at ordinary confidence; off by default, since defocused backgrounds of photos
    look alike; without it such regions need a near-certain net (kind "blur", grid None).
    backend: how the net runs: 'auto' (ONNX Runtime when installed, else torch), 'torch' or 'onnx'."""

    min_area: int = 64
    sensitivity: float = 0.5
    weights: str | None = None
    blur: bool = False
    backend: str = "auto"

    def __post_init__(self) -> None:
        if not 0.0 <= self.sensitivity <= 1.0:
            raise ValueError(f"sensitivity must be within 0..1, got {self.sensitivity}")
        if self.min_area < 1:
            raise ValueError(f"min_area must be at least 1 pixel, got {self.min_area}")
        if self.backend not in ("auto", "torch", "onnx"):
            raise ValueError(f"backend must be auto, torch or onnx, got {self.backend!r}")


def default_weights() -> Path:
    """The shipped detector's file (by the resolve rule of :mod:`tessera.weights`); raises when missing."""
    from tessera.weights import shipped_path

    return shipped_path("detector")


def load_detector(weights: str | Path | None = None, backend: str = "auto", threads: int | None = None):
    """A runner for the segmentation net (:mod:`tessera.restore.backend`: ONNX Runtime when
    installed, else torch) from ``weights`` (default: the shipped file), or None for ``weights=""``
    (grid analysis only). A missing file raises, the shipped one included: nothing degrades silently.
    threads: inference threads (default: :func:`tessera.restore.backend.default_threads`)."""
    from tessera.restore.backend import load_runner

    if weights == "":
        return None
    path = Path(weights) if weights is not None else default_weights()
    if not path.is_file():
        raise FileNotFoundError(f"detector weights {path} not found; pass an existing .safetensors file")
    from tessera.weights import WeightsError, model_name

    name = model_name(path)  # no torch here: the ONNX Runtime path never imports it
    if name != "segnet":
        raise WeightsError(f"{path} holds a {name!r} model, not the mosaic detector (segnet)")
    return load_runner(path, backend, threads=threads)


def _as_rgb(image: np.ndarray) -> np.ndarray:
    image = np.asarray(image)
    if image.ndim == 2:
        image = np.repeat(image[..., None], 3, axis=2)
    if image.ndim != 3 or image.shape[2] not in (1, 3, 4) or image.dtype != np.uint8:
        raise ValueError(f"image must be uint8 (H, W, 3) RGB, got {image.dtype} {image.shape}")
    if image.shape[2] == 1:
        image = np.repeat(image, 3, axis=2)
    return np.ascontiguousarray(image[..., :3])


#: images larger than this many pixels go through the net in horizontal bands (bounded memory).
#: 3 M was measured against 6 M on a 12 MP photo (detection in a fresh process, 3 pairs in turn):
#: peak 731 -> 533 MB, CPU +5 %, wall +6 % (more rows of context through the net); 6 M kept, the
#: 12 MP peak already being half the 1.5 GB target
BAND_PIXELS = 6_000_000
#: rows of context above and below a band (a multiple of the net's 32-px pooling grid): the net's
#: output inside a band then equals one pass over the whole image (measured: max |diff| 0 with 256
#: rows, 0.17 with 128, on a 12 MP photo)
BAND_CONTEXT = 256


def probability_map(image: np.ndarray, model) -> np.ndarray:
    """Per-pixel mosaic probability (H, W) float32 from the segmentation net (a runner from
    :func:`load_detector`, or a torch module). Large images go through it in horizontal bands of
    about :data:`BAND_PIXELS` pixels with :data:`BAND_CONTEXT` rows of context on each side, so
    memory stays bounded (no image-sized float copies beyond the result)."""
    if not hasattr(model, "backend"):
        from tessera.restore.backend import TorchRunner

        model = TorchRunner(model)
    rgb = _as_rgb(image)
    H, W = rgb.shape[:2]
    out = np.empty((H, W), np.float32)
    bands = -(-H * W // BAND_PIXELS)  # equal bands, each starting on the net's 32-px grid
    band = -(-H // bands // 32) * 32 if bands > 1 else H
    for y0 in range(0, H, band):
        y1 = min(y0 + band, H)
        if bands > 1 and y1 == H and hasattr(model, "release_after_next"):
            model.release_after_next()  # a large image: free the net's buffers once its last band is done
        a, b = max(y0 - BAND_CONTEXT, 0), min(y1 + BAND_CONTEXT, H)
        x = rgb[a:b].transpose(2, 0, 1)[None].astype(np.float32)
        x /= 127.5
        x -= 1.0
        out[y0:y1] = model(x)[0, 0, y0 - a : y1 - a]
        del x
    # sigmoid, in place: 1 / (1 + exp(-z))
    np.negative(out, out=out)
    np.exp(out, out=out)
    out += 1.0
    return np.reciprocal(out, out=out)


# ------------------------------------------------------------------ grid helpers


def _cell_index(shape: tuple[int, int], grid: Grid):
    cells = Lattice(shape, grid)
    return (cells.ri, cells.ci, *cells.shape)


#: values per band in the per-cell statistics below (bands of whole cell rows, so the results equal
#: one pass over the whole image while temporaries stay band-sized: memory per pixel stays small)
CELL_BAND = 1 << 20


def cell_flatness(image: np.ndarray, grid: Grid, tol: float) -> np.ndarray:
    """bool (nR, nC): cells whose pixels all lie within ``tol`` (per channel, sum) of the cell median-ish
    value, i.e. cells that are flat as a whole. JPEG noise is tolerated through ``tol``."""
    H, W = image.shape[:2]
    cells = Lattice((H, W), grid)
    out = np.empty(cells.shape, bool)
    for k0, k1, r0, r1 in cells.row_bands(W * image.shape[2], CELL_BAND):
        out[k0:k1] = _flatness(image[r0:r1], cells.band(r0, r1, W), tol)
    return out


def _flatness(image: np.ndarray, cells: Lattice, tol: float) -> np.ndarray:
    nR, nC = cells.shape
    img = image.astype(np.float32)
    ids = cells.ids().ravel()
    n = np.bincount(ids, minlength=nR * nC).astype(np.float32)
    dev = np.zeros(nR * nC, np.float32)
    for c in range(img.shape[2]):
        ch = img[..., c].ravel()
        mean = np.bincount(ids, weights=ch, minlength=nR * nC) / np.maximum(n, 1)
        dev += np.bincount(ids, weights=np.abs(ch - mean[ids]), minlength=nR * nC) / np.maximum(n, 1)
    return (dev <= tol).reshape(nR, nC)


def _snap_to_cells(image: np.ndarray, mask: np.ndarray, grid: Grid, tol: float, fill: float = 0.3, *,
                   box: tuple[int, int, int, int] | None = None) -> tuple[np.ndarray, tuple[int, int, int, int]]:
    """Fill outline cells that are flat as a whole and at least ``fill`` covered by ``mask``
    (worked out on the mask's bounding box ``box``, measured when not given, plus one cell).
    Returns the result's bounding box and the result inside it: (crop, box)."""
    x, y, w, h = box if box is not None else mask_box(mask)
    if w == 0:
        return np.zeros((0, 0), bool), (0, 0, 0, 0)
    m = max(grid.cell_h, grid.cell_w)
    y0, x0 = max(y - m, 0), max(x - m, 0)
    y1, x1 = min(y + h + m, mask.shape[0]), min(x + w + m, mask.shape[1])
    sub = grid.window(x0, y0)
    out = np.empty((y1 - y0, x1 - x0), bool)  # everything set lies in the window
    cells = Lattice((y1 - y0, x1 - x0), sub)
    for _, _, r0, r1 in cells.row_bands((x1 - x0) * image.shape[2], CELL_BAND):
        out[r0:r1] = _snap_crop(
            image[y0 + r0 : y0 + r1, x0:x1], mask[y0 + r0 : y0 + r1, x0:x1], cells.band(r0, r1, x1 - x0).grid, tol, fill
        )
    bx, by, bw, bh = mask_box(out)
    if bw == 0:
        return np.zeros((0, 0), bool), (0, 0, 0, 0)
    return out[by : by + bh, bx : bx + bw].copy(), (bx + x0, by + y0, bw, bh)


def _snap_crop(image: np.ndarray, mask: np.ndarray, grid: Grid, tol: float, fill: float) -> np.ndarray:
    H, W = mask.shape
    cells = Lattice((H, W), grid)
    nR, nC = cells.shape
    ids = cells.ids().ravel()
    n = np.bincount(ids, minlength=nR * nC)
    cover = np.bincount(ids, weights=mask.ravel().astype(np.float32), minlength=nR * nC) / np.maximum(n, 1)
    flat = _flatness(image, cells, tol).ravel()
    full = (cover >= fill) & flat
    drop = (cover < fill) & flat  # a flat cell mostly outside: a sliver of mask over a flat cell
    out = mask.ravel() | full[ids]
    out &= ~drop[ids] | ~mask.ravel() | (cover[ids] > 0.999)
    if PRUNE_ROUGH:
        # a partly covered cell that is not flat: keep its covered part only if that part is flat
        # (a mosaic cell cut by a pasted outline), else it is the photo next to the mosaic
        m = mask.ravel()
        cnt = np.bincount(ids, weights=m.astype(np.float32), minlength=nR * nC)
        dev = np.zeros(nR * nC)
        img = image.reshape(-1, image.shape[2]).astype(np.float32)
        for c in range(img.shape[1]):
            v = np.where(m, img[:, c], 0)
            mean = np.bincount(ids, weights=v, minlength=nR * nC) / np.maximum(cnt, 1)
            dev += np.bincount(ids, weights=np.where(m, np.abs(img[:, c] - mean[ids]), 0), minlength=nR * nC) / np.maximum(cnt, 1)
        rough = (cover > 0) & (cover < 0.999) & ~flat & (dev > ROUGH_K * tol)
        out &= ~rough[ids]
    return out.reshape(H, W)


def _tolerance(image: np.ndarray) -> float:
    """Flatness tolerance: grows with the image's JPEG-like noise (mean abs Laplacian in flat areas)."""
    g = cv2.cvtColor(image[::2, ::2], cv2.COLOR_RGB2GRAY).astype(np.float32)  # a subsample is plenty
    lap = np.abs(cv2.Laplacian(g, cv2.CV_32F, ksize=1))
    low = np.quantile(lap, 0.5) if lap.size else 0.0
    return float(np.clip(2.0 + 2.0 * low, 2.0, 12.0))


# ------------------------------------------------------------------ net + grid


#: post-processing constants (tuned on synthetic train-image cases, see benchmarks/detect.py)
HYSTERESIS = 1.0  # a region grows into pixels with probability >= HYSTERESIS * threshold
GRID_MIN_SCORE = 0.15  # weakest lattice accepted as a mosaic's grid
GRID_MIN_SCORE_SURE, SURE_NET = 0.05, 0.8  # ... when the net is sure (mean probability >= SURE_NET)
BLUR_MIN_NET = 0.8  # mean net probability needed for a region without a lattice (blur=True)
NOGRID_MIN_NET = 0.9  # ... when blurs are not asked for (a mosaic whose lattice is not measurable)
FEW_LINES_MIN_SCORE = 0.5  # lattice score needed when an axis shows a single line (sure net, square cells)
SURE_NOGRID_NET = 0.95  # a region without a lattice this sure is kept even when no smoother than around
JPEG_LATTICE_MIN_NET = 0.85  # ... and for a region whose lattice is JPEG's own
PRUNE_ROUGH = True  # drop the covered part of outline cells when it is not flat
ROUGH_K = 2.5  # ... i.e. when its mean deviation exceeds ROUGH_K x the flatness tolerance


def _regions_from_probability(image: np.ndarray, prob: np.ndarray, cfg: DetectConfig) -> list[Region]:
    thr = float(np.clip(1.0 - cfg.sensitivity, 0.05, 0.95))
    shift = 0.3 * (cfg.sensitivity - 0.5)
    # the image-sized arrays alive below: prob (float32), labels (int32) and comp (bool)
    n, labels, stats, _ = cv2.connectedComponentsWithStats((prob >= thr * HYSTERESIS).astype(np.uint8), connectivity=8)
    tol = functools.cache(lambda: _tolerance(image))  # measured once, when a lattice is found
    regions: list[Region] = []
    comp = np.zeros(prob.shape, bool)
    for k in range(1, n):
        if stats[k, cv2.CC_STAT_AREA] < cfg.min_area:
            continue
        x, y, w, h = stats[k, :4]
        sub = labels[y : y + h, x : x + w] == k
        core = sub & (prob[y : y + h, x : x + w] >= thr)
        if core.sum() < cfg.min_area:
            continue
        # one image-sized buffer holds the component (only its box is set, and cleared after)
        comp[y : y + h, x : x + w] = sub
        box = (int(x), int(y), int(w), int(h))  # the component's bounding box (no full-image scans below)
        try:
            p_mean = float(prob[y : y + h, x : x + w][core].mean())
            need_grid = GRID_MIN_SCORE if p_mean < SURE_NET else GRID_MIN_SCORE_SURE
            est = _lattice_of(image, comp, box, need_grid, sure=p_mean >= SURE_NET - shift)
            grid_score = est.score if est is not None else 0.0
            flat = _flat_fraction(image, comp, est.grid, tol(), box=box) if est is not None else 0.0
            need_net = 0.0 if est is None or not jpeg_like(est.grid) else JPEG_LATTICE_MIN_NET - shift
            info = {"net": round(p_mean, 4), "grid": round(grid_score, 4), "flat": round(flat, 4)}
            if est is not None and grid_score >= need_grid and p_mean >= need_net:
                crop, mbox = _snap_to_cells(image, comp, est.grid, tol(), box=box)
                score = float(np.clip(0.6 * p_mean + 0.4 * max(grid_score, 0.5), 0, 1))
                region = Region(crop, mbox, comp.shape, est.grid, score, "mosaic", info)
            else:
                # no lattice seen: a blur (or a mosaic too small or too compressed to measure)
                if p_mean < (BLUR_MIN_NET if cfg.blur else NOGRID_MIN_NET) - shift:
                    continue
                # as smooth as its surroundings: a smooth picture, not a blurred region, unless the net
                # is near-certain (a mosaic of a few big cells, too few to measure a lattice on)
                if p_mean < SURE_NOGRID_NET - shift and not _smoother_than_around(image, comp, box=box):
                    continue
                region = Region(sub, box, comp.shape, None, p_mean, "blur", info)
            if region.area >= cfg.min_area:
                regions.append(region)
        finally:
            comp[y : y + h, x : x + w] = False
    return regions


def _lattice_of(image: np.ndarray, comp: np.ndarray, box, need_grid: float, *, sure: bool) -> GridEstimate | None:
    """The lattice of a component the net proposes (its bounding box ``box``), or None (it is then
    judged as a blur). ``sure``: the net is sure of it. A weaker lattice than ``need_grid`` is not
    measured. A single lattice line on an axis (a region a few big cells across) is accepted only for
    a sure region whose axes agree on a square cell. Fractional cells only for a sure region whose
    cells they make flat (:func:`_flat_between_lines`), else the whole-pixel lattice: smooth photo
    areas the net half-believes in (defocused backgrounds, gradients, a shaded sphere) fit some
    fractional pitch. A region the net is not sure of needs flat cells whatever its lattice (a photo
    upscaled many times: 14 such regions on a 24 MP one, 8 of them dropped by this); a sure one keeps a
    whole-pixel lattice as measured (a zoo mosaic's read 1.87 and lost 6 dB without it)."""
    # a weaker lattice is rejected below, so it is not measured (None: the region is judged as a blur)
    est = _grid_in(image, comp, min_lines=1, box=box, min_score=need_grid)
    if est is not None and est.grid.pitch is not None and not (sure and _flat_between_lines(image, comp, box, est.grid)):
        est = _grid_in(image, comp, min_lines=1, box=box, min_score=need_grid, fractional=False)
    if est is not None and min(est.y.lines, est.x.lines) < 2:
        est = est if sure and est.grid.cell_h == est.grid.cell_w and est.score >= FEW_LINES_MIN_SCORE else None
    if est is not None and not sure and not _flat_between_lines(image, comp, box, est.grid):
        return None  # a region the net is unsure of needs flat cells whatever its lattice
    return est


def _flat_between_lines(image: np.ndarray, comp: np.ndarray, box, grid: Grid) -> bool:
    """``grid`` explains the component's pixels :data:`~tessera.mosaic.grid.LATTICE_CONTRAST` times
    better than itself half a cell off (a mosaic's cells are flat between its lines; lattices read into
    clean photos scored 1.3-1.8, fractional zoo mosaics 5.5-215)."""
    x, y, w, h = box
    return lattice_contrast(image[y : y + h, x : x + w], comp[y : y + h, x : x + w], grid.window(x, y)) >= LATTICE_CONTRAST


def _smoother_than_around(image: np.ndarray, comp: np.ndarray, ratio: float = 2.0, *, box=None) -> bool:
    """A region the net finds without a lattice is kept when it has edges inside, or when it is much
    smoother (mean |Laplacian|) than the picture in a ring around it (a blur, not a smooth picture).
    ``box``: the bounding box of ``comp`` when known."""
    x, y, w, h = box if box is not None else mask_box(comp)
    m = max(8, min(w, h) // 3)
    y0, x0 = max(y - m, 0), max(x - m, 0)
    y1, x1 = min(y + h + m, comp.shape[0]), min(x + w + m, comp.shape[1])
    sub = comp[y0:y1, x0:x1].astype(np.uint8)
    g = cv2.cvtColor(image[y0:y1, x0:x1], cv2.COLOR_RGB2GRAY).astype(np.float32)
    lap = np.abs(cv2.Laplacian(g, cv2.CV_32F, ksize=3))
    inner = cv2.erode(sub, np.ones((5, 5), np.uint8)).astype(bool)
    ring = ~cv2.dilate(sub, np.ones((5, 5), np.uint8)).astype(bool)
    if not inner.any() or not ring.any():
        return True  # nothing around to compare with (a whole-image region): trust the net
    inside = float(lap[inner].mean())
    # edges inside (a mosaic whose lattice was not measurable, JPEG blocks): not a smooth picture
    return inside > 12.0 or float(lap[ring].mean()) >= ratio * inside + 1.0


def _flat_fraction(image: np.ndarray, comp: np.ndarray, grid: Grid, tol: float, *, box=None) -> float:
    """Share of the whole cells inside ``comp`` that are flat (a mosaic's are, JPEG blocks of a photo mostly not)."""
    x, y, w, h = box if box is not None else mask_box(comp)
    sub = grid.window(x, y)
    img, m = image[y : y + h, x : x + w], comp[y : y + h, x : x + w]
    cells = Lattice(m.shape, sub)
    whole = (cells.sums(m) >= cells.counts) & (cells.counts >= grid.cell_h * grid.cell_w)
    if not whole.any():
        return 1.0  # no whole cell to judge by
    flat = cell_flatness(img, sub, tol)
    return float(flat[whole].mean())


def jpeg_like(grid: Grid) -> bool:
    """A lattice on one of JPEG's own block lattices (8x8 luma, 16x16 chroma MCUs: cells dividing 16
    with edges on multiples of 8, or of the cell when smaller). Smooth areas of a strongly compressed
    photo are flat 8x8 blocks there, so such a lattice is weak evidence of a mosaic."""

    def axis(cell: int, phase: int, pitch: float) -> bool:
        return pitch == cell and 16 % cell == 0 and phase % min(cell, 8) == 0

    py, px = grid.pitch or (grid.cell_h, grid.cell_w)
    return axis(grid.cell_h, grid.phase_y, py) or axis(grid.cell_w, grid.phase_x, px)


def _grid_in(image: np.ndarray, comp: np.ndarray, min_lines: int = 2, *, box=None, min_score: float = 0.0,
             fractional: bool = True) -> GridEstimate | None:
    """Grid of the mosaic under a component, measured on its bounding box ``box`` (measured when
    not given; plus a margin), with at least ``min_lines`` lattice lines per axis, scoring at least
    ``min_score``; ``fractional``: fractional cells may be chosen."""
    x, y, w, h = box if box is not None else mask_box(comp)
    m = 4
    y0, x0 = max(y - m, 0), max(x - m, 0)
    y1, x1 = min(y + h + m, comp.shape[0]), min(x + w + m, comp.shape[1])
    est = estimate_grid(image[y0:y1, x0:x1], comp[y0:y1, x0:x1], erode=2, origin=(y0, x0), min_lines=min_lines,
                        fractional=fractional, min_score=min_score)
    if est is None:
        return None
    g = est.grid
    grid = g.window(-x0, -y0)
    return GridEstimate(grid, est.score, est.y, est.x)


# ------------------------------------------------------------------ grid only


def _grid_only(image: np.ndarray, cfg: DetectConfig, window: int = 96) -> list[Region]:
    """Classical detection: windows with a clear lattice vote for it; the flat cells of each
    voted lattice inside its windows (with a jump to a neighbour cell) are the mosaic."""
    H, W = image.shape[:2]
    win = min(window, H, W)
    if win < 12:
        return []
    stride = max(win // 2, 1)
    ys = sorted(set(list(range(0, H - win + 1, stride)) + [H - win]))
    xs = sorted(set(list(range(0, W - win + 1, stride)) + [W - win]))
    need = 0.55 - 0.4 * (cfg.sensitivity - 0.5)
    votes: dict[Grid, np.ndarray] = {}
    for y in ys:
        for x in xs:
            est = estimate_grid(image[y : y + win, x : x + win], None, max_cell=32, min_lines=2, sparse=True, origin=(y, x))
            if est is None or est.score < need:
                continue
            g = est.grid
            key = Grid(g.cell_h, g.cell_w, (g.phase_y + y) % g.cell_h, (g.phase_x + x) % g.cell_w, "mean")
            area = votes.setdefault(key, np.zeros((H, W), bool))
            area[y : y + win, x : x + win] = True
    tol = _tolerance(image)
    regions: list[Region] = []
    taken = np.zeros((H, W), bool)
    for key, area in sorted(votes.items(), key=lambda kv: -int(kv[1].sum())):
        ri, ci, nR, nC = _cell_index((H, W), key)
        flat = cell_flatness(image, key, tol)
        # a mosaic cell differs from at least one neighbour (flat skies do not jump)
        vals = _cell_means(image, ri, ci, nR, nC)
        jump = np.zeros((nR, nC), bool)
        dv = np.abs(np.diff(vals, axis=0)).sum(-1) > 2 * tol
        jump[1:] |= dv
        jump[:-1] |= dv
        dh = np.abs(np.diff(vals, axis=1)).sum(-1) > 2 * tol
        jump[:, 1:] |= dh
        jump[:, :-1] |= dh
        cells = flat & jump
        # grow from the voted windows over connected flat, jumping cells
        mask = cells[ri][:, ci] & ~taken
        mask = cv2.morphologyEx(mask.astype(np.uint8), cv2.MORPH_CLOSE, np.ones((3, 3), np.uint8)).astype(bool)
        n, labels, stats, _ = cv2.connectedComponentsWithStats(mask.astype(np.uint8), connectivity=8)
        seeded = np.unique(labels[area & mask])
        for k in seeded[seeded > 0]:
            if stats[k, cv2.CC_STAT_AREA] < max(cfg.min_area, 4 * key.cell_h * key.cell_w):
                continue
            comp = labels == k
            est = _grid_in(image, comp, min_score=need)
            if est is None or est.score < need or est.grid.cell != key.cell or est.grid.phase != key.phase:
                continue
            region = Region(*_snap_to_cells(image, comp, est.grid, tol), (H, W), est.grid, float(est.score), "mosaic", {"grid": round(est.score, 4)})
            region.paint(taken)
            regions.append(region)
    return regions


def _cell_means(image: np.ndarray, ri, ci, nR: int, nC: int) -> np.ndarray:
    ids = (ri[:, None] * nC + ci[None, :]).ravel()
    n = np.maximum(np.bincount(ids, minlength=nR * nC), 1)
    chans = [np.bincount(ids, weights=image[..., c].ravel().astype(np.float64), minlength=nR * nC) / n for c in range(image.shape[2])]
    return np.stack(chans, -1).reshape(nR, nC, -1)


# ------------------------------------------------------------------ public


def detect(
    image: np.ndarray,
    *,
    config: DetectConfig | None = None,
    model=None,
    **overrides,
) -> list[Region]:
    """All mosaicked regions of ``image`` (RGB uint8 (H, W, 3)), largest first.

    Each :class:`Region` has its box (x, y, w, h) and its mask inside it (``crop``, bool, True = mosaic), grid (cell size,
    phase, sampling; None for blurs), score (0..1) and kind ("mosaic" | "blur").
    ``model``: a loaded segmentation net (default: loaded from ``config.weights``);
    keyword overrides (``min_area=``, ``sensitivity=``, ``weights=``) update the config.
    """
    cfg = config or DetectConfig()
    if overrides:
        cfg = DetectConfig(**{**cfg.__dict__, **overrides})
    image = _as_rgb(image)
    H, W = image.shape[:2]
    if H < 4 or W < 4:
        return []
    if model is None:
        model = load_detector(cfg.weights, cfg.backend)
    if model is None:
        regions = _grid_only(image, cfg)
    else:
        regions = _regions_from_probability(image, probability_map(image, model), cfg)
    return sorted(regions, key=lambda r: -r.area)
