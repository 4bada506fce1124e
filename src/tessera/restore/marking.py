"""Marking synthesized pixels: the notice, the mask file beside a restoration, and the PNG text
that names it. The CLI, the web page and video all mark restorations through here.

Restoration is imagination, not recovery: every pixel in ``Restoration.mask`` may differ from the
input and is a plausible guess, never the hidden original.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

NOTICE = "Restored pixels are imagined, not recovered: they are not the hidden original."
NOTICE_KEY = "tessera:notice"
MODEL_KEY = "tessera:model"
MASK_TEXT_KEY = "tessera:synthesized-mask"
MASK_SUFFIX = ".synthesized.png"


def mask_path(target: str | Path) -> Path:
    """Where the synthesized-pixel mask of the output ``target`` goes: ``NAME.synthesized.png`` beside it."""
    target = Path(target)
    return target.with_name(target.stem + MASK_SUFFIX)


def png_text(model: str, mask_name: str | None = None, extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The text chunks of a restored image: the notice, the model, and the mask file's name when saved."""
    text = {NOTICE_KEY: NOTICE, MODEL_KEY: model, **dict(extra or {})}
    if mask_name:
        text[MASK_TEXT_KEY] = mask_name
    return text


def refuse_existing(target: str | Path, save_mask: bool) -> None:
    """Raise when an output of ``target`` (and its mask, with ``save_mask``) exists already."""
    from tessera.io.image import ImageWriteError

    for path in (Path(target), mask_path(target)) if save_mask else (Path(target),):
        if path.exists():
            raise ImageWriteError(path, "exists; use --overwrite to replace it")


def write_restoration(
    target: str | Path,
    image: np.ndarray,
    mask: np.ndarray,
    model: str,
    *,
    save_mask: bool = False,
    overwrite: bool | Sequence[bool] = False,
    quality: int = 95,
    alpha: np.ndarray | None = None,
    icc_profile: bytes | None = None,
    mask_target: str | Path | None = None,
) -> tuple[Path, Path | None]:
    """Write a restored image marked as such (and, with ``save_mask``, its synthesized-pixel mask at
    ``mask_target``, by default :func:`mask_path`).

    Both go through :func:`tessera.io.image.write_files` as one group: both checked before either
    is written, the mask first, and the mask names its image in its PNG text (so a rerun knows a
    mask left without its image as its own). ``overwrite``: one flag, or one per file (mask first).
    Returns (image path, mask path or None)."""
    from tessera.io.image import PAIR_KEY, image_writer, write_files

    target = Path(target)
    mpath = (Path(mask_target) if mask_target is not None else mask_path(target)) if save_mask else None
    items = []
    if mpath is not None:
        items.append((mpath, image_writer(mpath, mask.astype(bool), text={PAIR_KEY: target.name})))
    items.append((target, image_writer(
        target, image, alpha=alpha, quality=quality, text=png_text(model, mpath.name if mpath else None), icc_profile=icc_profile,
    )))
    write_files(items, overwrite=overwrite)
    return target, mpath
