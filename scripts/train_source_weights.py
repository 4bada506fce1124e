"""Train the source articles' own architectures for shipping (issue 16): pix2pix and deepfill.

- ``pix2pix``: the source's recipe (`tessera.train.recipes.Pix2PixRecipe`): a conditional 70x70
  PatchGAN (BCE) against the U-Net generator, G loss = GAN + 100 x L1, Adam betas (0.5, 0.999),
  on mosaics. The generator has the layers of our shipped fidelity U-Net (`scenes`: 5 levels,
  base 32, residual blocks, mosaics pre-filled by the grid-aware cubic interpolation, a residual
  output) and starts from its weights: trained from scratch on this 2-core CPU the paper's layout
  fell 1.8 dB below the input by step 500 (the discriminator won early), so the CPU budget goes
  into what the GAN adds. No dropout (the paper's only noise source, which it found to add little
  stochasticity): dropout would scramble the pretrained features.
- ``deepfill``: the DeepFill v1 coarse-to-fine network with contextual attention (small preset,
  base 16, gated convolutions) against a global and a local WGAN-GP critic, G loss = 1.2 x L1 on
  coarse and refined + 0.001 x WGAN + 0.5 x feature matching on the global critic (our stand-in
  for VGG: no ImageNet network ships offline) (`DeepFillRecipe`), on holes and mosaics (holes
  weighted up: inpainting is this architecture's task). Trained from scratch.

Both on ../shared/data/scenes/train, 128-px crops, batch 8, Adam lr 2e-4 betas (0.5, 0.999),
linear decay over the second half. A run stops cleanly at --minutes (checkpoint) and continues
with --resume (same --steps). The runs behind the shipped files are on their cards
(src/tessera/weights/restore-{pix2pix,deepfill}.md):

    python scripts/train_source_weights.py pix2pix --lr 1e-4 --steps 2000 --minutes 90 --out runs/pix2pix
    tessera export runs/pix2pix/checkpoint.pt -o src/tessera/weights/restore-pix2pix.safetensors
"""

from __future__ import annotations

import argparse
from pathlib import Path

from shipped_run import add_run_flags, degradations, run_config
from tessera.train.loop import fit
from tessera.train.recipes import RecipeConfig

SETUPS = {
    # weights to start from (None: from scratch), degradation mix (mosaic, holes, blur)
    "pix2pix": ("scenes", (0.8, 0.15, 0.05)),
    "deepfill": (None, (0.35, 0.6, 0.05)),
}


def model_setup(model: str) -> tuple[str, dict, Path | None]:
    """The preset, the generator's kwargs over it, and the weights it starts from (None: scratch)."""
    from tessera import weights

    init = SETUPS[model][0]
    if init is None:
        return "small", {}, None
    src = weights.load(init)
    # the start's layers exactly: its kwargs over the class defaults (preset "paper" adds none), no dropout
    kwargs = {k: (list(v) if isinstance(v, tuple) else v) for k, v in src.kwargs.items()}
    return "paper", {**kwargs, "dropout": 0.0}, weights.resolve(init)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("model", choices=sorted(SETUPS))
    ap.add_argument("--set", choices=["faces", "scenes"], default="scenes")
    add_run_flags(ap, steps=4000, lr=2e-4, batch=8)
    ap.add_argument("--d-width", type=int, default=32, help="discriminator / critic base channels")
    ap.add_argument("--ckpt-every", type=int, default=50)
    ap.add_argument("--eval-every", type=int, default=250)
    ap.add_argument("--warmup", type=int, default=0, help="deepfill: steps of L1 alone before the critics join (ESRGAN's pixel stage)")
    args = ap.parse_args()
    preset, kwargs, init = model_setup(args.model)
    cfg = run_config(
        args, args.set, degradations(args, kinds=SETUPS[args.model][1]),
        model=args.model, preset=preset, model_kwargs=kwargs,
        eval_every=args.eval_every, sample_every=args.eval_every, ckpt_every=args.ckpt_every, val_count=32,
        init=None if args.resume else init,
        recipe=RecipeConfig(d_base=args.d_width, local_size=min(128, args.region), warmup=args.warmup),
    )
    summary = fit(cfg)
    print({k: v for k, v in summary.items() if k != "recipe"})


if __name__ == "__main__":
    main()
