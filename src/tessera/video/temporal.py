"""Temporal consistency of restored regions, and a flicker score.

A learned restorer sees one frame at a time, so its guesses jump from frame to frame (flicker)
even where the hidden content barely moves. :class:`TemporalSmoother` makes each frame's guess
continue the previous one:

1. motion: how the hidden content moved since the previous frame, a whole-pixel-or-finer shift:
   the box's displacement for a mosaic that moves with the content, else the phase correlation of
   the pixels around the region (the region itself is masked out: a mosaic fixed in the frame);
2. reuse: when nothing moved and the observed mosaic is unchanged, the previous result is kept as
   it is (no model call: static scenes cost nothing and cannot flicker);
3. blend: otherwise ``alpha`` x the motion-compensated previous result + (1 - alpha) x this frame's
   restoration, then projected onto this frame's mosaic again (every cell still averages to what
   was observed: the blend cannot drift away from the evidence).

``flicker`` measures what this is for: the temporal-difference error in the region against the
truth, mean |(R_t - R_{t-1}) - (T_t - T_{t-1})| over pixels hidden in both frames (grey levels).
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from tessera.mosaic.region import Grid


def flicker(outputs, truths, masks) -> float:
    """Mean temporal-difference error (grey levels) in the masked region over a sequence of frames:
    ``outputs``/``truths`` RGB uint8 frames, ``masks`` bool (H, W) per frame. 0 = the region
    changes over time exactly as the truth does. nan when no two consecutive masks overlap."""
    meter = FlickerMeter()
    for o, t, m in zip(outputs, truths, masks):
        meter.add(o, t, m)
    return meter.value


class FlickerMeter:
    """Streaming :func:`flicker`: ``add`` frames in order, read ``value``."""

    def __init__(self) -> None:
        self.prev: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None
        self.total = 0.0
        self.count = 0

    def add(self, output: np.ndarray, truth: np.ndarray, mask: np.ndarray) -> None:
        o, t, m = output.astype(np.int16), truth.astype(np.int16), np.asarray(mask, bool)
        if self.prev is not None:
            po, pt, pm = self.prev
            both = m & pm
            if both.any():
                err = np.abs((o - po) - (t - pt))[both]
                self.total += float(err.sum())
                self.count += err.size
        self.prev = (o, t, m)

    @property
    def value(self) -> float:
        return self.total / self.count if self.count else float("nan")


@dataclass(frozen=True)
class TemporalConfig:
    """mode: 'blend' (motion-compensated previous result blended in, see the module doc) or 'off'
    (each frame alone). alpha: weight of the previous result (0..1). reuse: largest mean change
    (grey levels) of the observed region for which a still region keeps its previous result.
    refresh: run the restorer on every N-th frame of a track only; in between the previous result,
    moved with the content (with the real pixels that moved into the region), is projected onto
    this frame's cells (no model call) while it agrees with them (98 % of the region's pixels in
    cells of agreement >= 0.5, see agree). agree: per cell, the previous result's weight is alpha x
    exp(-(d / agree)^2), d the mean difference (grey levels) between the moved previous result
    mosaicked with this frame's grid and this frame's cells (None: alpha everywhere). carry_error:
    a result carried more than a quarter of a cell must see the real pixels around the region follow
    the same move to within this many grey levels (mean |difference|), else the frame is restored
    anew (a fast pan with motion blur: carried frames lost 0.3 dB against frame by frame)."""

    mode: str = "blend"
    alpha: float = 0.6
    reuse: float = 1.0
    refresh: int = 4
    agree: float | None = 6.0
    carry_error: float = 2.0

    def __post_init__(self) -> None:
        if self.refresh < 1:
            raise ValueError(f"refresh must be >= 1, got {self.refresh}")
        if self.carry_error < 0:
            raise ValueError(f"carry_error must be >= 0, got {self.carry_error}")
        if self.agree is not None and self.agree <= 0:
            raise ValueError(f"agree must be > 0 (or None), got {self.agree}")
        if self.mode not in ("blend", "off"):
            raise ValueError(f"temporal mode must be 'blend' or 'off', got {self.mode!r}")
        if not 0.0 <= self.alpha < 1.0:
            raise ValueError(f"alpha must be within [0, 1), got {self.alpha}")
        if self.reuse < 0:
            raise ValueError(f"reuse must be >= 0, got {self.reuse}")


def surround_shift(prev: np.ndarray, cur: np.ndarray, mask: np.ndarray) -> tuple[float, float]:
    """(dx, dy) that moves ``prev`` onto ``cur`` (both RGB crops), from the pixels outside
    ``mask`` (phase correlation, sub-pixel). (0, 0) when the surround has too little texture."""
    a0 = cv2.cvtColor(prev, cv2.COLOR_RGB2GRAY).astype(np.float32)
    b0 = cv2.cvtColor(cur, cv2.COLOR_RGB2GRAY).astype(np.float32)
    keep = ~cv2.dilate(mask.astype(np.uint8), np.ones((7, 7), np.uint8)).astype(bool)
    if keep.sum() < 0.2 * mask.size:
        return 0.0, 0.0
    a, b = a0.copy(), b0.copy()
    a[~keep], b[~keep] = float(a0[keep].mean()), float(b0[keep].mean())
    win = cv2.createHanningWindow(a.shape[::-1], cv2.CV_32F)
    (dx, dy), response = cv2.phaseCorrelate(a, b, win)  # a first guess (the flat fill biases it to 0)
    # refine on the surround alone: ECC with a mask (translation) from the guess, on the real pixels
    warp = np.float32([[1, 0, -dx], [0, 1, -dy]])
    try:
        _, warp = cv2.findTransformECC(b0, a0, warp, cv2.MOTION_TRANSLATION,
                                       (cv2.TERM_CRITERIA_EPS | cv2.TERM_CRITERIA_COUNT, 50, 1e-4),
                                       keep.astype(np.uint8), 3)
        return float(-warp[0, 2]), float(-warp[1, 2])
    except cv2.error:
        return (float(dx), float(dy)) if response >= 0.1 else (0.0, 0.0)


def surround_error(prev: np.ndarray, cur: np.ndarray, mask: np.ndarray, dx: float, dy: float) -> float:
    """Mean |difference| (grey levels) between ``prev`` moved by (dx, dy) and ``cur`` on the pixels
    outside ``mask`` (3 px away from it, and away from the crop's edges the move fills in): how well
    the motion predicts the real pixels around a region. inf when too few are left."""
    keep = ~cv2.dilate(mask.astype(np.uint8), np.ones((7, 7), np.uint8)).astype(bool)
    b = int(np.ceil(max(abs(dx), abs(dy)))) + 1
    keep[:b], keep[-b:], keep[:, :b], keep[:, -b:] = False, False, False, False
    if keep.sum() < 0.1 * mask.size:
        return float("inf")
    return float(np.abs(shift_image(prev, dx, dy).astype(np.int16) - cur)[keep].mean())


def shift_image(image: np.ndarray, dx: float, dy: float) -> np.ndarray:
    if abs(dx) < 1e-3 and abs(dy) < 1e-3:
        return image
    M = np.float32([[1, 0, dx], [0, 1, dy]])
    return cv2.warpAffine(image, M, (image.shape[1], image.shape[0]), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


def crop_grid(grid: Grid | None, x0: int, y0: int) -> Grid | None:
    """``grid`` seen from a crop whose corner is (x0, y0) in the picture."""
    if grid is None:
        return None
    return grid.window(x0, y0)


@dataclass
class _State:
    frame: np.ndarray  # the previous input frame (observation)
    output: np.ndarray  # the previous output frame
    mask: np.ndarray
    box: tuple[int, int, int, int]


class TemporalSmoother:
    """Per-track memory of the previous frame; ``step`` turns one frame's restoration into a
    temporally consistent one. ``restore(frame, region) -> RGB`` is only called when needed."""

    def __init__(self, config: TemporalConfig | None = None, moving: bool = False):
        self.config = config or TemporalConfig()
        self.moving = moving
        self.state: _State | None = None
        self.reused = 0
        self.restored = 0
        self.since = 0  # frames carried since the last model call

    def reset(self) -> None:
        self.state = None

    def step(self, frame: np.ndarray, region, restore) -> np.ndarray:
        from tessera.restore.consistency import project

        cfg = self.config
        mask = region.full_mask()  # a video frame's: the states below compare whole frames
        s = self.state
        if cfg.mode == "off" or s is None or s.frame.shape != frame.shape:
            out = restore(frame, region)
            self.restored += 1
            self.state = _State(frame, out, mask, region.box)
            return out
        # 1. motion of the hidden content since the previous frame
        x, y, w, h = region.box
        H, W = mask.shape
        m = max(w, h) // 2 + 8
        x0, y0, x1, y1 = max(x - m, 0), max(y - m, 0), min(x + w + m, W), min(y + h + m, H)
        if self.moving:
            dx, dy = float(x - s.box[0]), float(y - s.box[1])
        else:
            dx, dy = surround_shift(s.frame[y0:y1, x0:x1], frame[y0:y1, x0:x1], (mask | s.mask)[y0:y1, x0:x1])
        # 2. nothing moved and the mosaic looks the same: keep the previous result
        still = abs(dx) < 0.25 and abs(dy) < 0.25
        same = np.array_equal(mask, s.mask)
        if still and same:
            change = float(np.abs(frame[mask].astype(np.int16) - s.frame[mask]).mean()) if mask.any() else 0.0
            if change <= cfg.reuse:
                out = frame.copy()
                out[mask] = s.output[mask]
                self.reused += 1
                self.state = _State(frame, out, mask, region.box)
                return out
        # 3. blend this frame's restoration with the motion-compensated previous one
        prev_crop = shift_image(s.output[y0:y1, x0:x1], dx, dy)
        prev_mask = shift_image(s.mask[y0:y1, x0:x1].astype(np.uint8) * 255, dx, dy) > 254
        mc = mask[y0:y1, x0:x1]
        both = mc & prev_mask
        g = crop_grid(region.grid, x0, y0) if region.kind == "mosaic" else None
        if (self.since < cfg.refresh - 1 and (self._agreement(prev_crop, frame[y0:y1, x0:x1], g)[mc] >= 0.5).mean() >= 0.98
                and self._motion_confirmed(s.frame[y0:y1, x0:x1], frame[y0:y1, x0:x1], (mask | s.mask)[y0:y1, x0:x1], dx, dy, g)):
            # 3'. carried (real pixels that moved in included), no model call
            self.since += 1
            out = self._carried(frame, region, prev_crop, (x0, y0, x1, y1))
            self.state = _State(frame, out, mask, region.box)
            return out
        cur = restore(frame, region)
        self.restored += 1
        self.since = 0
        out = cur.copy()
        if both.any():
            a = cfg.alpha * self._agreement(prev_crop, frame[y0:y1, x0:x1], g)[both][:, None]
            crop = cur[y0:y1, x0:x1].astype(np.float32)
            crop[both] = a * prev_crop[both].astype(np.float32) + (1 - a) * crop[both]
            blended = np.clip(np.rint(crop), 0, 255).astype(np.uint8)
            if g is not None:
                blended = project(blended, frame[y0:y1, x0:x1], mc, g).image
            piece = out[y0:y1, x0:x1]
            piece[mc] = blended[mc]
        self.state = _State(frame, out, mask, region.box)
        return out

    def _agreement(self, prev_crop: np.ndarray, observed: np.ndarray, g: Grid | None) -> np.ndarray:
        """(h, w) in [0, 1] per pixel: how well the moved previous result, mosaicked with this frame's
        grid, matches this frame's cells: exp(-(mean |difference| / agree)^2) per cell. Content
        that did not move as estimated (a moving object under a fixed mosaic) is not blended in."""
        if g is None or self.config.agree is None:
            return np.ones(observed.shape[:2], np.float32)
        from tessera.mosaic.lattice import Lattice

        lat = Lattice(observed.shape[:2], g)
        r = np.abs(lat.means(prev_crop.astype(np.float64)) - lat.values(observed)).mean(axis=2)
        return lat.expand(np.exp(-((r / self.config.agree) ** 2))).astype(np.float32)

    def _motion_confirmed(self, prev: np.ndarray, cur: np.ndarray, mask: np.ndarray, dx: float, dy: float, g: Grid | None) -> bool:
        """Whether a result carried by (dx, dy) can be trusted beyond its cells: a move of less than a
        quarter of a cell leaves the previous result about where it was (the cell check sees it all);
        a longer one transports sub-cell detail the cells cannot check, so the real pixels around the
        region must follow the same move to within ``carry_error`` grey levels (a fast pan with motion
        blur does not: restoring anew is better there). A region that follows content is not checked."""
        if self.moving or g is None or np.hypot(dx, dy) < 0.25 * max(g.cell_h, g.cell_w):
            return True
        return surround_error(prev, cur, mask, dx, dy) <= self.config.carry_error

    def _carried(self, frame: np.ndarray, region, prev_crop: np.ndarray, box) -> np.ndarray:
        """The previous result moved with the content, projected onto this frame's cells."""
        from tessera.restore.consistency import project

        x0, y0, x1, y1 = box
        mc = region.mask_in(x0, y0, x1, y1)
        piece = np.where(mc[..., None], prev_crop, frame[y0:y1, x0:x1])
        g = crop_grid(region.grid, x0, y0)
        if g is not None and region.kind == "mosaic":
            piece = project(piece, frame[y0:y1, x0:x1], mc, g).image
        out = frame.copy()
        out[y0:y1, x0:x1][mc] = piece[mc]
        return out
