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


def plan_outputs(inputs: Sequence[Path], output: Path, suffix: str | None = None) -> list[Job]:
    """Pair every input image with its output path. A single input file and an output with an
    image extension write to that file; otherwise ``output`` is a folder that mirrors the inputs'
    names (folders are walked). ``suffix`` replaces the extension when given (e.g. '.png')."""
    from tessera.imaging import IMAGE_EXTS, collect_inputs

    for p in inputs:
        if not p.exists():
            raise typer.BadParameter(f"input {p} does not exist")
    pairs = collect_inputs(list(inputs))
    if not pairs:
        raise typer.BadParameter("no images found in the given inputs (looked for " + ", ".join(sorted(IMAGE_EXTS)) + ")")
    single_file = len(inputs) == 1 and inputs[0].is_file()
    if single_file and output.suffix.lower() in IMAGE_EXTS:
        return [Job(pairs[0][0], output)]
    if output.exists() and not output.is_dir():
        raise typer.BadParameter(f"output {output} is a file, but several images need an output folder")
    jobs = []
    for src, rel in pairs:
        target = output / rel
        if suffix:
            target = target.with_suffix(suffix)
        jobs.append(Job(src, target))
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
    if job.target.exists() and job.target.resolve() == job.source.resolve():
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


def pixelate_file(job: Job, cfg: PixelateConfig) -> None:
    from tessera.imaging import read_image, read_mask, write_image
    from tessera.mosaic.pixelate import pixelate

    check_not_input(job)
    rgb, info = read_image(job.source)
    mask = read_mask(cfg.mask, shape=rgb.shape[:2]) if cfg.mask else None
    out, changed = pixelate(
        rgb,
        mask,
        boxes=cfg.box,
        ellipses=cfg.ellipse,
        cell=cfg.cell,
        phase=cfg.phase,
        sampling=cfg.sampling,
        feather=cfg.feather,
        blur=cfg.blur,
    )
    write_image(job.target, out, alpha=info.alpha, overwrite=cfg.overwrite, quality=cfg.quality)
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
) -> None:
    """Add a mosaic (or a blur) to regions of images. Without --box/--ellipse/--mask the whole image."""
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
    )
    jobs = plan_outputs(inputs, output)
    raise typer.Exit(run_jobs(jobs, lambda job: pixelate_file(job, cfg), "pixelate"))


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
