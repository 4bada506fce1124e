"""Training data: a folder of photos -> random crops -> augmentation -> degradation.

A training sample is (input, mask, target):

- target: the clean crop, float (3, H, W) in [-1, 1];
- mask: (1, H, W) in {0, 1}, 1 = hidden (the pixels the degradation replaced);
- input: (4, H, W) = cat([degraded RGB in [-1, 1], mask]); inside a *hole* the RGB is 0,
  inside a mosaic or blur the degraded pixels are kept (they carry information).

The degradation is described by a :class:`DegradePlan` drawn by :func:`sample_plan` from an
explicit ``numpy`` generator; the plan depends only on the crop's shape, never its pixels, so
it can be drawn in a loader worker and applied later. :func:`degrade` applies one plan to one
uint8 image with numpy (usable outside torch, e.g. for validation and benchmarks);
:func:`degrade_batch` applies a batch of plans on the training device (mosaics are bit-exact
with the numpy version; blur and JPEG use kornia there and cv2 here, so they differ slightly).

Batches are a pure function of ``(seed, rank, step)`` (:class:`StepBatches`), so resuming a
run at step s reproduces exactly the data it would have seen.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from tessera.mosaic.masks import random_shape
from tessera.mosaic.pixelate import pixelate
from tessera.mosaic.region import SAMPLINGS  # plans' samplings travel through the batches as indices into it
from tessera.mosaic.synth import HOLE_FILL, zoo_sampling

IMAGE_EXTS = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff", ".gif", ".ppm", ".pgm"})
KINDS = ("mosaic", "hole", "blur")


class DataError(ValueError):
    """A data folder that cannot be used for training (missing, empty, nothing readable)."""


@dataclass(frozen=True)
class DegradeConfig:
    """How degradations are drawn. Sizes are in pixels of the crop."""

    region: int = 128  # the hidden region fits in a box of region_min*region .. region pixels per side
    region_min: float = 0.5
    kinds: tuple[str, ...] = KINDS
    kind_weights: tuple[float, ...] = (0.6, 0.25, 0.15)
    shapes: tuple[str, ...] = ("box", "ellipse", "polygon")
    cell: int = 12  # mosaic cell size: the mode of a triangular draw over cell_range
    cell_range: tuple[int, int] = (4, 24)
    rect_prob: float = 0.25  # cells of different width and height
    centre_prob: float = 0.3  # centre sampling instead of mean
    feather_prob: float = 0.3
    feather_max: int = 4
    blur_sigma: tuple[float, float] = (1.5, 8.0)
    hole_strokes_prob: float = 0.5  # holes: free-form strokes, else a box
    jpeg_prob: float = 0.7
    jpeg_quality: tuple[int, int] = (30, 95)
    # share of mosaics made as other tools make them (tessera.mosaic.synth zoo), with their formats;
    # 0 draws nothing extra, so older runs' data streams are unchanged. 'rescaled' is not offered
    # (it resizes the target too).
    zoo_prob: float = 0.0
    zoo: tuple[str, ...] = (
        "mean", "mean-floor", "mean-even", "centre", "centre-up", "magick", "ffmpeg-nearest", "ffmpeg-area",
        "opencv-nearest", "opencv-area", "rect", "feather", "soft",
    )
    zoo_formats: tuple[str, ...] = ("png", "jpeg", "jpeg444")

    def __post_init__(self) -> None:
        if self.region < 4:
            raise ValueError(f"region must be at least 4 pixels, got {self.region}")
        for k in self.kinds:
            if k not in KINDS:
                raise ValueError(f"unknown degradation {k!r}; choose from {KINDS}")
        if len(self.kind_weights) != len(self.kinds):
            raise ValueError("kind_weights needs one weight per kind")
        lo, hi = self.cell_range
        if not (1 <= lo <= hi):
            raise ValueError(f"cell_range must be 1 <= lo <= hi, got {self.cell_range}")
        if not (lo <= self.cell <= hi):
            raise ValueError(f"cell {self.cell} must lie in cell_range {self.cell_range}")
        from tessera.mosaic.synth import ZOO, ZOO_FORMATS

        if not 0.0 <= self.zoo_prob <= 1.0:
            raise ValueError(f"zoo_prob must be within 0..1, got {self.zoo_prob}")
        bad = [g for g in self.zoo if g not in ZOO or g == "rescaled"] + [f for f in self.zoo_formats if f not in ZOO_FORMATS]
        if bad or (self.zoo_prob > 0 and not (self.zoo and self.zoo_formats)):
            raise ValueError(f"zoo generators must come from {', '.join(g for g in ZOO if g != 'rescaled')} and formats from {ZOO_FORMATS}; not {bad}")


@dataclass(frozen=True)
class AugmentConfig:
    """Geometric augmentation of the clean crop (kornia, on the training device)."""

    rotate: float = 10.0  # degrees, +-
    shear: float = 8.0  # degrees, +-
    zoom: tuple[float, float] = (0.85, 1.25)
    hflip: bool = True
    prob: float = 0.8  # probability of the affine part


@dataclass(frozen=True)
class DegradePlan:
    """One sample's degradation, independent of its pixels."""

    kind: str
    region: np.ndarray  # bool (H, W), True = to hide
    box: tuple[int, int, int, int]  # (x, y, w, h) of the region's window
    cell: tuple[int, int] = (12, 12)
    phase: tuple[int, int] = (0, 0)
    sampling: str = "mean"
    feather: int = 0
    sigma: float = 0.0
    quality: int = 0  # JPEG quality, 0 = no JPEG
    extra: dict[str, Any] = field(default_factory=dict)


# ---------------------------------------------------------------- plans (pure, numpy rng)


def _window(shape: tuple[int, int], cfg: DegradeConfig, rng: np.random.Generator) -> tuple[int, int, int, int]:
    H, W = shape
    lo = max(2, int(round(cfg.region * cfg.region_min)))
    h = int(min(H, rng.integers(lo, cfg.region + 1)))
    w = int(min(W, rng.integers(lo, cfg.region + 1)))
    y = int(rng.integers(0, H - h + 1))
    x = int(rng.integers(0, W - w + 1))
    return x, y, w, h


def _shape_mask(shape: tuple[int, int], box: tuple[int, int, int, int], kind: str, rng: np.random.Generator) -> np.ndarray:
    x, y, w, h = box
    sub = random_shape(kind, (h, w), (h, w), rng, strokes=(1, 4), width=(max(2, min(h, w) // 12), max(3, min(h, w) // 5)))
    out = np.zeros(shape, dtype=bool)
    out[y : y + h, x : x + w] = sub
    return out


def sample_plan(shape: tuple[int, int], rng: np.random.Generator, config: DegradeConfig = DegradeConfig()) -> DegradePlan:
    """Draw one degradation for a crop of ``shape`` (H, W)."""
    cfg = config
    p = np.asarray(cfg.kind_weights, dtype=float)
    kind = cfg.kinds[int(rng.choice(len(cfg.kinds), p=p / p.sum()))]
    box = _window(shape, cfg, rng)
    if kind == "hole":
        region = _shape_mask(shape, box, "strokes" if rng.random() < cfg.hole_strokes_prob else "box", rng)
        if not region.any():
            region = _shape_mask(shape, box, "box", rng)
    else:
        region = _shape_mask(shape, box, cfg.shapes[int(rng.integers(len(cfg.shapes)))], rng)
    feather = int(rng.integers(1, cfg.feather_max + 1)) if cfg.feather_max > 0 and rng.random() < cfg.feather_prob else 0
    quality = int(rng.integers(cfg.jpeg_quality[0], cfg.jpeg_quality[1] + 1)) if rng.random() < cfg.jpeg_prob else 0
    lo, hi = cfg.cell_range
    ch = int(round(rng.triangular(lo, cfg.cell, hi))) if hi > lo else lo
    cw = ch
    if rng.random() < cfg.rect_prob:
        cw = int(np.clip(round(ch * rng.uniform(0.6, 1.6)), lo, hi))
    phase = (int(rng.integers(0, ch)), int(rng.integers(0, cw)))
    sampling = "centre" if rng.random() < cfg.centre_prob else "mean"
    sigma = float(rng.uniform(*cfg.blur_sigma))
    if kind == "hole":
        feather = 0
    extra: dict[str, Any] = {}
    if kind == "mosaic" and cfg.zoo_prob > 0 and rng.random() < cfg.zoo_prob:
        gen = cfg.zoo[int(rng.integers(len(cfg.zoo)))]
        fmt = cfg.zoo_formats[int(rng.integers(len(cfg.zoo_formats)))]
        ys, xs = np.nonzero(region)
        phase = (int(ys.min()) % ch, int(xs.min()) % cw) if ys.size else phase  # tools tile from the box corner
        sampling = zoo_sampling(gen)  # the tool's own: OpenCV's nearest holds the first pixel, ffmpeg's centre-up
        extra = {"zoo": gen, "format": fmt, "seed": int(rng.integers(2**31))}
        quality = 0  # the zoo's format replaces the plain JPEG step
    return DegradePlan(kind, region, box, (ch, cw), phase, sampling, feather, sigma, quality, extra)


def apply_zoo(image: np.ndarray, plan: DegradePlan) -> tuple[np.ndarray, np.ndarray]:
    """A zoo plan (``plan.extra['zoo']``) applied to one RGB uint8 image -> (degraded, mask)."""
    from tessera.mosaic.synth import encode, zoo_apply

    rng = np.random.default_rng(plan.extra["seed"])
    out, mask, _, _, _ = zoo_apply(image, plan.region, rng, plan.extra["zoo"], cell=plan.cell)
    out, _ = encode(out, plan.extra["format"], rng)
    return out, mask


# ---------------------------------------------------------------- numpy application


def jpeg_roundtrip(image: np.ndarray, quality: int) -> np.ndarray:
    """Encode and decode an RGB uint8 image as JPEG at ``quality``."""
    ok, buf = cv2.imencode(".jpg", cv2.cvtColor(image, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    if not ok:
        raise RuntimeError("JPEG encoding failed")
    return cv2.cvtColor(cv2.imdecode(buf, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)


def apply_plan(image: np.ndarray, plan: DegradePlan) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
    """Apply ``plan`` to an RGB uint8 (H, W, 3) image -> (degraded uint8, mask bool (H, W), info)."""
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise ValueError(f"image must be RGB uint8 (H, W, 3), got {image.dtype} {image.shape}")
    if plan.region.shape != image.shape[:2]:
        raise ValueError(f"plan is for {plan.region.shape} but the image is {image.shape[:2]}")
    if plan.kind == "mosaic" and plan.extra.get("zoo"):
        out, mask = apply_zoo(image, plan)
    elif plan.kind == "mosaic":
        out, mask = pixelate(image, plan.region, cell=plan.cell, phase=plan.phase, sampling=plan.sampling, feather=plan.feather)
    elif plan.kind == "blur":
        out, mask = pixelate(image, plan.region, blur=plan.sigma, feather=plan.feather)
    elif plan.kind == "hole":
        out, mask = image.copy(), plan.region.copy()
        out[mask] = HOLE_FILL
    else:
        raise ValueError(f"unknown degradation {plan.kind!r}")
    if plan.quality:
        out = jpeg_roundtrip(out, plan.quality)
        if plan.kind == "hole":
            out[mask] = HOLE_FILL
    info = {"kind": plan.kind, "box": plan.box, "quality": plan.quality or None, **plan.extra}
    if plan.kind == "mosaic":
        info.update(cell=plan.cell, phase=plan.phase, sampling=plan.sampling, feather=plan.feather)
    elif plan.kind == "blur":
        info.update(sigma=plan.sigma, feather=plan.feather)
    return out, mask, info


def degrade(image: np.ndarray, rng: np.random.Generator, config: DegradeConfig = DegradeConfig()) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
    """Degrade one RGB uint8 (H, W, 3) image at random: a mosaic, a hole or a blur in a random
    region, then maybe JPEG. Returns ``(degraded uint8 (H, W, 3), mask bool (H, W), info)``."""
    return apply_plan(image, sample_plan(image.shape[:2], rng, config))


def model_input(degraded: np.ndarray, mask: np.ndarray, hole: bool) -> np.ndarray:
    """(4, H, W) float32 model input from a degraded uint8 image: RGB in [-1, 1] (0 inside a
    hole) and the mask as the 4th channel."""
    rgb = degraded.astype(np.float32).transpose(2, 0, 1) / 127.5 - 1.0
    m = mask.astype(np.float32)[None]
    if hole:
        rgb = rgb * (1.0 - m)
    return np.concatenate([rgb, m], axis=0)


# ---------------------------------------------------------------- image folders


def find_images(root: str | Path) -> list[Path]:
    """Image files under ``root``, walked recursively, sorted."""
    root = Path(root)
    if not root.exists():
        raise DataError(f"data folder {root} does not exist")
    if root.is_file():
        return [root] if root.suffix.lower() in IMAGE_EXTS else []
    return sorted(p for p in root.rglob("*") if p.suffix.lower() in IMAGE_EXTS and p.is_file())


def read_rgb(path: Path) -> np.ndarray:
    """RGB uint8 (H, W, 3) from any image file (grey becomes RGB); raises on broken files."""
    try:
        from tessera.io.image import read_image
    except ImportError:  # imaging not available: PIL directly
        read_image = None
    if read_image is not None:
        rgb = read_image(path)[0]
    else:
        from PIL import Image, ImageOps

        with Image.open(path) as im:
            rgb = np.asarray(ImageOps.exif_transpose(im).convert("RGB"))
    rgb = np.asarray(rgb)
    if rgb.ndim == 2:
        rgb = np.repeat(rgb[..., None], 3, axis=2)
    if rgb.shape[2] == 4:
        rgb = rgb[..., :3]
    if rgb.shape[2] == 1:
        rgb = np.repeat(rgb, 3, axis=2)
    return np.ascontiguousarray(rgb.astype(np.uint8))


class ImageFolder:
    """The images of a folder (recursive) as random crops of ``crop`` x ``crop`` pixels.

    small: what to do with images whose short side is below ``crop``: 'upscale' them so it
    fits, or 'skip' them. Broken files are skipped with a warning. cache: keep decoded images
    in memory (per process).
    """

    def __init__(self, root: str | Path, *, crop: int = 256, small: str = "upscale", cache: bool = True, min_side: int = 16) -> None:
        if small not in ("upscale", "skip"):
            raise ValueError(f"small must be 'upscale' or 'skip', got {small!r}")
        self.root = Path(root)
        self.files = find_images(root)
        if not self.files:
            raise DataError(f"no images in {root} (looked for {', '.join(sorted(IMAGE_EXTS))}, recursively)")
        self.crop, self.small, self.cache, self.min_side = int(crop), small, cache, min_side
        self._cache: dict[int, np.ndarray] = {}
        self._bad: set[int] = set()

    def __len__(self) -> int:
        return len(self.files)

    def load(self, i: int) -> np.ndarray | None:
        """Image i at a size whose short side is >= crop, or None (broken, too small)."""
        if i in self._bad:
            return None
        if i in self._cache:
            return self._cache[i]
        try:
            rgb = read_rgb(self.files[i])
        except Exception as exc:  # any decoder failure: skip the file
            warnings.warn(f"skipping unreadable image {self.files[i]}: {exc}", stacklevel=2)
            self._bad.add(i)
            return None
        short = min(rgb.shape[:2])
        if short < self.crop:
            if self.small == "skip" or short < self.min_side:
                self._bad.add(i)
                return None
            s = self.crop / short
            size = (max(self.crop, int(round(rgb.shape[1] * s))), max(self.crop, int(round(rgb.shape[0] * s))))
            rgb = cv2.resize(rgb, size, interpolation=cv2.INTER_CUBIC)
        if self.cache:
            self._cache[i] = rgb
        return rgb

    def random_crop(self, rng: np.random.Generator) -> np.ndarray:
        """A random crop (crop, crop, 3) uint8 of a random usable image."""
        for _ in range(100 + 2 * len(self.files)):
            i = int(rng.integers(len(self.files)))
            rgb = self.load(i)
            if rgb is None:
                if len(self._bad) == len(self.files):
                    break
                continue
            H, W = rgb.shape[:2]
            y = int(rng.integers(0, H - self.crop + 1))
            x = int(rng.integers(0, W - self.crop + 1))
            return rgb[y : y + self.crop, x : x + self.crop]
        raise DataError(
            f"no usable image in {self.root}: {len(self._bad)} of {len(self.files)} are unreadable or smaller than "
            f"{self.crop} px (use small='upscale' or a smaller crop)"
        )

    def centre_crop(self, i: int) -> np.ndarray | None:
        rgb = self.load(i)
        if rgb is None:
            return None
        H, W = rgb.shape[:2]
        y, x = (H - self.crop) // 2, (W - self.crop) // 2
        return rgb[y : y + self.crop, x : x + self.crop]


# ---------------------------------------------------------------- batches (torch)


def plans_to_tensors(plans: list[DegradePlan]) -> dict[str, Any]:
    import torch

    return {
        "region": torch.from_numpy(np.stack([p.region for p in plans])),
        "kind": torch.tensor([KINDS.index(p.kind) for p in plans]),
        "cell": torch.tensor([p.cell for p in plans]),
        "phase": torch.tensor([p.phase for p in plans]),
        "sampling": torch.tensor([SAMPLINGS.index(p.sampling) for p in plans]),
        "feather": torch.tensor([p.feather for p in plans]),
        "sigma": torch.tensor([p.sigma for p in plans], dtype=torch.float32),
        "quality": torch.tensor([p.quality for p in plans]),
        "box": torch.tensor([p.box for p in plans]),
        "zoo": [dict(p.extra) for p in plans],  # zoo plans are applied with numpy, one by one
    }


class StepBatches:
    """A map-style dataset whose item ``step`` is the batch of that step: ``batch`` clean crops
    (uint8 (N, 3, H, W)) and their degradation plans, drawn from ``rng([seed, rank, step])``.
    Use it with ``DataLoader(..., batch_size=None, sampler=range(start, stop))``."""

    def __init__(self, folder: ImageFolder, batch: int, degrade: DegradeConfig, *, seed: int = 0, rank: int = 0) -> None:
        self.folder, self.batch, self.degrade, self.seed, self.rank = folder, int(batch), degrade, int(seed), int(rank)

    def __len__(self) -> int:
        return 2**62

    def __getitem__(self, step: int) -> dict[str, Any]:
        import torch

        rng = np.random.default_rng([self.seed, self.rank, int(step)])
        crops = [self.folder.random_crop(rng) for _ in range(self.batch)]
        plans = [sample_plan(c.shape[:2], rng, self.degrade) for c in crops]
        out = plans_to_tensors(plans)
        out["clean"] = torch.from_numpy(np.stack(crops)).permute(0, 3, 1, 2).contiguous()
        out["step"] = int(step)
        return out


def augment(clean, config: AugmentConfig, generator_seed: int):
    """Random rotation, shear, zoom and horizontal flip of a uint8 batch (N, 3, H, W) with
    kornia on its device; reproducible from ``generator_seed``. Returns uint8."""
    import kornia.augmentation as K
    import torch

    devices = [clean.device] if clean.device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(generator_seed)
        x = clean.float() / 255.0
        if config.hflip:
            x = K.RandomHorizontalFlip(p=0.5)(x)
        if config.prob > 0 and (config.rotate or config.shear or config.zoom != (1.0, 1.0)):
            aff = K.RandomAffine(
                degrees=config.rotate,
                shear=config.shear or None,
                scale=config.zoom,
                padding_mode="reflection",
                p=config.prob,
            )
            x = aff(x)
    return (x.clamp(0, 1) * 255.0).round().to(torch.uint8)


def _feather_blend(img, effect, sel, feather: int):
    """Integer feathered blend, the same arithmetic as ``tessera.mosaic.pixelate``."""
    import torch
    import torch.nn.functional as F

    n = feather + 1
    weight = sel.to(torch.int64)
    sel_f = sel.to(torch.float32)[None, None]
    for k in range(1, n):
        weight = weight + F.max_pool2d(sel_f, 2 * k + 1, stride=1, padding=k)[0, 0].to(torch.int64)
    out = (weight * effect.to(torch.int64) + (n - weight) * img.to(torch.int64) + n // 2) // n
    m = weight > 0
    return torch.where(m[None], out.to(torch.uint8), img), m


def degrade_batch(clean, plan: dict[str, Any]):
    """Apply a batch of plans (from :func:`plans_to_tensors`) to uint8 images (N, 3, H, W) on
    their device. Returns ``(degraded uint8 (N, 3, H, W), mask bool (N, H, W))``."""
    import kornia.filters as KF
    import torch

    from tessera.mosaic.pixelate import pixelate_torch

    device = clean.device
    region = plan["region"].to(device)
    kind = plan["kind"].tolist()
    out = clean.clone()
    mask = torch.zeros_like(region)
    zoo = plan.get("zoo") or [{}] * len(kind)
    idx = [i for i, k in enumerate(kind) if KINDS[k] == "mosaic" and not zoo[i].get("zoo")]
    if idx:
        o, m = pixelate_torch(
            clean[idx],
            region[idx],
            cell=[tuple(plan["cell"][i].tolist()) for i in idx],
            phase=[tuple(plan["phase"][i].tolist()) for i in idx],
            sampling=[SAMPLINGS[int(plan["sampling"][i])] for i in idx],
            feather=[int(plan["feather"][i]) for i in idx],
        )
        out[idx], mask[idx] = o, m
    for i, k in enumerate(kind):
        if zoo[i].get("zoo"):
            p = DegradePlan("mosaic", region[i].cpu().numpy(), tuple(plan["box"][i].tolist()), tuple(plan["cell"][i].tolist()), extra=zoo[i])
            o, m = apply_zoo(clean[i].permute(1, 2, 0).cpu().numpy().copy(), p)
            out[i] = torch.from_numpy(o).permute(2, 0, 1).to(device)
            mask[i] = torch.from_numpy(m).to(device)
        elif KINDS[k] == "blur":
            s = float(plan["sigma"][i])
            ks = int(round(6 * s + 1)) | 1  # OpenCV's kernel size for uint8 images
            ks = min(ks, 2 * min(clean.shape[-2:]) - 1)  # reflection needs a pad below the size
            eff = KF.gaussian_blur2d(clean[i : i + 1].float(), (ks, ks), (s, s), border_type="reflect")
            eff = eff.round().clamp(0, 255).to(torch.uint8)[0]
            out[i], mask[i] = _feather_blend(clean[i], eff, region[i], int(plan["feather"][i]))
        elif KINDS[k] == "hole":
            mask[i] = region[i]
            out[i] = torch.where(region[i][None], torch.full_like(out[i], HOLE_FILL), out[i])
    q = plan["quality"].to(device)
    jpg = (q > 0).nonzero().flatten().tolist()
    if jpg and device.type == "cpu":  # the real codec (libjpeg via OpenCV): 10x faster than kornia's on CPU
        for i in jpg:
            img = out[i].permute(1, 2, 0).contiguous().numpy()
            out[i] = torch.from_numpy(jpeg_roundtrip(img, int(q[i]))).permute(2, 0, 1)
    elif jpg:
        from kornia.enhance import jpeg_codec_differentiable

        x = out[jpg].float() / 255.0
        y = jpeg_codec_differentiable(x, q[jpg].float())
        out[jpg] = (y.clamp(0, 1) * 255.0).round().to(torch.uint8)
        holes = torch.tensor([KINDS[kind[i]] == "hole" for i in range(len(kind))], device=device)
        out = torch.where((mask & holes[:, None, None])[:, None], torch.full_like(out, HOLE_FILL), out)
    return out, mask


def to_triple(degraded, mask, clean, kind):
    """Float model tensors from uint8 batches: input (N, 4, H, W), mask (N, 1, H, W), target (N, 3, H, W)."""
    import torch

    m = mask[:, None].to(torch.float32)
    rgb = degraded.to(torch.float32) / 127.5 - 1.0
    hole = torch.as_tensor([KINDS[int(k)] == "hole" for k in kind], device=degraded.device)[:, None, None, None]
    rgb = torch.where(hole & (m > 0), torch.zeros_like(rgb), rgb)
    target = clean.to(torch.float32) / 127.5 - 1.0
    return torch.cat([rgb, m], dim=1), m, target


def prefill_batch(degraded, mask, plan: dict[str, Any]):
    """Mosaic samples' hidden cells replaced by the grid-aware cubic interpolation of their cell
    values (:func:`tessera.restore.classical.smooth_torch`), the input of ``prefill='smooth'`` models."""
    from tessera.restore.classical import smooth_torch

    kinds = plan["kind"].tolist()
    cells = [tuple(plan["cell"][i].tolist()) if KINDS[k] == "mosaic" else None for i, k in enumerate(kinds)]
    phases = [tuple(plan["phase"][i].tolist()) for i in range(len(kinds))]
    samplings = [SAMPLINGS[int(plan["sampling"][i])] for i in range(len(kinds))]
    return smooth_torch(degraded, mask, cells, phases, samplings)


def make_batch(raw: dict[str, Any], device, aug: AugmentConfig | None, seed: int, prefill: str = "none"):
    """Loader output -> model triple on ``device``: augment the clean crops, degrade them
    (and pre-fill mosaics for ``prefill='smooth'`` models)."""
    clean = raw["clean"].to(device, non_blocking=True)
    if aug is not None:
        clean = augment(clean, aug, seed)
    degraded, mask = degrade_batch(clean, raw)
    if prefill == "smooth":
        degraded = prefill_batch(degraded, mask, raw)
    return to_triple(degraded, mask, clean, raw["kind"])


def validation_set(
    root: str | Path, *, crop: int, degrade_cfg: DegradeConfig, count: int = 32, seed: int = 1234, small: str = "upscale", prefill: str = "none"
):
    """A fixed validation batch: centre crops of up to ``count`` images of ``root``, degraded
    with the numpy path from a fixed seed. Returns (input, mask, target) tensors on CPU."""
    import torch

    folder = ImageFolder(root, crop=crop, small=small, cache=False)
    rng = np.random.default_rng(seed)
    xs, ms, ts = [], [], []
    for i in range(len(folder)):
        if len(xs) >= count:
            break
        img = folder.centre_crop(i)
        if img is None:
            continue
        deg, mask, info = degrade(img, rng, degrade_cfg)
        if prefill == "smooth" and info["kind"] == "mosaic":
            from tessera.mosaic.region import Grid
            from tessera.restore.classical import smooth

            (ch, cw), (py, px) = info["cell"], info["phase"]
            deg = smooth(deg, mask, Grid(ch, cw, py % ch, px % cw, info["sampling"]))
        xs.append(model_input(deg, mask, info["kind"] == "hole"))
        ms.append(mask[None].astype(np.float32))
        ts.append(img.astype(np.float32).transpose(2, 0, 1) / 127.5 - 1.0)
    if not xs:
        raise DataError(f"no usable validation image in {root}")
    return torch.from_numpy(np.stack(xs)), torch.from_numpy(np.stack(ms)), torch.from_numpy(np.stack(ts))


# ---------------------------------------------------------------- other families' batches


class SquareBatches:
    """Step-indexed batches of whole images for an image generator (the DCGAN): each image's centre
    square resized to ``size + size // 16``, a random ``size`` crop of it, flipped at random; float
    (N, 3, size, size) in [-1, 1] under key ``x``, drawn from ``rng([seed, rank, step])``."""

    def __init__(self, folder: ImageFolder, batch: int, size: int, *, seed: int = 0, rank: int = 0) -> None:
        self.folder, self.batch, self.size, self.seed, self.rank = folder, int(batch), int(size), int(seed), int(rank)

    def __len__(self) -> int:
        return 2**62

    def square(self, i: int) -> np.ndarray | None:
        rgb = self.folder.load(i)
        if rgb is None:
            return None
        H, W = rgb.shape[:2]
        k, s = min(H, W), self.size + self.size // 16
        sq = rgb[(H - k) // 2 : (H - k) // 2 + k, (W - k) // 2 : (W - k) // 2 + k]
        return cv2.resize(sq, (s, s), interpolation=cv2.INTER_AREA if k > s else cv2.INTER_CUBIC)

    def __getitem__(self, step: int) -> dict[str, Any]:
        import torch

        rng = np.random.default_rng([self.seed, self.rank, int(step)])
        crops = []
        while len(crops) < self.batch:
            sq = self.square(int(rng.integers(len(self.folder))))
            if sq is None:
                continue
            y, x = (int(v) for v in rng.integers(0, sq.shape[0] - self.size + 1, 2))
            c = sq[y : y + self.size, x : x + self.size]
            crops.append(c[:, ::-1] if rng.random() < 0.5 else c)
        x = torch.from_numpy(np.stack(crops).astype(np.float32) / 127.5 - 1.0).permute(0, 3, 1, 2).contiguous()
        return {"x": x, "step": int(step)}


class CaseBatches:
    """Step-indexed batches for the mosaic detector: random crops hidden by
    :func:`tessera.mosaic.synth.random_case` (mosaics of every kind, blurs, hard negatives, JPEG);
    ``x`` float (N, 3, S, S) in [-1, 1] and ``m`` the hidden-pixel mask float (N, 1, S, S)."""

    def __init__(self, folder: ImageFolder, batch: int, *, seed: int = 0, rank: int = 0) -> None:
        self.folder, self.batch, self.seed, self.rank = folder, int(batch), int(seed), int(rank)

    def __len__(self) -> int:
        return 2**62

    def __getitem__(self, step: int) -> dict[str, Any]:
        import torch

        from tessera.mosaic.synth import random_case

        rng = np.random.default_rng([self.seed, self.rank, int(step)])
        xs, ms = [], []
        for _ in range(self.batch):
            out, mask, *_ = random_case(self.folder.random_crop(rng), rng)
            xs.append(out)
            ms.append(mask)
        x = torch.from_numpy(np.stack(xs)).permute(0, 3, 1, 2).float() / 127.5 - 1
        return {"x": x, "m": torch.from_numpy(np.stack(ms)).float()[:, None], "step": int(step)}
