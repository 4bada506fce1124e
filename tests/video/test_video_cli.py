"""The image commands take videos: restore, pixelate, detect; folders mixing images and videos."""

from __future__ import annotations

import json

import numpy as np
import pytest
from typer.testing import CliRunner

pytest.importorskip("av")

from tessera.cli import app  # noqa: E402
from tessera.io.image import write_image  # noqa: E402
from tessera.io.video import probe_video, read_frames  # noqa: E402
from tessera.mosaic.pixelate import pixelate  # noqa: E402
from tessera.video.synth import pan_frames, write_video  # noqa: E402


def invoke(*args: str):
    return CliRunner().invoke(app, list(args), catch_exceptions=False)


def test_folder_of_images_and_videos(photo, tmp_path, one_thread):
    d = tmp_path / "in"
    d.mkdir()
    frames = pan_frames(photo, 8, (96, 64), speed=(1.0, 0.0))
    write_video(d / "clip.mp4", frames, audio=1, crf=0)
    write_image(d / "still.png", frames[0])
    res = invoke("pixelate", str(d), "-o", str(tmp_path / "pix"), "--box", "30,12,36,30", "--cell", "6", "--crf", "0", "--preset", "ultrafast")
    assert res.exit_code == 0, res.output
    assert (tmp_path / "pix" / "still.png").is_file()
    info = probe_video(tmp_path / "pix" / "clip.mp4")
    assert [s.split(":")[1] for s in info.streams] == ["video", "audio"]
    out = [f.image for f in read_frames(tmp_path / "pix" / "clip.mp4")]
    assert len(out) == 8 and out[3][12:18, 30:36].std(axis=(0, 1)).max() < 1.5

    res = invoke("detect", str(tmp_path / "pix" / "clip.mp4"), "-o", str(tmp_path / "found"))
    assert res.exit_code == 0, res.output
    doc = json.loads((tmp_path / "found" / "clip.json").read_text())
    assert len(doc["frames"]) == 8 and len(doc["tracks"]) == 1

    res = invoke("restore", str(tmp_path / "pix" / "clip.mp4"), "-o", str(tmp_path / "restored.mkv"), "--model", "smooth", "--end", "0.2")
    assert res.exit_code == 0, res.output
    got = list(read_frames(tmp_path / "restored.mkv"))
    assert len(got) == 5
    cell = got[3].image[12:18, 30:36]
    assert cell.std(axis=(0, 1)).max() > 1.5  # the flat cell was restored


def test_bad_video_is_one_line(tmp_path):
    (tmp_path / "empty.mp4").write_bytes(b"")
    res = invoke("restore", str(tmp_path / "empty.mp4"), "-o", str(tmp_path / "out.mp4"), "--model", "smooth")
    assert res.exit_code == 1
    text = " ".join(res.output.split())  # the console wraps long lines
    assert "is empty (0 bytes)" in text and "Traceback" not in text
    assert not (tmp_path / "out.mp4").exists()
    res = invoke("restore", str(tmp_path / "empty.mp4"), "-o", str(tmp_path / "out.mp4"), "--crf", "80")
    assert res.exit_code == 2
