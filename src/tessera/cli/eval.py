"""`tessera eval`."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from tessera.cli.app import app, console
from tessera.cli.common import _one_line


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
) -> None:
    """Score models against each other on seeded synthetic mosaics: PSNR and SSIM inside the
    region, blockiness, re-mosaic residual, detail ratio and time (NIQE and a two-sample critic
    on request), with a chart and a sample sheet."""
    from rich.progress import Progress

    from tessera.io.image import ImageIOError
    from tessera.evaluate import REPORT_FILES, EvalConfig, markdown_table, run_eval
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
    if critic_data is not None and not critic_data.is_dir():
        raise typer.BadParameter(f"{critic_data} is not a folder", param_hint="--critic-data")
    from tessera.mosaic.synth import ZOO, ZOO_FORMATS

    zoo_list = tuple(ZOO) if zoo.strip() == "all" else tuple(g.strip() for g in zoo.split(",") if g.strip())
    fmt_list = tuple(f.strip() for f in formats.split(",") if f.strip())
    if [g for g in zoo_list if g not in ZOO]:
        raise typer.BadParameter(f"choose zoo generators from {', '.join(ZOO)} or all", param_hint="--zoo")
    if not fmt_list or [f for f in fmt_list if f not in ZOO_FORMATS]:
        raise typer.BadParameter(f"choose formats from {', '.join(ZOO_FORMATS)}", param_hint="--formats")
    if output.exists() and not output.is_dir():
        raise typer.BadParameter(f"{output} is a file; the report needs a folder", param_hint="--output")
    for m in names:
        base = m.removesuffix("+patch")  # MODEL+patch: MODEL refined by neural patch synthesis
        if base not in model_names() and not Path(base).is_file():
            raise typer.BadParameter(f"unknown model {m!r}; choose from {', '.join(model_names())} (+patch)", param_hint="--models")
    there = [name for name in REPORT_FILES if (output / name).is_symlink() or (output / name).exists()]
    if there and not overwrite:
        raise typer.BadParameter(f"{output} already holds a report ({', '.join(there)}); use --overwrite to replace it", param_hint="--output")
    cfg = EvalConfig(
        data=data, models=names, output=output, cases=cases, seed=seed, kinds=kind_list, jpeg=jpeg, auto=auto,
        niqe=niqe, critic_data=critic_data, critic_cases=critic_cases, overwrite=overwrite, zoo=zoo_list, formats=fmt_list,
    )
    total = cases * len(names) * (2 if auto else 1) * (len(zoo_list) * len(fmt_list) if zoo_list else 1) + (len(names) if critic_data is not None else 0)
    with Progress(console=console, transient=True) as progress:
        task = progress.add_task("eval", total=total)
        try:
            summary, _ = run_eval(cfg, progress=lambda _msg: progress.advance(task))
        except (ValueError, OSError, ImageIOError) as exc:  # missing weights, no readable photos, unwritable report
            console.print(f"[red]error:[/] {_one_line(exc)}", highlight=False, soft_wrap=True)
            raise typer.Exit(1) from None
    typer.echo(markdown_table(summary))
    console.print(f"report written to {output}/report.md", highlight=False)
