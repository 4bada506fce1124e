"""`tessera restore`."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import typer

from tessera.cli.app import DISCLAIMER, app, console
from tessera.cli.common import parse_ints, parse_cell, Job, plan_outputs, run_jobs, check_not_input


@dataclass(frozen=True)
class RestoreConfig:
    model: str = "default"
    mask: Path | None = None
    mask_dir: Path | None = None
    cell: tuple[int, int] | None = None
    phase: tuple[int, int] = (0, 0)
    sampling: str = "auto"
    kind: str = "auto"
    feather: int = 0
    save_mask: bool = False
    overwrite: bool = False
    quality: int = 95
    refine: str | None = None  # "patch": neural patch synthesis on the model's output
    iters: int = 100  # dcgan: latent-search steps
    lam: float = 0.003  # dcgan: perceptual-loss weight


MASK_TEXT_KEY = "tessera:synthesized-mask"


def find_mask(job: Job, cfg: RestoreConfig) -> Path | None:
    """The mask for one input: --mask, or the file in --mask-dir with the input's stem (mirrored sub-folder first)."""
    from tessera.io.image import IMAGE_EXTS

    if cfg.mask is not None:
        return cfg.mask
    if cfg.mask_dir is None:
        return None
    stem = job.source.stem
    folders = [cfg.mask_dir / job.rel.parent, cfg.mask_dir] if job.rel is not None else [cfg.mask_dir]
    for folder in folders:
        for ext in sorted(IMAGE_EXTS):
            for name in (f"{stem}{ext}", f"{stem}.mask{ext}"):
                if (folder / name).is_file():
                    return folder / name
    raise ValueError(f"no mask named {stem}.* in {cfg.mask_dir}")


def restore_file(job: Job, cfg: RestoreConfig) -> None:
    from tessera.io.image import ImageWriteError, read_image, read_mask, write_image
    from tessera.mosaic.region import Grid
    from tessera.restore.pipeline import restore_image

    check_not_input(job)
    mask_out = job.target.with_name(job.target.stem + ".synthesized.png")
    if not cfg.overwrite:  # refuse before the work, and before writing either file
        for path in (job.target, mask_out) if cfg.save_mask else (job.target,):
            if path.exists():
                raise ImageWriteError(path, "exists; use --overwrite to replace it")
    rgb, info = read_image(job.source)
    mask_path = find_mask(job, cfg)
    mask = read_mask(mask_path, shape=rgb.shape[:2]) if mask_path else None
    grid = None
    if cfg.cell is not None:
        ch, cw = cfg.cell
        grid = Grid(ch, cw, cfg.phase[0] % ch, cfg.phase[1] % cw, "mean" if cfg.sampling == "auto" else cfg.sampling)  # type: ignore[arg-type]
    from tessera.restore.latent import LatentConfig

    latent = LatentConfig(iters=cfg.iters, lam=cfg.lam)
    result = restore_image(
        rgb, mask, model=cfg.model, grid=grid, kind=cfg.kind, feather=cfg.feather, refine=cfg.refine, latent=latent, sampling=cfg.sampling  # type: ignore[arg-type]
    )
    text = {"tessera:notice": DISCLAIMER, "tessera:model": result.model}
    if cfg.save_mask:
        text[MASK_TEXT_KEY] = mask_out.name
    if cfg.save_mask:  # the mask first: a failure leaves no output that names a missing mask
        write_image(mask_out, result.mask, overwrite=cfg.overwrite)
    write_image(job.target, result.image, alpha=info.alpha, overwrite=cfg.overwrite, quality=cfg.quality, text=text,
                icc_profile=info.icc_profile)


@app.command()
def restore(
    inputs: list[Path] = typer.Argument(..., help="Image files or folders (walked recursively).", show_default=False),
    output: Path = typer.Option(..., "--output", "-o", help="Output file (for one input) or folder (names mirrored)."),
    mask: Optional[Path] = typer.Option(None, "--mask", help="Mask image (white = restore) for every input."),
    mask_dir: Optional[Path] = typer.Option(None, "--mask-dir", help="Folder of masks matched to inputs by file stem."),
    model: str = typer.Option("default", "--model", help="scenes, faces, smooth, telea, ns, dcgan, or a .safetensors file."),
    cell: Optional[str] = typer.Option(None, "--cell", help="Known mosaic cell size N or HxW (else estimated)."),
    phase: str = typer.Option("0,0", "--phase", help="Known grid phase y,x (with --cell)."),
    sampling: str = typer.Option(
        "auto", "--sampling", help="Cell colour: 'mean' of its pixels, its 'centre' pixel, or 'auto' (restore under both, keep the one the result agrees with)."
    ),
    kind: str = typer.Option("auto", "--kind", help="What hides the pixels: auto, mosaic, blur or hole."),
    feather: int = typer.Option(0, "--feather", min=0, help="Blend the restoration in over N pixels inside the mask."),
    save_mask: bool = typer.Option(False, "--save-mask", help="Write NAME.synthesized.png (255 = synthesized) and name it in the output's PNG text."),
    quality: int = typer.Option(95, "--quality", min=1, max=100, help="JPEG/WebP quality of the output."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace existing output files."),
    refine: Optional[str] = typer.Option(None, "--refine", help="Refine the model's output: patch (multi-scale neural patch synthesis)."),
    iters: int = typer.Option(100, "--iters", min=0, help="dcgan: latent-search steps (Adam over z)."),
    lam: float = typer.Option(0.003, "--lam", min=0.0, help="dcgan: weight of the critic's (perceptual) loss."),
) -> None:
    """Restore mosaicked, blurred or missing regions. Without --mask the mosaics are detected.

    Restored pixels are imagined, not recovered: they are not the hidden original.
    """
    from tessera.restore.pipeline import model_names

    if mask is not None and mask_dir is not None:
        raise typer.BadParameter("give --mask or --mask-dir, not both", param_hint="--mask")
    if mask is not None and not mask.is_file():
        raise typer.BadParameter(f"mask {mask} is not a file", param_hint="--mask")
    if mask_dir is not None and not mask_dir.is_dir():
        raise typer.BadParameter(f"{mask_dir} is not a folder", param_hint="--mask-dir")
    if model not in model_names() and not Path(model).is_file():
        raise typer.BadParameter(f"unknown model {model!r}; choose one of {', '.join(model_names())} or a .safetensors file", param_hint="--model")
    if kind not in ("auto", "mosaic", "blur", "hole"):
        raise typer.BadParameter("must be auto, mosaic, blur or hole", param_hint="--kind")
    if refine is not None and refine != "patch":
        raise typer.BadParameter("must be patch", param_hint="--refine")
    if sampling not in ("auto", "mean", "centre", "center"):
        raise typer.BadParameter("must be 'auto', 'mean' or 'centre'", param_hint="--sampling")
    cfg = RestoreConfig(
        model=model,
        mask=mask,
        mask_dir=mask_dir,
        cell=parse_cell(cell) if cell else None,
        phase=parse_ints(phase, 2, "--phase"),  # type: ignore[arg-type]
        sampling="centre" if sampling == "center" else sampling,
        kind=kind,
        feather=feather,
        save_mask=save_mask,
        overwrite=overwrite,
        quality=quality,
        refine=refine,
        iters=iters,
        lam=lam,
    )
    jobs = plan_outputs(inputs, output)
    code = run_jobs(jobs, lambda job: restore_file(job, cfg), "restore")
    console.print(f"[dim]{DISCLAIMER}[/]", highlight=False)
    raise typer.Exit(code)
