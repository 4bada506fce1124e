"""Benchmark of the two optimization-based restorers on faces/val: DCGAN completion by latent
search (``dcgan``) and multi-scale neural patch synthesis (``MODEL+patch``), beside the models
they are compared with. Two case sets from the same seeded regions (tessera.evaluate.make_cases):

- mosaic: the region is pixelated, restorers get the true mask and grid (kind 'mosaic');
- hole: the same regions with their pixels unknown (kind 'hole').

PSNR / SSIM inside the region, and seconds per image. Also the latent search's contextual loss
before and after. Writes its section of benchmarks/RESULTS.md (between '<!-- latent_patch -->'
markers) and a sample sheet per set under runs/latent_patch/ (not committed).

    python -m benchmarks.latent_patch [--cases 8] [--models smooth,telea,faces,dcgan,...]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch
from benchmarks._results import write_section

from tessera.evaluate import load_folder, make_cases, psnr, sample_sheet, ssim
from tessera.restore.pipeline import restore_image
from tessera.restore.restorer import from_spec, resolve_model

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
RESULTS = ROOT / "benchmarks" / "RESULTS.md"
TAG = "latent_patch"


def run_set(cases, models, kind: str) -> tuple[dict, dict]:
    rows, outputs = {}, {}
    for name in models:
        ps, ss, ts, outs = [], [], [], []
        for c in cases:
            if kind == "mosaic":
                img, grid, k = c.degraded, c.grid, "mosaic"
            else:
                img, grid, k = np.where(c.mask[..., None], np.uint8(0), c.clean), None, "hole"
            t0 = time.perf_counter()
            res = restore_image(img, c.mask, restorer=from_spec(name), grid=grid, kind=k)
            ts.append(time.perf_counter() - t0)
            ps.append(psnr(res.image, c.clean, c.mask))
            ss.append(ssim(res.image, c.clean, c.mask))
            outs.append(res.image)
            print(f"{kind} {name} {c.name}: {ps[-1]:.2f} dB {ts[-1]:.1f} s", flush=True)
        rows[name] = (float(np.mean(ps)), float(np.mean(ss)), float(np.mean(ts)), len(cases))
        outputs[name] = outs
    return rows, outputs


def table(rows: dict) -> str:
    lines = ["| model | cases | PSNR in region (dB) | SSIM in region | s / image |", "|---|---|---|---|---|"]
    for name, (p, s, t, n) in rows.items():
        lines.append(f"| {name} | {n} | {p:.2f} | {s:.4f} | {t:.1f} |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cases", type=int, default=8)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--models", default="")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--no-write", action="store_true")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    learned = ["faces"]
    mosaic_models = a.models.split(",") if a.models else ["smooth", "smooth+patch", *learned, *(m + "+patch" for m in learned), "dcgan"]
    hole_models = a.models.split(",") if a.models else ["telea", "telea+patch", *learned, *(m + "+patch" for m in learned), "dcgan"]
    images = load_folder(DATA / "faces" / "val", 512)
    cases = make_cases(images, a.cases, a.seed, kinds=("box", "ellipse"))
    out = ROOT / "runs" / "latent_patch"  # sample sheets (ignored by git)
    out.mkdir(parents=True, exist_ok=True)
    t_all = time.time()
    mos, mos_out = run_set(cases, mosaic_models, "mosaic")
    sample_sheet(cases, mos_out, out / "mosaic.png")
    hol, hol_out = run_set(cases, hole_models, "hole")
    hole_cases = [type(c)(c.name, c.clean, np.where(c.mask[..., None], np.uint8(0), c.clean), c.mask, None, "hole") for c in cases]
    sample_sheet(hole_cases, hol_out, out / "hole.png")
    # the latent search itself: contextual loss at the start and the end (best restart), and where
    # the time goes, on the first (up to) 4 hole cases
    restorer = resolve_model("dcgan")
    drops, split = [], []
    for c in cases[:4]:
        restorer(np.where(c.mask[..., None], np.uint8(0), c.clean), c.mask, None, "hole")
        h = restorer.last.context
        drops.append((float(h[0].min()), float(h[-1][restorer.last.best])))
        split.append((restorer.seconds["search"], restorer.seconds["blend"]))
    cfg = restorer.cfg
    meta = getattr(restorer.model, "metadata", {})
    text = f"""## Latent-search completion (dcgan) and neural patch synthesis (+patch), faces/val

`python -m benchmarks.latent_patch --cases {a.cases}` on {a.cases} seeded cases (box and ellipse regions, seed {a.seed})
from ../shared/data/faces/val; machine: 2-core CPU (no GPU), torch {torch.__version__} CPU, {a.threads} threads,
shared with other jobs while it ran (times are upper bounds). Wall time of the whole run: {(time.time() - t_all) / 60:.1f} min.
dcgan: src/tessera/weights/dcgan-faces64.safetensors ({meta.get('steps', '?')} steps), {cfg.restarts} restarts x {cfg.iters} Adam steps
(lr {cfg.lr}), lambda {cfg.lam}, Poisson blending. +patch: the model's output refined by multi-scale neural patch
synthesis on the DCGAN critic's features (restore/patch.py defaults).

Mosaic cases (true mask and grid given; consistency projection on):

{table(mos)}

Hole cases (same regions, pixels unknown):

{table(hol)}

Latent search on the hole cases: contextual loss (weighted L1 at 64x64, best restart) from
{np.mean([d[0] for d in drops]):.1f} at the start to {np.mean([d[1] for d in drops]):.1f} at the end (mean of {len(drops)} cases); per image
{np.mean([t[0] for t in split]):.1f} s in the search and {np.mean([t[1] for t in split]):.2f} s in the Poisson blend.
"""
    print(text)
    if not a.no_write:
        write_section(text, f"<!-- {TAG} -->", f"<!-- /{TAG} -->", RESULTS)


if __name__ == "__main__":
    main()
