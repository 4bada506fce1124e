"""Multi-scale neural patch synthesis (Yang et al. 2017, "High-Resolution Image Inpainting using
Multi-Scale Neural Patch Synthesis"): texture refinement of a content network's output.

Given the image, its hole and a feed-forward model's output (the "content"), optimize the hole's
pixels x to minimize

    E(x) = content_weight * E_content + texture_weight * E_texture + tv_weight * E_tv

E_content: the mean squared difference between x and the content output over the hole's pixels.
E_texture: for every neural patch (``patch`` x ``patch`` on a feature map) centred in the hole, the
mean squared difference to its nearest neighbour among the patches that lie wholly in the known
region, nearest by normalized cross-correlation; the search is a convolution of the feature map
with the unit-normalized known patches as filters (targets held fixed within an iteration).
E_tv: the mean squared difference between neighbouring pixels, over pairs that touch the hole.

Coarse to fine: at ``scales`` resolutions (halving each time, coarsest first) with Adam, each
initialized from the previous result upsampled (the coarsest from the content output).

Features: ImageNet VGG cannot be had offline, so the features are those of the critic of our
DCGAN trained on faces (the shipped dcgan-faces64.safetensors), its second block by default: stride 4,
LeakyReLU after a batch-normed 4x4 convolution, about what VGG's relu3_1 is in the paper.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
import torch
import torch.nn.functional as F


@dataclass(frozen=True)
class PatchConfig:
    scales: int = 3  # resolutions, halving from native
    iters: int = 40  # Adam steps per scale
    lr: float = 0.03  # Adam step on pixels in [-1, 1]
    content_weight: float = 1.0
    texture_weight: float = 0.5
    tv_weight: float = 0.5
    patch: int = 3  # neural patch side on the feature map
    layers: tuple[int, ...] = (1,)  # critic blocks whose features are matched (0 = first, stride 2)
    max_known: int = 1024  # known patches kept as filters (subsampled on a coarser lattice beyond)
    min_side: int = 32  # coarsest scale's shorter side is at least this (fewer scales otherwise)

    def __post_init__(self) -> None:
        if self.scales < 1 or self.iters < 0 or self.patch < 1 or self.patch % 2 == 0 or not self.layers:
            raise ValueError("patch synthesis needs scales >= 1, iters >= 0, an odd patch size and at least one layer")


# ----------------------------------------------------------------------------- losses


def content_loss(x: torch.Tensor, content: torch.Tensor, hole: torch.Tensor) -> torch.Tensor:
    """Mean of (x - content)^2 over the hole's pixels and all channels. x, content (N, C, H, W), hole (H, W)."""
    m = hole.to(x.dtype).expand_as(x)
    return ((x - content).square() * m).sum() / m.sum().clamp_min(1.0)


def tv_loss(x: torch.Tensor, hole: torch.Tensor | None = None) -> torch.Tensor:
    """Mean squared difference of vertically and horizontally neighbouring pixels, over the pairs
    with at least one pixel in ``hole`` (all pairs when None), all channels."""
    dv = (x[..., 1:, :] - x[..., :-1, :]).square()
    dh = (x[..., :, 1:] - x[..., :, :-1]).square()
    if hole is None:
        return (dv.sum() + dh.sum()) / (dv.numel() + dh.numel())
    mv = (hole[1:, :] | hole[:-1, :]).to(x.dtype).expand_as(dv)
    mh = (hole[:, 1:] | hole[:, :-1]).to(x.dtype).expand_as(dh)
    return ((dv * mv).sum() + (dh * mh).sum()) / (mv.sum() + mh.sum()).clamp_min(1.0)


def known_patches(feat: torch.Tensor, known: torch.Tensor, patch: int, max_known: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """The ``patch`` x ``patch`` patches of ``feat`` (1, C, h, w) that lie wholly in ``known`` (h, w):
    (K, C, p, p) patches and (K, 2) their centres (y, x); at most ``max_known``, kept on a lattice
    of stride s (the smallest that fits)."""
    r = patch // 2
    inside = -F.max_pool2d(-known.float()[None, None], patch, stride=1, padding=0)[0, 0] > 0.5  # (h-2r, w-2r)
    ys, xs = torch.nonzero(inside, as_tuple=True)
    if max_known is not None and ys.numel() > max_known:
        s = 2
        while True:
            keep = (ys % s == 0) & (xs % s == 0)
            if int(keep.sum()) <= max_known:
                break
            s += 1
        ys, xs = ys[keep], xs[keep]
    if ys.numel() == 0:
        return feat.new_zeros((0, feat.shape[1], patch, patch)), torch.zeros((0, 2), dtype=torch.long)
    cols = F.unfold(feat, patch)  # (1, C*p*p, (h-2r)*(w-2r))
    idx = ys * inside.shape[1] + xs
    patches = cols[0, :, idx].T.reshape(-1, feat.shape[1], patch, patch)
    return patches, torch.stack([ys + r, xs + r], 1)


def nearest_patches(feat: torch.Tensor, queries: torch.Tensor, patches: torch.Tensor) -> torch.Tensor:
    """For each query centre (Q, 2) of ``feat`` (1, C, h, w), the index of the patch in ``patches``
    (K, C, p, p) with the highest normalized cross-correlation: a convolution of the (zero-padded)
    feature map around the queries with the unit-normalized patches as filters, divided by the
    query patch's norm. (Q,) long."""
    p = patches.shape[-1]
    r = p // 2
    y0, x0 = int(queries[:, 0].min()), int(queries[:, 1].min())
    y1, x1 = int(queries[:, 0].max()) + 1, int(queries[:, 1].max()) + 1
    padded = F.pad(feat, (r, r, r, r))
    window = padded[:, :, y0 : y1 + 2 * r, x0 : x1 + 2 * r]  # the queries' bounding box + r
    filters = patches / patches.flatten(1).norm(dim=1).clamp_min(1e-8)[:, None, None, None]
    scores = F.conv2d(window, filters)  # (1, K, y1-y0, x1-x0): <query patch, unit known patch>
    qnorm = F.conv2d(window.square().sum(1, keepdim=True), torch.ones(1, 1, p, p, dtype=feat.dtype)).sqrt()
    ncc = scores / qnorm.clamp_min(1e-8)
    at = ncc[0, :, queries[:, 0] - y0, queries[:, 1] - x0]  # (K, Q)
    return at.argmax(0)


def texture_loss(feat: torch.Tensor, hole: torch.Tensor, known: torch.Tensor, patch: int = 3, max_known: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """E_texture on one feature map (1, C, h, w): the mean over the patches centred in ``hole``
    (h, w) of the mean squared difference to their nearest known patch (found by
    :func:`nearest_patches`, held fixed). Returns (loss, nearest patch centres (Q, 2)).
    Zero (and no centres) when there is no hole or no known patch."""
    patches, centres = known_patches(feat.detach(), known, patch, max_known)
    queries = torch.nonzero(hole)
    if queries.numel() == 0 or patches.shape[0] == 0:
        return feat.sum() * 0.0, torch.zeros((0, 2), dtype=torch.long)
    with torch.no_grad():
        nn_idx = nearest_patches(feat.detach(), queries, patches)
    r = patch // 2
    cols = F.unfold(F.pad(feat, (r, r, r, r)), patch)  # (1, C*p*p, h*w), zero outside the map
    q = cols[0, :, queries[:, 0] * feat.shape[-1] + queries[:, 1]].T  # (Q, C*p*p)
    target = patches[nn_idx].flatten(1)
    return (q - target).square().mean(), centres[nn_idx]


# ----------------------------------------------------------------------------- features


class CriticFeatures(torch.nn.Module):
    """The activations of chosen blocks of a DCGAN critic (frozen, eval mode): x -> list of (1, C_i, h_i, w_i)."""

    def __init__(self, critic: torch.nn.Module, layers: tuple[int, ...] = (1,)) -> None:
        super().__init__()
        self.critic = critic.eval()
        for p in self.critic.parameters():
            p.requires_grad_(False)
        self.layers = tuple(layers)
        if max(self.layers) >= len(critic.blocks):
            raise ValueError(f"the critic has {len(critic.blocks)} blocks; layers {self.layers} do not exist")
        self.strides = tuple(2 ** (i + 1) for i in self.layers)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        out = []
        h = x
        for i, block in enumerate(self.critic.blocks[: max(self.layers) + 1]):
            h = block(h)
            if i in self.layers:
                out.append(h)
        return out


def load_features(path: str | None = None, layers: tuple[int, ...] = (1,)) -> CriticFeatures:
    """The critic features of the shipped DCGAN (or the DCGAN weight file at ``path``)."""
    from tessera.models import ModelLoadError, load_model

    try:
        model = load_model(path or "dcgan-faces64")
    except ModelLoadError as exc:
        raise ModelLoadError(f"patch refinement needs the DCGAN critic's features: {exc}") from None
    if getattr(model, "name", "") != "dcgan":
        raise ModelLoadError(f"{path} is a {model.name} model; patch refinement needs a dcgan weight file")
    return CriticFeatures(model.critic, layers)


# ----------------------------------------------------------------------------- synthesis


def _to_tensor(a: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(a.astype(np.float32) / 127.5 - 1.0).permute(2, 0, 1)[None].contiguous()


def _feature_masks(hole: torch.Tensor, stride: int, size: tuple[int, int]) -> tuple[torch.Tensor, torch.Tensor]:
    """hole at a feature map's resolution (any hidden pixel under it), and known (none hidden)."""
    frac = F.adaptive_avg_pool2d(hole.float()[None, None], size)
    return frac[0, 0] > 0, frac[0, 0] == 0


@dataclass
class PatchResult:
    image: np.ndarray  # uint8 (H, W, 3)
    energy: list[list[float]]  # per scale (coarsest first): the energy before each step and after the last
    sizes: list[tuple[int, int]]


def refine_patch(
    image: np.ndarray,
    mask: np.ndarray,
    content: np.ndarray,
    features: torch.nn.Module,
    cfg: PatchConfig = PatchConfig(),
    strides: tuple[int, ...] | None = None,
) -> PatchResult:
    """Refine ``content`` (uint8 (H, W, 3), a feed-forward model's output) inside ``mask`` by
    multi-scale neural patch synthesis; ``image`` gives the known pixels. ``features(x)`` returns a
    list of feature maps whose strides are ``strides`` (``features.strides`` when None)."""
    H, W = mask.shape
    if not mask.any():
        return PatchResult(image.copy(), [], [])
    strides = tuple(strides or getattr(features, "strides"))
    n = 1
    while n < cfg.scales and min(H, W) / 2**n >= cfg.min_side:
        n += 1
    sizes = [(max(1, round(H / 2**k)), max(1, round(W / 2**k))) for k in range(n - 1, -1, -1)]
    energies: list[list[float]] = []
    x_prev = None
    for h, w in sizes:
        # 1. this scale's image, hole, content and start
        area = (h, w) != (H, W)
        img_s = _to_tensor(cv2.resize(image, (w, h), interpolation=cv2.INTER_AREA) if area else image)
        con_s = _to_tensor(cv2.resize(content, (w, h), interpolation=cv2.INTER_AREA) if area else content)
        hole = torch.from_numpy(cv2.resize(mask.astype(np.float32), (w, h), interpolation=cv2.INTER_AREA) > 0 if area else mask.copy())
        start = con_s if x_prev is None else F.interpolate(x_prev, size=(h, w), mode="bilinear", align_corners=False)
        x = start.clone().requires_grad_(True)
        opt = torch.optim.Adam([x], lr=cfg.lr)
        hm = hole.float()[None, None]
        trace = []

        def energy() -> torch.Tensor:
            xc = img_s * (1 - hm) + x * hm  # known pixels fixed
            e = cfg.content_weight * content_loss(xc, con_s, hole) + cfg.tv_weight * tv_loss(xc, hole)
            if cfg.texture_weight:
                for f, s in zip(features(xc), strides):
                    fh, fk = _feature_masks(hole, s, tuple(f.shape[-2:]))
                    e = e + cfg.texture_weight * texture_loss(f, fh, fk, cfg.patch, cfg.max_known)[0] / len(strides)
            return e

        # 2. Adam on the hole's pixels
        for _ in range(cfg.iters):
            e = energy()
            trace.append(float(e.detach()))
            opt.zero_grad(set_to_none=True)
            e.backward()
            opt.step()
            with torch.no_grad():
                x.clamp_(-1, 1)
        with torch.no_grad():
            trace.append(float(energy()))
            x_prev = img_s * (1 - hm) + x.detach() * hm
        energies.append(trace)
    out = ((x_prev[0].permute(1, 2, 0).numpy() + 1.0) * 127.5).round().clip(0, 255).astype(np.uint8)
    return PatchResult(np.where(mask[..., None], out, image), energies, sizes)


class PatchRefiner:
    """Wraps a restorer: its output is the content that patch synthesis refines (same signature)."""

    def __init__(self, restorer, features: torch.nn.Module | None = None, cfg: PatchConfig = PatchConfig()) -> None:
        self.restorer = restorer
        self.cfg = cfg
        self._features = features
        self.name = f"{getattr(restorer, 'name', 'model')}+patch"

    @property
    def features(self) -> torch.nn.Module:
        if self._features is None:
            self._features = load_features(layers=self.cfg.layers)
        return self._features

    def __call__(self, image: np.ndarray, mask: np.ndarray, grid, kind: str) -> np.ndarray:
        content = self.restorer(image, mask, grid, kind)
        return refine_patch(image, mask, content, self.features, self.cfg).image
