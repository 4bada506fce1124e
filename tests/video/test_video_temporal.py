"""tessera.video.temporal: the flicker score, motion of the surround, smoothing along a track."""

from __future__ import annotations

import numpy as np
import pytest

from tessera.mosaic.pixelate import pixelate
from tessera.mosaic.region import Grid, Region
from tessera.video.synth import pan_frames
from tessera.video.temporal import TemporalConfig, TemporalSmoother, flicker, surround_shift


def test_flicker_score(rng):
    truth = [rng.integers(0, 256, (16, 16, 3), dtype=np.uint8) for _ in range(4)]
    mask = np.zeros((16, 16), bool)
    mask[4:12, 4:12] = True
    assert flicker(truth, truth, [mask] * 4) == 0.0
    offset = [np.clip(t.astype(int) + 10, 0, 255).astype(np.uint8) for t in truth]  # steady error: no flicker
    assert flicker([np.full_like(t, 100) for t in truth], [np.full_like(t, 90) for t in truth], [mask] * 4) == 0.0
    noisy = [t.copy() for t in truth]
    noisy[1][mask] = np.clip(noisy[1][mask].astype(int) + 20, 0, 255).astype(np.uint8)
    # frame 1 is off by about 20 inside: two differences (0->1, 1->2) each err by about 20, one by 0
    assert flicker(noisy, truth, [mask] * 4) == pytest.approx(20 * 2 / 3, abs=1.0)
    assert np.isnan(flicker(truth[:1], truth[:1], [mask]))
    assert offset  # (used above only to show the idea)


def test_surround_shift_finds_the_camera_motion(photo):
    a, b = pan_frames(photo, 2, (96, 64), speed=(3.0, -2.0))
    mask = np.zeros((64, 96), bool)
    mask[20:44, 30:66] = True
    dx, dy = surround_shift(a, b, mask)
    assert dx == pytest.approx(-3.0, abs=0.35) and dy == pytest.approx(2.0, abs=0.35)


def test_smoother_reuses_still_regions_and_blends_moving_ones(photo, rng):
    frame = pan_frames(photo, 1, (96, 64))[0]
    grid = Grid(6, 6)
    box = (30, 18, 36, 30)
    mos, changed = pixelate(frame, boxes=[box], cell=6)
    region = Region.from_mask(changed, grid, 1.0, "mosaic", box=box)
    calls = []

    def noisy_restore(img, r):  # a restorer whose guess changes every call
        calls.append(1)
        out = img.copy()
        out[r.full_mask()] = rng.integers(0, 256, (r.area, 3), dtype=np.uint8)
        return out

    off = TemporalSmoother(TemporalConfig(mode="off"))
    outs_off = [off.step(mos, region, noisy_restore) for _ in range(4)]
    on = TemporalSmoother(TemporalConfig())
    outs_on = [on.step(mos, region, noisy_restore) for _ in range(4)]
    assert len(calls) == 4 + 1  # the still region is restored once, then kept
    truth = [frame] * 4
    assert flicker(outs_on, truth, [changed] * 4) == 0.0 < flicker(outs_off, truth, [changed] * 4)
    # a changed observation: restored again, blended with the previous result, still consistent
    mos2, _ = pixelate(np.clip(frame.astype(int) + 30, 0, 255).astype(np.uint8), boxes=[box], cell=6)
    out = on.step(mos2, region, noisy_restore)
    assert len(calls) == 6
    again, _ = pixelate(out, boxes=[box], cell=6)
    assert np.abs(again[changed].astype(int) - mos2[changed]).max() <= 1  # every cell averages to the observation
    assert np.array_equal(out[~changed], mos2[~changed])


def test_refresh_carries_the_moved_result_between_model_calls(photo):
    """refresh=4 (the default): between model calls the previous result, moved with the content, is
    projected onto the frame's cells while it agrees with them: consistent, fewer model calls, no
    worse than restoring every frame. Content whose cells disagree is restored every frame."""
    from tessera.evaluate import psnr

    box = (30, 18, 36, 30)

    def smooth_restore(img, r):  # a consistent restoration, as restore_image's
        from tessera.restore.classical import smooth
        from tessera.restore.consistency import project

        m = r.full_mask()
        return project(smooth(img, m, r.grid), img, m, r.grid).image

    def run(truth, config):
        sm, outs, masks = TemporalSmoother(config), [], []
        for f in truth:
            mos, changed = pixelate(f, boxes=[box], cell=6)
            out = sm.step(mos, Region.from_mask(changed, Grid(6, 6), 1.0, "mosaic", box=box), smooth_restore)
            again, _ = pixelate(out, boxes=[box], cell=6)
            assert np.abs(again[changed].astype(int) - mos[changed]).max() <= 1 and np.array_equal(out[~changed], mos[~changed])
            outs.append(out)
            masks.append(changed)
        return sm, outs, masks

    truth = pan_frames(photo, 9, (96, 64), speed=(0.5, 0.0))
    sm, outs, masks = run(truth, TemporalConfig())
    fbf_sm, fbf, _ = run(truth, TemporalConfig(mode="off"))
    assert fbf_sm.restored == 9 and sm.restored <= 6  # measured: 6 (frames whose cells disagree are restored)
    mean_psnr = lambda imgs: np.mean([psnr(o, t, m) for o, t, m in zip(imgs, truth, masks)])  # noqa: E731
    assert mean_psnr(outs) > mean_psnr(fbf) and flicker(outs, truth, masks) < 1.02 * flicker(fbf, truth, masks)
    fast = pan_frames(photo, 9, (96, 64), speed=(1.0, 0.0))  # 1 px per frame in 6-px cells of the boat's texture
    assert run(fast, TemporalConfig())[0].restored == 9 and run(fast, TemporalConfig(agree=None))[0].restored == 3
    with pytest.raises(ValueError, match="refresh"):
        TemporalConfig(refresh=0)


def test_temporal_config_checks():
    with pytest.raises(ValueError, match="mode"):
        TemporalConfig(mode="median")
    with pytest.raises(ValueError, match="alpha"):
        TemporalConfig(alpha=1.0)


def test_a_long_move_is_carried_only_when_the_surround_follows_it(photo, rng):
    """A carried result moved more than a quarter of a cell must be confirmed by the real pixels
    around the region: a fast pan (4 px per frame, 6-px cells) is carried between model calls when
    the frames are clean, restored every frame when each frame has its own noise (sigma 6: the
    surround then misses the move by about 6.7 grey levels)."""
    from tessera.video.temporal import surround_error

    box = (30, 18, 36, 30)
    truth = pan_frames(photo, 6, (96, 64), speed=(4.0, 0.0))

    def smooth_restore(img, r):
        from tessera.restore.classical import smooth
        from tessera.restore.consistency import project

        m = r.full_mask()
        return project(smooth(img, m, r.grid), img, m, r.grid).image

    def restored(frames, **kw):
        sm = TemporalSmoother(TemporalConfig(agree=None, **kw))
        for f in frames:
            mos, changed = pixelate(f, boxes=[box], cell=6)
            sm.step(mos, Region.from_mask(changed, Grid(6, 6), 1.0, "mosaic", box=box), smooth_restore)
        return sm.restored

    noisy = [np.clip(f + rng.normal(0, 6.0, f.shape), 0, 255).astype(np.uint8) for f in truth]
    mask = np.zeros((64, 96), bool)
    mask[18:48, 30:66] = True
    assert surround_error(truth[0], truth[1], mask, -4.0, 0.0) < 1.0 and surround_error(noisy[0], noisy[1], mask, -4.0, 0.0) > 5.0
    assert restored(truth) == 2 and restored(noisy) == 6
    assert restored(noisy, carry_error=float("inf")) == 2  # the check off: carried as before
    with pytest.raises(ValueError, match="carry_error"):
        TemporalConfig(carry_error=-1.0)
