"""A fitted feather whose band is flat mosaic (a mask a little off a hard-edged mosaic) is dropped."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np

from tessera.mosaic.region import Grid
from tessera.restore.pipeline import _band_is_mosaic


def _fit(shape):
    core = np.zeros(shape, bool)
    core[8:24, 8:24] = True
    weight = np.where(core, 1.0, 0.5)
    return SimpleNamespace(core=core, weight=weight, trust=np.full(shape, 0.8), noise=0.0)


def test_flat_band_is_mosaic_and_textured_band_is_not():
    rng = np.random.default_rng(0)
    m = np.ones((32, 32), bool)
    photo = (rng.random((32, 32, 3)) * 255).astype(np.uint8)
    mosaic = np.repeat(np.repeat((rng.random((4, 4, 3)) * 255).astype(np.uint8), 8, 0), 8, 1)
    g = Grid(8, 8)
    assert _band_is_mosaic(_fit(m.shape), m, mosaic, g)
    assert not _band_is_mosaic(_fit(m.shape), m, photo, g)
    blended = np.where(_fit(m.shape).core[..., None], mosaic, (0.5 * mosaic + 0.5 * photo).astype(np.uint8))
    assert not _band_is_mosaic(_fit(m.shape), m, blended, g)


def test_a_band_recovered_into_noise_is_too_rough_and_a_plausible_one_is_not():
    import cv2

    from tessera.restore.pipeline import BAND_ROUGHNESS, _band_too_rough

    rng = np.random.default_rng(0)
    photo = cv2.GaussianBlur((rng.random((48, 48, 3)) * 255).astype(np.uint8), (0, 0), 2.0)
    m = np.zeros((48, 48), bool)
    m[8:40, 8:40] = True
    fit = _fit((48, 48))
    fit.core = fit.core & False
    fit.core[12:36, 12:36] = True
    restored = photo.copy()  # the restorer's guess in the band
    fit.recovered = photo.astype(np.float64)  # the photo itself recovered: as rough as around it
    assert not _band_too_rough(fit, m, photo, restored)
    fit.recovered = photo + rng.normal(0, 40, photo.shape)  # a wrong profile: amplified into noise
    assert _band_too_rough(fit, m, photo, restored)
    assert BAND_ROUGHNESS == 2.0
