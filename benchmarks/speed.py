"""Speed benchmark against the hardware's limit.

    python -m benchmarks.speed [--no-write] [--repeats 3] [--skip-stages]

In one run: this CPU's measured float32 matmul throughput (the practical peak); each network's
convolution FLOPs per pixel and the fraction of that peak it reaches with eager PyTorch and with
ONNX Runtime, side by side; and the time of each stage (read, detect, restore = model, project =
mosaic-consistency projection, write) for a clean 1920x1080 photo, the same photo with one
320x320 mosaic, and a 12 MP photo with one 320x320 mosaic, each in a fresh process (so peak
memory is that image's), at each quality preset's default. Inputs are made from a bundled photo
(../shared/data/scenes/train/mate-GreenMeadow.jpg, upscaled) into runs/benchmarks/speed/.
Writes its section of benchmarks/RESULTS.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
WORK = ROOT / "runs" / "benchmarks" / "speed"
SOURCE = DATA / "scenes" / "train" / "mate-GreenMeadow.jpg"
MOSAIC_BOX = 320  # side of the mosaicked square, px
MOSAIC_CELL = 16

# ----------------------------------------------------------------------------- inputs


def make_inputs() -> dict[str, Path]:
    """clean 1080p, 1080p with a 320x320 mosaic, 12 MP with a 320x320 mosaic (JPEG q92)."""
    import cv2
    from PIL import Image

    from tessera.mosaic.pixelate import pixelate

    WORK.mkdir(parents=True, exist_ok=True)
    paths = {k: WORK / f"{k}.jpg" for k in ("clean-1080p", "mosaic-1080p", "mosaic-12mp")}
    if all(p.is_file() for p in paths.values()):
        return paths
    src = np.asarray(Image.open(SOURCE).convert("RGB"))
    hd = cv2.resize(src, (1920, 1536), interpolation=cv2.INTER_CUBIC)[228 : 228 + 1080]
    big = cv2.resize(src, (4000, 3200), interpolation=cv2.INTER_CUBIC)[100:3100]
    Image.fromarray(hd).save(paths["clean-1080p"], quality=92)
    box = [(800, 380, MOSAIC_BOX, MOSAIC_BOX)]
    Image.fromarray(pixelate(hd, boxes=box, cell=MOSAIC_CELL)[0]).save(paths["mosaic-1080p"], quality=92)
    box = [(1800, 1300, MOSAIC_BOX, MOSAIC_BOX)]
    Image.fromarray(pixelate(big, boxes=box, cell=MOSAIC_CELL)[0]).save(paths["mosaic-12mp"], quality=92)
    return paths


# ----------------------------------------------------------------------------- the limit


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    import onnxruntime
    import torch

    return (f"{cpu}, {len(os.sched_getaffinity(0))} cores, torch {torch.__version__}, onnxruntime {onnxruntime.__version__}, "
            f"no GPU; load average {os.getloadavg()[0]:.1f} at the start (shared with other engineers' jobs and a training run)")


def matmul_gflops(n: int = 2048, repeats: int = 5) -> dict[str, float]:
    """Best float32 GFLOP/s of an n x n matmul with numpy (BLAS) and torch, all threads."""
    import torch

    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((n, n), dtype=np.float32), rng.standard_normal((n, n), dtype=np.float32)
    ta, tb = torch.from_numpy(a), torch.from_numpy(b)
    out = {}
    for name, fn in (("numpy", lambda: a @ b), ("torch", lambda: torch.mm(ta, tb))):
        fn()
        best = min(_timed(fn) for _ in range(repeats))
        out[name] = 2 * n**3 / best / 1e9
    return out


def _timed(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def conv_flops_per_pixel(net, in_channels: int, size: int = 256) -> float:
    """FLOPs (2 x multiply-adds) of every convolution per input pixel, counted on a size x size input."""
    import torch

    macs = [0]

    def hook(mod, inp, out):
        if isinstance(mod, torch.nn.ConvTranspose2d):
            macs[0] += inp[0].numel() * mod.out_channels // mod.groups * mod.kernel_size[0] * mod.kernel_size[1]
        else:
            macs[0] += out.numel() * mod.in_channels // mod.groups * mod.kernel_size[0] * mod.kernel_size[1]

    handles = [m.register_forward_hook(hook) for m in net.modules() if isinstance(m, (torch.nn.Conv2d, torch.nn.ConvTranspose2d))]
    try:
        with torch.inference_mode():
            net(torch.zeros(1, in_channels, size, size))
    finally:
        for h in handles:
            h.remove()
    return 2 * macs[0] / (size * size)


def network_table(peak: float, repeats: int) -> str:
    """Per network: FLOPs per pixel; ms per image for eager torch and ONNX Runtime; GFLOP/s and the
    fraction of the measured matmul peak each reaches."""
    from tessera.restore.backend import load_runner

    rows = ["| network | input | GFLOP per image | torch ms | ONNX Runtime ms | ORT / torch speed-up | torch % of peak | ORT % of peak |",
            "|---|---|---|---|---|---|---|---|"]
    cases = [("scenes", 4, 512, 1), ("scenes", 4, 512, 4), ("scenes", 4, 256, 4), ("faces", 4, 512, 1), ("detector", 3, 1080, 1)]
    for name, cin, size, batch in cases:
        torch_runner = load_runner(name, "torch")
        ort_runner = load_runner(name, "onnx")
        w = 1920 if size == 1080 else size
        fpp = conv_flops_per_pixel(torch_runner.net, cin, 256)
        gflop = fpp * size * w * batch / 1e9
        x = np.random.default_rng(0).uniform(-1, 1, (batch, cin, size, w)).astype(np.float32)
        times = {}
        for r in (torch_runner, ort_runner):
            r(x)
            times[r.backend] = statistics.median(_timed(lambda: r(x)) for _ in range(repeats))
        t, o = times["torch"], times["onnx"]
        rows.append(f"| {name} | {batch}x{cin}x{size}x{w} | {gflop:.1f} ({fpp / 1e3:.0f} kFLOP/px) | {1000 * t:.0f} | {1000 * o:.0f} | "
                    f"{t / o:.2f}x | {100 * gflop / t / peak:.0f}% | {100 * gflop / o / peak:.0f}% |")
        print(rows[-1], flush=True)
    return "\n".join(rows)


# ----------------------------------------------------------------------------- stages (one fresh process per image)


def stages(path: Path, quality: str, backend: str) -> dict:
    """Run in a fresh process: the time of each stage of `tessera restore` on one image, and the
    process's peak memory. 'restore' is the model (all its calls), 'project' the mosaic-consistency
    projection, 'other' the rest of restore_image (crops, smooth pre-fill, blending)."""
    t0 = time.perf_counter()
    import tessera.restore.pipeline as P
    from tessera.detect.mosaics import detect, load_detector
    from tessera.io.image import read_image
    from tessera.restore.marking import write_restoration

    out = {"image": path.name, "quality": quality, "backend": backend}
    t = time.perf_counter()
    out["import"] = t - t0
    rgb, info = read_image(path)
    out["read"] = time.perf_counter() - t
    t = time.perf_counter()
    det = load_detector(None, backend)
    out["load detector"] = time.perf_counter() - t
    t = time.perf_counter()
    regions = detect(rgb, model=det)
    out["detect"] = time.perf_counter() - t
    out["regions"] = len(regions)
    spent = {"restore": 0.0, "project": 0.0}
    cfg = P.RestoreConfig(quality=quality, backend=backend)
    inner = cfg.restorer()

    class Timed:
        name = inner.name

        def __call__(self, *a):
            t1 = time.perf_counter()
            try:
                return inner(*a)
            finally:
                spent["restore"] += time.perf_counter() - t1

    project = P.project

    def timed_project(*a, **k):
        t1 = time.perf_counter()
        try:
            return project(*a, **k)
        finally:
            spent["project"] += time.perf_counter() - t1

    P.project = timed_project
    t = time.perf_counter()
    res = P.restore_image(rgb, None, config=cfg, regions=regions, restorer=Timed()) if regions else None
    total = time.perf_counter() - t
    P.project = project
    out.update(spent)
    out["other"] = total - spent["restore"] - spent["project"]
    target = WORK / f"out-{path.stem}-{quality}-{backend}.jpg"
    target.unlink(missing_ok=True)
    t = time.perf_counter()
    write_restoration(target, res.image if res else rgb, res.mask if res else np.zeros(rgb.shape[:2], bool), cfg.model,
                      overwrite=True, quality=95, alpha=info.alpha, icc_profile=info.icc_profile)
    out["write"] = time.perf_counter() - t
    out["in process"] = sum(out[k] for k in ("read", "load detector", "detect", "restore", "project", "other", "write"))
    out["peak MB"] = _peak_mb()
    out["torch imported"] = "torch" in sys.modules
    return out


def _peak_mb() -> float:
    """This process's peak resident memory: VmHWM (ru_maxrss would include the parent's peak: Linux
    carries it over fork and exec)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run_stages(path: Path, quality: str, backend: str) -> dict:
    """:func:`stages` in a fresh interpreter (start-up, imports and peak memory are this image's)."""
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src") + os.pathsep + os.environ.get("PYTHONPATH", "")}
    cmd = [sys.executable, "-m", "benchmarks.speed", "--child", str(path), "--quality", quality, "--backend", backend]
    done = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, env=env, timeout=1800)
    if done.returncode != 0:
        raise RuntimeError(f"stage run failed: {done.stderr.strip().splitlines()[-1:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


STAGE_KEYS = ("import", "read", "load detector", "detect", "restore", "project", "other", "write", "in process")


def stage_table(rows: list[dict]) -> str:
    head = "| image | backend | quality | regions | " + " | ".join(STAGE_KEYS) + " | peak memory | torch imported |"
    lines = [head, "|" + "---|" * (len(STAGE_KEYS) + 6)]
    for r in rows:
        lines.append(f"| {r['image']} | {r['backend']} | {r['quality']} | {r['regions']} | "
                     + " | ".join(f"{r[k]:.2f}" for k in STAGE_KEYS) + f" | {r['peak MB']:.0f} MB | {'yes' if r['torch imported'] else 'no'} |")
    return "\n".join(lines)


def median_rows(runs: list[dict]) -> dict:
    """Per-key median over repeated runs of one configuration."""
    out = dict(runs[0])
    for k in (*STAGE_KEYS, "peak MB"):
        out[k] = statistics.median(r[k] for r in runs)
    return out


# ----------------------------------------------------------------------------- main


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--child", type=Path, help=argparse.SUPPRESS)
    ap.add_argument("--quality", default="balanced", help=argparse.SUPPRESS)
    ap.add_argument("--backend", default="auto", help=argparse.SUPPRESS)
    ap.add_argument("--repeats", type=int, default=3, help="runs per figure (medians are reported)")
    ap.add_argument("--skip-stages", action="store_true", help="only the matmul peak and the network table")
    ap.add_argument("--no-write", action="store_true", help="print, do not touch RESULTS.md")
    args = ap.parse_args(argv)
    if args.child is not None:
        print(json.dumps(stages(args.child, args.quality, args.backend)))
        return
    t0 = time.time()
    lines = ["## Speed (`python -m benchmarks.speed`)", "", f"Machine: {machine()}.", ""]
    peak = matmul_gflops()
    best = max(peak.values())
    lines += [f"Measured float32 matmul peak (2048x2048, best of 5): numpy {peak['numpy']:.0f} GFLOP/s, torch {peak['torch']:.0f} GFLOP/s; "
              f"the fractions below are of {best:.0f} GFLOP/s. Convolution FLOPs only (2 per multiply-add); medians of {args.repeats} runs.", ""]
    print(lines[-2], flush=True)
    lines += [network_table(best, args.repeats), ""]
    if not args.skip_stages:
        inputs = make_inputs()
        rows = []
        for key, quality, backend in (("clean-1080p", "balanced", "onnx"), ("clean-1080p", "balanced", "torch"),
                                      ("mosaic-1080p", "fast", "onnx"), ("mosaic-1080p", "balanced", "onnx"),
                                      ("mosaic-1080p", "balanced", "torch"), ("mosaic-12mp", "balanced", "onnx")):
            if args.repeats > 1:
                run_stages(inputs[key], quality, backend)  # warm: caches, page cache
            rows.append(median_rows([run_stages(inputs[key], quality, backend) for _ in range(args.repeats)]))
            print(stage_table(rows[-1:]).splitlines()[-1], flush=True)
        lines += ["Stages in seconds, each image in a fresh process (import = the library's imports; load detector = "
                  "reading the detector, from the ONNX cache or as torch; restore = the model's calls; project = the "
                  "mosaic-consistency projection; other = crops, smooth pre-fill, blending), medians of "
                  f"{args.repeats} run(s){' after a warm-up' if args.repeats > 1 else ''}; peak memory is the process's maximum resident set:", "",
                  stage_table(rows), ""]
    lines.append(f"({time.time() - t0:.0f} s)")
    text = "\n".join(lines)
    print(text)
    if not args.no_write:
        from benchmarks._results import write_section

        write_section(text, "<!-- speed -->", "<!-- /speed -->")


if __name__ == "__main__":
    main()
