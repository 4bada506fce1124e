"""Adversarial fine-tuning of the shipped fidelity restorers (issue 16): faces-gan and scenes-gan.

The ESRGAN / Real-ESRGAN recipe on our framework (`tessera.train.recipes.GANFineTuneRecipe`): the
generator starts from the shipped pixel-loss weights (`faces` / `scenes`, same model and kwargs),
a spectrally-normalised conditional 70x70 PatchGAN learns to tell real crops from composited
restorations, and the generator minimizes L1 + feature matching on the discriminator's
activations + 0.1 x GAN. Same data and degradations as scripts/train_restore_weights.py (128-px
crops, mosaic-heavy mix, JPEG on 30 %), batch 8 to fit the 2-core CPU.

Runs stop cleanly at --minutes (a checkpoint at the stopping step) and continue with --resume
(keep the same --steps, so the LR schedule is unchanged). The runs behind the shipped files (2-core
CPU shared with six other jobs, about 12 s per step):

    nice -n 10 nohup python scripts/train_gan_weights.py faces --steps 1500 --minutes 70 --out runs/faces-gan > runs/faces-gan.log 2>&1 &
    # stopped with SIGINT at step 281 (checkpoint kept), then
    tessera export runs/faces-gan/checkpoint.pt -o src/tessera/weights/restore-faces-gan.safetensors
    nice -n 10 nohup python scripts/train_gan_weights.py scenes --steps 1500 --minutes 40 --out runs/scenes-gan > runs/scenes-gan.log 2>&1 &

To continue either run (the run folders live in the `gan` worktree, /work/wt-gan/runs/, not in git):

    python scripts/train_gan_weights.py scenes --steps 1500 --minutes 60 --resume --out runs/scenes-gan
    python scripts/train_gan_weights.py faces --steps 1500 --minutes 60 --resume --out runs/faces-gan
    tessera export runs/scenes-gan/checkpoint.pt -o runs/scenes-gan.safetensors
    python -m benchmarks.perceptual --sets scenes --models fidelity,scenes:runs/scenes-gan.safetensors

(the exact commands behind the shipped files are on their cards, NAME.md).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from tessera.train.data import DegradeConfig
from tessera.train.loop import TrainConfig, fit
from tessera.train.recipes import RecipeConfig

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"


def main() -> None:
    from tessera import weights

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("set", choices=["faces", "scenes"])
    ap.add_argument("--steps", type=int, default=3000)
    ap.add_argument("--minutes", type=float, help="stop cleanly (checkpoint) after this many minutes; --resume continues")
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--init", default=None, help="fidelity weights to start from (default: the shipped model of the set)")
    ap.add_argument("--lr", type=float, default=1e-4)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--crop", type=int, default=128)
    ap.add_argument("--d-width", type=int, default=32, help="discriminator base channels")
    ap.add_argument("--l1", type=float, default=1.0)
    ap.add_argument("--fm", type=float, default=1.0)
    ap.add_argument("--adv", type=float, default=0.1)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--device", default="auto")
    ap.add_argument("--resume", action="store_true")
    ap.add_argument("--region", type=int, default=96)
    ap.add_argument("--ckpt-every", type=int, default=50)
    ap.add_argument("--eval-every", type=int, default=250)
    args = ap.parse_args()
    init = args.init or args.set
    src = weights.load(init)
    degrade = DegradeConfig(
        region=args.region, cell=12, cell_range=(4, 32), centre_prob=0.3,
        kind_weights=(0.8, 0.15, 0.05), jpeg_prob=0.3, jpeg_quality=(50, 95),
    )
    cfg = TrainConfig(
        data=DATA / args.set / "train",
        val=DATA / args.set / "val",
        out=args.out,
        model=src.name,
        preset="small",
        model_kwargs={k: (list(v) if isinstance(v, tuple) else v) for k, v in src.kwargs.items()},
        steps=args.steps,
        batch=args.batch,
        crop=args.crop,
        region=args.region,
        cell_range=(4, 32),
        lr=args.lr,
        decay_from=0.5,
        degrade=degrade,
        threads=args.threads,
        workers=args.workers,
        device=args.device,
        eval_every=args.eval_every,
        sample_every=args.eval_every,
        ckpt_every=args.ckpt_every,
        val_count=32,
        resume=args.resume,
        init=None if args.resume else Path(weights.resolve(init)),
        minutes=args.minutes,
        recipe=RecipeConfig(name="gan", d_base=args.d_width, ft_l1=args.l1, ft_fm=args.fm, ft_adv=args.adv),
    )
    summary = fit(cfg)
    print({k: v for k, v in summary.items() if k != "recipe"})


if __name__ == "__main__":
    main()
