"""The `tessera` command line: a thin layer that parses flags into a frozen config and
calls the library. Exit codes: 0 success, 2 usage error, 1 some files failed.

Restoration is imagination, not recovery: synthesized pixels are a plausible guess.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console

app = typer.Typer(
    name="tessera",
    help=(
        "Find, restore and add mosaics (pixelation), blurs and holes in images.\n\n"
        "Restoration is imagination, not recovery: a restored face is not the person who was hidden."
    ),
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
console = Console(stderr=True)


@app.callback()
def _root() -> None:
    """Find, restore and add mosaics (pixelation), blurs and holes in images.

    Restoration is imagination, not recovery: a restored face is not the person who was hidden.
    """

DISCLAIMER = "Restored pixels are imagined, not recovered: they are not the hidden original."


# ============================================================ shared helpers


def parse_ints(text: str, n: int, what: str, sep: str = ",") -> tuple[int, ...]:
    """'1,2,3,4' -> (1, 2, 3, 4), or a usage error naming the flag."""
    parts = [p.strip() for p in text.split(sep)]
    try:
        vals = tuple(int(p) for p in parts)
    except ValueError:
        raise typer.BadParameter(f"{what} must be {n} integers separated by '{sep}', got {text!r}") from None
    if len(vals) != n:
        raise typer.BadParameter(f"{what} must be {n} integers separated by '{sep}', got {text!r}")
    return vals


def parse_cell(text: str) -> tuple[int, int]:
    """'12' -> (12, 12); '12x18' -> (12, 18) as (height, width)."""
    t = text.lower().strip()
    try:
        if "x" in t:
            h, w = (int(v) for v in t.split("x"))
        else:
            h = w = int(t)
    except ValueError:
        raise typer.BadParameter(f"cell must be N or HxW (e.g. 12 or 12x18), got {text!r}") from None
    if h < 1 or w < 1:
        raise typer.BadParameter(f"cell must be at least 1 pixel, got {text!r}")
    return h, w


@dataclass(frozen=True)
class Job:
    source: Path
    target: Path
    rel: Path | None = None  # the input's path relative to the folder it was found in (mirrored in outputs)


def plan_outputs(inputs: Sequence[Path], output: Path, suffix: str | None = None) -> list[Job]:
    """Pair every input image with its output path. A single input file and an output with an
    image extension write to that file; otherwise ``output`` is a folder that mirrors the inputs'
    names (folders are walked). ``suffix`` replaces the extension when given (e.g. '.png')."""
    from tessera.imaging import IMAGE_EXTS, WRITE_FORMATS, collect_inputs

    for p in inputs:
        if not p.exists():
            raise typer.BadParameter(f"input {p} does not exist")
    try:
        pairs = collect_inputs(list(inputs))
    except (ValueError, OSError) as exc:
        raise typer.BadParameter(_one_line(exc)) from None
    if not pairs:
        raise typer.BadParameter("no images found in the given inputs (looked for " + ", ".join(sorted(IMAGE_EXTS)) + ")")
    single_file = len(inputs) == 1 and inputs[0].is_file()
    if single_file and output.suffix.lower() in IMAGE_EXTS:
        if output.suffix.lower() not in WRITE_FORMATS:
            raise typer.BadParameter(
                f"cannot write {output.suffix} files; use one of {', '.join(sorted(WRITE_FORMATS))}", param_hint="--output"
            )
        return [Job(pairs[0][0], output, pairs[0][1])]
    if output.exists() and not output.is_dir():
        raise typer.BadParameter(f"output {output} is a file, but several images need an output folder")
    jobs = []
    for src, rel in pairs:
        target = output / rel
        if suffix:
            target = target.with_suffix(suffix)
        elif target.suffix.lower() not in WRITE_FORMATS:  # .gif, .ppm, ...: read, but written as PNG
            target = target.with_suffix(".png")
        jobs.append(Job(src, target, rel))
    return jobs


def run_jobs(jobs: Sequence[Job], work: Callable[[Job], None], verb: str) -> int:
    """Run ``work`` on each job with a progress bar; one line per failure and a summary.
    Returns the exit code: 0 if all succeeded, 1 if some failed."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    failures: list[tuple[Path, str]] = []
    with Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        TextColumn("{task.fields[name]}"),
        console=console,
        transient=True,
        disable=len(jobs) < 2,
    ) as progress:
        task = progress.add_task(verb, total=len(jobs), name="")
        for job in jobs:
            progress.update(task, name=job.source.name)
            try:
                work(job)
            except KeyboardInterrupt:
                raise
            except Exception as exc:  # every per-file problem becomes one line, never a traceback
                failures.append((job.source, _one_line(exc)))
            progress.advance(task)
    done = len(jobs) - len(failures)
    if failures:
        for path, why in failures:
            console.print(f"[red]failed[/] {path}: {why}", highlight=False)
        console.print(
            f"{verb}: {done} of {len(jobs)} done, {len(failures)} failed ("
            + "; ".join(f"{p.name}: {w}" for p, w in failures[:3])
            + (" ..." if len(failures) > 3 else "")
            + ")",
            highlight=False,
        )
        return 1
    console.print(f"{verb}: {done} of {len(jobs)} done", highlight=False)
    return 0


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    msg = text[0] if text else type(exc).__name__
    return msg if msg else type(exc).__name__


def check_not_input(job: Job) -> None:
    from tessera.imaging import same_file

    if job.target.exists() and same_file(job.target, job.source):
        raise ValueError("output would overwrite the input file; choose another output path")


# ============================================================ pixelate


@dataclass(frozen=True)
class PixelateConfig:
    box: tuple[tuple[int, int, int, int], ...] = ()
    ellipse: tuple[tuple[int, int, int, int], ...] = ()
    mask: Path | None = None
    cell: tuple[int, int] = (12, 12)
    phase: tuple[int, int] = (0, 0)
    sampling: str = "mean"
    feather: int = 0
    blur: float | None = None
    overwrite: bool = False
    quality: int = 95
    save_mask: bool = False
    faces: bool = False


def pixelate_file(job: Job, cfg: PixelateConfig) -> None:
    from tessera.imaging import read_image, read_mask, write_image
    from tessera.mosaic.pixelate import pixelate

    check_not_input(job)
    rgb, info = read_image(job.source)
    mask = read_mask(cfg.mask, shape=rgb.shape[:2]) if cfg.mask else None
    ellipses = list(cfg.ellipse)
    if cfg.faces:
        from tessera.mosaic.faces import find_faces

        faces = find_faces(rgb)
        if not faces and mask is None and not cfg.box and not cfg.ellipse:
            raise ValueError("no face found, so nothing was pixelated (mark the region with --box, --ellipse or --mask)")
        ellipses += faces
    out, changed = pixelate(
        rgb,
        mask,
        boxes=cfg.box,
        ellipses=ellipses,
        cell=cfg.cell,
        phase=cfg.phase,
        sampling=cfg.sampling,
        feather=cfg.feather,
        blur=cfg.blur,
    )
    write_image(job.target, out, alpha=info.alpha, overwrite=cfg.overwrite, quality=cfg.quality, icc_profile=info.icc_profile)
    if cfg.save_mask:
        write_image(job.target.with_name(job.target.stem + ".mask.png"), changed, overwrite=cfg.overwrite)


@app.command()
def pixelate(
    inputs: list[Path] = typer.Argument(..., help="Image files or folders (walked recursively).", show_default=False),
    output: Path = typer.Option(..., "--output", "-o", help="Output file (for one input) or folder (names mirrored)."),
    box: list[str] = typer.Option([], "--box", help="Region x,y,w,h in pixels; repeatable."),
    ellipse: list[str] = typer.Option([], "--ellipse", help="Ellipse inside the box x,y,w,h; repeatable."),
    mask: Optional[Path] = typer.Option(None, "--mask", help="Mask image (white = pixelate), same size as every input."),
    cell: str = typer.Option("12", "--cell", help="Cell size N or HxW in pixels, e.g. 12 or 12x18."),
    phase: str = typer.Option("0,0", "--phase", help="Grid phase y,x: where cell edges fall."),
    sampling: str = typer.Option("mean", "--sampling", help="Cell colour: 'mean' of its pixels or its 'centre' pixel."),
    feather: int = typer.Option(0, "--feather", min=0, help="Blend the mosaic edge into the image over N pixels."),
    blur: Optional[float] = typer.Option(None, "--blur", help="Gaussian blur with this sigma instead of cells."),
    quality: int = typer.Option(95, "--quality", min=1, max=100, help="JPEG/WebP quality of the output."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace existing output files."),
    save_mask: bool = typer.Option(False, "--save-mask", help="Also write NAME.mask.png (255 = pixelated)."),
    faces: bool = typer.Option(False, "--faces", help="Also pixelate the faces OpenCV's detector finds (check the result: it misses some)."),
) -> None:
    """Add a mosaic (or a blur) to regions of images. Without --box/--ellipse/--mask/--faces the whole image."""
    if sampling not in ("mean", "centre", "center"):
        raise typer.BadParameter("must be 'mean' or 'centre'", param_hint="--sampling")
    if blur is not None and blur <= 0:
        raise typer.BadParameter("blur sigma must be > 0", param_hint="--blur")
    if mask is not None and not mask.is_file():
        raise typer.BadParameter(f"mask {mask} is not a file", param_hint="--mask")
    cfg = PixelateConfig(
        box=tuple(parse_ints(b, 4, "--box") for b in box),  # type: ignore[misc]
        ellipse=tuple(parse_ints(e, 4, "--ellipse") for e in ellipse),  # type: ignore[misc]
        mask=mask,
        cell=parse_cell(cell),
        phase=parse_ints(phase, 2, "--phase"),  # type: ignore[arg-type]
        sampling="centre" if sampling == "center" else sampling,
        feather=feather,
        blur=blur,
        overwrite=overwrite,
        quality=quality,
        save_mask=save_mask,
        faces=faces,
    )
    jobs = plan_outputs(inputs, output)
    raise typer.Exit(run_jobs(jobs, lambda job: pixelate_file(job, cfg), "pixelate"))


# ============================================================ detect


def detect_file(job: Job, cfg, model, overwrite: bool) -> None:
    """One input -> OUT/NAME.mask.png (255 = mosaic) and OUT/NAME.json (the regions)."""
    import json

    import numpy as np

    from tessera.imaging import read_image, write_image
    from tessera.mosaic.detect import detect as detect_regions

    rgb, _ = read_image(job.source)
    regions = detect_regions(rgb, config=cfg, model=model)
    mask = np.zeros(rgb.shape[:2], bool)
    for r in regions:
        mask |= r.mask
    json_path = job.target.with_name(job.target.name[: -len(".mask.png")] + ".json")
    if json_path.exists() and not overwrite:
        raise FileExistsError(f"{json_path} exists (use --overwrite)")
    write_image(job.target, mask, overwrite=overwrite)
    doc = {"image": job.source.name, "size": [int(rgb.shape[1]), int(rgb.shape[0])], "regions": [r.to_json() for r in regions]}
    json_path.parent.mkdir(parents=True, exist_ok=True)
    json_path.write_text(json.dumps(doc, indent=1) + "\n")


@app.command()
def detect(
    inputs: list[Path] = typer.Argument(..., help="Image files or folders (walked recursively).", show_default=False),
    output: Path = typer.Option(..., "--output", "-o", help="Output folder: NAME.mask.png and NAME.json per input."),
    min_area: int = typer.Option(64, "--min-area", min=1, help="Smallest region reported, in pixels."),
    sensitivity: float = typer.Option(0.5, "--sensitivity", min=0.0, max=1.0, help="0..1; higher finds fainter regions (and more false ones)."),
    weights: Optional[Path] = typer.Option(None, "--weights", help="Detector .safetensors (default: the shipped weights/detector.safetensors)."),
    no_net: bool = typer.Option(False, "--no-net", help="Grid analysis only (no segmentation net)."),
    blur: bool = typer.Option(False, "--blur", help="Also report blurred regions (no lattice) at ordinary confidence."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace existing output files."),
) -> None:
    """Find mosaicked regions by themselves: a mask PNG and a JSON (box, cell, phase, sampling, score) per image."""
    import warnings

    from tessera.imaging import IMAGE_EXTS
    from tessera.mosaic.detect import DetectConfig, load_detector

    if output.suffix.lower() in IMAGE_EXTS or (output.exists() and not output.is_dir()):
        raise typer.BadParameter(f"{output} must be a folder (it gets NAME.mask.png and NAME.json)", param_hint="--output")
    if weights is not None and not weights.is_file():
        raise typer.BadParameter(f"weights {weights} is not a file", param_hint="--weights")
    cfg = DetectConfig(
        min_area=min_area, sensitivity=sensitivity, weights="" if no_net else (str(weights) if weights else None), blur=blur
    )
    jobs = plan_outputs(inputs, output, suffix=".mask.png")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model = load_detector(cfg.weights)
    for w in caught:
        console.print(f"[yellow]warning:[/] {w.message}", highlight=False)
    if model is None:  # warned once above; grid analysis only for every file
        cfg = DetectConfig(min_area=min_area, sensitivity=sensitivity, weights="", blur=blur)
    raise typer.Exit(run_jobs(jobs, lambda job: detect_file(job, cfg, model, overwrite), "detect"))


# ============================================================ restore


@dataclass(frozen=True)
class RestoreConfig:
    model: str = "default"
    mask: Path | None = None
    mask_dir: Path | None = None
    cell: tuple[int, int] | None = None
    phase: tuple[int, int] = (0, 0)
    sampling: str = "auto"
    kind: str = "auto"
    feather: int = 0
    save_mask: bool = False
    overwrite: bool = False
    quality: int = 95
    refine: str | None = None  # "patch": neural patch synthesis on the model's output
    iters: int = 100  # dcgan: latent-search steps
    lam: float = 0.003  # dcgan: perceptual-loss weight


MASK_TEXT_KEY = "tessera:synthesized-mask"


def find_mask(job: Job, cfg: RestoreConfig) -> Path | None:
    """The mask for one input: --mask, or the file in --mask-dir with the input's stem (mirrored sub-folder first)."""
    from tessera.imaging import IMAGE_EXTS

    if cfg.mask is not None:
        return cfg.mask
    if cfg.mask_dir is None:
        return None
    stem = job.source.stem
    folders = [cfg.mask_dir / job.rel.parent, cfg.mask_dir] if job.rel is not None else [cfg.mask_dir]
    for folder in folders:
        for ext in sorted(IMAGE_EXTS):
            for name in (f"{stem}{ext}", f"{stem}.mask{ext}"):
                if (folder / name).is_file():
                    return folder / name
    raise ValueError(f"no mask named {stem}.* in {cfg.mask_dir}")


def restore_file(job: Job, cfg: RestoreConfig) -> None:
    from tessera.imaging import ImageWriteError, read_image, read_mask, write_image
    from tessera.mosaic.region import Grid
    from tessera.restore.pipeline import restore_image

    check_not_input(job)
    mask_out = job.target.with_name(job.target.stem + ".synthesized.png")
    if not cfg.overwrite:  # refuse before the work, and before writing either file
        for path in (job.target, mask_out) if cfg.save_mask else (job.target,):
            if path.exists():
                raise ImageWriteError(path, "exists; use --overwrite to replace it")
    rgb, info = read_image(job.source)
    mask_path = find_mask(job, cfg)
    mask = read_mask(mask_path, shape=rgb.shape[:2]) if mask_path else None
    grid = None
    if cfg.cell is not None:
        ch, cw = cfg.cell
        grid = Grid(ch, cw, cfg.phase[0] % ch, cfg.phase[1] % cw, "mean" if cfg.sampling == "auto" else cfg.sampling)  # type: ignore[arg-type]
    from tessera.restore.latent import LatentConfig

    latent = LatentConfig(iters=cfg.iters, lam=cfg.lam)
    result = restore_image(
        rgb, mask, model=cfg.model, grid=grid, kind=cfg.kind, feather=cfg.feather, refine=cfg.refine, latent=latent, sampling=cfg.sampling  # type: ignore[arg-type]
    )
    text = {"tessera:notice": DISCLAIMER, "tessera:model": result.model}
    if cfg.save_mask:
        text[MASK_TEXT_KEY] = mask_out.name
    if cfg.save_mask:  # the mask first: a failure leaves no output that names a missing mask
        write_image(mask_out, result.mask, overwrite=cfg.overwrite)
    write_image(job.target, result.image, alpha=info.alpha, overwrite=cfg.overwrite, quality=cfg.quality, text=text,
                icc_profile=info.icc_profile)


@app.command()
def restore(
    inputs: list[Path] = typer.Argument(..., help="Image files or folders (walked recursively).", show_default=False),
    output: Path = typer.Option(..., "--output", "-o", help="Output file (for one input) or folder (names mirrored)."),
    mask: Optional[Path] = typer.Option(None, "--mask", help="Mask image (white = restore) for every input."),
    mask_dir: Optional[Path] = typer.Option(None, "--mask-dir", help="Folder of masks matched to inputs by file stem."),
    model: str = typer.Option("default", "--model", help="scenes, faces, smooth, telea, ns, dcgan, or a .safetensors file."),
    cell: Optional[str] = typer.Option(None, "--cell", help="Known mosaic cell size N or HxW (else estimated)."),
    phase: str = typer.Option("0,0", "--phase", help="Known grid phase y,x (with --cell)."),
    sampling: str = typer.Option(
        "auto", "--sampling", help="Cell colour: 'mean' of its pixels, its 'centre' pixel, or 'auto' (restore under both, keep the one the result agrees with)."
    ),
    kind: str = typer.Option("auto", "--kind", help="What hides the pixels: auto, mosaic, blur or hole."),
    feather: int = typer.Option(0, "--feather", min=0, help="Blend the restoration in over N pixels inside the mask."),
    save_mask: bool = typer.Option(False, "--save-mask", help="Write NAME.synthesized.png (255 = synthesized) and name it in the output's PNG text."),
    quality: int = typer.Option(95, "--quality", min=1, max=100, help="JPEG/WebP quality of the output."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace existing output files."),
    refine: Optional[str] = typer.Option(None, "--refine", help="Refine the model's output: patch (multi-scale neural patch synthesis)."),
    iters: int = typer.Option(100, "--iters", min=0, help="dcgan: latent-search steps (Adam over z)."),
    lam: float = typer.Option(0.003, "--lam", min=0.0, help="dcgan: weight of the critic's (perceptual) loss."),
) -> None:
    """Restore mosaicked, blurred or missing regions. Without --mask the mosaics are detected.

    Restored pixels are imagined, not recovered: they are not the hidden original.
    """
    from tessera.restore.pipeline import model_names

    if mask is not None and mask_dir is not None:
        raise typer.BadParameter("give --mask or --mask-dir, not both", param_hint="--mask")
    if mask is not None and not mask.is_file():
        raise typer.BadParameter(f"mask {mask} is not a file", param_hint="--mask")
    if mask_dir is not None and not mask_dir.is_dir():
        raise typer.BadParameter(f"{mask_dir} is not a folder", param_hint="--mask-dir")
    if model not in model_names() and not Path(model).is_file():
        raise typer.BadParameter(f"unknown model {model!r}; choose one of {', '.join(model_names())} or a .safetensors file", param_hint="--model")
    if kind not in ("auto", "mosaic", "blur", "hole"):
        raise typer.BadParameter("must be auto, mosaic, blur or hole", param_hint="--kind")
    if refine is not None and refine != "patch":
        raise typer.BadParameter("must be patch", param_hint="--refine")
    if sampling not in ("auto", "mean", "centre", "center"):
        raise typer.BadParameter("must be 'auto', 'mean' or 'centre'", param_hint="--sampling")
    cfg = RestoreConfig(
        model=model,
        mask=mask,
        mask_dir=mask_dir,
        cell=parse_cell(cell) if cell else None,
        phase=parse_ints(phase, 2, "--phase"),  # type: ignore[arg-type]
        sampling="centre" if sampling == "center" else sampling,
        kind=kind,
        feather=feather,
        save_mask=save_mask,
        overwrite=overwrite,
        quality=quality,
        refine=refine,
        iters=iters,
        lam=lam,
    )
    jobs = plan_outputs(inputs, output)
    code = run_jobs(jobs, lambda job: restore_file(job, cfg), "restore")
    console.print(f"[dim]{DISCLAIMER}[/]", highlight=False)
    raise typer.Exit(code)


# ============================================================ eval


@app.command("eval")
def eval_(
    data: Path = typer.Option(..., "--data", help="Folder of clean photos to make seeded test cases from."),
    models: str = typer.Option("smooth,telea,ns,default", "--models", help="Comma-separated model names or .safetensors files."),
    output: Path = typer.Option(Path("eval"), "--output", "-o", help="Report folder: report.md, scores.json, psnr.png, samples.png."),
    cases: int = typer.Option(40, "--cases", min=1, help="Number of seeded cases."),
    seed: int = typer.Option(0, "--seed", help="Seed of the case generator."),
    kinds: str = typer.Option(",".join(("box", "ellipse", "polygon", "rect", "border")), "--kinds", help="Case generators (see tessera.mosaic.synth)."),
    jpeg: Optional[int] = typer.Option(None, "--jpeg", min=1, max=100, help="JPEG-compress the degraded inputs at this quality."),
    auto: bool = typer.Option(False, "--auto", help="Also restore with detected masks instead of the true ones."),
) -> None:
    """Score models against each other on seeded synthetic mosaics: PSNR and SSIM inside the
    region, blockiness, re-mosaic residual and time, with a chart and a sample sheet."""
    from rich.progress import Progress

    from tessera.evaluate import EvalConfig, markdown_table, run_eval
    from tessera.restore.pipeline import model_names

    if not data.is_dir():
        raise typer.BadParameter(f"{data} is not a folder", param_hint="--data")
    from tessera.mosaic.synth import KINDS

    names = tuple(m.strip() for m in models.split(",") if m.strip())
    if not names:
        raise typer.BadParameter("name at least one model", param_hint="--models")
    kind_list = tuple(k.strip() for k in kinds.split(",") if k.strip())
    bad = [k for k in kind_list if k not in KINDS]
    if not kind_list or bad:
        raise typer.BadParameter(f"choose case kinds from {', '.join(KINDS)}" + (f" (not {', '.join(bad)})" if bad else ""), param_hint="--kinds")
    if output.exists() and not output.is_dir():
        raise typer.BadParameter(f"{output} is a file; the report needs a folder", param_hint="--output")
    for m in names:
        base = m.removesuffix("+patch")  # MODEL+patch: MODEL refined by neural patch synthesis
        if base not in model_names() and not Path(base).is_file():
            raise typer.BadParameter(f"unknown model {m!r}; choose from {', '.join(model_names())} (+patch)", param_hint="--models")
    cfg = EvalConfig(
        data=data, models=names, output=output, cases=cases, seed=seed, kinds=kind_list, jpeg=jpeg, auto=auto,
    )
    total = cases * len(names) * (2 if auto else 1)
    with Progress(console=console, transient=True) as progress:
        task = progress.add_task("eval", total=total)
        try:
            summary, _ = run_eval(cfg, progress=lambda _msg: progress.advance(task))
        except (ValueError, OSError) as exc:  # missing weights, no readable photos, unwritable report
            console.print(f"[red]error:[/] {_one_line(exc)}", highlight=False)
            raise typer.Exit(1) from None
    typer.echo(markdown_table(summary))
    console.print(f"report written to {output}/report.md", highlight=False)


# ============================================================ train


@app.command()
def train(
    model: str = typer.Option("unet", "--model", help="Model to train: unet, pix2pix or deepfill."),
    data: Path = typer.Option(..., "--data", help="Folder of training photos (walked recursively)."),
    out: Path = typer.Option(..., "--out", help="Run folder: checkpoint.pt, metrics.jsonl, tb/, samples/."),
    val: Optional[Path] = typer.Option(None, "--val", help="Folder of validation photos (PSNR/SSIM inside the region)."),
    preset: str = typer.Option("paper", "--preset", help="Model size: paper, small (CPU, <= 30 MB) or tiny."),
    width: Optional[int] = typer.Option(None, "--width", min=2, help="Base channels (overrides the preset)."),
    d_width: int = typer.Option(64, "--d-width", min=2, help="Base channels of the discriminator / critics."),
    kwargs: str = typer.Option("{}", "--kwargs", help='More model kwargs as JSON, e.g. \'{"depth": 6}\'.'),
    steps: int = typer.Option(100_000, "--steps", min=1, help="Total optimizer steps."),
    batch: int = typer.Option(16, "--batch", min=1, help="Images per step per process."),
    crop: int = typer.Option(256, "--crop", min=8, help="Training crop size in pixels."),
    region: int = typer.Option(128, "--region", min=4, help="Largest side of the hidden region."),
    cell: int = typer.Option(12, "--cell", min=1, help="Most likely mosaic cell size (pixels)."),
    cell_range: str = typer.Option("4,24", "--cell-range", help="Smallest,largest mosaic cell size."),
    lr: float = typer.Option(1e-4, "--lr", help="Adam learning rate of every network."),
    resume: bool = typer.Option(False, "--resume", help="Continue OUT/checkpoint.pt at its step."),
    init: Optional[Path] = typer.Option(None, "--init", help="Fine-tune: start the generator from these weights (a .safetensors file or a shipped name): the same model and kwargs, or a U-Net grown by more residual blocks (--kwargs '{\"blocks\": [0, 1, 2, 2, 1]}')."),
    device: str = typer.Option("auto", "--device", help="auto, cpu, cuda or cuda:N."),
    amp: str = typer.Option("none", "--amp", help="Autocast: none, bf16 or fp16."),
    channels_last: bool = typer.Option(False, "--channels-last", help="channels_last memory format."),
    compile: bool = typer.Option(False, "--compile", help="torch.compile the generator."),
    augment: bool = typer.Option(True, "--augment/--no-augment", help="Rotation, flip, shear and zoom."),
    small: str = typer.Option("upscale", "--small", help="Images smaller than the crop: upscale or skip."),
    workers: int = typer.Option(2, "--workers", min=0, help="Data loader processes."),
    threads: Optional[int] = typer.Option(None, "--threads", min=1, help="torch CPU threads."),
    seed: int = typer.Option(0, "--seed", help="Seed of initialization, data and augmentation."),
    log_every: int = typer.Option(10, "--log-every", min=1),
    eval_every: int = typer.Option(500, "--eval-every", min=1),
    sample_every: int = typer.Option(500, "--sample-every", min=1),
    ckpt_every: int = typer.Option(500, "--ckpt-every", min=1),
) -> None:
    """Train a restoration model on a folder of photos (several processes: torchrun --nproc_per_node N -m tessera train ...)."""
    import json

    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

    from tessera.models import PRESETS, RESTORATION_MODELS
    from tessera.train.loop import TrainConfig, fit
    from tessera.train.recipes import RecipeConfig

    if model not in RESTORATION_MODELS:
        raise typer.BadParameter(f"must be one of {', '.join(RESTORATION_MODELS)}", param_hint="--model")
    if preset not in PRESETS[model]:
        raise typer.BadParameter(f"must be one of {', '.join(PRESETS[model])}", param_hint="--preset")
    if amp not in ("none", "bf16", "fp16"):
        raise typer.BadParameter("must be none, bf16 or fp16", param_hint="--amp")
    if small not in ("upscale", "skip"):
        raise typer.BadParameter("must be upscale or skip", param_hint="--small")
    if not data.exists():
        raise typer.BadParameter(f"{data} does not exist", param_hint="--data")
    if val is not None and not val.exists():
        raise typer.BadParameter(f"{val} does not exist", param_hint="--val")
    try:
        overrides = json.loads(kwargs)
        assert isinstance(overrides, dict)
    except (ValueError, AssertionError):
        raise typer.BadParameter(f"must be a JSON object, got {kwargs!r}", param_hint="--kwargs") from None
    if width is not None:
        overrides["base"] = width
    lo, hi = parse_ints(cell_range, 2, "--cell-range")
    if not (1 <= lo <= cell <= hi):
        raise typer.BadParameter(f"need 1 <= {lo} <= --cell {cell} <= {hi}", param_hint="--cell-range")
    cfg = TrainConfig(
        data=data, out=out, model=model, val=val, preset=preset, model_kwargs=overrides, steps=steps, batch=batch,
        crop=crop, region=region, cell=cell, cell_range=(lo, hi), lr=lr, seed=seed, device=device, amp=amp,
        channels_last=channels_last, compile=compile, augment=augment, small=small, workers=workers, threads=threads,
        log_every=log_every, eval_every=eval_every, sample_every=sample_every, ckpt_every=ckpt_every, resume=resume,
        init=init, recipe=RecipeConfig(d_base=d_width),
    )
    with Progress(
        TextColumn(f"[bold]train {model}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        TextColumn("{task.fields[losses]}"),
        console=console,
        disable=os.environ.get("RANK", "0") != "0",  # one bar, from rank 0, under torchrun
    ) as progress:
        task = progress.add_task("train", total=steps, losses="")

        def on_step(step: int, total: int, losses: dict) -> None:
            text = " ".join(f"{k}={v:.4g}" for k, v in losses.items())
            progress.update(task, completed=step, losses=text)

        summary = fit(cfg, on_step)
    scores = " ".join(f"{k}={v:.4g}" for k, v in summary["val"].items())
    if os.environ.get("RANK", "0") != "0":
        return
    if summary["interrupted"]:
        console.print(f"interrupted at step {summary['step']}; checkpoint saved to {summary['checkpoint']} (continue with --resume)")
        raise typer.Exit(130)
    console.print(f"trained {model} to step {summary['step']}; checkpoint {summary['checkpoint']} {scores}", highlight=False)


# ============================================================ export


@app.command()
def export(
    checkpoint: Path = typer.Argument(..., help="A training checkpoint (RUN/checkpoint.pt)."),
    output: Path = typer.Option(..., "--output", "-o", help="Weight file to write, e.g. weights/NAME.safetensors."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace an existing weight file."),
) -> None:
    """Write a checkpoint's generator as safetensors weights (+ model name and kwargs)."""
    from tessera.train.loop import export_checkpoint

    if not checkpoint.is_file():
        raise typer.BadParameter(f"{checkpoint} is not a file", param_hint="CHECKPOINT")
    if output.exists() and not overwrite:
        raise typer.BadParameter(f"{output} exists (use --overwrite)", param_hint="--output")
    path = export_checkpoint(checkpoint, output)
    console.print(f"wrote {path} ({path.stat().st_size / 1e6:.1f} MB)", highlight=False)


# ============================================================ entry point


def main(argv: Sequence[str] | None = None) -> None:
    """Console-script entry point: never shows a traceback for user errors."""
    try:
        app(args=list(argv) if argv is not None else None, prog_name="tessera", standalone_mode=True)
    except KeyboardInterrupt:
        console.print("interrupted")
        sys.exit(130)
    except Exception as exc:  # a last guard: one clear line instead of a traceback
        if os.environ.get("TESSERA_DEBUG"):
            raise
        console.print(f"[red]error:[/] {_one_line(exc)} (set TESSERA_DEBUG=1 for details)", highlight=False)
        sys.exit(1)
