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

from shipped_run import add_run_flags, degradations, run_config
from tessera.train.loop import fit
from tessera.train.recipes import RecipeConfig


def main() -> None:
    from tessera import weights

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("set", choices=["faces", "scenes"])
    add_run_flags(ap, steps=3000, lr=1e-4, batch=8)
    ap.add_argument("--init", default=None, help="fidelity weights to start from (default: the shipped model of the set)")
    ap.add_argument("--crop", type=int, default=128)
    ap.add_argument("--d-width", type=int, default=32, help="discriminator base channels")
    ap.add_argument("--l1", type=float, default=1.0)
    ap.add_argument("--fm", type=float, default=1.0)
    ap.add_argument("--adv", type=float, default=0.1)
    ap.add_argument("--ckpt-every", type=int, default=50)
    ap.add_argument("--eval-every", type=int, default=250)
    args = ap.parse_args()
    init = args.init or args.set
    src = weights.load(init)
    cfg = run_config(
        args, args.set, degradations(args),
        model=src.name, preset="small", crop=args.crop,
        model_kwargs={k: (list(v) if isinstance(v, tuple) else v) for k, v in src.kwargs.items()},
        eval_every=args.eval_every, sample_every=args.eval_every, ckpt_every=args.ckpt_every, val_count=32,
        init=None if args.resume else Path(weights.resolve(init)),
        recipe=RecipeConfig(name="gan", d_base=args.d_width, ft_l1=args.l1, ft_fm=args.fm, ft_adv=args.adv),
    )
    summary = fit(cfg)
    print({k: v for k, v in summary.items() if k != "recipe"})


if __name__ == "__main__":
    main()
