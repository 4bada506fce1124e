"""Multi-frame recovery on tiny synthetic clips with known motion and no compression."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from tessera.mosaic.pixelate import pixelate
from tessera.mosaic.region import Grid, Region
from tessera.restore.consistency import remosaic_residual
from tessera.restore.pipeline import restore_image
from tessera.video.motion import Motion
from tessera.video.multiframe import MultiframeConfig, MultiframeRestorer, _sample_matrix, recover_clip, restore_clip


def _content(rng, size: int) -> np.ndarray:
    u = cv2.GaussianBlur(rng.uniform(0, 255, (size, size, 3)), (0, 0), 1.2)
    return (u - u.min()) / (u.max() - u.min()) * 200 + 25


def _shift(dx: float, dy: float) -> Motion:
    A = np.eye(3)
    A[:2, 2] = dx, dy
    return Motion(A, 1.0, 0.0 if dx == dy == 0 else 0.7)


def _clip(rng, shifts, H, W, box, cell, off=16):
    """Frames that see the content ``U`` at ``p + off + shift_t`` through the solver's own cubic model
    (exact up to rounding to uint8); the reference (shift 0) sees U's own pixels. Returns
    (truth frames, mosaics, masks, motions, content U in reference coordinates)."""
    S = max(H, W) + 2 * off
    U = _content(rng, S)
    truth, mosaics, masks, motions = [], [], [], []
    rr, cc = np.mgrid[0:H, 0:W]
    for dx, dy in shifts:
        xy = np.stack([cc.ravel() + off + dx, rr.ravel() + off + dy], 1).astype(np.float64)
        M, ok = _sample_matrix(xy, (0, 0), (S, S))
        assert ok.all()
        f = np.clip(np.rint(M @ U.reshape(-1, 3)), 0, 255).reshape(H, W, 3).astype(np.uint8)
        mo, changed = pixelate(f, boxes=[box], cell=cell)
        truth.append(f)
        mosaics.append(mo)
        masks.append(changed)
        motions.append(_shift(dx, dy))
    return truth, mosaics, masks, motions, U[off:, off:]


def test_recovers_determined_pixels_within_one_grey_level(rng):
    n = 10
    shifts = [(0.7 * (t - n // 2), 0.45 * (t - n // 2)) for t in range(n)]  # sub-pixel pan, 2-D
    grid = Grid(8, 8)
    truth, mosaics, masks, motions, U = _clip(rng, shifts, 56, 56, (16, 16, 24, 24), 8)
    rec = recover_clip(mosaics, masks, grid, motions)  # prior: grid-aware smooth interpolation
    prior = recover_clip(mosaics, masks, grid, [Motion(np.eye(3), 0.0, 0.0)] * n)  # no frame trusted
    determined = 0
    for t in range(n):
        m = masks[t]
        err = np.abs(rec.frames[t].astype(int) - truth[t]).max(axis=2)
        sure = m & (rec.std[t] <= 0.5)
        determined += sure.sum()
        assert err[sure].max() <= 1, t  # fully determined: recovered to within one grey level
        assert np.array_equal(rec.frames[t][~m], mosaics[t][~m])  # outside: byte-identical
        assert remosaic_residual(rec.frames[t], mosaics[t], m, grid) == 0.0  # consistency stays exact
        assert rec.recovered[t].sum() >= sure.sum() and not (rec.recovered[t] & rec.imagined[t]).any()
        assert np.array_equal(rec.recovered[t] | rec.imagined[t], m)
        # everywhere in the region, the frames help: mean error well below the prior alone
        e_prior = np.abs(prior.frames[t].astype(int) - truth[t])[m].mean()
        assert err[m].mean() < 0.8 * e_prior
    assert determined >= 0.3 * sum(m.sum() for m in masks)
    # the reconstruction itself (reference coordinates) where the frames fully determine it
    (x0, y0), (h, w) = rec.origin, rec.content_std.shape
    sure = rec.content_std <= 0.5
    assert 0.3 < sure.mean() < 1.0
    assert np.abs(rec.content - U[y0 : y0 + h, x0 : x0 + w])[sure].max() <= 1.0
    assert rec.residual == 0.0 and all(rec.used) and not any(prior.used)


def _dense_determined(shifts, masks, grid, H, W, pad):
    """Which reference pixels (on a canvas of W + 2*pad columns) the frames determine, by linear
    algebra alone: rows = unmasked pixels and the cell means of integer-shifted frames; a pixel is
    determined when it has no component in the null space of those rows (eigenvectors of A^T A)."""
    Wc = W + 2 * pad
    AtA = np.zeros((H * Wc, H * Wc))
    for (dx, _), m in zip(shifts, masks):
        ys, xs = np.nonzero(~m)
        idx = ys * Wc + xs + dx + pad
        AtA[idx, idx] += 1.0
        for y0 in range(0, H, grid.cell_h):
            for x0 in range(0, W, grid.cell_w):
                if m[y0 : y0 + grid.cell_h, x0 : x0 + grid.cell_w].all():
                    r = np.zeros((H, Wc))
                    r[y0 : y0 + grid.cell_h, x0 + dx + pad : x0 + dx + pad + grid.cell_w] = 1.0 / (grid.cell_h * grid.cell_w)
                    r = r.ravel()
                    AtA += np.outer(r, r)
    import torch  # its LAPACK obeys torch.set_num_threads (numpy's may spin many threads on a busy CPU)

    w, V = (a.numpy() for a in torch.linalg.eigh(torch.from_numpy(AtA)))
    null = V[:, w < 1e-9 * w.max()]
    return ((null**2).sum(axis=1) < 1e-9).reshape(H, Wc)


def test_recovered_map_marks_exactly_the_determined_pixels(rng, one_thread):
    n, H, W, pad = 6, 16, 32, 4
    shifts = [(t - 2, 0) for t in range(n)]  # whole-pixel pan to the right, no vertical motion
    grid = Grid(4, 4)
    truth, mosaics, masks, motions, U = _clip(rng, shifts, H, W, (8, 4, 16, 8), 4)
    rec = recover_clip(mosaics, masks, grid, motions)
    # rows outside the mask's band (4..12, whole cells) are seen in every frame and coupled to nothing
    band = _dense_determined(shifts, [m[4:12] for m in masks], grid, 8, W, pad)
    det = np.ones((H, W + 2 * pad), bool)
    det[4:12] = band
    in_ref = det[:, pad : pad + W][masks[2]]
    assert 0 < in_ref.sum() < in_ref.size  # some, not all, of the region is determined
    for t, (dx, _) in enumerate(shifts):
        expect = np.zeros((H, W), bool)
        ys, xs = np.nonzero(masks[t])
        expect[ys, xs] = det[ys, xs + dx + pad]
        assert np.array_equal(rec.recovered[t], expect), t
        assert np.abs(rec.frames[t].astype(int) - truth[t])[expect].max() <= 1


def test_zero_motion_equals_single_frame_result(rng):
    n = 5
    truth, mosaics, masks, motions, U = _clip(rng, [(0.0, 0.0)] * n, 48, 48, (12, 12, 24, 20), 6)
    grid = Grid(6, 6)
    single = [restore_image(f, model="smooth", regions=[Region.from_mask(m, grid)]).image for f, m in zip(mosaics, masks)]
    rec = recover_clip(mosaics, masks, grid, motions, single)
    assert all(rec.used)
    for t in range(n):
        assert np.array_equal(rec.frames[t], single[t])
        assert not rec.recovered[t].any()
    # the same through restore_clip, motion estimated from the frames
    clip = restore_clip(mosaics, masks, grid, model="smooth")
    assert all(np.array_equal(a, b) for a, b in zip(clip.frames, single))


def test_untrusted_motion_falls_back_to_the_prior(rng):
    truth, mosaics, masks, motions, U = _clip(rng, [(0.0, 0.0), (1.5, 0.5)], 40, 40, (8, 8, 16, 16), 8)
    prior = [restore_image(f, model="smooth", regions=[Region.from_mask(m, Grid(8, 8))]).image for f, m in zip(mosaics, masks)]
    bad = [motions[0], Motion(motions[1].matrix, 0.2, 5.0)]
    rec = recover_clip(mosaics, masks, Grid(8, 8), bad, prior)
    assert rec.used == [True, False]
    assert np.array_equal(rec.frames[1], prior[1]) and not rec.recovered[1].any()


def test_bad_inputs():
    f = np.zeros((16, 16, 3), np.uint8)
    m = np.zeros((16, 16), bool)
    ident = _shift(0, 0)
    with pytest.raises(ValueError, match="frames but"):
        recover_clip([f, f], [m], Grid(4, 4), [ident, ident])
    with pytest.raises(ValueError, match="motions"):
        recover_clip([f], [m], Grid(4, 4), [])
    with pytest.raises(ValueError, match="one Grid per frame"):
        recover_clip([f, f], [m, m], [Grid(4, 4)], [ident, ident])
    with pytest.raises(ValueError, match="RGB uint8"):
        recover_clip([f.astype(np.float32)], [m], Grid(4, 4), [ident])
    with pytest.raises(ValueError, match="recovered_std"):
        MultiframeConfig(recovered_std=9.0, blend_std=8.0)
    m[4:12, 4:12] = True
    with pytest.raises(ValueError, match="max_unknowns"):
        recover_clip([f], [m], Grid(4, 4), [ident], config=MultiframeConfig(max_unknowns=10))


def test_multiframe_restorer_recovers_moving_and_falls_back_on_static(rng):
    from tessera.restore.restorer import resolve_model

    smooth = resolve_model("smooth")
    clip = MultiframeRestorer(smooth)
    assert clip.name == "smooth+multiframe"
    grid = Grid(8, 8)
    # static: nothing to gain, frame by frame (the bare restorer), no recovery kept
    truth, mosaics, masks, motions, U = _clip(rng, [(0.0, 0.0)] * 3, 48, 64, (16, 16, 32, 16), 8)
    out = clip.restore_clip(mosaics, masks, grid, "mosaic")
    assert clip.last is None
    assert all(np.array_equal(o, smooth(f, m, grid, "mosaic")) for o, f, m in zip(out, mosaics, masks))
    # panning 1 px per frame: recovered from the frames, closer to the truth than frame by frame
    n = 7
    truth, mosaics, masks, motions, U = _clip(rng, [(1.0 * (t - n // 2), 0.5 * (t - n // 2)) for t in range(n)], 48, 64, (16, 16, 32, 16), 8)
    out = clip.restore_clip(mosaics, masks, grid, "mosaic")
    assert clip.last is not None and all(clip.last.used)
    fbf = [smooth(f, m, grid, "mosaic") for f, m in zip(mosaics, masks)]
    err = lambda imgs: np.mean([np.abs(a.astype(int) - t)[m].mean() for a, t, m in zip(imgs, truth, masks)])  # noqa: E731
    assert err(out) < 0.6 * err(fbf)
    assert np.mean([r[m].mean() for r, m in zip(clip.last.recovered, masks)]) > 0.2
    assert clip.restore_clip(mosaics, masks, None, "mosaic")[0].shape == mosaics[0].shape and clip.last is None


def test_multiframe_restorer_on_a_track_clip(rng):
    """The video pipeline's form: full frames, a region per frame, a fallback for the priors."""
    from types import SimpleNamespace

    from tessera.restore.restorer import resolve_model

    smooth = resolve_model("smooth")
    n, grid = 7, Grid(8, 8, 0, 0)
    truth, mosaics, masks, motions, U = _clip(rng, [(1.0 * (t - n // 2), 0.5 * (t - n // 2)) for t in range(n)], 64, 96, (40, 24, 32, 16), 8)
    regions = [Region.from_mask(m, grid) for m in masks]
    calls = []

    def fallback(clip):
        calls.append(len(clip.frames))
        return [restore_image(f, regions=[r], restorer=smooth).image for f, r in zip(clip.frames, clip.regions)]

    mf = MultiframeRestorer(smooth, fallback=fallback)
    out = mf(SimpleNamespace(frames=mosaics, regions=regions, follows_content=False))
    prior = fallback(SimpleNamespace(frames=mosaics, regions=regions))
    assert calls == [n, n] and mf.last is not None and len(mf.last_recovered) == n
    for o, f, m, p, t, r in zip(out, mosaics, masks, prior, truth, mf.last_recovered):
        assert o.shape == f.shape and np.array_equal(o[~m], f[~m])
        assert r.any() and not (r & ~m).any()
        assert np.abs(o.astype(int) - t)[m].mean() < 0.7 * np.abs(p.astype(int) - t)[m].mean()
    # a grid that follows the content: the fallback's frames as they are
    same = mf(SimpleNamespace(frames=mosaics, regions=regions, follows_content=True))
    assert mf.last is None and all(np.array_equal(a, b) for a, b in zip(same, prior))


def test_probes_stopped_early_err_towards_imagined(rng):
    # the spread is sampled from the prior's: a probe solve that stops at once leaves every pixel
    # at the prior's spread (imagined), it never marks an undetermined pixel recovered
    n = 6
    shifts = [(0.8 * (t - 3), 0.5 * (t - 3)) for t in range(n)]
    truth, mosaics, masks, motions, U = _clip(rng, shifts, 48, 48, (12, 12, 24, 24), 8)
    grid = Grid(8, 8)
    full = recover_clip(mosaics, masks, grid, motions)
    none = recover_clip(mosaics, masks, grid, motions, config=MultiframeConfig(probe_tol=1.0))
    assert sum(r.sum() for r in full.recovered) > 0.1 * sum(m.sum() for m in masks)
    assert not any(r.any() for r in none.recovered)
    assert float(np.median(np.concatenate([s[m] for s, m in zip(none.std, masks)]))) > 0.5 * MultiframeConfig().prior_std  # (interpolation averages some away)


def test_nothing_recoverable_is_left_to_the_prior(rng):
    # a twentieth of a pixel of motion determines nothing: the clip is refused (its correction to the
    # prior would be mostly noise), unless min_recovered is 0; the probes alone decide it (prepare)
    from tessera.video.multiframe import prepare

    truth, mosaics, masks, motions, U = _clip(rng, [(0.0, 0.0), (0.05, 0.0), (0.1, 0.0)], 40, 40, (8, 8, 24, 24), 8)
    grid = Grid(8, 8)
    prior = [restore_image(f, model="smooth", regions=[Region.from_mask(m, grid)]).image for f, m in zip(mosaics, masks)]
    rec = recover_clip(mosaics, masks, grid, motions, prior)
    assert "recoverable" in rec.info["rejected"] and rec.info["recoverable"] < 0.002
    assert all(np.array_equal(a, b) for a, b in zip(rec.frames, prior)) and not any(r.any() for r in rec.recovered)
    kept = recover_clip(mosaics, masks, grid, motions, prior, config=MultiframeConfig(min_recovered=0.0))
    assert "rejected" not in kept.info and any(not np.array_equal(a, b) for a, b in zip(kept.frames, prior))
    ready = prepare(mosaics, masks, grid, motions)
    assert ready.probes is not None and sorted(ready.spreads) == [0, 1, 2]
    again = recover_clip(mosaics, masks, grid, motions, prior, prepared=ready)
    assert again.info["recoverable"] == rec.info["recoverable"] and "cell_misfit" not in again.info  # no mean solved
