"""restore_image in three stages: plan regions -> restore each crop -> compose.

1. plan (:func:`plan_regions`): the user's mask split into regions, or :func:`tessera.detect.mosaics.detect`;
   each region gets its grid (given, or estimated) and its kind (mosaic | blur | hole).
2. restore (:func:`restore_region`): each region's crop with context goes through a
   :class:`tessera.restore.restorer.Restorer` (model at native scale, tiled when large), is blended in
   and projected onto the observed mosaic (each cell averages to, or has at its centre, what was observed).
3. compose: the restored pieces are pasted into a copy of the image; pixels outside the regions stay
   byte-identical; the returned ``mask`` marks every synthesized pixel (see restore/marking.py).

Restoration is imagination, not recovery: what a model puts behind a mosaic is a plausible guess.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Literal

import cv2
import numpy as np

from tessera.mosaic.region import SAMPLINGS, Grid, Region
from tessera.restore.blend import blend
from tessera.restore.consistency import cell_tolerance, project
from tessera.restore.restorer import DEFAULT_MODEL, MODEL_TABLE, Restorer, model_names, resolve_model

__all__ = [
    "RestoreConfig", "Restoration", "restore_image", "plan_regions", "restore_region", "model_names",
    "resolve_model", "DEFAULT_MODEL", "SHIPPED",
]

Kind = Literal["auto", "mosaic", "blur", "hole"]
Sampling = Literal["auto", "mean", "centre", "centre-up", "first"]
Progress = Callable[[int, int], None]  # (regions done, regions in all)

# Shipped learned restorers (names in restore/restorer.py's MODEL_TABLE with weights).
SHIPPED = tuple(n for n, e in MODEL_TABLE.items() if e.family == "net")
# Unknown cell sampling: the model's output is projected under both hypotheses and 'mean' is kept only
# when the projection onto the 'centre' constraint needs at least this fraction of the correction that
# 'mean' needs. A 'centre' constraint pins one pixel per cell, so it always needs less; when unsure,
# 'centre' is the cheaper mistake: forcing 'centre' on every case lost 0.16-0.38 dB on average, forcing
# 'mean' 0.57-1.37 dB. Picked on train-folder cases (benchmarks/sampling.py, benchmarks/RESULTS.md
# "sampling"). One model pass serves both (it used to run once per hypothesis): measured on the same
# 60 cases, auto scored 23.14 / 20.75 dB (faces / scenes) against 23.13 / 20.78 with two passes.
SAMPLING_RATIO = 0.7


@dataclass(frozen=True)
class RestoreConfig:
    """How to restore. model: a name (see :func:`model_names`) or a .safetensors path. kind: what hides
    the pixels ('auto' = mosaic if a grid is found, else a hole whose pixels are ignored). sampling: how
    each cell's colour was taken (None: a given grid keeps its own and an estimated one is decided as
    in 'auto'; 'auto': restore under 'mean' and 'centre' and keep the one the restoration agrees with).
    context: pixels of context around each region (at least). feather: blend over N pixels inside the
    mask. consistency: project onto the observed mosaic. refine: 'patch' (neural patch synthesis).
    iters, lam: the latent search of dcgan models (Adam steps, weight of the critic's loss).
    quality: 'fast', 'balanced' or 'best' (1, 2 or 4 flipped copies of each crop averaged by a
    network). backend: 'auto' (ONNX Runtime when installed, else torch), 'torch' or 'onnx'."""

    model: str | os.PathLike = "default"
    kind: Kind = "auto"
    sampling: Sampling | None = None
    context: int = 32
    feather: int = 0
    consistency: bool = True
    refine: str | None = None
    iters: int = 100
    lam: float = 0.003
    quality: str = "balanced"
    backend: str = "auto"
    unfeather: bool = True  # recover the photo still visible in a feathered mosaic's edge (restore/feather.py)

    def __post_init__(self) -> None:
        from tessera.restore.restorer import is_model

        if not is_model(str(self.model)):
            raise ValueError(f"unknown model {self.model!r}; choose one of {', '.join(model_names())} or a .safetensors file")
        if self.kind not in ("auto", "mosaic", "blur", "hole"):
            raise ValueError(f"kind must be auto, mosaic, blur or hole, got {self.kind!r}")
        if self.sampling not in (None, "auto", *SAMPLINGS):
            raise ValueError(f"sampling must be 'auto' or one of {', '.join(SAMPLINGS)}, got {self.sampling!r}")
        if not 0 <= self.context <= 4096 or not 0 <= self.feather <= 256:
            raise ValueError(f"context must be within 0..4096 and feather within 0..256, got {self.context}, {self.feather}")
        if self.refine not in (None, "patch"):
            raise ValueError(f"unknown refinement {self.refine!r}: use patch")
        if not 0 <= self.iters <= 100_000 or not 0.0 <= self.lam <= 1e3:
            raise ValueError(f"iters must be within 0..100000 and lam within 0..1000, got {self.iters}, {self.lam}")
        from tessera.restore.backend import BACKENDS, QUALITY_FLIPS

        if self.quality not in QUALITY_FLIPS:
            raise ValueError(f"quality must be one of {', '.join(QUALITY_FLIPS)}, got {self.quality!r}")
        if self.backend not in BACKENDS:
            raise ValueError(f"backend must be one of {', '.join(BACKENDS)}, got {self.backend!r}")

    def restorer(self) -> Restorer:
        from tessera.restore.restorer import is_latent

        latent = None
        if is_latent(self.model):  # restore/latent.py imports torch: only when it is used
            from tessera.restore.latent import LatentConfig

            latent = LatentConfig(iters=self.iters, lam=self.lam)
        return resolve_model(self.model, latent=latent, refine=self.refine, quality=self.quality, backend=self.backend)


@dataclass
class Restoration:
    """image: the restored RGB uint8 image. mask: bool (H, W), True = synthesized (may differ from
    the input). regions: what was restored, with grids. residual: the largest re-mosaic residual in
    grey levels over regions with a known grid (None when there was none)."""

    image: np.ndarray
    mask: np.ndarray
    regions: list[Region] = field(default_factory=list)
    residual: float | None = None
    model: str = ""


# ----------------------------------------------------------------------------- regions


def estimate_grid(image: np.ndarray, region: Region, *, min_lines: int = 2) -> Grid | None:
    """The mosaic lattice under ``region``, or None when the pixels there do not look like a mosaic.
    ``min_lines``: lattice lines each axis must show inside the region (1 for a region known to be a
    mosaic: one only a few cells across has a single line inside on an axis)."""
    from tessera.mosaic.grid import estimate_grid as analyse

    x, y, w, h = region.box
    if w == 0:
        return None
    # only the region's box (+ a margin) is analysed, so a small region of a big photo costs little
    H, W = image.shape[:2]
    y0, y1, x0, x1 = max(0, y - 2), min(H, y + h + 2), max(0, x - 2), min(W, x + w + 2)
    est = analyse(image[y0:y1, x0:x1], region.mask_in(x0, y0, x1, y1), origin=(y0, x0), fractional=True, min_lines=min_lines)
    if est is None:
        return None
    g = est.grid
    return g.window(-x0, -y0)


def regions_from_mask(image: np.ndarray, mask: np.ndarray, grid: Grid | None, kind: Kind) -> list[Region]:
    """Split a user mask into connected regions (at most 64; more become one region), each with a grid."""
    n, labels, stats, _ = cv2.connectedComponentsWithStats(mask.astype(np.uint8), connectivity=8)
    if 1 < n <= 65:
        boxes = [tuple(int(v) for v in stats[i, :4]) for i in range(1, n)]
        parts = [Region(labels[y : y + h, x : x + w] == i, (x, y, w, h), mask.shape) for i, (x, y, w, h) in enumerate(boxes, 1)]
    else:
        parts = [Region.from_mask(mask)]
    del labels
    regions = []
    for part in parts:
        g = grid
        k = kind
        if k in ("auto", "mosaic") and g is None:
            g = estimate_grid(image, part)
        if k == "mosaic" and g is None:  # known to be a mosaic: a region a few cells across shows one line
            g = estimate_grid(image, part, min_lines=1)
        if k == "auto":
            k = "mosaic" if g is not None else "hole"
        regions.append(replace(part, grid=g if k == "mosaic" else None, kind=k))
    return regions


#: most context (px) a large region gets on every side beyond ``RestoreConfig.context``. Measured on 19
#: scenes/val photos with a mosaic over half their short side (the scenes model, true mask and grid):
#: 21.184 dB with at most 64 px, 21.183 with at most 256 (the earlier cap), for 20-50 % less work on the
#: crop; 10 photos with 35 % regions: 22.221 (256), 22.219 (96), 22.220 (64), 22.207 (32).
CONTEXT_CAP = 64


def context_box(box: tuple[int, int, int, int], shape: tuple[int, int], context: int) -> tuple[int, int, int, int]:
    """The region's box grown by max(context, half the region's size capped at :data:`CONTEXT_CAP`) on
    every side, clipped to the image."""
    x, y, w, h = box
    H, W = shape
    margin = max(context, min(max(w, h) // 2, CONTEXT_CAP))
    x0, y0 = max(x - margin, 0), max(y - margin, 0)
    x1, y1 = min(x + w + margin, W), min(y + h + margin, H)
    return x0, y0, x1, y1


def _restore_crop(restorer: Restorer, crop, observed, m, g: Grid | None, kind: str, feather: int, consistency: bool, sampling: str | None, constrain=None, tolerance=0.0):
    """Model, blend and (when ``consistency``) the projection for one crop -> (blended output, grid
    used, projection or None). ``sampling='auto'``: the model runs once (its input prefilled as for
    'mean') and its output is projected under 'mean' and 'centre' (see SAMPLING_RATIO).
    ``constrain``: the cells to project (those entirely inside it; default ``m``). ``tolerance``: the
    codec's noise on the cell values (compressed input: project within it, see consistency.py)."""
    if g is None:
        return blend(observed, restorer(crop, m, g, kind), m, feather), None, None
    cons = m if constrain is None else constrain
    h = replace(g, sampling="mean" if sampling == "auto" else sampling)
    restored = blend(observed, restorer(crop, m, h, kind), m, feather)
    proj = project(restored, observed, cons, h, tolerance=tolerance) if consistency or sampling == "auto" else None
    if sampling == "auto" and m.any():
        # unknown sampling: the one model pass projected onto both hypotheses; keep 'mean' unless
        # 'centre' needs clearly less correction (SAMPLING_RATIO)
        centre = replace(g, sampling="centre")
        other = project(restored, observed, cons, centre, tolerance=tolerance)
        mean_fix, centre_fix = (float(np.abs(p.image.astype(np.float64) - restored)[m].mean()) for p in (proj, other))
        if centre_fix < SAMPLING_RATIO * mean_fix:
            h, proj = centre, other
    return restored, h, (proj if consistency else None)


# ----------------------------------------------------------------------------- 1. plan


def plan_regions(
    image: np.ndarray, mask: np.ndarray | None, *, grid: Grid | None = None, kind: Kind = "auto", detect_config=None
) -> list[Region]:
    """The regions to restore: ``mask`` split into connected regions, or (without a mask) the
    detected mosaics. A given ``grid`` or ``kind`` applies to every region."""
    if mask is not None:
        return regions_from_mask(image, mask, grid, kind) if mask.any() else []
    from tessera.detect.mosaics import detect

    regions = detect(image, config=detect_config)
    regions = [_lattice_of_blur(image, r) for r in regions]
    regions = [_grow_to_cells(image, r) for r in regions]
    if kind != "auto" or grid is not None:  # the user knows what hides the detected regions
        k = kind if kind != "auto" else "mosaic"
        regions = [replace(r, kind=k, grid=(grid or r.grid) if k == "mosaic" else None) for r in regions]
    return regions


def _lattice_of_blur(image: np.ndarray, region: Region) -> Region:
    """A detected region without a lattice (kind 'blur') whose pixels show one after all, measured on
    the region itself (the detector measures on its outline's box with a wider margin): a mosaic when
    that lattice has flat cells (:data:`tessera.mosaic.grid.LATTICE_CONTRAST`)."""
    from tessera.mosaic.grid import LATTICE_CONTRAST, lattice_contrast

    if region.kind != "blur":
        return region
    g = estimate_grid(image, region, min_lines=1)
    if g is None:
        return region
    x, y, w, h = region.box
    H, W = image.shape[:2]
    x0, y0, x1, y1 = max(x, 0), max(y, 0), min(x + w, W), min(y + h, H)
    if lattice_contrast(image[y0:y1, x0:x1], region.mask_in(x0, y0, x1, y1), g.window(x0, y0)) < LATTICE_CONTRAST:
        return region
    return replace(region, grid=g, kind="mosaic")


#: a detected mosaic's mask is completed within the lattice cells it cuts: their pixels outside it within
#: this many grey levels (every channel) of the cell's colour inside it are the rest of the cell (the
#: detector's outline stops short of a pasted mosaic's own, and what it leaves is lattice edges). Zoo,
#: auto-detected masks: faces 23.96 -> 24.10 dB, scenes 21.01 -> 21.04; rows with blockiness <= 1.2
#: 16 -> 21 and 23 -> 26 (adding whole missed cells of the same colour as well took in flat skin and
#: lost 2.6 dB on one face)
GROW_TOL = 6.0


def _grow_to_cells(image: np.ndarray, region: Region) -> Region:
    """A detected mosaic's mask completed with the pixels of the cells it cuts that have the colour of
    the cell's part inside it (see :data:`GROW_TOL`); only those connected to the region."""
    from tessera.mosaic.lattice import Lattice

    g = region.grid
    if region.kind != "mosaic" or g is None:
        return region
    H, W = image.shape[:2]
    x, y, w, h = region.box
    pad = max(g.cell_h, g.cell_w) + 1
    x0, y0, x1, y1 = max(x - pad, 0), max(y - pad, 0), min(x + w + pad, W), min(y + h + pad, H)
    m = region.mask_in(x0, y0, x1, y1)
    crop = image[y0:y1, x0:x1].astype(np.float64)
    cells = Lattice(m.shape, g.window(x0, y0))
    n_in = cells.sums(m)
    cut = (n_in > 0) & (n_in < cells.counts)
    if not cut.any():
        return region
    colour = cells.sums(crop * m[..., None]) / np.maximum(n_in, 1)[..., None]
    same = (np.abs(crop - cells.expand(colour)) <= GROW_TOL).all(axis=2)
    grown = m | (same & cells.expand(cut))
    _, labels = cv2.connectedComponents(grown.astype(np.uint8), connectivity=4)
    keep = np.unique(labels[m])
    grown = np.isin(labels, keep[keep > 0])
    if grown.sum() == m.sum():
        return region
    from tessera.mosaic.region import mask_box

    bx, by, bw, bh = mask_box(grown)  # the window holds the whole region: its box is the new one's
    crop = grown[by : by + bh, bx : bx + bw].copy()
    return Region(crop, (x0 + bx, y0 + by, bw, bh), region.shape, g, region.score, region.kind, region.extra)


# ----------------------------------------------------------------------------- 2. restore


@dataclass
class RegionResult:
    """One region restored: ``pixels`` is the crop at ``box`` (x0, y0, x1, y1) of the output, to be
    pasted where ``mask`` (the region's mask in the crop) is True; ``region`` carries the grid used."""

    box: tuple[int, int, int, int]
    mask: np.ndarray
    pixels: np.ndarray
    region: Region
    residual: float | None


def restore_region(
    image: np.ndarray, region: Region, restorer: Restorer, cfg: RestoreConfig, *, estimated: bool, current: np.ndarray | None = None
) -> RegionResult:
    """Crop with context, run the restorer, blend and project one region. ``current``: the output so
    far (earlier regions already restored), which the crop is cut from; ``image``: what was observed.
    A feathered mosaic's edge (restore/feather.py) is recovered from what shows of the photo when the
    fitted feather agrees with the restorer's own guess there (see :data:`FEATHER_AGREEMENT`)."""
    H, W = image.shape[:2]
    box = context_box(region.box, (H, W), cfg.context)
    x0, y0, x1, y1 = box
    source = image if current is None else current
    crop, m, observed = source[y0:y1, x0:x1], region.mask_in(x0, y0, x1, y1), image[y0:y1, x0:x1]
    g = None if region.grid is None else region.grid.window(x0, y0)
    sampling = None if g is None else cfg.sampling if cfg.sampling is not None else ("auto" if estimated else g.sampling)
    fit = None
    if cfg.unfeather and region.kind == "mosaic" and g is not None:
        from tessera.restore.feather import invert_feather

        fit = invert_feather(observed, m, g)
    plain = _restore_with(restorer, crop, observed, m, g, region, cfg, sampling, None)
    if fit is None or not _feather_agrees(fit, m, plain[0]) or _band_is_mosaic(fit, m, observed, g) or _band_too_rough(fit, m, observed, plain[0]):
        return RegionResult(box, m, *plain)
    return RegionResult(box, m, *_restore_with(restorer, crop, observed, m, g, region, cfg, sampling, fit))


#: a fitted feather is used only where its recovered band agrees with the restorer's guess made without
#: it: RMS difference at most this many times the error expected of the two (the model's MODEL_SIGMA
#: and the recovery's noise; a three-sigma rule). A wrong profile divides the cells' colour out
#: wrongly and its "recovered" band is far off (one zoo case: 42 grey levels RMS where the model erred
#: by 8, 3.4 times the expected difference, where right fits gave 0.4-3.0); RESULTS.md "Mosaics as
#: other tools make them".
FEATHER_AGREEMENT = 3.0


#: a fitted feather is dropped when at least this share of its band pixels (where it would keep what it
#: recovers) have the colour of at least two of their four neighbours (within the codec's noise): that part
#: of the band is mosaic, not photo blended with it (a mask a little off a hard-edged mosaic whose
#: cells it cuts: its rough outline cells look like a feather's band, and "recovering" them keeps the mosaic)
BAND_FLAT = 0.9


def _band_is_mosaic(fit, m: np.ndarray, observed: np.ndarray, g: Grid) -> bool:
    keep = m & ~fit.core & (fit.weight > 0) & (fit.trust >= 0.5)
    if not keep.any():
        return False
    obs = observed.astype(np.float64)
    tol = max(1.0, 2.0 * fit.noise + 0.5)
    flat = np.zeros(m.shape, np.int64)  # neighbours (of 4) of the same colour
    for axis in (0, 1):
        same = (np.abs(np.diff(obs, axis=axis)) <= tol).all(axis=2)
        pad = [(0, 0), (0, 0)]
        pad[axis] = (1, 0)
        flat += np.pad(same, pad).astype(np.int64)
        pad[axis] = (0, 1)
        flat += np.pad(same, pad).astype(np.int64)
    return float((flat[keep] >= 2).mean()) >= BAND_FLAT


#: a fitted feather is dropped when what it recovers in the band is this many times rougher (mean step
#: between neighbours) than both the photo just outside the mask and the restorer's guess in the band: a
#: wrong profile divides the cells' colour out wrongly and amplifies it into noise. Zoo cases (true and
#: detected masks): right fits 0.5-1.6, one 2.2 whose recovery erred more than the model; wrong ones
#: 2.1-5.0 (scenes feather png with a detected mask: 42 grey levels RMS recovered where the model erred
#: by 10, 6 dB below leaving the mosaic alone)
BAND_ROUGHNESS = 2.0


def _roughness(image: np.ndarray, sel: np.ndarray) -> float:
    """Mean |step| between 4-neighbours both in ``sel`` (grey = mean of the channels)."""
    g = image.astype(np.float64).mean(axis=2)
    steps, n = 0.0, 0
    for axis in (0, 1):
        both = (sel[1:] & sel[:-1]) if axis == 0 else (sel[:, 1:] & sel[:, :-1])
        steps += float(np.abs(np.diff(g, axis=axis))[both].sum())
        n += int(both.sum())
    return steps / max(n, 1)


def _band_too_rough(fit, m: np.ndarray, observed: np.ndarray, restored: np.ndarray) -> bool:
    band = m & ~fit.core & (fit.weight > 0) & (fit.trust >= 0.5)
    ring = ~m & (cv2.distanceTransform((~m).astype(np.uint8), cv2.DIST_L2, 3) <= 6)
    if not band.any() or not ring.any():
        return False
    ref = max(_roughness(observed, ring), _roughness(restored, band), 0.5)
    return _roughness(fit.recovered, band) > BAND_ROUGHNESS * ref


def _feather_agrees(fit, m: np.ndarray, restored: np.ndarray) -> bool:
    from tessera.restore.feather import MODEL_SIGMA

    band = m & ~fit.core & (fit.weight > 0) & (fit.trust >= 0.5)
    if not band.any():
        return True
    diff = fit.recovered[band] - restored[band].astype(np.float64)
    t = np.clip(fit.trust[band], 1e-3, 1.0)
    expected = MODEL_SIGMA**2 * (1.0 + float(np.mean((1.0 - t) / t)))  # model + recovery variance (trust = m / (m + r))
    return float(np.sqrt(np.mean(diff**2))) <= FEATHER_AGREEMENT * float(np.sqrt(expected))


def _restore_with(restorer: Restorer, crop, observed, m, g, region: Region, cfg: RestoreConfig, sampling, fit):
    """One pass of the model, blend and projection over a crop -> (pixels, region, residual); with a
    feather ``fit``, what shows of the photo in the band is kept and weighed against the model."""
    m_model, constrain, band = m, None, None
    if fit is not None:  # the edge of a feathered mosaic: what shows of the photo is kept, the rest restored
        band = m & ~fit.core & (fit.weight > 0)
        keep = band & (fit.trust >= 0.5)
        recovered = np.clip(np.rint(fit.recovered), 0, 255).astype(np.uint8)
        crop, observed = crop.copy(), observed.copy()
        crop[keep] = observed[keep] = recovered[keep]
        m_model, constrain = m & ~keep, m & fit.core
    tol = cell_tolerance(observed, m if constrain is None else constrain, g) if g is not None and cfg.consistency else 0.0
    restored, h, proj = _restore_crop(
        restorer, crop, observed, m_model, g, region.kind, cfg.feather, cfg.consistency, sampling, constrain, tol
    )
    if h is not None and region.grid is not None and h.sampling != region.grid.sampling:
        region = replace(region, grid=replace(region.grid, sampling=h.sampling))
    if proj is not None:
        restored = proj.image
    if fit is not None:  # each band pixel: recovered and restored weighed by their expected errors
        t = fit.trust[..., None]
        mixed = np.clip(np.rint(t * fit.recovered + (1.0 - t) * restored), 0, 255).astype(np.uint8)
        restored = np.where(band[..., None], mixed, restored)
    return restored, region, proj.residual_max if proj is not None else None


# ----------------------------------------------------------------------------- 3. compose (the pipeline)


def restore_image(
    image: np.ndarray,
    mask: np.ndarray | None = None,
    *,
    config: RestoreConfig | None = None,
    grid: Grid | None = None,
    regions: list[Region] | None = None,
    restorer: Restorer | None = None,
    progress: Progress | None = None,
    **options,
) -> Restoration:
    """Restore the hidden parts of ``image`` (RGB uint8 (H, W, 3)).

    mask: bool (H, W) of what to restore; without it (and without ``regions``) mosaics are detected.
    config: a :class:`RestoreConfig`; keyword ``options`` (model=, kind=, sampling=, feather=, ...)
    update it. grid: the mosaic lattice when known (else estimated per region). regions: regions
    planned already (skips stage 1). restorer: a ready :class:`Restorer` (else built from the config).
    progress: called with (regions done, regions in all). Pixels outside the regions are byte-identical.
    """
    cfg = replace(config or RestoreConfig(), **options) if options else (config or RestoreConfig())
    image = np.asarray(image)
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise ValueError(f"image must be RGB uint8 (H, W, 3), got {image.dtype} {image.shape}")
    H, W = image.shape[:2]
    if mask is not None:
        mask = np.asarray(mask).astype(bool)
        if mask.shape != (H, W):
            raise ValueError(f"mask is {mask.shape[1]}x{mask.shape[0]} but the image is {W}x{H}")
    restorer = restorer or cfg.restorer()
    if hasattr(restorer, "begin"):  # a routing restorer names the models this image used
        restorer.begin()
    # 1. plan
    estimated = regions is None and grid is None  # grids found here rather than given
    if regions is None:
        detect_config = None
        if cfg.backend != "auto":  # the detector's net runs with the same backend
            from tessera.detect.mosaics import DetectConfig

            detect_config = DetectConfig(backend=cfg.backend)
        regions = plan_regions(image, mask, grid=grid, kind=cfg.kind, detect_config=detect_config)
    total = np.zeros((H, W), bool)
    for r in regions:
        r.paint(total)
    if not regions or not total.any():
        return Restoration(image.copy(), total, list(regions), None, restorer.name)
    # 2. restore each region, 3. compose
    out = image.copy()
    done: list[Region] = []
    residuals = []
    for i, region in enumerate(regions):
        res = restore_region(image, region, restorer, cfg, estimated=estimated, current=out)
        x0, y0, x1, y1 = res.box
        out[y0:y1, x0:x1][res.mask] = res.pixels[res.mask]
        done.append(res.region)
        if res.residual is not None:
            residuals.append(res.residual)
        if progress:
            progress(i + 1, len(regions))
    np.copyto(out, image, where=~total[..., None])  # no gathered copies of the untouched pixels
    return Restoration(out, total, done, max(residuals) if residuals else None, restorer.name)
