"""`tessera detect`."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from tessera.cli.app import app, console
from tessera.cli.common import Job, check_number


def mask_path(json_path: Path) -> Path:
    """NAME.json -> NAME.mask.png, its companion."""
    return json_path.with_name(json_path.name[: -len(".json")] + ".mask.png")


def detect_file(job: Job, cfg, model) -> None:
    """One input -> OUT/NAME.mask.png (255 = mosaic) then OUT/NAME.json (the regions), as one group."""
    import json

    import numpy as np

    from tessera.io.image import PAIR_KEY, image_writer, read_image, write_files
    from tessera.detect.mosaics import detect as detect_regions

    rgb, _ = read_image(job.source)
    regions = detect_regions(rgb, config=cfg, model=model)
    mask = np.zeros(rgb.shape[:2], bool)
    for r in regions:
        r.paint(mask)
    doc = {"image": job.source.name, "size": [int(rgb.shape[1]), int(rgb.shape[0])], "regions": [r.to_json() for r in regions]}
    data = (json.dumps(doc, indent=1, allow_nan=False) + "\n").encode("utf-8")
    (mask_file,) = job.companions
    write_files(
        [(mask_file, image_writer(mask_file, mask, text={PAIR_KEY: job.target.name})), (job.target, lambda fh: fh.write(data))],
        overwrite=job.overwrite_flags(),
    )


@app.command()
def detect(
    inputs: list[Path] = typer.Argument(..., help="Image files or folders (walked recursively).", show_default=False),
    output: Path = typer.Option(..., "--output", "-o", help="Output folder: NAME.mask.png and NAME.json per input."),
    min_area: int = typer.Option(64, "--min-area", min=1, help="Smallest region reported, in pixels."),
    sensitivity: float = typer.Option(0.5, "--sensitivity", min=0.0, max=1.0, help="0..1; higher finds fainter regions (and more false ones)."),
    weights: Optional[Path] = typer.Option(None, "--weights", help="Detector .safetensors (default: the shipped detector)."),
    no_net: bool = typer.Option(False, "--no-net", help="Grid analysis only (no segmentation net)."),
    blur: bool = typer.Option(False, "--blur", help="Also report blurred regions (no lattice) at ordinary confidence."),
    backend: str = typer.Option("auto", "--backend", help="Run the net with auto (ONNX Runtime when installed, else PyTorch), torch or onnx."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace existing output files."),
    start: Optional[float] = typer.Option(None, "--start", help="Videos: first second to process."),
    end: Optional[float] = typer.Option(None, "--end", help="Videos: second to stop at."),
) -> None:
    """Find mosaicked regions by themselves: a mask PNG and a JSON (box, cell, phase, sampling, score) per image."""
    import warnings

    from tessera.io.image import IMAGE_EXTS
    from tessera.detect.mosaics import DetectConfig, load_detector

    if output.suffix.lower() in IMAGE_EXTS or (output.exists() and not output.is_dir()):
        raise typer.BadParameter(f"{output} must be a folder (it gets NAME.mask.png and NAME.json)", param_hint="--output")
    if weights is not None and not weights.is_file():
        raise typer.BadParameter(f"weights {weights} is not a file", param_hint="--weights")
    if backend not in ("auto", "torch", "onnx"):
        raise typer.BadParameter("must be auto, torch or onnx", param_hint="--backend")
    cfg = DetectConfig(
        min_area=min_area, sensitivity=sensitivity, weights="" if no_net else (str(weights) if weights else None), blur=blur,
        backend=backend,
    )
    check_number(sensitivity, "--sensitivity", 0.0, 1.0)
    from tessera.cli import videos

    videos.check_times(start, end)
    jobs, video_jobs = videos.plan_media(  # videos: NAME.mask.mp4 + NAME.json
        inputs, output, folder_only=True, suffix=".json", companions=lambda t, _full: (mask_path(t),), reads=[weights] if weights else []
    )
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model = load_detector(cfg.weights, cfg.backend)
    for w in caught:
        console.print(f"[yellow]warning:[/] {w.message}", highlight=False, soft_wrap=True)
    if model is None:  # warned once above; grid analysis only for every file
        cfg = DetectConfig(min_area=min_area, sensitivity=sensitivity, weights="", blur=blur)
    raise typer.Exit(videos.run_media(
        jobs, video_jobs, lambda job: detect_file(job, cfg, model), lambda job, p: videos.detect_video_job(job, cfg, start, end, overwrite, p), "detect", overwrite
    ))
