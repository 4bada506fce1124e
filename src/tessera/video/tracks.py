"""Regions over time: per-frame detections linked into tracks, streaming.

- linking: a region joins the open track whose last box overlaps it most (IoU >= ``iou``);
- gaps: a track missing for at most ``max_gap`` frames is filled in (the box interpolated between
  its two ends, the mask of the nearer end moved with it), so a mosaic does not pop in and out;
- false detections: a track seen in fewer than ``min_length`` frames is dropped;
- scene cuts: :func:`is_scene_cut` (colour-histogram distance) closes every open track;
- one grid per track: the cell size and sampling are voted over all its frames (weighted by
  score and area), and so is the phase, in the frame of the picture (a mosaic fixed in the frame)
  and in the frame of the region's box (a mosaic that moves with the content): the reference that
  agrees best wins and gives every frame its phase. A vote over many frames is far more reliable
  than one frame's estimate.

Streaming: :class:`Tracker` holds only the last ``delay`` frames' regions; ``pop`` hands out
frames whose tracks can no longer change.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field, replace

import cv2
import numpy as np

from tessera.mosaic.region import Grid, Region


def box_iou(a: tuple[int, int, int, int], b: tuple[int, int, int, int]) -> float:
    ax, ay, aw, ah = a
    bx, by, bw, bh = b
    iw = max(0, min(ax + aw, bx + bw) - max(ax, bx))
    ih = max(0, min(ay + ah, by + bh) - max(ay, by))
    inter = iw * ih
    union = aw * ah + bw * bh - inter
    return inter / union if union > 0 else 0.0


def colour_histogram(image: np.ndarray) -> np.ndarray:
    """A small normalised HSV histogram of a (downscaled) frame, for scene-cut tests."""
    small = cv2.resize(image, (64, 36), interpolation=cv2.INTER_AREA) if image.shape[1] > 64 else image
    hsv = cv2.cvtColor(small, cv2.COLOR_RGB2HSV)
    h = cv2.calcHist([hsv], [0, 1, 2], None, [8, 4, 4], [0, 180, 0, 256, 0, 256]).ravel()
    return h / max(float(h.sum()), 1.0)


def is_scene_cut(prev_hist: np.ndarray | None, hist: np.ndarray, threshold: float = 0.5) -> bool:
    """True when two frames' histograms differ by more than ``threshold`` (half the total
    variation distance, 0..1): a new shot, where no region continues."""
    if prev_hist is None:
        return False
    return 0.5 * float(np.abs(prev_hist - hist).sum()) > threshold


@dataclass(frozen=True)
class TrackConfig:
    """iou: least box overlap to continue a track. max_gap: frames a track may miss and still be
    filled in. min_length: frames a track needs to be kept (1 keeps single-frame detections).
    cut: scene-cut threshold (see :func:`is_scene_cut`; 1.0 disables)."""

    iou: float = 0.3
    max_gap: int = 3
    min_length: int = 2
    cut: float = 0.5

    def __post_init__(self) -> None:
        if not 0.0 < self.iou <= 1.0:
            raise ValueError(f"iou must be within (0, 1], got {self.iou}")
        if self.max_gap < 0 or self.min_length < 1:
            raise ValueError(f"max_gap must be >= 0 and min_length >= 1, got {self.max_gap}, {self.min_length}")
        if not 0.0 < self.cut <= 1.0:
            raise ValueError(f"cut must be within (0, 1], got {self.cut}")


@dataclass
class Track:
    """A region followed over frames: ``first``/``last`` frame indices, ``count`` frames with a
    detection (gap-filled frames not counted), and the votes for its one grid."""

    id: int
    first: int
    last: int
    box: tuple[int, int, int, int]
    count: int = 1
    closed: bool = False
    kinds: Counter = field(default_factory=Counter)
    cells: Counter = field(default_factory=Counter)
    fixed: Counter = field(default_factory=Counter)  # phase in the picture's frame
    relative: Counter = field(default_factory=Counter)  # phase relative to the box's corner

    def vote(self, region: Region) -> None:
        w = max(float(region.score), 1e-3) * max(region.box[2] * region.box[3], 1)
        self.kinds[region.kind] += w
        g = region.grid
        if g is None:
            return
        self.cells[(g.cell_h, g.cell_w, g.sampling)] += w
        self.fixed[(g.cell_h, g.cell_w, g.phase_y, g.phase_x)] += w
        x, y = region.box[:2]
        self.relative[(g.cell_h, g.cell_w, (g.phase_y - y) % g.cell_h, (g.phase_x - x) % g.cell_w)] += w

    def grid_for(self, box: tuple[int, int, int, int]) -> Grid | None:
        """The track's one grid, with the phase this frame's box gives it (see the module doc)."""
        if not self.cells:
            return None
        (ch, cw, sampling), _ = self.cells.most_common(1)[0]
        fixed = {k: v for k, v in self.fixed.items() if k[:2] == (ch, cw)}
        moving = {k: v for k, v in self.relative.items() if k[:2] == (ch, cw)}
        best_fixed = max(fixed.items(), key=lambda kv: kv[1])
        best_moving = max(moving.items(), key=lambda kv: kv[1])
        if best_fixed[1] >= best_moving[1]:
            py, px = best_fixed[0][2:]
        else:
            x, y = box[:2]
            py, px = (best_moving[0][2] + y) % ch, (best_moving[0][3] + x) % cw
        return Grid(ch, cw, py, px, sampling)

    @property
    def follows_content(self) -> bool:
        """True when the mosaic's grid moves with the region's box (it follows the content)."""
        if not self.fixed:
            return False
        return max(self.relative.values(), default=0.0) > max(self.fixed.values())

    @property
    def kind(self) -> str:
        return self.kinds.most_common(1)[0][0] if self.kinds else "mosaic"


class Tracker:
    """Links each frame's regions into tracks, in frame order, with ``delay`` frames of patience.

    ``push(index, regions, cut)`` adds a frame; ``pop(final=False)`` returns ``[(index, [(track_id,
    Region)])]`` for frames that can no longer change (all, when ``final``), each region carrying
    its track's voted grid. ``tracks`` maps id -> :class:`Track` (closed tracks are forgotten once
    their frames have been handed out).
    """

    def __init__(self, config: TrackConfig | None = None):
        self.config = config or TrackConfig()
        self.tracks: dict[int, Track] = {}
        self.frames: dict[int, list[tuple[int, Region, bool]]] = {}  # index -> (track id, region, filled)
        self.next_id = 0
        self.latest = -1
        self.all_tracks: list[Track] = []  # every kept track, for reports

    @property
    def delay(self) -> int:
        return max(self.config.max_gap + 1, self.config.min_length)

    def push(self, index: int, regions: list[Region], cut: bool = False) -> None:
        cfg = self.config
        if index <= self.latest:
            raise ValueError(f"frames must be pushed in order: {index} after {self.latest}")
        self.latest = index
        self.frames[index] = []
        for t in self.tracks.values():
            if cut or index - t.last > cfg.max_gap + 1:
                t.closed = True
        open_tracks = [t for t in self.tracks.values() if not t.closed]
        pairs = sorted(
            ((box_iou(t.box, r.box), ti, ri) for ti, t in enumerate(open_tracks) for ri, r in enumerate(regions)),
            reverse=True,
        )
        used_t: set[int] = set()
        assigned: dict[int, Track] = {}
        for iou, ti, ri in pairs:
            if iou < cfg.iou:
                break
            if ti in used_t or ri in assigned:
                continue
            used_t.add(ti)
            assigned[ri] = open_tracks[ti]
        for ri, region in enumerate(regions):
            t = assigned.get(ri)
            if t is None:
                t = Track(self.next_id, index, index, region.box)
                self.next_id += 1
                self.tracks[t.id] = t
            else:
                self._fill_gap(t, index, region)
                t.count += 1
            t.last = index
            t.box = region.box
            t.vote(region)
            self.frames[index].append((t.id, region, False))

    def _fill_gap(self, t: Track, index: int, region: Region) -> None:
        """Frames t.last+1 .. index-1 get the region of the nearer end, moved along the box path."""
        if index - t.last <= 1:
            return
        before = next((r for tid, r, _ in self.frames.get(t.last, []) if tid == t.id), None)
        for k in range(t.last + 1, index):
            if k not in self.frames:
                continue
            a = (k - t.last) / (index - t.last)
            src = before if (a < 0.5 and before is not None) else region
            x0, y0, w0, h0 = t.box
            x1, y1, w1, h1 = region.box
            bx, by = round(x0 + a * (x1 - x0)), round(y0 + a * (y1 - y0))
            moved = src.moved(bx - src.box[0], by - src.box[1], extra={"filled": True})
            self.frames[k].append((t.id, moved, True))

    def pop(self, final: bool = False) -> list[tuple[int, list[tuple[int, Region]]]]:
        ready = sorted(k for k in self.frames if final or k <= self.latest - self.delay)
        out = []
        for k in ready:
            items = []
            for tid, region, _filled in self.frames.pop(k):
                t = self.tracks[tid]
                if t.count < self.config.min_length and (t.closed or final or self.latest - t.last > self.config.max_gap):
                    continue  # a detection that did not persist: dropped
                grid = t.grid_for(region.box) if t.kind == "mosaic" else None
                kind = t.kind
                if kind == "mosaic" and grid is None:
                    kind = region.kind
                items.append((tid, replace(region, grid=grid if grid is not None else region.grid, kind=kind)))
            out.append((k, items))
        # forget closed tracks whose frames are all handed out
        oldest = min(self.frames) if self.frames else self.latest + 1
        for tid in [tid for tid, t in self.tracks.items() if (t.closed or final) and t.last < oldest]:
            t = self.tracks.pop(tid)
            if t.count >= self.config.min_length:
                self.all_tracks.append(t)
        return out
