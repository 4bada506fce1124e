"""Video files in and out, with PyAV (the ``video`` extra): streaming decode to RGB uint8 frames
with their timestamps, and a transcode that re-encodes only the video stream.

- :func:`probe_video` checks a file and describes it (clear one-line errors for empty, damaged,
  audio-only, unsupported or frameless inputs).
- :func:`read_frames` yields :class:`Frame` s (RGB uint8 (H, W, 3), pts, time) one at a time.
- :func:`transcode` runs ``process`` (an iterator of frames -> an iterator of RGB images, one per
  frame, in order) between decode and encode. The video stream is encoded (libx264 by default,
  ``crf``/``preset``) with every input frame's timestamp (variable frame rate included); every other
  stream (all audio tracks, subtitles, data, attachments) is copied packet for packet, not
  re-encoded; container and stream tags, dispositions, rotation and colour metadata (primaries,
  transfer, matrix, range) are kept (the tags and data streams are dropped with
  ``keep_metadata=False``: :func:`strip_metadata`). One pass over the input: memory holds only the frames
  ``process`` keeps, never the whole video. The output is written to a hidden temporary file beside
  the target and renamed into place only when complete: an error or Ctrl-C leaves no partial file.
"""

from __future__ import annotations

import os
import secrets
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import numpy as np

from tessera.io.errors import FileIOError

VIDEO_EXTS = {".mp4", ".m4v", ".mov", ".mkv", ".webm", ".avi", ".ts", ".mts", ".m2ts", ".mpg", ".mpeg", ".flv", ".3gp", ".wmv"}
# Containers we write, by extension (the format name FFmpeg knows them by).
WRITE_FORMATS = {".mp4": "mp4", ".m4v": "mp4", ".mov": "mov", ".mkv": "matroska", ".webm": "webm", ".avi": "avi", ".ts": "mpegts"}
PRESETS = ("ultrafast", "superfast", "veryfast", "faster", "fast", "medium", "slow", "slower", "veryslow", "placebo")
# Tags FFmpeg's muxers write themselves: copying them would claim the input's encoder.
_OWN_TAGS = {"encoder", "major_brand", "minor_version", "compatible_brands", "creation_time_utc"}
# Input pixel formats the encoder keeps; anything else is encoded as 4:2:0 8-bit.
_KEEP_PIX = {"yuv420p", "yuv422p", "yuv444p"}
_FULL_RANGE_PIX = {"yuvj420p": "yuv420p", "yuvj422p": "yuv422p", "yuvj444p": "yuv444p"}


class VideoError(FileIOError):
    """A video could not be read or written. ``str(err)`` is ``"<path>: <reason>"``, one line."""


class VideoReadError(VideoError):
    """Missing, empty, damaged, truncated, audio-only, unsupported or frameless input."""


class VideoWriteError(VideoError):
    """The output exists, its container cannot hold a stream, the encoder refused, ..."""


@dataclass(frozen=True)
class VideoInfo:
    """What :func:`probe_video` learnt. frames: the container's frame count (0 when it does not
    say, e.g. Matroska). fps: the average frame rate (None when unknown). rotation: degrees
    (counter-clockwise) the player rotates the picture. color: (primaries, transfer, matrix, range)
    as FFmpeg's numbers (2 = unspecified). streams: one "index:type:codec" per stream."""

    path: Path
    width: int
    height: int
    frames: int
    fps: Fraction | None
    time_base: Fraction
    duration: float | None
    codec: str
    pix_fmt: str
    rotation: float
    color: tuple[int, int, int, int]
    streams: tuple[str, ...] = ()
    video_index: int = 0


@dataclass
class Frame:
    """One decoded frame: ``image`` RGB uint8 (H, W, 3); ``pts`` in the stream's ``time_base``;
    ``time`` in seconds; ``index`` counts from 0 in decode (display) order."""

    index: int
    pts: int
    time: float
    image: np.ndarray
    time_base: Fraction = field(default=Fraction(1, 1), repr=False)


@dataclass(frozen=True)
class EncodeConfig:
    """codec: an FFmpeg video encoder (libx264 default). crf: 0 (lossless) .. 51; lower is better
    and bigger; 18 keeps unchanged pixels within ~40+ dB of the input. preset: x264's speed/size
    trade-off (ultrafast .. veryslow); ignored by encoders that do not know it."""

    codec: str = "libx264"
    crf: int = 18
    preset: str = "medium"

    def __post_init__(self) -> None:
        if not 0 <= int(self.crf) <= 51:
            raise ValueError(f"crf must be within 0..51, got {self.crf}")
        if self.preset not in PRESETS:
            raise ValueError(f"preset must be one of {', '.join(PRESETS)}, got {self.preset!r}")


def is_video_path(path: str | os.PathLike[str]) -> bool:
    """True when the file name has a video extension (a cheap test for dispatching)."""
    return Path(path).suffix.lower() in VIDEO_EXTS


def _av():
    try:
        import av
    except ImportError:  # pragma: no cover - the extra is missing
        raise ImportError("video needs PyAV: pip install 'tessera[video]'") from None
    # FFmpeg's log stays off (PyAV's default): a log callback can deadlock threaded decoders
    return av


def _ffmpeg_reason(exc: BaseException) -> str:
    text = getattr(exc, "strerror", None) or str(exc)
    return " ".join(str(text).split())[:200]


def _open_input(path: Path):
    av = _av()
    if not path.exists():
        raise VideoReadError(path, "no such file")
    if path.is_dir():
        raise VideoReadError(path, "is a folder, not a video file")
    if path.stat().st_size == 0:
        raise VideoReadError(path, "is empty (0 bytes)")
    try:
        container = av.open(str(path), "r")
    except av.error.FFmpegError as exc:
        raise VideoReadError(path, f"not a readable video (damaged or truncated? FFmpeg: {_ffmpeg_reason(exc)})") from None
    except OSError as exc:
        raise VideoReadError(path, f"cannot open ({_ffmpeg_reason(exc)})") from None
    return container


def _video_stream(container, path: Path):
    """The first real video stream (not a cover picture), with a decoder; clear errors otherwise."""
    kinds = [s.type for s in container.streams]
    for s in container.streams.video:
        if s.disposition & 0x400:  # AV_DISPOSITION_ATTACHED_PIC: album art, not a video
            continue
        name = s.codec_context.codec.name if s.codec_context is not None and s.codec_context.codec else None
        if not name:
            raise VideoReadError(path, f"video codec of stream #{s.index} is not supported by this FFmpeg build")
        if not s.codec_context.width or not s.codec_context.height:
            raise VideoReadError(path, f"video stream #{s.index} has no frame size (damaged?)")
        return s
    if not kinds:
        raise VideoReadError(path, "contains no streams at all (0 video frames)")
    raise VideoReadError(path, f"has no video stream (found: {', '.join(sorted(set(kinds)))})")


def _info(container, vs, path: Path) -> VideoInfo:
    cc = vs.codec_context
    tb = vs.time_base or Fraction(1, 90000)
    fps = vs.average_rate or vs.guessed_rate or None
    dur = None
    if vs.duration is not None:
        dur = float(vs.duration * tb)
    elif container.duration is not None:
        dur = container.duration / 1_000_000
    streams = tuple(f"{s.index}:{s.type}:{(s.codec_context.name if s.codec_context else None) or getattr(s, 'codec_tag', '?')}" for s in container.streams)
    color = (int(cc.color_primaries or 2), int(cc.color_trc or 2), int(cc.colorspace or 2), int(cc.color_range or 0))
    return VideoInfo(
        path=path,
        width=cc.width,
        height=cc.height,
        frames=int(vs.frames or 0),
        fps=Fraction(fps) if fps else None,
        time_base=Fraction(tb),
        duration=dur,
        codec=cc.name,
        pix_fmt=cc.format.name if cc.format is not None else "?",
        rotation=0.0,
        color=color,
        streams=streams,
        video_index=vs.index,
    )


def probe_video(path: str | os.PathLike[str]) -> VideoInfo:
    """Open ``path``, check it has a decodable video stream and at least one frame, and describe it.
    Raises :class:`VideoReadError` (one line) for empty, damaged, audio-only, unsupported or
    frameless files. Decodes only the first frame."""
    path = Path(path)
    container = _open_input(path)
    with container:
        vs = _video_stream(container, path)
        info = _info(container, vs, path)
        first = next(_decode(container, vs, path, None, None, lambda p: None), None)
        if first is None:
            raise VideoReadError(path, "has no decodable video frames (0 frames)")
        rot = first[1]
    return VideoInfo(**{**info.__dict__, "rotation": rot})


def _rgb(frame) -> np.ndarray:
    """A decoded frame -> RGB uint8 with the frame's own matrix and range (no colour shift)."""
    rng = frame.color_range if frame.color_range in (1, 2) else 1  # unspecified: limited (MPEG)
    if frame.format.name in _FULL_RANGE_PIX:
        rng = 2
    rgb = frame.reformat(format="rgb24", src_color_range=rng, dst_color_range=2)
    return rgb.to_ndarray()


def _decode(container, vs, path: Path, start: float | None, end: float | None, on_packet: Callable) -> Iterator[tuple[Frame, float]]:
    """Demux ``container`` once: video packets are decoded into (Frame, rotation) within
    [start, end); every other packet goes to ``on_packet`` (the stream copy)."""
    av = _av()
    tb = Fraction(vs.time_base)
    vs.codec_context.thread_type = "AUTO"
    _seek(container, vs, start)
    clock = _Clock(vs)
    index = 0
    video_done = False
    last_time = 0.0
    try:
        for packet in container.demux():
            if packet.stream.index != vs.index:
                if _pass_on(packet, on_packet, end if video_done else None):
                    break
                continue
            for f in () if video_done else _decoded(packet, path, index):
                pts, t = clock.place(f)
                if start is not None and t < start - 1e-6:
                    continue
                if end is not None and t >= end - 1e-6:
                    video_done = True
                    break
                last_time = t
                yield Frame(index, pts, t, _rgb(f), tb), float(f.rotation or 0.0)
                index += 1
    except av.error.FFmpegError as exc:
        raise VideoReadError(path, f"damaged or truncated after frame {index} ({_ffmpeg_reason(exc)})") from None
    if not (video_done or start or index == 0):
        _check_complete(container, vs, path, index, last_time)


def _seek(container, vs, start: float | None) -> None:
    """To the key frame at or before ``start`` (the decoder then drops what comes before it)."""
    if not start:
        return
    av = _av()
    try:
        container.seek(int(start / Fraction(vs.time_base)), stream=vs, backward=True, any_frame=False)
    except av.error.FFmpegError:
        container.seek(0, stream=vs)


class _Clock:
    """Each decoded frame's (pts, seconds): a missing pts continues the frame rate, a broken one
    (not after the previous) is moved just after it, so timestamps always increase."""

    def __init__(self, vs) -> None:
        self.tb = Fraction(vs.time_base)
        self.step = int(round(1 / (Fraction(vs.average_rate) * self.tb))) if vs.average_rate else 1
        self.last: int | None = None

    def place(self, frame) -> tuple[int, float]:
        last = self.last
        pts = frame.pts if frame.pts is not None else (last + self.step if last is not None else 0)
        if last is not None and pts <= last:
            pts = last + 1
        self.last = pts
        return pts, float(pts * self.tb)


def _pass_on(packet, on_packet: Callable, end: float | None) -> bool:
    """Hand a packet of another stream to ``on_packet``; True once the video has ended (``end``
    given) and the other streams are 2 s past it: demuxing can stop."""
    if packet.size:
        on_packet(packet)
    if end is None or packet.dts is None or packet.time_base is None:
        return False
    return float(packet.dts * packet.time_base) > end + 2.0


def _decoded(packet, path: Path, index: int):
    av = _av()
    try:
        return packet.decode()
    except av.error.InvalidDataError as exc:
        raise VideoReadError(path, f"damaged video data after frame {index} ({_ffmpeg_reason(exc)})") from None


def _check_complete(container, vs, path: Path, index: int, last_time: float) -> None:
    """FFmpeg decodes a truncated file up to where it ends without an error: compare with what the
    container says the video stream holds (its frame count, or its own duration)."""
    expected = int(vs.frames or 0) if "mp4" in container.format.name or "mov" in container.format.name else 0
    if expected and index < expected:
        raise VideoReadError(path, f"is truncated or damaged: only {index} of {expected} video frames could be decoded")
    duration = _stream_duration(vs)
    if duration and vs.average_rate:
        gap = duration - (last_time - float((vs.start_time or 0) * Fraction(vs.time_base)))
        if gap > max(3 / float(vs.average_rate), 0.05 * duration):
            raise VideoReadError(path, f"is truncated or damaged: the video stops at {last_time:.2f} s of {duration:.2f} s ({index} frames decoded)")


def _stream_duration(vs) -> float | None:
    """The video stream's own duration in seconds (its header, or Matroska's DURATION tag)."""
    if vs.duration is not None and vs.time_base:
        return float(vs.duration * vs.time_base)
    tag = (vs.metadata or {}).get("DURATION") or (vs.metadata or {}).get("duration")
    if tag:
        try:
            h, m, sec = tag.split(":")
            return int(h) * 3600 + int(m) * 60 + float(sec)
        except ValueError:
            return None
    return None


def read_frames(path: str | os.PathLike[str], *, start: float | None = None, end: float | None = None) -> Iterator[Frame]:
    """Decode ``path``'s video stream one frame at a time (RGB uint8), from ``start`` to ``end``
    seconds (stream time). Streaming: memory holds one frame. Raises :class:`VideoReadError`."""
    path = Path(path)
    container = _open_input(path)
    with container:
        vs = _video_stream(container, path)
        n = 0
        for frame, _ in _decode(container, vs, path, start, end, lambda p: None):
            n += 1
            yield frame
        if n == 0:
            raise VideoReadError(path, "has no decodable video frames in the requested range" if start or end else "has no decodable video frames (0 frames)")


def _check_times(start: float | None, end: float | None) -> None:
    if start is not None and start < 0:
        raise ValueError(f"start must be >= 0 seconds, got {start}")
    if start is not None and end is not None and end <= start:
        raise ValueError(f"end ({end}) must be after start ({start})")


def _temp_beside(path: Path) -> Path:
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL
    for _ in range(100):
        tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
        try:
            os.close(os.open(tmp, flags, 0o666))
            return tmp
        except FileExistsError:
            continue
        except OSError as exc:
            raise VideoWriteError(path, f"cannot write into folder {path.parent} ({exc.strerror})") from None
    raise VideoWriteError(path, f"cannot create a temporary file in {path.parent}")  # pragma: no cover


def _move_into_place(tmp: Path, path: Path, overwrite: bool) -> None:
    if overwrite:
        os.replace(tmp, path)
        return
    try:
        os.link(tmp, path)  # refuses if something appeared at `path` meanwhile
    except FileExistsError:
        raise VideoWriteError(path, "exists; use --overwrite to replace it") from None
    except OSError:
        if path.exists():
            raise VideoWriteError(path, "exists; use --overwrite to replace it") from None
        os.replace(tmp, path)
        return
    os.unlink(tmp)


def _copy_tags(dst, src) -> None:
    for k, v in (src or {}).items():
        if k.lower() not in _OWN_TAGS:
            dst[k] = v


def _setup_video(out, vs, enc: EncodeConfig, rotation: float, path: Path):
    av = _av()
    cc_in = vs.codec_context
    try:
        ov = out.add_stream(enc.codec, rate=vs.average_rate or vs.guessed_rate or 25)
    except (av.error.FFmpegError, ValueError) as exc:
        raise VideoWriteError(path, f"unknown or unavailable video encoder {enc.codec!r} ({_ffmpeg_reason(exc)})") from None
    cc = ov.codec_context
    cc.width, cc.height = cc_in.width, cc_in.height
    src_pix = cc_in.format.name if cc_in.format is not None else "yuv420p"
    pix = _FULL_RANGE_PIX.get(src_pix, src_pix if src_pix in _KEEP_PIX else "yuv420p")
    cc.pix_fmt = pix
    cc.time_base = vs.time_base
    ov.time_base = vs.time_base
    if cc_in.sample_aspect_ratio:
        cc.sample_aspect_ratio = cc_in.sample_aspect_ratio
    rng = 2 if src_pix in _FULL_RANGE_PIX or cc_in.color_range == 2 else 1
    cc.color_range = rng
    for attr in ("color_primaries", "color_trc", "colorspace"):
        v = getattr(cc_in, attr)
        if v:
            setattr(cc, attr, v)
    if enc.codec in ("libx264", "libx265"):
        cc.options = {"crf": str(int(enc.crf)), "preset": enc.preset}
    _copy_tags(ov.metadata, vs.metadata)
    try:
        ov.disposition = vs.disposition
    except (AttributeError, TypeError, ValueError):  # pragma: no cover - older PyAV
        pass
    if rotation:
        ov.set_display_rotation(rotation)
    return ov, pix, rng


def transcode(
    src: str | os.PathLike[str],
    dst: str | os.PathLike[str],
    process: Callable[[Iterator[Frame]], Iterable[np.ndarray]],
    *,
    encode: EncodeConfig | None = None,
    start: float | None = None,
    end: float | None = None,
    overwrite: bool = False,
    progress: Callable[[int, int], None] | None = None,
    copy_streams: bool = True,
    keep_metadata: bool = True,
    tags: dict[str, str] | None = None,
) -> VideoInfo:
    """Decode ``src``, run ``process`` on its frames, encode the images it yields into ``dst``
    and copy every other stream packet for packet (see the module docstring).

    ``process`` receives an iterator of :class:`Frame` and must yield exactly one RGB uint8 image
    of the same size per frame, in order (it may hold a bounded number of frames back).
    ``start``/``end``: seconds of the input to keep (the output keeps the input's timestamps).
    ``progress(done, total)`` is called after each encoded frame (total 0 when unknown).
    ``copy_streams=False`` writes the video stream alone (e.g. a mask video).
    ``keep_metadata=False`` writes no container or stream tags and no data or attachment streams
    (see :func:`strip_metadata`), as ``tessera anonymize`` does unless ``--keep-metadata``.
    ``tags``: container tags to add (a value is appended to the input's own, e.g. a notice in ``comment``).
    Returns the input's :class:`VideoInfo`. Raises :class:`VideoReadError` / :class:`VideoWriteError`.
    """
    av = _av()
    enc = encode or EncodeConfig()
    _check_times(start, end)
    src, dst = Path(src), Path(dst)
    fmt = _check_target(src, dst, overwrite)
    info = probe_video(src)
    dst.parent.mkdir(parents=True, exist_ok=True)
    tmp = _temp_beside(dst)
    try:
        with _open_input(src) as inp, av.open(str(tmp), "w", format=fmt) as out:
            vs = _video_stream(inp, src)
            _copy_tags(out.metadata, inp.metadata)
            copies = {}
            for s in inp.streams:  # in the input's order
                if s.index == vs.index:
                    ov, pix, rng = _setup_video(out, vs, enc, info.rotation, dst)
                elif copy_streams and (keep_metadata or carries_content(s)):
                    copies[s.index] = _add_copy(out, s, dst, fmt)
            if not keep_metadata:
                strip_metadata(out)
            _add_tags(out, tags)
            _start_encoding(out, inp, copies, dst, fmt)
            pending: deque[int] = deque()

            def frames() -> Iterator[Frame]:
                for frame, _ in _decode(inp, vs, src, start, end, _packet_copier(out, copies, start, end)):
                    pending.append(frame.pts)
                    yield frame

            encoder = _Encoder(out, ov, vs, pix, rng, info)
            for image in process(frames()):
                if not pending:
                    raise RuntimeError("process yielded more images than it was given frames")
                encoder.encode(image, pending.popleft())
                if progress is not None:
                    progress(encoder.done, info.frames)
            if pending:
                raise RuntimeError(f"process yielded {encoder.done} images for {encoder.done + len(pending)} frames")
            if encoder.done == 0:
                raise VideoReadError(src, "has no decodable video frames in the requested range")
            encoder.flush()
        if tmp.stat().st_size == 0:  # pragma: no cover
            raise VideoWriteError(dst, "the encoder wrote nothing")
        _move_into_place(tmp, dst, overwrite)
    except BaseException as exc:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        if isinstance(exc, av.error.FFmpegError):
            raise VideoWriteError(dst, f"encoding failed ({_ffmpeg_reason(exc)})") from None
        raise
    return info


def _check_target(src: Path, dst: Path, overwrite: bool) -> str:
    """The output's container format; clear errors for an unknown extension, the input itself or an existing file."""
    fmt = WRITE_FORMATS.get(dst.suffix.lower())
    if fmt is None:
        raise VideoWriteError(dst, f"cannot write {dst.suffix or 'files without an extension'}; use one of {', '.join(sorted(WRITE_FORMATS))}")
    if dst.exists() and src.exists() and os.path.samefile(src, dst):
        raise VideoWriteError(dst, "output would overwrite the input file; choose another output path")
    if dst.exists() and not overwrite:
        raise VideoWriteError(dst, "exists; use --overwrite to replace it")
    return fmt


def _add_copy(out, s, dst: Path, fmt: str):
    """An output stream that receives stream ``s``'s packets as they are, with its tags and dispositions."""
    av = _av()
    try:
        o = out.add_stream_from_template(s)
    except (av.error.FFmpegError, ValueError, TypeError) as exc:
        raise VideoWriteError(dst, f"cannot copy stream #{s.index} ({s.type}) into {fmt} ({_ffmpeg_reason(exc)}); try .mkv") from None
    _copy_tags(o.metadata, s.metadata)
    try:
        o.disposition = s.disposition
    except (AttributeError, TypeError, ValueError):  # pragma: no cover
        pass
    return o


def _add_tags(out, tags: dict[str, str] | None) -> None:
    for k, v in (tags or {}).items():
        old = out.metadata.get(k)
        out.metadata[k] = f"{old}\n{v}" if old and v not in old else v


def _start_encoding(out, inp, copies: dict, dst: Path, fmt: str) -> None:
    av = _av()
    try:
        out.start_encoding()
    except av.error.FFmpegError as exc:
        kinds = ", ".join(f"#{i} {inp.streams[i].codec_context.name if inp.streams[i].codec_context else inp.streams[i].type}" for i in copies)
        raise VideoWriteError(dst, f"the {fmt} container cannot hold every stream ({kinds}): {_ffmpeg_reason(exc)}; try .mkv") from None


def _packet_copier(out, copies: dict, start: float | None, end: float | None) -> Callable:
    """``copy(packet)``: mux a packet of a copied stream into its output stream, unless it lies
    entirely outside [start, end)."""

    def copy(packet) -> None:
        o = copies.get(packet.stream.index)
        if o is None or _outside(packet, start, end):
            return
        packet.stream = o
        out.mux(packet)

    return copy


def _outside(packet, start: float | None, end: float | None) -> bool:
    if start is None and end is None:
        return False
    t = packet.pts if packet.pts is not None else packet.dts
    if t is None or packet.time_base is None:
        return False
    t0 = float(t * packet.time_base)
    t1 = t0 + float((packet.duration or 0) * packet.time_base)
    return bool((start is not None and t1 <= start and packet.duration) or (end is not None and t0 >= end))


class _Encoder:
    """Encodes the processed RGB images into the output's video stream, with the input's colour
    matrix and range, at the timestamps of the frames they came from."""

    def __init__(self, out, ov, vs, pix: str, rng: int, info: VideoInfo) -> None:
        self.out, self.ov, self.pix, self.rng = out, ov, pix, rng
        self.time_base = vs.time_base
        self.colorspace = vs.codec_context.colorspace or None
        self.shape = (info.height, info.width, 3)
        self.done = 0

    def encode(self, image, pts: int) -> None:
        av = _av()
        image = np.asarray(image)
        if image.shape != self.shape or image.dtype != np.uint8:
            raise ValueError(f"process must yield RGB uint8 {self.shape} images, got {image.dtype} {image.shape}")
        vf = av.VideoFrame.from_ndarray(np.ascontiguousarray(image), format="rgb24")
        vf = vf.reformat(format=self.pix, src_colorspace=self.colorspace, dst_colorspace=self.colorspace, src_color_range=2, dst_color_range=self.rng)
        vf.pts = pts
        vf.time_base = self.time_base
        for p in self.ov.encode(vf):
            self.out.mux(p)
        self.done += 1

    def flush(self) -> None:
        for p in self.ov.encode(None):
            self.out.mux(p)


def copy_video(src, dst, **kwargs) -> VideoInfo:
    """Re-encode ``src`` unchanged (every other stream copied): the identity :func:`transcode`."""
    return transcode(src, dst, lambda frames: (f.image for f in frames), **kwargs)


# ----------------------------------------------------------------------------- metadata and side outputs

# Stream types that hold what a viewer sees or hears; the others (data: GPS and sensor telemetry,
# timecodes; attachments: cover pictures, fonts) are metadata.
_CONTENT_TYPES = {"video", "audio", "subtitle"}


def carries_content(stream) -> bool:
    """True for video, audio and subtitle streams; False for data and attachment streams (GPS or
    sensor telemetry, timecode tracks, cover pictures, fonts), which ``keep_metadata=False`` drops."""
    return stream.type in _CONTENT_TYPES


def strip_metadata(out) -> None:
    """Remove every tag of an output container and of its streams before writing starts: title,
    comment, artist, location (GPS), creation_time, the input's encoder, handler names, languages...
    Only what the muxer writes itself (its own ``encoder`` name, a default handler) remains.
    Timestamps, colour metadata and the display rotation are kept: they are how the picture is shown."""
    out.metadata.clear()
    for s in out.streams:
        s.metadata.clear()


class FrameWriter:
    """A video of its own beside a :func:`transcode` output (e.g. the per-frame mask video):
    ``write(image, pts)`` encodes RGB uint8 images with the source's timestamps (``like``: the
    source's :class:`VideoInfo`); no other streams, no tags. Lossless by default (crf 0).
    Atomic: written to a hidden temporary file and renamed into place by :meth:`close`; leaving a
    ``with`` block by an exception (or :meth:`abort`) removes it."""

    def __init__(self, path: str | os.PathLike[str], like: VideoInfo, *, encode: EncodeConfig | None = None, overwrite: bool = False) -> None:
        av = _av()
        self.path = Path(path)
        self.overwrite = overwrite
        fmt = WRITE_FORMATS.get(self.path.suffix.lower())
        if fmt is None:
            raise VideoWriteError(self.path, f"cannot write {self.path.suffix or 'files without an extension'}; use one of {', '.join(sorted(WRITE_FORMATS))}")
        if self.path.exists() and not overwrite:
            raise VideoWriteError(self.path, "exists; use --overwrite to replace it")
        enc = encode or EncodeConfig(crf=0, preset="veryfast")
        self.size = (like.height, like.width)
        self.time_base = like.time_base
        self.tmp = _temp_beside(self.path)
        try:
            self.out = av.open(str(self.tmp), "w", format=fmt)
            self.stream = self.out.add_stream(enc.codec, rate=like.fps or 25)
            cc = self.stream.codec_context
            self.pix = "yuv420p" if like.width % 2 == 0 and like.height % 2 == 0 else "yuv444p"  # 4:2:0 needs even sides
            cc.width, cc.height, cc.pix_fmt = like.width, like.height, self.pix
            cc.time_base = self.stream.time_base = like.time_base
            if enc.codec in ("libx264", "libx265"):
                cc.options = {"crf": str(int(enc.crf)), "preset": enc.preset}
        except BaseException as exc:
            self.abort()
            if isinstance(exc, (av.error.FFmpegError, ValueError)):
                raise VideoWriteError(self.path, f"cannot start the video ({_ffmpeg_reason(exc)})") from None
            raise

    def write(self, image: np.ndarray, pts: int) -> None:
        """Encode one RGB uint8 (H, W, 3) image (or a bool/uint8 (H, W) mask: white = True) at ``pts``."""
        av = _av()
        a = np.asarray(image)
        if a.ndim == 2:
            a = np.repeat((a.astype(bool) * np.uint8(255) if a.dtype == bool else a)[..., None], 3, axis=2)
        if a.shape[:2] != self.size or a.dtype != np.uint8:
            raise ValueError(f"expected a {self.size[0]}x{self.size[1]} uint8 image or bool mask, got {a.dtype} {a.shape}")
        vf = av.VideoFrame.from_ndarray(np.ascontiguousarray(a), format="rgb24").reformat(format=self.pix)
        vf.pts, vf.time_base = int(pts), self.time_base
        for p in self.stream.encode(vf):
            self.out.mux(p)

    def close(self) -> Path:
        """Flush the encoder, close the file and move it into place; returns the path."""
        try:
            for p in self.stream.encode(None):
                self.out.mux(p)
            self.out.close()
            _move_into_place(self.tmp, self.path, self.overwrite)
        except BaseException:
            self.abort()
            raise
        return self.path

    def abort(self) -> None:
        """Close and remove the temporary file (nothing is written at ``path``)."""
        out = getattr(self, "out", None)
        if out is not None:
            try:
                out.close()
            except Exception:  # noqa: BLE001 - already failing: only the file's removal matters
                pass
        try:
            os.unlink(self.tmp)
        except OSError:
            pass

    def __enter__(self) -> "FrameWriter":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()
