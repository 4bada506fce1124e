"""Tessera: find, restore and add mosaics (pixelation), blurs and holes in images.

Restoration is imagination, not recovery: pixels synthesized behind a mosaic are a
plausible guess, never the hidden original. A restored face is not the person who was hidden.

The public API is re-exported here lazily, so ``import tessera`` does no work:

    pixelate, read_image, write_image, detect, restore_image, load_model
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_EXPORTS = {
    "pixelate": "tessera.mosaic.pixelate",
    "region_mask": "tessera.mosaic.masks",
    "read_image": "tessera.io.image",
    "write_image": "tessera.io.image",
    "ImageReadError": "tessera.io.image",
    "ImageWriteError": "tessera.io.image",
    "detect": "tessera.detect.mosaics",
    "Region": "tessera.mosaic.region",
    "Grid": "tessera.mosaic.region",
    "restore_image": "tessera.restore.pipeline",
    "load_model": "tessera.models",
    "restore_video": "tessera.video.pipeline",
    "pixelate_video": "tessera.video.pipeline",
    "detect_video": "tessera.video.pipeline",
    "read_frames": "tessera.io.video",
}

__all__ = sorted(_EXPORTS) + ["__version__"]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'tessera' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
