"""Restoration models: a literal name -> class dict, and safetensors save/load.

Every model reads (N, 4, H, W) = cat([degraded RGB in [-1, 1], mask in {0, 1}]) and returns
the full predicted image (N, 3, H, W) in [-1, 1]; H and W are multiples of ``model.size_multiple``.

A weight file is a safetensors file whose metadata holds the model's name and constructor
kwargs (JSON), so :func:`load_model` needs nothing else. Weights are never pickled.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from tessera.models.dcgan import DCGAN
from tessera.models.facecam import FaceCAM
from tessera.models.segnet import MosaicSegNet
from tessera.models.deepfill import DeepFill
from tessera.models.unet import Pix2PixGenerator, UNet
from tessera.weights import WeightsError

# segnet is the mosaic detector (detect/mosaics.py). dcgan is no image-to-image model (it maps a latent z to an image, for completion by latent
# search in restore/latent.py); the others follow the restoration contract above.
MODELS = {"unet": UNet, "pix2pix": Pix2PixGenerator, "deepfill": DeepFill, "dcgan": DCGAN, "segnet": MosaicSegNet, "facecam": FaceCAM}
RESTORATION_MODELS = ("unet", "pix2pix", "deepfill")
TRAINABLE_MODELS = (*RESTORATION_MODELS, "dcgan", "segnet")  # everything `tessera train` fits

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
    "dcgan": {
        "paper": {"z_dim": 100, "g_base": 64, "d_base": 64, "size": 64},
        "small": {"z_dim": 100, "g_base": 48, "d_base": 32, "size": 64},  # the shipped dcgan-faces64
        "tiny": {"z_dim": 8, "g_base": 4, "d_base": 4, "size": 16},
    },
    "segnet": {
        "paper": {"fold": 4, "base": 16, "depth": 3},  # the shipped detector
        "tiny": {"fold": 2, "base": 4, "depth": 2},
    },
    "deepfill": {
        "paper": {"base": 32},
        "small": {"base": 16},
        "tiny": {"base": 4, "dilations": (2, 4)},
    },
}

__all__ = ["MODELS", "RESTORATION_MODELS", "PRESETS", "build_model", "model_kwargs", "save_model", "load_model", "ModelLoadError"]

# Loading and saving live in tessera.weights (one format and one resolve rule for every network).
ModelLoadError = WeightsError


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


def save_model(
    model, path: str | os.PathLike, name: str, kwargs: Mapping[str, Any], metadata: Mapping[str, Any] | None = None,
    *, overwrite: bool = True,
) -> Path:
    """Write ``model``'s weights with its name and kwargs (see :func:`tessera.weights.save`)."""
    from tessera import weights

    return weights.save(model, path, name, kwargs, metadata, overwrite=overwrite)


def load_model(path_or_name: str | os.PathLike, *, device: str = "cpu"):
    """Load a model saved by :func:`save_model` (a path, or a shipped name such as ``scenes``).
    Returns it in eval mode with ``.name``, ``.kwargs`` and ``.metadata`` attributes."""
    from tessera import weights

    return weights.load(path_or_name, device=device)
