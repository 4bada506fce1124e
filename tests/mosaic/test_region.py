"""Region: a box and the mask inside it (no image-sized array per region)."""

import numpy as np
import pytest

from tessera.mosaic.region import Grid, Region, mask_box


@pytest.fixture
def mask():
    rng = np.random.default_rng(3)
    m = np.zeros((40, 60), bool)
    m[10:25, 20:50] = rng.random((15, 30)) > 0.3
    m[10, 20] = m[24, 49] = True  # the box's corners are set: box (20, 10, 30, 15)
    return m


def test_from_mask_keeps_the_box_only_and_gives_the_mask_back(mask):
    r = Region.from_mask(mask, Grid(6, 6, 1, 2), kind="mosaic")
    assert r.box == (20, 10, 30, 15) == mask_box(mask) and r.shape == (40, 60)
    assert r.crop.shape == (15, 30) and r.crop.base is None  # a copy, not a view of the big mask
    assert r.area == int(mask.sum())
    assert np.array_equal(r.full_mask(), mask)
    for x0, y0, x1, y1 in [(0, 0, 60, 40), (25, 5, 35, 30), (0, 0, 21, 11), (45, 20, 60, 40), (0, 30, 10, 40)]:
        assert np.array_equal(r.mask_in(x0, y0, x1, y1), mask[y0:y1, x0:x1])
    total = np.zeros((40, 60), bool)
    total[0, 0] = True
    r.paint(total)
    assert total[0, 0] and np.array_equal(total[1:], mask[1:])


def test_a_crop_must_match_its_box():
    with pytest.raises(ValueError, match="box"):
        Region(np.ones((4, 5), bool), (0, 0, 4, 4), (10, 10))
    with pytest.raises(ValueError, match="bool"):
        Region(np.ones((4, 4), np.uint8), (0, 0, 4, 4), (10, 10))


@pytest.mark.parametrize("dx, dy", [(0, 0), (5, -3), (-25, 0), (20, 20), (-3, -12)])
def test_moved_drops_what_leaves_the_image_and_keeps_the_box(mask, dx, dy):
    r = Region.from_mask(mask, score=0.7)
    moved = r.moved(dx, dy, extra={"filled": True})
    expect = np.zeros_like(mask)
    ys, xs = np.nonzero(mask)
    keep = (ys + dy >= 0) & (ys + dy < 40) & (xs + dx >= 0) & (xs + dx < 60)
    expect[ys[keep] + dy, xs[keep] + dx] = True
    assert moved.box == (20 + dx, 10 + dy, 30, 15) and moved.score == 0.7 and moved.extra == {"filled": True}
    assert np.array_equal(moved.full_mask(), expect) and moved.area == int(expect.sum())
    assert r.area == int(mask.sum())  # the original is untouched


def test_window_and_back(mask):
    r = Region.from_mask(mask, Grid(6, 6, 1, 2))
    local = r.window(12, 4, 55, 30)
    assert local.shape == (26, 43) and local.box == (8, 6, 30, 15)
    assert np.array_equal(local.full_mask(), mask[4:30, 12:55])
    assert local.grid == Grid(6, 6, (1 - 4) % 6, (2 - 12) % 6)
    back = local.window(-12, -4, 60 - 12, 40 - 4)
    assert back.box == r.box and back.shape == r.shape and back.grid == r.grid
    assert np.array_equal(back.full_mask(), mask)
