"""Detection speed work keeps detection's output: the segnet in bands equals one pass, and the
box-local component analysis finds the same regions."""

from __future__ import annotations

import numpy as np
import pytest

from tessera.detect import mosaics as M


def _tiny_segnet():
    import torch

    from tessera.models import build_model
    from tessera.models.segnet import fuse_batchnorm

    torch.manual_seed(0)
    net = build_model("segnet", fold=2, base=4, depth=2)
    return fuse_batchnorm(net.eval()).fold_stem()


def test_bands_equal_one_pass(photo, monkeypatch):
    from tessera.restore.backend import TorchRunner

    runner = TorchRunner(_tiny_segnet())
    tall = np.concatenate([photo, photo[::-1], photo])  # 864 x 352
    whole = M.probability_map(tall, runner)
    monkeypatch.setattr(M, "BAND_PIXELS", 60_000)  # 6 bands of 160 rows (on the 32-px grid), 256 rows of context
    calls = []
    inner = runner.__call__

    class Spy:
        backend, info = runner.backend, runner.info

        def __call__(self, x):
            calls.append(x.shape[-2])
            return inner(x)

    banded = M.probability_map(tall, Spy())
    assert len(calls) == 6 and max(calls) == 160 + 2 * 256
    assert banded.shape == whole.shape and np.abs(banded - whole).max() < 1e-6


@pytest.mark.parametrize("kind", ["mosaic", "clean"])
def test_regions_use_the_component_box(photo, kind):
    from tessera.mosaic.pixelate import pixelate

    image = pixelate(photo, boxes=[(60, 50, 120, 96)], cell=12)[0] if kind == "mosaic" else photo
    prob = np.zeros(photo.shape[:2], np.float32)
    prob[50:146, 60:180] = 0.97  # a sure net over the mosaic's box (and over a clean patch)
    prob[200:240, 250:300] = 0.7
    regions = M._regions_from_probability(image, prob, M.DetectConfig())
    if kind == "mosaic":
        assert len(regions) == 1 and regions[0].grid is not None and regions[0].grid.cell == (12, 12)
        x, y, w, h = regions[0].box
        ys, xs = np.nonzero(regions[0].full_mask())
        assert (x, y, w, h) == (xs.min(), ys.min(), np.ptp(xs) + 1, np.ptp(ys) + 1)  # the box is the mask's
        assert abs(regions[0].area - 120 * 96) <= 2 * 12 * (120 + 96)
    for r in regions:  # each region holds its box's mask only, no image-sized array
        assert r.crop.shape == r.box[:1:-1] and r.crop.dtype == bool and r.shape == photo.shape[:2]
        assert r.crop.base is None or r.crop.base.size == r.crop.size


def test_the_runtime_is_asked_to_free_its_buffers_after_the_last_band_only(photo, monkeypatch):
    """A large image (several bands) asks the runner to release its buffer arena with its last band;
    a one-band image (a video frame) never does (re-growing the arena on every call would cost time)."""
    from tessera.restore.backend import TorchRunner

    runner = TorchRunner(_tiny_segnet())
    tall = np.concatenate([photo, photo[::-1], photo])
    events = []

    class Spy:
        backend, info = runner.backend, runner.info

        def __call__(self, x):
            events.append("run")
            return runner(x)

        def release_after_next(self):
            events.append("release")

    M.probability_map(tall, Spy())
    assert events == ["run"]  # one band
    events.clear()
    monkeypatch.setattr(M, "BAND_PIXELS", 60_000)
    M.probability_map(tall, Spy())
    assert events == ["run"] * 5 + ["release", "run"]
