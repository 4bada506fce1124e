"""Mosaics as other tools make them: every zoo generator x output format on scenes/val and faces/val.

For each (generator, format) a few seeded cases (tessera.mosaic.synth.zoo_case via
tessera.evaluate.make_zoo_cases); PSNR inside the true mask for: identity (leave the mosaic),
smooth, scenes, faces and auto (the default: faces or scenes per region) given the true mask, and
auto with the mask it detects itself; blockiness (1.0 = no lattice edges) of auto with the true
and the detected mask. Targets (issue 17): no row below identity; scenes >= identity + 1.5 dB and
faces >= identity + 3.5 dB with the true mask; detected masks within 0.3 dB of the true mask;
blockiness <= 1.2 in every row.

    nice python -m benchmarks.zoo [--per 2] [--sets scenes,faces] [--generators all] [--formats png,jpeg,jpeg444,h264]

Writes its section of benchmarks/RESULTS.md (between the '<!-- zoo -->' markers) and every score
to runs/benchmarks/zoo/scores.json (not committed).
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from collections import defaultdict
from pathlib import Path

import numpy as np
import torch

try:
    from benchmarks._results import write_section
except ImportError:  # run as a script from benchmarks/
    from _results import write_section

from tessera.evaluate import PSNR_CAP, blockiness, load_folder, make_zoo_cases, psnr, score_case
from tessera.mosaic.synth import ZOO, ZOO_FORMATS
from tessera.restore.restorer import resolve_model

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
MODELS = ("smooth", "scenes", "faces", "auto")
TARGET_GAIN = {"scenes": 1.5, "faces": 3.5}


def _mean(vals):
    vals = [min(v, PSNR_CAP) for v in vals if v is not None and np.isfinite(v)]
    return float(np.mean(vals)) if vals else float("nan")


def run_set(name: str, args, restorers) -> tuple[str, list[dict]]:
    images = load_folder(DATA / name / "val", args.max_side)
    cases = make_zoo_cases(images, args.per, seed=args.seed, generators=args.generators, formats=args.formats)
    rows: list[dict] = []
    t0 = time.perf_counter()
    for i, case in enumerate(cases):
        g = case.grid or case.nominal
        rec = {"set": name, "case": case.name, "generator": case.kind, "format": case.name.rsplit(":", 1)[1]}
        rec["identity"] = psnr(case.degraded, case.clean, case.mask)
        rec["blockiness identity"] = blockiness(case.degraded, case.mask, g)
        rec["blockiness clean"] = blockiness(case.clean, case.mask, g)
        for model, restorer in restorers.items():
            s, _ = score_case(case, model, restorer=restorer)
            rec[model] = s.psnr
            if model == "auto":
                rec["blockiness auto"] = s.blockiness
                rec["routes"] = list(getattr(restorer, "routes", []))
        if args.detect:
            s, _ = score_case(case, "auto", auto=True, restorer=restorers["auto"])
            rec["auto detected"] = s.psnr
            rec["blockiness auto detected"] = s.blockiness
            rec["routes detected"] = list(getattr(restorers["auto"], "routes", []))
        rows.append(rec)
        print(f"{name} {i + 1}/{len(cases)} {case.name} {time.perf_counter() - t0:.0f}s", flush=True)
    return table(name, rows, time.perf_counter() - t0), rows


def table(name: str, rows: list[dict], seconds: float) -> str:
    groups: dict[tuple[str, str], list[dict]] = defaultdict(list)
    for r in rows:
        groups[(r["generator"], r["format"])].append(r)
    cols = ["identity", *MODELS] + (["auto detected"] if any("auto detected" in r for r in rows) else [])
    gain = TARGET_GAIN[name]
    head = (
        "| generator | format | cases | " + " | ".join(cols) + " | blockiness auto (true / detected) | faces routed | "
        + f"targets: >= id, >= id + {gain}, detected within 0.3, blockiness <= 1.2 |"
    )
    lines = [f"### {name}/val ({len(rows)} cases, {seconds:.0f} s)", "", "PSNR in the true mask (dB).", "", head,
             "|" + "---|" * (len(cols) + 6)]
    met = defaultdict(int)
    allrows = []
    for (gen, fmt), rs in sorted(groups.items(), key=lambda kv: (list(ZOO).index(kv[0][0]), ZOO_FORMATS.index(kv[0][1]))):
        m = {c: _mean(r.get(c) for r in rs) for c in cols}
        bt = _mean(r.get("blockiness auto") for r in rs)
        bd = _mean(r.get("blockiness auto detected") for r in rs)
        routed = sum(rt == "faces" for r in rs for rt in r.get("routes", []))
        total = sum(len(r.get("routes", [])) for r in rs)
        checks = [
            m["auto"] >= m["identity"],
            m["auto"] >= m["identity"] + gain,
            ("auto detected" not in m) or m["auto detected"] >= m["auto"] - 0.3,
            max(bt, bd if np.isfinite(bd) else 0) <= 1.2,
        ]
        for k, ok in enumerate(checks):
            met[k] += ok
        allrows.append(m)
        lines.append(
            f"| {gen} | {fmt} | {len(rs)} | " + " | ".join(f"{m[c]:.2f}" for c in cols)
            + f" | {bt:.2f} / {bd:.2f} | {routed}/{total} | " + " ".join("y" if ok else "**n**" for ok in checks) + " |"
        )
    n = len(groups)
    overall = {c: _mean(m[c] for m in allrows) for c in cols}
    lines.append(f"| **all** | | {len(rows)} | " + " | ".join(f"**{overall[c]:.2f}**" for c in cols) + " | | | |")
    lines += ["", f"Rows meeting each target (of {n}): not below identity {met[0]}, identity + {gain} dB {met[1]}, "
              f"detected within 0.3 dB {met[2]}, blockiness <= 1.2 {met[3]}."]
    return "\n".join(lines)


def status(name: str, rows: list[dict]) -> str:
    """The set's standing against the issue's targets, in words (rows = generator x format means)."""
    groups: dict[tuple[str, str], list[dict]] = defaultdict(list)
    for r in rows:
        groups[(r["generator"], r["format"])].append(r)
    m = {k: {c: _mean(r.get(c) for r in rs) for c in ("identity", "auto", "auto detected", "blockiness auto", "blockiness auto detected",
                                                       "blockiness clean")}
         for k, rs in groups.items()}
    gain = TARGET_GAIN[name]
    ident, auto = _mean(v["identity"] for v in m.values()), _mean(v["auto"] for v in m.values())
    below = sorted(f"{g} {f} ({v['identity']:.2f} -> {v['auto']:.2f})" for (g, f), v in m.items() if v["auto"] < v["identity"])
    reach = sum(v["auto"] >= v["identity"] + gain for v in m.values())
    det = [v for v in m.values() if np.isfinite(v["auto detected"])]
    text = (f"{name}/val, true mask, `auto`: identity {ident:.2f} dB -> {auto:.2f} dB ({auto - ident:+.2f}, target +{gain}); "
            f"{len(m) - len(below)} of {len(m)} rows not below leaving the mosaic alone"
            + (f" (below: {'; '.join(below)})" if below else "") + f"; {reach} rows reach identity + {gain} dB")
    if det:
        gap = _mean(v["auto"] for v in det) - _mean(v["auto detected"] for v in det)
        within = sum(v["auto detected"] >= v["auto"] - 0.3 for v in det)
        text += f"; detected masks {gap:.2f} dB below the true mask ({within} rows within 0.3)"
    blk = sum(max(v["blockiness auto"], v["blockiness auto detected"] if np.isfinite(v["blockiness auto detected"]) else 0) <= 1.2
              for v in m.values())
    clean = [v["blockiness clean"] for v in m.values() if np.isfinite(v["blockiness clean"])]
    text += f"; blockiness <= 1.2 in {blk} rows"
    if clean:  # the photo itself, on the same edges: what a perfect restoration would score
        text += (f" (true mask alone: {sum(v['blockiness auto'] <= 1.2 for v in m.values())}; the photo itself "
                 f"scores <= 1.2 in {sum(b <= 1.2 for b in clean)} of {len(clean)} rows)")
    return text + "."


#: what the tables rest on (kept here: a rerun rewrites the whole section)
NOTES = (
    "Lattices: mosaics that other tools scale up by a non-integer factor (ImageMagick -scale, ffmpeg and OpenCV on a "
    "box whose side is no multiple of the cell; the `rescaled` generator) have cells of h / n pixels, 19 and 20 px in "
    "turn. Their lattice is estimated with fractional cells (`Grid.fractional`, `mosaic.grid.fit_pitch`: the edge "
    "profile's Fourier transform, then least squares through the lines; kept over the whole-pixel lattice when it "
    "explains the region's pixels 1.15x better, `lattice_fit`), and smooth, the consistency projection and the models "
    "work on those cells directly. The `nominal` grid of such cases is the tool's exact fractional lattice, so "
    "blockiness is measured on its true edges. Exact lattices carry the tool's own sampling: the mean, tessera's "
    "centre pixel (start + end - 1) // 2, 'centre-up' (start + end) // 2 (the centre-up generator and ffmpeg's "
    "neighbour scaling; earlier tables gave ffmpeg-nearest 'centre', one pixel off in even cells, and centre-up no "
    "grid) or 'first' (OpenCV INTER_NEAREST; earlier: no grid). A fitted feather whose band is at least 90 % flat "
    "mosaic is dropped (`restore.pipeline.BAND_FLAT`), and so is one whose recovered band is 2x rougher than both the "
    "photo around the mask and the restorer's guess (`BAND_ROUGHNESS`: a wrong profile amplifies the cells' colour into "
    "noise). "
    "Changes since the previous table (2026-12-01 morning: faces/val auto 25.17 dB, detected 24.09, 56 of 56 rows; "
    "scenes/val, then 1 case per row: auto 21.45, detected 21.04, 54 of 56 rows): the shipped `faces` file is the one "
    "fine-tuned on this zoo (zoo_prob 0.5; its card), and detection accepts a fractional lattice only where the net is "
    "sure (>= SURE_NET) and the lattice makes the cells flat (`mosaic.grid.LATTICE_CONTRAST`), which took clean images "
    "with a false region from 9 to 3 of 296 and left the detected masks, grids and kinds of all 168 zoo cases "
    "unchanged. scenes/val now has 2 cases per row like faces/val. A `scenes` fine-tune on this zoo (zoo_prob 0.5, "
    "2070 steps, lr 1e-4) scored -0.02 +- 0.01 dB against the shipped file on 168 paired zoo cases (tessera eval, "
    "seed 3) and is not shipped. Earlier changes (regions a few cells across, fractional cells on short spans, "
    "`FRACTION_SPAN_MULTIPLE`, blur regions with a lattice 2x better than half a cell off restored as mosaics "
    "(16 zoo cases 2.2-204, 80 Gaussian-blurred photo regions 0.9-1.4), masks completed within the lattice cells "
    "they cut, `GROW_TOL`) are in the git history of this file. "
    "Left: scenes rows below identity with the exact grid given are single cases where every restorer, smooth "
    "included, loses to the cell means (ffmpeg-area jpeg: a flat 720-px region of under two cells; rect h264: 12 x 4-px "
    "cells over texture); a self-check at twice the cell size (interpolating 2 x 2-cell means) did not predict them "
    "(it also flagged cases the models win by 0.4-0.7 dB). Blockiness with the true mask is mostly the feather inversion's band "
    "(soft png 2.0-2.7 against 1.1-1.4 without it, for +0.6 to +1.2 dB on two of three cases): the recovered band "
    "carries the fitted weight's error times each cell's colour; smoothing the band's cell means lost 0.2 dB and "
    "raised blockiness. The detected-mask gap is coverage: 15 of 168 regions (236-1312 px) are not detected at all "
    "(a third of the faces gap), and masks that miss whole outline cells leave lattice edges; a second lattice "
    "estimate on the detected region (kept when it explains the pixels 1.15x better) changed nothing on average. "
    "Of the 15 missed, 9 have a net probability of 0.4-0.9 inside (38-93 % of its pixels over 0.5) and are dropped for "
    "want of a lattice at the detector's thresholds; keeping such a component when a lattice measured on it has flat "
    "cells (the blur test above, both sides >= 20 px) found all 9 (faces detected gap 1.08 -> 1.01 dB, scenes 0.41 -> "
    "0.38, blockiness rows 21 -> 24 and 22 -> 23) but raised benchmarks.detect's clean images with a false region "
    "from 9 to 15 of 296 (before the fractional-lattice guard), so it is not in."
)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--per", type=int, default=2, help="cases per generator x format")
    ap.add_argument("--sets", default="scenes,faces")
    ap.add_argument("--generators", default="all")
    ap.add_argument("--formats", default=",".join(ZOO_FORMATS))
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--max-side", type=int, default=256, help="centre crop of each photo (px)")
    ap.add_argument("--no-detect", dest="detect", action="store_false", help="skip the auto-detected masks")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", type=Path, default=ROOT / "runs" / "benchmarks" / "zoo")
    ap.add_argument("--no-write", dest="write", action="store_false", help="do not touch RESULTS.md")
    ap.add_argument("--from-json", type=Path, nargs="+", help="rebuild the section from saved scores.json files (one per set) instead of running")
    args = ap.parse_args()
    args.generators = tuple(ZOO) if args.generators == "all" else tuple(args.generators.split(","))
    args.formats = tuple(args.formats.split(","))
    torch.set_num_threads(args.threads)
    sections, rows, notes = [], [], []
    commands: list[str] = []
    if args.from_json:  # sets run separately (e.g. in parallel with --no-write)
        for f in args.from_json:
            r = json.loads(Path(f).read_text())
            meta = json.loads((Path(f).parent / "meta.json").read_text()) if (Path(f).parent / "meta.json").exists() else {}
            sections.append(table(r[0]["set"], r, meta.get("seconds", float("nan"))))
            notes.append(status(r[0]["set"], r))
            commands.append(f"nice python -m benchmarks.zoo --per {meta.get('per', '?')} --sets {r[0]['set']} "
                            f"--no-write --out {Path(f).parent}  # load average {meta.get('load', float('nan')):.1f} at the end")
            print(sections[-1], "\n" + notes[-1], flush=True)
            rows += r
        args.sets = ",".join(dict.fromkeys(r["set"] for r in rows))
    else:
        restorers = {m: resolve_model(m) for m in MODELS}
        seconds = 0.0
        for name in args.sets.split(","):
            t0 = time.perf_counter()
            text, r = run_set(name, args, restorers)
            seconds += time.perf_counter() - t0
            sections.append(text)
            notes.append(status(name, r))
            rows += r
            print(text, "\n" + notes[-1], flush=True)
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "scores.json").write_text(json.dumps(rows, indent=1, default=float))
        (args.out / "meta.json").write_text(json.dumps({"seconds": seconds, "per": args.per, "sets": args.sets,
                                                        "load": __import__("os").getloadavg()[0]}))
        commands = [f"nice python -m benchmarks.zoo --per {args.per} --sets {args.sets}"]
    header = (
        "## Mosaics as other tools make them (`benchmarks/zoo.py`)\n\n"
        f"Machine: {platform.machine()} CPU, {args.threads} torch thread, torch {torch.__version__}, no GPU, "
        f"load average {__import__('os').getloadavg()[0]:.1f} when this section was written (shared machine: times may be inflated). "
        f"Seeded cases per generator x format (seed {args.seed}; how many: the commands below), photos centre-cropped to {args.max_side} px. "
        "identity = the mosaic left alone; smooth/scenes/faces/auto given the true mask (grid given when the tool "
        "has an exact one, else estimated); auto detected = the default path with no mask. Small samples: a row's "
        "mean moves by a dB from case to case, read the 'all' row and the counts.\n\n"
        + "".join(f"    {c}\n" for c in commands) + "\n"
        + "Status against the issue's targets: " + " ".join(notes) + "\n\n" + NOTES + "\n"
    )
    if args.write:
        write_section(header + "\n" + "\n\n".join(sections), "<!-- zoo -->", "<!-- /zoo -->")


if __name__ == "__main__":
    main()
