"""Evaluation: metrics (pure functions) and the benchmark runner behind `tessera eval`.

Cases are made from a folder of clean photos with the detection benchmark's seeded generators
(:mod:`tessera.mosaic.synth`); each model restores every case given the true mask and grid (and,
with ``auto``, the mask it detects itself), and we score inside the hidden region only.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from tessera.mosaic.region import Grid

# ----------------------------------------------------------------------------- metrics


def psnr(pred: np.ndarray, target: np.ndarray, mask: np.ndarray | None = None) -> float:
    """PSNR in dB over the pixels of ``mask`` (all pixels when None), 8-bit peak. inf when identical."""
    a, b = pred.astype(np.float64), target.astype(np.float64)
    if mask is not None:
        a, b = a[mask], b[mask]
    if a.size == 0:
        return float("nan")
    mse = float(((a - b) ** 2).mean())
    return float("inf") if mse == 0 else 10.0 * np.log10(255.0**2 / mse)


def ssim(pred: np.ndarray, target: np.ndarray, mask: np.ndarray | None = None, window: int = 11) -> float:
    """Mean SSIM (Gaussian window 11, sigma 1.5, per channel; kornia) over the pixels of ``mask``."""
    import torch
    from kornia.metrics import ssim as kssim

    def t(x: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(x.astype(np.float32) / 255.0).permute(2, 0, 1)[None]

    if min(pred.shape[:2]) < window:
        window = max(3, min(pred.shape[:2]) // 2 * 2 - 1)
    smap = kssim(t(pred), t(target), window_size=window, max_val=1.0)[0].mean(0).numpy()
    return float(smap[mask].mean() if mask is not None else smap.mean())


def interior(mask: np.ndarray, margin: int = 16) -> np.ndarray:
    """The pixels of ``mask`` farther than ``margin`` px (Euclidean) from every pixel outside it:
    where a restorer has no visible context nearby. Pixels at the image border count as inside."""
    import cv2

    padded = np.pad(mask, 1, constant_values=True).astype(np.uint8)
    dist = cv2.distanceTransform(padded, cv2.DIST_L2, 5)[1:-1, 1:-1]
    return mask & (dist > margin)


def blockiness(image: np.ndarray, mask: np.ndarray, grid: Grid) -> float:
    """How visible the mosaic lattice still is inside ``mask``: the mean absolute step across the
    lattice's cell edges divided by the mean step between other neighbouring pixels (each + 0.5 grey
    levels). About 1.0 for a natural image; far above 1 for a mosaic."""
    img = image.astype(np.float64).mean(axis=2)
    ratios = []
    for axis, cell, phase in ((1, grid.cell_w, grid.phase_x), (0, grid.cell_h, grid.phase_y)):
        d = np.abs(np.diff(img, axis=axis))
        both = mask[:, 1:] & mask[:, :-1] if axis == 1 else mask[1:] & mask[:-1]
        idx = np.arange(1, img.shape[axis])  # step between idx-1 and idx
        on = ((idx - phase) % cell) == 0
        on = on[None, :] if axis == 1 else on[:, None]
        sel_on, sel_off = both & on, both & ~on
        if sel_on.sum() == 0 or sel_off.sum() == 0:
            continue
        ratios.append((d[sel_on].mean() + 0.5) / (d[sel_off].mean() + 0.5))
    return float(np.mean(ratios)) if ratios else 1.0


# ----------------------------------------------------------------------------- cases


@dataclass
class Case:
    name: str
    clean: np.ndarray
    degraded: np.ndarray
    mask: np.ndarray
    grid: Grid | None
    kind: str
    nominal: Grid | None = None  # zoo cases: a lattice of about the right cell size when there is no exact grid


RESTORE_KINDS = ("box", "ellipse", "polygon", "rect", "border")


def load_folder(folder: Path, max_side: int = 512) -> list[tuple[str, np.ndarray]]:
    """Every readable image of a folder, centre-cropped to at most ``max_side`` px a side."""
    from tessera.io.image import ImageReadError, collect_inputs, read_image

    images = []
    for src, rel in collect_inputs([Path(folder)]):
        try:
            rgb, _ = read_image(src)
        except ImageReadError:
            continue
        H, W = rgb.shape[:2]
        y0, x0 = max((H - max_side) // 2, 0), max((W - max_side) // 2, 0)
        images.append((str(rel), np.ascontiguousarray(rgb[y0 : y0 + max_side, x0 : x0 + max_side])))
    return images


def make_cases(
    images: Sequence[tuple[str, np.ndarray]],
    n: int,
    seed: int = 0,
    kinds: Sequence[str] = RESTORE_KINDS,
    jpeg_quality: int | None = None,
) -> list[Case]:
    """``n`` seeded cases, cycling through the images and kinds. Cases whose mask is empty are redrawn."""
    from tessera.mosaic.synth import make_case

    if not images:
        raise ValueError("no readable images to make evaluation cases from")
    rng = np.random.default_rng(seed)
    cases = []
    i = 0
    while len(cases) < n and i < 20 * n:
        name, img = images[i % len(images)]
        kind = kinds[(i // len(images) + i) % len(kinds)]
        i += 1
        degraded, mask, grid = make_case(img, rng, kind, jpeg_quality=jpeg_quality)
        if mask.sum() < 64:
            continue
        cases.append(Case(f"{name}:{kind}", img, degraded, mask, grid, kind))
    return cases


def make_zoo_cases(
    images: Sequence[tuple[str, np.ndarray]], per: int, seed: int = 0, generators: Sequence[str] = (), formats: Sequence[str] = ("png",)
) -> list[Case]:
    """``per`` seeded cases for every generator x format of the zoo (:func:`tessera.mosaic.synth.zoo_case`),
    cycling through the images; named ``IMAGE:GENERATOR:FORMAT``. Each (generator, format) has its own
    seed stream, so adding one leaves the others' cases unchanged."""
    from tessera.mosaic.synth import ZOO, ZOO_FORMATS, zoo_case

    if not images:
        raise ValueError("no readable images to make evaluation cases from")
    bad = [g for g in generators if g not in ZOO] + [f for f in formats if f not in ZOO_FORMATS]
    if bad:
        raise ValueError(f"unknown zoo generator or format: {', '.join(bad)}")
    cases = []
    for gi, gen in enumerate(generators):
        for fi, fmt in enumerate(formats):
            rng = np.random.default_rng([seed, list(ZOO).index(gen), ZOO_FORMATS.index(fmt)])
            got, i = 0, gi * 7 + fi * 3  # start at different images per generator and format
            while got < per and i < gi * 7 + fi * 3 + 20 * per:
                name, img = images[i % len(images)]
                i += 1
                c = zoo_case(img, rng, gen, fmt)
                if c.mask.sum() < 64:
                    continue
                cases.append(Case(f"{name}:{gen}:{fmt}", c.clean, c.degraded, c.mask, c.grid, gen, c.nominal))
                got += 1
    return cases


# ----------------------------------------------------------------------------- runner


@dataclass
class Score:
    model: str
    case: str
    psnr: float
    ssim: float
    blockiness: float | None
    residual: float | None
    seconds: float
    auto: bool = False
    extra: dict = field(default_factory=dict)
    detail: float | None = None  # mean gradient magnitude in the region, restored / original (1.0 = as detailed as the photo)
    niqe: float | None = None  # NIQE of the region's box (lower = more natural); None unless asked for
    niqe_original: float | None = None  # the same for the original photo (the target)


def score_case(
    case: Case, model: str, *, auto: bool = False, restore: Callable | None = None, restorer=None, with_niqe: bool = False
) -> tuple[Score, np.ndarray]:
    """Restore one case with ``model`` (given the true mask and grid, or detecting them when
    ``auto``) and score the result inside the true mask (NIQE too when ``with_niqe``)."""
    from tessera.perceptual import detail_ratio, niqe
    from tessera.restore.consistency import remosaic_residual
    from tessera.restore.pipeline import restore_image

    from tessera.restore.restorer import from_spec

    restore = restore or restore_image
    restorer = restorer or from_spec(model)  # model: a name, a path, or MODEL+patch
    t0 = time.perf_counter()
    if auto:
        res = restore(case.degraded, None, restorer=restorer)
    else:
        known = case.grid is not None or case.nominal is not None  # zoo cases are mosaics, grid or not
        res = restore(case.degraded, case.mask, restorer=restorer, grid=case.grid, kind="mosaic" if known else "auto")
    dt = time.perf_counter() - t0
    out = res.image
    g = case.grid or case.nominal
    inner = interior(case.mask)
    extra = {
        "psnr_interior": psnr(out, case.clean, inner),
        "psnr_edge": psnr(out, case.clean, case.mask & ~inner),
        "cell": max(g.cell_h, g.cell_w) if g is not None else None,
        "sampling": g.sampling if g is not None else None,
        "area": int(case.mask.sum()),
    }
    return (
        Score(
            model=model,
            case=case.name,
            psnr=psnr(out, case.clean, case.mask),
            ssim=ssim(out, case.clean, case.mask),
            blockiness=blockiness(out, case.mask, g) if g is not None else None,
            residual=remosaic_residual(out, case.degraded, case.mask, g) if case.grid is not None and g.sampling == "mean" else None,
            seconds=dt,
            auto=auto,
            extra=extra,
            detail=detail_ratio(out, case.clean, case.mask),
            niqe=niqe(out, case.mask) if with_niqe else None,
            niqe_original=niqe(case.clean, case.mask) if with_niqe else None,
        ),
        out,
    )


PSNR_CAP = 100.0  # dB a perfectly restored case counts as in means


def _finite_or_none(value):
    """JSON has no NaN or Infinity: non-finite floats (nested in dicts and lists) become None."""
    if isinstance(value, dict):
        return {k: _finite_or_none(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite_or_none(v) for v in value]
    if isinstance(value, (float, np.floating)):
        return float(value) if np.isfinite(value) else None
    return value


def summarize(scores: Sequence[Score], critic: dict[str, float] | None = None) -> dict[str, dict[str, float]]:
    """Per (model, auto) the mean of every metric; ``critic``: two-sample critic accuracy per model."""
    out: dict[str, dict[str, float]] = {}
    keys = sorted({(s.model, s.auto) for s in scores}, key=lambda k: (k[1], k[0]))
    for model, auto in keys:
        rows = [s for s in scores if s.model == model and s.auto == auto]
        label = model + (" (auto mask)" if auto else "")

        def mean(vals):  # None/nan (no such metric for a case) are skipped
            vals = [v for v in vals if v is not None and not np.isnan(v)]
            return float(np.mean(vals)) if vals else float("nan")

        out[label] = {
            "cases": len(rows),
            "psnr": mean(min(s.psnr, PSNR_CAP) for s in rows),  # a perfect case (inf) counts as PSNR_CAP
            "ssim": mean(s.ssim for s in rows),
            "blockiness": mean(s.blockiness for s in rows),
            "residual": mean(s.residual for s in rows),
            "ms": 1000.0 * mean(s.seconds for s in rows),
            "detail": mean(s.detail for s in rows),
        }
        if any(s.niqe is not None for s in rows):
            out[label]["niqe"] = mean(s.niqe for s in rows)
            out[label]["niqe_original"] = mean(s.niqe_original for s in rows)
        if critic and not auto and model in critic:
            out[label]["critic"] = critic[model]
    return out


def markdown_table(summary: dict[str, dict[str, float]]) -> str:
    """One row per model; the NIQE and critic columns appear when some model has them."""
    has_niqe = any("niqe" in m for m in summary.values())
    has_critic = any("critic" in m for m in summary.values())
    head = "| model | cases | PSNR in region (dB) | SSIM in region | blockiness | re-mosaic residual | detail ratio |"
    head += " NIQE (original) |" if has_niqe else ""
    head += " critic accuracy |" if has_critic else ""
    head += " ms / image |"
    lines = [head, "|" + "---|" * head.count(" |")]
    for label, m in summary.items():
        row = (
            f"| {label} | {m['cases']} | {m['psnr']:.2f} | {m['ssim']:.4f} | {m['blockiness']:.3f} | "
            f"{m['residual']:.3f} | {m.get('detail', float('nan')):.3f} |"
        )
        if has_niqe:
            row += f" {m['niqe']:.2f} ({m['niqe_original']:.2f}) |" if "niqe" in m else " |"
        if has_critic:
            row += f" {100 * m['critic']:.1f} % |" if "critic" in m else " |"
        lines.append(row + f" {m['ms']:.0f} |")
    return "\n".join(lines)


def _save_png(img, path: Path, overwrite: bool) -> None:
    from tessera.io.image import write_files

    write_files([(path, lambda fh: img.save(fh, format="PNG"))], overwrite=overwrite)


def bar_chart(summary: dict[str, dict[str, float]], path: Path, metric: str = "psnr", overwrite: bool = True) -> None:
    """A small PNG bar chart of one metric per model (drawn with Pillow)."""
    from PIL import Image, ImageDraw

    labels = list(summary)
    vals = [summary[k][metric] for k in labels]
    finite = [v for v in vals if np.isfinite(v)] or [0.0]
    lo, hi = min(0.0, min(finite)), max(finite) * 1.1 + 1e-9
    W, bar, gap, left = 640, 26, 10, 190
    H = 40 + len(labels) * (bar + gap)
    img = Image.new("RGB", (W, H), "white")
    d = ImageDraw.Draw(img)
    d.text((10, 10), f"{metric} per model (higher is better)" if metric in ("psnr", "ssim") else metric, fill="black")
    for i, (label, v) in enumerate(zip(labels, vals)):
        y = 35 + i * (bar + gap)
        d.text((10, y + 7), label[:28], fill="black")
        if np.isfinite(v):
            x1 = left + int((W - left - 70) * (v - lo) / (hi - lo))
            d.rectangle([left, y, x1, y + bar], fill=(70, 110, 180))
            d.text((x1 + 6, y + 7), f"{v:.2f}", fill="black")
    _save_png(img, Path(path), overwrite)


def sample_sheet(
    cases: Sequence[Case], outputs: dict[str, list[np.ndarray]], path: Path, rows: int = 4, size: int = 192, overwrite: bool = True
) -> None:
    """Side-by-side PNG: input | each model's output | target, for the first ``rows`` cases,
    each cut around the hidden region."""
    from PIL import Image, ImageDraw

    models = list(outputs)
    cols = ["input", *models, "target"]
    sheet = Image.new("RGB", (size * len(cols), 18 + size * min(rows, len(cases))), "white")
    d = ImageDraw.Draw(sheet)
    for j, c in enumerate(cols):
        d.text((j * size + 4, 3), c[:24], fill="black")
    for i, case in enumerate(cases[:rows]):
        ys, xs = np.nonzero(case.mask)
        cy, cx = (ys.min() + ys.max()) // 2, (xs.min() + xs.max()) // 2
        half = max(ys.max() - ys.min(), xs.max() - xs.min()) // 2 + 16
        H, W = case.mask.shape
        y0, y1, x0, x1 = max(cy - half, 0), min(cy + half, H), max(cx - half, 0), min(cx + half, W)
        tiles = [case.degraded, *(outputs[m][i] for m in models), case.clean]
        for j, t in enumerate(tiles):
            im = Image.fromarray(t[y0:y1, x0:x1]).resize((size, size), Image.Resampling.NEAREST if j == 0 else Image.Resampling.BICUBIC)
            sheet.paste(im, (j * size, 18 + i * size))
    _save_png(sheet, Path(path), overwrite)


@dataclass(frozen=True)
class EvalConfig:
    data: Path
    models: tuple[str, ...] = ("smooth", "telea", "ns", "default")
    output: Path = Path("eval")
    cases: int = 40
    seed: int = 0
    kinds: tuple[str, ...] = RESTORE_KINDS
    jpeg: int | None = None
    auto: bool = False
    max_side: int = 512
    zoo: tuple[str, ...] = ()  # zoo generators: then ``cases`` per generator x format instead of ``kinds``
    formats: tuple[str, ...] = ("png",)
    niqe: bool = False  # NIQE of each region (slower: about 6 ms per 32-px patch)
    critic_data: Path | None = None  # photos (not the eval folder) to make the two-sample critic's training cases from
    critic_cases: int = 40
    critic_steps: int = 300
    overwrite: bool = False  # replace an existing report's files

    def __post_init__(self) -> None:
        if self.cases < 1 or self.critic_cases < 1 or self.critic_steps < 1:
            raise ValueError("cases, critic_cases and critic_steps must be >= 1")


REPORT_FILES = ("report.md", "scores.json", "psnr.png", "samples.png")


def critic_accuracy(model: str, train_cases: Sequence[Case], val_cases: Sequence[Case], val_outputs: Sequence[np.ndarray], *, steps: int = 300, seed: int = 0) -> float:
    """The two-sample test: a fresh critic learns to tell real crops from ``model``'s restorations
    of ``train_cases``; its accuracy on the crops of the val cases and their restorations
    ``val_outputs`` (0.5 = indistinguishable)."""
    from tessera.perceptual import pair_crops, two_sample_critic
    from tessera.restore.pipeline import restore_image
    from tessera.restore.restorer import from_spec

    restorer = from_spec(model)
    train_out = [
        restore_image(c.degraded, c.mask, restorer=restorer, grid=c.grid, kind="mosaic" if c.grid else "auto").image for c in train_cases
    ]
    tr_real, tr_fake = pair_crops(train_out, [c.clean for c in train_cases], [c.mask for c in train_cases], seed=seed + 1)
    va_real, va_fake = pair_crops(val_outputs, [c.clean for c in val_cases], [c.mask for c in val_cases], seed=seed)
    return two_sample_critic(tr_real, tr_fake, va_real, va_fake, steps=steps, seed=seed)


def run_eval(cfg: EvalConfig, progress: Callable[[str], None] | None = None) -> tuple[dict, list[Score]]:
    """Make the cases, restore them with every model, and write report.md, scores.json, psnr.png and
    samples.png into ``cfg.output`` (refused before any work when a report is there, unless
    ``cfg.overwrite``). Returns (summary, scores)."""
    from tessera.io.image import write_text
    from tessera.restore.restorer import from_spec

    report = Path(cfg.output)
    there = [name for name in REPORT_FILES if os.path.lexists(report / name)]
    if there and not cfg.overwrite:  # refuse before the work, not after it
        raise FileExistsError(f"{report} already holds a report ({', '.join(there)}); use --overwrite to replace it")
    images = load_folder(cfg.data, cfg.max_side)
    if cfg.zoo:
        cases = make_zoo_cases(images, cfg.cases, cfg.seed, cfg.zoo, cfg.formats)
    else:
        cases = make_cases(images, cfg.cases, cfg.seed, cfg.kinds, cfg.jpeg)
    critic_cases = None
    if cfg.critic_data is not None:
        critic_cases = make_cases(load_folder(cfg.critic_data, cfg.max_side), cfg.critic_cases, cfg.seed + 1, cfg.kinds, cfg.jpeg)
    critic: dict[str, float] = {}
    scores: list[Score] = []
    outputs: dict[str, list[np.ndarray]] = {}
    restorers = {model: from_spec(model) for model in cfg.models}  # load weights before timing; fail early
    for model in cfg.models:
        outs = []
        for auto in (False, True) if cfg.auto else (False,):
            for case in cases:
                s, out = score_case(case, model, auto=auto, restorer=restorers[model], with_niqe=cfg.niqe)
                scores.append(s)
                if not auto:
                    outs.append(out)
                if progress:
                    progress(f"{model}{' auto' if auto else ''} {case.name}")
        outputs[model] = outs
        if critic_cases is not None:
            critic[model] = critic_accuracy(model, critic_cases, cases, outs, steps=cfg.critic_steps, seed=cfg.seed)
            if progress:
                progress(f"{model} critic")
    summary = summarize(scores, critic)
    ow = cfg.overwrite
    write_text(
        report / "report.md",
        f"# Tessera evaluation\n\ndata: `{cfg.data}`, {len(cases)} seeded cases (seed {cfg.seed}, "
        + (f"zoo {', '.join(cfg.zoo)} x {', '.join(cfg.formats)}" if cfg.zoo else f"kinds {', '.join(cfg.kinds)}")
        + f"{', JPEG q' + str(cfg.jpeg) if cfg.jpeg else ''}); metrics inside the hidden region.\n\n"
        + markdown_table(summary)
        + "\n\nblockiness: 1.0 = no lattice edges left. re-mosaic residual: grey levels, mean-sampled cases. detail ratio: "
        "mean gradient magnitude in the region, restored / original (1.0 = as detailed as the photo). NIQE: lower = more "
        "natural; the original's in brackets. critic accuracy: a fresh critic trained on restorations of other photos' "
        "cases (50 % = indistinguishable).\n",
        overwrite=ow,
    )
    write_text(
        report / "scores.json",
        json.dumps([_finite_or_none(asdict(s)) for s in scores], indent=1, default=float, allow_nan=False),
        overwrite=ow,
    )
    bar_chart(summary, report / "psnr.png", overwrite=ow)
    sample_sheet(cases, outputs, report / "samples.png", overwrite=ow)
    return summary, scores
