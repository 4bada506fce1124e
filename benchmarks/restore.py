"""Restoration benchmark: `tessera eval` on the val folders, plus model time per 256x256 region.

Writes its section of benchmarks/RESULTS.md (between the '<!-- restore -->' markers) and the
report folders under runs/benchmarks/restore/ (report.md, psnr.png, samples.png; not committed).

    python -m benchmarks.restore [--cases 40] [--models smooth,telea,ns,scenes,faces] [--auto]
"""

from __future__ import annotations

import argparse
import platform
import time
from pathlib import Path

import numpy as np
import torch
from benchmarks._results import write_section

from tessera.evaluate import EvalConfig, markdown_table, run_eval
from tessera.restore.pipeline import SHIPPED, resolve_model

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
RESULTS = ROOT / "benchmarks" / "RESULTS.md"


def machine() -> str:
    return f"{platform.machine()} CPU, {torch.get_num_threads()} threads, torch {torch.__version__}, no GPU"


def model_time(name: str, size: int = 256, repeats: int = 5) -> float:
    """ms for the model alone on one size x size region (median of ``repeats``)."""
    rng = np.random.default_rng(0)
    img = rng.integers(0, 256, (size, size, 3), dtype=np.uint8)
    mask = np.ones((size, size), bool)
    restorer = resolve_model(name)
    restorer(img, mask, None, "mosaic")  # warm up
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        restorer(img, mask, None, "mosaic")
        times.append(time.perf_counter() - t0)
    return 1000 * float(np.median(times))


CELL_BINS = ((4, 8), (8, 13), (13, 20), (20, 33))
AREA_BINS = ((0, 15_000), (15_000, 40_000), (40_000, 10**9))  # hidden pixels


def true_mask_models(scores) -> list[str]:
    """The models scored with the true mask, in their order of appearance."""
    return list(dict.fromkeys(s.model for s in scores if not s.auto))


def grouped(scores, label: str, groups) -> str:
    """Mean PSNR per model and group of cases (true mask): where the gain comes from.
    groups: (row name, predicate on a Score) pairs; empty groups are left out."""
    models = true_mask_models(scores)
    rows = [f"| {label} | cases | " + " | ".join(models) + " |", "|" + "---|" * (len(models) + 2)]
    for name, keep in groups:
        sel = [s for s in scores if not s.auto and keep(s)]
        if not sel:
            continue
        vals = [np.mean([s.psnr for s in sel if s.model == m]) for m in models]
        rows.append(f"| {name} | {len(sel) // len(models)} | " + " | ".join(f"{v:.2f}" for v in vals) + " |")
    return "\n".join(rows)


def by_cell_size(scores) -> str:
    """Mean PSNR per cell-size bin (the larger cell side)."""
    return grouped(scores, "cell (px)", [(f"{lo}-{hi - 1}", lambda s, lo=lo, hi=hi: s.extra["cell"] is not None and lo <= s.extra["cell"] < hi)
                                         for lo, hi in CELL_BINS])


def by_sampling(scores) -> str:
    """Mean PSNR per cell sampling and cell size (small: larger side below 8 px)."""
    return grouped(scores, "sampling, cell", [
        (f"{samp}, {name}", lambda s, samp=samp, small=small: s.extra["sampling"] == samp and s.extra["cell"] is not None and (s.extra["cell"] < 8) == small)
        for samp in ("mean", "centre") for name, small in (("4-7 px", True), ("8-32 px", False))])


def by_area(scores) -> str:
    """Mean PSNR per size of the hidden region (pixels)."""
    return grouped(scores, "hidden pixels", [(f"{lo:,}-{hi:,}" if hi < 10**9 else f">= {lo:,}", lambda s, lo=lo, hi=hi: lo <= s.extra["area"] < hi)
                                             for lo, hi in AREA_BINS])


def edge_interior(scores) -> str:
    """Mean PSNR per model within 16 px of the region's outline and farther inside (true mask)."""
    models = true_mask_models(scores)
    rows = ["| model | PSNR within 16 px of the outline | PSNR farther inside |", "|---|---|---|"]
    for m in models:
        rows_m = [s for s in scores if s.model == m and not s.auto]
        edge = np.nanmean([s.extra["psnr_edge"] for s in rows_m])
        inner = [s.extra["psnr_interior"] for s in rows_m if np.isfinite(s.extra["psnr_interior"])]
        rows.append(f"| {m} | {edge:.2f} | {np.mean(inner):.2f} ({len(inner)} cases) |")
    return "\n".join(rows)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cases", type=int, default=40)
    ap.add_argument("--models", default="smooth,telea,ns," + ",".join(SHIPPED))
    ap.add_argument("--auto", action="store_true", help="also score each folder's own model (faces, scenes) with auto-detected masks")
    args = ap.parse_args()
    models = tuple(m for m in args.models.split(",") if m)
    out = [f"## Restoration (`benchmarks/restore.py`)\n\nMachine: {machine()}. {args.cases} seeded cases per folder "
           "(kinds box, ellipse, polygon, rect, border; cells 4-32 px, random phase, mean or centre sampling), true mask and grid given; "
           "PSNR/SSIM inside the hidden region. Learned models average 4 flipped passes; auto-mask rows decide the cell sampling as restore_image does.\n"]
    for folder in ("faces/val", "scenes/val"):
        report = ROOT / "runs" / "benchmarks" / "restore" / folder.replace("/", "-")
        cfg = EvalConfig(data=DATA / folder, models=models, output=report, cases=args.cases, seed=0)
        t0 = time.time()
        summary, scores = run_eval(cfg)
        own = folder.split("/")[0]
        auto = (own,) if args.auto and own in models else ()
        if auto:
            auto_summary, _ = run_eval(EvalConfig(data=DATA / folder, models=auto, output=report.with_name(report.name + "-auto"),
                                                  cases=args.cases, seed=0, auto=True))
            summary.update({k: v for k, v in auto_summary.items() if k.endswith("(auto mask)")})
        out.append(f"### {folder} ({time.time() - t0:.0f} s)\n\n{markdown_table(summary)}\n\n"
                   f"PSNR in region (dB) by cell size, true mask:\n\n{by_cell_size(scores)}\n\n"
                   f"By cell sampling (dB), true mask:\n\n{by_sampling(scores)}\n\n"
                   f"By size of the hidden region (dB), true mask:\n\n{by_area(scores)}\n\n"
                   f"Near the outline and inside (dB), true mask:\n\n{edge_interior(scores)}\n")
        print(out[-1], flush=True)
    rows = ["| model | ms per 256x256 region (model only) |", "|---|---|"]
    for m in models:
        rows.append(f"| {m} | {model_time(m):.0f} |")
    out.append("### Model time\n\n" + "\n".join(rows) + "\n")
    print(out[-1])
    write_section("\n".join(out), "<!-- restore -->", "<!-- /restore -->", RESULTS)


if __name__ == "__main__":
    main()
