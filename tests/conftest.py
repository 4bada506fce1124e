from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(1234)


@pytest.fixture
def photo() -> np.ndarray:
    """A real photo (Set5/Set14 val image) when the shared data is there, else a seeded texture."""
    from PIL import Image

    files = sorted((DATA / "scenes" / "val").glob("*.png"))
    if files:
        return np.asarray(Image.open(files[0]).convert("RGB"))
    g = np.random.default_rng(0)
    return (g.random((96, 128, 3)) * 255).astype(np.uint8)


def needs_data():
    return pytest.mark.skipif(not DATA.exists(), reason="../shared/data not present")
