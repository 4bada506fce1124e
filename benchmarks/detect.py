"""Benchmark mosaic detection on seeded synthetic cases made from the val folders.

    python -m benchmarks.detect [--weights PATH | --no-net] [--limit N] [--no-write]

Cases: every val image of ../shared/data/{scenes,faces}/val gets mosaics from the generators of
:mod:`tessera.mosaic.synth` (kinds cycled; PNG, or JPEG at quality 70-95 or 50-69), and every val
image is also used clean (PNG and JPEG) for false positives. Reports, per setting and per kind:
mean mask IoU (union of the detected regions vs. the ground-truth mask), region recall (a
ground-truth connected region >= 64 px counts as found when >= 50 % of it is covered by one
detected region), clean images with any region, exact cell size (h and w) and phase on
grid-aligned cases (the largest detected region overlapping the mosaic), sampling accuracy, and
ms per 512x512 image. Writes its section of benchmarks/RESULTS.md.
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import statistics
import time
from collections import defaultdict
from pathlib import Path

import cv2
import numpy as np
import torch
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"

from tessera.detect.mosaics import DetectConfig, default_weights, detect, load_detector  # noqa: E402
from tessera.mosaic.synth import GRID_ALIGNED, make_case  # noqa: E402

MOSAIC_KINDS = ("box", "ellipse", "polygon", "rect", "border", "feather", "pasted", "strokes", "multi", "soft", "blur")
JPEG_CYCLE = (None, None, 95, 85, 75, 70, None, 60, 50)


def load_val() -> list[tuple[str, np.ndarray]]:
    out = []
    for folder in ("scenes", "faces"):
        for p in sorted((DATA / folder / "val").glob("*")):
            if p.suffix.lower() in (".png", ".jpg", ".jpeg", ".bmp"):
                out.append((f"{folder}/{p.name}", np.asarray(Image.open(p).convert("RGB"))))
    if not out:
        raise SystemExit(f"no val images under {DATA}/*/val")
    return out


def regions_of(mask: np.ndarray, min_area: int = 64) -> list[np.ndarray]:
    n, labels, stats, _ = cv2.connectedComponentsWithStats(mask.astype(np.uint8), connectivity=8)
    return [labels == k for k in range(1, n) if stats[k, cv2.CC_STAT_AREA] >= min_area]


def setting(q: int | None) -> str:
    return "PNG" if q is None else ("JPEG q70-95" if q >= 70 else "JPEG q50-69")


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--weights", default=None, help="detector weights (default: shipped)")
    ap.add_argument("--no-net", action="store_true", help="grid analysis only")
    ap.add_argument("--limit", type=int, default=0, help="use only the first N val images (quick look)")
    ap.add_argument("--cases-per-image", type=int, default=2)
    ap.add_argument("--seed", type=int, default=2026)
    ap.add_argument("--no-write", action="store_true", help="print, do not touch RESULTS.md")
    ap.add_argument("--sensitivity", type=float, default=0.5)
    ap.add_argument("--threads", type=int, default=1, help="inference threads (1: steadiest on a shared 2-core CPU)")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)

    load0 = os.getloadavg()[0]
    weights = "" if args.no_net else args.weights
    model = load_detector(weights, threads=args.threads)
    cfg = DetectConfig(weights="" if model is None else weights, sensitivity=args.sensitivity)
    images = load_val()
    if args.limit:
        images = images[: args.limit]

    # ------------------------------------------------------------ mosaic cases
    per = defaultdict(list)  # (setting, kind) -> ious
    recall = defaultdict(lambda: [0, 0])  # setting -> [found, total]
    cell_ok = defaultdict(lambda: [0, 0, 0])  # setting -> [cell exact, phase exact, total]
    samp = [0, 0]
    i = 0
    for name, img in images:
        for _ in range(args.cases_per_image):
            kind = MOSAIC_KINDS[i % len(MOSAIC_KINDS)]
            q = JPEG_CYCLE[(i // len(MOSAIC_KINDS) + i) % len(JPEG_CYCLE)]
            rng = np.random.default_rng([args.seed, i])
            i += 1
            degraded, gt, grid = make_case(img, rng, kind, jpeg_quality=q)
            found = detect(degraded, config=cfg, model=model)
            pred = np.zeros(gt.shape, bool)
            masks = [r.full_mask() for r in found]  # a small image's: each region's mask over it
            for m in masks:
                pred |= m
            iou = float((pred & gt).sum() / max((pred | gt).sum(), 1))
            s = setting(q)
            per[(s, kind)].append(iou)
            for g in regions_of(gt):
                recall[s][1] += 1
                recall[s][0] += any((m & g).sum() >= 0.5 * g.sum() for m in masks)
            if kind in GRID_ALIGNED and grid is not None:
                cell_ok[s][2] += 1
                overl = [(r, m) for r, m in zip(found, masks) if r.grid is not None and (m & gt).any()]
                if overl:
                    best = max(overl, key=lambda rm: int((rm[1] & gt).sum()))[0]
                    cell_ok[s][0] += best.grid.cell == grid.cell
                    cell_ok[s][1] += best.grid.cell == grid.cell and best.grid.phase == grid.phase
                    if best.grid.cell == grid.cell:
                        samp[1] += 1
                        samp[0] += best.grid.sampling == grid.sampling

    # ------------------------------------------------------------ clean images
    fp = defaultdict(lambda: [0, 0])
    fp_names = []
    for j, (name, img) in enumerate(images):
        for q in (None, (70, 80, 90, 95, 50)[j % 5]):
            degraded, _, _ = make_case(img, np.random.default_rng(0), "clean", jpeg_quality=q)
            found = detect(degraded, config=cfg, model=model)
            key = "PNG" if q is None else "JPEG"
            fp[key][1] += 1
            if found:
                fp[key][0] += 1
                fp_names.append(f"{name}@{q or 'png'}: " + ", ".join(f"{r.kind} {r.box} {r.score:.2f}" for r in found))

    # hard negatives: posterized photos, synthetic screenshots, very blocky JPEG (q 25-40)
    hard = defaultdict(lambda: [0, 0])
    for j, (name, img) in enumerate(images):
        kind = ("posterized", "ui", "clean")[j % 3]
        rng = np.random.default_rng([args.seed, 10_000 + j])
        q = int(rng.integers(25, 41)) if kind == "clean" else (None if j % 2 else int(rng.integers(60, 96)))
        degraded, _, _ = make_case(img, rng, kind, jpeg_quality=q)
        found = detect(degraded, config=cfg, model=model)
        label = {"posterized": "posterized", "ui": "screenshot", "clean": "JPEG q25-40"}[kind]
        hard[label][1] += 1
        if found:
            hard[label][0] += 1
            fp_names.append(f"{label} {name}@{q or 'png'}: " + ", ".join(f"{r.kind} {r.box} {r.score:.2f}" for r in found))

    # ------------------------------------------------------------ speed on 512x512
    big = [img for _, img in images if min(img.shape[:2]) >= 512] or [images[0][1]]
    tiles = [cv2.resize(img[:512, :512], (512, 512)) for img in big[:6]]
    tests = []
    for k, t in enumerate(tiles):
        d, _, _ = make_case(t, np.random.default_rng(k), MOSAIC_KINDS[k % 4])
        tests += [t, d]
    detect(tests[0], config=cfg, model=model)  # warm up
    times = []
    for _ in range(3):
        for t in tests:
            t0 = time.perf_counter()
            detect(t, config=cfg, model=model)
            times.append((time.perf_counter() - t0) * 1000)
    ms = statistics.median(times)

    # ------------------------------------------------------------ report
    def mean(v):
        return float(np.mean(v)) if v else float("nan")

    settings = ["PNG", "JPEG q70-95", "JPEG q50-69"]
    lines = []
    label = "grid analysis only (no net)" if model is None else f"net `{Path(weights or default_weights()).name}` + grid analysis"
    lines.append(f"Detector: {label}; sensitivity {args.sensitivity}; {i} mosaic cases from {len(images)} val images "
                 f"(seed {args.seed}), {sum(v[1] for v in fp.values())} clean images.")
    lines.append(f"Machine: 2-core CPU (no GPU), torch {torch.__version__} CPU ({platform.processor() or platform.machine()}), "
                 f"net backend {getattr(model, 'backend', '-')}, {args.threads} thread(s), shared with other jobs while measured "
                 f"(load average {load0:.1f} at the start, {os.getloadavg()[0]:.1f} at the end: the speed line is a quality run's, not a timing).")
    lines.append("")
    lines.append("| metric | PNG | JPEG q70-95 | JPEG q50-69 | target |")
    lines.append("|---|---|---|---|---|")
    iou_by = {s: [v for (ss, k), vals in per.items() if ss == s and k != "blur" for v in vals] for s in settings}
    blur_by = {s: per[(s, "blur")] for s in settings}
    lines.append("| mean mask IoU, mosaics (all kinds but blur) | " + " | ".join(f"{mean(iou_by[s]):.3f} (n={len(iou_by[s])})" for s in settings) + " | >= 0.90 PNG, >= 0.85 JPEG q>=70 |")
    lines.append("| mean mask IoU, Gaussian-blur regions | " + " | ".join(f"{mean(blur_by[s]):.3f} (n={len(blur_by[s])})" for s in settings) + " | |")
    lines.append("| region recall (all kinds) | " + " | ".join(f"{recall[s][0] / max(recall[s][1], 1):.3f} ({recall[s][0]}/{recall[s][1]})" for s in settings) + " | |")
    lines.append("| exact cell size (grid-aligned) | " + " | ".join(f"{cell_ok[s][0] / max(cell_ok[s][2], 1):.3f} ({cell_ok[s][0]}/{cell_ok[s][2]})" for s in settings) + " | >= 0.95 |")
    lines.append("| exact cell + phase (grid-aligned) | " + " | ".join(f"{cell_ok[s][1] / max(cell_ok[s][2], 1):.3f}" for s in settings) + " | |")
    lines.append("")
    fp_all = sum(v[0] for v in fp.values()), sum(v[1] for v in fp.values())
    lines.append(f"Clean images with any false region: {fp_all[0]}/{fp_all[1]} = {fp_all[0] / max(fp_all[1], 1):.1%} "
                 f"(PNG {fp['PNG'][0]}/{fp['PNG'][1]}, JPEG {fp['JPEG'][0]}/{fp['JPEG'][1]}); target <= 2%.")
    lines.append("Hard negatives with any region: " + ", ".join(f"{k} {v[0]}/{v[1]}" for k, v in sorted(hard.items())) + ".")
    tot_cells = sum(v[2] for v in cell_ok.values())
    tot_ok = sum(v[0] for v in cell_ok.values())
    lines.append(f"Exact cell size over all grid-aligned cases: {tot_ok}/{tot_cells} = {tot_ok / max(tot_cells, 1):.1%}. "
                 f"Sampling (mean/centre) right where the cell is right: {samp[0]}/{samp[1]} = {samp[0] / max(samp[1], 1):.1%}.")
    lines.append(f"Speed: median {ms:.0f} ms per 512x512 image (clean and mosaicked, {len(times)} runs; "
                 f"p90 {np.quantile(times, 0.9):.0f} ms); target <= 150 ms.")
    lines.append("")
    lines.append("Mean IoU per generator (PNG / JPEG q70-95 / JPEG q50-69):")
    lines.append("")
    lines.append("| kind | PNG | JPEG q70-95 | JPEG q50-69 |")
    lines.append("|---|---|---|---|")
    for kind in MOSAIC_KINDS:
        lines.append(f"| {kind} | " + " | ".join(
            f"{mean(per[(s, kind)]):.3f} ({len(per[(s, kind)])})" if per[(s, kind)] else "-" for s in settings) + " |")
    if fp_names:
        lines.append("")
        lines.append("False regions on clean images: " + "; ".join(fp_names[:12]) + (" ..." if len(fp_names) > 12 else ""))
    body = "\n".join(lines)
    print(body)

    if not args.no_write and not args.limit:
        key = "detect-grid" if model is None else "detect"
        title = "Detection (grid analysis only)" if model is None else "Detection (net + grid analysis)"
        section = f"<!-- {key}:start -->\n## {title}\n\nCommand: `python -m benchmarks.detect{' --no-net' if model is None else ''}`, " \
                  f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}.\n\n{body}\n<!-- {key}:end -->"
        path = ROOT / "benchmarks" / "RESULTS.md"
        text = path.read_text() if path.exists() else "# Benchmark results\n"
        pattern = re.compile(rf"<!-- {key}:start -->.*?<!-- {key}:end -->", re.S)
        text = pattern.sub(lambda _: section, text) if pattern.search(text) else text.rstrip() + "\n\n" + section + "\n"
        path.write_text(text)


if __name__ == "__main__":
    main()
