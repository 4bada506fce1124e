"""``--model auto``: RoutingRestorer sends face regions to the faces model and the rest to scenes."""

from __future__ import annotations

import numpy as np

from tessera.mosaic.region import Grid
from tessera.restore.pipeline import DEFAULT_MODEL, restore_image
from tessera.restore.restorer import RoutingRestorer, resolve_model


class Fill:
    def __init__(self, name, value):
        self.name, self.value, self.calls = name, value, 0

    def __call__(self, image, mask, grid, kind):
        self.calls += 1
        out = image.copy()
        out[mask] = self.value
        return out


def _case():
    img = np.full((64, 64, 3), 100, np.uint8)
    mask = np.zeros((64, 64), bool)
    mask[16:48, 16:48] = True
    return img, mask


def test_faces_when_a_face_covers_the_region_else_scenes():
    img, mask = _case()
    faces, scenes = Fill("faces", 200), Fill("scenes", 50)
    r = RoutingRestorer(faces, scenes, detect=lambda im: [(10, 10, 40, 40)])
    assert r.name == "auto"
    out = r(img, mask, Grid(8, 8, 0, 0, "mean"), "mosaic")
    assert (out[mask] == 200).all() and r.name == "faces" and scenes.calls == 0
    r.begin()
    far = RoutingRestorer(faces, scenes, detect=lambda im: [(0, 0, 8, 8)])  # a face elsewhere: not this region's
    out = far(img, mask, None, "hole")
    assert (out[mask] == 50).all() and far.name == "scenes" and far.routes == ["scenes"]


def test_a_face_found_only_after_a_first_restoration_goes_to_faces():
    img, mask = _case()
    faces, scenes = Fill("faces", 200), Fill("scenes", 50)
    seen = []

    def detect(im):  # finds a face only once the region shows scenes's fill
        seen.append(int(im[32, 32, 0]))
        return [(16, 16, 32, 32)] if im[32, 32, 0] == 50 else []

    r = RoutingRestorer(faces, scenes, detect=detect)
    out = r(img, mask, None, "mosaic")
    assert (out[mask] == 200).all() and scenes.calls == 1 and faces.calls == 1 and seen == [100, 50]


def test_auto_is_the_default_and_names_the_models_it_used():
    assert DEFAULT_MODEL == "auto"
    r = resolve_model("default")
    assert isinstance(r, RoutingRestorer)
    img, mask = _case()
    r._detect = lambda im: []
    res = restore_image(img, mask, restorer=r, kind="hole")
    assert res.model == "scenes"
    r._detect = lambda im: [(0, 0, 64, 64)]
    assert restore_image(img, mask, restorer=r, kind="hole").model == "faces"


def test_a_network_restorer_reuses_the_routing_smooth_prefill(monkeypatch):
    import tessera.restore.restorer as R
    from tessera.mosaic.pixelate import pixelate

    rng = np.random.default_rng(0)
    img = pixelate((rng.random((64, 64, 3)) * 255).astype(np.uint8), boxes=[(8, 8, 48, 40)], cell=8)[0]
    mask = np.zeros((64, 64), bool)
    mask[8:48, 8:56] = True
    grid = Grid(8, 8, 0, 0, "mean")
    scenes = resolve_model("scenes", quality="fast")
    assert scenes.runner.info.get("prefill") == "smooth"
    alone = scenes(img, mask, grid, "mosaic")
    calls = []
    smooth = R.CLASSICAL["smooth"]
    monkeypatch.setitem(R.CLASSICAL, "smooth", lambda *a: calls.append(1) or smooth(*a))
    r = RoutingRestorer(Fill("faces", 200), scenes, detect=lambda im: [])
    out = r(img, mask, grid, "mosaic")
    assert np.array_equal(out, alone) and r.routes == ["scenes"] and len(calls) == 1
