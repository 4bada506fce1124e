"""`tessera eval`."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from tessera.cli.app import app, console
from tessera.cli.common import _one_line, build_config, split_list


@app.command("eval")
def eval_(
    data: Path = typer.Option(..., "--data", help="Folder of clean photos to make seeded test cases from."),
    models: str = typer.Option("smooth,telea,ns,default", "--models", help="Comma-separated model names or .safetensors files."),
    output: Path = typer.Option(Path("eval"), "--output", "-o", help="Report folder: report.md, scores.json, psnr.png, samples.png."),
    cases: int = typer.Option(40, "--cases", min=1, max=100_000, help="Number of seeded cases."),
    seed: int = typer.Option(0, "--seed", help="Seed of the case generator."),
    kinds: str = typer.Option(",".join(("box", "ellipse", "polygon", "rect", "border")), "--kinds", help="Case generators (see tessera.mosaic.synth)."),
    jpeg: Optional[int] = typer.Option(None, "--jpeg", min=1, max=100, help="JPEG-compress the degraded inputs at this quality."),
    auto: bool = typer.Option(False, "--auto", help="Also restore with detected masks instead of the true ones."),
    niqe: bool = typer.Option(False, "--niqe", help="Also score NIQE (naturalness, lower is better) of each region and of the original."),
    critic_data: Optional[Path] = typer.Option(None, "--critic-data", help="Folder of other photos (e.g. a train folder): a fresh critic learns to tell real from restored crops of cases made from them, then is scored on --data's cases (50 % = indistinguishable)."),
    critic_cases: int = typer.Option(40, "--critic-cases", min=1, help="Cases the two-sample critic trains on."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace the files of an existing report in OUTPUT."),
    zoo: str = typer.Option("", "--zoo", help="Comma-separated zoo generators (mosaics as other tools make them; 'all' for every one): --cases cases per generator x format instead of --kinds."),
    formats: str = typer.Option("png", "--formats", help="With --zoo: comma-separated output formats of the cases (png, jpeg, jpeg444, h264)."),
    redaction: str = typer.Option("", "--redaction", help="Comma-separated redaction methods (blur, mosaic, solid; 'all'): the faces of the first --cases photos hidden by each and attacked by our restorer (PSNR, dlib re-identification; a section of report.md, redaction.json)."),
    redaction_cells: str = typer.Option("auto", "--redaction-cells", help="With --redaction: comma-separated cell sizes in pixels (blur: 2 x sigma) or 'auto'."),
    video_frames: int = typer.Option(24, "--video-frames", min=2, max=10_000, help="Videos in --data: frames of each scored (a fixed seeded mosaic box; PSNR and flicker, frame by frame against the default temporal + multi-frame restoration; video.md, video.json)."),
) -> None:
    """Score models against each other on seeded synthetic mosaics: PSNR and SSIM inside the
    region, blockiness, re-mosaic residual, detail ratio and time (NIQE and a two-sample critic
    on request), with a chart and a sample sheet. A --data folder of videos is scored over time
    instead: PSNR and flicker in a fixed mosaic box, frame by frame and with the default video restoration."""
    from rich.progress import Progress

    from tessera.evaluate import EvalConfig, markdown_table, run_eval
    from tessera.evaluate.report import refuse_existing_report
    from tessera.io.image import ImageIOError

    if data.is_dir() and _videos_in(data):  # a folder of clean videos: restoration over time
        _eval_videos(_videos_in(data), split_list(models), output, video_frames, seed, overwrite)
        return
    cfg = build_config(
        EvalConfig, data=data, models=split_list(models), output=output, cases=cases, seed=seed, kinds=split_list(kinds), jpeg=jpeg,
        auto=auto, niqe=niqe, critic_data=critic_data, critic_cases=critic_cases, overwrite=overwrite, zoo=split_list(zoo),
        formats=split_list(formats), redaction=_redaction_methods(redaction), redaction_cells=_cells(redaction_cells),
    )
    try:
        refuse_existing_report(output, overwrite)
    except FileExistsError as exc:
        raise typer.BadParameter(str(exc), param_hint="--output") from None
    with Progress(console=console, transient=True) as progress:
        task = progress.add_task("eval", total=cfg.total_steps())
        try:
            summary, _ = run_eval(cfg, progress=lambda _msg: progress.advance(task))
        except (ValueError, OSError, ImageIOError) as exc:  # missing weights, no readable photos, unwritable report
            console.print(f"[red]error:[/] {_one_line(exc)}", highlight=False, soft_wrap=True)
            raise typer.Exit(1) from None
    typer.echo(markdown_table(summary))
    if cfg.redaction:
        _echo_redaction(output)
    console.print(f"report written to {output}/report.md", highlight=False)


def _redaction_methods(text: str) -> tuple[str, ...]:
    from tessera.anonymize import METHODS

    return METHODS if text.strip().lower() == "all" else split_list(text)


def _cells(text: str) -> tuple[int | None, ...]:
    from tessera.cli.anonymize import parse_cell

    cells = tuple(dict.fromkeys(parse_cell(c, "--redaction-cells") for c in split_list(text)))
    if not cells:
        raise typer.BadParameter("name at least one cell size or 'auto'", param_hint="--redaction-cells")
    return cells


def _echo_redaction(output: Path) -> None:
    """The redaction section as written (and a warning when dlib could not check identities)."""
    import json

    from tessera.evaluate.redaction import redaction_markdown

    doc = json.loads((output / "redaction.json").read_text())
    typer.echo(redaction_markdown(doc))
    if doc["identity"]:
        from rich.markup import escape

        console.print(f"[yellow]warning:[/] identities not checked: {escape(doc['identity'])}", highlight=False)


def _videos_in(folder: Path) -> list[Path]:
    from tessera.io.video import VIDEO_EXTS

    return sorted(p for p in folder.iterdir() if p.suffix.lower() in VIDEO_EXTS and p.is_file())


def _eval_videos(videos: list[Path], models, output: Path, frames: int, seed: int, overwrite: bool) -> None:
    from tessera.video.evaluate import eval_videos, markdown

    try:
        rows = eval_videos(videos, list(models), output, frames=frames, seed=seed, overwrite=overwrite)
    except (ValueError, OSError) as exc:
        console.print(f"[red]error:[/] {_one_line(exc)}", highlight=False, soft_wrap=True)
        raise typer.Exit(1) from None
    typer.echo(markdown(rows))
    console.print(f"report written to {output}/video.md", highlight=False)
