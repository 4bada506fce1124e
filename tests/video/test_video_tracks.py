"""tessera.video.tracks: linking, gap filling, false detections, scene cuts, one grid per track."""

from __future__ import annotations

import numpy as np

from tessera.mosaic.region import Grid, Region
from tessera.video.tracks import TrackConfig, Tracker, colour_histogram, is_scene_cut
from tessera.video.synth import pan_frames


def region(x: int, y: int, w: int = 20, h: int = 16, grid: Grid | None = None, shape=(64, 96)) -> Region:
    m = np.zeros(shape, bool)
    m[y : y + h, x : x + w] = True
    return Region.from_mask(m, grid, 0.9, "mosaic", box=(x, y, w, h))


def run(tracker: Tracker, per_frame: list[list[Region]], cuts=()) -> list[tuple[int, list]]:
    out = []
    for i, regions in enumerate(per_frame):
        tracker.push(i, regions, i in cuts)
        out += tracker.pop()
    return out + tracker.pop(final=True)


def test_gap_filled_false_detection_dropped():
    g = Grid(4, 4, 0, 0)
    frames = [[region(10 + 2 * i, 20, grid=g)] for i in range(10)]
    frames[4] = []  # missed once: filled
    frames[6].append(region(70, 2, 12, 12, grid=Grid(6, 6)))  # seen once, elsewhere: dropped
    out = run(Tracker(TrackConfig(max_gap=2)), frames)
    assert [k for k, _ in out] == list(range(10))
    assert all(len(items) == 1 and items[0][0] == 0 for _, items in out)
    filled = out[4][1][0][1]
    assert filled.box[0] in (17, 18, 19) and filled.extra.get("filled") and filled.area == 20 * 16


def test_scene_cut_splits_tracks_and_long_gap_too():
    frames = [[region(10, 20)] for _ in range(8)]
    out = run(Tracker(TrackConfig(max_gap=1, min_length=1)), frames, cuts={4})
    assert [items[0][0] for _, items in out] == [0] * 4 + [1] * 4
    frames = [[region(10, 20)] for _ in range(3)] + [[]] * 3 + [[region(10, 20)] for _ in range(3)]
    out = run(Tracker(TrackConfig(max_gap=2, min_length=1)), frames)
    assert [items[0][0] if items else None for _, items in out] == [0, 0, 0, None, None, None, 1, 1, 1]


def test_one_grid_voted_over_frames():
    good, bad = Grid(8, 8, 3, 5, "mean"), Grid(4, 4, 1, 1, "centre")
    frames = [[region(10 + i, 20, w=32, h=24, grid=bad if i in (2, 5) else good)] for i in range(10)]
    tracker = Tracker()
    out = run(tracker, frames)
    grids = {items[0][1].grid for _, items in out}
    assert grids == {good}  # the two wrong frames get the track's grid
    assert not tracker.all_tracks[0].follows_content


def test_grid_that_moves_with_the_box():
    frames = []
    for i in range(8):
        x = 10 + 3 * i
        frames.append([region(x, 20, w=32, h=24, grid=Grid(8, 8, 20 % 8, x % 8))])
    frames[3] = [region(19, 20, w=32, h=24, grid=Grid(8, 8, 0, 0))]  # one bad phase estimate
    tracker = Tracker()
    out = run(tracker, frames)
    assert tracker.all_tracks[0].follows_content
    assert out[3][1][0][1].grid == Grid(8, 8, 4, 19 % 8)


def test_scene_cut_detector(photo, rng):
    a = pan_frames(photo, 3, (96, 64), speed=(2.0, 0.0))
    other = np.ascontiguousarray(photo[::-1, ::-1, ::-1][:64, :96])
    h = [colour_histogram(x) for x in a]
    assert not is_scene_cut(h[0], h[1]) and not is_scene_cut(h[1], h[2])
    assert is_scene_cut(h[2], colour_histogram(other))
    assert not is_scene_cut(None, h[0])
