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

from tessera.mosaic.region import SAMPLINGS, parse_sampling

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
        if self.sampling not in ("auto", *SAMPLINGS):
            raise BadInput(f"sampling must be one of auto, {', '.join(SAMPLINGS)}, got {self.sampling!r}")
        if self.kind not in ("auto", "mosaic", "blur", "hole"):
            raise BadInput(f"kind must be auto, mosaic, blur or hole, got {self.kind!r}")
        if self.cell is not None and min(self.cell) < 1:
            raise BadInput(f"cell must be at least 1 pixel, got {self.cell}")
        if not 0 <= self.feather <= 256:
            raise BadInput(f"feather must be within 0..256 pixels, got {self.feather}")

    @classmethod
    def from_form(cls, *, model: str, sampling: str | None, kind: str, cell: str | None, phase: str | None,
                  feather: int, name: str, with_mask: bool = False) -> "RestoreParams":
        """From a request's form fields (strings as sent)."""
        return cls(model=model, sampling=form_sampling(sampling, "auto"), kind=kind, cell=parse_pair(cell, "cell"),
                   phase=parse_pair(phase, "phase") or (0, 0), feather=feather, with_mask=with_mask, name=name)

    def grid(self):
        """The known lattice (cell and phase given), else None: estimated per region."""
        from tessera.mosaic.region import Grid

        if self.cell is None:
            return None
        ch, cw = self.cell
        return Grid(ch, cw, self.phase[0] % ch, self.phase[1] % cw, "mean" if self.sampling == "auto" else self.sampling)  # type: ignore[arg-type]

    def config(self):
        from tessera.restore.pipeline import RestoreConfig

        return RestoreConfig(model=self.model, kind=self.kind, sampling=self.sampling, feather=self.feather)  # type: ignore[arg-type]


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
        if self.sampling not in SAMPLINGS:
            raise BadInput(f"sampling must be one of {', '.join(SAMPLINGS)}, got {self.sampling!r}")
        if not 0 <= self.feather <= 256:
            raise BadInput(f"feather must be within 0..256 pixels, got {self.feather}")
        if not 0 < self.sigma <= 512:
            raise BadInput(f"sigma must be within (0, 512], got {self.sigma}")

    @classmethod
    def from_form(cls, *, method: str, cell: str | None, phase: str | None, sampling: str | None, feather: int,
                  sigma: float, boxes: str | None, name: str, with_mask: bool = False) -> "PixelateParams":
        """From a request's form fields (strings as sent)."""
        return cls(method=method, cell=parse_pair(cell, "cell") or (12, 12), phase=parse_pair(phase, "phase") or (0, 0),
                   sampling=form_sampling(sampling, "mean"), feather=feather, sigma=sigma, boxes=parse_boxes(boxes),
                   with_mask=with_mask, name=name)


def form_sampling(text: str | None, default: str) -> str:
    """A form's sampling (``default`` when not sent; 'center' spelt either way; 'auto' where it is the default)."""
    try:
        return parse_sampling(text or default, ("auto",) if default == "auto" else ())
    except ValueError as exc:
        raise BadInput(str(exc)) from None


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
            r.paint(mask)
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
    from tessera.restore.pipeline import restore_image

    progress(0.05, "reading")
    rgb, info = _read(folder, max_pixels)
    mask = _read_mask(folder, rgb.shape[:2])
    grid, config = p.grid(), p.config()
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


def hide(rgb: np.ndarray, mask: np.ndarray | None, p: PixelateParams) -> tuple[np.ndarray, np.ndarray]:
    """One image (or video frame) with the mask's or boxes' region mosaicked, blurred or filled
    -> (new image, changed mask). The mosaic's lattice is fixed in the picture."""
    from tessera.mosaic.pixelate import pixelate

    if p.method == "solid":  # the region filled with black: nothing of what was there survives
        from tessera.mosaic.masks import region_mask

        changed = region_mask(rgb.shape[:2], mask=mask, boxes=p.boxes)
        out = rgb.copy()
        out[changed] = 0
        return out, changed
    return pixelate(rgb, mask, boxes=p.boxes, cell=p.cell, phase=p.phase, sampling=p.sampling, feather=p.feather,
                    blur=p.sigma if p.method == "blur" else None)


def run_pixelate(folder: Path, p: PixelateParams, max_pixels: int, progress: Progress = _no_progress) -> dict:
    """``result.png`` with the region mosaicked, blurred or filled, and ``mask.png`` (what changed)."""
    from tessera.io.image import write_image

    progress(0.05, "reading")
    rgb, info = _read(folder, max_pixels)
    mask = _read_mask(folder, rgb.shape[:2])
    progress(0.2, p.method)
    out, changed = hide(rgb, mask, p)
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

    @classmethod
    def from_form(cls, *, find: str | None, method: str, cell: str | None, pad: float, threshold: float | None,
                  name: str, with_mask: bool = False) -> "AnonymizeParams":
        """From a request's form fields; the values are checked by the library's config (400 if bad)."""
        params = cls(find=parse_find(find), method=method, cell=parse_cell_auto(cell), pad=pad, threshold=threshold,
                     with_mask=with_mask, name=name)
        params.config()
        return params

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


# ------------------------------------------------------------------------------------ video

VIDEO = "video"  # the uploaded video's file name inside a work folder
RESULT_MASK_VIDEO = "mask.mp4"
MKV_INPUTS = (".mkv", ".webm")  # inputs whose other streams (subtitles, fonts) an MP4 may not hold


def video_available() -> bool:
    """Whether this installation reads and writes videos (PyAV, the ``video`` extra)."""
    import importlib.util

    return importlib.util.find_spec("av") is not None


def looks_like_video(filename: str | None, content_type: str | None) -> bool:
    """An upload is a video by its media type (video/...) or its file name's extension."""
    from tessera.io.video import VIDEO_EXTS

    return (content_type or "").lower().startswith("video/") or Path(str(filename or "")).suffix.lower() in VIDEO_EXTS


Work = RestoreParams | PixelateParams | AnonymizeParams


@dataclass(frozen=True)
class VideoParams:
    """A video job: ``work`` holds an image task's parameters and its type picks what every frame
    gets (restore, pixelate or anonymize). ``with_mask``: also write the per-frame mask video
    (white = hidden, or for a restoration imagined; grey 128 = recovered from other frames). ``crf``/``preset``: the encoder's, as ``tessera restore``'s
    flags. ``container``: the output's extension (.mp4, or .mkv for Matroska/WebM inputs)."""

    work: Work
    with_mask: bool = False
    crf: int = 18
    preset: str = "medium"
    container: str = ".mp4"

    def __post_init__(self) -> None:
        if not isinstance(self.work, (RestoreParams, PixelateParams, AnonymizeParams)):
            raise BadInput("videos can be restored, pixelated or anonymized (detect videos with the command line)")
        if self.container not in (".mp4", ".mkv"):
            raise BadInput(f"container must be .mp4 or .mkv, got {self.container!r}")
        self.encode()

    def encode(self):
        from tessera.io.video import EncodeConfig

        try:
            return EncodeConfig(crf=self.crf, preset=self.preset)
        except ValueError as exc:
            raise BadInput(str(exc)) from None


def _restore_frames(frames, p: RestoreParams, mask: np.ndarray | None):
    from tessera.video.pipeline import restore_frames

    for r in restore_frames(frames, restore_config=p.config(), mask=mask, grid=p.grid()):
        yield r.image, r.marks()  # 255 imagined, 128 recovered from other frames (multi-frame), 0 unchanged


def _pixelate_frames(frames, p: PixelateParams, mask: np.ndarray | None):
    for f in frames:  # the lattice is fixed in the picture: it does not crawl from frame to frame
        yield hide(f.image, mask, p)


def _anonymize_frames(frames, p: AnonymizeParams, mask: np.ndarray | None):
    from tessera.anonymize import anonymize_frames

    log: list = []  # anonymize_frames logs each frame's hidden boxes just before yielding it
    for image in anonymize_frames(frames, p.config(), log=log):
        hidden = np.zeros(image.shape[:2], bool)
        for region in log.pop()["hidden"]:
            x, y, w, h = region["box"]
            hidden[y : y + h, x : x + w] = True
        yield image, hidden


# What every frame of a video gets, by the type of the job's image parameters: (image, mask) per frame.
FRAME_WORK = {RestoreParams: (_restore_frames, "restoring", "restored", "synthesized"),
              PixelateParams: (_pixelate_frames, "hiding", None, None),
              AnonymizeParams: (_anonymize_frames, "anonymizing", "anonymized", "anonymized.mask")}


def run_video(folder: Path, p: VideoParams, max_pixels: int, progress: Progress = _no_progress) -> dict:
    """The one task of every video job: decode ``folder/video``, give each frame the image task's
    work (restore, pixelate or anonymize), encode ``result.mp4`` (every other stream copied; tags
    and data streams dropped for anonymize) and, when asked, ``mask.mp4``. Progress per frame."""
    from collections import deque

    from tessera.io.video import FrameWriter, probe_video, transcode

    progress(0.01, "reading")
    src = folder / VIDEO
    info = probe_video(src)
    if info.width * info.height > max_pixels:
        raise BadInput(f"the video's frames are {info.width}x{info.height} = {info.width * info.height} pixels, over this server's limit of {max_pixels}")
    mask = _read_mask(folder, (info.height, info.width))
    total = info.frames or (round(info.duration * info.fps) if info.duration and info.fps else 0)
    work, verb, suffix, mask_suffix = FRAME_WORK[type(p.work)]
    if suffix is None:  # pixelate: named by its method
        suffix, mask_suffix = p.work.method, f"{p.work.method}.mask"  # type: ignore[union-attr]
    done = {"frames": 0, "changed_pixels": 0, "frames_changed": 0}
    count = {"read": 0, "written": 0}

    def report() -> None:  # frames read (and detected) and frames written count half each; a cancel raises here
        r, w = count["read"], count["written"]
        of = max(total, r)
        stage = f"{verb}: frame {w} of {of}" if total else f"{verb}: frame {w}"
        progress(0.02 + 0.96 * (r + w) / (2 * of), stage + (f" ({r} read)" if r > w else ""))

    def on_frame(n: int, _total: int) -> None:  # transcode's callback after each encoded frame
        count["written"] = n
        report()

    writer = FrameWriter(folder / RESULT_MASK_VIDEO, info) if p.with_mask else None
    times: deque[int] = deque()

    def recorded(frames):  # restoration works in clips of frames: reading shows progress before the first is written
        for f in frames:
            times.append(f.pts)
            count["read"] += 1
            report()
            yield f

    def process(frames):
        for image, changed in work(recorded(frames), p.work, mask):
            pts = times.popleft()
            n = int(np.count_nonzero(changed))
            if changed.dtype == np.uint8:  # a restoration's marks: 128 = recovered rather than imagined
                done["recovered_pixels"] = done.get("recovered_pixels", 0) + int(np.count_nonzero(changed == 128))
            done["frames"] += 1
            done["changed_pixels"] += n
            done["frames_changed"] += n > 0
            if writer is not None:
                writer.write(changed, pts)
            yield image

    result = f"result{p.container}"
    tags = {"comment": video_notice()} if isinstance(p.work, RestoreParams) else None  # as `tessera restore` marks a video
    try:
        transcode(src, folder / result, process, encode=p.encode(), progress=on_frame, tags=tags,
                  keep_metadata=not isinstance(p.work, AnonymizeParams))
        if writer is not None:
            writer.close()
    except BaseException:
        if writer is not None:
            writer.abort()
        raise
    progress(1.0, "done")
    media = "video/mp4" if p.container == ".mp4" else "video/x-matroska"
    out = {**done, "size": [info.width, info.height], "fps": float(info.fps) if info.fps else None,
           "result_file": result, "result_media": media, "result_name": f"{p.work.name}.{suffix}{p.container}"}
    if p.with_mask:
        out |= {"mask_file": RESULT_MASK_VIDEO, "mask_name": f"{p.work.name}.{mask_suffix}.mp4"}
    if isinstance(p.work, RestoreParams):
        out |= {"model": p.work.model, "notice": video_notice(), "mask_values": {"0": "unchanged", "128": "recovered", "255": "imagined"}}
    elif isinstance(p.work, AnonymizeParams):
        out |= {"method": p.work.config().method, "metadata": "stripped",
                "warning": "a redaction is only as good as its detector: check the result before publishing"}
    else:
        out["method"] = p.work.method
    return out


def video_notice() -> str:
    """The notice a restored video carries (its container comment), as the CLI writes it."""
    from tessera.video.pipeline import MULTIFRAME_NOTE

    return notice() + MULTIFRAME_NOTE


def video_outputs(info: dict) -> dict[str, tuple[str, str, str]]:
    """A finished video job's downloads: output name -> (file in its folder, media type, download name)."""
    out = {"result": (info["result_file"], info["result_media"], info["result_name"])}
    if "mask_file" in info:
        out["mask"] = (info["mask_file"], "video/mp4", info["mask_name"])
    return out


def image_outputs(info: dict) -> dict[str, tuple[str, str, str]]:
    """A finished image job's downloads (restore, pixelate, anonymize), named as its task said."""
    return {"result": (RESULT, "image/png", info["result_name"]), "mask": (RESULT_MASK, "image/png", info["mask_name"])}
