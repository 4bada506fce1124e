"""Video: the image stages per frame, regions tracked over time, temporally consistent restoration.

    decode (tessera.io.video) -> detect (every ``detect_every`` frames on the whole picture, in
    between only around the regions being tracked) -> tracks (tessera.video.tracks: linked, gaps
    filled, one-frame detections dropped, scene cuts, one grid per track) -> clips of up to
    ``clip_length`` frames per track -> a ClipRestorer (default: TemporalRestorer, restore_image per
    frame + tessera.video.temporal) -> compose -> encode, every other stream copied.

Everything streams: memory holds about ``clip_length + detect_every + max_gap`` frames, whatever
the length of the video.

The seam for other restorers (e.g. multi-frame recovery, tessera.video.multiframe): anything
callable as ``restorer(clip: TrackClip) -> list[np.ndarray]`` (one RGB frame per clip frame; only
the pixels inside each region of ``clip.regions`` are used), passed as ``restore_video(...,
restorer=...)`` or ``restore_frames(..., restorer=...)``; an object with ``restore_clip`` (the
crop-level :class:`tessera.restore.restorer.ClipRestorer`) is accepted too (:class:`CropClipAdapter`). Clips of one track arrive in order
(``clip.first`` says whether the track starts here); ``clip.follows_content`` says whether the
mosaic's grid moves with the region (else it is fixed in the picture).

Restoration is imagination, not recovery: restored pixels are a plausible guess.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Protocol

import numpy as np

from tessera.io.video import EncodeConfig, Frame, VideoInfo, transcode
from tessera.mosaic.region import Grid, Region, mask_box
from tessera.video.temporal import TemporalConfig, TemporalSmoother, crop_grid
from tessera.video.tracks import TrackConfig, Tracker, box_iou, colour_histogram, is_scene_cut


@dataclass(frozen=True)
class VideoConfig:
    """detect_every: run detection on the whole frame every N frames (and at scene cuts); in
    between only around the regions being tracked (1 = whole frame every frame). clip_length:
    frames of one track handed to a custom or frame-by-frame restorer at a time. track / temporal:
    see their modules.
    multiframe: 'auto' wraps the default restorer in
    :class:`tessera.video.multiframe.MultiframeRestorer` (content moving under a mosaic fixed in the
    picture is recovered from all frames of a clip of ``multiframe_clip`` frames; elsewhere the
    frame-by-frame restoration with temporal smoothing is kept as it is); 'off': never.
    multiframe_overlap: consecutive multi-frame clips share this many frames, whose outputs cross-fade
    from the earlier clip's solve to the later one's (without it the two solves meet with a jump: at a
    clip's last frames the content about to come out from under the mosaic has not been seen yet)."""

    detect_every: int = 4
    clip_length: int = 8
    track: TrackConfig = field(default_factory=TrackConfig)
    temporal: TemporalConfig = field(default_factory=TemporalConfig)
    multiframe: str = "auto"
    multiframe_clip: int = 32
    multiframe_overlap: int = 4

    def __post_init__(self) -> None:
        if not 0 <= self.multiframe_overlap <= self.multiframe_clip // 2:
            raise ValueError(f"multiframe_overlap must lie in [0, multiframe_clip / 2], got {self.multiframe_overlap}")
        if self.detect_every < 1:
            raise ValueError(f"detect_every must be >= 1, got {self.detect_every}")
        if self.clip_length < 1 or self.multiframe_clip < 2:
            raise ValueError(f"need clip_length >= 1 and multiframe_clip >= 2, got {self.clip_length}, {self.multiframe_clip}")
        if self.multiframe not in ("off", "auto"):
            raise ValueError(f"multiframe must be 'off' or 'auto', got {self.multiframe!r}")


@dataclass
class TrackClip:
    """Consecutive frames of one track: ``frames`` RGB uint8 as decoded, ``regions`` the track's
    region in each (mask, box, and the track's one grid), ``indices`` the frame numbers.
    ``first``: the track starts in this clip. ``follows_content``: the grid moves with the box."""

    track_id: int
    indices: list[int]
    frames: list[np.ndarray]
    regions: list[Region]
    first: bool = True
    follows_content: bool = False


class ClipRestorer(Protocol):
    def __call__(self, clip: TrackClip) -> list[np.ndarray]: ...


class TemporalRestorer:
    """The default :class:`ClipRestorer`: ``restore_image`` on each frame's region (the image
    library's model, blend and mosaic consistency; ``config`` a
    :class:`tessera.restore.pipeline.RestoreConfig`, its restorer built once), made temporally
    consistent by :class:`tessera.video.temporal.TemporalSmoother` (one per track).

    Cheap per frame: only the region's context box is restored (not the whole frame), and what the
    image pipeline decides per image is decided once per track, on its first frame: the cell
    sampling (``sampling='auto'`` restores under both) and the model a routing restorer picks
    (``auto``: a face check on every crop)."""

    def __init__(self, config=None, temporal: TemporalConfig | None = None, restorer=None):
        from tessera.restore.pipeline import RestoreConfig

        self.config = config or RestoreConfig()
        self.temporal = temporal or TemporalConfig()
        self.restorer = restorer if restorer is not None else self.config.restorer()
        self.smoothers: dict[int, tuple[TemporalSmoother, int]] = {}
        self.decided: dict[int, tuple[str | None, object]] = {}  # track -> (sampling, restorer)
        self.model_calls = 0
        self.reused = 0

    def _restore(self, frame: np.ndarray, region: Region, track: int = -1) -> np.ndarray:
        from tessera.restore.pipeline import context_box, restore_image

        self.model_calls += 1
        cfg, restorer = self.config, self.restorer
        sampling, chosen = self.decided.get(track, (None, None))
        if chosen is not None:
            restorer = chosen
            if sampling is not None and region.grid is not None:
                cfg, region = replace(cfg, sampling=None), replace(region, grid=replace(region.grid, sampling=sampling))
        # the region's context box only: restore_image crops the same box itself, so this is exact
        x0, y0, x1, y1 = context_box(region.box, region.shape, cfg.context)
        res = restore_image(frame[y0:y1, x0:x1], regions=[region.window(x0, y0, x1, y1)], config=cfg, restorer=restorer)
        if chosen is None and track >= 0:
            self.decided[track] = self._decisions(res)
        out = frame.copy()
        out[y0:y1, x0:x1] = res.image
        return out

    def _decisions(self, res) -> tuple[str | None, object]:
        """What the first frame of a track decided: its sampling (when 'auto') and its model."""
        from tessera.restore.restorer import RoutingRestorer

        g = res.regions[0].grid if res.regions else None
        sampling = g.sampling if g is not None and self.config.sampling == "auto" else None
        r = self.restorer
        if isinstance(r, RoutingRestorer) and r.routes:
            r = r.faces if r.routes[-1] == "faces" else r.scenes
        return sampling, r

    def __call__(self, clip: TrackClip) -> list[np.ndarray]:
        sm, last = self.smoothers.get(clip.track_id, (None, -2))
        if sm is None or clip.first or clip.indices[0] != last + 1:
            sm = TemporalSmoother(self.temporal, moving=clip.follows_content)
        outs = []
        tid = clip.track_id
        for frame, region in zip(clip.frames, clip.regions):
            before = sm.reused
            outs.append(sm.step(frame, region, lambda f, r: self._restore(f, r, tid)))
            self.reused += sm.reused - before
        self.smoothers[tid] = (sm, clip.indices[-1])
        # forget tracks that cannot continue (bounded memory on long videos)
        for t in [t for t, (_, l) in self.smoothers.items() if l < clip.indices[0] - 64]:
            del self.smoothers[t]
            self.decided.pop(t, None)
        return outs


class CropClipAdapter:
    """Runs a :class:`tessera.restore.restorer.ClipRestorer` (``restore_clip(frames, masks, grid,
    kind)`` on equally sized crops) as this pipeline's clip restorer: each clip is cut to one box
    (the union of its regions plus ``context`` pixels) and handed over in runs of frames that share
    one grid in that box (all of them for a mosaic fixed in the picture)."""

    def __init__(self, clip_restorer, context: int = 32):
        self.inner = clip_restorer
        self.context = context
        self.model_calls = 0

    def __call__(self, clip: TrackClip) -> list[np.ndarray]:
        H, W = clip.frames[0].shape[:2]
        union = np.zeros((H, W), bool)
        for r in clip.regions:
            r.paint(union)
        x, y, w, h = mask_box(union)
        c = self.context
        x0, y0, x1, y1 = max(x - c, 0), max(y - c, 0), min(x + w + c, W), min(y + h + c, H)
        grids = [crop_grid(r.grid, x0, y0) for r in clip.regions]
        outs = [f.copy() for f in clip.frames]
        i = 0
        while i < len(grids):
            j = i
            while j + 1 < len(grids) and grids[j + 1] == grids[i]:
                j += 1
            crops = [clip.frames[k][y0:y1, x0:x1] for k in range(i, j + 1)]
            masks = [clip.regions[k].mask_in(x0, y0, x1, y1) for k in range(i, j + 1)]
            restored = self.inner.restore_clip(crops, masks, grids[i], clip.regions[i].kind)
            self.model_calls += 1
            for k, img in zip(range(i, j + 1), restored):
                outs[k][y0:y1, x0:x1] = img
            i = j + 1
        return outs


@dataclass
class FrameResult:
    """One output frame: the decoded ``frame``, the ``image`` to write, and the regions found in it
    as (track id, Region); ``mask`` is their union (True = changed/synthesized)."""

    frame: Frame
    image: np.ndarray
    regions: list[tuple[int, Region]]
    recovered: np.ndarray | None = None

    @property
    def mask(self) -> np.ndarray:
        m = np.zeros(self.image.shape[:2], bool)
        for _, r in self.regions:
            r.paint(m)
        return m

    def marks(self) -> np.ndarray:
        """uint8 (H, W): 0 unchanged, 128 recovered (computed from the other frames by multi-frame
        recovery), 255 imagined (a plausible guess)."""
        m = self.mask
        out = (m * np.uint8(255)).astype(np.uint8)
        if self.recovered is not None:
            out[self.recovered & m] = 128
        return out


@dataclass
class VideoReport:
    """What a video run did: the input's info, frames written, tracks kept (id, first, last,
    frames, kind, grid), model calls, seconds and frames per second; pixels restored over all
    frames and how many of them were recovered (multi-frame) rather than imagined."""

    info: VideoInfo
    frames: int = 0
    tracks: list[dict] = field(default_factory=list)
    model_calls: int = 0
    seconds: float = 0.0
    synthesized_pixels: int = 0
    recovered_pixels: int = 0

    @property
    def fps(self) -> float:
        return self.frames / self.seconds if self.seconds > 0 else 0.0

    @property
    def recovered_fraction(self) -> float:
        """Of all restored pixels (summed over frames), the fraction computed from other frames."""
        return self.recovered_pixels / self.synthesized_pixels if self.synthesized_pixels else 0.0


# ----------------------------------------------------------------------------- detection + tracks

Detector = Callable[[np.ndarray, "Sequence[tuple[int, int, int, int]] | None"], list[Region]]


def _grow(box, shape, margin: float = 0.5, least: int = 16) -> tuple[int, int, int, int]:
    x, y, w, h = box
    H, W = shape
    m = int(max(w, h) * margin) + least
    x0, y0 = max(x - m, 0), max(y - m, 0)
    return x0, y0, min(x + w + m, W), min(y + h + m, H)


def mosaic_detector(config=None, model=None) -> Detector:
    """``detector(image, boxes)``: :func:`tessera.detect.mosaics.detect` on the whole image
    (``boxes`` None) or only inside the given boxes (grown by half their size), in image coordinates."""
    from tessera.detect.mosaics import DetectConfig, detect, load_detector

    cfg = config or DetectConfig()
    net = model if model is not None else load_detector(cfg.weights)

    def run(image: np.ndarray, boxes=None) -> list[Region]:
        if boxes is None:
            return detect(image, config=cfg, model=net)
        H, W = image.shape[:2]
        found: list[Region] = []
        for box in boxes:
            x0, y0, x1, y1 = _grow(box, (H, W))
            for r in detect(image[y0:y1, x0:x1], config=cfg, model=net):
                reg = replace(r.window(-x0, -y0, W - x0, H - y0), extra=dict(r.extra))  # back in the image's coordinates
                same = next((i for i, o in enumerate(found) if box_iou(o.box, reg.box) > 0.5), None)
                if same is None:
                    found.append(reg)
                elif reg.area > found[same].area:
                    found[same] = reg
        return found

    return run


def mask_detector(mask: np.ndarray, grid: Grid | None = None, kind: str = "auto") -> Detector:
    """A user's fixed mask as every frame's regions (the grid estimated per frame, then voted per track)."""
    from tessera.restore.pipeline import regions_from_mask

    mask = np.asarray(mask, bool)

    def run(image: np.ndarray, boxes=None) -> list[Region]:
        if mask.shape != image.shape[:2]:
            raise ValueError(f"mask is {mask.shape[1]}x{mask.shape[0]} but the video is {image.shape[1]}x{image.shape[0]}")
        return regions_from_mask(image, mask, grid, kind) if mask.any() else []  # type: ignore[arg-type]

    return run


def track_regions(frames: Iterable[Frame], detector: Detector, config: VideoConfig | None = None) -> Iterator[tuple[Frame, list[tuple[int, Region]]]]:
    """Detect and track, streaming: yields (frame, [(track id, Region)]) in order, each frame
    ``tracker.delay`` frames after it came in. The tracker is available as ``.tracker`` on the
    generator's result only through :func:`track_regions_with`; use that to report tracks."""
    yield from track_regions_with(Tracker((config or VideoConfig()).track), frames, detector, config)


def track_regions_with(tracker: Tracker, frames: Iterable[Frame], detector: Detector, config: VideoConfig | None = None):
    cfg = config or VideoConfig()
    window: dict[int, Frame] = {}
    prev_hist = None
    since_key = cfg.detect_every
    held: list[tuple[Region, float]] = []  # the latest detections, with their cells' noise then
    for f in frames:
        hist = colour_histogram(f.image)
        cut = is_scene_cut(prev_hist, hist, cfg.track.cut)
        prev_hist = hist
        if cut or since_key >= cfg.detect_every:
            regions = detector(f.image, None)
            held = [(r, cell_noise(f.image, r)) for r in regions]
            since_key = 1
        else:
            regions, held = _between_keys(f.image, detector, held, tracker)
            since_key += 1
        tracker.push(f.index, regions, cut)
        window[f.index] = f
        for idx, items in tracker.pop():
            yield window.pop(idx), items
    for idx, items in tracker.pop(final=True):
        yield window.pop(idx), items


FLAT_CELLS = 30.0  # mean within-cell variance (grey levels^2) of a mosaic clean enough to be held without detection


def _between_keys(image: np.ndarray, detector: Detector, held: list[tuple[Region, float]], tracker: Tracker):
    """A frame between two whole-frame detections: a mosaic whose cells were flat when it was
    detected and still are is taken to be where it was (no detection); elsewhere detection runs around the
    regions held and the open tracks. Returns (regions, what to hold for the next frame)."""
    kept, boxes, fresh = [], [], []
    for r, noise in held:
        if noise <= FLAT_CELLS and cell_noise(image, r) <= 2.0 * noise + 4.0:
            kept.append((r, noise))
        else:
            boxes.append(r.box)
    for t in tracker.tracks.values():  # also where the open tracks are now
        if not t.closed and all(box_iou(t.box, b) < 0.5 for b in boxes + [r.box for r, _ in kept]):
            boxes.append(t.box)
    if boxes:
        fresh = [(r, cell_noise(image, r)) for r in detector(image, boxes)]
        fresh = [(r, n) for r, n in fresh if all(box_iou(r.box, k.box) < 0.5 for k, _ in kept)]
    both = kept + fresh
    return [r for r, _ in both], both


def cell_noise(image: np.ndarray, region: Region) -> float:
    """Mean variance (grey levels squared) of the pixels inside the region's cells that lie entirely
    inside its mask: about 0 for a clean mosaic, the codec's noise for a compressed one, large once
    the picture shows through. inf without a grid or such cells."""
    from tessera.mosaic.lattice import Lattice

    if region.grid is None or region.kind != "mosaic":
        return float("inf")
    x, y, w, h = region.box
    crop = image[y : y + h, x : x + w].astype(np.float32)
    lat = Lattice((h, w), crop_grid(region.grid, x, y))
    active = lat.inside(region.crop)
    if not active.any():
        return float("inf")
    var = np.maximum(lat.means(crop * crop) - lat.means(crop) ** 2, 0.0).mean(axis=2)
    return float(var[active].mean())


def _track_summary(tracker: Tracker) -> list[dict]:
    out = []
    for t in sorted(tracker.all_tracks, key=lambda t: t.id):
        g = t.grid_for(t.box) if t.kind == "mosaic" else None
        d = {"id": t.id, "first": t.first, "last": t.last, "frames": t.count, "kind": t.kind, "follows_content": t.follows_content}
        if g is not None:
            d.update(cell=[g.cell_h, g.cell_w], sampling=g.sampling)
        out.append(d)
    return out


# ----------------------------------------------------------------------------- restoration


def _restore_chunk(chunk, restorer: ClipRestorer, started: set[int], tracker: Tracker) -> Iterator[FrameResult]:
    outputs = [f.image.copy() for f, _ in chunk]
    recovered: list[np.ndarray | None] = [None] * len(chunk)
    by_track: dict[int, list[int]] = {}
    for i, (_, items) in enumerate(chunk):
        for tid, _ in items:
            by_track.setdefault(tid, []).append(i)
    for tid in sorted(by_track):
        pos = by_track[tid]
        # a track with a hole inside the chunk is handed over as separate runs of consecutive frames
        runs, run = [], [pos[0]]
        for p in pos[1:]:
            if p == run[-1] + 1:
                run.append(p)
            else:
                runs.append(run)
                run = [p]
        runs.append(run)
        t = tracker.tracks.get(tid) or next((x for x in tracker.all_tracks if x.id == tid), None)
        for run in runs:
            regions = [next(r for k, r in chunk[i][1] if k == tid) for i in run]
            clip = TrackClip(
                tid, [chunk[i][0].index for i in run], [chunk[i][0].image for i in run], regions,
                first=tid not in started, follows_content=bool(t and t.follows_content),
            )
            started.add(tid)
            restored = restorer(clip)
            if len(restored) != len(run):
                raise RuntimeError(f"the restorer returned {len(restored)} frames for a clip of {len(run)}")
            found = getattr(restorer, "last_recovered", None)  # multi-frame: which pixels it computed
            for k, (i, region, img) in enumerate(zip(run, regions, restored)):
                mask = region.full_mask()
                outputs[i][mask] = np.asarray(img)[mask]
                if found is not None:
                    recovered[i] = (found[k] & mask) | (recovered[i] if recovered[i] is not None else False)
    for (frame, items), out, rec in zip(chunk, outputs, recovered):
        yield FrameResult(frame, out, items, rec)


MULTIFRAME_BYTES = 256 * 2**20  # one copy of a multi-frame clip's frames (the pipeline holds a few)


@dataclass
class _Plan:
    """What one restoration run needs, built once from the caller's arguments."""

    config: VideoConfig
    detector: Detector
    restorer: ClipRestorer
    multiframe: bool  # the default restorer wrapped in multi-frame recovery

    def chunk(self, shape: tuple[int, ...]) -> int:
        """Frames handed to the restorer at a time: multi-frame recovery needs many, as many as
        ``multiframe_clip`` while they fit in MULTIFRAME_BYTES (a 4K clip is shorter)."""
        cfg = self.config
        if not self.multiframe:
            return cfg.clip_length
        fit = MULTIFRAME_BYTES // max(int(np.prod(shape)), 1)
        return int(max(min(cfg.multiframe_clip, fit), min(cfg.clip_length, cfg.multiframe_clip), 2))


def _plan(restore_config=None, mask: np.ndarray | None = None, grid: Grid | None = None, config: VideoConfig | None = None,
          detect_config=None, restorer: ClipRestorer | None = None, **options) -> _Plan:
    from tessera.restore.pipeline import RestoreConfig

    cfg = config or VideoConfig()
    rcfg = replace(restore_config or RestoreConfig(), **options)
    kind = rcfg.kind
    if mask is not None:
        detector = mask_detector(mask, grid, kind)
    else:
        detector = mosaic_detector(detect_config)
        if grid is not None or kind != "auto":
            detector = _known(detector, grid, kind if kind != "auto" else "mosaic")
    multiframe = restorer is None and cfg.multiframe == "auto"
    return _Plan(cfg, detector, _clip_restorer(restorer, rcfg, cfg), multiframe)


def _known(base: Detector, grid: Grid | None, kind: str) -> Detector:
    """The user knows what hides the detected regions (and maybe its grid)."""

    def detector(image, boxes=None):
        return [replace(r, kind=kind, grid=(grid or r.grid) if kind == "mosaic" else None) for r in base(image, boxes)]

    return detector


def _clip_restorer(restorer, rcfg, cfg: VideoConfig):
    if restorer is None:
        base = TemporalRestorer(rcfg, cfg.temporal)
        if cfg.multiframe == "off":
            return base
        from tessera.video.multiframe import MultiframeRestorer

        return MultiframeRestorer(base.restorer, fallback=base, overlap=cfg.multiframe_overlap)
    if hasattr(restorer, "restore_clip"):
        return CropClipAdapter(restorer, rcfg.context)
    return restorer


def _run(frames: Iterable[Frame], plan: _Plan, tracker: Tracker) -> Iterator[FrameResult]:
    """Chunks of frames restored in order. With multi-frame recovery, consecutive chunks share
    ``multiframe_overlap`` frames: those are held back until the next chunk is restored and their
    outputs cross-fade from the earlier chunk's to the later one's (:func:`_cross_fade`); a last
    chunk shorter than the others is solved together with frames of the one before (whose outputs,
    already written, are not changed)."""
    started: set[int] = set()
    chunk: list = []
    held: list[FrameResult] = []
    before: list = []  # the chunk restored last
    overlap = plan.config.multiframe_overlap if plan.multiframe else 0
    size = 0
    for item in track_regions_with(tracker, frames, plan.detector, plan.config):
        chunk.append(item)
        size = plan.chunk(item[0].image.shape)
        if len(chunk) >= size:
            out = _cross_fade(held, list(_restore_chunk(chunk, plan.restorer, started, tracker)))
            keep = min(overlap, size // 2)
            yield from out[: len(out) - keep]
            held, before, chunk = out[len(out) - keep :], chunk, chunk[len(chunk) - keep :]
    if len(chunk) > len(held):
        back = max(min(size - len(chunk), len(before) - len(held)), 0) if overlap else 0
        extra = before[len(before) - len(held) - back : len(before) - len(held)]
        yield from _cross_fade(held, list(_restore_chunk(extra + chunk, plan.restorer, started, tracker))[len(extra) :])
    else:
        yield from held


def _cross_fade(held: list[FrameResult], results: list[FrameResult]) -> list[FrameResult]:
    """``results`` with its first ``len(held)`` frames (restored before, as ``held``) blended from the
    held output to the new one, the new one's weight rising linearly (1 / (n + 1) ... n / (n + 1));
    each blended region projected onto its cells again (re-mosaicking gives the mosaic back); a pixel
    stays marked recovered where both outputs recovered it."""
    from tessera.restore.consistency import project

    n = len(held)
    out = list(results)
    for j, (old, new) in enumerate(zip(held, results)):
        if old.frame.index != new.frame.index:  # pragma: no cover - the chunks are cut in order
            raise RuntimeError("cross-fade: held frames out of step")
        if np.array_equal(old.image, new.image):
            continue
        w = (j + 1) / (n + 1)
        img = np.rint((1.0 - w) * old.image.astype(np.float32) + w * new.image.astype(np.float32)).astype(np.uint8)
        for _, r in new.regions:
            if r.grid is not None and r.kind == "mosaic":  # (project works on the region's cells only)
                img = project(img, new.frame.image, r.full_mask(), r.grid).image
        rec = old.recovered & new.recovered if old.recovered is not None and new.recovered is not None else None
        out[j] = FrameResult(new.frame, img, new.regions, rec)
    return out


def restore_frames(
    frames: Iterable[Frame],
    *,
    restore_config=None,
    mask: np.ndarray | None = None,
    grid: Grid | None = None,
    config: VideoConfig | None = None,
    detect_config=None,
    restorer: ClipRestorer | None = None,
    tracker: Tracker | None = None,
    **options,
) -> Iterator[FrameResult]:
    """The frame-iterator API: restore the mosaics in a stream of :class:`Frame` (e.g. from
    :func:`tessera.io.video.read_frames`), yielding one :class:`FrameResult` per frame, in order.

    Without ``mask`` the mosaics are detected and tracked; with it (bool (H, W)) that region is
    restored in every frame (``grid`` as in ``restore_image``). ``restore_config``: a
    :class:`tessera.restore.pipeline.RestoreConfig` (model, kind, sampling, ...), updated by keyword
    ``options`` (``model="faces"``, ...). ``restorer``: any :class:`ClipRestorer`, or an object with
    ``restore_clip`` (:class:`tessera.restore.restorer.ClipRestorer`, run through
    :class:`CropClipAdapter`); default :class:`TemporalRestorer` with ``config.temporal``, wrapped in
    multi-frame recovery unless ``config.multiframe`` is 'off' (``FrameResult.recovered`` then
    marks the pixels it computed from the other frames).
    """
    plan = _plan(restore_config, mask, grid, config, detect_config, restorer, **options)
    yield from _run(frames, plan, tracker or Tracker(plan.config.track))


def restore_video(
    src: str | os.PathLike,
    dst: str | os.PathLike,
    *,
    encode: EncodeConfig | None = None,
    start: float | None = None,
    end: float | None = None,
    overwrite: bool = False,
    progress: Callable[[int, int], None] | None = None,
    save_mask: str | os.PathLike | None = None,
    **kwargs,
) -> VideoReport:
    """Restore the mosaics of the video ``src`` into ``dst`` (every other stream copied, see
    :func:`tessera.io.video.transcode`); returns a :class:`VideoReport`. Keyword arguments as in
    :func:`restore_frames` (``mask``, ``grid``, ``config``, ``restorer``, ``model=...``, ...);
    ``start``/``end`` in seconds; ``progress(done, total)``.

    ``save_mask``: a folder to write the synthesized-pixel marks into (see :class:`MaskFolder`:
    one grey PNG per frame, 255 imagined, 128 recovered, and ``summary.json``). The output
    container's ``comment`` tag carries the notice: restored pixels are imagined, not recovered
    (except those multi-frame recovery computed, which the marks tell apart)."""
    from tessera.restore.marking import NOTICE

    plan = _plan(**kwargs)
    tracker = Tracker(plan.config.track)
    marks = MaskFolder(save_mask, Path(dst).name, overwrite) if save_mask is not None else None
    counts = [0, 0]
    t0 = time.perf_counter()

    def process(frames):
        for r in _run(frames, plan, tracker):
            m = r.marks()
            counts[0] += int(np.count_nonzero(m))
            counts[1] += int(np.count_nonzero(m == 128))
            if marks is not None:
                marks.add(r.frame, m)
            yield r.image

    tags = {"comment": NOTICE + (MULTIFRAME_NOTE if plan.multiframe else "")}
    try:
        info = transcode(src, dst, process, encode=encode, start=start, end=end, overwrite=overwrite, progress=progress, tags=tags)
        report = VideoReport(info, tracker.latest + 1, _track_summary(tracker), getattr(plan.restorer, "model_calls", 0),
                             time.perf_counter() - t0, counts[0], counts[1])
        if marks is not None:
            marks.close(report)
    finally:
        if marks is not None:
            marks.discard()
    return report


MULTIFRAME_NOTE = (" Pixels marked recovered were computed from other frames in which the content had moved out"
                   " from under the mosaic (multi-frame recovery); see the synthesized-pixel marks.")


class MaskFolder:
    """The synthesized-pixel marks of a restored video, written as they come: ``FOLDER/NNNNNN.png``
    (frame index, 8-bit grey: 0 unchanged, 128 recovered, 255 imagined) and ``FOLDER/summary.json``
    (the notice, what the values mean, per frame its time and pixel counts, totals and the
    recovered fraction). Built in a hidden folder beside ``FOLDER`` and renamed into place by
    :meth:`close`: an error leaves nothing behind. An existing FOLDER is refused unless ``overwrite``."""

    def __init__(self, folder: str | os.PathLike, video: str, overwrite: bool = False):
        import secrets

        from tessera.io.video import VideoWriteError

        self.folder = Path(folder)
        if self.folder.exists() and not overwrite:
            raise VideoWriteError(self.folder, "exists; use --overwrite to replace it")
        self.video = video
        self.overwrite = overwrite
        self.folder.parent.mkdir(parents=True, exist_ok=True)
        self.tmp = self.folder.with_name(f".{self.folder.name}.{secrets.token_hex(4)}.tmp")
        self.tmp.mkdir()
        self.frames: list[dict] = []

    def add(self, frame: Frame, marks: np.ndarray) -> None:
        import cv2

        ok, png = cv2.imencode(".png", marks)
        if not ok:  # pragma: no cover
            raise RuntimeError("PNG encoding failed")
        (self.tmp / f"{frame.index:06d}.png").write_bytes(png.tobytes())
        self.frames.append({"index": frame.index, "time": round(frame.time, 6), "imagined": int(np.count_nonzero(marks == 255)),
                            "recovered": int(np.count_nonzero(marks == 128))})

    def close(self, report: VideoReport) -> None:
        import json
        import shutil

        from tessera.restore.marking import NOTICE

        doc = {"video": self.video, "notice": NOTICE + MULTIFRAME_NOTE, "values": {"0": "unchanged", "128": "recovered",
               "255": "imagined"}, "synthesized_pixels": report.synthesized_pixels, "recovered_pixels": report.recovered_pixels,
               "recovered_fraction": round(report.recovered_fraction, 6), "frames": self.frames}
        (self.tmp / "summary.json").write_text(json.dumps(doc, indent=1) + "\n")
        if self.folder.exists() and self.overwrite:
            shutil.rmtree(self.folder) if self.folder.is_dir() else self.folder.unlink()
        os.rename(self.tmp, self.folder)

    def discard(self) -> None:
        import shutil

        if self.tmp.exists():
            shutil.rmtree(self.tmp, ignore_errors=True)


# ----------------------------------------------------------------------------- adding mosaics


def pixelate_frames(
    frames: Iterable[Frame],
    *,
    mask: np.ndarray | None = None,
    boxes: Sequence[tuple[int, int, int, int]] = (),
    ellipses: Sequence[tuple[int, int, int, int]] = (),
    faces: bool = False,
    cell=12,
    phase=(0, 0),
    sampling: str = "mean",
    feather: int = 0,
    blur: float | None = None,
    track: TrackConfig | None = None,
) -> Iterator[tuple[Frame, np.ndarray, np.ndarray]]:
    """Add a mosaic (or blur) to every frame: yields (frame, new image, changed mask). The grid is
    fixed in the picture (it does not crawl). ``faces``: OpenCV's face detector on every frame,
    linked into tracks whose short gaps are filled (a face missed for a few frames stays hidden;
    single-frame detections are kept too: hiding too much is the safe mistake)."""
    from tessera.mosaic.pixelate import pixelate

    def hide(image: np.ndarray, extra: list[tuple[int, int, int, int]]) -> tuple[np.ndarray, np.ndarray]:
        return pixelate(image, mask, boxes=boxes, ellipses=[*ellipses, *extra], cell=cell, phase=phase,
                        sampling=sampling, feather=feather, blur=blur)

    if not faces:
        for f in frames:
            out, changed = hide(f.image, [])
            yield f, out, changed
        return
    from tessera.detect.faces import find_faces

    tcfg = track or TrackConfig(iou=0.2, max_gap=6, min_length=1, cut=1.0)

    def face_regions(image, boxes=None) -> list[Region]:
        H, W = image.shape[:2]
        out = []
        for (x, y, w, h) in find_faces(image):
            out.append(Region(np.ones((h, w), bool), (x, y, w, h), (H, W), None, 1.0, "face"))
        return out

    tracker = Tracker(tcfg)
    for f, items in track_regions_with(tracker, frames, face_regions, VideoConfig(detect_every=1, track=tcfg)):
        out, changed = hide(f.image, [r.box for _, r in items])
        yield f, out, changed


def pixelate_video(src: str | os.PathLike, dst: str | os.PathLike, *, encode: EncodeConfig | None = None,
                   start: float | None = None, end: float | None = None, overwrite: bool = False,
                   progress: Callable[[int, int], None] | None = None, **kwargs) -> VideoReport:
    """Add a mosaic to the video ``src`` into ``dst`` (see :func:`pixelate_frames` for the region
    arguments; every other stream copied)."""
    t0 = time.perf_counter()
    n = 0

    def process(frames):
        nonlocal n
        for _, out, _ in pixelate_frames(frames, **kwargs):
            n += 1
            yield out

    info = transcode(src, dst, process, encode=encode, start=start, end=end, overwrite=overwrite, progress=progress)
    return VideoReport(info, n, [], 0, time.perf_counter() - t0)


# ----------------------------------------------------------------------------- detection only


def detect_frames(frames: Iterable[Frame], *, config: VideoConfig | None = None, detect_config=None,
                  tracker: Tracker | None = None) -> Iterator[tuple[Frame, list[tuple[int, Region]]]]:
    """Detect and track mosaics in a stream of frames: yields (frame, [(track id, Region)])."""
    cfg = config or VideoConfig()
    yield from track_regions_with(tracker or Tracker(cfg.track), frames, mosaic_detector(detect_config), cfg)


def detect_video(
    src: str | os.PathLike,
    out_dir: str | os.PathLike,
    *,
    config: VideoConfig | None = None,
    detect_config=None,
    start: float | None = None,
    end: float | None = None,
    overwrite: bool = False,
    progress: Callable[[int, int], None] | None = None,
) -> VideoReport:
    """Find the mosaics of ``src``: writes ``out_dir/NAME.mask.mp4`` (lossless grey video, 255 =
    mosaic, the input's timestamps) and ``out_dir/NAME.json`` (tracks, and per frame its time and
    regions with their track ids). Both atomically; existing files are refused unless ``overwrite``."""
    import json

    cfg = config or VideoConfig()
    src, out_dir = Path(src), Path(out_dir)
    mask_path = out_dir / f"{src.stem}.mask.mp4"
    json_path = out_dir / f"{src.stem}.json"
    for p in (mask_path, json_path):
        if p.exists() and not overwrite:
            from tessera.io.video import VideoWriteError

            raise VideoWriteError(p, "exists; use --overwrite to replace it")
    out_dir.mkdir(parents=True, exist_ok=True)
    tracker = Tracker(cfg.track)
    t0 = time.perf_counter()
    tmp_json = json_path.with_name(f".{json_path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp_json, "w") as fh:
            fh.write('{"video": ' + json.dumps(src.name) + ', "frames": [\n')
            first = True

            def process(frames):
                nonlocal first
                for f, items in detect_frames(frames, config=cfg, detect_config=detect_config, tracker=tracker):
                    m = np.zeros(f.image.shape[:2], bool)
                    for _, r in items:
                        r.paint(m)
                    entry = {"index": f.index, "time": round(f.time, 6), "regions": [{"track": tid, **r.to_json()} for tid, r in items]}
                    fh.write(("" if first else ",\n") + json.dumps(entry))
                    first = False
                    yield np.repeat((m * 255).astype(np.uint8)[..., None], 3, axis=2)

            info = transcode(src, mask_path, process, encode=EncodeConfig(crf=0, preset="veryfast"), start=start, end=end,
                             overwrite=overwrite, progress=progress, copy_streams=False)
            tracks = _track_summary(tracker)
            fh.write('\n], "size": ' + json.dumps([info.width, info.height]) + ', "tracks": ' + json.dumps(tracks, indent=1) + "}\n")
        os.replace(tmp_json, json_path)
    except BaseException:
        try:
            os.unlink(tmp_json)
        except OSError:
            pass
        raise
    return VideoReport(info, tracker.latest + 1, tracks, 0, time.perf_counter() - t0)
