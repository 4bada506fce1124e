"""restore_image: regions -> crop with context -> model (tiled, native scale) -> blend -> mosaic consistency.

Restoration is imagination, not recovery: what a model puts behind a mosaic is a plausible guess,
and the returned ``mask`` marks every pixel that may differ from the input.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from functools import lru_cache
from pathlib import Path
from typing import Literal

import cv2
import numpy as np

from tessera.mosaic.region import Grid, Region, mask_box
from tessera.restore.blend import blend, tile_weight
from tessera.restore.classical import CLASSICAL
from tessera.restore.consistency import project
from tessera.weights import shipped_path

Kind = Literal["auto", "mosaic", "blur", "hole"]
Sampling = Literal["auto", "mean", "centre"]
Restorer = Callable[[np.ndarray, np.ndarray, "Grid | None", str], np.ndarray]

# Shipped learned restorers (files in tessera.weights.SHIPPED). "default" is the general scenes model.
SHIPPED = ("scenes", "faces")
DEFAULT_MODEL = "scenes"
# Completion by latent search (restore/latent.py) in a shipped DCGAN.
LATENT = ("dcgan",)
# Refinements of any model's output, as "MODEL+NAME" or restore_image(refine=NAME) (restore/patch.py).
REFINERS = ("patch",)
# Unknown cell sampling: restore under both hypotheses and keep 'mean' only when the projection onto
# the 'centre' constraint needs at least this fraction of the correction that 'mean' needs. A 'centre'
# constraint pins one pixel per cell, so it always needs less; when unsure, 'centre' is the cheaper
# mistake: forcing 'centre' on every case lost 0.16-0.38 dB on average, forcing 'mean' 0.57-1.37 dB.
# Picked on train-folder cases (benchmarks/sampling.py, benchmarks/RESULTS.md "sampling").
SAMPLING_RATIO = 0.7


def model_names() -> list[str]:
    """Every name ``restore_image(model=...)`` accepts (besides a path to a .safetensors file)."""
    return ["default", *SHIPPED, *CLASSICAL, *LATENT]


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


# ----------------------------------------------------------------------------- learned models


class NetRestorer:
    """Runs a restoration network on a crop at native scale, in overlapping tiles when large.

    flips: self-ensemble over 1, 2 (mirror) or 4 (mirror x flip) flipped copies of the input, each
    flipped back and averaged: the task is symmetric, the network's errors are not quite. Measured
    once with the previous (3716-step) faces weights on the 40 faces/val cases: 25.57 dB with 1 flip,
    25.64 with 2, 25.68 with 4, for 4x the model time.
    """

    def __init__(self, net, name: str, tile: int = 512, overlap: int = 32, flips: int = 4):
        import torch

        if flips not in (1, 2, 4):
            raise ValueError(f"flips must be 1, 2 or 4, got {flips}")
        self.net = net.eval()
        self.name = name
        self.tile = int(tile)
        self.overlap = int(overlap)
        self.flips = flips
        self.multiple = int(getattr(net, "size_multiple", 32))
        self.torch = torch

    def _run(self, x: np.ndarray) -> np.ndarray:
        """x: float32 (4, h, w) -> (3, h, w), padding to the model's size multiple by reflection."""
        torch = self.torch
        _, h, w = x.shape
        m = self.multiple
        ph, pw = (-h) % m, (-w) % m
        t = torch.from_numpy(x)[None]
        if ph or pw:
            mode = "reflect" if (ph < h and pw < w) else "replicate"
            t = torch.nn.functional.pad(t, (0, pw, 0, ph), mode=mode)
        dims = [(), (3,), (2,), (2, 3)][: self.flips]
        with torch.inference_mode():
            t = torch.cat([t.flip(d) if d else t for d in dims])
            y = self.net(t)
            y = sum(y[i : i + 1].flip(d) if d else y[i : i + 1] for i, d in enumerate(dims)) / len(dims)
        return y[0, :, :h, :w].float().numpy()

    def __call__(self, image: np.ndarray, mask: np.ndarray, grid: Grid | None, kind: str) -> np.ndarray:
        H, W = mask.shape
        if getattr(self.net, "prefill", "none") == "smooth" and kind == "mosaic" and grid is not None:
            image = CLASSICAL["smooth"](image, mask, grid)  # the input the model was trained on
        x = image.astype(np.float32).transpose(2, 0, 1) / 127.5 - 1.0
        if kind == "hole":
            x = x * ~mask[None]
        x = np.concatenate([x, mask[None].astype(np.float32)], axis=0)
        T, ov = self.tile, self.overlap
        if H <= T and W <= T:
            y = self._run(x)
        else:
            acc = np.zeros((3, H, W), np.float32)
            wsum = np.zeros((H, W), np.float32)
            step = T - 2 * ov
            ys = list(range(0, max(H - T, 0) + 1, step)) + ([H - T] if H > T and (H - T) % step else [])
            xs = list(range(0, max(W - T, 0) + 1, step)) + ([W - T] if W > T and (W - T) % step else [])
            for y0 in ys:
                for x0 in xs:
                    y1, x1 = min(y0 + T, H), min(x0 + T, W)
                    if not mask[y0:y1, x0:x1].any():
                        continue
                    wgt = tile_weight(y1 - y0, x1 - x0, ov)
                    acc[:, y0:y1, x0:x1] += self._run(x[:, y0:y1, x0:x1]) * wgt
                    wsum[y0:y1, x0:x1] += wgt
            y = acc / np.maximum(wsum, 1e-6)
        out = np.clip(np.rint((y.transpose(1, 2, 0) + 1.0) * 127.5), 0, 255).astype(np.uint8)
        return np.where(mask[..., None], out, image)


@lru_cache(maxsize=8)
def _load_net(path: str, mtime: float):
    """A weight file's network, loaded once per (path, modification time): batches of images and
    evaluation runs reuse it (the networks are only run in eval mode, never changed)."""
    from tessera.models import load_model

    return load_model(path)


def resolve_model(model: str | os.PathLike, latent=None) -> tuple[str, Restorer]:
    """A model name (see :func:`model_names`) or a .safetensors path -> (name, restorer).
    ``NAME+patch`` refines NAME's output by neural patch synthesis; ``latent`` (a
    :class:`tessera.restore.latent.LatentConfig`) sets the latent search of dcgan models."""
    name = str(model)
    # --- latent search / patch refinement (restore/latent.py, restore/patch.py) ---
    if name.endswith(tuple("+" + r for r in REFINERS)):
        from tessera.restore.patch import PatchRefiner

        base, _, refine = name.rpartition("+")
        base_name, base_restorer = resolve_model(base, latent)
        return f"{base_name}+{refine}", PatchRefiner(base_restorer)
    if name in CLASSICAL:
        fn = CLASSICAL[name]
        return name, lambda img, m, g, kind: fn(img, m, g)
    label = name = DEFAULT_MODEL if name == "default" else name
    if name in SHIPPED or name in LATENT:
        path = shipped_path(name)  # raises, naming the file, when it is missing
    else:
        path = Path(name)
        if not path.is_file():
            raise ValueError(f"unknown model {name!r}: use one of {', '.join(model_names())} or a .safetensors file")
    net = _load_net(str(Path(path).resolve()), Path(path).stat().st_mtime)
    if getattr(net, "name", "") == "dcgan":  # a generator of z, completed by latent search
        from tessera.restore.latent import LatentConfig, LatentRestorer

        return label, LatentRestorer(net, latent or LatentConfig())
    return name, NetRestorer(net, name)


# ----------------------------------------------------------------------------- regions


def estimate_grid(image: np.ndarray, mask: np.ndarray) -> Grid | None:
    """The mosaic lattice under ``mask``, or None when the pixels there do not look like a mosaic."""
    from tessera.mosaic.grid import estimate_grid as analyse

    est = analyse(image, mask)
    return None if est is None else est.grid


def regions_from_mask(image: np.ndarray, mask: np.ndarray, grid: Grid | None, kind: Kind) -> list[Region]:
    """Split a user mask into connected regions (at most 64; more become one region), each with a grid."""
    n, labels, stats, _ = cv2.connectedComponentsWithStats(mask.astype(np.uint8), connectivity=8)
    parts = [labels == i for i in range(1, n)] if 1 < n <= 65 else [mask]
    regions = []
    for part in parts:
        g = grid
        k = kind
        if k in ("auto", "mosaic") and g is None:
            g = estimate_grid(image, part)
        if k == "auto":
            k = "mosaic" if g is not None else "hole"
        regions.append(Region(mask=part, box=mask_box(part), grid=g if k == "mosaic" else None, kind=k))
    return regions


def context_box(box: tuple[int, int, int, int], shape: tuple[int, int], context: int) -> tuple[int, int, int, int]:
    """The region's box grown by max(context, half the region's size, capped at 256) on every side, clipped."""
    x, y, w, h = box
    H, W = shape
    margin = max(context, min(max(w, h) // 2, 256))
    x0, y0 = max(x - margin, 0), max(y - margin, 0)
    x1, y1 = min(x + w + margin, W), min(y + h + margin, H)
    return x0, y0, x1, y1


def _shift_grid(grid: Grid | None, x0: int, y0: int) -> Grid | None:
    if grid is None:
        return None
    return replace(grid, phase_y=(grid.phase_y - y0) % grid.cell_h, phase_x=(grid.phase_x - x0) % grid.cell_w)


def _restore_crop(restorer: Restorer, crop, observed, m, g: Grid | None, kind: str, feather: int, consistency: bool, sampling: str | None):
    """Model, blend and (when ``consistency``) the projection for one crop -> (blended output, grid
    used, projection or None). ``sampling='auto'`` tries 'mean' and 'centre' (see SAMPLING_RATIO)."""
    if g is None:
        return blend(observed, restorer(crop, m, g, kind), m, feather), None, None
    tries = []
    for s in ("mean", "centre") if sampling == "auto" else (sampling,):
        h = replace(g, sampling=s)
        restored = blend(observed, restorer(crop, m, h, kind), m, feather)
        proj = project(restored, observed, m, h) if consistency or sampling == "auto" else None
        tries.append((restored, h, proj))
    if len(tries) == 2 and m.any():  # keep 'mean' unless 'centre' needs clearly less correction
        mean_fix, centre_fix = (float(np.abs(p.image.astype(np.float64) - r)[m].mean()) for r, _, p in tries)
        restored, h, proj = tries[1] if centre_fix < SAMPLING_RATIO * mean_fix else tries[0]
    else:
        restored, h, proj = tries[0]
    return restored, h, (proj if consistency else None)


# ----------------------------------------------------------------------------- the pipeline


def restore_image(
    image: np.ndarray,
    mask: np.ndarray | None = None,
    *,
    model: str | os.PathLike = "default",
    grid: Grid | None = None,
    kind: Kind = "auto",
    regions: list[Region] | None = None,
    context: int = 32,
    feather: int = 0,
    consistency: bool = True,
    refine: str | None = None,
    latent=None,
    sampling: Sampling | None = None,
) -> Restoration:
    """Restore the hidden parts of ``image`` (RGB uint8 (H, W, 3)).

    mask: bool (H, W) of what to restore; without it (and without ``regions``) mosaics are detected.
    model: a name from :func:`model_names` or a .safetensors path. grid: the mosaic lattice when
    known (else estimated per region). kind: what hides the pixels ('auto' = mosaic if a grid is
    found, else a hole whose pixels are ignored). Without a mask, a given grid or kind applies to
    every detected region. Pixels outside the mask are byte-identical.
    refine: 'patch' refines the model's output by multi-scale neural patch synthesis.
    latent: a :class:`tessera.restore.latent.LatentConfig` for dcgan models (iters, lam, ...).
    sampling: how each cell's colour was taken. None: a given ``grid``/``regions`` keeps its own,
    and an estimated one is decided as in 'auto'. 'auto': restore under 'mean' and 'centre' and keep
    the one the restoration agrees with (see SAMPLING_RATIO). 'mean'/'centre': use it everywhere.
    """
    image = np.asarray(image)
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise ValueError(f"image must be RGB uint8 (H, W, 3), got {image.dtype} {image.shape}")
    H, W = image.shape[:2]
    if mask is not None:
        mask = np.asarray(mask).astype(bool)
        if mask.shape != (H, W):
            raise ValueError(f"mask is {mask.shape[1]}x{mask.shape[0]} but the image is {W}x{H}")
    if refine is not None:  # e.g. "patch": neural patch synthesis on the model's output
        if refine not in REFINERS:
            raise ValueError(f"unknown refinement {refine!r}: use one of {', '.join(REFINERS)}")
        model = f"{model}+{refine}"
    if sampling not in (None, "auto", "mean", "centre"):
        raise ValueError(f"sampling must be 'auto', 'mean' or 'centre', got {sampling!r}")
    name, restorer = resolve_model(model, latent)

    estimated = regions is None and grid is None  # grids found here rather than given
    if regions is None:
        if mask is None:
            from tessera.detect.mosaics import detect

            regions = detect(image)
            if kind != "auto" or grid is not None:  # the user knows what hides the detected regions
                k = kind if kind != "auto" else "mosaic"
                regions = [replace(r, kind=k, grid=(grid or r.grid) if k == "mosaic" else None) for r in regions]
        elif mask.any():
            regions = regions_from_mask(image, mask, grid, kind)
        else:
            regions = []
    total = np.zeros((H, W), bool)
    for r in regions:
        total |= r.mask
    if not regions or not total.any():
        return Restoration(image.copy(), total, regions, None, name)

    out = image.copy()
    residuals = []
    regions = list(regions)
    for i, region in enumerate(regions):
        # 1. crop with context
        x0, y0, x1, y1 = context_box(region.box, (H, W), context)
        crop, m = out[y0:y1, x0:x1], region.mask[y0:y1, x0:x1]
        observed = image[y0:y1, x0:x1]
        g = _shift_grid(region.grid, x0, y0)
        # 2-4. model at native scale, feathered paste inside the mask, mosaic consistency (each cell
        # averages to, or has at its centre, what was observed again)
        choice = None if g is None else sampling if sampling is not None else ("auto" if estimated else g.sampling)
        restored, h, proj = _restore_crop(restorer, crop, observed, m, g, region.kind, feather, consistency, choice)
        if h is not None and region.grid is not None and h.sampling != region.grid.sampling:
            regions[i] = replace(region, grid=replace(region.grid, sampling=h.sampling))
        if proj is not None:
            restored = proj.image
            residuals.append(proj.residual_max)
        piece = out[y0:y1, x0:x1]
        piece[m] = restored[m]
    out[~total] = image[~total]
    return Restoration(out, total, regions, max(residuals) if residuals else None, name)
