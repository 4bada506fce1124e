"""Every shipped weight file loads, carries its name and kwargs, and (for restoration models)
restores a real val image better than the classical 'smooth' restorer."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tessera.evaluate import psnr
from tessera.mosaic.pixelate import pixelate
from tessera.mosaic.region import Grid

ROOT = Path(__file__).resolve().parents[1]
WEIGHTS = sorted((ROOT / "weights").glob("*.safetensors"))
DATA = ROOT.parent / "shared" / "data"


def test_weights_are_small_and_have_a_card():
    for w in WEIGHTS:
        assert w.stat().st_size <= 30 * 2**20, f"{w.name} is larger than 30 MB"
        assert w.with_suffix(".md").is_file(), f"{w.name} has no card {w.with_suffix('.md').name}"


RESTORE_WEIGHTS = [w for w in WEIGHTS if w.name.startswith("restore-")]


@pytest.mark.parametrize("weight", RESTORE_WEIGHTS, ids=[w.stem for w in RESTORE_WEIGHTS])
def test_shipped_restorer_beats_smooth_on_a_val_image(weight):
    from tessera.imaging import read_image
    from tessera.models import load_model
    from tessera.restore.pipeline import restore_image

    model = load_model(weight)
    assert model.name in ("unet", "pix2pix", "deepfill") and model.kwargs
    folder = DATA / ("faces" if "faces" in weight.name else "scenes") / "val"
    if not folder.is_dir():
        pytest.skip(f"{folder} not present")
    files = sorted(folder.iterdir())[:6]
    gains = []
    for f in files:
        img, _ = read_image(f)
        H, W = img.shape[:2]
        box = (W // 4, H // 4, W // 2, H // 2)
        deg, mask = pixelate(img, boxes=[box], cell=8, phase=(3, 5))
        grid = Grid(8, 8, 3, 5)
        ours = restore_image(deg, mask, model=weight, grid=grid)
        base = restore_image(deg, mask, model="smooth", grid=grid)
        assert (ours.image[~mask] == deg[~mask]).all()
        assert ours.residual is not None and ours.residual <= 1.0
        gains.append(psnr(ours.image, img, mask) - psnr(base.image, img, mask))
    assert np.mean(gains) > 0.0, f"mean PSNR gain over smooth {np.mean(gains):.2f} dB"
