"""Anonymize images: find faces, text (and CAM regions) and hide them irreversibly.

``anonymize_image(image, AnonymizeConfig(...))`` finds regions with the finders in
:mod:`tessera.detect` (faces: CenterFace; text: RapidOCR's PP-OCR detector; cam: our face/no-face
classifier's class activation map), grows each box by ``pad`` and hides it with a mosaic, a blur or
a solid fill. ``attack`` measures how much of a redaction our own restorer brings back.

A redaction is only as good as its detector: check the result before publishing, and prefer the
default method (chosen so that our restorer cannot undo it; see benchmarks/RESULTS.md "anonymize").
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import cv2
import numpy as np

from tessera.detect.found import Found, clip_box
from tessera.detect.identity import MATCH_DISTANCE

__all__ = [
    "FINDERS", "METHODS", "AUTO_CELLS", "AnonymizeConfig", "Anonymized", "find_regions", "auto_cell", "redact",
    "anonymize_image", "Attack", "attack", "check_redaction", "padded_boxes",
]

FINDERS = ("faces", "text", "cam")
METHODS = ("mosaic", "blur", "solid")
# --cell auto: this many cells across the long side of each region (at least MIN_AUTO_CELL px).
# Chosen from the restorer attack on faces/val (benchmarks/anonymize.py, RESULTS.md "Anonymization"):
# with the default blur, dlib re-identified 0 of 48 attacked faces at 4 across (chance 0.9 %), 1 at 5,
# but 4 of 48 at 6 (chance 3.4 %), the former default.
AUTO_CELLS = 4
MIN_AUTO_CELL = 4
SOLID_COLOUR = (0, 0, 0)


@dataclass(frozen=True)
class AnonymizeConfig:
    """What to find and how to hide it.

    find: finders to run ('faces', 'text', 'cam'). method: 'blur' (Gaussian, sigma = cell / 2; the
    default: at --cell auto our restorer's attack re-identified 0 of 48 faces, where a mosaic of the
    same cell size left 3 of 48, benchmarks/RESULTS.md), 'mosaic' (cells of their mean colour) or
    'solid' (black). cell: pixels per cell (or the blur's
    scale); None = auto (:func:`auto_cell`: scales with each region). pad: each box grows by this
    fraction of its width/height on every side. threshold: the finders' score threshold (None =
    each finder's default).
    """

    find: tuple[str, ...] = ("faces",)
    method: str = "blur"
    cell: int | None = None
    pad: float = 0.15
    threshold: float | None = None

    def __post_init__(self) -> None:
        if isinstance(self.find, str):
            raise ValueError("find must be a tuple of finder names, e.g. ('faces', 'text')")
        if not self.find:
            raise ValueError(f"find must name at least one of {', '.join(FINDERS)}")
        bad = [f for f in self.find if f not in FINDERS]
        if bad:
            raise ValueError(f"unknown finder {bad[0]!r}: use {', '.join(FINDERS)}")
        if len(set(self.find)) != len(self.find):
            raise ValueError(f"find names a finder twice: {','.join(self.find)}")
        if self.method not in METHODS:
            raise ValueError(f"unknown method {self.method!r}: use {', '.join(METHODS)}")
        if self.cell is not None and not 2 <= int(self.cell) <= 512:
            raise ValueError(f"cell must be 'auto' or 2..512 pixels, got {self.cell}")
        if not 0.0 <= self.pad <= 2.0:
            raise ValueError(f"pad must be between 0 and 2 (a fraction of the box), got {self.pad}")
        if self.threshold is not None and not 0.0 < self.threshold < 1.0:
            raise ValueError(f"threshold must be between 0 and 1 (exclusive), got {self.threshold}")


@dataclass
class Anonymized:
    """image: the anonymized RGB uint8 image. mask: bool (H, W), True = hidden. found: what the
    finders returned (tight boxes). regions: the padded boxes that were hidden, with their cell."""

    image: np.ndarray
    mask: np.ndarray
    found: list[Found] = field(default_factory=list)
    regions: list[dict] = field(default_factory=list)

    def to_json(self) -> dict:
        return {"found": [f.as_dict() for f in self.found], "hidden": self.regions, "hidden_pixels": int(self.mask.sum())}


def find_regions(
    image: np.ndarray, find: tuple[str, ...] = ("faces",), threshold: float | None = None, *, photo: bool = False
) -> list[Found]:
    """Run the named finders on an RGB uint8 image; their boxes, in finder order. ``photo``: a still
    photo (not a video frame): faces are looked for at :func:`tessera.detect.faces.hiding_scale`."""
    out: list[Found] = []
    kw = {} if threshold is None else {"threshold": threshold}
    for name in find:
        if name == "faces":
            from tessera.detect.faces import detect_faces, hiding_scale

            scale = hiding_scale(*image.shape[:2]) if photo else None
            out += detect_faces(image, scale=scale, **kw)
        elif name == "text":
            from tessera.detect.text import detect_text

            out += detect_text(image, **kw)
        elif name == "cam":
            from tessera.detect.cam import detect_cam

            out += detect_cam(image, **kw)
        else:
            raise ValueError(f"unknown finder {name!r}: use {', '.join(FINDERS)}")
    return out


def auto_cell(box: tuple[int, int, int, int]) -> int:
    """The cell size for ``--cell auto``: AUTO_CELLS cells across the box's long side."""
    return max(MIN_AUTO_CELL, int(math.ceil(max(box[2], box[3]) / AUTO_CELLS)))


def redact(
    image: np.ndarray, boxes: list[tuple[int, int, int, int]], *, method: str = "mosaic", cell: int | None = None
) -> tuple[np.ndarray, np.ndarray, list[dict]]:
    """Hide every box (x, y, w, h) of an RGB uint8 image -> (new image, hidden mask, per-box info).

    A mosaic's lattice starts at each box's top-left corner, and the box is grown to whole cells
    (clipped to the image) so every pixel of it lies in a cell; the mask covers every box. Pixels
    outside the mask are byte-identical to the input. Overlapping boxes are hidden one after the
    other (largest first), so an overlap is hidden at least as strongly as either box.
    """
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise ValueError(f"expected an RGB uint8 (H, W, 3) image, got {image.dtype} {image.shape}")
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}: use {', '.join(METHODS)}")
    H, W = image.shape[:2]
    out = image.copy()
    mask = np.zeros((H, W), bool)
    info = []
    for box in sorted(boxes, key=lambda b: -b[2] * b[3]):
        x, y, w, h = (int(v) for v in box)
        if w <= 0 or h <= 0:
            continue
        c = int(cell) if cell is not None else auto_cell((x, y, w, h))
        if method == "mosaic":
            x1, y1 = min(x + -(-w // c) * c, W), min(y + -(-h // c) * c, H)
            for cy in range(y, y1, c):
                for cx in range(x, x1, c):
                    blk = out[cy : min(cy + c, y1), cx : min(cx + c, x1)]
                    mean = np.floor(blk.reshape(-1, 3).astype(np.float64).mean(0) + 0.5)
                    blk[:] = mean.astype(np.uint8)
            region = (x, y, x1 - x, y1 - y)
        elif method == "blur":
            sigma = c / 2.0
            m = int(math.ceil(3 * sigma))
            X0, Y0, X1, Y1 = max(x - m, 0), max(y - m, 0), min(x + w + m, W), min(y + h + m, H)
            blurred = cv2.GaussianBlur(out[Y0:Y1, X0:X1], (0, 0), sigmaX=sigma, sigmaY=sigma, borderType=cv2.BORDER_REFLECT)
            out[y : y + h, x : x + w] = blurred[y - Y0 : y - Y0 + h, x - X0 : x - X0 + w]
            region = (x, y, w, h)
        else:
            out[y : y + h, x : x + w] = SOLID_COLOUR
            region = (x, y, w, h)
        rx, ry, rw, rh = region
        mask[ry : ry + rh, rx : rx + rw] = True
        info.append({"box": list(region), "method": method, "cell": c if method != "solid" else None})
    out[~mask] = image[~mask]
    return out, mask, info


def padded_boxes(found, pad: float, shape: tuple[int, int]) -> list[tuple[int, int, int, int]]:
    """The boxes of ``found`` grown by ``pad`` of their size on every side and clipped to the image
    (boxes that fall outside it are dropped)."""
    H, W = shape
    boxes = []
    for f in found:
        x, y, w, h = f.box
        b = clip_box(x - pad * w, y - pad * h, x + w + pad * w, y + h + pad * h, W, H)
        if b is not None:
            boxes.append(b)
    return boxes


def anonymize_image(image: np.ndarray, cfg: AnonymizeConfig = AnonymizeConfig()) -> Anonymized:
    """Find what ``cfg.find`` names in an RGB uint8 image and hide it (see :class:`AnonymizeConfig`)."""
    image = np.asarray(image)
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise ValueError(f"expected an RGB uint8 (H, W, 3) image, got {image.dtype} {image.shape}")
    found = find_regions(image, cfg.find, cfg.threshold, photo=True)
    out, mask, info = redact(image, padded_boxes(found, cfg.pad, image.shape[:2]), method=cfg.method, cell=cfg.cell)
    return Anonymized(out, mask, found, info)


# ----------------------------------------------------------------------------- the restorer attack


@dataclass
class Attack:
    """What our restorer brings back from one hidden region: ``restored`` (the attack's image),
    ``psnr`` of the attack against the original inside the region and ``psnr_redacted`` of the
    redaction itself (how much the attack gained), in dB."""

    restored: np.ndarray
    psnr: float
    psnr_redacted: float
    model: str
    kind: str


def _psnr(a: np.ndarray, b: np.ndarray, mask: np.ndarray) -> float:
    d = a.astype(np.float64)[mask] - b.astype(np.float64)[mask]
    mse = float((d**2).mean()) if d.size else 0.0
    return 100.0 if mse == 0 else 10 * math.log10(255.0**2 / mse)


def attack(
    original: np.ndarray, redacted: np.ndarray, region: dict, *, model: str = "faces"
) -> Attack:
    """Attack one hidden region (an entry of :attr:`Anonymized.regions`) with our restorer, as a
    strong attacker would: told the mosaic's exact lattice (cell and phase, 'mean' sampling), or
    that the region is blurred ('blur') or filled ('hole'). ``model``: a restore model name
    ('faces' for faces, 'scenes' for anything else)."""
    from tessera.mosaic.region import Grid, Region
    from tessera.restore.pipeline import restore_image

    H, W = original.shape[:2]
    x, y, w, h = region["box"]
    mask = np.zeros((H, W), bool)
    mask[y : y + h, x : x + w] = True
    method = region["method"]
    if method == "mosaic":
        c = int(region["cell"])
        grid = Grid(c, c, y % c, x % c, "mean")
        reg = Region.from_mask(mask, grid, kind="mosaic", box=(x, y, w, h))
    else:
        reg = Region.from_mask(mask, None, kind="blur" if method == "blur" else "hole", box=(x, y, w, h))
    res = restore_image(redacted, regions=[reg], model=model, sampling="mean" if method == "mosaic" else None)
    return Attack(res.image, _psnr(res.image, original, mask), _psnr(redacted, original, mask), res.model, reg.kind)


def _overlaps(a, b) -> bool:
    return a[0] < b[0] + b[2] and b[0] < a[0] + a[2] and a[1] < b[1] + b[3] and b[1] < a[1] + a[3]


def check_redaction(
    original: np.ndarray, redacted: np.ndarray, found: list[tuple[str, tuple[int, int, int, int]]], regions: list[dict]
) -> list[dict]:
    """Attack every hidden region of ``redacted`` (entries of :attr:`Anonymized.regions`) with our
    restorer (:func:`attack`; the 'faces' model where the region covers a found face, ``found``
    being (kind, box) pairs, else 'scenes'), one dict per region: the attack's PSNR against
    ``original`` and the redaction's own, in dB, and for faces whether dlib still matches the
    person after the attack and as redacted, with the distances (None where dlib or its models are
    not installed: :func:`tessera.detect.identity.why_unavailable`). What ``tessera anonymize
    --check`` writes and the redaction section of ``tessera eval`` averages."""
    from tessera.detect.identity import match

    checks = []
    for region in regions:
        box = tuple(region["box"])
        face = next((b for k, b in found if k == "face" and _overlaps(b, box)), None)
        a = attack(original, redacted, region, model="faces" if face is not None else "scenes")
        entry = {
            "box": list(box), "method": region["method"], "cell": region["cell"], "kind": "face" if face is not None else "other",
            "attack_psnr_db": round(a.psnr, 2), "redacted_psnr_db": round(a.psnr_redacted, 2), "model": a.model,
        }
        if face is not None:
            after, redacted_d = match(original, a.restored, face), match(original, redacted, face)
            entry["same_person_after_attack"] = None if after is None else after < MATCH_DISTANCE
            entry["same_person_redacted"] = None if redacted_d is None else redacted_d < MATCH_DISTANCE
            entry["identity_distance_after_attack"] = None if after is None else round(after, 4)
            entry["identity_distance_redacted"] = None if redacted_d is None else round(redacted_d, 4)
        checks.append(entry)
    return checks


# ----------------------------------------------------------------------------- video


def anonymize_frames(frames, cfg: AnonymizeConfig = AnonymizeConfig(), *, window: int = 3, log: list | None = None):
    """Anonymize a stream of frames (an iterator of RGB uint8 images, or of objects with an
    ``.image``, such as :class:`tessera.io.video.Frame`), yielding one image per frame, in order.

    A face missed in one frame is a leak, so every frame hides the padded boxes found in it *and*
    in the ``window`` frames before and after it (a temporal dilation: a detection gap of up to
    ``window`` frames stays covered, and a moving face is covered along its path). Holds at most
    2 * window + 1 frames. ``log``: when a list, gets one dict per frame (index, found, hidden).
    """
    from collections import deque

    if window < 0:
        raise ValueError(f"window must be >= 0, got {window}")
    pending: deque = deque()  # (index, image, padded boxes, found) of frames not yet yielded
    past: deque = deque(maxlen=window)  # padded boxes of the last `window` yielded frames

    def emit():
        i, img, own, found = pending.popleft()
        boxes = list(own)
        for b in past:
            boxes += b
        for _, _, b, _ in list(pending)[:window]:
            boxes += b
        out, mask, info = redact(img, boxes, method=cfg.method, cell=cfg.cell)
        past.append(own)
        if log is not None:
            log.append({"frame": i, "found": [f.as_dict() for f in found], "hidden": info})
        return out

    for i, fr in enumerate(frames):
        img = getattr(fr, "image", fr)
        found = find_regions(img, cfg.find, cfg.threshold)
        own = padded_boxes(found, cfg.pad, img.shape[:2])
        pending.append((i, img, own, found))
        if len(pending) > window:
            yield emit()
    while pending:
        yield emit()
