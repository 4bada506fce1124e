"""Restoration models: a literal name -> class dict, and safetensors save/load.

Every model reads (N, 4, H, W) = cat([degraded RGB in [-1, 1], mask in {0, 1}]) and returns
the full predicted image (N, 3, H, W) in [-1, 1]; H and W are multiples of ``model.size_multiple``.

A weight file is a safetensors file whose metadata holds the model's name and constructor
kwargs (JSON), so :func:`load_model` needs nothing else. Weights are never pickled.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from tessera.models.dcgan import DCGAN
from tessera.models.deepfill import DeepFill
from tessera.models.unet import Pix2PixGenerator, UNet

# dcgan is no image-to-image model (it maps a latent z to an image, for completion by latent
# search in restore/latent.py); the others follow the restoration contract above.
MODELS = {"unet": UNet, "pix2pix": Pix2PixGenerator, "deepfill": DeepFill, "dcgan": DCGAN}
RESTORATION_MODELS = ("unet", "pix2pix", "deepfill")

# Named sizes per model. "paper" is the published size; "small" fits the CPU budget
# (<= 30 MB of float32 weights, a 256x256 region in a few hundred ms on 2 cores); "tiny" is for tests.
PRESETS: dict[str, dict[str, dict[str, Any]]] = {
    "unet": {
        "paper": {},
        "small": {"base": 32, "depth": 5},
        "tiny": {"base": 4, "depth": 3},
    },
    "pix2pix": {
        "paper": {},
        "small": {"base": 32, "depth": 7, "max_mult": 4},
        "tiny": {"base": 4, "depth": 3},
    },
    "deepfill": {
        "paper": {"base": 32},
        "small": {"base": 16},
        "tiny": {"base": 4, "dilations": (2, 4)},
    },
}

WEIGHTS_DIR = Path(__file__).resolve().parents[3] / "weights"

__all__ = ["MODELS", "RESTORATION_MODELS", "PRESETS", "build_model", "model_kwargs", "save_model", "load_model", "ModelLoadError"]


class ModelLoadError(ValueError):
    """A weight file that is missing, not a Tessera model, or does not match its model."""


def model_kwargs(name: str, preset: str = "paper", overrides: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The constructor kwargs of ``name`` at ``preset``, updated with ``overrides``."""
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}; choose one of {sorted(MODELS)}")
    presets = PRESETS.get(name, {"paper": {}})
    if preset not in presets:
        raise ValueError(f"unknown preset {preset!r} for {name}; choose one of {sorted(presets)}")
    return {**presets[preset], **dict(overrides or {})}


def build_model(name: str, **kwargs: Any):
    """A fresh model ``MODELS[name](**kwargs)`` with ``.name`` and ``.kwargs`` set."""
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}; choose one of {sorted(MODELS)}")
    try:
        model = MODELS[name](**kwargs)
    except TypeError as exc:
        raise ValueError(f"bad arguments for model {name!r}: {exc}") from None
    model.name = name
    model.kwargs = dict(kwargs)
    return model


def _jsonable(kwargs: Mapping[str, Any]) -> dict[str, Any]:
    return {k: list(v) if isinstance(v, tuple) else v for k, v in kwargs.items()}


def save_model(model, path: str | os.PathLike, name: str, kwargs: Mapping[str, Any], metadata: Mapping[str, Any] | None = None) -> Path:
    """Write ``model``'s weights to a safetensors file with its name and kwargs (JSON) in the
    metadata, plus any ``metadata`` (values are JSON-encoded unless they are strings)."""
    from safetensors.torch import save_file

    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}; choose one of {sorted(MODELS)}")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    meta = {k: v if isinstance(v, str) else json.dumps(v) for k, v in (metadata or {}).items()}
    meta["tessera_model"] = name
    meta["tessera_kwargs"] = json.dumps(_jsonable(kwargs), sort_keys=True)
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    save_file(state, str(path), metadata=meta)
    return path


def _resolve(path_or_name: str | os.PathLike) -> Path:
    p = Path(path_or_name)
    if p.is_file():
        return p
    candidates = []
    extra = os.environ.get("TESSERA_WEIGHTS")
    for d in ([Path(extra)] if extra else []) + [WEIGHTS_DIR]:
        candidates += [d / str(path_or_name), d / f"{path_or_name}.safetensors"]
    for c in candidates:
        if c.is_file():
            return c
    shipped = sorted(q.stem for q in WEIGHTS_DIR.glob("*.safetensors")) if WEIGHTS_DIR.is_dir() else []
    raise ModelLoadError(
        f"no weight file {str(path_or_name)!r}: give a path to a .safetensors file"
        + (f" or one of the shipped models: {', '.join(shipped)}" if shipped else "")
    )


def load_model(path_or_name: str | os.PathLike, *, device: str = "cpu"):
    """Load a model saved by :func:`save_model` (a path, or the name of a file in weights/).
    Returns it in eval mode with ``.name``, ``.kwargs`` and ``.metadata`` attributes."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file, safe_open

    path = _resolve(path_or_name)
    try:
        with safe_open(str(path), framework="pt") as fh:
            meta = fh.metadata() or {}
        state = load_file(str(path), device=device)
    except (SafetensorError, OSError, ValueError) as exc:
        raise ModelLoadError(f"{path} is not a readable safetensors file: {exc}") from None
    name = meta.get("tessera_model")
    if name not in MODELS:
        raise ModelLoadError(f"{path} has no Tessera model name in its metadata (found {name!r}); export it with `tessera export`")
    kwargs = json.loads(meta.get("tessera_kwargs", "{}"))
    if name == "deepfill" and "dilations" in kwargs:
        kwargs["dilations"] = tuple(kwargs["dilations"])
    model = build_model(name, **kwargs)
    missing, unexpected = model.load_state_dict(state, strict=False)
    if missing or unexpected:
        raise ModelLoadError(f"{path} does not match model {name} {kwargs}: missing {missing[:3]}, unexpected {unexpected[:3]}")
    model.metadata = {k: v for k, v in meta.items() if not k.startswith("tessera_")}
    return model.to(device).eval()
