"""The typed description of a mosaic: its lattice (Grid) and where it is (Region)."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Literal

import numpy as np

Sampling = Literal["mean", "centre", "centre-up", "first"]
#: samplings that hold one pixel of each cell: 'centre' the pixel (start + end - 1) // 2 (tessera's),
#: 'centre-up' (start + end) // 2 (ffmpeg's neighbour scaling), 'first' the cell's first pixel (OpenCV's
#: INTER_NEAREST down-scaling)
POINT_SAMPLINGS = ("centre", "centre-up", "first")
SAMPLINGS = ("mean", *POINT_SAMPLINGS)
#: what each sampling takes of a cell and which tools make it (for help texts: CLI, web API and page)
SAMPLING_HELP = {
    "mean": "the mean of its pixels (tessera's default; ImageMagick -scale, ffmpeg scale flags=area, OpenCV INTER_AREA)",
    "centre": "its centre pixel (start + end - 1) // 2 (tessera --sampling centre)",
    "centre-up": "the pixel (start + end) // 2, one past the centre in even cells (ffmpeg scale flags=neighbor)",
    "first": "its first pixel (OpenCV cv2.resize INTER_NEAREST)",
}


def sampling_help() -> str:
    """One line naming every sampling with what it takes of a cell and the tools that make it."""
    return "; ".join(f"'{name}': {SAMPLING_HELP[name]}" for name in SAMPLINGS)


def parse_sampling(text: str, extra: tuple[str, ...] = ()) -> str:
    """A sampling name from a user (the spelling 'center' allowed), or one of ``extra`` (e.g. 'auto');
    raises ValueError naming the choices."""
    name = text.strip().lower().replace("center", "centre")
    if name not in (*extra, *SAMPLINGS):
        raise ValueError(f"sampling must be one of {', '.join((*extra, *SAMPLINGS))}, got {text!r}")
    return name


def is_point(sampling: str) -> bool:
    """Whether a cell of this sampling holds one of its pixels (else the mean of them all)."""
    return sampling in POINT_SAMPLINGS


@dataclass(frozen=True)
class Grid:
    """A mosaic lattice: cells of ``cell_h`` x ``cell_w`` pixels whose edges lie on rows
    ``phase_y + k * cell_h`` and columns ``phase_x + k * cell_w`` (``0 <= phase < cell``).
    ``sampling`` says whether a cell holds its pixels' mean or one of them (its centre pixel, the
    other centre convention, or its first pixel: :data:`POINT_SAMPLINGS`).

    Cells that are not a whole number of pixels (a mosaic another tool scaled up by a non-integer
    factor, or resized after pixelation): ``pitch`` (h, w) is the exact cell size and ``origin``
    (y, x) where one cell edge lies, both in (fractional) pixels; a cell starts at the first pixel at
    or after each edge ``origin + k * pitch`` (so cells are ``floor(pitch)`` or ``ceil(pitch)`` pixels).
    ``cell_h``, ``cell_w``, ``phase_y``, ``phase_x`` are then the nearest whole-pixel lattice, for
    what needs one; :class:`tessera.mosaic.lattice.Lattice` uses the exact edges. Build one with
    :meth:`fractional`."""

    cell_h: int
    cell_w: int
    phase_y: int = 0
    phase_x: int = 0
    sampling: Sampling = "mean"
    pitch: tuple[float, float] | None = None
    origin: tuple[float, float] = (0.0, 0.0)

    def __post_init__(self) -> None:
        if self.cell_h < 1 or self.cell_w < 1:
            raise ValueError(f"cell size must be at least 1x1 pixel, got {self.cell_h}x{self.cell_w}")
        if not (0 <= self.phase_y < self.cell_h and 0 <= self.phase_x < self.cell_w):
            raise ValueError(
                f"phase ({self.phase_y}, {self.phase_x}) must lie within the cell "
                f"{self.cell_h}x{self.cell_w} (0 <= phase < cell)"
            )
        if self.sampling not in SAMPLINGS:
            raise ValueError(f"sampling must be one of {', '.join(SAMPLINGS)}, got {self.sampling!r}")
        if self.pitch is not None and not all(p >= 1 and 0 <= o < p for p, o in zip(self.pitch, self.origin)):
            raise ValueError(f"pitch {self.pitch} must be at least 1 pixel and origin {self.origin} lie within it")

    @classmethod
    def fractional(cls, pitch_y: float, pitch_x: float, origin_y: float = 0.0, origin_x: float = 0.0,
                   sampling: Sampling = "mean") -> "Grid":
        """A lattice of cells ``pitch_y`` x ``pitch_x`` pixels (any real >= 1) with an edge at
        (``origin_y``, ``origin_x``); a plain whole-pixel Grid when both pitches and origins are whole."""
        py, px = float(pitch_y), float(pitch_x)
        oy, ox = float(origin_y) % py, float(origin_x) % px
        whole = all(abs(v - round(v)) < 1e-9 for v in (py, px, oy, ox))
        ch, cw = max(int(round(py)), 1), max(int(round(px)), 1)
        if whole:
            return cls(ch, cw, int(round(oy)) % ch, int(round(ox)) % cw, sampling)
        return cls(ch, cw, int(np.ceil(oy - 1e-9)) % ch, int(np.ceil(ox - 1e-9)) % cw, sampling, (py, px), (oy, ox))

    def window(self, x0: int, y0: int) -> "Grid":
        """This lattice in the coordinates of a window whose top-left pixel is (x0, y0) of the image it
        was given for (negative offsets: from a window back to the image)."""
        if self.pitch is not None:
            return Grid.fractional(self.pitch[0], self.pitch[1], self.origin[0] - y0, self.origin[1] - x0, self.sampling)
        return Grid(self.cell_h, self.cell_w, (self.phase_y - y0) % self.cell_h, (self.phase_x - x0) % self.cell_w, self.sampling)

    @property
    def cell(self) -> tuple[int, int]:
        return (self.cell_h, self.cell_w)

    @property
    def phase(self) -> tuple[int, int]:
        return (self.phase_y, self.phase_x)


@dataclass
class Region:
    """One mosaicked (or otherwise hidden) region of an image of ``shape`` (H, W).

    box: (x, y, w, h) of the region's bounding box. crop: bool (h, w), True = hidden: the region's
    mask inside its box (nothing outside the box is hidden), so a small region of a big photo holds
    no image-sized array; :meth:`full_mask` and :meth:`mask_in` give the mask over the image or a
    window of it. A box may reach past the image (a region moved by a tracker): the crop is False there.
    grid: the lattice when known (None for blurs and free-form holes). score: confidence 0..1.
    """

    crop: np.ndarray
    box: tuple[int, int, int, int]
    shape: tuple[int, int]
    grid: Grid | None = None
    score: float = 1.0
    kind: str = "mosaic"
    extra: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.crop.dtype != bool or self.crop.shape != (self.box[3], self.box[2]):
            raise ValueError(f"a region's crop must be bool of its box's size {self.box[3]}x{self.box[2]}, got {self.crop.dtype} {self.crop.shape}")

    @classmethod
    def from_mask(cls, mask: np.ndarray, grid: Grid | None = None, score: float = 1.0, kind: str = "mosaic",
                  extra: dict | None = None, *, box: tuple[int, int, int, int] | None = None) -> "Region":
        """The region hidden by a bool (H, W) ``mask`` (its bounding box unless ``box`` says which box,
        inside the image, to keep of it)."""
        mask = np.asarray(mask, bool)
        x, y, w, h = mask_box(mask) if box is None else box
        crop = mask[y : y + h, x : x + w].copy()  # a copy: no view keeps the image-sized mask alive
        return cls(crop, (x, y, w, h), mask.shape[:2], grid, score, kind, {} if extra is None else extra)

    @property
    def area(self) -> int:
        """Hidden pixels."""
        return int(np.count_nonzero(self.crop))

    def mask_in(self, x0: int, y0: int, x1: int, y1: int) -> np.ndarray:
        """bool (y1 - y0, x1 - x0): the region's mask over the window [y0:y1, x0:x1] of the image."""
        out = np.zeros((y1 - y0, x1 - x0), bool)
        self.paint(out, x0, y0)
        return out

    def full_mask(self) -> np.ndarray:
        """bool (H, W): the region's mask over the whole image (an image-sized array: prefer
        :meth:`mask_in` or :meth:`paint`)."""
        return self.mask_in(0, 0, self.shape[1], self.shape[0])

    def paint(self, target: np.ndarray, x0: int = 0, y0: int = 0) -> np.ndarray:
        """OR the region's mask into ``target``, a bool mask of the window of the image whose top-left
        pixel is (x0, y0) (the whole image by default); returns ``target``."""
        x, y, w, h = self.box
        a, b = max(x, x0), max(y, y0)
        c, d = min(x + w, x0 + target.shape[1]), min(y + h, y0 + target.shape[0])
        if c > a and d > b:
            target[b - y0 : d - y0, a - x0 : c - x0] |= self.crop[b - y : d - y, a - x : c - x]
        return target

    def moved(self, dx: int, dy: int, **changes) -> "Region":
        """The region shifted by (dx, dy) pixels (what leaves the image is dropped; the box keeps its
        size), with ``changes`` to its other fields."""
        x, y, w, h = self.box
        H, W = self.shape
        crop = self.crop.copy()
        X, Y = x + dx, y + dy
        crop[: max(-Y, 0)] = False
        crop[max(H - Y, 0) :] = False
        crop[:, : max(-X, 0)] = False
        crop[:, max(W - X, 0) :] = False
        return replace(self, crop=crop, box=(X, Y, w, h), **changes)

    def window(self, x0: int, y0: int, x1: int, y1: int) -> "Region":
        """The region in the coordinates of the window [y0:y1, x0:x1] of its image: the same crop, the
        box and the grid moved by (-x0, -y0), the window's shape. The window holds the region (a crop
        around it; or, with x0, y0 <= 0, a frame around the image: a region found in a crop of
        the image, given back in the image's coordinates)."""
        x, y, w, h = self.box
        grid = None if self.grid is None else self.grid.window(x0, y0)
        return replace(self, box=(x - x0, y - y0, w, h), shape=(y1 - y0, x1 - x0), grid=grid)

    def to_json(self) -> dict:
        out: dict = {"box": [int(v) for v in self.box], "score": round(float(self.score), 4), "kind": self.kind}
        if self.grid is not None:
            out["cell"] = [self.grid.cell_h, self.grid.cell_w]
            out["phase"] = [self.grid.phase_y, self.grid.phase_x]
            out["sampling"] = self.grid.sampling
            if self.grid.pitch is not None:
                out["pitch"] = [round(float(v), 4) for v in self.grid.pitch]
                out["origin"] = [round(float(v), 4) for v in self.grid.origin]
        return out


def mask_box(mask: np.ndarray) -> tuple[int, int, int, int]:
    """Bounding box (x, y, w, h) of a bool mask; (0, 0, 0, 0) when empty."""
    ys, xs = np.nonzero(mask)
    if ys.size == 0:
        return (0, 0, 0, 0)
    return (int(xs.min()), int(ys.min()), int(xs.max() - xs.min() + 1), int(ys.max() - ys.min() + 1))
