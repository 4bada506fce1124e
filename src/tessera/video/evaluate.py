"""Scoring restoration over time on clean videos (``tessera eval --data FOLDER_OF_VIDEOS``).

Each video's first ``frames`` frames get a seeded mosaic box fixed in the picture (the truth is
known); every model restores them twice through the video pipeline with the box and its grid given:
frame by frame (no temporal smoothing, no multi-frame recovery) and as ``tessera restore`` does by
default (temporal smoothing, multi-frame recovery where the content moves). Scores: PSNR inside the
box (mean over frames), flicker (:func:`tessera.video.temporal.flicker`, the temporal-difference
error in the box against the truth, grey levels; lower is steadier) and the share of restored pixels
marked recovered. Writes ``video.md`` and ``video.json`` into the report folder.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

VIDEO_REPORT_FILES = ("video.md", "video.json")


def fixed_box_case(frames: Sequence[np.ndarray], seed: int) -> tuple[list[np.ndarray], np.ndarray, "object"]:
    """(mosaicked frames, mask, grid): a box of about a quarter of the frame's width and height at a
    seeded place, mean cells of max(6, min(W, H) // 20) px fixed in the picture."""
    from tessera.mosaic.pixelate import pixelate
    from tessera.mosaic.region import Grid

    H, W = frames[0].shape[:2]
    rng = np.random.default_rng(seed)
    cell = max(6, min(W, H) // 20)
    w, h = max(2 * cell, (W // 4) // cell * cell), max(2 * cell, (H // 4) // cell * cell)
    x = int(rng.integers(0, max(W - w, 0) + 1)) // cell * cell
    y = int(rng.integers(0, max(H - h, 0) + 1)) // cell * cell
    mask = np.zeros((H, W), bool)
    mask[y : y + h, x : x + w] = True
    return [pixelate(f, mask, cell=cell)[0] for f in frames], mask, Grid(cell, cell, 0, 0, "mean")


def score_video(path: str | os.PathLike, model: str, *, frames: int = 24, seed: int = 0) -> list[dict]:
    """One row per mode (frame-by-frame, default) for ``model`` on the video at ``path``."""
    from tessera.evaluate import psnr
    from tessera.io.video import Frame, read_frames
    from tessera.video.pipeline import VideoConfig, restore_frames
    from tessera.video.temporal import TemporalConfig, flicker

    truth = [f.image for f, _ in zip(read_frames(path), range(frames))]
    mos, mask, grid = fixed_box_case(truth, seed)
    rows = []
    modes = {"frame-by-frame": VideoConfig(temporal=TemporalConfig(mode="off"), multiframe="off"), "default": VideoConfig()}
    for mode, cfg in modes.items():
        stream = (Frame(i, i, i / 25, m) for i, m in enumerate(mos))
        res = list(restore_frames(stream, mask=mask, grid=grid, model=model, kind="mosaic", config=cfg))
        outs = [r.image for r in res]
        rec = sum(int(r.recovered.sum()) for r in res if r.recovered is not None)
        rows.append({
            "video": Path(path).name, "model": model, "mode": mode, "frames": len(outs),
            "psnr": float(np.mean([psnr(o, t, mask) for o, t in zip(outs, truth)])),
            "flicker": flicker(outs, truth, [mask] * len(outs)),
            "recovered": rec / max(int(mask.sum()) * len(outs), 1),
            "mosaic_psnr": float(np.mean([psnr(m, t, mask) for m, t in zip(mos, truth)])),
            "mosaic_flicker": flicker(mos, truth, [mask] * len(mos)),
        })
    return rows


def markdown(rows: list[dict]) -> str:
    lines = ["| video | model | mode | frames | PSNR in box (dB) | flicker | recovered % | mosaic PSNR | mosaic flicker |",
             "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['video']} | {r['model']} | {r['mode']} | {r['frames']} | {r['psnr']:.2f} | {r['flicker']:.2f} | "
                     f"{100 * r['recovered']:.0f} | {r['mosaic_psnr']:.2f} | {r['mosaic_flicker']:.2f} |")
    return "\n".join(lines)


def eval_videos(videos: Sequence[Path], models: Sequence[str], output: Path, *, frames: int = 24, seed: int = 0,
                overwrite: bool = False, progress=None) -> list[dict]:
    """Score every model on every video (see the module docstring); writes ``output/video.md`` and
    ``output/video.json`` (existing ones are refused unless ``overwrite``). Returns the rows."""
    output = Path(output)
    there = [n for n in VIDEO_REPORT_FILES if (output / n).exists()]
    if there and not overwrite:
        raise ValueError(f"{output} already holds a video report ({', '.join(there)}); use --overwrite to replace it")
    rows: list[dict] = []
    for i, v in enumerate(videos):
        for m in models:
            rows += score_video(v, m, frames=frames, seed=seed + i)
            if progress is not None:
                progress(f"{v.name} {m}")
    output.mkdir(parents=True, exist_ok=True)
    (output / "video.json").write_text(json.dumps(rows, indent=1) + "\n")
    (output / "video.md").write_text("# Restoration over time\n\nFlicker: mean |(R_t - R_t-1) - (T_t - T_t-1)| in the box "
                                     "(grey levels, lower is steadier).\n\n" + markdown(rows) + "\n")
    return rows
