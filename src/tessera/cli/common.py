"""What every command shares: flag parsing, planning output paths, running a batch with a
progress bar and one line per failure."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import typer

from tessera.cli.app import console



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
    from tessera.io.image import IMAGE_EXTS, WRITE_FORMATS, collect_inputs

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
    from tessera.io.image import same_file

    if job.target.exists() and same_file(job.target, job.source):
        raise ValueError("output would overwrite the input file; choose another output path")
