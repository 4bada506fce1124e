"""tessera.anonymize: redaction covers every box, only the boxes, and the config refuses nonsense."""

from __future__ import annotations

import numpy as np
import pytest

from tessera.anonymize import AnonymizeConfig, auto_cell, redact


@pytest.mark.parametrize("method", ["mosaic", "blur", "solid"])
def test_redact_covers_every_box_and_nothing_else(method, rng):
    im = rng.integers(0, 256, (90, 120, 3), dtype=np.uint8)
    boxes = [(5, 7, 33, 21), (100, 70, 20, 20), (50, 40, 9, 9)]
    out, mask, info = redact(im, boxes, method=method, cell=6)
    for x, y, w, h in boxes:
        assert mask[y : y + h, x : x + w].all()
        # every pixel of the box changed unless it happened to equal the replacement
        assert (out[y : y + h, x : x + w] != im[y : y + h, x : x + w]).any(axis=2).mean() > 0.9
    np.testing.assert_array_equal(out[~mask], im[~mask])
    assert len(info) == 3 and all(i["method"] == method for i in info)
    if method == "mosaic":
        x, y, w, h = info[[i["box"] for i in info].index([5, 7, 36, 24])]["box"]  # grown to whole 6-px cells
        cells = out[y : y + h, x : x + w].reshape(4, 6, 6, 6, 3)
        assert (cells == cells[:, :1, :, :1]).all()  # each cell is one colour
        np.testing.assert_allclose(cells[0, 0, 0, 0], im[7:13, 5:11].reshape(-1, 3).mean(0), atol=0.5)
        # a box at the image's edge is clipped, not grown past it
        assert info[[i["box"][:2] for i in info].index([100, 70])]["box"] == [100, 70, 20, 20]


def test_auto_cell_scales_with_the_region():
    assert auto_cell((0, 0, 30, 30)) == 5
    assert auto_cell((0, 0, 300, 120)) == 50
    assert auto_cell((0, 0, 8, 8)) == 4  # never below 4 px
    out, mask, info = redact(np.zeros((400, 400, 3), np.uint8), [(0, 0, 60, 60), (100, 100, 240, 240)], method="mosaic")
    assert sorted(i["cell"] for i in info) == [10, 40]


def test_config_refuses_nonsense():
    for bad in [dict(find=()), dict(find=("ears",)), dict(find="faces"), dict(method="swirl"), dict(cell=1), dict(pad=-0.1), dict(threshold=1.0)]:
        with pytest.raises(ValueError):
            AnonymizeConfig(**bad)
    AnonymizeConfig(find=("faces", "text"), method="blur", cell=8, pad=0.0, threshold=0.3)
