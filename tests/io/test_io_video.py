"""tessera.io.video: decode, encode, packet copy of every other stream, timestamps, metadata,
atomic outputs and one-line errors for bad inputs. Tiny videos made here with PyAV."""

from __future__ import annotations

import os
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

av = pytest.importorskip("av")

from tessera.evaluate import psnr  # noqa: E402
from tessera.io.video import (  # noqa: E402
    EncodeConfig,
    VideoReadError,
    VideoWriteError,
    copy_video,
    probe_video,
    read_frames,
    transcode,
)
from tessera.video.synth import pan_frames, write_video  # noqa: E402

DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"

VFR_PTS = [0, 40, 80, 100, 140, 200, 240, 260, 300, 340, 400, 420]  # ms: irregular gaps


@pytest.fixture
def clip(photo) -> list[np.ndarray]:
    return pan_frames(photo, 12, (64, 48), speed=(1.5, 0.7))


def packets(path: Path) -> dict[int, list[tuple[bytes, Fraction | None]]]:
    """Every non-video packet's bytes and presentation time (seconds), by stream index."""
    out: dict[int, list] = {}
    with av.open(str(path)) as c:
        for p in c.demux():
            if p.size and p.stream.type != "video":
                out.setdefault(p.stream.index, []).append((bytes(p), p.pts * p.time_base if p.pts is not None else None))
    return out


def times(path: Path) -> list[Fraction]:
    return [f.pts * f.time_base for f in read_frames(path)]


def test_mkv_streams_copied_exactly_with_vfr_timestamps(tmp_path, clip):
    src = write_video(
        tmp_path / "in.mkv", clip, pts=VFR_PTS, audio=2, subtitles=[(0.0, 0.2, "hello"), (0.25, 0.4, "world")],
        tags={"title": "a test"}, rotation=90, color=(1, 1, 1, 1),
    )
    info = copy_video(src, tmp_path / "out.mkv")
    assert info.width == 64 and info.height == 48
    out = probe_video(tmp_path / "out.mkv")
    assert [s.split(":")[1:] for s in out.streams] == [["video", "h264"], ["audio", "aac"], ["audio", "aac"], ["subtitle", "srt"]]
    src_packets, out_packets = packets(src), packets(tmp_path / "out.mkv")
    assert sorted(src_packets) == [1, 2, 3] and len(src_packets[3]) == 2
    assert out_packets == src_packets  # bytes and timestamps of every audio and subtitle packet
    assert times(tmp_path / "out.mkv") == [Fraction(p, 1000) for p in VFR_PTS]
    assert out.rotation == 90.0 and out.color == (1, 1, 1, 1)
    with av.open(str(tmp_path / "out.mkv")) as c:
        assert c.metadata["title"] == "a test"
        assert [s.metadata.get("language") for s in c.streams][1:] == ["eng", "fra", "eng"]


def test_mp4_audio_copy_vfr(tmp_path, clip):
    src = write_video(tmp_path / "in.mp4", clip, pts=VFR_PTS, audio=1)
    copy_video(src, tmp_path / "out.mp4")  # default quality: libx264 crf 18
    assert packets(tmp_path / "out.mp4") == packets(src)
    assert times(tmp_path / "out.mp4") == times(src) == [Fraction(p, 1000) for p in VFR_PTS]



@pytest.mark.skipif(not (DATA / "video" / "bikes.mp4").exists(), reason="../shared/data not present")
def test_default_quality_keeps_real_footage_above_40db(tmp_path):
    """libx264 crf 18 (the default) on real 640x272 footage: >= 40 dB against the decoded input.
    (Tiny or noisy clips fall below: carphone 176x144 measured 35.6 dB; use a lower --crf there.)"""
    src = DATA / "video" / "bikes.mp4"
    copy_video(src, tmp_path / "out.mp4", end=0.2)
    a, b = list(read_frames(src, end=0.2)), list(read_frames(tmp_path / "out.mp4"))
    assert len(a) == len(b) == 5
    scores = [psnr(y.image, x.image) for x, y in zip(a, b)]
    assert min(scores) >= 40.0, scores


def test_without_audio_and_frame_changes_arrive(tmp_path, clip):
    src = write_video(tmp_path / "in.mp4", clip)
    white = np.full((48, 64, 3), 255, np.uint8)
    transcode(src, tmp_path / "out.mp4", lambda frames: (white if f.index == 3 else f.image for f in frames))
    frames = list(read_frames(tmp_path / "out.mp4"))
    assert len(frames) == 12
    assert frames[3].image.mean() > 250 and frames[4].image.mean() < 200
    assert probe_video(tmp_path / "out.mp4").streams == ("0:video:h264",)


def test_start_end_and_encoder_options(tmp_path, clip):
    src = write_video(tmp_path / "in.mp4", clip, audio=1)  # 25 fps: frames at 0, 0.04, ...
    info = copy_video(src, tmp_path / "cut.mp4", start=0.1, end=0.3, encode=EncodeConfig(crf=30, preset="ultrafast"))
    assert info.frames == 12
    assert [float(t) for t in times(tmp_path / "cut.mp4")] == pytest.approx([0.12, 0.16, 0.2, 0.24, 0.28])
    with pytest.raises(ValueError, match="crf"):
        EncodeConfig(crf=60)
    with pytest.raises(ValueError, match="preset"):
        EncodeConfig(preset="quick")


def test_atomic_output_on_interrupt_and_refusals(tmp_path, clip):
    src = write_video(tmp_path / "in.mp4", clip, audio=1)

    def stop_midway(frames):
        for f in frames:
            if f.index == 5:
                raise KeyboardInterrupt
            yield f.image

    with pytest.raises(KeyboardInterrupt):
        transcode(src, tmp_path / "out.mp4", stop_midway)
    assert sorted(os.listdir(tmp_path)) == ["in.mp4"]  # no output, no temporary file left
    with pytest.raises(RuntimeError, match="6 images for 12 frames|yielded"):
        transcode(src, tmp_path / "out.mp4", lambda frames: (f.image for f in list(frames)[:6]))
    assert sorted(os.listdir(tmp_path)) == ["in.mp4"]
    copy_video(src, tmp_path / "out.mp4")
    with pytest.raises(VideoWriteError, match="exists"):
        copy_video(src, tmp_path / "out.mp4")
    with pytest.raises(VideoWriteError, match="overwrite the input"):
        copy_video(src, src, overwrite=True)
    with pytest.raises(VideoWriteError, match="cannot write .gif"):
        copy_video(src, tmp_path / "out.gif")
    copy_video(src, tmp_path / "out.mp4", overwrite=True)
    assert sorted(os.listdir(tmp_path)) == ["in.mp4", "out.mp4"]


def _bad_videos(d: Path) -> dict[str, tuple[Path, str]]:
    frames = [np.full((48, 64, 3), 20 * i, np.uint8) for i in range(12)]
    (d / "empty.mp4").write_bytes(b"")
    full = write_video(d / "full.mkv", frames, audio=1).read_bytes()
    (d / "trunc.mkv").write_bytes(full[: len(full) // 2])
    full = write_video(d / "full.mp4", frames).read_bytes()
    (d / "trunc.mp4").write_bytes(full[: len(full) // 2])
    with av.open(str(d / "audio.m4a"), "w", format="mp4") as out:
        a = out.add_stream("aac", rate=16000, layout="mono")
        af = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.float32), format="fltp", layout="mono")
        af.sample_rate, af.pts = 16000, 0
        for p in [*a.encode(af), *a.encode(None)]:
            out.mux(p)
    avi = write_video(d / "m4.avi", frames, codec="mpeg4").read_bytes()
    assert avi.count(b"FMP4") == 2
    (d / "unsupported.avi").write_bytes(avi.replace(b"FMP4", b"QQQQ"))  # a codec tag no decoder knows
    with av.open(str(d / "zero.mp4"), "w") as out:
        v = out.add_stream("libx264", rate=25)
        v.width, v.height, v.pix_fmt = 64, 48, "yuv420p"
        out.start_encoding()
    (d / "text.mp4").write_text("not a video\n")
    return {
        "empty.mp4": "empty \\(0 bytes\\)",
        "trunc.mkv": "truncated",
        "trunc.mp4": "damaged or truncated",
        "audio.m4a": "no video stream \\(found: audio\\)",
        "unsupported.avi": "not supported",
        "zero.mp4": "0 video frames",
        "text.mp4": "not a readable video",
    }


def test_bad_videos_give_one_line_errors(tmp_path):
    for name, why in _bad_videos(tmp_path).items():
        with pytest.raises(VideoReadError, match=why) as err:
            list(read_frames(tmp_path / name))
        assert "\n" not in str(err.value) and str(err.value).startswith(str(tmp_path / name))
        with pytest.raises(VideoReadError, match=why):
            copy_video(tmp_path / name, tmp_path / f"out-{name}.mp4")
        assert not (tmp_path / f"out-{name}.mp4").exists()
    assert not [n for n in os.listdir(tmp_path) if n.endswith(".tmp")]
