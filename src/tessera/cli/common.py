"""What every command shares: flag parsing (every size bounded), planning every output path of a
batch before the first write, running a batch with a progress bar and one line per failure.

Output planning (:func:`plan_outputs`) holds the batch rules:

- every output path (image, mask, JSON) is known before anything is written; two inputs that would
  write the same path (``a.png`` and ``a.jpg`` -> ``a.mask.png``; ``b.gif`` and ``b.png`` ->
  ``b.png``) get distinct names (the input's full name: ``a.jpg.mask.png``, ``b.gif.png``), and a
  clash that renaming cannot fix is refused with the list;
- no output may be a file the command reads (inputs, ``--mask``, ``--mask-dir`` files, weights),
  compared by device and inode, whatever the flags;
- folder walks skip Tessera's own outputs (``*.mask.png``, ``*.synthesized.png``);
- an output and its companions (a mask, a JSON) are written as one group, companions first; a rerun
  replaces a companion left without its file by an interrupted run (it names that file in its PNG
  text), and removes the hidden temporary files such a run left.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TypeVar

import typer
from rich.markup import escape

from tessera.cli.app import console

T = TypeVar("T")

#: The largest pixel count any size flag (cell, box, phase, feather...) may name.
MAX_SIZE = 1_000_000
#: Names of Tessera's own outputs, which folder walks skip.
OWN_OUTPUT_SUFFIXES = (".mask.png", ".synthesized.png")


def parse_ints(text: str, n: int, what: str, sep: str = ",", lo: int = -MAX_SIZE, hi: int = MAX_SIZE) -> tuple[int, ...]:
    """'1,2,3,4' -> (1, 2, 3, 4), or a usage error naming the flag."""
    parts = [p.strip() for p in text.split(sep)]
    try:
        vals = tuple(int(p) for p in parts)
    except ValueError:
        raise typer.BadParameter(f"{what} must be {n} integers separated by '{sep}', got {text!r}") from None
    if len(vals) != n:
        raise typer.BadParameter(f"{what} must be {n} integers separated by '{sep}', got {text!r}")
    for v in vals:
        if not lo <= v <= hi:
            raise typer.BadParameter(f"{what} values must be between {lo} and {hi}, got {text!r}")
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
    if h > MAX_SIZE or w > MAX_SIZE:
        raise typer.BadParameter(f"cell must be at most {MAX_SIZE} pixels, got {text!r}")
    return h, w


def check_number(value: float | None, flag: str, lo: float, hi: float, *, open_lo: bool = False) -> None:
    """A usage error unless ``value`` is a finite number in [lo, hi] ((lo, hi] with open_lo)."""
    from tessera.config import check_number as check

    usage_check(lambda: check(flag, value, lo, hi, open_lo=open_lo), {flag: flag})


def split_list(text: str) -> tuple[str, ...]:
    """'a, b,,c' -> ('a', 'b', 'c'): a comma-separated flag as the tuple its config field holds."""
    return tuple(part.strip() for part in text.split(",") if part.strip())


def usage_check(check: Callable[[], T], flags: dict[str, str] | None = None) -> T:
    """``check()``; a library :class:`~tessera.config.ConfigError` becomes a usage error on the flag
    of the field's name (``cell_range`` -> ``--cell-range``, or as ``flags`` maps it), another
    ValueError a usage error without one."""
    from tessera.config import ConfigError

    try:
        return check()
    except ConfigError as exc:
        hint = (flags or {}).get(exc.field, "--" + exc.field.replace("_", "-"))
        raise typer.BadParameter(str(exc), param_hint=hint) from None
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None


def build_config(cls: Callable[..., T], flags: dict[str, str] | None = None, **fields) -> T:
    """``cls(**fields)``: a library config that validates itself, its errors usage errors (:func:`usage_check`)."""
    return usage_check(lambda: cls(**fields), flags)


def parse_json_object(text: str, flag: str) -> dict:
    """A flag holding a JSON object (model kwargs), or a usage error naming the flag."""
    import json

    try:
        value = json.loads(text)
    except ValueError:
        value = None
    if not isinstance(value, dict):
        raise typer.BadParameter(f"must be a JSON object, got {text!r}", param_hint=flag)
    return value


@dataclass(frozen=True)
class Job:
    source: Path
    target: Path
    rel: Path | None = None  # the input's path relative to the folder it was found in (mirrored in outputs)
    companions: tuple[Path, ...] = ()  # written with target, before it (a mask, a JSON)
    conflict: str | None = None  # why this job must not write (an output is a file the command reads)
    replace: tuple[bool, ...] = field(default=(), compare=False)  # per output: may it be replaced (set by run_jobs)

    @property
    def outputs(self) -> tuple[Path, ...]:
        """Every file the job writes, in writing order (companions first, the target last)."""
        return (*self.companions, self.target)

    def overwrite_flags(self) -> list[bool]:
        return list(self.replace) if self.replace else [False] * len(self.outputs)


class PlanError(typer.BadParameter):
    pass


def _key(p: Path) -> str:
    return os.path.normcase(os.path.abspath(p)).casefold()


def _file_id(p: Path) -> tuple[int, int] | None:
    try:
        st = os.stat(p)  # follows links: a link to an input is that input
    except OSError:
        return None
    return (st.st_dev, st.st_ino)


def plan_outputs(
    inputs: Sequence[Path],
    output: Path,
    suffix: str | None = None,
    companions: Callable[[Path, bool | str], Sequence[Path]] | None = None,
    reads: Iterable[Path] = (),
) -> list[Job]:
    """Pair every input image with its output paths, for the whole batch, before anything is written.

    A single input file and an output with an image extension write to that file; otherwise
    ``output`` is a folder that mirrors the inputs' names (folders are walked, skipping Tessera's
    own ``*.mask.png`` / ``*.synthesized.png``). ``suffix`` replaces the extension when given (e.g.
    '.json'); ``companions(target, full)`` names the files written beside a target (``full``: False, or
    the input's full name when a clash made the plan keep it: name companions from it). ``reads``: other
    files the command reads (masks, weights); no output may be one of them or an input."""
    from tessera.io.image import IMAGE_EXTS

    companions = companions or (lambda _t, _f: ())
    pairs = _input_pairs(inputs)  # 1. every input image, with its path relative to its folder
    single_file = len(inputs) == 1 and inputs[0].is_file()
    if single_file and suffix is None and output.suffix.lower() in IMAGE_EXTS:  # 2a. one file -> one named file
        jobs = [_single_file_job(pairs[0], output, companions)]
    else:  # 2b. a folder mirroring the inputs' names, clashes renamed
        jobs = _folder_jobs(pairs, output, suffix, companions)
    return _mark_conflicts(jobs, reads)  # 3. no output may be a file the command reads


def _input_pairs(inputs: Sequence[Path]) -> list[tuple[Path, Path]]:
    """(source, path relative to its folder) of every input image; folder walks skip Tessera's own outputs."""
    from tessera.io.image import IMAGE_EXTS, collect_inputs

    for p in inputs:
        if not p.exists():
            raise typer.BadParameter(f"input {p} does not exist")
    try:
        pairs = collect_inputs(list(inputs))
    except (ValueError, OSError) as exc:
        raise typer.BadParameter(_one_line(exc)) from None
    named = {_key(p) for p in inputs if not p.is_dir()}
    kept = [(s, r) for s, r in pairs if _key(s) in named or not s.name.lower().endswith(OWN_OUTPUT_SUFFIXES)]
    skipped = len(pairs) - len(kept)
    if skipped:
        console.print(
            f"skipped {skipped} file(s) named like Tessera's own outputs (*.mask.png, *.synthesized.png); "
            "name them explicitly to process them",
            highlight=False,
            soft_wrap=True,
        )
    if not kept:
        raise typer.BadParameter("no images found in the given inputs (looked for " + ", ".join(sorted(IMAGE_EXTS)) + ")")
    return kept


def _single_file_job(pair: tuple[Path, Path], output: Path, companions: Callable) -> Job:
    from tessera.io.image import WRITE_FORMATS

    if output.suffix.lower() not in WRITE_FORMATS:
        raise typer.BadParameter(f"cannot write {output.suffix} files; use one of {', '.join(sorted(WRITE_FORMATS))}", param_hint="--output")
    return Job(pair[0], output, pair[1], tuple(companions(output, False)))


def _target_for(output: Path, rel: Path, suffix: str | None, full: bool) -> Path:
    """The output path of the input at ``rel`` under the folder ``output`` (``full``: keep the
    input's whole name, extension included: a.jpg -> a.jpg.json, b.gif -> b.gif.png)."""
    from tessera.io.image import WRITE_FORMATS

    base = output / rel
    if suffix:
        return base.with_name(base.name + suffix) if full else base.with_suffix(suffix)
    if base.suffix.lower() not in WRITE_FORMATS:  # .gif, .ppm, ...: read, but written as PNG
        return base.with_name(base.name + ".png") if full else base.with_suffix(".png")
    return base


def _folder_jobs(pairs: list[tuple[Path, Path]], output: Path, suffix: str | None, companions: Callable) -> list[Job]:
    """One job per input under the folder ``output``. Inputs whose outputs clash keep their full
    name (once); a clash that this cannot fix is a :class:`PlanError`."""
    if output.exists() and not output.is_dir():
        raise typer.BadParameter(f"output {output} is a file, but the outputs need a folder", param_hint="--output")
    full = [False] * len(pairs)
    for attempt in range(2):
        jobs = []
        for (src, rel), f in zip(pairs, full):
            t = _target_for(output, rel, suffix, f)
            jobs.append(Job(src, t, rel, tuple(companions(t, rel.name if f else False))))
        clashes = _clashes(jobs)
        if not clashes:
            break
        group = sorted({i for _p, idx in clashes for i in idx})
        if attempt == 1 or all(full[i] for i in group):
            lines = "; ".join(f"{' and '.join(str(jobs[i].source) for i in idx)} -> {path}" for path, idx in clashes[:5])
            raise PlanError(f"several inputs would write the same output; rename them: {lines}")
        for i in group:
            full[i] = True
        console.print(
            "inputs with the same name would write the same output; their outputs keep the full input name: "
            + ", ".join(f"{pairs[i][0].name} -> {_target_for(output, pairs[i][1], suffix, True).name}" for i in group[:10])
            + (" ..." if len(group) > 10 else ""),
            highlight=False,
            soft_wrap=True,
        )
    return jobs


def _clashes(jobs: Sequence[Job]) -> list[tuple[Path, list[int]]]:
    owners: dict[str, list[int]] = {}
    paths: dict[str, Path] = {}
    for i, job in enumerate(jobs):
        for p in job.outputs:
            k = _key(p)
            paths[k] = p
            if i not in owners.setdefault(k, []):
                owners[k].append(i)
    return [(paths[k], idx) for k, idx in owners.items() if len(idx) > 1]


def _mark_conflicts(jobs: list[Job], reads: Iterable[Path]) -> list[Job]:
    """Give every job that would write over a file the command reads (by device and inode) a conflict."""
    read_ids: dict[tuple[int, int], Path] = {}
    for p in [*(j.source for j in jobs), *reads]:
        fid = _file_id(Path(p))
        if fid is not None:
            read_ids.setdefault(fid, Path(p))
    out = []
    for job in jobs:
        for p in job.outputs:
            fid = _file_id(p)
            if fid is not None and fid in read_ids:
                src = read_ids[fid]
                what = "the input file" if src == job.source else f"{src}, which this command reads"
                job = replace(job, conflict=f"output {p} is {what}; refusing to write over it (choose another output)")
                break
        out.append(job)
    return out


def mask_dir_files(mask_dir: Path | None) -> list[Path]:
    """Every image file under ``mask_dir`` (all may be read as masks)."""
    from tessera.io.image import IMAGE_EXTS

    if mask_dir is None:
        return []
    return [p for p in mask_dir.rglob("*") if p.suffix.lower() in IMAGE_EXTS and p.is_file()]


def prepare(job: Job, overwrite: bool) -> Job:
    """Check a job's outputs before its work: no conflict, no link, nothing existing unless
    ``overwrite`` or a companion that an interrupted run left without its target. Removes the
    temporary files such a run left. Returns the job with its per-output replace flags."""
    from tessera.io.image import ImageWriteError, companion_of, remove_temp_files

    if job.conflict:
        raise ValueError(job.conflict)
    target_there = os.path.lexists(job.target)
    flags = []
    for p in job.outputs:
        remove_temp_files(p)
        if p.is_symlink():
            raise ImageWriteError(p, "is a symbolic link; refusing to write through it (remove it or choose another output)")
        if p.is_dir():
            raise ImageWriteError(p, "is a folder; give a file name for the output")
        exists = os.path.lexists(p)
        leftover = exists and p != job.target and not target_there and companion_of(p) == job.target.name
        if exists and not (overwrite or leftover):
            raise ImageWriteError(p, "exists; use --overwrite to replace it")
        flags.append(overwrite or leftover)
    return replace(job, replace=tuple(flags))


def run_jobs(jobs: Sequence[Job], work: Callable[[Job], None], verb: str, overwrite: bool = False) -> int:
    """Run ``work`` on each job (after :func:`prepare`) with a progress bar; one line per failure
    and a summary. Returns the exit code: 0 if all succeeded, 1 if some failed."""
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
                work(prepare(job, overwrite))
            except KeyboardInterrupt:
                raise
            except MemoryError:
                failures.append((job.source, "not enough memory for this image (try a smaller one)"))
            except Exception as exc:  # every per-file problem becomes one line, never a traceback
                failures.append((job.source, _one_line(exc)))
            progress.advance(task)
    done = len(jobs) - len(failures)
    if failures:
        for path, why in failures:
            console.print(f"[red]failed[/] {escape(str(path))}: {escape(why)}", highlight=False, soft_wrap=True)
        console.print(
            escape(
                f"{verb}: {done} of {len(jobs)} done, {len(failures)} failed ("
                + "; ".join(f"{p.name}: {w}" for p, w in failures[:3])
                + (" ..." if len(failures) > 3 else "")
                + ")"
            ),
            highlight=False,
            soft_wrap=True,
        )
        return 1
    console.print(f"{verb}: {done} of {len(jobs)} done", highlight=False)
    return 0


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    msg = text[0] if text else type(exc).__name__
    return msg if msg else type(exc).__name__


def check_not_input(job: Job) -> None:
    """Kept for callers that build jobs by hand: a job whose target is its own input fails."""
    from tessera.io.image import same_file

    if job.conflict:
        raise ValueError(job.conflict)
    if job.target.exists() and same_file(job.target, job.source):
        raise ValueError("output would overwrite the input file; choose another output path")


def companion(target: Path, tail: str, full: bool | str) -> Path:
    """``photo.png`` + '.mask.png' -> ``photo.mask.png``; with ``full`` (the input's name, given when
    a clash made the plan keep it) ``photo.png.mask.png``, ``photo.gif.mask.png``."""
    base = full if isinstance(full, str) else (target.name if full else target.stem)
    return target.with_name(base + tail)
