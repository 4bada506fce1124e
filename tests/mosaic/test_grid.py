"""Grid analysis: cell size and phase measured exactly from pixels; no lattice in clean images."""

from __future__ import annotations

import numpy as np
import pytest

from tessera.mosaic.grid import estimate_grid, fit_axis
from tessera.mosaic.pixelate import pixelate
from tessera.mosaic.synth import jpeg


@pytest.mark.parametrize("cell", [4, 5, 7, 8, 12, 16, 23, 32])
def test_exact_square_cells_whole_image(photo, cell):
    for phase in sorted({0, 1, cell // 2, cell - 1}):
        out, _ = pixelate(photo, cell=cell, phase=(phase, (phase + 3) % cell))
        est = estimate_grid(out)
        assert est is not None
        assert est.grid.cell == (cell, cell)
        assert est.grid.phase == (phase, (phase + 3) % cell)
        assert est.score > 0.9


def test_every_phase_of_a_cell(photo):
    crop = photo[:160, :200]
    for py in range(9):
        for px in range(0, 9, 2):
            out, _ = pixelate(crop, cell=9, phase=(py, px), sampling="centre" if (py + px) % 2 else "mean")
            est = estimate_grid(out)
            assert est is not None and est.grid.cell == (9, 9) and est.grid.phase == (py, px)


@pytest.mark.parametrize("cell", [(6, 14), (20, 9), (4, 32), (17, 11)])
def test_rectangular_cells_in_a_region(photo, cell):
    region = np.zeros(photo.shape[:2], bool)
    region[40:240, 60:300] = True
    out, changed = pixelate(photo, region, cell=cell, phase=(3, 2))
    est = estimate_grid(out, changed)
    assert est is not None
    assert est.grid.cell == cell
    assert est.grid.phase == (3 % cell[0], 2 % cell[1])


@pytest.mark.parametrize("quality", [90, 75])
def test_jpeg_compressed_mosaic(photo, quality):
    for cell, phase in [(12, (5, 7)), (10, (0, 3)), (16, (8, 8))]:
        out, _ = pixelate(photo, cell=cell, phase=phase)
        est = estimate_grid(jpeg(out, quality))
        assert est is not None and est.grid.cell == (cell, cell) and est.grid.phase == phase


def test_clean_images_have_no_lattice(photo):
    assert estimate_grid(photo) is None or estimate_grid(photo).score < 0.1
    blocky = jpeg(photo, 20)  # strong 8x8 JPEG blocks
    est = estimate_grid(blocky)
    assert est is None or est.score < 0.15
    flat = np.full((64, 64, 3), 120, np.uint8)
    assert estimate_grid(flat) is None


def test_fit_axis_prefers_the_cell_over_its_multiples_and_divisors():
    e = np.zeros(200)
    e[3::10] = 1.0
    e[3::20] = 1.6  # every other line stronger: still period 10, not 20
    fit = fit_axis(e, np.ones(200))
    assert (fit.period, fit.phase) == (10, 3)


def test_tiny_inputs():
    assert estimate_grid(np.zeros((3, 3, 3), np.uint8)) is None
    assert estimate_grid(np.zeros((1, 200, 3), np.uint8)) is None
