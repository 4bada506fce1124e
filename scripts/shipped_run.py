"""What the scripts behind the shipped weights share: the data folders, the run flags, the
degradation mix and the run's TrainConfig (train_restore_weights.py, train_gan_weights.py,
train_source_weights.py; each adds only what its recipe decides)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from tessera.train.data import DegradeConfig
from tessera.train.loop import TrainConfig

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
MIX = (0.8, 0.15, 0.05)  # mosaic, holes, blur: the shipped restorers' mix


def add_run_flags(ap: argparse.ArgumentParser, *, steps: int, lr: float, batch: int) -> None:
    """The flags every shipped run has (defaults per script)."""
    ap.add_argument("--steps", type=int, default=steps)
    ap.add_argument("--minutes", type=float, help="stop cleanly (checkpoint) after this many minutes; --resume continues")
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--lr", type=float, default=lr)
    ap.add_argument("--batch", type=int, default=batch)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--device", default="auto")
    ap.add_argument("--resume", action="store_true")
    ap.add_argument("--region", type=int, default=96, help="largest side of a hidden region (pixels of the 128-px crop)")


def degradations(args: argparse.Namespace, *, kinds: tuple[float, ...] = MIX, cell: int = 12, centre_prob: float = 0.3, zoo_prob: float = 0.0) -> DegradeConfig:
    """The shipped runs' degradations: cells 4-32 px (triangular, mode ``cell``), JPEG 50-95 on 30 %."""
    return DegradeConfig(
        zoo_prob=zoo_prob, region=args.region, cell=cell, cell_range=(4, 32), centre_prob=centre_prob,
        kind_weights=kinds, jpeg_prob=0.3, jpeg_quality=(50, 95),
    )


def run_config(args: argparse.Namespace, set_name: str, degrade: DegradeConfig, **fields: Any) -> TrainConfig:
    """The TrainConfig of a shipped run on ../shared/data/SET (128-px crops, LR decay over the second
    half); ``fields`` give the model, its kwargs, the recipe, the init and any other field."""
    base: dict[str, Any] = dict(
        data=DATA / set_name / "train", val=DATA / set_name / "val", out=args.out, steps=args.steps, batch=args.batch,
        crop=128, region=args.region, cell_range=(4, 32), lr=args.lr, decay_from=0.5, degrade=degrade,
        threads=args.threads, workers=args.workers, device=args.device, resume=args.resume, minutes=args.minutes,
    )
    return TrainConfig(**{**base, **fields})
