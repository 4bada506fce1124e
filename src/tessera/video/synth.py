"""Small synthetic videos for tests and benchmarks: a photo moved by a synthetic camera, written
with PyAV together with audio tracks, a subtitle track and variable frame rates. Deterministic."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Sequence
from fractions import Fraction
from pathlib import Path

import cv2
import numpy as np


def pan_frames(photo: np.ndarray, n: int, size: tuple[int, int], *, speed: tuple[float, float] = (1.0, 0.5), zoom: float = 0.0) -> list[np.ndarray]:
    """``n`` RGB frames of ``size`` (width, height) cut from ``photo`` by a camera moving
    ``speed`` (dx, dy) pixels per frame (sub-pixel, bilinear) and zooming by ``zoom`` per frame."""
    W, H = size
    ph, pw = photo.shape[:2]
    need_w, need_h = W + abs(speed[0]) * n + 4, H + abs(speed[1]) * n + 4
    if pw < need_w or ph < need_h:  # upscale the photo until the camera's path stays inside
        s = max((W + abs(speed[0]) * n + 4) / pw, (H + abs(speed[1]) * n + 4) / ph) * 1.05
        photo = cv2.resize(photo, (max(int(pw * s), W + 2), max(int(ph * s), H + 2)), interpolation=cv2.INTER_CUBIC)
        ph, pw = photo.shape[:2]
    out = []
    cx0, cy0 = pw / 2 - speed[0] * n / 2, ph / 2 - speed[1] * n / 2
    for i in range(n):
        z = 1.0 + zoom * i
        cx, cy = cx0 + speed[0] * i, cy0 + speed[1] * i
        M = np.float32([[z, 0, W / 2 - z * cx], [0, z, H / 2 - z * cy]])
        out.append(cv2.warpAffine(photo, M, (W, H), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT))
    return out


def write_video(
    path: str | os.PathLike[str],
    frames: Sequence[np.ndarray],
    *,
    fps: int = 25,
    pts: Sequence[int] | None = None,
    time_base: Fraction = Fraction(1, 1000),
    audio: int = 0,
    subtitles: Sequence[tuple[float, float, str]] = (),
    codec: str = "libx264",
    crf: int = 10,
    tags: dict[str, str] | None = None,
    rotation: float = 0.0,
    color: tuple[int, int, int, int] | None = None,
) -> Path:
    """Encode RGB ``frames`` into ``path`` (container from the extension). ``pts`` (in ``time_base``)
    gives each frame's timestamp (variable frame rate); default a constant ``fps``. ``audio``: that
    many AAC tracks of tones (different per track). ``subtitles``: (start s, end s, text) cues as a
    SubRip track (Matroska) . ``tags``: container tags. ``color``: (primaries, trc, matrix, range)."""
    import av

    path = Path(path)
    H, W = frames[0].shape[:2]
    if pts is None:
        step = Fraction(1, fps) / time_base
        pts = [int(i * step) for i in range(len(frames))]
    duration = float(pts[-1] * time_base) + 1 / fps
    srt_path = None
    inputs = []
    with av.open(str(path), "w") as out:
        if tags:
            out.metadata.update(tags)
        vs = out.add_stream(codec, rate=fps)
        vs.codec_context.width, vs.codec_context.height = W, H
        vs.codec_context.pix_fmt = "yuv420p"
        vs.codec_context.time_base = time_base
        vs.time_base = time_base
        if codec == "libx264":
            vs.codec_context.options = {"crf": str(crf), "preset": "ultrafast" if crf > 0 else "medium"}
        if color is not None:
            cc = vs.codec_context
            cc.color_primaries, cc.color_trc, cc.colorspace, cc.color_range = color
        if rotation:
            vs.set_display_rotation(rotation)
        auds = []
        for k in range(audio):
            a = out.add_stream("aac", rate=16000, layout="mono")
            a.metadata["language"] = ["eng", "fra", "deu"][k % 3]
            auds.append(a)
        subs = None
        if subtitles:
            fd, name = tempfile.mkstemp(suffix=".srt")
            srt_path = Path(name)

            def ts(t: float) -> str:
                ms = int(round(t * 1000))
                return f"{ms // 3600000:02d}:{ms // 60000 % 60:02d}:{ms // 1000 % 60:02d},{ms % 1000:03d}"

            with os.fdopen(fd, "w") as fh:
                for i, (t0, t1, text) in enumerate(subtitles, 1):
                    fh.write(f"{i}\n{ts(t0)} --> {ts(t1)}\n{text}\n\n")
            sin = av.open(str(srt_path))
            inputs.append(sin)
            subs = out.add_stream_from_template(sin.streams[0])
            subs.metadata["language"] = "eng"
        for i, (img, p) in enumerate(zip(frames, pts)):
            vf = av.VideoFrame.from_ndarray(np.ascontiguousarray(img), format="rgb24").reformat(format="yuv420p")
            vf.pts = int(p)
            vf.time_base = time_base
            for pkt in vs.encode(vf):
                out.mux(pkt)
        for pkt in vs.encode(None):
            out.mux(pkt)
        for k, a in enumerate(auds):
            sr = 16000
            n = int(duration * sr)
            t = np.arange(n) / sr
            wave = (0.3 * np.sin(2 * np.pi * (220 * (k + 1)) * t)).astype(np.float32)
            for s0 in range(0, n, 1024):
                chunk = wave[s0 : s0 + 1024][None]
                af = av.AudioFrame.from_ndarray(np.ascontiguousarray(chunk), format="fltp", layout="mono")
                af.sample_rate = sr
                af.pts = s0
                af.time_base = Fraction(1, sr)
                for pkt in a.encode(af):
                    out.mux(pkt)
            for pkt in a.encode(None):
                out.mux(pkt)
        if subs is not None:
            for pkt in inputs[0].demux(inputs[0].streams[0]):
                if pkt.size:
                    pkt.stream = subs
                    out.mux(pkt)
    for c in inputs:
        c.close()
    if srt_path is not None:
        srt_path.unlink()
    return path
