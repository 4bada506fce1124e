"""The Restorer protocol and the one table of restoration model names.

A restorer maps one crop to its restoration: ``(image uint8 (H, W, 3), mask bool (H, W), grid | None,
kind) -> uint8 (H, W, 3)``, equal to ``image`` outside ``mask``. The pipeline (restore/pipeline.py) cuts
the crops, calls the restorer, blends and projects. Every restorer has a ``name`` for reports and
PNG metadata.

Video restorers that see a whole clip of a region track (multi-frame recovery) implement
:class:`ClipRestorer`; :class:`FrameByFrame` adapts any :class:`Restorer` to it.

Names (:data:`MODEL_TABLE`): the classical baselines, the shipped networks (their files are in
:data:`tessera.weights.SHIPPED`), completion by latent search in the shipped DCGAN, ``auto`` (each
region to ``faces`` or ``scenes`` by whether it hides a face: :class:`RoutingRestorer`) and
``default`` (= :data:`DEFAULT_MODEL`).
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
    family: Literal["classical", "net", "latent", "route"]
    help: str
    weights: str | None = None  # a name in tessera.weights.SHIPPED


DEFAULT_MODEL = "auto"
# The one table of restoration model names ("default" is an alias of DEFAULT_MODEL).
MODEL_TABLE: dict[str, ModelEntry] = {
    "auto": ModelEntry("route", "faces for regions that hide a face (face detector on a first restoration), else scenes"),
    "scenes": ModelEntry("net", "residual U-Net for general photos (MSE)", "scenes"),
    "faces": ModelEntry("net", "the same, trained on face crops", "faces"),
    "faces-gan": ModelEntry("net", "the faces model fine-tuned adversarially: sharper, more photo-like detail, lower PSNR", "faces-gan"),
    "scenes-gan": ModelEntry("net", "the scenes model fine-tuned adversarially: more photo-like texture, lower PSNR", "scenes-gan"),
    "pix2pix": ModelEntry("net", "the source's pix2pix recipe (U-Net + 70x70 PatchGAN, L1 x 100 + GAN) from the scenes weights", "pix2pix"),
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

    net: a runner (:mod:`tessera.restore.backend`: eager torch or ONNX Runtime) or a torch module.
    flips: self-ensemble over 1, 2 (mirror) or 4 (mirror x flip) flipped copies of the input, each
    flipped back and averaged: the task is symmetric, the network's errors are not quite (the
    quality presets of :data:`tessera.restore.backend.QUALITY_FLIPS`; measured per preset in
    benchmarks/RESULTS.md "Speed"). Tiles and flips go through the network in batches.
    """

    def __init__(self, net, name: str, tile: int = 1024, overlap: int = 32, flips: int = 4, *, loader=None):
        if flips not in (1, 2, 4):
            raise ValueError(f"flips must be 1, 2 or 4, got {flips}")
        self._net = net
        self._loader = loader  # builds the runner on first use (a clean image never loads the model)
        self._runner = None
        self.name = name
        self.tile = int(tile)
        self.overlap = int(overlap)
        self.flips = flips

    @classmethod
    def lazy(cls, loader, name: str, **kwargs) -> NetRestorer:
        """A restorer whose runner ``loader()`` is called on the first crop."""
        return cls(None, name, loader=loader, **kwargs)

    @property
    def runner(self):
        if self._runner is None:
            from tessera.restore.backend import TorchRunner

            net = self._net if self._loader is None else self._loader()
            self._runner = net if hasattr(net, "backend") else TorchRunner(net)
        return self._runner

    def __call__(self, image: np.ndarray, mask: np.ndarray, grid: Grid | None, kind: str, *,
                 prefilled: np.ndarray | None = None) -> np.ndarray:
        """``prefilled``: ``smooth(image, mask, grid)`` when the caller has it already (not computed again)."""
        from tessera.restore.backend import run_tiled

        if self.runner.info.get("prefill", "none") == "smooth" and kind == "mosaic" and grid is not None:
            # the input the model was trained on
            image = prefilled if prefilled is not None else CLASSICAL["smooth"](image, mask, grid)
        x = np.empty((4, *mask.shape), np.float32)  # RGB in [-1, 1] and the mask
        x[:3] = image.transpose(2, 0, 1)
        x[:3] /= 127.5
        x[:3] -= 1.0
        if kind == "hole":
            x[:3] *= ~mask
        x[3] = mask
        y = run_tiled(self.runner, x, mask, flips=self.flips, tile=self.tile, overlap=self.overlap)
        y += 1.0
        y *= 127.5
        out = np.clip(np.rint(y.transpose(1, 2, 0)), 0, 255).astype(np.uint8)
        return np.where(mask[..., None], out, image)


class RoutingRestorer:
    """``auto``: restores a crop with ``faces`` when the hidden region is part of a face, else with
    ``scenes``. A face hidden by a mosaic is rarely found as it is, so the detector
    (:func:`tessera.detect.faces.find_faces`) looks at the crop with the region filled in: first by
    the cheap grid-aware interpolation (``smooth``), then, when that finds none, by ``scenes``'s
    restoration (kept when still no face is found). A region is a face's when a face box covers at
    least ``cover`` of it. ``name`` is the models used since :meth:`begin` (e.g. ``scenes`` or
    ``faces+scenes``; ``auto`` before any), so a restored file names what made its pixels."""

    def __init__(self, faces: Restorer, scenes: Restorer, *, cover: float = 0.3, detect=None):
        self.faces, self.scenes, self.cover = faces, scenes, float(cover)
        self._detect = detect
        self.used: set[str] = set()
        self.routes: list[str] = []  # every crop's route since begin()

    @property
    def name(self) -> str:
        return "+".join(sorted(self.used)) if self.used else "auto"

    def begin(self) -> None:
        """Start a new image: forget the routes taken so far."""
        self.used, self.routes = set(), []

    def _is_face(self, image: np.ndarray, mask: np.ndarray) -> bool:
        detect = self._detect
        if detect is None:
            from tessera.detect.faces import find_faces as detect
        area = float(mask.sum())
        if area == 0:
            return False
        for x, y, w, h in detect(image):
            if mask[y : y + h, x : x + w].sum() >= self.cover * area:
                return True
        return False

    def _route(self, route: str) -> None:
        self.used.add(route)
        self.routes.append(route)

    def __call__(self, image: np.ndarray, mask: np.ndarray, grid: Grid | None, kind: str) -> np.ndarray:
        smoothed = kind == "mosaic" and grid is not None
        first = CLASSICAL["smooth"](image, mask, grid) if smoothed else image

        def run(restorer: Restorer) -> np.ndarray:  # a network restorer reuses the smooth pre-fill made here
            if smoothed and isinstance(restorer, NetRestorer):
                return restorer(image, mask, grid, kind, prefilled=first)
            return restorer(image, mask, grid, kind)

        if self._is_face(first, mask):
            self._route("faces")
            return run(self.faces)
        out = run(self.scenes)
        if self._is_face(out, mask):
            self._route("faces")
            return run(self.faces)
        self._route("scenes")
        return out


@lru_cache(maxsize=8)
def _load_net(path: str, mtime: float):
    """A weight file's network, loaded once per (path, modification time): batches of images and
    evaluation runs reuse it (the networks are only run in eval mode, never changed)."""
    from tessera.weights import load

    return load(path)


def resolve_model(
    model: str | os.PathLike | Restorer, *, latent=None, refine: str | None = None, quality: str = "balanced",
    backend: str = "auto",
) -> Restorer:
    """A name from :func:`model_names`, a .safetensors path or a ready :class:`Restorer` -> a Restorer.
    ``latent`` (a :class:`tessera.restore.latent.LatentConfig`) sets the search of DCGAN models;
    ``refine='patch'`` refines the output by neural patch synthesis. Networks run with ``backend``
    ('auto': ONNX Runtime when installed, else torch; see :mod:`tessera.restore.backend`) at
    ``quality`` ('fast', 'balanced', 'best': 1, 2 or 4 flipped copies averaged)."""
    from tessera.restore.backend import QUALITY_FLIPS

    if quality not in QUALITY_FLIPS:
        raise ValueError(f"quality must be one of {', '.join(QUALITY_FLIPS)}, got {quality!r}")
    if refine is not None:
        if refine not in REFINERS:
            raise ValueError(f"unknown refinement {refine!r}: use one of {', '.join(REFINERS)}")
        from tessera.restore.patch import PatchRefiner

        return PatchRefiner(resolve_model(model, latent=latent, quality=quality, backend=backend))
    if isinstance(model, Restorer):
        return model
    name = str(model)
    name = DEFAULT_MODEL if name == "default" else name
    entry = MODEL_TABLE.get(name)
    if entry is not None and entry.family == "classical":
        return ClassicalRestorer(name)
    if entry is not None and entry.family == "route":
        kw = dict(latent=latent, quality=quality, backend=backend)
        scenes = resolve_model("scenes", **kw)  # the main model first: a missing file is named as it
        return RoutingRestorer(resolve_model("faces", **kw), scenes)
    if entry is not None:
        from tessera.weights import shipped_path

        path = shipped_path(entry.weights)  # raises, naming the file, when it is missing
    else:
        path = Path(name)
        if not path.is_file():
            raise ValueError(f"unknown model {name!r}: use one of {', '.join(model_names())} or a .safetensors file")
    if _metadata_of(path).get("tessera_model") == "dcgan":  # a generator of z, completed by latent search
        from tessera.restore.latent import LatentConfig, LatentRestorer

        net = _load_net(str(path.resolve()), path.stat().st_mtime)
        return LatentRestorer(net, latent or LatentConfig(), name=name)
    from functools import partial

    from tessera.restore.backend import load_runner

    # a weight file may fix its own flips (GAN fine-tunes: 1, see export_checkpoint): it wins over the preset
    own = str(_metadata_of(path).get("flips", ""))
    flips = int(own) if own in ("1", "2", "4") else QUALITY_FLIPS[quality]
    return NetRestorer.lazy(partial(load_runner, path, backend), name, flips=flips)


def is_latent(model: str | os.PathLike) -> bool:
    """Whether ``model`` completes by latent search (the dcgan family), known without torch."""
    name = DEFAULT_MODEL if str(model) == "default" else str(model)
    entry = MODEL_TABLE.get(name)
    if entry is not None:
        return entry.family == "latent"
    return Path(name).is_file() and _metadata_of(Path(name)).get("tessera_model") == "dcgan"


def _metadata_of(path: Path) -> dict:
    """A weight file's metadata, read without torch (empty when unreadable: the loader then raises
    its own clear error)."""
    try:
        from safetensors import safe_open

        with safe_open(str(path), framework="numpy") as fh:
            return dict(fh.metadata() or {})
    except Exception:  # noqa: BLE001  (not a safetensors file: tessera.weights explains)
        return {}


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
