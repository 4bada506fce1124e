"""Reports of an evaluation: per-model means, a markdown table, a bar chart and a sample sheet,
written as report.md, scores.json, psnr.png and samples.png."""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from tessera.evaluate.cases import Case
    from tessera.evaluate.runner import EvalConfig, Score


REPORT_FILES = ("report.md", "scores.json", "psnr.png", "samples.png", "redaction.json")
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


def refuse_existing_report(folder: Path, overwrite: bool) -> None:
    """FileExistsError when ``folder`` already holds a report's file, unless ``overwrite``."""
    there = [name for name in REPORT_FILES if os.path.lexists(folder / name)]
    if there and not overwrite:
        raise FileExistsError(f"{folder} already holds a report ({', '.join(there)}); use --overwrite to replace it")


def write_report(
    cfg: EvalConfig,
    cases: Sequence[Case],
    summary: dict[str, dict[str, float]],
    scores: Sequence[Score],
    outputs: dict[str, list[np.ndarray]],
    redaction: dict | None = None,
) -> None:
    """report.md, scores.json, psnr.png and samples.png into ``cfg.output``; with ``redaction`` (what
    :func:`tessera.evaluate.redaction.score_redactions` returns) its section in report.md and redaction.json."""
    from tessera.evaluate.redaction import redaction_markdown, summarize_redactions
    from tessera.io.image import write_text

    report = Path(cfg.output)
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
        "cases (50 % = indistinguishable).\n"
        + ("\n" + redaction_markdown(redaction) if redaction is not None else ""),
        overwrite=ow,
    )
    if redaction is not None:
        doc = {"rows": summarize_redactions(redaction["entries"]), **redaction}
        write_text(report / "redaction.json", json.dumps(_finite_or_none(doc), indent=1, allow_nan=False), overwrite=ow)
    write_text(
        report / "scores.json",
        json.dumps([_finite_or_none(asdict(s)) for s in scores], indent=1, default=float, allow_nan=False),
        overwrite=ow,
    )
    bar_chart(summary, report / "psnr.png", overwrite=ow)
    sample_sheet(cases, outputs, report / "samples.png", overwrite=ow)
