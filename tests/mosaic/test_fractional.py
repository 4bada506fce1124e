"""Lattices whose cells are no whole number of pixels (mosaics other tools scaled up by a
non-integer factor, or resized after pixelation): Grid.fractional, Lattice, the estimate."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from tessera.evaluate import blockiness
from tessera.mosaic.grid import _captured, _fourier, _quantile, estimate_grid, fit_pitch, lattice_fit
from tessera.mosaic.lattice import Lattice, lattice
from tessera.mosaic.region import Grid
from tessera.mosaic.synth import _resize_mosaic, zoo_apply


def test_fractional_lattice_starts_cells_at_the_first_pixel_after_each_edge():
    index, starts, ends, centres = lattice(20, 3, 0, 2.5, 0.5)  # edges at 0.5, 3, 5.5, 8, ...
    assert starts.tolist() == [0, 1, 3, 6, 8, 11, 13, 16, 18]
    assert ends.tolist() == [1, 3, 6, 8, 11, 13, 16, 18, 20]
    assert (index == np.repeat(np.arange(9), ends - starts)).all()
    assert centres.tolist() == [0, 1, 4, 6, 9, 11, 14, 16, 18]


def test_whole_pitches_are_the_plain_lattice():
    g = Grid.fractional(6.0, 5.0, 2.0, 3.0, "centre")
    assert g == Grid(6, 5, 2, 3, "centre") and g.pitch is None
    for n, cell, phase in ((20, 5, 2), (23, 4, 3), (7, 7, 0)):
        a, b = lattice(n, cell, phase), lattice(n, cell, phase, float(cell), float(phase))
        assert all((x == y).all() for x, y in zip(a, b))


def test_window_moves_a_fractional_lattice_and_back():
    g = Grid.fractional(7.4, 9.25, 3.3, 1.5)
    assert g.pitch == (7.4, 9.25) and (g.cell_h, g.cell_w) == (7, 9)
    w = g.window(10, 4)
    assert w.origin == pytest.approx(((3.3 - 4) % 7.4, (1.5 - 10) % 9.25))
    back = w.window(-10, -4)
    assert back.origin == pytest.approx(g.origin)
    full, crop = Lattice((60, 80), g), Lattice((40, 50), w)
    assert set(crop.rs.tolist()) - {0} == {s - 4 for s in full.rs.tolist() if 4 < s < 44}
    with pytest.raises(ValueError):
        Grid(7, 9, 0, 0, "mean", (7.4, 0.5), (0.0, 0.0))


def _tool_mosaic(cell: int = 9, size: int = 120, seed: int = 0):
    rng = np.random.default_rng(seed)
    img = (rng.random((size, size, 3)) * 255).astype(np.uint8)
    region = np.zeros((size, size), bool)
    region[10:110, 7:104] = True  # 100 x 97 px: 11 cells of 9.09 x 8.82 px (ImageMagick -scale)
    out, mask, grid, nominal, _ = zoo_apply(img, region, rng, "magick", cell=(cell, cell))
    return out, mask, grid, nominal


def test_estimate_finds_the_fractional_cells_of_a_scaled_mosaic():
    out, mask, grid, nominal = _tool_mosaic()
    assert grid is None and nominal.pitch == pytest.approx((100 / 11, 97 / 11))
    est = estimate_grid(out, mask, fractional=True)
    assert est is not None and est.grid.pitch is not None
    # the cells inside the region are the tool's (an axis whose cells there are all 9 px may stay whole)
    got, want = Lattice(mask.shape, est.grid), Lattice(mask.shape, nominal)
    for a, b, lo, hi in ((got.rs, want.rs, 10, 110), (got.cs, want.cs, 7, 104)):
        inner = lambda v: set(v[(v > lo + 9) & (v < hi - 9)].tolist())  # noqa: E731 (the edge cells may differ by a pixel)
        assert inner(a) == inner(b)
    # every cell the estimate sees is flat (the whole-pixel lattice drifts off the edges)
    assert lattice_fit(out, mask, est.grid) > 100 * lattice_fit(out, mask, Grid(9, 9, 1, 7))
    plain = estimate_grid(out, mask)  # the default stays whole-pixel
    assert plain is None or plain.grid.pitch is None


def test_integer_mosaics_keep_their_whole_pixel_lattice():
    rng = np.random.default_rng(1)
    img = (rng.random((128, 128, 3)) * 255).astype(np.uint8)
    region = np.zeros((128, 128), bool)
    region[16:112, 8:120] = True
    out, mask, grid, _, _ = zoo_apply(img, region, rng, "mean", cell=(8, 8))
    est = estimate_grid(out, mask, fractional=True)
    assert est is not None and est.grid.pitch is None and est.grid.cell == (8, 8)


def test_fit_pitch_prefers_the_cell_over_its_multiples_and_divisors():
    rng = np.random.default_rng(2)
    e = rng.random(300)
    lines = np.ceil(1.7 + np.arange(80) * 5.11 - 1e-9).astype(int)
    e[lines[lines < 300]] += 20
    count = np.ones(300)
    pitch, origin, share = fit_pitch(e, count)
    assert pitch == pytest.approx(5.11, abs=0.01) and share > 0.8
    assert (np.ceil(origin + np.arange(58) * pitch - 1e-9).astype(int) == lines[:58]).mean() > 0.95


def test_blockiness_follows_fractional_edges():
    box = (np.random.default_rng(3).random((99, 99, 3)) * 255).astype(np.uint8)
    tiles = _resize_mosaic(box, (9, 9), "area", "nearest")  # 11 cells of 9 px: whole
    mask = np.ones((99, 99), bool)
    assert blockiness(tiles, mask, Grid(9, 9)) == pytest.approx(blockiness(tiles, mask, Grid.fractional(9.0, 9.0)))
    odd = _resize_mosaic(box[:97, :97], (9, 9), "area", "nearest")  # 11 cells of 8.82 px
    m = np.ones((97, 97), bool)
    assert blockiness(odd, m, Grid.fractional(97 / 11, 97 / 11)) > 2 * blockiness(odd, m, Grid(9, 9))


def test_a_small_region_takes_fractional_cells_whose_pairs_the_whole_lattice_read(monkeypatch):
    # a 32 x 39 px box of ffmpeg-nearest cells of 6.4 x 6.5 px: the whole-pixel fit reads pairs of
    # 13 px; the region is under FRACTION_SPAN, but 13 is two of the fractional cells
    import cv2

    import tessera.mosaic.grid as grid_mod

    rng = np.random.default_rng(0)
    img = cv2.GaussianBlur((rng.random((80, 90, 3)) * 255).astype(np.uint8), (0, 0), 1.5)
    region = np.zeros((80, 90), bool)
    region[20:52, 30:69] = True
    out, mask, _, nominal, _ = zoo_apply(img, region, rng, "ffmpeg-nearest", cell=(6, 6))
    assert nominal.pitch == pytest.approx((6.4, 6.5))
    est = estimate_grid(out, mask, fractional=True)
    assert est is not None and est.grid.pitch == pytest.approx((6.4, 6.5), abs=0.25)
    monkeypatch.setattr(grid_mod, "FRACTION_SPAN_MULTIPLE", grid_mod.FRACTION_SPAN)  # the rule off
    old = estimate_grid(out, mask, fractional=True)
    assert old is not None and old.grid.cell_w == 13


def test_fourier_of_the_profile_equals_the_direct_sum():
    rng = np.random.default_rng(3)
    for n, lo in ((7, 0), (50, 13), (301, 4)):
        e = rng.random(n)
        pitches = 3.0 * 1.01 ** np.arange(120)
        x = np.arange(lo, lo + n)
        direct = np.exp(-2j * np.pi * x[None, :] / pitches[:, None]) @ e
        assert np.allclose(_fourier(e, lo, pitches), direct, rtol=0, atol=1e-9 * e.sum())


def test_captured_energy_for_many_pitches_equals_one_pitch_at_a_time():
    rng = np.random.default_rng(4)
    energy = rng.random(200)
    pitches = 7.3 * (1 + 0.01 * np.linspace(-1, 1, 9))
    origins = (2.2 + np.linspace(-1, 1, 11)[None, :]) % pitches[:, None]
    many = _captured(energy, 5, 190, pitches, origins)
    for p, o, row in zip(pitches, origins, many):
        assert np.allclose(row, _captured(energy, 5, 190, float(p), o), rtol=1e-12, atol=0)
    # by hand: the lines ceil(origin + k * pitch) inside [5, 190)
    lines = np.ceil(origins[0, 0] + np.arange(-2, 30) * pitches[0] - 1e-9).astype(int)
    assert many[0, 0] == pytest.approx(energy[lines[(lines >= 5) & (lines < 190)]].sum())


def test_quantile_is_numpys():
    rng = np.random.default_rng(5)
    for n in (1, 2, 3, 4, 5, 8, 33, 400):
        a = rng.standard_normal(n)
        for q in (0.0, 0.25, 0.5, 0.6, 0.75, 1.0):
            assert _quantile(a.copy(), q) == float(np.quantile(a, q))


def test_min_score_keeps_an_estimate_above_it_and_drops_one_below():
    out, mask, _, _ = _tool_mosaic()
    est = estimate_grid(out, mask, fractional=True)
    same = estimate_grid(out, mask, fractional=True, min_score=est.score - 1e-6)
    assert same == est
    assert estimate_grid(out, mask, fractional=True, min_score=est.score + 1e-6) is None
    # a clean photo's weak lattice: dropped once it falls below the bar, without the fractional search
    rng = np.random.default_rng(6)
    photo = cv2.GaussianBlur((rng.random((96, 96, 3)) * 255).astype(np.uint8), (0, 0), 2)
    weak = estimate_grid(photo, None, fractional=True)
    bar = 0.05 if weak is None else weak.score + 0.05
    assert estimate_grid(photo, None, fractional=True, min_score=bar) is None
