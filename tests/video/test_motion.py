"""Motion around a fixed mosaic: sub-pixel accuracy against a known camera, and honest failure."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from tessera.mosaic.pixelate import pixelate
from tessera.video.motion import Motion, MotionConfig, estimate_motion, ring_mask


def _camera(t: int, ref: int, zoom: float, v: tuple[float, float]) -> np.ndarray:
    """Frame t pixel -> photo pixel: a pan by v px/frame and a zoom about (80, 60)."""
    s = 1.0 + zoom * (t - ref)
    P = np.array([[s, 0, 0], [0, s, 0], [0, 0, 1.0]])
    P[:2, 2] = np.array([90.0, 80.0]) + np.array([80.0, 60.0]) * (1 - s) + np.array(v) * (t - ref)
    return P


def test_estimate_motion_subpixel_pan_and_zoom(photo):
    n, ref, H, W = 7, 3, 120, 160
    mask = np.zeros((H, W), bool)
    mask[40:80, 50:110] = True
    frames, masks = [], []
    for t in range(n):
        f = cv2.warpPerspective(photo, _camera(t, ref, 0.003, (0.37, -0.23)), (W, H), flags=cv2.INTER_CUBIC | cv2.WARP_INVERSE_MAP)
        mo, changed = pixelate(f, mask, cell=10, phase=(3, 7))
        frames.append(mo)
        masks.append(changed)
    motions = estimate_motion(frames, masks)
    pts = np.argwhere(masks[0])[:, ::-1].astype(np.float64)
    for t, mo in enumerate(motions):
        truth = np.linalg.inv(_camera(ref, ref, 0.003, (0.37, -0.23))) @ _camera(t, ref, 0.003, (0.37, -0.23))
        expect = (np.c_[pts, np.ones(len(pts))] @ truth.T)[:, :2]
        assert np.abs(mo.apply(pts) - expect).max() < 0.08, t
        assert mo.confidence > 0.99
    assert motions[ref].residual == 0.0 and np.array_equal(motions[ref].matrix, np.eye(3))
    # the motions are not trivial (the fixed mosaic did not pull them to zero): frame 0 moved > 1 px
    centre = np.array([[80.0, 60.0]])
    assert np.linalg.norm(motions[0].apply(centre) - centre) > 1.0


def test_textureless_ring_gives_no_confidence():
    frames = [np.full((60, 80, 3), 128, np.uint8) for _ in range(3)]
    mask = np.zeros((60, 80), bool)
    mask[20:40, 30:50] = True
    motions = estimate_motion(frames, [mask] * 3)
    assert [m.confidence for m in motions] == [0.0, 1.0, 0.0]


def test_ring_mask_leaves_out_the_guard():
    mask = np.zeros((30, 30), bool)
    mask[10:20, 10:20] = True
    ring = ring_mask(mask, ring=4, guard=2)
    assert not ring[8:22, 8:22].any()  # the region and its 2-px guard
    assert ring[4:8, 15].all() and ring[22:26, 15].all() and not ring[3, 15] and not ring[26, 15]


def test_motion_apply_and_config_errors():
    m = Motion(np.array([[1, 0, 2.5], [0, 1, -1.0], [0, 0, 1]]), 1.0, 0.0)
    assert np.allclose(m.apply(np.array([[0.0, 0.0], [3, 4]])), [[2.5, -1], [5.5, 3]])
    with pytest.raises(ValueError, match="motion model"):
        MotionConfig(model="flow")
    with pytest.raises(ValueError, match="frames but"):
        estimate_motion([np.zeros((8, 8, 3), np.uint8)], [])
    with pytest.raises(ValueError, match="reference"):
        estimate_motion([np.zeros((8, 8, 3), np.uint8)], [np.zeros((8, 8), bool)], reference=3)


def test_the_two_chains_on_threads_give_the_same_maps(photo, monkeypatch):
    import tessera.video.motion as motion

    H, W = 100, 140
    mask = np.zeros((H, W), bool)
    mask[30:70, 40:100] = True
    frames = []
    for t in range(6):
        A = np.array([[1, 0, 60 + 0.6 * t], [0, 1, 50 - 0.4 * t], [0, 0, 1.0]])
        frames.append(cv2.warpPerspective(photo, A, (W, H), flags=cv2.INTER_CUBIC | cv2.WARP_INVERSE_MAP))
    masks = [mask] * 6
    threaded = estimate_motion(frames, masks)
    monkeypatch.setattr(motion, "available_cpus", lambda: 1)
    alone = estimate_motion(frames, masks)
    assert all(np.array_equal(a.matrix, b.matrix) and a.confidence == b.confidence for a, b in zip(threaded, alone))
    assert abs(threaded[0].shift[0] - (-0.6 * 3)) < 0.1  # frame 0 is 3 frames before the reference
