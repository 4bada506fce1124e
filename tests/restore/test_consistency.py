"""Mosaic-consistency projection and the blend: exact guarantees on synthetic cases."""

from __future__ import annotations

import numpy as np
import pytest

from tessera.mosaic.pixelate import pixelate
from tessera.mosaic.region import Grid
from tessera.restore.blend import blend, feather_alpha
from tessera.restore.consistency import project, remosaic_residual


@pytest.mark.parametrize("grid", [Grid(12, 12, 0, 0, "mean"), Grid(7, 10, 3, 9, "mean"), Grid(8, 8, 5, 2, "centre")])
def test_projection_makes_remosaic_exact(rng, grid):
    img = rng.integers(0, 256, (90, 100, 3), dtype=np.uint8)
    degraded, mask = pixelate(img, boxes=[(13, 9, 60, 50)], cell=grid.cell, phase=grid.phase, sampling=grid.sampling)
    guess = np.clip(0.5 * img + rng.integers(-60, 60, img.shape), 0, 255).astype(np.uint8)
    before = remosaic_residual(guess, degraded, mask, grid)
    res = project(guess, degraded, mask, grid)
    assert before > 5
    assert res.residual_max == 0.0 and res.cells > 0
    # re-pixelating the projected image reproduces the observed mosaic exactly
    again, _ = pixelate(res.image, mask, cell=grid.cell, phase=grid.phase, sampling=grid.sampling)
    assert (again[mask] == degraded[mask]).all()
    # nothing outside the mask moved
    assert (res.image[~mask] == guess[~mask]).all()


def test_projection_respects_clipping(rng):
    # a saturated observation: cells of 254-255 under a guess of 0 must still reach their means
    img = np.full((24, 24, 3), 255, np.uint8)
    img[::2] = 254
    grid = Grid(6, 6, 0, 0, "mean")
    degraded, mask = pixelate(img, cell=6)
    res = project(np.zeros_like(img), degraded, mask, grid)
    assert res.residual_max == 0.0
    assert res.image.min() >= 250


def test_projection_keeps_a_consistent_image_unchanged(rng):
    img = rng.integers(0, 256, (48, 48, 3), dtype=np.uint8)
    grid = Grid(8, 8, 0, 0, "mean")
    degraded, mask = pixelate(img, cell=8)
    res = project(img, degraded, mask, grid)
    # the truth is already consistent: nothing moves
    assert (res.image == img).all()
    assert res.residual_max == 0.0


def test_blend_is_exact_outside_the_mask(rng):
    a = rng.integers(0, 256, (30, 30, 3), dtype=np.uint8)
    b = rng.integers(0, 256, (30, 30, 3), dtype=np.uint8)
    m = np.zeros((30, 30), bool)
    m[5:25, 8:20] = True
    out = blend(a, b, m, feather=3)
    assert (out[~m] == a[~m]).all()
    assert (out[15, 14] == b[15, 14]).all()  # deep inside: fully restored
    alpha = feather_alpha(m, 3)
    assert alpha[5, 14] == pytest.approx(0.25) and alpha[~m].max() == 0


@pytest.mark.parametrize("grid", [Grid(10, 10, 4, 7, "mean"), Grid(6, 9, 1, 2, "centre")])
def test_projection_of_a_region_in_a_large_image_equals_that_of_its_box(rng, grid):
    # project works on the constrained cells and one cell around them: the same pixels come out
    # whether the region sits in a small image or in a large one (grid moved with the window)
    big = rng.integers(0, 256, (160, 200, 3), dtype=np.uint8)
    degraded, mask = pixelate(big, boxes=[(61, 47, 55, 44)], cell=grid.cell, phase=grid.phase, sampling=grid.sampling)
    guess = np.clip(0.6 * big + rng.integers(-50, 50, big.shape), 0, 255).astype(np.uint8)
    y0, x0 = 20, 30  # a window that still holds every cell the mask touches and one around them
    small = project(guess[y0:, x0:], degraded[y0:, x0:], mask[y0:, x0:], grid.window(x0, y0), tolerance=0.0)
    whole = project(guess, degraded, mask, grid)
    assert np.array_equal(whole.image[y0:, x0:], small.image)
    assert np.array_equal(whole.image[:y0], guess[:y0]) and whole.residual_max == small.residual_max == 0.0
    assert whole.cells == small.cells > 0
