"""What each API call does, as plain functions over a server-made folder: read the uploaded files
with :mod:`tessera.io.image`, call the same library function the CLI calls, write the outputs.

The HTTP layer (:mod:`tessera.web.app`) saves uploads as ``folder/image`` and ``folder/mask`` and
hands over validated parameters; nothing here sees a client's file name or path.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

Progress = Callable[[float, str], None]

IMAGE = "image"  # the uploaded image's file name inside a work folder
MASK = "mask"  # the uploaded mask's
RESULT = "result.png"
RESULT_MASK = "mask.png"
RESULT_JSON = "regions.json"


class BadInput(ValueError):
    """A request's parameters or files cannot be used (answered with 400 and the message)."""


def _no_progress(fraction: float, stage: str = "") -> None:
    return None


def parse_pair(text: str | None, what: str, sep: str = "x") -> tuple[int, int] | None:
    """'12' -> (12, 12), '12x18' -> (12, 18); None or '' -> None."""
    if text is None or not str(text).strip():
        return None
    t = str(text).lower().strip()
    parts = t.split(sep) if sep in t else [t, t]
    try:
        a, b = (int(p) for p in parts)
    except ValueError:
        raise BadInput(f"{what} must be N or N{sep}M in whole pixels, got {text!r}") from None
    return a, b


def download_name(filename: str | None) -> str:
    """A safe stem for download names, from the upload's file name (letters, digits, . _ -)."""
    stem = Path(str(filename or "")).name.rsplit(".", 1)[0]
    stem = re.sub(r"[^A-Za-z0-9_-]+", "_", stem).strip("_")[:64]
    return stem or "image"


@dataclass(frozen=True)
class DetectParams:
    min_area: int = 64
    sensitivity: float = 0.5
    with_mask: bool = False

    def __post_init__(self) -> None:
        if self.min_area < 1:
            raise BadInput(f"min_area must be at least 1 pixel, got {self.min_area}")
        if not 0.0 <= self.sensitivity <= 1.0:
            raise BadInput(f"sensitivity must be within 0..1, got {self.sensitivity}")


@dataclass(frozen=True)
class RestoreParams:
    model: str = "default"
    sampling: str = "auto"
    kind: str = "auto"
    cell: tuple[int, int] | None = None
    phase: tuple[int, int] = (0, 0)
    feather: int = 0
    with_mask: bool = False
    name: str = "image"

    def __post_init__(self) -> None:
        from tessera.restore.pipeline import model_names

        names = model_names()
        if self.model not in names:  # never a path: a client string must not name a file here
            raise BadInput(f"unknown model {self.model!r}; choose one of {', '.join(names)}")
        if self.sampling not in ("auto", "mean", "centre"):
            raise BadInput(f"sampling must be auto, mean or centre, got {self.sampling!r}")
        if self.kind not in ("auto", "mosaic", "blur", "hole"):
            raise BadInput(f"kind must be auto, mosaic, blur or hole, got {self.kind!r}")
        if self.cell is not None and min(self.cell) < 1:
            raise BadInput(f"cell must be at least 1 pixel, got {self.cell}")
        if not 0 <= self.feather <= 256:
            raise BadInput(f"feather must be within 0..256 pixels, got {self.feather}")


@dataclass(frozen=True)
class PixelateParams:
    method: str = "mosaic"  # mosaic | blur | solid
    cell: tuple[int, int] = (12, 12)
    phase: tuple[int, int] = (0, 0)
    sampling: str = "mean"
    feather: int = 0
    sigma: float = 8.0
    boxes: tuple[tuple[int, int, int, int], ...] = ()
    with_mask: bool = False
    name: str = "image"

    def __post_init__(self) -> None:
        if self.method not in ("mosaic", "blur", "solid"):
            raise BadInput(f"method must be mosaic, blur or solid, got {self.method!r}")
        if min(self.cell) < 1 or max(self.cell) > 4096:
            raise BadInput(f"cell must be within 1..4096 pixels, got {self.cell}")
        if self.sampling not in ("mean", "centre"):
            raise BadInput(f"sampling must be mean or centre, got {self.sampling!r}")
        if not 0 <= self.feather <= 256:
            raise BadInput(f"feather must be within 0..256 pixels, got {self.feather}")
        if not 0 < self.sigma <= 512:
            raise BadInput(f"sigma must be within (0, 512], got {self.sigma}")


def parse_boxes(text: str | None) -> tuple[tuple[int, int, int, int], ...]:
    """'x,y,w,h;x,y,w,h' -> boxes."""
    if not text or not text.strip():
        return ()
    boxes = []
    for part in text.split(";"):
        try:
            vals = tuple(int(v) for v in part.split(","))
        except ValueError:
            raise BadInput(f"boxes must be x,y,w,h;x,y,w,h in whole pixels, got {text!r}") from None
        if len(vals) != 4:
            raise BadInput(f"each box needs 4 numbers x,y,w,h, got {part!r}")
        boxes.append(vals)
    if len(boxes) > 1000:
        raise BadInput("at most 1000 boxes")
    return tuple(boxes)  # type: ignore[return-value]


# ------------------------------------------------------------------------------------ reading


def _read(folder: Path, max_pixels: int):
    from tessera.io.image import read_image

    return read_image(folder / IMAGE, max_pixels=max_pixels)


def _read_mask(folder: Path, shape: tuple[int, int]) -> np.ndarray | None:
    """The uploaded mask (white = selected), if any; its size is checked from the header first,
    so a huge mask is refused before it is decoded."""
    from PIL import Image

    from tessera.io.image import MaskError, read_mask

    path = folder / MASK
    if not path.exists():
        return None
    try:
        with Image.open(path) as im:
            size = im.size
    except Exception:  # noqa: BLE001 - read_mask below says what is wrong with the file
        size = None
    if size is not None and size != (shape[1], shape[0]) and size != (shape[0], shape[1]):  # EXIF may rotate
        raise MaskError(f"mask is {size[0]}x{size[1]} (WxH) but the image is {shape[1]}x{shape[0]}; the mask must have the same size")
    return read_mask(path, shape=shape)


# ------------------------------------------------------------------------------------ tasks


def run_detect(folder: Path, p: DetectParams, max_pixels: int, progress: Progress = _no_progress) -> dict:
    """Detected regions as JSON-ready data; ``mask.png`` written when asked."""
    from tessera.detect.mosaics import detect
    from tessera.io.image import write_image

    progress(0.05, "reading")
    rgb, _ = _read(folder, max_pixels)
    progress(0.2, "detecting")
    regions = detect(rgb, min_area=p.min_area, sensitivity=p.sensitivity)
    doc = {"size": [int(rgb.shape[1]), int(rgb.shape[0])], "regions": [r.to_json() for r in regions]}
    if p.with_mask:
        mask = np.zeros(rgb.shape[:2], bool)
        for r in regions:
            mask |= r.mask
        write_image(folder / RESULT_MASK, mask)
    progress(1.0, "done")
    return doc


def marking_text(model: str, mask_name: str) -> dict[str, str]:
    """The PNG text of a restored image: the notice, the model and the synthesized mask's name."""
    from tessera.restore.marking import png_text

    return png_text(model, mask_name)


def notice() -> str:
    from tessera.restore.marking import NOTICE

    return NOTICE


def run_restore(folder: Path, p: RestoreParams, max_pixels: int, progress: Progress = _no_progress) -> dict:
    """``result.png`` (naming its synthesized mask) and ``mask.png``; returns what was done."""
    from tessera.io.image import write_image
    from tessera.mosaic.region import Grid
    from tessera.restore.pipeline import RestoreConfig, restore_image

    progress(0.05, "reading")
    rgb, info = _read(folder, max_pixels)
    mask = _read_mask(folder, rgb.shape[:2])
    grid = None
    if p.cell is not None:
        ch, cw = p.cell
        grid = Grid(ch, cw, p.phase[0] % ch, p.phase[1] % cw, "mean" if p.sampling == "auto" else p.sampling)  # type: ignore[arg-type]
    config = RestoreConfig(model=p.model, kind=p.kind, sampling=p.sampling, feather=p.feather)  # type: ignore[arg-type]
    progress(0.1, "restoring")

    def regions_done(done: int, total: int) -> None:  # the library's callback; a cancelled job raises here
        progress(0.1 + 0.8 * done / max(total, 1), f"restoring: {done} of {total} regions")

    result = restore_image(rgb, mask, config=config, grid=grid, progress=regions_done)
    progress(0.9, "writing")
    mask_name = f"{p.name}.synthesized.png"
    write_image(folder / RESULT_MASK, result.mask)  # the mask first, as the CLI does
    write_image(folder / RESULT, result.image, alpha=info.alpha, text=marking_text(result.model, mask_name), icc_profile=info.icc_profile)
    progress(1.0, "done")
    return {
        "model": result.model,
        "regions": [r.to_json() for r in result.regions],
        "synthesized_pixels": int(result.mask.sum()),
        "residual": None if result.residual is None else float(result.residual),
        "mask_name": mask_name,
        "result_name": f"{p.name}.restored.png",
        "notice": notice(),
    }


def run_pixelate(folder: Path, p: PixelateParams, max_pixels: int, progress: Progress = _no_progress) -> dict:
    """``result.png`` with the region mosaicked, blurred or filled, and ``mask.png`` (what changed)."""
    from tessera.io.image import write_image
    from tessera.mosaic.pixelate import pixelate

    progress(0.05, "reading")
    rgb, info = _read(folder, max_pixels)
    mask = _read_mask(folder, rgb.shape[:2])
    progress(0.2, p.method)
    if p.method == "solid":  # the region filled with black: nothing of what was there survives
        from tessera.mosaic.masks import region_mask

        changed = region_mask(rgb.shape[:2], mask=mask, boxes=p.boxes)
        out = rgb.copy()
        out[changed] = 0
    else:
        out, changed = pixelate(
            rgb, mask, boxes=p.boxes, cell=p.cell, phase=p.phase, sampling=p.sampling, feather=p.feather,
            blur=p.sigma if p.method == "blur" else None,
        )
    progress(0.9, "writing")
    write_image(folder / RESULT_MASK, changed)
    write_image(folder / RESULT, out, alpha=info.alpha, icc_profile=info.icc_profile)
    progress(1.0, "done")
    return {"method": p.method, "changed_pixels": int(changed.sum()), "result_name": f"{p.name}.{p.method}.png",
            "mask_name": f"{p.name}.{p.method}.mask.png"}


# ------------------------------------------------------------------------------------ anonymize


def anonymize_available() -> bool:
    """Whether this installation has :mod:`tessera.anonymize` (the anonymize track's library)."""
    import importlib.util

    return importlib.util.find_spec("tessera.anonymize") is not None


@dataclass(frozen=True)
class AnonymizeParams:
    find: tuple[str, ...] = ("faces",)
    method: str = "blur"  # the library default: at --cell auto our restorer re-identified no face under blur
    cell: int | None = None  # None = auto (scales with each region)
    pad: float = 0.15
    threshold: float | None = None
    with_mask: bool = False
    name: str = "image"

    def config(self):
        """The library's AnonymizeConfig (it validates the values: a ValueError is a 400)."""
        from tessera.anonymize import AnonymizeConfig

        try:
            return AnonymizeConfig(find=self.find, method=self.method, cell=self.cell, pad=self.pad, threshold=self.threshold)
        except ValueError as exc:
            raise BadInput(str(exc)) from None


def parse_find(text: str | None) -> tuple[str, ...]:
    """'faces,text' -> ('faces', 'text')."""
    items = tuple(t.strip() for t in (text or "faces").split(",") if t.strip())
    if not items:
        raise BadInput("find must name at least one finder, e.g. faces or faces,text")
    return items


def parse_cell_auto(text: str | None) -> int | None:
    """'auto' or '' -> None; '16' -> 16."""
    if text is None or not str(text).strip() or str(text).strip().lower() == "auto":
        return None
    try:
        return int(str(text).strip())
    except ValueError:
        raise BadInput(f"cell must be auto or a whole number of pixels, got {text!r}") from None


def run_anonymize(folder: Path, p: AnonymizeParams, max_pixels: int, progress: Progress = _no_progress) -> dict:
    """``result.png`` with every face/text found hidden (no metadata kept), and ``mask.png`` (what was hidden)."""
    from tessera.anonymize import anonymize_image
    from tessera.io.image import write_image

    cfg = p.config()
    progress(0.05, "reading")
    rgb, info = _read(folder, max_pixels)
    progress(0.2, "finding " + ", ".join(cfg.find))
    result = anonymize_image(rgb, cfg)
    progress(0.9, "writing")
    write_image(folder / RESULT_MASK, result.mask)
    write_image(folder / RESULT, result.image, alpha=info.alpha)  # no ICC, EXIF or text: nothing identifying kept
    progress(1.0, "done")
    return {**result.to_json(), "method": cfg.method, "result_name": f"{p.name}.anonymized.png",
            "mask_name": f"{p.name}.anonymized.mask.png",
            "warning": "a redaction is only as good as its detector: check the result before publishing"}
