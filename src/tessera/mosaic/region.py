"""The typed description of a mosaic: its lattice (Grid) and where it is (Region)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import numpy as np

Sampling = Literal["mean", "centre"]


@dataclass(frozen=True)
class Grid:
    """A mosaic lattice: cells of ``cell_h`` x ``cell_w`` pixels whose edges lie on rows
    ``phase_y + k * cell_h`` and columns ``phase_x + k * cell_w`` (``0 <= phase < cell``).
    ``sampling`` says whether a cell holds its pixels' mean or its centre pixel."""

    cell_h: int
    cell_w: int
    phase_y: int = 0
    phase_x: int = 0
    sampling: Sampling = "mean"

    def __post_init__(self) -> None:
        if self.cell_h < 1 or self.cell_w < 1:
            raise ValueError(f"cell size must be at least 1x1 pixel, got {self.cell_h}x{self.cell_w}")
        if not (0 <= self.phase_y < self.cell_h and 0 <= self.phase_x < self.cell_w):
            raise ValueError(
                f"phase ({self.phase_y}, {self.phase_x}) must lie within the cell "
                f"{self.cell_h}x{self.cell_w} (0 <= phase < cell)"
            )
        if self.sampling not in ("mean", "centre"):
            raise ValueError(f"sampling must be 'mean' or 'centre', got {self.sampling!r}")

    def window(self, x0: int, y0: int) -> "Grid":
        """This lattice in the coordinates of a window whose top-left pixel is (x0, y0) of the image it
        was given for (negative offsets: from a window back to the image)."""
        return Grid(self.cell_h, self.cell_w, (self.phase_y - y0) % self.cell_h, (self.phase_x - x0) % self.cell_w, self.sampling)

    @property
    def cell(self) -> tuple[int, int]:
        return (self.cell_h, self.cell_w)

    @property
    def phase(self) -> tuple[int, int]:
        return (self.phase_y, self.phase_x)


@dataclass
class Region:
    """One mosaicked (or otherwise hidden) region of an image.

    mask: bool (H, W), True = hidden. box: (x, y, w, h) of the mask's bounding box.
    grid: the lattice when known (None for blurs and free-form holes). score: confidence 0..1.
    """

    mask: np.ndarray
    box: tuple[int, int, int, int]
    grid: Grid | None = None
    score: float = 1.0
    kind: str = "mosaic"
    extra: dict = field(default_factory=dict)

    def to_json(self) -> dict:
        out: dict = {"box": [int(v) for v in self.box], "score": round(float(self.score), 4), "kind": self.kind}
        if self.grid is not None:
            out["cell"] = [self.grid.cell_h, self.grid.cell_w]
            out["phase"] = [self.grid.phase_y, self.grid.phase_x]
            out["sampling"] = self.grid.sampling
        return out


def mask_box(mask: np.ndarray) -> tuple[int, int, int, int]:
    """Bounding box (x, y, w, h) of a bool mask; (0, 0, 0, 0) when empty."""
    ys, xs = np.nonzero(mask)
    if ys.size == 0:
        return (0, 0, 0, 0)
    return (int(xs.min()), int(ys.min()), int(xs.max() - xs.min() + 1), int(ys.max() - ys.min() + 1))
