"""tessera.video.pipeline end to end on tiny videos made here: a moving mosaic over a real photo,
an audio track, variable frame rate; tracks found, outputs exact outside the regions, streams kept."""

from __future__ import annotations

import json
import os
from fractions import Fraction
from pathlib import Path

import cv2
import numpy as np
import pytest

av = pytest.importorskip("av")

from tessera.evaluate import psnr  # noqa: E402
from tessera.io.video import EncodeConfig, read_frames  # noqa: E402
from tessera.mosaic.pixelate import pixelate  # noqa: E402
from tessera.video.pipeline import (  # noqa: E402
    TrackClip,
    VideoConfig,
    detect_video,
    pixelate_video,
    restore_frames,
    restore_video,
)
from tessera.video.synth import pan_frames, write_video  # noqa: E402

VFR_PTS = [0, 40, 80, 100, 140, 200, 240, 260, 300, 340, 400, 420]
DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"


def packets(path: Path) -> list[tuple[int, bytes]]:
    with av.open(str(path)) as c:
        return [(p.stream.index, bytes(p)) for p in c.demux() if p.size and p.stream.type != "video"]


@pytest.fixture
def mosaic_clip(photo, tmp_path):
    """12 VFR frames of 96x64 panning over the photo, a 36x30 mosaic (6 px cells, fixed grid)
    moving right 1 px per frame, one audio track; lossless so that detection sees clean cells."""
    truth = pan_frames(photo, 12, (96, 64), speed=(1.0, 0.5))
    frames, masks = [], []
    for i, f in enumerate(truth):
        out, changed = pixelate(f, boxes=[(24 + i, 14, 36, 30)], cell=6)
        frames.append(out)
        masks.append(changed)
    path = write_video(tmp_path / "mosaic.mp4", frames, pts=VFR_PTS, audio=1, crf=0)
    return path, truth, masks


def test_restore_video_tracks_and_keeps_everything_else(mosaic_clip, tmp_path, one_thread):
    src, truth, masks = mosaic_clip
    report = restore_video(src, tmp_path / "out.mp4", model="smooth", encode=EncodeConfig(crf=0))  # default crf: below
    assert report.frames == 12
    assert len(report.tracks) == 1
    t = report.tracks[0]
    assert (t["first"], t["last"], t["cell"]) == (0, 11, [6, 6]) and t["frames"] >= 10
    got = list(read_frames(tmp_path / "out.mp4"))
    assert [f.pts * f.time_base for f in got] == [Fraction(p, 1000) for p in VFR_PTS]
    assert packets(tmp_path / "out.mp4") == packets(src)
    inputs = [f.image for f in read_frames(src)]
    for f, i, m in zip(got, inputs, masks):
        assert np.abs(f.image[m].astype(int) - i[m]).mean() > 2.0  # the mosaic's cells were replaced
        near = cv2.dilate(m.astype(np.uint8), np.ones((13, 13), np.uint8)).astype(bool)  # detection may take a cell more
        assert psnr(f.image, i, ~near) > 42.0  # outside: the colour conversion's loss only


def test_frame_iterator_is_exact_outside_regions(mosaic_clip, one_thread):
    src, truth, masks = mosaic_clip
    results = list(restore_frames(read_frames(src), model="smooth", config=VideoConfig(detect_every=1)))
    assert [r.frame.index for r in results] == list(range(12))
    for r, m in zip(results, masks):
        changed = r.image != r.frame.image
        assert not changed[~r.mask].any()  # byte-identical outside the synthesized mask
        assert (r.mask & m).sum() >= 0.9 * m.sum()  # the mosaic was found in every frame


def test_given_mask_and_custom_clip_restorer_seam(mosaic_clip, tmp_path):
    src, truth, masks = mosaic_clip
    union = np.logical_or.reduce(masks)
    seen: list[TrackClip] = []

    def paint(clip: TrackClip) -> list[np.ndarray]:
        seen.append(clip)
        return [np.full_like(f, 255) for f in clip.frames]

    report = restore_video(src, tmp_path / "white.mp4", mask=union, restorer=paint, config=VideoConfig(clip_length=5))
    assert report.frames == 12 and [len(c.indices) for c in seen] == [5, 5, 2]
    assert seen[0].first and not seen[1].first and seen[1].indices == [5, 6, 7, 8, 9]
    assert all(c.regions[0].grid is not None and c.regions[0].grid.cell == (6, 6) for c in seen)
    out = [f.image for f in read_frames(tmp_path / "white.mp4")]
    assert all(o[union].mean() > 240 for o in out)


def test_crop_level_clip_restorer_from_the_image_library(mosaic_clip):
    """restore/restorer.py's ClipRestorer (equally sized crops, one grid) runs through the adapter."""
    from tessera.restore.restorer import FrameByFrame, resolve_model

    src, truth, masks = mosaic_clip
    calls = []

    class Recording(FrameByFrame):
        def restore_clip(self, frames, masks, grid, kind):
            calls.append((len(frames), {f.shape for f in frames}, grid))
            return super().restore_clip(frames, masks, grid, kind)

    union = np.logical_or.reduce(masks)
    res = list(restore_frames(read_frames(src), mask=union, restorer=Recording(resolve_model("smooth"))))
    assert len(res) == 12 and [n for n, _, _ in calls] == [8, 4]
    assert all(len(shapes) == 1 and g is not None and g.cell == (6, 6) for _, shapes, g in calls)
    assert all(np.abs(r.image[union].astype(int) - r.frame.image[union]).mean() > 2.0 for r in res)


def test_temporal_smoothing_lowers_flicker(mosaic_clip, one_thread):
    from tessera.video.temporal import TemporalConfig, flicker

    src, truth, masks = mosaic_clip
    scores = {}
    for mode in ("off", "blend"):
        cfg = VideoConfig(temporal=TemporalConfig(mode=mode), multiframe="off")  # the temporal blend alone
        res = list(restore_frames(read_frames(src), model="smooth", config=cfg))
        scores[mode] = flicker([r.image for r in res], truth, masks)
    assert scores["blend"] < scores["off"]


def test_pixelate_and_detect_video(photo, tmp_path, one_thread):
    frames = pan_frames(photo, 12, (96, 64), speed=(1.0, 0.0))
    src = write_video(tmp_path / "in.mp4", frames, audio=1, crf=0)
    pixelate_video(src, tmp_path / "pix.mp4", boxes=[(30, 10, 36, 30)], cell=6, encode=EncodeConfig(crf=0))
    out = [f.image for f in read_frames(tmp_path / "pix.mp4")]
    assert len(out) == 12 and packets(tmp_path / "pix.mp4") == packets(src)
    cell = out[5][12:18, 30:36].astype(float)  # one whole cell of the grid anchored at the picture's corner
    assert cell.std(axis=(0, 1)).max() < 1.5 < 3.0 < frames[5][12:18, 30:36].std(axis=(0, 1)).max()
    report = detect_video(tmp_path / "pix.mp4", tmp_path / "found")
    assert sorted(os.listdir(tmp_path / "found")) == ["pix.json", "pix.mask.mp4"]
    doc = json.loads((tmp_path / "found" / "pix.json").read_text())
    assert len(doc["frames"]) == 12 and doc["size"] == [96, 64]
    assert len(doc["tracks"]) == 1 and doc["tracks"][0]["cell"] == [6, 6] and report.frames == 12
    masks = [f.image[..., 0] > 127 for f in read_frames(tmp_path / "found" / "pix.mask.mp4")]
    truth = np.zeros((64, 96), bool)
    truth[10:40, 30:66] = True
    assert len(masks) == 12 and all((m & truth).sum() / (m | truth).sum() > 0.8 for m in masks)
    with pytest.raises(Exception, match="exists"):
        detect_video(tmp_path / "pix.mp4", tmp_path / "found")


@pytest.mark.skipif(not (DATA / "video" / "bikes.mp4").exists(), reason="../shared/data not present")
def test_real_clip_outside_region_psnr_at_default_quality(tmp_path, one_thread):
    """bikes.mp4 (640x272): a mosaic pasted in, restored with a given mask at the default encoder
    settings: outside the region >= 40 dB against the input."""
    src0 = DATA / "video" / "bikes.mp4"
    frames = [f.image for f in read_frames(src0, end=0.2)]
    mos = [pixelate(f, boxes=[(300, 100, 64, 48)], cell=8)[0] for f in frames]
    src = write_video(tmp_path / "bikes.mp4", mos, crf=0)
    mask = np.zeros(frames[0].shape[:2], bool)
    mask[100:148, 300:364] = True
    restore_video(src, tmp_path / "out.mp4", mask=mask, model="smooth")
    out = [f.image for f in read_frames(tmp_path / "out.mp4")]
    decoded = [f.image for f in read_frames(src)]
    assert len(out) == len(decoded) == 5
    assert min(psnr(o, i, ~mask) for o, i in zip(out, decoded)) >= 40.0


def test_held_mosaic_skips_detection_and_track_decides_once(photo, one_thread):
    """Between whole-frame detections a mosaic whose cells stay flat is held without detection; the
    model route (auto: a face check) and the cell sampling ('auto': two projections) are decided on
    a track's first frame only, and restoring the context box alone equals restoring the frame."""
    from tessera.io.video import Frame
    from tessera.restore.pipeline import RestoreConfig, restore_image
    from tessera.restore.restorer import RoutingRestorer, resolve_model
    from tessera.video.pipeline import TemporalRestorer, mask_detector, track_regions_with
    from tessera.video.temporal import TemporalConfig
    from tessera.video.tracks import Tracker

    truth = pan_frames(photo, 12, (96, 64), speed=(1.0, 0.5))
    box = np.zeros((64, 96), bool)
    box[12:42, 24:60] = True
    mosaics = [pixelate(f, box, cell=6)[0] for f in truth]
    calls = []
    given = mask_detector(box)

    def detector(image, boxes=None):
        calls.append(boxes)
        return given(image, boxes)

    cfg = VideoConfig(detect_every=4)
    out = list(track_regions_with(Tracker(cfg.track), (Frame(i, i, i / 25, m) for i, m in enumerate(mosaics)), detector, cfg))
    assert calls == [None, None, None]  # whole-frame detections on frames 0, 4, 8 only
    assert all(len(items) == 1 and np.array_equal(items[0][1].full_mask(), box) for _, items in out)

    faces_seen = []
    smooth = resolve_model("smooth")
    routing = RoutingRestorer(smooth, smooth, detect=lambda image: faces_seen.append(1) or [])
    tr = TemporalRestorer(RestoreConfig(sampling="auto"), TemporalConfig(mode="off"), restorer=routing)
    frames = [f.image for f, _ in out]
    regions = [items[0][1] for _, items in out]
    res = tr(TrackClip(0, list(range(12)), frames, regions))
    assert len(faces_seen) == 2  # first frame only: before and after the model (one pass, projected under both samplings)
    assert tr.decided[0][1] is smooth
    whole = restore_image(frames[0], regions=[regions[0]], config=RestoreConfig(sampling="auto"), restorer=routing).image
    assert np.array_equal(res[0], whole)
