"""Pixelation invariants (numpy), and exact agreement of the torch version."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from tessera.mosaic.masks import RegionError, region_mask
from tessera.mosaic.lattice import lattice
from tessera.mosaic.pixelate import pixelate, pixelate_torch


def cells_of(H, W, cell, phase):
    """Reference enumeration of cells as (y0, y1, x0, x1), independent of the implementation."""
    ch, cw = cell
    py, px = phase
    ys = sorted({0, H} | {y for y in range(py % ch, H, ch)})
    xs = sorted({0, W} | {x for x in range(px % cw, W, cw)})
    return [(y0, y1, x0, x1) for y0, y1 in zip(ys, ys[1:]) for x0, x1 in zip(xs, xs[1:])]


@pytest.mark.parametrize("cell,phase", [((12, 12), (0, 0)), ((8, 13), (3, 5)), ((5, 5), (4, 1)), ((32, 7), (31, 6))])
def test_mean_sampling_keeps_every_cell_mean(rng, cell, phase):
    img = rng.integers(0, 256, (70, 90, 3), dtype=np.uint8)
    out, changed = pixelate(img, cell=cell, phase=phase, sampling="mean")
    assert changed.all()
    for y0, y1, x0, x1 in cells_of(70, 90, cell, phase):
        block = out[y0:y1, x0:x1].reshape(-1, 3)
        assert (block == block[0]).all(), "a cell must be flat"
        true_mean = img[y0:y1, x0:x1].reshape(-1, 3).mean(0)
        assert np.abs(block[0] - true_mean).max() <= 0.5 + 1e-9


def test_centre_sampling_copies_the_centre_pixel(rng):
    img = rng.integers(0, 256, (40, 50, 3), dtype=np.uint8)
    out, _ = pixelate(img, cell=(6, 9), phase=(2, 4), sampling="centre")
    for y0, y1, x0, x1 in cells_of(40, 50, (6, 9), (2, 4)):
        cy, cx = (y0 + y1 - 1) // 2, (x0 + x1 - 1) // 2
        assert (out[y0:y1, x0:x1] == img[cy, cx]).all()


def test_phase_moves_the_lattice(rng):
    img = rng.integers(0, 256, (48, 48, 3), dtype=np.uint8)
    a, _ = pixelate(img, cell=8, phase=(0, 0))
    b, _ = pixelate(img, cell=8, phase=(3, 5))
    # cell edges: rows where the mosaic jumps
    def edges(o, axis):
        d = np.abs(np.diff(o.astype(int), axis=axis)).sum(axis=(1 - axis, 2))
        return set(np.flatnonzero(d) + 1)
    assert edges(a, 0) <= {8, 16, 24, 32, 40} and edges(a, 1) <= {8, 16, 24, 32, 40}
    assert edges(b, 0) <= {3, 11, 19, 27, 35, 43} and edges(b, 1) <= {5, 13, 21, 29, 37, 45}
    assert len(edges(b, 0)) >= 5 and len(edges(b, 1)) >= 5
    # shifting image and phase together shifts the result
    c, _ = pixelate(np.roll(img, (3, 5), axis=(0, 1)), cell=8, phase=(3, 5))
    assert (c[3:43, 5:45] == a[0:40, 0:40]).all()


def test_box_changes_exactly_the_cells_whose_centre_is_inside(rng):
    img = rng.integers(0, 256, (120, 160, 3), dtype=np.uint8)
    box = (30, 20, 50, 37)  # x, y, w, h: not aligned with the 12-px lattice
    out, changed = pixelate(img, boxes=[box], cell=12)
    expected = np.zeros((120, 160), bool)
    for y0, y1, x0, x1 in cells_of(120, 160, (12, 12), (0, 0)):
        cy, cx = (y0 + y1 - 1) // 2, (x0 + x1 - 1) // 2
        if 20 <= cy < 57 and 30 <= cx < 80:
            expected[y0:y1, x0:x1] = True
    assert (changed == expected).all()
    assert (out[~changed] == img[~changed]).all()
    # and inside, random pixels really changed
    assert (out != img).any(-1)[changed].mean() > 0.9


def test_ellipse_and_mask_union(rng):
    img = rng.integers(0, 256, (60, 60, 3), dtype=np.uint8)
    m = np.zeros((60, 60), bool)
    m[50:, 50:] = True
    out, changed = pixelate(img, m, ellipses=[(0, 0, 30, 30)], cell=4)
    assert changed[14, 14] and changed[55, 55] and not changed[2, 28] and not changed[40, 5]
    assert (out[~changed] == img[~changed]).all()


def test_feather_blends_outward_only(rng):
    img = rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)
    hard, hard_mask = pixelate(img, boxes=[(16, 16, 32, 32)], cell=8)
    soft, soft_mask = pixelate(img, boxes=[(16, 16, 32, 32)], cell=8, feather=4)
    assert (soft[hard_mask] == hard[hard_mask]).all(), "inside the cells the mosaic is full strength"
    ring = soft_mask & ~hard_mask
    assert ring.sum() == (32 + 8) ** 2 - 32**2  # a 4-pixel ring around the 32x32 block
    assert (soft[~soft_mask] == img[~soft_mask]).all()
    # half-way weights: at distance 2 of 4 the pixel is 3/5 mosaic
    full, _ = pixelate(img, cell=8)
    y, x = 30, 14  # two pixels left of the block
    expect = (3 * full[y, x].astype(int) + 2 * img[y, x].astype(int) + 2) // 5
    assert (soft[y, x] == expect).all()


def test_blur_variant(rng):
    img = rng.integers(0, 256, (50, 50, 3), dtype=np.uint8)
    out, changed = pixelate(img, boxes=[(10, 10, 20, 20)], blur=3.0)
    assert changed.sum() == 400
    assert (out[~changed] == img[~changed]).all()
    assert out[changed].astype(float).std() < img[changed].astype(float).std() / 3


def test_whole_image_and_cell_larger_than_image(rng):
    img = rng.integers(0, 256, (10, 7, 3), dtype=np.uint8)
    out, changed = pixelate(img, cell=64)
    assert changed.all()
    assert (out == out[0, 0]).all(), "one cell covers the whole image"
    assert np.abs(out[0, 0].astype(float) - img.reshape(-1, 3).mean(0)).max() <= 0.5


def test_empty_mask_changes_nothing(rng):
    img = rng.integers(0, 256, (20, 20, 3), dtype=np.uint8)
    out, changed = pixelate(img, np.zeros((20, 20), bool))
    assert not changed.any() and (out == img).all()


def test_bad_regions_raise_clear_errors(rng):
    img = rng.integers(0, 256, (20, 30, 3), dtype=np.uint8)
    with pytest.raises(RegionError, match="outside"):
        pixelate(img, boxes=[(100, 100, 10, 10)])
    with pytest.raises(RegionError, match="size"):
        pixelate(img, np.zeros((21, 30), bool))
    with pytest.raises(ValueError, match="at least 1"):
        pixelate(img, cell=0)
    with pytest.raises(ValueError, match="sampling"):
        pixelate(img, sampling="median")
    with pytest.raises(ValueError, match="uint8"):
        pixelate(img.astype(np.float32))


def test_lattice_covers_axis_once():
    for n in [1, 7, 50]:
        for c in [1, 4, 12, 60]:
            for p in range(min(c, 5)):
                idx, s, e, cen = lattice(n, c, p)
                assert s[0] == 0 and e[-1] == n and (s[1:] == e[:-1]).all()
                assert ((cen >= s) & (cen < e)).all()
                assert (np.diff(idx) >= 0).all()


@pytest.mark.parametrize("sampling", ["mean", "centre"])
@pytest.mark.parametrize("feather", [0, 3])
def test_torch_matches_numpy_exactly(rng, sampling, feather):
    N, H, W = 4, 45, 53
    imgs = rng.integers(0, 256, (N, H, W, 3), dtype=np.uint8)
    cells = [(12, 12), (5, 9), (16, 4), (60, 60)]
    phases = [(0, 0), (3, 7), (15, 1), (10, 59)]
    regions = [region_mask((H, W), boxes=[(5 * i, 3 * i, 25, 20)], ellipses=[(20, 20, 30, 20)]) for i in range(N)]
    t_out, t_changed = pixelate_torch(
        torch.from_numpy(imgs).permute(0, 3, 1, 2),
        torch.from_numpy(np.stack(regions)),
        cell=cells,
        phase=phases,
        sampling=sampling,
        feather=feather,
    )
    for i in range(N):
        out, changed = pixelate(imgs[i], regions[i], cell=cells[i], phase=phases[i], sampling=sampling, feather=feather)
        assert (t_out[i].permute(1, 2, 0).numpy() == out).all()
        assert (t_changed[i].numpy() == changed).all()


def test_torch_float_mean_is_the_cell_mean():
    x = torch.arange(2 * 3 * 8 * 8, dtype=torch.float32).reshape(2, 3, 8, 8) / 384.0
    out, changed = pixelate_torch(x, torch.ones(2, 8, 8, dtype=torch.bool), cell=4)
    assert changed.all()
    assert torch.allclose(out[:, :, :4, :4], x[:, :, :4, :4].mean(dim=(2, 3), keepdim=True).expand(-1, -1, 4, 4))
