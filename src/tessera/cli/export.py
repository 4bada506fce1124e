"""`tessera export`."""

from __future__ import annotations

from pathlib import Path

import typer

from tessera.cli.app import app, console


@app.command()
def export(
    checkpoint: Path = typer.Argument(..., help="A training checkpoint (RUN/checkpoint.pt)."),
    output: Path = typer.Option(..., "--output", "-o", help="Weight file to write, e.g. my-model.safetensors."),
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
