"""Video benchmark: restoration quality and flicker over time, speed, memory, streams.

    python -m benchmarks.video [--frames 16] [--model default] [--quick]

Cases (mosaics made here, truth known):
- photos moved by a synthetic camera (scenes/val): a mosaic fixed in the frame while the picture
  pans under it ("fixed"), a mosaic that moves with the content ("follows"), a still scene ("static");
- the real clips in ../shared/data/video with a mosaic fixed in the frame (carphone: over the face).
For each: PSNR in the region (mean over frames) and flicker (tessera.video.temporal.flicker) of the
mosaic itself, frame-by-frame restoration (temporal off) and the default temporal smoothing, with
the region given (so detection does not blur the comparison). Then end to end (decode, detect,
track, restore, encode, streams copied): frames/s at 320x240 and 1280x720 with one 128-px region,
peak memory on a long synthetic clip (RSS sampled while it runs) and a 4K clip, and whether every
other stream survived bit for bit. Writes its section of benchmarks/RESULTS.md.
"""

from __future__ import annotations

import argparse
import platform
import tempfile
import time
from pathlib import Path

import numpy as np

from benchmarks._results import write_section
from tessera.evaluate import psnr
from tessera.io.video import EncodeConfig, Frame, read_frames
from tessera.mosaic.pixelate import pixelate
from tessera.restore.pipeline import RestoreConfig, regions_from_mask
from tessera.video.pipeline import TemporalRestorer, VideoConfig, _restore_chunk, pixelate_video, restore_video, track_regions_with
from tessera.video.tracks import Tracker
from tessera.video.synth import pan_frames, write_video
from tessera.video.temporal import TemporalConfig, flicker

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def rss_mb() -> float:
    for line in open("/proc/self/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def cpu_s() -> float:
    import resource

    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def peak_mb() -> float:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def load(path: Path) -> np.ndarray:
    from tessera.io.image import read_image

    return read_image(path)[0]


def synthetic_cases(n: int) -> list[tuple[str, list[np.ndarray], list[np.ndarray], list[np.ndarray]]]:
    """(name, truth frames, mosaicked frames, masks) at 320x240."""
    photos = sorted((DATA / "scenes" / "val").iterdir())
    cases = []
    for name, photo_i, speed, follow in (("fixed", 2, (0.7, 0.3), False), ("follows", 5, (1.2, 0.0), True), ("static", 8, (0.0, 0.0), False)):
        rng = np.random.default_rng(photo_i)  # camera noise (sigma 2): a still scene is never bit-still
        truth = [np.clip(f + rng.normal(0, 2.0, f.shape), 0, 255).astype(np.uint8)
                 for f in pan_frames(load(photos[photo_i]), n, (320, 240), speed=speed)]
        mos, masks = [], []
        for i, f in enumerate(truth):
            x = 110 - (round(speed[0] * i) if follow else 0)  # following: the box moves with the content
            y = 70 - (round(speed[1] * i) if follow else 0)
            out, m = pixelate(f, boxes=[(x, y, 100, 90)], cell=10, phase=(y, x) if follow else (0, 0))
            mos.append(out)
            masks.append(m)
        cases.append((f"photo, mosaic {name}", truth, mos, masks))
    return cases


def clip_cases(n: int) -> list:
    cases = []
    for name, box, cell in (("carphone.mp4", (56, 28, 64, 72), 8), ("bikes.mp4", (260, 90, 128, 96), 12)):
        path = DATA / "video" / name
        if not path.exists():
            continue
        truth = [f.image for f, _ in zip(read_frames(path), range(n))]
        mos, masks = [], []
        for f in truth:
            out, m = pixelate(f, boxes=[box], cell=cell)
            mos.append(out)
            masks.append(m)
        cases.append((f"{name}, mosaic fixed", truth, mos, masks))
    return cases


def quality(cases, model: str) -> list[str]:
    rows = ["| case | frames | mosaic PSNR | frame-by-frame PSNR | temporal PSNR | flicker mosaic | flicker frame-by-frame | flicker temporal | ratio | model calls (temporal) |",
            "|---|---|---|---|---|---|---|---|---|---|"]
    ratios = []

    for name, truth, mos, masks in cases:
        per_mode = {}
        for mode in ("off", "blend"):
            # the region is given per frame (the box may move): a detector that returns each frame's mask
            cfg = VideoConfig(detect_every=1, temporal=TemporalConfig(mode=mode))
            restorer = TemporalRestorer(RestoreConfig(model=model), cfg.temporal)
            tracker = Tracker(cfg.track)
            given = iter(masks)

            def detector(image, boxes=None, _given=given):
                return regions_from_mask(image, next(_given), None, "mosaic")

            frames = (Frame(i, i, i / 25, m) for i, m in enumerate(mos))
            chunk: list = []
            outs = []
            started: set[int] = set()
            for item in track_regions_with(tracker, frames, detector, cfg):
                chunk.append(item)
                if len(chunk) >= cfg.clip_length:
                    outs += [r.image for r in _restore_chunk(chunk, restorer, started, tracker)]
                    chunk = []
            if chunk:
                outs += [r.image for r in _restore_chunk(chunk, restorer, started, tracker)]
            calls = restorer.model_calls
            per_mode[mode] = (float(np.mean([psnr(o, t, m) for o, t, m in zip(outs, truth, masks)])), flicker(outs, truth, masks), calls)
        mp = float(np.mean([psnr(o, t, m) for o, t, m in zip(mos, truth, masks)]))
        mf = flicker(mos, truth, masks)
        (p0, f0, _), (p1, f1, c1) = per_mode["off"], per_mode["blend"]
        ratios.append(f1 / f0)
        rows.append(f"| {name} | {len(truth)} | {mp:.2f} | {p0:.2f} | {p1:.2f} | {mf:.2f} | {f0:.2f} | {f1:.2f} | {f1 / f0:.2f} | {c1} of {len(truth)} |")
        print(rows[-1], flush=True)
    rows.append(f"\nFlicker ratio temporal / frame-by-frame: mean {np.mean(ratios):.2f} (target <= 0.7).")
    return rows


def speed(model: str, n: int, tmp: Path) -> list[str]:
    rows = ["| input | frames | region | end-to-end frames/s (wall, shared CPU) | CPU s per frame (all threads) | frames/s if the CPU time were ours | model calls | peak RSS MiB |",
            "|---|---|---|---|---|---|---|---|"]
    sources = []
    photo = load(sorted((DATA / "scenes" / "val").iterdir())[2])
    for (W, H) in ((320, 240), (1280, 720)):
        truth = pan_frames(photo, n, (W, H), speed=(0.7, 0.3))
        mos = [pixelate(f, boxes=[(W // 2 - 64, H // 2 - 64, 128, 128)], cell=12)[0] for f in truth]
        src = write_video(tmp / f"speed{W}.mp4", mos, audio=1, crf=12)
        sources.append((f"{W}x{H} panned photo", src))
    bunny = DATA / "video" / "bigbuckbunny.mp4"
    if bunny.exists():
        mos = [pixelate(f.image, boxes=[(576, 296, 128, 128)], cell=12)[0] for f, _ in zip(read_frames(bunny), range(n))]
        sources.append(("1280x720 bigbuckbunny", write_video(tmp / "bunny.mp4", mos, audio=1, crf=12)))
    for label, src in sources:
        t0, c0 = time.perf_counter(), cpu_s()
        rep = restore_video(src, tmp / f"out-{src.name}", model=model, encode=EncodeConfig())
        el, cpu = time.perf_counter() - t0, cpu_s() - c0
        # with 2 cores a run that had the machine would take about max(cpu / 2, cpu / threads busy) seconds
        rows.append(f"| {label} | {rep.frames} | 128x128, cell 12 | {rep.frames / el:.2f} | {cpu / rep.frames:.2f} | "
                    f"{2 * rep.frames / cpu:.1f} (2 cores) - {rep.frames / cpu:.1f} (1 core) | {rep.model_calls} | {peak_mb():.0f} |")
        print(rows[-1], flush=True)
    return rows


def memory_and_streams(tmp: Path, long_frames: int) -> list[str]:
    out = []
    # 1. memory does not grow with length: pixelate a long synthetic clip, RSS sampled while it runs
    photo = load(sorted((DATA / "scenes" / "val").iterdir())[2])
    base = pan_frames(photo, 50, (640, 360), speed=(0.5, 0.2))
    import av

    src = tmp / "long.mp4"
    with av.open(str(src), "w") as c:  # written frame by frame: the benchmark itself stays small
        s = c.add_stream("libx264", rate=25)
        s.width, s.height, s.pix_fmt = 640, 360, "yuv420p"
        s.codec_context.options = {"preset": "ultrafast", "crf": "23"}
        for i in range(long_frames):
            f = base[i % 50] if (i // 50) % 2 == 0 else base[49 - i % 50]
            for p in s.encode(av.VideoFrame.from_ndarray(f, format="rgb24")):
                c.mux(p)
        for p in s.encode(None):
            c.mux(p)
    samples = {}

    def progress(done, total):
        if done in (long_frames // 10, long_frames // 2, long_frames):
            samples[done] = rss_mb()

    t0 = time.perf_counter()
    pixelate_video(src, tmp / "long-out.mp4", boxes=[(200, 100, 160, 120)], cell=12, progress=progress, encode=EncodeConfig(preset="veryfast"))
    el = time.perf_counter() - t0
    out.append(f"- Long clip ({long_frames} frames 640x360, pixelate, {long_frames / el:.1f} frames/s): RSS "
               + ", ".join(f"{v:.0f} MiB at frame {k}" for k, v in sorted(samples.items())) + ".")
    # 2. 4K frames
    big = pan_frames(photo, 4, (3840, 2160), speed=(2.0, 0.0))
    src4k = write_video(tmp / "4k.mp4", big, audio=1, crf=20)
    before = peak_mb()
    t0 = time.perf_counter()
    rep = restore_video(src4k, tmp / "4k-out.mp4", mask=_box_mask((2160, 3840), (1800, 1000, 256, 192)), model="smooth", encode=EncodeConfig(preset="veryfast"))
    out.append(f"- 4K (3840x2160, {rep.frames} frames, a given 256x192 region, model smooth): works, "
               f"{rep.frames / (time.perf_counter() - t0):.2f} frames/s, peak RSS {peak_mb():.0f} MiB (before: {before:.0f}).")
    # 3. streams survive: 2 audio tracks + subtitles in mkv; the real clip with AAC
    frames = pan_frames(photo, 12, (320, 240), speed=(1.0, 0.0))
    mos = [pixelate(f, boxes=[(100, 60, 100, 90)], cell=10)[0] for f in frames]
    mkv = write_video(tmp / "streams.mkv", mos, pts=[0, 40, 80, 100, 140, 200, 240, 260, 300, 340, 400, 420], audio=2,
                      subtitles=[(0.0, 0.2, "one"), (0.25, 0.4, "two")], tags={"title": "bench"}, rotation=90, color=(1, 1, 1, 1))
    restore_video(mkv, tmp / "streams-out.mkv", model="smooth")
    out.append(f"- Streams, synthetic MKV (VFR, 2 AAC tracks, SubRip, tags, rotation, BT.709): {_streams_same(mkv, tmp / 'streams-out.mkv')}.")
    bunny = DATA / "video" / "bigbuckbunny.mp4"
    if bunny.exists():
        pixelate_video(bunny, tmp / "bunny-pix.mp4", boxes=[(576, 296, 128, 128)], cell=12, encode=EncodeConfig(preset="veryfast"))
        out.append(f"- Streams, bigbuckbunny.mp4 (H.264 + AAC), pixelated: {_streams_same(bunny, tmp / 'bunny-pix.mp4')}.")
    return out


def _box_mask(shape, box):
    m = np.zeros(shape, bool)
    x, y, w, h = box
    m[y : y + h, x : x + w] = True
    return m


def _streams_same(a: Path, b: Path) -> str:
    import av

    def info(p):
        with av.open(str(p)) as c:
            pk = [(pkt.stream.index, bytes(pkt), pkt.pts * pkt.time_base if pkt.pts is not None else None)
                  for pkt in c.demux() if pkt.size and pkt.stream.type != "video"]
            meta, kinds = dict(c.metadata), [s.type for s in c.streams]
        with av.open(str(p)) as c:  # a fresh demuxer: the loop above consumed this one
            ts = [f.pts * f.time_base for f in c.decode(c.streams.video[0])]
        return pk, ts, meta, kinds

    pa, ta, ma, sa = info(a)
    pb, tb, mb, sb = info(b)
    parts = [f"streams {sa} -> {sb}", f"{len(pa)} non-video packets {'bit-identical with the same timestamps' if pa == pb else 'DIFFER'}",
             f"{len(ta)} -> {len(tb)} frames, timestamps {'identical' if ta == tb else 'DIFFER'}"]
    if "title" in ma:
        parts.append(f"title tag {'kept' if mb.get('title') == ma['title'] else 'LOST'}")
    return "; ".join(parts)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--frames", type=int, default=16)
    ap.add_argument("--speed-frames", type=int, default=12)
    ap.add_argument("--long-frames", type=int, default=1500)
    ap.add_argument("--model", default="default")
    ap.add_argument("--skip", default="", help="comma list of parts to skip: quality,speed,memory")
    args = ap.parse_args()
    import torch

    skip = set(filter(None, args.skip.split(",")))
    head = ["## Video (`benchmarks/video.py`)", "",
            f"Machine: {platform.machine()} CPU (2 cores), {torch.get_num_threads()} torch threads, torch {torch.__version__}, shared with "
            "other jobs (several test suites and a GAN training ran at the same time, load average 30-40: speeds are pessimistic and noisy). "
            f"Model: {args.model}; encoder libx264 crf 18 preset medium (the defaults). Each part below is written by its own run "
            "(`--skip` the others).", ""]
    write_section("\n".join(head), "<!-- video:start -->", "<!-- video:end -->")
    parts = {
        "quality": lambda tmp: ["### Quality over time (region given; PSNR in dB inside the region, flicker in grey levels)", "",
                                *quality(synthetic_cases(args.frames) + clip_cases(args.frames), args.model)],
        "speed": lambda tmp: ["### End to end (decode, detect every 4 frames and around tracks between, track, restore, encode, streams copied)", "",
                              *speed(args.model, args.speed_frames, tmp)],
        "memory": lambda tmp: ["### Memory and streams", "", *memory_and_streams(tmp, args.long_frames)],
    }
    for name, run in parts.items():
        if name in skip:
            continue
        with tempfile.TemporaryDirectory() as d:
            text = "\n".join(run(Path(d)))
        print(text, flush=True)
        write_section(text, f"<!-- video-{name}:start -->", f"<!-- video-{name}:end -->")


if __name__ == "__main__":
    main()
