"""Perceptual benchmark (issue 16): do the GAN restorers look more like photos than the fidelity ones?

For faces/val and scenes/val: seeded mosaic cases (true mask and grid), each model restores them,
and we score inside the region PSNR, SSIM, blockiness, re-mosaic residual (tessera eval), the
detail ratio (restored / original mean gradient magnitude), NIQE of the region (and of the
original region, the target), and a two-sample critic (trained on crops of restorations of
train cases, accuracy on the val cases' crops; 50 % = indistinguishable). Writes its section of
benchmarks/RESULTS.md (between the '<!-- perceptual -->' markers).

    python -m benchmarks.perceptual [--cases 40] [--sets faces,scenes] [--models smooth,fidelity,gan]
    python -m benchmarks.perceptual --fit-niqe   # refit src/tessera/evaluate/niqe_pristine.npz on the train photos

In --models, ``fidelity`` and ``gan`` stand for the set's models (``faces`` / ``faces-gan``); any
other name or .safetensors path is used as is; ``SET:path`` gives a per-set file
(e.g. ``faces:runs/faces-gan/g.safetensors``).
"""

from __future__ import annotations

import argparse
import platform
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"


def fit_pristine(per_set: int = 250, max_side: int = 256, seed: int = 0) -> Path:
    """Fit the NIQE pristine model on a seeded subset of faces/train and scenes/train."""
    from tessera.evaluate import load_folder
    from tessera.evaluate import NIQE_MODEL, fit_niqe

    rng = np.random.default_rng(seed)
    images = []
    for s in ("scenes", "faces"):
        found = load_folder(DATA / s / "train", max_side)
        pick = rng.permutation(len(found))[:per_set]
        images += [found[i][1] for i in sorted(pick)]
    model = fit_niqe(images)
    model.save(NIQE_MODEL)
    print(f"NIQE pristine model: {model.patches} patches of {len(images)} train photos -> {NIQE_MODEL}")
    return NIQE_MODEL


def machine() -> str:
    import torch

    return f"{platform.machine()} CPU ({torch.get_num_threads()} threads, shared with other jobs), torch {torch.__version__}, no GPU"


def resolve_name(name: str, set_name: str) -> str:
    if name == "fidelity":
        return set_name
    if name == "gan":
        return f"{set_name}-gan"
    if ":" in name:
        s, path = name.split(":", 1)
        return path if s == set_name else ""
    return name


def restore_all(cases, model: str) -> list[np.ndarray]:
    from tessera.restore.pipeline import restore_image
    from tessera.restore.restorer import from_spec

    restorer = from_spec(model)
    return [
        restore_image(c.degraded, c.mask, restorer=restorer, grid=c.grid, kind="mosaic" if c.grid else "auto").image for c in cases
    ]


def run_set(set_name: str, models: list[str], n_cases: int, n_train: int, seed: int) -> tuple[str, dict]:
    from tessera.evaluate import load_folder, make_cases, score_case
    from tessera.evaluate import detail_ratio, niqe, pair_crops, two_sample_critic

    val_cases = make_cases(load_folder(DATA / set_name / "val"), n_cases, seed)
    train_imgs = load_folder(DATA / set_name / "train")
    rng = np.random.default_rng(seed + 99)
    train_imgs = [train_imgs[i] for i in sorted(rng.permutation(len(train_imgs))[: max(n_train, 1) * 2])]
    train_cases = [c for c in make_cases(train_imgs, n_train, seed + 1) if min(c.mask.shape) >= 32][:n_train]
    niqe_orig = float(np.nanmean([niqe(c.clean, c.mask) for c in val_cases]))
    rows = {}
    for label in models:
        model = resolve_name(label, set_name)
        if not model:
            continue
        t0 = time.perf_counter()
        from tessera.restore.restorer import from_spec

        restorer = from_spec(model)
        scores, outs = zip(*(score_case(c, model, restorer=restorer) for c in val_cases))
        val_crops = pair_crops(outs, [c.clean for c in val_cases], [c.mask for c in val_cases], seed=seed)
        tr_outs = restore_all(train_cases, model)
        tr_crops = pair_crops(tr_outs, [c.clean for c in train_cases], [c.mask for c in train_cases], seed=seed + 1)
        acc = two_sample_critic(tr_crops[0], tr_crops[1], val_crops[0], val_crops[1], seed=seed)
        key = label if label in ("fidelity", "gan") else model  # a SET:path row is keyed by its file, never over the gan row
        rows[key] = {
            "model": model,
            "psnr": float(np.mean([min(s.psnr, 100.0) for s in scores])),
            "ssim": float(np.mean([s.ssim for s in scores])),
            "blockiness": float(np.nanmean([s.blockiness for s in scores if s.blockiness is not None])),
            "residual": float(np.nanmean([s.residual for s in scores if s.residual is not None])),
            "detail": float(np.nanmean([detail_ratio(o, c.clean, c.mask) for o, c in zip(outs, val_cases)])),
            "niqe": float(np.nanmean([niqe(o, c.mask) for o, c in zip(outs, val_cases)])),
            "critic": acc,
            "seconds": time.perf_counter() - t0,
        }
        print(set_name, label, rows[list(rows)[-1]], flush=True)
    lines = [
        f"**{set_name}/val** ({len(val_cases)} cases; critic trained on {len(train_cases)} {set_name}/train cases; "
        f"NIQE of the original regions: **{niqe_orig:.2f}**)",
        "",
        "| model | PSNR in region (dB) | SSIM | blockiness | re-mosaic residual | detail ratio | NIQE (region) | critic accuracy |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for label, r in rows.items():
        name = r["model"] if r["model"] == label else f"{label} (`{r['model']}`)"
        lines.append(
            f"| {name} | {r['psnr']:.2f} | {r['ssim']:.4f} | {r['blockiness']:.3f} | {r['residual']:.3f} | "
            f"{r['detail']:.3f} | {r['niqe']:.2f} | {100 * r['critic']:.1f} % |"
        )
    return "\n".join(lines), {"niqe_original": niqe_orig, "rows": rows}


#: each set's latest table (not committed), for a later --write-only
CACHE = ROOT / "runs" / "benchmarks" / "perceptual"


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--fit-niqe", action="store_true", help="refit the NIQE pristine model and stop")
    ap.add_argument("--sets", default="faces,scenes")
    ap.add_argument("--models", default="smooth,fidelity,gan")
    ap.add_argument("--cases", type=int, default=40)
    ap.add_argument("--train-cases", type=int, default=40, help="train cases the two-sample critic learns from")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--no-write", action="store_true", help="print the tables; leave RESULTS.md and the stored tables alone")
    ap.add_argument("--write-only", action="store_true", help="rewrite the RESULTS.md section from the sets' last tables")
    args = ap.parse_args(argv)
    if args.no_write and args.write_only:
        ap.error("--no-write and --write-only contradict each other")
    import torch

    torch.set_num_threads(args.threads)
    if args.fit_niqe:
        fit_pristine()
        return
    cache = CACHE
    for s in [] if args.write_only else args.sets.split(","):
        table, _ = run_set(s, args.models.split(","), args.cases, args.train_cases, args.seed)
        print(table, flush=True)
        if not args.no_write:  # a trial run (other cases, models or weights) must not reach a later --write-only
            cache.mkdir(parents=True, exist_ok=True)
            (cache / f"{s}.md").write_text(table)
    if args.no_write:
        return
    # the section holds every set's latest table (a set not rerun keeps its last one)
    parts = [(cache / f"{s}.md").read_text() for s in ("faces", "scenes") if (cache / f"{s}.md").exists()]
    if args.write_only:
        print("\n\n".join(parts))
    text = (
        "## Perceptual measures (`benchmarks/perceptual.py`)\n\n"
        f"Machine: {machine()}. Seeded mosaic cases (seed {args.seed}) of the val folders, true mask and grid, "
        "the pipeline's default flip ensemble (2 flipped passes for the fidelity models at --quality balanced, 1 for the GAN models). detail ratio: mean gradient magnitude in the region, restored / original "
        "(1.0 = as much detail as the photo). NIQE: lower = more natural (our pristine model, fitted on the train "
        "photos, 32-px patches, on the region's bounding box); the target is the originals' NIQE. critic accuracy: a "
        "fresh small CNN trained 300 steps to tell 32-px real crops from restored ones (8 per case) of train cases, "
        "scored on the val cases' crops (50 % = indistinguishable; the same crop positions for real and restored).\n\n"
        + "\n\n".join(parts)
    )
    if parts:
        from benchmarks._results import write_section

        write_section(text, "<!-- perceptual -->", "<!-- /perceptual -->")


if __name__ == "__main__":
    main()
