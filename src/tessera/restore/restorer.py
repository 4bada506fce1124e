"""The Restorer protocol and the one table of restoration model names.

A restorer maps one crop to its restoration: ``(image uint8 (H, W, 3), mask bool (H, W), grid | None,
kind) -> uint8 (H, W, 3)``, equal to ``image`` outside ``mask``. The pipeline (restore/pipeline.py) cuts
the crops, calls the restorer, blends and projects. Every restorer has a ``name`` for reports and
PNG metadata.

Video restorers that see a whole clip of a region track (multi-frame recovery) implement
:class:`ClipRestorer`; :class:`FrameByFrame` adapts any :class:`Restorer` to it.

Names (:data:`MODEL_TABLE`): the classical baselines, the shipped networks (their files are in
:data:`tessera.weights.SHIPPED`), completion by latent search in the shipped DCGAN, and ``default``.
Anything else must be a path to a ``.safetensors`` file. ``refine='patch'`` wraps any restorer in
multi-scale neural patch synthesis (:class:`tessera.restore.patch.PatchRefiner`).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Literal, Protocol, runtime_checkable

import numpy as np

from tessera.mosaic.region import Grid
from tessera.restore.blend import tile_weight
from tessera.restore.classical import CLASSICAL

Kind = Literal["mosaic", "blur", "hole"]


@runtime_checkable
class Restorer(Protocol):
    """Restores one crop; pixels outside ``mask`` come back unchanged."""

    name: str

    def __call__(self, image: np.ndarray, mask: np.ndarray, grid: Grid | None, kind: str) -> np.ndarray: ...


class ClipRestorer(Protocol):
    """Restores the crops of one region track over a clip of frames at once (the video seam):
    ``frames`` and ``masks`` are equally long lists of crops of the same size."""

    name: str

    def restore_clip(
        self, frames: Sequence[np.ndarray], masks: Sequence[np.ndarray], grid: Grid | None, kind: str
    ) -> list[np.ndarray]: ...


@dataclass
class FrameByFrame:
    """A :class:`ClipRestorer` that restores each frame on its own with ``restorer``."""

    restorer: Restorer

    @property
    def name(self) -> str:
        return self.restorer.name

    def restore_clip(self, frames, masks, grid, kind) -> list[np.ndarray]:
        return [self.restorer(f, m, grid, kind) for f, m in zip(frames, masks)]


@dataclass(frozen=True)
class ModelEntry:
    family: Literal["classical", "net", "latent"]
    help: str
    weights: str | None = None  # a name in tessera.weights.SHIPPED


DEFAULT_MODEL = "scenes"
# The one table of restoration model names ("default" is an alias of DEFAULT_MODEL).
MODEL_TABLE: dict[str, ModelEntry] = {
    "scenes": ModelEntry("net", "residual U-Net for general photos (MSE)", "scenes"),
    "faces": ModelEntry("net", "the same, trained on face crops", "faces"),
    "faces-gan": ModelEntry("net", "the faces model fine-tuned adversarially: sharper, more photo-like detail, lower PSNR", "faces-gan"),
    "smooth": ModelEntry("classical", "grid-aware cubic interpolation between cell centres"),
    "telea": ModelEntry("classical", "OpenCV inpainting (Telea); ignores what is under the mask"),
    "ns": ModelEntry("classical", "OpenCV inpainting (Navier-Stokes); ignores what is under the mask"),
    "dcgan": ModelEntry("latent", "completion by latent search in a DCGAN trained on 64x64 faces", "dcgan"),
}
REFINERS = ("patch",)


def model_names() -> list[str]:
    """Every name :func:`resolve_model` accepts (besides a path to a .safetensors file)."""
    return ["default", *MODEL_TABLE]


def is_model(name: str) -> bool:
    """A known name or an existing weight file."""
    return name in model_names() or Path(name).is_file()


@dataclass
class ClassicalRestorer:
    """One of :data:`tessera.restore.classical.CLASSICAL` as a :class:`Restorer`."""

    name: str

    def __call__(self, image, mask, grid, kind):
        return CLASSICAL[self.name](image, mask, grid)


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

    def _tiles(self, H: int, W: int) -> list[tuple[int, int]]:
        T, step = self.tile, self.tile - 2 * self.overlap

        def starts(n: int) -> list[int]:
            s = list(range(0, max(n - T, 0) + 1, step))
            return s + ([n - T] if n > T and (n - T) % step else [])

        return [(y0, x0) for y0 in starts(H) for x0 in starts(W)]

    def __call__(self, image: np.ndarray, mask: np.ndarray, grid: Grid | None, kind: str) -> np.ndarray:
        H, W = mask.shape
        if getattr(self.net, "prefill", "none") == "smooth" and kind == "mosaic" and grid is not None:
            image = CLASSICAL["smooth"](image, mask, grid)  # the input the model was trained on
        x = image.astype(np.float32).transpose(2, 0, 1) / 127.5 - 1.0
        if kind == "hole":
            x = x * ~mask[None]
        x = np.concatenate([x, mask[None].astype(np.float32)], axis=0)
        T = self.tile
        if H <= T and W <= T:
            y = self._run(x)
        else:
            acc = np.zeros((3, H, W), np.float32)
            wsum = np.zeros((H, W), np.float32)
            for y0, x0 in self._tiles(H, W):
                y1, x1 = min(y0 + T, H), min(x0 + T, W)
                if not mask[y0:y1, x0:x1].any():
                    continue
                wgt = tile_weight(y1 - y0, x1 - x0, self.overlap)
                acc[:, y0:y1, x0:x1] += self._run(x[:, y0:y1, x0:x1]) * wgt
                wsum[y0:y1, x0:x1] += wgt
            y = acc / np.maximum(wsum, 1e-6)
        out = np.clip(np.rint((y.transpose(1, 2, 0) + 1.0) * 127.5), 0, 255).astype(np.uint8)
        return np.where(mask[..., None], out, image)


@lru_cache(maxsize=8)
def _load_net(path: str, mtime: float):
    """A weight file's network, loaded once per (path, modification time): batches of images and
    evaluation runs reuse it (the networks are only run in eval mode, never changed)."""
    from tessera.weights import load

    return load(path)


def resolve_model(model: str | os.PathLike | Restorer, *, latent=None, refine: str | None = None) -> Restorer:
    """A name from :func:`model_names`, a .safetensors path or a ready :class:`Restorer` -> a Restorer.
    ``latent`` (a :class:`tessera.restore.latent.LatentConfig`) sets the search of DCGAN models;
    ``refine='patch'`` refines the output by neural patch synthesis."""
    if refine is not None:
        if refine not in REFINERS:
            raise ValueError(f"unknown refinement {refine!r}: use one of {', '.join(REFINERS)}")
        from tessera.restore.patch import PatchRefiner

        return PatchRefiner(resolve_model(model, latent=latent))
    if isinstance(model, Restorer):
        return model
    name = str(model)
    name = DEFAULT_MODEL if name == "default" else name
    entry = MODEL_TABLE.get(name)
    if entry is not None and entry.family == "classical":
        return ClassicalRestorer(name)
    if entry is not None:
        from tessera.weights import shipped_path

        path = shipped_path(entry.weights)  # raises, naming the file, when it is missing
    else:
        path = Path(name)
        if not path.is_file():
            raise ValueError(f"unknown model {name!r}: use one of {', '.join(model_names())} or a .safetensors file")
    net = _load_net(str(path.resolve()), path.stat().st_mtime)
    if getattr(net, "name", "") == "dcgan":  # a generator of z, completed by latent search
        from tessera.restore.latent import LatentConfig, LatentRestorer

        return LatentRestorer(net, latent or LatentConfig(), name=name)
    flips = str((getattr(net, "metadata", None) or {}).get("flips", "4"))  # GAN fine-tunes: 1 (see export_checkpoint)
    return NetRestorer(net, name, flips=int(flips) if flips in ("1", "2", "4") else 4)


def parse_spec(text: str) -> tuple[str, str | None]:
    """``'MODEL'`` or ``'MODEL+patch'`` (the list syntax of ``tessera eval --models``) -> (model, refine)."""
    base, plus, refine = text.rpartition("+")
    if plus and refine in REFINERS:
        return base, refine
    return text, None


def from_spec(text: str, *, latent=None) -> Restorer:
    """The restorer of a list entry ``'MODEL'`` or ``'MODEL+patch'`` (see :func:`parse_spec`)."""
    model, refine = parse_spec(text)
    return resolve_model(model, latent=latent, refine=refine)
