"""`tessera export`."""

from __future__ import annotations

from pathlib import Path

import typer

from tessera.cli.app import app, console
from tessera.cli.common import _one_line


@app.command()
def export(
    checkpoint: Path = typer.Argument(..., help="A training checkpoint (RUN/checkpoint.pt)."),
    output: Path = typer.Option(..., "--output", "-o", help="Weight file to write, e.g. my-model.safetensors."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace an existing weight file."),
) -> None:
    """Write a checkpoint's generator as safetensors weights (+ model name and kwargs)."""
    from tessera.io.image import ImageIOError, same_file
    from tessera.train.loop import TrainError, export_checkpoint
    from tessera.weights import WeightsError

    if not checkpoint.is_file():
        raise typer.BadParameter(f"{checkpoint} is not a file", param_hint="CHECKPOINT")
    if (output.exists() or output.is_symlink()) and same_file(output, checkpoint):
        raise typer.BadParameter(f"{output} is the checkpoint being read; choose another output", param_hint="--output")
    if output.is_symlink():
        raise typer.BadParameter(f"{output} is a symbolic link; refusing to write through it", param_hint="--output")
    if output.exists() and not overwrite:
        raise typer.BadParameter(f"{output} exists (use --overwrite)", param_hint="--output")
    try:
        path = export_checkpoint(checkpoint, output, overwrite=overwrite)
    except (TrainError, WeightsError, ImageIOError) as exc:
        console.print(f"[red]error:[/] {_one_line(exc)}", highlight=False, soft_wrap=True)
        raise typer.Exit(1) from None
    console.print(f"wrote {path} ({path.stat().st_size / 1e6:.1f} MB)", highlight=False)
