"""`tessera restore`."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import typer

from tessera.restore.marking import MASK_SUFFIX, NOTICE
from tessera.restore.pipeline import RestoreConfig
from tessera.cli.app import app, console
from tessera.cli.common import Job, check_number, companion, mask_dir_files, parse_cell, parse_ints
from tessera.mosaic.region import Grid, parse_sampling, sampling_help


@dataclass(frozen=True)
class RestoreFiles:
    """The command's own fields (where masks come from, how outputs are written); how to restore
    is the library's :class:`tessera.restore.pipeline.RestoreConfig`."""

    restore: RestoreConfig = RestoreConfig()
    mask: Path | None = None
    mask_dir: Path | None = None
    cell: tuple[int, int] | None = None
    phase: tuple[int, int] = (0, 0)
    save_mask: bool = False
    overwrite: bool = False
    jpeg_quality: int = 95
    multiframe: str = "auto"


def find_mask(job: Job, cfg: RestoreFiles) -> Path | None:
    """The mask for one input: --mask, or the file in --mask-dir named after the input (mirrored
    sub-folder first): ``NAME.mask.*`` (what `tessera detect` writes, also with the input's full
    name), then ``NAME.*``, never the input itself."""
    from tessera.io.image import IMAGE_EXTS, same_file

    if cfg.mask is not None:
        return cfg.mask
    if cfg.mask_dir is None:
        return None
    stem = job.source.stem
    folders = [cfg.mask_dir / job.rel.parent, cfg.mask_dir] if job.rel is not None else [cfg.mask_dir]
    exts = sorted(IMAGE_EXTS)
    names = [f"{job.source.name}.mask.png", *(f"{stem}.mask{ext}" for ext in exts), *(f"{stem}{ext}" for ext in exts)]
    plain = set(names[1 + len(exts):])
    for folder in folders:
        beside_input = same_file(folder, job.source.parent)  # masks and photos in one folder: only NAME.mask.*
        for name in names:
            p = folder / name
            if beside_input and name in plain:
                continue
            if p.is_file() and not same_file(p, job.source):
                return p
    raise ValueError(f"no mask named {stem}.mask.* or {stem}.* in {cfg.mask_dir}")


MAX_FEATHER = 4096  # pixels
MAX_ITERS = 100_000


def given_grid(cfg: RestoreFiles):
    """The lattice the user gave (--cell, --phase, --sampling; 'auto' sampling starts from 'mean'), else None."""
    if cfg.cell is None:
        return None
    ch, cw = cfg.cell
    sampling = "mean" if cfg.restore.sampling in (None, "auto") else cfg.restore.sampling
    return Grid(ch, cw, cfg.phase[0] % ch, cfg.phase[1] % cw, sampling)  # type: ignore[arg-type]


def restore_file(job: Job, cfg: RestoreFiles) -> None:
    from tessera.io.image import read_image, read_mask
    from tessera.restore.marking import write_restoration
    from tessera.restore.pipeline import restore_image

    rgb, info = read_image(job.source)
    mask_path = find_mask(job, cfg)
    mask = read_mask(mask_path, shape=rgb.shape[:2]) if mask_path else None
    if mask is not None and mask.all():
        console.print(f"[yellow]warning:[/] {mask_path}: the mask is white everywhere, so the whole of {job.source.name} is synthesized",
                      highlight=False, soft_wrap=True)
    grid = given_grid(cfg)
    result = restore_image(rgb, mask, config=cfg.restore, grid=grid)  # run_jobs checked the outputs before this work
    del rgb, mask
    write_restoration(  # the mask first, naming its image; both checked before either is written
        job.target, result.image, result.mask, result.model, save_mask=cfg.save_mask, overwrite=job.overwrite_flags(),
        quality=cfg.jpeg_quality, alpha=info.alpha, icc_profile=info.icc_profile, mask_target=job.companions[0] if cfg.save_mask else None,
    )


@app.command()
def restore(
    inputs: list[Path] = typer.Argument(..., help="Image or video files, or folders (walked recursively).", show_default=False),
    output: Path = typer.Option(..., "--output", "-o", help="Output file (for one input) or folder (names mirrored)."),
    mask: Optional[Path] = typer.Option(None, "--mask", help="Mask image (white = restore) for every input (every frame of a video)."),
    mask_dir: Optional[Path] = typer.Option(None, "--mask-dir", help="Folder of masks matched to inputs by file stem."),
    model: str = typer.Option("default", "--model", help="auto (the default: faces for regions that hide a face, else scenes), scenes, faces, smooth, telea, ns, dcgan, or a .safetensors file."),
    cell: Optional[str] = typer.Option(None, "--cell", help="Known mosaic cell size N or HxW (else estimated)."),
    phase: str = typer.Option("0,0", "--phase", help="Known grid phase y,x (with --cell)."),
    sampling: str = typer.Option(
        "auto", "--sampling", help="What a mosaic cell holds: 'auto' (project the restoration under 'mean' and 'centre', keep the one "
        f"it agrees with), or the tool's own when known: {sampling_help()}."
    ),
    kind: str = typer.Option("auto", "--kind", help="What hides the pixels: auto, mosaic, blur or hole."),
    feather: int = typer.Option(0, "--feather", min=0, max=MAX_FEATHER, help="Blend the restoration in over N pixels inside the mask."),
    save_mask: bool = typer.Option(
        False, "--save-mask", help="Images: write NAME.synthesized.png (255 = synthesized) and name it in the output's PNG text. "
        "Videos: write the folder NAME.synthesized/ beside the output, one grey PNG per frame (000000.png ...: 255 imagined, "
        "128 recovered by --multiframe, 0 unchanged) and summary.json (pixel counts per frame, recovered fraction)."),
    multiframe: str = typer.Option(
        "auto", "--multiframe", help="Videos: 'auto' recovers what a fixed mosaic hides from the frames in which the content "
        "moves under it (computed, marked recovered), frame by frame with temporal smoothing elsewhere; 'off': frame by frame only."),
    quality: str = typer.Option(
        "balanced", "--quality", help="fast (1 model pass per crop), balanced (2: the crop and its mirror image, averaged) or best (4 flipped copies)."
    ),
    backend: str = typer.Option("auto", "--backend", help="Run the networks with auto (ONNX Runtime when installed, else PyTorch), torch or onnx."),
    jpeg_quality: int = typer.Option(95, "--jpeg-quality", min=1, max=100, help="JPEG/WebP quality of the output. A JPEG output re-encodes the whole photo (pixels outside the mask change a little); write .png to keep them exact."),
    unfeather: bool = typer.Option(True, "--unfeather/--no-unfeather", help="Keep the photo still visible in a feathered mosaic's edge (estimated feather weights)."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace existing output files."),
    refine: Optional[str] = typer.Option(None, "--refine", help="Refine the model's output: patch (multi-scale neural patch synthesis)."),
    iters: int = typer.Option(100, "--iters", min=0, max=MAX_ITERS, help="dcgan: latent-search steps (Adam over z)."),
    lam: float = typer.Option(0.003, "--lam", min=0.0, help="dcgan: weight of the critic's (perceptual) loss."),
    crf: int = typer.Option(18, "--crf", min=0, max=51, help="Videos: libx264 quality (0 lossless .. 51; lower = better, bigger)."),
    preset: str = typer.Option("medium", "--preset", help="Videos: libx264 preset (ultrafast .. veryslow)."),
    start: Optional[float] = typer.Option(None, "--start", help="Videos: first second to process and keep."),
    end: Optional[float] = typer.Option(None, "--end", help="Videos: second to stop at."),
) -> None:
    """Restore mosaicked, blurred or missing regions. Without --mask the mosaics are detected.

    Restored pixels are imagined, not recovered: they are not the hidden original.
    """
    if mask is not None and mask_dir is not None:
        raise typer.BadParameter("give --mask or --mask-dir, not both", param_hint="--mask")
    if mask is not None and not mask.is_file():
        raise typer.BadParameter(f"mask {mask} is not a file", param_hint="--mask")
    if mask_dir is not None and not mask_dir.is_dir():
        raise typer.BadParameter(f"{mask_dir} is not a folder", param_hint="--mask-dir")
    check_number(lam, "--lam", 0.0, 1e6)
    if multiframe not in ("off", "auto"):
        raise typer.BadParameter("must be off or auto", param_hint="--multiframe")
    try:
        restore_cfg = RestoreConfig(
            model=model, kind=kind, sampling=parse_sampling(sampling, ("auto",)),  # type: ignore[arg-type]
            feather=feather, refine=refine, iters=iters, lam=lam, quality=quality, backend=backend, unfeather=unfeather,
        )
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None
    cfg = RestoreFiles(
        restore=restore_cfg,
        mask=mask,
        mask_dir=mask_dir,
        cell=parse_cell(cell) if cell else None,
        phase=parse_ints(phase, 2, "--phase"),  # type: ignore[arg-type]
        save_mask=save_mask,
        overwrite=overwrite,
        jpeg_quality=jpeg_quality,
        multiframe=multiframe,
    )
    from tessera.cli import videos

    code = videos.run_file_command(
        inputs, output, "restore", lambda job: restore_file(job, cfg), lambda job, enc, p: videos.restore_video_job(job, cfg, enc, start, end, p),
        crf=crf, preset=preset, start=start, end=end, overwrite=overwrite,
        reads=[p for p in (mask, Path(model)) if p is not None and p.is_file()] + mask_dir_files(mask_dir),
        companions=(lambda t, full: (companion(t, MASK_SUFFIX, full),)) if save_mask else None,
    )
    console.print(f"[dim]{NOTICE}[/]", highlight=False)
    raise typer.Exit(code)
