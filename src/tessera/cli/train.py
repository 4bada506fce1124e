"""`tessera train`."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Optional

import typer

from tessera.cli.app import app, console
from tessera.cli.common import build_config, parse_ints, parse_json_object, usage_check


#: Config fields whose flag has another name.
FLAGS = {"model_kwargs": "--kwargs/--width", "d_base": "--d-width", "name": "--recipe"}


@app.command()
def train(
    model: str = typer.Option("unet", "--model", help="Model to train: unet, pix2pix, deepfill (restorers), dcgan (64x64 image generator: --crop 64) or segnet (the mosaic detector)."),
    data: Path = typer.Option(..., "--data", help="Folder of training photos (walked recursively)."),
    out: Path = typer.Option(..., "--out", help="Run folder: checkpoint.pt, metrics.jsonl, tb/, samples/."),
    val: Optional[Path] = typer.Option(None, "--val", help="Folder of validation photos (PSNR/SSIM inside the region)."),
    preset: str = typer.Option("paper", "--preset", help="Model size: paper, small (CPU, <= 30 MB) or tiny."),
    width: Optional[int] = typer.Option(None, "--width", min=2, max=4096, help="Base channels (overrides the preset)."),
    d_width: int = typer.Option(64, "--d-width", min=2, max=4096, help="Base channels of the discriminator / critics."),
    kwargs: str = typer.Option("{}", "--kwargs", help='More model kwargs as JSON, e.g. \'{"depth": 6}\'.'),
    steps: int = typer.Option(100_000, "--steps", min=1, max=1_000_000_000, help="Total optimizer steps."),
    batch: int = typer.Option(16, "--batch", min=1, max=4096, help="Images per step per process."),
    crop: int = typer.Option(256, "--crop", min=8, max=4096, help="Training crop size in pixels."),
    region: int = typer.Option(128, "--region", min=4, max=4096, help="Largest side of the hidden region."),
    cell: int = typer.Option(12, "--cell", min=1, max=4096, help="Most likely mosaic cell size (pixels)."),
    cell_range: str = typer.Option("4,24", "--cell-range", help="Smallest,largest mosaic cell size."),
    lr: float = typer.Option(1e-4, "--lr", help="Adam learning rate of every network."),
    resume: bool = typer.Option(False, "--resume", help="Continue OUT/checkpoint.pt at its step."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Start afresh in an OUT that already holds a run (its checkpoint is replaced)."),
    init: Optional[Path] = typer.Option(None, "--init", help="Fine-tune: start the generator from these weights (a .safetensors file or a shipped name): the same model and kwargs, or a U-Net grown by more residual blocks (--kwargs '{\"blocks\": [0, 1, 2, 2, 1]}')."),
    recipe: str = typer.Option("", "--recipe", help="Training recipe: the model's own (default) or gan (adversarial fine-tuning of --init weights: L1 + feature matching + spectral PatchGAN)."),
    minutes: Optional[float] = typer.Option(None, "--minutes", min=0, help="Stop cleanly with a checkpoint after this many minutes (continue with --resume)."),
    device: str = typer.Option("auto", "--device", help="auto, cpu, cuda or cuda:N."),
    amp: str = typer.Option("none", "--amp", help="Autocast: none, bf16 or fp16."),
    channels_last: bool = typer.Option(False, "--channels-last", help="channels_last memory format."),
    compile: bool = typer.Option(False, "--compile", help="torch.compile the generator."),
    augment: bool = typer.Option(True, "--augment/--no-augment", help="Rotation, flip, shear and zoom."),
    small: str = typer.Option("upscale", "--small", help="Images smaller than the crop: upscale or skip."),
    workers: int = typer.Option(2, "--workers", min=0, max=256, help="Data loader processes."),
    threads: Optional[int] = typer.Option(None, "--threads", min=1, max=4096, help="torch CPU threads."),
    seed: int = typer.Option(0, "--seed", help="Seed of initialization, data and augmentation."),
    log_every: int = typer.Option(10, "--log-every", min=1, max=1_000_000_000),
    eval_every: int = typer.Option(500, "--eval-every", min=1, max=1_000_000_000),
    sample_every: int = typer.Option(500, "--sample-every", min=1, max=1_000_000_000),
    ckpt_every: int = typer.Option(500, "--ckpt-every", min=1, max=1_000_000_000),
) -> None:
    """Train a restoration model on a folder of photos (several processes: torchrun --nproc_per_node N -m tessera train ...)."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

    from tessera.train.loop import TrainConfig, fit
    from tessera.train.recipes import RecipeConfig

    cfg = build_config(
        TrainConfig, flags=FLAGS, data=data, out=out, model=model, val=val, preset=preset, width=width, model_kwargs=parse_json_object(kwargs, "--kwargs"),
        steps=steps, batch=batch, crop=crop, region=region, cell=cell, cell_range=parse_ints(cell_range, 2, "--cell-range", lo=1, hi=4096),
        lr=lr, seed=seed, device=device, amp=amp, channels_last=channels_last, compile=compile, augment=augment, small=small,
        workers=workers, threads=threads, log_every=log_every, eval_every=eval_every, sample_every=sample_every, ckpt_every=ckpt_every,
        resume=resume, overwrite=overwrite, init=init, minutes=minutes,
        recipe=build_config(RecipeConfig, flags=FLAGS, d_base=d_width, name=recipe),
    )
    usage_check(cfg.refuse_existing_run, FLAGS)
    with Progress(
        TextColumn(f"[bold]train {model}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        TextColumn("{task.fields[losses]}"),
        console=console,
        disable=os.environ.get("RANK", "0") != "0",  # one bar, from rank 0, under torchrun
    ) as progress:
        task = progress.add_task("train", total=steps, losses="")

        def on_step(step: int, total: int, losses: dict) -> None:
            text = " ".join(f"{k}={v:.4g}" for k, v in losses.items())
            progress.update(task, completed=step, losses=text)

        summary = fit(cfg, on_step)
    scores = " ".join(f"{k}={v:.4g}" for k, v in summary["val"].items())
    if os.environ.get("RANK", "0") != "0":
        return
    if summary.get("timed_out"):
        console.print(f"stopped at the time limit at step {summary['step']}; checkpoint saved to {summary['checkpoint']} (continue with --resume)")
        return
    if summary["interrupted"]:
        console.print(f"interrupted at step {summary['step']}; checkpoint saved to {summary['checkpoint']} (continue with --resume)")
        raise typer.Exit(130)
    console.print(f"trained {model} to step {summary['step']}; checkpoint {summary['checkpoint']} {scores}", highlight=False)
