"""Metrics of a restoration: pure functions of RGB uint8 (H, W, 3) images and bool (H, W) masks.

- :func:`psnr`, :func:`ssim` inside a mask; :func:`interior` (the part of a mask far from any
  visible pixel); :func:`blockiness` (how visible a mosaic lattice still is);
- :func:`detail_ratio`: mean gradient magnitude inside the region, restored / original
  (1.0 = as much fine detail as the photo; a smudge is well below 1, overdone texture above);
- :func:`niqe`: NIQE (Mittal, Soundararajan and Bovik 2013, "Making a completely blind image
  quality analyzer"): the distance between a multivariate Gaussian fitted to natural-scene
  statistics of the image's patches and one fitted to pristine photos; lower = more natural.
  Our pristine model is fitted on the train photos of ``../shared/data`` (:func:`fit_niqe`,
  shipped as package data ``evaluate/niqe_pristine.npz``), with 32-px patches so that a restored
  region of a few hundred pixels a side is scored on its own.

The flicker of a restored video lives with the temporal code (:func:`tessera.video.temporal.flicker`).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tessera.mosaic.region import Grid

NIQE_MODEL = Path(__file__).resolve().parent / "niqe_pristine.npz"
NIQE_PATCH = 32  # patch side at full scale (the half scale uses the same tiles, 16 px)
NIQE_SHARPNESS = 0.75  # pristine patches: local contrast above this share of the image's sharpest patch


# ----------------------------------------------------------------------------- PSNR, SSIM, blockiness


def psnr(pred: np.ndarray, target: np.ndarray, mask: np.ndarray | None = None) -> float:
    """PSNR in dB over the pixels of ``mask`` (all pixels when None), 8-bit peak. inf when identical."""
    a, b = pred.astype(np.float64), target.astype(np.float64)
    if mask is not None:
        a, b = a[mask], b[mask]
    if a.size == 0:
        return float("nan")
    mse = float(((a - b) ** 2).mean())
    return float("inf") if mse == 0 else 10.0 * np.log10(255.0**2 / mse)


def ssim(pred: np.ndarray, target: np.ndarray, mask: np.ndarray | None = None, window: int = 11) -> float:
    """Mean SSIM (Gaussian window 11, sigma 1.5, per channel; kornia) over the pixels of ``mask``."""
    import torch
    from kornia.metrics import ssim as kssim

    def t(x: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(x.astype(np.float32) / 255.0).permute(2, 0, 1)[None]

    if min(pred.shape[:2]) < window:
        window = max(3, min(pred.shape[:2]) // 2 * 2 - 1)
    smap = kssim(t(pred), t(target), window_size=window, max_val=1.0)[0].mean(0).numpy()
    return float(smap[mask].mean() if mask is not None else smap.mean())


def interior(mask: np.ndarray, margin: int = 16) -> np.ndarray:
    """The pixels of ``mask`` farther than ``margin`` px (Euclidean) from every pixel outside it:
    where a restorer has no visible context nearby. Pixels at the image border count as inside."""
    import cv2

    padded = np.pad(mask, 1, constant_values=True).astype(np.uint8)
    dist = cv2.distanceTransform(padded, cv2.DIST_L2, 5)[1:-1, 1:-1]
    return mask & (dist > margin)


def blockiness(image: np.ndarray, mask: np.ndarray, grid: Grid) -> float:
    """How visible the mosaic lattice still is inside ``mask``: the mean absolute step across the
    lattice's cell edges divided by the mean step between other neighbouring pixels (each + 0.5 grey
    levels). About 1.0 for a natural image; far above 1 for a mosaic."""
    from tessera.mosaic.lattice import Lattice

    img = image.astype(np.float64).mean(axis=2)
    cells = Lattice(img.shape, grid)  # its cell starts are the edges (fractional cells too)
    ratios = []
    for axis, starts in ((1, cells.cs), (0, cells.rs)):
        d = np.abs(np.diff(img, axis=axis))
        both = mask[:, 1:] & mask[:, :-1] if axis == 1 else mask[1:] & mask[:-1]
        idx = np.arange(1, img.shape[axis])  # step between idx-1 and idx
        on = np.isin(idx, starts)
        on = on[None, :] if axis == 1 else on[:, None]
        sel_on, sel_off = both & on, both & ~on
        if sel_on.sum() == 0 or sel_off.sum() == 0:
            continue
        ratios.append((d[sel_on].mean() + 0.5) / (d[sel_off].mean() + 0.5))
    return float(np.mean(ratios)) if ratios else 1.0



# ----------------------------------------------------------------------------- detail ratio


def gradient_magnitude(image: np.ndarray) -> np.ndarray:
    """(H, W) gradient magnitude of the mean of R, G, B by central differences; border pixels 0."""
    g = image.astype(np.float64).mean(axis=2) if image.ndim == 3 else image.astype(np.float64)
    gx = np.zeros_like(g)
    gy = np.zeros_like(g)
    gx[:, 1:-1] = (g[:, 2:] - g[:, :-2]) / 2
    gy[1:-1, :] = (g[2:, :] - g[:-2, :]) / 2
    mag = np.sqrt(gx**2 + gy**2)
    mag[[0, -1], :] = 0
    mag[:, [0, -1]] = 0
    return mag


def detail_ratio(restored: np.ndarray, original: np.ndarray, mask: np.ndarray) -> float:
    """Mean gradient magnitude inside ``mask``: restored / original (nan for an empty mask or a
    flat original)."""
    if not mask.any():
        return float("nan")
    a = gradient_magnitude(restored)[mask].mean()
    b = gradient_magnitude(original)[mask].mean()
    return float(a / b) if b > 0 else float("nan")


# ----------------------------------------------------------------------------- NIQE

_ALPHAS = np.arange(0.2, 10.0005, 0.001)


def _gamma(x: np.ndarray) -> np.ndarray:
    from math import lgamma

    return np.exp(np.vectorize(lgamma)(x))


_G1, _G2, _G3 = _gamma(1 / _ALPHAS), _gamma(2 / _ALPHAS), _gamma(3 / _ALPHAS)
_R_GGD = _G2**2 / (_G1 * _G3)  # E|x|^2 / E[x^2] of a generalized Gaussian with shape alpha


def fit_ggd(x: np.ndarray) -> tuple[float, float]:
    """Shape alpha and variance of a zero-mean generalized Gaussian by moment matching
    (E|x|^2 / E[x^2] against its closed form, on a grid of alpha in [0.2, 10])."""
    x = np.asarray(x, np.float64).ravel()
    var = float((x**2).mean())
    if var <= 0:
        return float(_ALPHAS[-1]), 0.0
    rho = float(np.abs(x).mean() ** 2 / var)
    return float(_ALPHAS[np.argmin((_R_GGD - rho) ** 2)]), var


def fit_aggd(x: np.ndarray) -> tuple[float, float, float, float]:
    """Shape alpha, mean eta and the left / right variances of an asymmetric generalized
    Gaussian (Lasmar et al. 2009), by moment matching; the features NIQE keeps of a product of
    neighbouring MSCN coefficients."""
    x = np.asarray(x, np.float64).ravel()
    left, right = x[x < 0], x[x > 0]
    sl = math.sqrt((left**2).mean()) if left.size else 0.0
    sr = math.sqrt((right**2).mean()) if right.size else 0.0
    if sl == 0 or sr == 0:
        return float(_ALPHAS[-1]), 0.0, sl**2, sr**2
    gamma_hat = sl / sr
    r_hat = np.abs(x).mean() ** 2 / (x**2).mean()
    R = r_hat * (gamma_hat**3 + 1) * (gamma_hat + 1) / (gamma_hat**2 + 1) ** 2
    alpha = float(_ALPHAS[np.argmin((_R_GGD - R) ** 2)])
    g1, g2 = math.gamma(1 / alpha), math.gamma(2 / alpha)
    eta = (sr - sl) * g2 / g1 * math.sqrt(g1 / math.gamma(3 / alpha))
    return alpha, float(eta), sl**2, sr**2


def mscn(gray: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean-subtracted contrast-normalized coefficients (7x7 Gaussian, sigma 7/6, C = 1) of a
    grey image in [0, 255], and the local standard deviation."""
    import cv2

    g = gray.astype(np.float64)
    mu = cv2.GaussianBlur(g, (7, 7), 7 / 6, borderType=cv2.BORDER_REPLICATE)
    sigma = np.sqrt(np.abs(cv2.GaussianBlur(g * g, (7, 7), 7 / 6, borderType=cv2.BORDER_REPLICATE) - mu * mu))
    return (g - mu) / (sigma + 1.0), sigma


def _patch_features(m: np.ndarray) -> list[float]:
    """18 NSS features of one MSCN patch: GGD (alpha, variance) and the AGGD of the products
    with the horizontal, vertical and two diagonal neighbours (4 each)."""
    feats = list(fit_ggd(m))
    H, W = m.shape
    for dy, dx in ((0, 1), (1, 0), (1, 1), (1, -1)):  # m[y, x] * m[y + dy, x + dx]
        xa, xb = (slice(0, W - dx), slice(dx, W)) if dx >= 0 else (slice(-dx, W), slice(0, W + dx))
        feats.extend(fit_aggd(m[: H - dy, xa] * m[dy:, xb]))
    return feats


def _gray(image: np.ndarray) -> np.ndarray:
    if image.ndim == 2:
        return image.astype(np.float64)
    return image[..., :3].astype(np.float64) @ np.array([0.299, 0.587, 0.114])


def niqe_features(image: np.ndarray, patch: int = NIQE_PATCH, sharp_only: bool = False) -> np.ndarray:
    """(n_patches, 36) features of the non-overlapping ``patch`` tiles of ``image`` at full and
    half scale. ``sharp_only`` keeps the tiles whose mean local deviation is at least
    :data:`NIQE_SHARPNESS` of the image's highest (how the pristine model picks its patches)."""
    import cv2

    gray = _gray(image)
    H, W = gray.shape
    ny, nx = H // patch, W // patch
    if ny == 0 or nx == 0:
        raise ValueError(f"NIQE needs an image of at least {patch}x{patch} pixels, got {H}x{W}")
    gray = gray[: ny * patch, : nx * patch]
    m1, s1 = mscn(gray)
    half = cv2.resize(gray, (nx * patch // 2, ny * patch // 2), interpolation=cv2.INTER_AREA)
    m2, _ = mscn(half)
    rows, sharp = [], []
    p2 = patch // 2
    for i in range(ny):
        for j in range(nx):
            a = m1[i * patch : (i + 1) * patch, j * patch : (j + 1) * patch]
            b = m2[i * p2 : (i + 1) * p2, j * p2 : (j + 1) * p2]
            rows.append(_patch_features(a) + _patch_features(b))
            sharp.append(s1[i * patch : (i + 1) * patch, j * patch : (j + 1) * patch].mean())
    feats = np.asarray(rows, np.float64)
    if sharp_only:
        sharp_arr = np.asarray(sharp)
        feats = feats[sharp_arr >= NIQE_SHARPNESS * sharp_arr.max()] if sharp_arr.max() > 0 else feats[:0]
    return feats


@dataclass(frozen=True)
class NiqeModel:
    """A multivariate Gaussian of pristine patch features."""

    mean: np.ndarray  # (36,)
    cov: np.ndarray  # (36, 36)
    patch: int = NIQE_PATCH
    patches: int = 0  # how many patches it was fitted on

    def save(self, path: str | Path) -> None:
        np.savez(path, mean=self.mean, cov=self.cov, patch=self.patch, patches=self.patches)

    @staticmethod
    def load(path: str | Path = NIQE_MODEL) -> NiqeModel:
        with np.load(path, allow_pickle=False) as z:
            return NiqeModel(z["mean"], z["cov"], int(z["patch"]), int(z["patches"]))


def fit_niqe(images: Iterable[np.ndarray], patch: int = NIQE_PATCH) -> NiqeModel:
    """The pristine model: mean and covariance of the sharp patches' features of ``images``."""
    feats = [niqe_features(im, patch, sharp_only=True) for im in images if min(im.shape[:2]) >= patch]
    allf = np.concatenate([f for f in feats if len(f)])
    return NiqeModel(allf.mean(0), np.cov(allf, rowvar=False), patch, len(allf))


def mvg_distance(mu1: np.ndarray, cov1: np.ndarray, mu2: np.ndarray, cov2: np.ndarray) -> float:
    """NIQE's distance between two Gaussians: sqrt((mu1 - mu2)^T ((cov1 + cov2) / 2)^+ (mu1 - mu2))."""
    d = np.asarray(mu1, np.float64) - np.asarray(mu2, np.float64)
    return float(math.sqrt(max(float(d @ np.linalg.pinv((cov1 + cov2) / 2) @ d), 0.0)))


_MODEL_CACHE: dict[str, NiqeModel] = {}


def _default_model() -> NiqeModel:
    key = str(NIQE_MODEL)
    if key not in _MODEL_CACHE:
        if not NIQE_MODEL.is_file():
            raise FileNotFoundError(f"the NIQE pristine model {NIQE_MODEL} is missing (benchmarks/perceptual.py --fit-niqe writes it)")
        _MODEL_CACHE[key] = NiqeModel.load(NIQE_MODEL)
    return _MODEL_CACHE[key]


def region_box(mask: np.ndarray, patch: int) -> tuple[int, int, int, int]:
    """(y0, y1, x0, x1): the bounding box of ``mask`` grown to at least ``patch`` px a side,
    inside the image."""
    ys, xs = np.nonzero(mask)
    H, W = mask.shape

    def span(lo: int, hi: int, n: int) -> tuple[int, int]:
        size = max(hi - lo, min(patch, n))
        lo = min(max((lo + hi - size) // 2, 0), n - size)
        return lo, lo + size

    y0, y1 = span(int(ys.min()), int(ys.max()) + 1, H)
    x0, x1 = span(int(xs.min()), int(xs.max()) + 1, W)
    return y0, y1, x0, x1


def niqe(image: np.ndarray, mask: np.ndarray | None = None, model: NiqeModel | None = None) -> float:
    """NIQE of ``image`` (of the bounding box of ``mask``, grown to one patch, when given):
    lower is more natural. Uses the shipped pristine model unless ``model`` is given."""
    model = model or _default_model()
    if mask is not None:
        if not mask.any():
            return float("nan")
        y0, y1, x0, x1 = region_box(mask, model.patch)
        image = image[y0:y1, x0:x1]
    if min(image.shape[:2]) < model.patch:
        return float("nan")
    feats = niqe_features(image, model.patch)
    cov = np.cov(feats, rowvar=False) if len(feats) > 1 else np.zeros_like(model.cov)
    return mvg_distance(model.mean, model.cov, feats.mean(0), cov)
