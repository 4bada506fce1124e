"""FaceCAM (our face / no-face classifier) and its class activation map as a face finder."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"
FACES = sorted((DATA / "faces" / "val").glob("*.jpg"))


def test_cam_is_the_linear_head_at_every_position():
    from tessera.models.facecam import FaceCAM

    torch.manual_seed(0)
    net = FaceCAM(width=8).eval()
    x = torch.randn(2, 3, 64, 48)
    with torch.no_grad():
        cam = net.cam(x)
        assert cam.shape == (2, 8, 6)
        torch.testing.assert_close(cam.mean((1, 2)), net(x), rtol=1e-5, atol=1e-5)  # GAP then linear == linear then GAP
    with pytest.raises(ValueError):
        FaceCAM(width=4)


@pytest.mark.skipif(not FACES, reason="../shared/data/faces/val not present")
def test_shipped_facecam_finds_a_face_crop_and_not_a_flat_image():
    from tessera.detect.cam import detect_cam

    hits = 0
    for p in FACES[:4]:
        im = np.asarray(Image.open(p).convert("RGB"))
        H, W = im.shape[:2]
        found = detect_cam(im)
        hits += any(x <= W / 2 <= x + w and y <= H / 2 <= y + h for x, y, w, h in (f.box for f in found))
    assert hits >= 3
    # a weak localizer: it fires on flat areas too, but a face crop lights up more than a scene
    from tessera.detect.cam import cam_map

    boat = np.asarray(Image.open(Path(__file__).resolve().parents[2] / "examples" / "boat.png").convert("RGB"))
    face = np.asarray(Image.open(FACES[0]).convert("RGB"))
    assert cam_map(face).mean() > cam_map(boat).mean() + 0.1
