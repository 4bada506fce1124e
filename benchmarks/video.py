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
from dataclasses import replace
from pathlib import Path

import numpy as np

from benchmarks._results import write_section
from tessera.evaluate import psnr
from tessera.io.video import EncodeConfig, Frame, read_frames
from tessera.mosaic.pixelate import pixelate
from tessera.restore.pipeline import RestoreConfig, regions_from_mask
from tessera.video.pipeline import VideoConfig, _Plan, _plan, _run, pixelate_video, restore_video
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


def synthetic_cases(n: int) -> list[tuple[str, list[np.ndarray], list[np.ndarray], list[np.ndarray], int]]:
    """(name, truth frames, mosaicked frames, masks, cell) at 320x240."""
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
        cases.append((f"photo, mosaic {name}", truth, mos, masks, 10))
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
        cases.append((f"{name}, mosaic fixed", truth, mos, masks, cell))
    return cases


MODES = {  # label: (temporal config, multi-frame)
    "frame-by-frame": (TemporalConfig(mode="off"), "off"),
    "temporal": (TemporalConfig(mode="blend"), "off"),
    "multi-frame": (TemporalConfig(mode="blend"), "auto"),  # the default: temporal + multi-frame recovery
}


def run_mode(mos, masks, rcfg: RestoreConfig, temporal: TemporalConfig, multiframe: str, overlap: int | None = None):
    """Restore the mosaicked frames with the region given per frame (the box may move), through the
    video pipeline's own chunking (32-frame clips with multi-frame recovery, ``overlap`` frames shared
    by consecutive ones: None the default). -> (outputs, model calls, recovered masks)."""
    cfg = VideoConfig(detect_every=1, temporal=temporal, multiframe=multiframe)
    if overlap is not None:
        cfg = replace(cfg, multiframe_overlap=overlap)
    given = iter(masks)

    def detector(image, boxes=None):
        return regions_from_mask(image, next(given), None, "mosaic")

    plan = _plan(rcfg, config=cfg)
    plan = _Plan(cfg, detector, plan.restorer, plan.multiframe)
    frames = (Frame(i, i, i / 25, m) for i, m in enumerate(mos))
    res = list(_run(frames, plan, Tracker(cfg.track)))
    return [r.image for r in res], getattr(plan.restorer, "model_calls", 0), [r.recovered for r in res]


def quality(cases, rcfg: RestoreConfig, alphas: list[float]) -> list[str]:
    modes = dict(MODES)
    for a in alphas:
        if a != TemporalConfig().alpha:
            modes[f"temporal a={a}"] = (TemporalConfig(mode="blend", alpha=a), "off")
    names = list(modes)
    rows = ["| case | frames | mosaic | " + " | ".join(names) + " | flicker: mosaic | " + " | ".join(names)
            + " | ratio to frame-by-frame: " + " | ".join(names[1:]) + " | recovered % | flicker of the truth blurred to the cell scale (ratio) |",
            "|" + "---|" * (4 + 2 * len(names) + len(names) - 1 + 2)]
    ratios: dict[str, list[float]] = {n: [] for n in names[1:]}
    gains: dict[str, list[float]] = {n: [] for n in names[1:]}
    floors = []
    for name, truth, mos, masks, cell in cases:
        got = {}
        for label, (tcfg, mf) in modes.items():
            outs, calls, rec = run_mode(mos, masks, rcfg, tcfg, mf)
            p = float(np.mean([psnr(o, t, m) for o, t, m in zip(outs, truth, masks)]))
            frac = float(np.mean([(r.sum() if r is not None else 0) / max(m.sum(), 1) for r, m in zip(rec, masks)]))
            got[label] = (p, flicker(outs, truth, masks), calls, frac)
        mp = float(np.mean([psnr(o, t, m) for o, t, m in zip(mos, truth, masks)]))
        mf_ = flicker(mos, truth, masks)
        f0, p0 = got["frame-by-frame"][1], got["frame-by-frame"][0]
        for n in names[1:]:
            ratios[n].append(got[n][1] / f0)
            gains[n].append(got[n][0] - p0)
        rows.append(f"| {name} | {len(truth)} | {mp:.2f} | " + " | ".join(f"{got[n][0]:.2f}" for n in names) + f" | {mf_:.2f} | "
                    + " | ".join(f"{got[n][1]:.2f}" for n in names) + " | " + " | ".join(f"{got[n][1] / f0:.2f}" for n in names[1:])
                    + f" | {100 * got['multi-frame'][3]:.0f} | {detail_floor(truth, masks, cell):.2f} ({detail_floor(truth, masks, cell) / f0:.2f}) |")
        floors.append(detail_floor(truth, masks, cell) / f0)
        print(rows[-1], flush=True)
    rows.append("")
    rows.append(f"- The last column is an oracle: the truth itself blurred to the mosaic's cell scale (every cell-scale change right, no "
                f"sub-cell detail), what restoring without recovering detail could reach at best: {np.min(floors):.2f}-{np.max(floors):.2f} "
                "of frame-by-frame's flicker. The score counts the hidden detail's own change over time (and the camera noise), "
                "which only recovered pixels reproduce.")
    for n in names[1:]:
        rows.append(f"- {n}: flicker / frame-by-frame mean {np.mean(ratios[n]):.2f} (min {np.min(ratios[n]):.2f}, max {np.max(ratios[n]):.2f}; "
                    f"target <= 0.7), PSNR change mean {np.mean(gains[n]):+.2f} dB (min {np.min(gains[n]):+.2f}).")
    return rows


def pair_flicker(outs, truth, masks) -> np.ndarray:
    """Per consecutive pair (t-1, t): mean |(R_t - R_t-1) - (T_t - T_t-1)| over pixels hidden in both."""
    errs = []
    for t in range(1, len(outs)):
        both = masks[t] & masks[t - 1]
        d = (outs[t].astype(np.int16) - outs[t - 1]) - (truth[t].astype(np.int16) - truth[t - 1])
        errs.append(float(np.abs(d)[both].mean()))
    return np.array(errs)


def boundary(rcfg: RestoreConfig, n: int = 64) -> list[str]:
    """Where multi-frame clips meet: two photos panned behind a fixed mosaic (320x240, cell 10),
    ``n`` frames through the pipeline's own chunking, without and with the clips' overlap; the
    temporal-difference error of each pair of consecutive frames, in the hand-over zones (the pair
    into the first frame a later clip's solve touches, through the pair out of the last frame it
    shares with the earlier clip) against the other pairs, and PSNR in the region."""
    photos = sorted((DATA / "scenes" / "val").iterdir())
    size, default = VideoConfig().multiframe_clip, VideoConfig().multiframe_overlap
    rows = ["| case | mode | pairs | PSNR | mean outside the hand-overs | largest in each hand-over zone (pairs) | largest elsewhere (pair) |",
            "|---|---|---|---|---|---|---|"]
    modes = [("frame-by-frame", MODES["frame-by-frame"], 0), ("multi-frame, clips not overlapping", MODES["multi-frame"], 0),
             (f"multi-frame, {default} frames overlap (default)", MODES["multi-frame"], default)]
    for photo_i in (2, 5):
        truth = pan_frames(load(photos[photo_i]), n, (320, 240), speed=(0.7, 0.3))
        mos, masks = [], []
        for f in truth:
            out, m = pixelate(f, boxes=[(110, 70, 100, 90)], cell=10)
            mos.append(out)
            masks.append(m)
        for label, (tcfg, mf), overlap in modes:
            outs, _, _ = run_mode(mos, masks, rcfg, tcfg, mf, overlap)
            e = pair_flicker(outs, truth, masks)
            L = overlap if mf != "off" else 0
            zones = [list(range(s - 1, s + L)) for s in range(size - L, n - L, size - L)]  # pair i = (i, i + 1)
            rest = np.delete(e, [i for z in zones for i in z])
            worst = int(np.argmax(np.where(np.isin(np.arange(len(e)), [i for z in zones for i in z]), -1, e)))
            p = float(np.mean([psnr(o, t, m) for o, t, m in zip(outs, truth, masks)]))
            rows.append(f"| photo {photo_i}, mosaic fixed | {label} | {len(e)} | {p:.2f} | {rest.mean():.2f} | "
                        + ", ".join(f"{e[z].max():.2f} ({z[0]}-{z[-1] + 1})" for z in zones) + f" | {e[worst]:.2f} ({worst}-{worst + 1}) |")
            print(rows[-1], flush=True)
    rows += ["", f"- Clips of {size} frames; with an overlap of L frames a later clip's solve starts L frames before the earlier one "
             "ends and those frames' outputs cross-fade from the earlier solve to the later (the zones above); without, the "
             "clips meet between two frames."]
    return rows


def detail_floor(truth, masks, cell: int) -> float:
    """Flicker of the truth blurred to the cell scale (Gaussian, sigma cell / 2.5) inside the masks."""
    import cv2

    blurred = [np.where(m[..., None], cv2.GaussianBlur(t, (0, 0), cell / 2.5), t) for t, m in zip(truth, masks)]
    return flicker(blurred, truth, masks)


def speed(model: str, n: int, tmp: Path, quality_preset: str, backend: str, repeats: int = 3) -> list[str]:
    import os

    rows = [f"| input | multi-frame | frames | region | end-to-end frames/s, median of {repeats} runs (slowest-fastest) | CPU s per frame (all threads, median) | model calls | recovered % | peak RSS MiB | load average during the runs |",
            "|---|---|---|---|---|---|---|---|---|---|"]
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
    rcfg = RestoreConfig(model=model, quality=quality_preset, backend=backend)
    # warm up (imports, weights, sessions) so that the rows time the frames, not the start
    restore_video(sources[0][1], tmp / "warm.mp4", restore_config=rcfg, end=0.1, config=VideoConfig(multiframe="off"))
    for label, src in sources:
        for mf in ("off", "auto"):
            walls, cpus, loads = [], [], []
            for _ in range(repeats):  # the two modes' runs of one input follow each other: same load
                t0, c0 = time.perf_counter(), cpu_s()
                rep = restore_video(src, tmp / f"out-{mf}-{src.name}", restore_config=rcfg, config=VideoConfig(multiframe=mf),
                                    encode=EncodeConfig(), overwrite=True)
                walls.append(time.perf_counter() - t0)
                cpus.append(cpu_s() - c0)
                loads.append(os.getloadavg()[0])
            el, cpu = float(np.median(walls)), float(np.median(cpus))
            rows.append(f"| {label} | {mf} | {rep.frames} | 128x128, cell 12 | {rep.frames / el:.2f} ({rep.frames / max(walls):.2f}-{rep.frames / min(walls):.2f}) | "
                        f"{cpu / rep.frames:.2f} | {rep.model_calls} | {100 * rep.recovered_fraction:.0f} | {peak_mb():.0f} | "
                        f"{min(loads):.1f}-{max(loads):.1f} |")
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
    ap.add_argument("--repeats", type=int, default=3, help="runs per speed row (the median is reported)")
    ap.add_argument("--long-frames", type=int, default=1500)
    ap.add_argument("--model", default="default")
    ap.add_argument("--quality", default="fast", help="restore quality preset (fast: one model pass per crop)")
    ap.add_argument("--backend", default="onnx")
    ap.add_argument("--alphas", default="0.6", help="comma list of temporal blend weights to compare (0.6 is the default)")
    ap.add_argument("--skip", default="", help="comma list of parts to skip: quality,speed,memory,boundary")
    args = ap.parse_args()
    import torch

    skip = set(filter(None, args.skip.split(",")))
    rcfg = RestoreConfig(model=args.model, quality=args.quality, backend=args.backend)
    import os

    head = ["## Video (`benchmarks/video.py`)", "",
            f"Machine: {platform.machine()} CPU ({os.cpu_count()} cores), {torch.get_num_threads()} torch threads, torch {torch.__version__}, "
            f"load average {os.getloadavg()[0]:.1f} at the start (the machine is shared: above 2, speeds are pessimistic and noisy). Model: {args.model}, --quality {args.quality}, backend {args.backend}; encoder libx264 crf 18 "
            "preset medium (the defaults). Each part below is written by its own run (`--skip` the others).", ""]
    write_section("\n".join(head), "<!-- video:start -->", "<!-- video:end -->")
    parts = {
        "quality": lambda tmp: ["### Quality over time (region given; PSNR in dB inside the region, flicker in grey levels)", "",
                                *quality(synthetic_cases(args.frames) + clip_cases(args.frames), rcfg, [float(a) for a in args.alphas.split(",")])],
        "speed": lambda tmp: ["### End to end (decode, detect every 4 frames and around tracks between, track, restore, encode, streams copied)", "",
                              *speed(args.model, args.speed_frames, tmp, args.quality, args.backend, args.repeats)],
        "memory": lambda tmp: ["### Memory and streams", "", *memory_and_streams(tmp, args.long_frames)],
        "boundary": lambda tmp: ["### Where multi-frame clips meet (temporal-difference error per pair of frames, grey levels)", "",
                                 *boundary(rcfg)],
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
