"""`tessera export`."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from tessera.cli.app import app, console
from tessera.cli.common import _one_line


@app.command()
def export(
    source: str = typer.Argument(
        ..., metavar="SOURCE",
        help="A training checkpoint (RUN/checkpoint.pt); with --onnx a weight file or a shipped name (scenes, faces, detector).",
    ),
    output: Optional[Path] = typer.Option(
        None, "--output", "-o", help="File to write: NAME.safetensors, or with --onnx NAME.onnx (default: the ONNX cache)."
    ),
    onnx: bool = typer.Option(False, "--onnx", help="Export weights to ONNX (dynamic batch, height and width) for the ONNX Runtime backend."),
    exporter: str = typer.Option("auto", "--exporter", help="With --onnx: torchscript (seconds), dynamo (slower to export), or auto (the first, then the second)."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace an existing output file."),
) -> None:
    """Write a checkpoint's generator as safetensors weights (+ model name and kwargs), or (--onnx)
    weights as an ONNX graph checked against PyTorch (max difference <= 1e-3).

    Without -o, --onnx fills the cache that restore and detect read (nothing is ever downloaded)."""
    if onnx:
        _export_onnx(source, output, exporter, overwrite)
        return
    from tessera.io.image import ImageIOError, same_file
    from tessera.train.loop import TrainError, export_checkpoint
    from tessera.weights import WeightsError

    checkpoint = Path(source)
    if not checkpoint.is_file():
        raise typer.BadParameter(f"{checkpoint} is not a file", param_hint="SOURCE")
    if output is None:
        raise typer.BadParameter("give the weight file to write", param_hint="--output")
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


def _export_onnx(source: str, output: Path | None, exporter: str, overwrite: bool) -> None:
    from tessera.restore.backend import export_onnx
    from tessera.weights import WeightsError, resolve

    if exporter not in ("auto", "torchscript", "dynamo"):
        raise typer.BadParameter("must be auto, torchscript or dynamo", param_hint="--exporter")
    try:
        resolve(source)
    except WeightsError as exc:
        raise typer.BadParameter(str(exc), param_hint="SOURCE") from None
    if output is not None and output.suffix.lower() != ".onnx":
        raise typer.BadParameter(f"{output} must end in .onnx", param_hint="--output")
    if output is not None and output.exists() and not overwrite:
        raise typer.BadParameter(f"{output} exists (use --overwrite)", param_hint="--output")
    with console.status(f"exporting {source} to ONNX"):
        path = export_onnx(source, output, exporter=exporter, overwrite=overwrite)
    console.print(f"wrote {path} ({path.stat().st_size / 1e6:.1f} MB)", highlight=False)
