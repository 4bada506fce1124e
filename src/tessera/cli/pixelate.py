"""`tessera pixelate`."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import typer

from tessera.cli.app import app
from tessera.cli.common import Job, check_number, companion, parse_cell, parse_ints
from tessera.mosaic.region import parse_sampling, sampling_help


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
    jpeg_quality: int = 95
    save_mask: bool = False
    faces: bool = False


MAX_FEATHER = 4096  # pixels
MAX_BLUR = 200.0  # sigma in pixels: a kernel of about 1200 px


def pixelate_file(job: Job, cfg: PixelateConfig) -> None:
    from tessera.io.image import PAIR_KEY, image_writer, read_image, read_mask, write_files
    from tessera.mosaic.pixelate import pixelate

    rgb, info = read_image(job.source)
    mask = read_mask(cfg.mask, shape=rgb.shape[:2]) if cfg.mask else None
    if mask is not None and mask.all():
        from tessera.cli.app import console

        console.print(f"[yellow]warning:[/] {cfg.mask}: the mask is white everywhere, so the whole of {job.source.name} is pixelated", highlight=False, soft_wrap=True)
    ellipses = list(cfg.ellipse)
    if cfg.faces:
        from tessera.detect.faces import find_faces, hiding_scale

        faces = find_faces(rgb, scale=hiding_scale(*rgb.shape[:2]))  # a photo: small faces count
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
    del rgb, mask
    items = []
    if cfg.save_mask:  # the mask first, naming its image: a crash leaves a mask the rerun knows as its own
        (mask_file,) = job.companions
        items.append((mask_file, image_writer(mask_file, changed, text={PAIR_KEY: job.target.name})))
    items.append((job.target, image_writer(job.target, out, alpha=info.alpha, quality=cfg.jpeg_quality, icc_profile=info.icc_profile)))
    write_files(items, overwrite=job.overwrite_flags())


@app.command()
def pixelate(
    inputs: list[Path] = typer.Argument(..., help="Image files or folders (walked recursively).", show_default=False),
    output: Path = typer.Option(..., "--output", "-o", help="Output file (for one input) or folder (names mirrored)."),
    box: list[str] = typer.Option([], "--box", help="Region x,y,w,h in pixels; repeatable."),
    ellipse: list[str] = typer.Option([], "--ellipse", help="Ellipse inside the box x,y,w,h; repeatable."),
    mask: Optional[Path] = typer.Option(None, "--mask", help="Mask image (white = pixelate), same size as every input."),
    cell: str = typer.Option("12", "--cell", help="Cell size N or HxW in pixels, e.g. 12 or 12x18."),
    phase: str = typer.Option("0,0", "--phase", help="Grid phase y,x: where cell edges fall."),
    sampling: str = typer.Option("mean", "--sampling", help=f"What a cell holds: {sampling_help()}."),
    feather: int = typer.Option(0, "--feather", min=0, max=MAX_FEATHER, help="Blend the mosaic edge into the image over N pixels."),
    blur: Optional[float] = typer.Option(None, "--blur", help="Gaussian blur with this sigma instead of cells."),
    jpeg_quality: int = typer.Option(95, "--jpeg-quality", min=1, max=100, help="JPEG/WebP quality of the output (as on restore; PNG keeps every pixel exact)."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace existing output files."),
    save_mask: bool = typer.Option(False, "--save-mask", help="Also write NAME.mask.png (255 = pixelated)."),
    faces: bool = typer.Option(False, "--faces", help="Also pixelate the faces CenterFace finds (OpenCV's Haar cascades when it is not installed; check the result)."),
    crf: int = typer.Option(18, "--crf", min=0, max=51, help="Videos: libx264 quality (0 lossless .. 51; lower = better, bigger)."),
    preset: str = typer.Option("medium", "--preset", help="Videos: libx264 preset (ultrafast .. veryslow)."),
    start: Optional[float] = typer.Option(None, "--start", help="Videos: first second to process and keep."),
    end: Optional[float] = typer.Option(None, "--end", help="Videos: second to stop at."),
) -> None:
    """Add a mosaic (or a blur) to regions of images. Without --box/--ellipse/--mask/--faces the whole image."""
    try:
        sampling = parse_sampling(sampling)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--sampling") from None
    check_number(blur, "--blur", 0.0, MAX_BLUR, open_lo=True)
    if mask is not None and not mask.is_file():
        raise typer.BadParameter(f"mask {mask} is not a file", param_hint="--mask")
    cfg = PixelateConfig(
        box=tuple(parse_ints(b, 4, "--box") for b in box),  # type: ignore[misc]
        ellipse=tuple(parse_ints(e, 4, "--ellipse") for e in ellipse),  # type: ignore[misc]
        mask=mask,
        cell=parse_cell(cell),
        phase=parse_ints(phase, 2, "--phase"),  # type: ignore[arg-type]
        sampling=sampling,
        feather=feather,
        blur=blur,
        overwrite=overwrite,
        jpeg_quality=jpeg_quality,
        save_mask=save_mask,
        faces=faces,
    )
    from tessera.cli import videos

    raise typer.Exit(videos.run_file_command(
        inputs, output, "pixelate", lambda job: pixelate_file(job, cfg), lambda job, enc, p: videos.pixelate_video_job(job, cfg, enc, start, end, p),
        crf=crf, preset=preset, start=start, end=end, overwrite=overwrite, reads=[mask] if mask else [],
        companions=(lambda t, full: (companion(t, ".mask.png", full),)) if save_mask else None,
    ))
