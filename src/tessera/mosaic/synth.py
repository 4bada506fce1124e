"""Synthetic mosaic cases for training and evaluating detection (and restoration).

``make_case(image, rng, kind)`` hides part of a clean RGB uint8 image and returns
``(degraded, mask, grid)``: the degraded image, the bool ground-truth mask (True = hidden)
and the mosaic's :class:`Grid` (None for blurs, clean images and multi-grid cases).
Every kind is a pure function of the image and the rng. Pass ``jpeg=q`` to JPEG-compress
the result (quality q) as a last step; ``random_case`` draws kind and JPEG quality.

Kinds (``KINDS``):

- ``box``, ``ellipse``, ``polygon``, ``strokes``: square cells (4-32 px) on a random phase,
  mean or centre sampling, the region snapped to whole cells (grid-aligned; pixelate's rule).
- ``rect``: like ``box`` with rectangular cells (height and width drawn independently).
- ``feather``: a grid-aligned region whose edge is feathered over 2-8 px.
- ``pasted``: the whole image pixelated, then pasted through an arbitrary shape whose edge is
  hard or soft (cells are cut by the shape: not grid-aligned).
- ``soft``: a mosaic whose cells were then slightly blurred (a "smoothed" mosaic).
- ``blur``: a Gaussian-blurred region (no grid).
- ``hole``: missing pixels (a box, ellipse or free-form strokes) filled with grey ``HOLE_FILL``
  (no grid): the inpainting task.
- ``multi``: two separate mosaics with different cells (grid = None).
- ``border``: a mosaic touching the image border.
- ``clean``: nothing hidden (empty mask), for false-positive counts.
- ``posterized``, ``ui``: hard negatives, nothing hidden: the image posterized to a few
  levels (flat areas with sharp steps), or a synthetic screenshot (flat panels, bars, text).

For feathered or soft edges the mask holds the pixels whose blend weight is at least one
half (the restorer may dilate it).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import cv2
import numpy as np

from tessera.mosaic.masks import random_box, random_shape
from tessera.mosaic.pixelate import cell_image, feather_weight, pixelate
from tessera.mosaic.region import Grid

KINDS: tuple[str, ...] = (
    "box",
    "ellipse",
    "polygon",
    "strokes",
    "rect",
    "feather",
    "pasted",
    "soft",
    "blur",
    "hole",
    "multi",
    "border",
    "clean",
    "posterized",
    "ui",
)
#: kinds whose mask is a union of whole cells of a single grid (cell-size accuracy is measured on them)
GRID_ALIGNED: tuple[str, ...] = ("box", "ellipse", "polygon", "rect", "border")

CELL_RANGE = (4, 32)
HOLE_FILL = 128  # uint8 grey written into holes (a model's input sets them to exactly 0)


def jpeg(image: np.ndarray, quality: int) -> np.ndarray:
    """JPEG round trip of an RGB uint8 image at ``quality`` (4:2:0, like most encoders)."""
    ok, buf = cv2.imencode(".jpg", image[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    if not ok:
        raise RuntimeError("JPEG encoding failed")
    return cv2.imdecode(buf, cv2.IMREAD_COLOR)[..., ::-1].copy()


def _cell(rng: np.random.Generator, H: int, W: int, square: bool = True) -> tuple[int, int]:
    hi = max(CELL_RANGE[0], min(CELL_RANGE[1], min(H, W) // 4))
    ch = int(rng.integers(CELL_RANGE[0], hi + 1))
    cw = ch if square else int(rng.integers(CELL_RANGE[0], hi + 1))
    return ch, cw


def _grid(rng: np.random.Generator, H: int, W: int, square: bool = True, sampling: str | None = None) -> Grid:
    ch, cw = _cell(rng, H, W, square)
    samp = sampling or ("mean" if rng.random() < 0.6 else "centre")
    return Grid(ch, cw, int(rng.integers(0, ch)), int(rng.integers(0, cw)), samp)  # type: ignore[arg-type]


def _shape(rng: np.random.Generator, H: int, W: int, kind: str, grid: Grid | None = None) -> np.ndarray:
    """A random region of a kind, big enough to hold a few cells."""
    lo = 0.2 if grid is None else None
    min_side = min(H, W)
    c = max(grid.cell_h, grid.cell_w) if grid is not None else 8
    for _ in range(20):
        frac = rng.uniform(lo or 0.15, 0.7)
        h = int(np.clip(frac * H * rng.uniform(0.7, 1.3), max(3 * c, 12), H))
        w = int(np.clip(frac * W * rng.uniform(0.7, 1.3), max(3 * c, 12), W))
        m = random_shape(kind, (H, W), (h, w), rng, strokes=(1, 3), width=(max(12, 2 * c), max(16, 3 * c)))
        if m.sum() >= max(16 * c * c, 0.02 * H * W) or min_side < 48:
            return m
    return m


def _mosaic(image: np.ndarray, region: np.ndarray, grid: Grid, feather: int = 0) -> tuple[np.ndarray, np.ndarray]:
    out, changed = pixelate(image, region, cell=grid.cell, phase=grid.phase, sampling=grid.sampling, feather=feather)
    if feather:
        from tessera.mosaic.pixelate import selected_cells

        sel = selected_cells(region, grid.cell, grid.phase)
        weight = feather_weight(sel, feather)
        changed = 2 * weight >= feather + 1
    return out, changed


def _paste(image: np.ndarray, effect: np.ndarray, shape: np.ndarray, soft: float) -> tuple[np.ndarray, np.ndarray]:
    alpha = shape.astype(np.float32)
    if soft > 0:
        alpha = cv2.GaussianBlur(alpha, (0, 0), soft)
    a = alpha[..., None]
    out = np.clip(a * effect.astype(np.float32) + (1 - a) * image.astype(np.float32) + 0.5, 0, 255).astype(np.uint8)
    return out, alpha >= 0.5


def synthetic_screenshot(shape: tuple[int, int], rng: np.random.Generator) -> np.ndarray:
    """A flat, UI-like RGB image: panels, bars, buttons, rules and text (a hard negative)."""
    H, W = shape
    out = np.empty((H, W, 3), np.uint8)
    out[:] = rng.integers(200, 256, 3) if rng.random() < 0.6 else rng.integers(0, 60, 3)
    for _ in range(int(rng.integers(3, 12))):
        x0, y0 = int(rng.integers(0, W)), int(rng.integers(0, H))
        x1, y1 = x0 + int(rng.integers(8, max(9, W // 2))), y0 + int(rng.integers(6, max(7, H // 3)))
        cv2.rectangle(out, (x0, y0), (x1, y1), [int(v) for v in rng.integers(0, 256, 3)], -1)
    for _ in range(int(rng.integers(0, 6))):
        y = int(rng.integers(0, H))
        cv2.line(out, (0, y), (W, y), [int(v) for v in rng.integers(0, 256, 3)], 1)
    font = cv2.FONT_HERSHEY_SIMPLEX
    for _ in range(int(rng.integers(2, 15))):
        text = "".join(rng.choice(list("abcdefghijklmnopqrstuvwxyz0123456789 "), int(rng.integers(3, 20))))
        org = (int(rng.integers(0, W)), int(rng.integers(8, H + 8)))
        cv2.putText(out, text, org, font, float(rng.uniform(0.3, 0.8)), [int(v) for v in rng.integers(0, 256, 3)], 1, cv2.LINE_AA)
    return out


def make_case(
    image: np.ndarray, rng: np.random.Generator, kind: str, *, jpeg_quality: int | None = None
) -> tuple[np.ndarray, np.ndarray, Grid | None]:
    """Hide part of ``image`` (RGB uint8 (H, W, 3)) as ``kind``; see the module doc.

    Returns ``(degraded uint8 (H, W, 3), mask bool (H, W), grid | None)``.
    """
    image = np.ascontiguousarray(image)
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise ValueError(f"image must be RGB uint8 (H, W, 3), got {image.dtype} {image.shape}")
    H, W = image.shape[:2]
    grid: Grid | None = None
    if kind in ("box", "ellipse", "polygon", "strokes", "rect"):
        grid = _grid(rng, H, W, square=kind != "rect")
        shape = _shape(rng, H, W, "box" if kind == "rect" else kind, grid)
        out, mask = _mosaic(image, shape, grid)
    elif kind == "feather":
        grid = _grid(rng, H, W, square=rng.random() < 0.7)
        shape = _shape(rng, H, W, str(rng.choice(["box", "ellipse", "polygon"])), grid)
        out, mask = _mosaic(image, shape, grid, feather=int(rng.integers(2, 9)))
    elif kind == "pasted":
        grid = _grid(rng, H, W, square=rng.random() < 0.7)
        effect = cell_image(image, grid.cell, grid.phase, grid.sampling)
        shape = _shape(rng, H, W, str(rng.choice(["ellipse", "polygon", "strokes"])), grid)
        soft = float(rng.choice([0.0, rng.uniform(0.8, 4.0)]))
        out, mask = _paste(image, effect, shape, soft)
    elif kind == "soft":
        grid = _grid(rng, H, W, square=True)
        ch = max(grid.cell_h, 6)
        grid = Grid(ch, ch, int(rng.integers(0, ch)), int(rng.integers(0, ch)), grid.sampling)
        effect = cell_image(image, grid.cell, grid.phase, grid.sampling)
        effect = cv2.GaussianBlur(effect, (0, 0), rng.uniform(0.6, 1.2))
        shape = _shape(rng, H, W, str(rng.choice(["box", "ellipse"])), grid)
        out, mask = _paste(image, effect, shape, 0.0)
    elif kind == "blur":
        shape = _shape(rng, H, W, str(rng.choice(["box", "ellipse", "polygon"])))
        out, _ = pixelate(image, shape, blur=float(rng.uniform(3.0, 10.0)))
        mask = shape
    elif kind == "hole":
        mask = _shape(rng, H, W, str(rng.choice(["box", "ellipse", "strokes"])))
        out = image.copy()
        out[mask] = HOLE_FILL
    elif kind == "multi":
        out, mask = image, np.zeros((H, W), bool)
        g1, g2 = _grid(rng, H, W), _grid(rng, H, W)
        halves = [(slice(0, H), slice(0, W // 2)), (slice(0, H), slice(W // 2, W))]
        if H > W:
            halves = [(slice(0, H // 2), slice(0, W)), (slice(H // 2, H), slice(0, W))]
        for g, (sy, sx) in zip((g1, g2), halves):
            sub = np.zeros((H, W), bool)
            hh, ww = sy.stop - sy.start, sx.stop - sx.start
            sub[sy, sx] = _shape(rng, hh, ww, str(rng.choice(["box", "ellipse"])), g)
            # keep a gap: shrink the shape away from the split line by one cell
            pad = max(g.cell_h, g.cell_w) + 2
            if H > W:
                sub[max(H // 2 - pad, 0) : H // 2 + pad] = False
            else:
                sub[:, max(W // 2 - pad, 0) : W // 2 + pad] = False
            out, m = _mosaic(out, sub, g)
            mask |= m
    elif kind == "border":
        grid = _grid(rng, H, W)
        h = int(rng.uniform(0.25, 0.6) * H)
        w = int(rng.uniform(0.25, 0.6) * W)
        y = 0 if rng.random() < 0.5 else H - h
        x = 0 if rng.random() < 0.5 else W - w
        shape = np.zeros((H, W), bool)
        shape[y : y + h, x : x + w] = True
        out, mask = _mosaic(image, shape, grid)
    elif kind == "clean":
        out, mask = image.copy(), np.zeros((H, W), bool)
    elif kind == "posterized":
        levels = int(rng.integers(2, 6))
        step = 256 // levels
        smooth = cv2.bilateralFilter(image, 7, 40, 5) if rng.random() < 0.5 else image
        out, mask = ((smooth // step) * step + step // 2).astype(np.uint8), np.zeros((H, W), bool)
    elif kind == "ui":
        out, mask = synthetic_screenshot((H, W), rng), np.zeros((H, W), bool)
    else:
        raise ValueError(f"unknown case kind {kind!r}; choose one of {', '.join(KINDS)}")
    if jpeg_quality is not None:
        out = jpeg(out, jpeg_quality)
    return out, mask, grid


#: training mixture: kind -> weight
TRAIN_MIX: dict[str, float] = {
    "box": 1.0,
    "ellipse": 1.0,
    "polygon": 1.0,
    "strokes": 0.7,
    "rect": 1.0,
    "feather": 1.0,
    "pasted": 1.5,
    "soft": 0.5,
    "blur": 0.7,
    "multi": 0.5,
    "border": 0.5,
    "clean": 1.0,
    "posterized": 0.3,
    "ui": 0.3,
}


def random_case(
    image: np.ndarray, rng: np.random.Generator, *, mix: dict[str, float] | None = None, jpeg_prob: float = 0.5
) -> tuple[np.ndarray, np.ndarray, Grid | None, str, int | None]:
    """Draw a kind from ``mix`` and a JPEG quality 50-95 (with probability ``jpeg_prob``), make the case.

    Returns ``(degraded, mask, grid, kind, jpeg_quality | None)``.
    """
    mix = mix or TRAIN_MIX
    kinds = list(mix)
    p = np.array([mix[k] for k in kinds], float)
    kind = str(rng.choice(kinds, p=p / p.sum()))
    q = int(rng.integers(50, 96)) if rng.random() < jpeg_prob else None
    out, mask, grid = make_case(image, rng, kind, jpeg_quality=q)
    return out, mask, grid, kind, q


# ----------------------------------------------------------------------------- the generator zoo
#
# Mosaics as other tools make them, shared by training (train/data.py), `tessera eval --zoo` and
# benchmarks/zoo.py. ``zoo_case(image, rng, generator, fmt)`` is a pure function of its inputs:
# the tool's effect is computed on the bounding box of a random region (tools pixelate rectangles,
# with the tile origin at the box corner) and pasted through the region, then the whole image goes
# through the output format. Emulations (no external tools): ImageMagick ``-scale`` = box average
# down (cv2 INTER_AREA) + nearest up; ffmpeg ``flags=neighbor`` = the source pixel under each
# output pixel's centre; ``flags=area`` = box average; OpenCV = cv2.resize INTER_NEAREST/INTER_AREA
# down and INTER_NEAREST up (its nearest takes floor(i * scale): a cell's first pixel). Exact lattices
# carry the tool's own sampling: ffmpeg's neighbour takes pixel (start + end) // 2 of a whole cell
# ('centre-up', one past tessera's 'centre' in even cells), OpenCV's nearest the first ('first').

ZOO: dict[str, str] = {
    "mean": "mean cells, rounded half up (tessera pixelate)",
    "mean-floor": "mean cells, truncated (integer division)",
    "mean-even": "mean cells, rounded half to even (float mean, np.rint)",
    "centre": "centre pixel (y0 + y1 - 1) // 2 (tessera pixelate)",
    "centre-up": "centre pixel (y0 + y1) // 2 (the other centre convention)",
    "magick": "ImageMagick -scale: box average down, nearest up (non-integer cells at the edges)",
    "ffmpeg-nearest": "ffmpeg scale flags=neighbor down and up",
    "ffmpeg-area": "ffmpeg scale flags=area down, neighbor up",
    "opencv-nearest": "cv2.resize INTER_NEAREST down and up (first pixel of each cell)",
    "opencv-area": "cv2.resize INTER_AREA down, INTER_NEAREST up",
    "rect": "rectangular mean cells (height and width drawn independently)",
    "feather": "mean cells blended into the photo over 2-8 px (tessera pixelate feather)",
    "soft": "mean cells pasted through a Gaussian-blurred edge (sigma 1-4 px)",
    "rescaled": "mean cells, then the whole image resized by 0.6-0.9 or 1.1-1.5 (non-integer cells)",
}
#: the zoo's tool generators: (how the tool scales the region down, how it scales the cells back up)
ZOO_TOOLS: dict[str, tuple[str, str]] = {
    "magick": ("area", "nearest"),
    "ffmpeg-nearest": ("centre", "centre"),
    "ffmpeg-area": ("area", "centre"),
    "opencv-nearest": ("nearest", "nearest"),
    "opencv-area": ("area", "nearest"),
}


def zoo_sampling(generator: str) -> str:
    """What a cell of ``generator``'s mosaic holds (the tool's own sampling, a name of
    :data:`tessera.mosaic.region.SAMPLINGS`): the mean for area scaling and the mean rules, the pixel
    (start + end) // 2 for ffmpeg's neighbour scaling ('centre-up'), the first pixel for OpenCV's
    INTER_NEAREST ('first'), tessera's centre pixel for 'centre'."""
    if generator not in ZOO:
        raise ValueError(f"unknown generator {generator!r}; choose one of {', '.join(ZOO)}")
    if generator in ZOO_TOOLS:
        return {"area": "mean", "centre": "centre-up", "nearest": "first"}[ZOO_TOOLS[generator][0]]
    return generator if generator in ("centre", "centre-up") else "mean"


#: output formats: lossless, JPEG 4:2:0, JPEG 4:4:4 (quality 30-95), one H.264 frame (PyAV, CRF 18-35)
ZOO_FORMATS: tuple[str, ...] = ("png", "jpeg", "jpeg444", "h264")


@dataclass(frozen=True)
class ZooCase:
    """One zoo case. ``clean`` is the target (resized like the degraded image for ``rescaled``);
    ``grid`` is the exact lattice when there is one (None for non-integer cells); ``nominal`` the
    lattice the cells lie on for metrics (blockiness) in every case, with fractional cells
    (:meth:`Grid.fractional`) where the tool's cells are not a whole number of pixels; ``info`` the draw."""

    clean: np.ndarray
    degraded: np.ndarray
    mask: np.ndarray
    grid: Grid | None
    nominal: Grid
    info: dict


def encode(image: np.ndarray, fmt: str, rng: np.random.Generator) -> tuple[np.ndarray, dict]:
    """``image`` through the output format ``fmt`` (one of :data:`ZOO_FORMATS`) with a random
    quality -> (decoded RGB uint8, {format, quality})."""
    if fmt == "png":
        return image, {"format": fmt}
    if fmt in ("jpeg", "jpeg444"):
        import io

        from PIL import Image

        q = int(rng.integers(30, 96))
        buf = io.BytesIO()
        Image.fromarray(image).save(buf, "JPEG", quality=q, subsampling=0 if fmt == "jpeg444" else 2)
        buf.seek(0)
        return np.asarray(Image.open(buf).convert("RGB")).copy(), {"format": fmt, "quality": q}
    if fmt == "h264":
        crf = int(rng.integers(18, 36))
        return h264_frame(image, crf), {"format": fmt, "crf": crf}
    raise ValueError(f"unknown format {fmt!r}; choose one of {', '.join(ZOO_FORMATS)}")


def h264_frame(image: np.ndarray, crf: int) -> np.ndarray:
    """One RGB frame through libx264 (yuv420p, CRF ``crf``, an I-frame) and back, via PyAV."""
    try:
        import av
    except ImportError as e:  # pragma: no cover - av is in the test extra
        raise RuntimeError("H.264 cases need PyAV: pip install 'tessera[video]'") from e
    import io

    H, W = image.shape[:2]
    ph, pw = H % 2, W % 2
    padded = np.pad(image, ((0, ph), (0, pw), (0, 0)), mode="edge")
    buf = io.BytesIO()
    with av.open(buf, "w", format="mp4") as out:
        st = out.add_stream("libx264", rate=25)
        st.width, st.height, st.pix_fmt = W + pw, H + ph, "yuv420p"
        st.options = {"crf": str(int(crf)), "preset": "veryfast", "tune": "zerolatency"}
        frame = av.VideoFrame.from_ndarray(padded, format="rgb24")
        for p in st.encode(frame):
            out.mux(p)
        for p in st.encode():
            out.mux(p)
    buf.seek(0)
    with av.open(buf) as inp:
        dec = next(inp.decode(video=0)).to_ndarray(format="rgb24")
    return np.ascontiguousarray(dec[:H, :W])


def _levels(n: int, cell: int) -> int:
    return max(1, int(round(n / cell)))


def _resize_mosaic(box: np.ndarray, cell: tuple[int, int], down: str, up: str) -> np.ndarray:
    """A tool's down-then-up scaling of one box: ``down`` in (area, nearest, centre), ``up`` in
    (nearest, centre) (centre = the source pixel under the output pixel's centre, ffmpeg's neighbor)."""
    h, w = box.shape[:2]
    nh, nw = _levels(h, cell[0]), _levels(w, cell[1])
    if down == "area":
        small = cv2.resize(box, (nw, nh), interpolation=cv2.INTER_AREA)
    elif down == "nearest":
        small = cv2.resize(box, (nw, nh), interpolation=cv2.INTER_NEAREST)
    else:  # centre
        ys = np.minimum(((np.arange(nh) + 0.5) * h / nh).astype(int), h - 1)
        xs = np.minimum(((np.arange(nw) + 0.5) * w / nw).astype(int), w - 1)
        small = box[ys][:, xs]
    if up == "nearest":
        return cv2.resize(small, (w, h), interpolation=cv2.INTER_NEAREST)
    ys = np.minimum(((np.arange(h) + 0.5) * nh / h).astype(int), nh - 1)
    xs = np.minimum(((np.arange(w) + 0.5) * nw / w).astype(int), nw - 1)
    return small[ys][:, xs]


def _cells_rule(image: np.ndarray, grid: Grid, rule: str) -> np.ndarray:
    """The whole image in cells of ``grid`` with one of the zoo's value rules."""
    from tessera.mosaic.lattice import Lattice

    lat = Lattice(image.shape, grid)
    if rule == "centre-up":
        values = lat.points(image)  # the grid's sampling: centre-up
    else:
        sums, counts = lat.sums(image), lat.counts[..., None]
        values = sums // counts if rule == "mean-floor" else np.rint(sums / counts)
    return lat.expand(values).astype(np.uint8)


def zoo_apply(
    image: np.ndarray, region: np.ndarray, rng: np.random.Generator, generator: str, cell: tuple[int, int] | None = None
) -> tuple[np.ndarray, np.ndarray, Grid | None, Grid, dict]:
    """Mosaic ``region`` (bool (H, W)) of ``image`` as ``generator`` does (lossless; no rescaling),
    with cells of ``cell`` (h, w) pixels (drawn when None; square unless the generator is ``rect``).
    Returns ``(degraded, mask, exact grid | None, nominal grid, info)``."""
    if generator not in ZOO:
        raise ValueError(f"unknown generator {generator!r}; choose one of {', '.join(ZOO)}")
    H, W = image.shape[:2]
    if cell is None:
        hi = max(CELL_RANGE[0], min(24, min(H, W) // 6))
        c = int(rng.integers(CELL_RANGE[0], hi + 1))
        cell = (c, int(rng.integers(CELL_RANGE[0], hi + 1)) if generator == "rect" else c)
    elif generator != "rect":
        cell = (cell[0], cell[0])
    cell = (int(cell[0]), int(cell[1]))
    ys, xs = np.nonzero(region)
    if ys.size == 0:
        raise ValueError("the region is empty")
    y0, y1, x0, x1 = int(ys.min()), int(ys.max()) + 1, int(xs.min()), int(xs.max()) + 1
    info: dict = {"generator": generator, "cell": cell}
    grid: Grid | None = Grid(cell[0], cell[1], y0 % cell[0], x0 % cell[1], "mean")
    nominal = grid
    if generator in ZOO_TOOLS:
        down, up = ZOO_TOOLS[generator]
        effect = image.copy()
        effect[y0:y1, x0:x1] = _resize_mosaic(image[y0:y1, x0:x1], cell, down, up)
        nh, nw = _levels(y1 - y0, cell[0]), _levels(x1 - x0, cell[1])
        exact = (y1 - y0) % nh == 0 and (x1 - x0) % nw == 0
        ch, cw = (y1 - y0) / nh, (x1 - x0) / nw
        # the tool's cells exactly: nearest-up starts cell k at ceil(k * pitch), centre-up at ceil(k * pitch - 0.5)
        shift = 0.5 if up == "centre" else 0.0
        grid = Grid(int(ch), int(cw), y0 % int(ch), x0 % int(cw), zoo_sampling(generator)) if exact else None
        nominal = replace(grid, sampling="mean") if exact else Grid.fractional(ch, cw, y0 - shift, x0 - shift)
        info["exact"] = exact
        out, mask = _paste(image, effect, region, 0.0)
        return out, mask, grid, nominal, info
    if generator in ("mean", "rect", "centre", "feather", "rescaled"):
        grid = replace(grid, sampling=zoo_sampling(generator))
        f = int(rng.integers(2, 9)) if generator == "feather" else 0
        info["feather"] = f
        out, mask = _mosaic(image, region, grid, feather=f)
        return out, mask, grid, grid, info
    if generator == "soft":
        effect = cell_image(image, grid.cell, grid.phase, "mean")
        s = float(rng.uniform(1.0, 4.0))
        info["sigma"] = s
        out, mask = _paste(image, effect, region, s)
        return out, mask, grid, grid, info
    # mean-floor, mean-even, centre-up: the cells of the region, another value rule
    grid = replace(grid, sampling=zoo_sampling(generator))
    effect = _cells_rule(image, grid, generator)
    from tessera.mosaic.pixelate import selected_cells

    sel = selected_cells(region, grid.cell, grid.phase)
    out = np.where(sel[..., None], effect, image)
    return out, sel, grid, grid, info


def zoo_case(image: np.ndarray, rng: np.random.Generator, generator: str, fmt: str = "png") -> ZooCase:
    """A random region of ``image`` (RGB uint8) mosaicked by ``generator`` (see :data:`ZOO`) and
    the whole image saved as ``fmt`` (see :data:`ZOO_FORMATS`). Pure: the same rng state gives the
    same case."""
    image = np.ascontiguousarray(image)
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise ValueError(f"image must be RGB uint8 (H, W, 3), got {image.dtype} {image.shape}")
    if fmt not in ZOO_FORMATS:
        raise ValueError(f"unknown format {fmt!r}; choose one of {', '.join(ZOO_FORMATS)}")
    H, W = image.shape[:2]
    shape = str(rng.choice(["box", "ellipse", "polygon"]))
    frac = rng.uniform(0.25, 0.55)
    h, w = max(int(frac * H), 16), max(int(frac * W), 16)
    region = random_shape(shape, (H, W), (min(h, H), min(w, W)), rng)
    if not region.any():
        region = random_box((H, W), (min(h, H), min(w, W)), rng)
    out, mask, grid, nominal, info = zoo_apply(image, region, rng, generator)
    clean = image
    if generator == "rescaled":
        s = float(rng.choice([rng.uniform(0.6, 0.9), rng.uniform(1.1, 1.5)]))
        size = (max(int(round(W * s)), 8), max(int(round(H * s)), 8))
        interp = cv2.INTER_AREA if s < 1 else cv2.INTER_CUBIC
        out, clean = cv2.resize(out, size, interpolation=interp), cv2.resize(image, size, interpolation=interp)
        mask = cv2.resize(mask.astype(np.uint8), size, interpolation=cv2.INTER_NEAREST) > 0
        # an edge at e (between pixels e - 1 and e) lands at e * (new size / old size) - 0.5 (cv2's pixel centres)
        sy, sx = size[1] / H, size[0] / W
        nominal = Grid.fractional(nominal.cell_h * sy, nominal.cell_w * sx, nominal.phase_y * sy - 0.5, nominal.phase_x * sx - 0.5)
        grid = None
        info["scale"] = s
    out, finfo = encode(out, fmt, rng)
    info.update(finfo, shape=shape)
    return ZooCase(clean, out, mask, grid, nominal, info)
