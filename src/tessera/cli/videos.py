"""Videos in the image commands (restore, pixelate, detect): planning which inputs are videos and
where their outputs go, and running them one by one with a progress bar (frames/s, ETA).
Not a command itself; each command module keeps its video dispatch to a few lines."""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path

import typer

from tessera.cli.app import console
from tessera.cli.common import Job, _one_line


def split_inputs(inputs: Sequence[Path], output: Path, *, folder_only: bool = False) -> tuple[list[Path], list[Job]]:
    """(inputs for the image planner, video jobs). Folders are walked for videos (and still given
    to the image planner when they hold images); a single video file with a video-extension
    output writes that file, else outputs mirror the inputs' names inside ``output``."""
    from tessera.io.video import VIDEO_EXTS, WRITE_FORMATS, is_video_path

    image_inputs: list[Path] = []
    videos: list[tuple[Path, Path]] = []
    for p in inputs:
        if p.is_dir():
            found, has_images = _walk_videos(p)
            videos += found
            if has_images:
                image_inputs.append(p)
        elif p.is_file() and is_video_path(p):
            videos.append((p, Path(p.name)))
        else:
            image_inputs.append(p)
    jobs: list[Job] = []
    if len(inputs) == 1 and len(videos) == 1 and inputs[0].is_file() and not folder_only:
        src, rel = videos[0]
        if output.suffix.lower() in VIDEO_EXTS:
            if output.suffix.lower() not in WRITE_FORMATS:
                raise typer.BadParameter(f"cannot write {output.suffix} videos; use one of {', '.join(sorted(WRITE_FORMATS))}", param_hint="--output")
            return image_inputs, [Job(src, output, rel)]
    if videos and output.exists() and not output.is_dir():
        raise typer.BadParameter(f"output {output} is a file, but videos in a folder need an output folder", param_hint="--output")
    for src, rel in videos:
        target = output / rel
        if not folder_only and target.suffix.lower() not in WRITE_FORMATS:
            target = target.with_suffix(".mkv")  # a container that holds any stream
        jobs.append(Job(src, target, rel))
    return image_inputs, jobs


def _walk_videos(folder: Path) -> tuple[list[tuple[Path, Path]], bool]:
    """The videos under ``folder`` as (path, path relative to it), in name order, skipping hidden
    files and folders; and whether it holds images too."""
    from tessera.io.image import IMAGE_EXTS
    from tessera.io.video import VIDEO_EXTS

    videos, has_images = [], False
    for dirpath, dirnames, filenames in os.walk(folder):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for name in sorted(filenames):
            if name.startswith("."):
                continue
            ext = os.path.splitext(name)[1].lower()
            if ext in VIDEO_EXTS:
                f = Path(dirpath) / name
                videos.append((f, f.relative_to(folder)))
            elif ext in IMAGE_EXTS:
                has_images = True
    return videos, has_images


def plan_media(inputs: Sequence[Path], output: Path, *, folder_only: bool = False, **plan) -> tuple[list[Job], list[Job]]:
    """(image jobs, video jobs) of a command's inputs, every output known before the first write:
    :func:`split_inputs`, then :func:`~tessera.cli.common.plan_outputs` (``plan``: its keywords) for the images."""
    from tessera.cli.common import plan_outputs

    image_inputs, video_jobs = split_inputs(inputs, output, folder_only=folder_only)
    jobs = plan_outputs(image_inputs, output, **plan) if image_inputs or not video_jobs else []
    return jobs, video_jobs


def run_media(
    jobs: Sequence[Job], video_jobs: Sequence[Job], image_work: Callable[[Job], None], video_work: Callable, verb: str, overwrite: bool = False
) -> int:
    """Run the image jobs (:func:`~tessera.cli.common.run_jobs`), then the video jobs
    (:func:`run_video_jobs`). Returns 0, or 1 when something failed."""
    from tessera.cli.common import run_jobs

    code = run_jobs(jobs, image_work, verb, overwrite) if jobs else 0
    if video_jobs:
        code |= run_video_jobs(video_jobs, video_work, verb)
    return code


def run_file_command(
    inputs: Sequence[Path], output: Path, verb: str, image_work: Callable[[Job], None], video_work: Callable, *,
    crf: int, preset: str, start: float | None, end: float | None, overwrite: bool, companions=None, reads: Sequence[Path] = (),
) -> int:
    """A command that writes a file per image and per video (pixelate, restore): check the time span
    and the encoder settings, plan every output (:func:`plan_media`), then run (:func:`run_media`).
    ``video_work(job, encode, progress)`` gets the :class:`~tessera.io.video.EncodeConfig`."""
    check_times(start, end)
    encode = encode_config(crf, preset)
    jobs, video_jobs = plan_media(inputs, output, companions=companions, reads=reads)
    return run_media(jobs, video_jobs, image_work, lambda job, progress: video_work(job, encode, progress), verb, overwrite)


def run_video_jobs(jobs: Sequence[Job], work: Callable[[Job, Callable[[int, int], None]], str | None], verb: str) -> int:
    """Run each video job with a progress bar (frames, frames/s, ETA); one line per failure.
    ``work(job, progress)`` gets a ``progress(done, total)`` callback and may return a note for
    its line. Returns 0 or 1."""
    import time

    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    failures: list[tuple[Path, str]] = []
    for job in jobs:
        with Progress(
            TextColumn(f"[bold]{verb}[/] {job.source.name}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[fps]} frames/s"),
            TimeRemainingColumn(),
            console=console,
            transient=True,
        ) as bar:
            task = bar.add_task(verb, total=None, fps="-")
            t0 = time.perf_counter()

            def progress(done: int, total: int) -> None:
                el = time.perf_counter() - t0
                bar.update(task, completed=done, total=total or None, fps=f"{done / el:.1f}" if el > 0 else "-")

            try:
                note = work(job, progress)
            except KeyboardInterrupt:
                raise
            except Exception as exc:  # one line per file, never a traceback
                failures.append((job.source, _one_line(exc)))
                continue
        console.print(f"{verb}: {job.source} -> {job.target}" + (f" ({note})" if note else ""), highlight=False)
    for path, why in failures:
        console.print(f"[red]failed[/] {path}: {why}", highlight=False)
    return 1 if failures else 0


def encode_config(crf: int, preset: str):
    from tessera.io.video import EncodeConfig

    try:
        return EncodeConfig(crf=crf, preset=preset)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None


def check_times(start: float | None, end: float | None) -> None:
    if start is not None and start < 0:
        raise typer.BadParameter("must be >= 0 seconds", param_hint="--start")
    if start is not None and end is not None and end <= start:
        raise typer.BadParameter("must be after --start", param_hint="--end")


# ----------------------------------------------------------------------------- the commands' video work


def restore_video_job(job: Job, cfg, encode, start, end, progress) -> str | None:
    """`tessera restore` on one video (cfg: cli.restore.RestoreFiles)."""
    from tessera.io.image import read_mask
    from tessera.cli.restore import given_grid
    from tessera.io.video import probe_video
    from tessera.video.pipeline import VideoConfig, restore_video

    if cfg.mask_dir is not None:
        raise ValueError("--mask-dir is for images; give videos one --mask (or none)")
    info = probe_video(job.source)
    mask = read_mask(cfg.mask, shape=(info.height, info.width)) if cfg.mask else None
    grid = given_grid(cfg)
    marks = job.target.with_name(job.target.stem + ".synthesized") if cfg.save_mask else None
    rep = restore_video(job.source, job.target, restore_config=cfg.restore, mask=mask, grid=grid, encode=encode,
                        config=VideoConfig(multiframe=cfg.multiframe), start=start, end=end, overwrite=cfg.overwrite,
                        progress=progress, save_mask=marks)
    if rep.recovered_pixels:
        return f"{100 * rep.recovered_fraction:.1f}% of the restored pixels recovered from other frames, the rest imagined"
    return None


def pixelate_video_job(job: Job, cfg, encode, start, end, progress) -> None:
    """`tessera pixelate` on one video (cfg: cli.pixelate.PixelateConfig)."""
    from tessera.io.image import read_mask
    from tessera.io.video import probe_video
    from tessera.video.pipeline import pixelate_video

    if cfg.save_mask:
        raise ValueError("--save-mask is for images")
    mask = None
    if cfg.mask:
        info = probe_video(job.source)
        mask = read_mask(cfg.mask, shape=(info.height, info.width))
    pixelate_video(job.source, job.target, encode=encode, start=start, end=end, overwrite=cfg.overwrite, progress=progress,
                   mask=mask, boxes=cfg.box, ellipses=cfg.ellipse, faces=cfg.faces, cell=cfg.cell, phase=cfg.phase,
                   sampling=cfg.sampling, feather=cfg.feather, blur=cfg.blur)


def detect_video_job(job: Job, cfg, start, end, overwrite: bool, progress) -> None:
    """`tessera detect` on one video: OUT/NAME.mask.mp4 and OUT/NAME.json (cfg: DetectConfig)."""
    from tessera.video.pipeline import detect_video

    detect_video(job.source, job.target.parent, detect_config=cfg, start=start, end=end, overwrite=overwrite, progress=progress)
