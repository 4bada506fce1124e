"""One training step per model family. Each step reads as its paper does (update the
critic/discriminator, then the generator) and returns its losses as a dict of floats.

Every recipe sees a batch (x, mask, target): x (N, 4, H, W) = cat([degraded RGB, mask]),
mask (N, 1, H, W), target (N, 3, H, W), all float in [-1, 1]. Generated images are
composited (``pred * mask + x_rgb * (1 - mask)``) before a discriminator sees them.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from tessera.config import ConfigError
from tessera.models import build_model
from tessera.models.deepfill import WGANCritic
from tessera.models.patchgan import PatchGAN
from tessera.train.losses import (
    composite,
    feature_matching,
    gan_bce,
    gan_bce_masked,
    gradient_penalty,
    log_mse,
    masked_feature_matching,
    masked_recon,
    patch_weights,
)


@dataclass(frozen=True)
class RecipeConfig:
    lr: float = 1e-4  # Adam, for every network (the source's setting)
    betas: tuple[float, float] = (0.5, 0.999)  # GAN betas (pix2pix, DeepFill); the plain U-Net uses (0.9, 0.999)
    valid_weight: float = 0.1  # weight of visible pixels in reconstruction losses
    recon: str = "mse"  # U-Net loss: "mse" (the source's) or "log_mse" (mean per-sample log MSE = mean PSNR)
    l1_weight: float = 100.0  # pix2pix lambda
    d_base: int = 64  # discriminator / critic width
    gp_weight: float = 10.0  # WGAN-GP lambda
    gan_weight: float = 1e-3  # DeepFill adversarial weight (v1: 0.001)
    fm_weight: float = 0.5  # DeepFill feature matching on critic features (stands in for VGG)
    deepfill_l1: float = 1.2  # DeepFill L1 weight (coarse and refined)
    local_size: int = 128  # DeepFill local critic window (the region size)
    amp: str = "none"  # none | bf16 | fp16
    name: str = ""  # the recipe: "" = the model's own (RECIPES[model]); "gan" = adversarial fine-tuning (GANFineTuneRecipe)
    ft_l1: float = 1.0  # GAN fine-tuning weights (Real-ESRGAN's 1 : 1 : 0.1): L1 ...
    ft_fm: float = 1.0  # ... feature matching on the discriminator's activations (our perceptual loss) ...
    ft_adv: float = 0.1  # ... and the adversarial loss
    ft_betas: tuple[float, float] = (0.9, 0.99)  # Real-ESRGAN's Adam betas for both networks
    warmup: int = 0  # DeepFill: the first ``warmup`` steps train the generator on its L1 alone, no critic (ESRGAN's pixel stage)

    def __post_init__(self) -> None:
        if self.name not in ("", "gan"):  # another recipe than the model's own: only the GAN fine-tuning
            raise ConfigError("name", f"recipe must be one of ['gan'] (or empty for the model's own), got {self.name!r}")
        if min(self.ft_l1, self.ft_fm, self.ft_adv) < 0:
            raise ConfigError("ft_l1", "ft_l1, ft_fm and ft_adv must be >= 0")
        if self.warmup < 0:
            raise ConfigError("warmup", f"warmup must be >= 0 steps, got {self.warmup}")


def set_requires_grad(module: nn.Module, flag: bool) -> None:
    for p in module.parameters():
        p.requires_grad_(flag)


class Recipe:
    """Networks, their optimizers and one training step.

    data: the batches the step takes: "restore" (x, mask, target of degraded crops), "images"
    (clean images, for image generators) or "cases" (images and the mask of what hides them, for
    the detector); see train/loop.py. :meth:`model_state` maps the checkpoint's networks to the
    exported model's state dict."""

    name = "base"
    data = "restore"
    at_step = 0  # the loop sets the number of the step about to run (recipes with stages read it)

    @staticmethod
    def model_state(nets: dict[str, dict[str, Any]]) -> dict[str, Any]:
        return nets["generator"]

    def __init__(self, generator: nn.Module, cfg: RecipeConfig, device: torch.device) -> None:
        self.cfg = cfg
        self.device = torch.device(device)
        self.generator = generator
        self.g_forward: Callable[..., Any] = generator
        self.nets: dict[str, nn.Module] = {"generator": generator}
        self.optimizers: dict[str, torch.optim.Optimizer] = {}
        self.scalers: dict[str, torch.amp.GradScaler] = {}
        self.reduce_grads: Callable[[nn.Module], None] = lambda module: None

    # ---------------------------------------------------------------- plumbing
    def _add(self, name: str, net: nn.Module, betas: tuple[float, float]) -> None:
        self.nets[name] = net
        self.optimizers[name] = torch.optim.Adam(net.parameters(), lr=self.cfg.lr, betas=betas)
        self.scalers[name] = torch.amp.GradScaler(self.device.type, enabled=self.cfg.amp == "fp16")

    def autocast(self):
        if self.cfg.amp == "none":
            return contextlib.nullcontext()
        dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}[self.cfg.amp]
        return torch.autocast(self.device.type, dtype=dtype)

    def critic_view(self, D: nn.Module, real: torch.Tensor, fake: torch.Tensor) -> tuple[torch.Tensor, list, list]:
        """What G's update asks of a discriminator: its score and activations for ``fake`` (with
        gradients back to G) and its activations for ``real`` (without), for feature matching."""
        with self.autocast():
            score, f_fake = D(fake, features=True)
            with torch.no_grad():
                _, f_real = D(real, features=True)
        return score, f_fake, f_real

    def update(self, name: str, loss: torch.Tensor) -> None:
        """Backward ``loss`` into network ``name`` only, average its gradients across processes, step."""
        opt, scaler = self.optimizers[name], self.scalers[name]
        opt.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        self.reduce_grads(self.nets[name])
        scaler.step(opt)
        scaler.update()

    def to(self, device, channels_last: bool = False) -> Recipe:
        for net in self.nets.values():
            net.to(device)
            if channels_last:
                net.to(memory_format=torch.channels_last)
        return self

    def train(self, flag: bool = True) -> None:
        for net in self.nets.values():
            net.train(flag)

    def compile(self) -> None:
        self.g_forward = torch.compile(self.generator)

    def state_dict(self) -> dict[str, Any]:
        return {
            "nets": {k: v.state_dict() for k, v in self.nets.items()},
            "optimizers": {k: v.state_dict() for k, v in self.optimizers.items()},
            "scalers": {k: v.state_dict() for k, v in self.scalers.items()},
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        for k, v in self.nets.items():
            v.load_state_dict(state["nets"][k])
        for k, v in self.optimizers.items():
            v.load_state_dict(state["optimizers"][k])
        for k, v in self.scalers.items():
            if state["scalers"].get(k):
                v.load_state_dict(state["scalers"][k])

    @torch.no_grad()
    def predict(self, x: torch.Tensor) -> torch.Tensor:
        """The generator's full output image (N, 3, H, W), in eval mode (no batch-norm update)."""
        was_training = self.generator.training
        self.generator.eval()
        try:
            return self.generator(x)
        finally:
            self.generator.train(was_training)

    def step(self, x: torch.Tensor, mask: torch.Tensor, target: torch.Tensor) -> dict[str, float]:
        raise NotImplementedError


class UNetRecipe(Recipe):
    """The baseline: MSE between the U-Net's output and the clean image."""

    name = "unet"

    def __init__(self, generator: nn.Module, cfg: RecipeConfig, device) -> None:
        super().__init__(generator, cfg, device)
        self._add("generator", generator, (0.9, 0.999))

    def step(self, x, mask, target):
        with self.autocast():
            pred = self.g_forward(x)
        if self.cfg.recon == "log_mse":
            loss = log_mse(pred, target, mask, valid_weight=self.cfg.valid_weight)
        else:
            loss = masked_recon(pred, target, mask, kind="mse", valid_weight=self.cfg.valid_weight)
        self.update("generator", loss)
        return {"loss": loss.item()} if self.cfg.recon == "log_mse" else {"loss": loss.item(), "mse": loss.item()}


class Pix2PixRecipe(Recipe):
    """pix2pix: a conditional 70x70 PatchGAN on cat([input, image]); G minimizes GAN + 100 * L1."""

    name = "pix2pix"

    def __init__(self, generator: nn.Module, cfg: RecipeConfig, device) -> None:
        super().__init__(generator, cfg, device)
        self._add("generator", generator, cfg.betas)
        self._add("discriminator", PatchGAN(in_channels=generator.in_channels + 3, base=cfg.d_base, n_layers=3), cfg.betas)

    def step(self, x, mask, target):
        D = self.nets["discriminator"]
        with self.autocast():
            fake = self.g_forward(x)  # (N, 3, H, W)
        comp = composite(fake.float(), x[:, :3], mask)
        # 1. update D: real pairs -> 1, generated pairs -> 0
        set_requires_grad(D, True)
        with self.autocast():
            d_real = D(torch.cat([x, target], 1))
            d_fake = D(torch.cat([x, comp.detach()], 1))
        loss_d = 0.5 * (gan_bce(d_real, True) + gan_bce(d_fake, False))
        self.update("discriminator", loss_d)
        # 2. update G: fool D, stay close to the target
        set_requires_grad(D, False)
        with self.autocast():
            d_fake = D(torch.cat([x, comp], 1))
        loss_gan = gan_bce(d_fake, True)
        loss_l1 = masked_recon(fake, target, mask, kind="l1", valid_weight=self.cfg.valid_weight)
        loss_g = loss_gan + self.cfg.l1_weight * loss_l1
        self.update("generator", loss_g)
        set_requires_grad(D, True)
        return {"loss": loss_g.item(), "g_gan": loss_gan.item(), "l1": loss_l1.item(), "d": loss_d.item()}


def local_windows(mask: torch.Tensor, size: int) -> list[tuple[int, int]]:
    """Top-left corners (y, x) of ``size`` x ``size`` windows centred on each mask's bounding
    box, moved inside the image."""
    H, W = mask.shape[-2:]
    out = []
    for m in mask[:, 0]:
        ys, xs = torch.nonzero(m > 0, as_tuple=True)
        if ys.numel():
            cy = (int(ys.min()) + int(ys.max())) // 2
            cx = (int(xs.min()) + int(xs.max())) // 2
        else:
            cy, cx = H // 2, W // 2
        out.append((min(max(cy - size // 2, 0), H - size), min(max(cx - size // 2, 0), W - size)))
    return out


def crop_windows(t: torch.Tensor, wins: list[tuple[int, int]], size: int) -> torch.Tensor:
    return torch.stack([t[i, :, y : y + size, x : x + size] for i, (y, x) in enumerate(wins)])


class DeepFillRecipe(Recipe):
    """DeepFill v1 training: WGAN-GP with a global critic (image + mask) and a local critic
    (a window around the region), gradient penalty weight 10; the generator minimizes
    L1 on the coarse and refined outputs + adversarial loss + feature matching on the
    global critic's activations (our stand-in for a VGG perceptual loss)."""

    name = "deepfill"

    def __init__(self, generator: nn.Module, cfg: RecipeConfig, device) -> None:
        super().__init__(generator, cfg, device)
        self._add("generator", generator, cfg.betas)
        critics = nn.ModuleDict(
            {
                "global": WGANCritic(in_channels=generator.out_channels + 1, base=cfg.d_base, n_layers=4),
                "local": WGANCritic(in_channels=generator.out_channels, base=cfg.d_base, n_layers=4),
            }
        )
        self._add("critic", critics, cfg.betas)

    def step(self, x, mask, target):
        if self.at_step < self.cfg.warmup:
            return self.pixel_step(x, mask, target)
        C = self.nets["critic"]
        Dg, Dl = C["global"], C["local"]
        size = min(self.cfg.local_size, x.shape[-2], x.shape[-1])
        with self.autocast():
            refined, coarse = self.g_forward(x, return_coarse=True)
        comp = composite(refined.float(), x[:, :3], mask)
        wins = local_windows(mask, size)
        real_g, fake_g = torch.cat([target, mask], 1), torch.cat([comp, mask], 1)
        real_l, fake_l = crop_windows(target, wins, size), crop_windows(comp, wins, size)
        # 1. update the critics: WGAN loss + gradient penalties (in float32)
        set_requires_grad(C, True)
        with self.autocast():
            w_g = Dg(fake_g.detach()).float().mean() - Dg(real_g).float().mean()
            w_l = Dl(fake_l.detach()).float().mean() - Dl(real_l).float().mean()
        gp = gradient_penalty(Dg, real_g, fake_g) + gradient_penalty(Dl, real_l, fake_l)
        loss_d = w_g + w_l + self.cfg.gp_weight * gp
        self.update("critic", loss_d)
        # 2. update G
        set_requires_grad(C, False)
        s_g, f_fake, f_real = self.critic_view(Dg, real_g, fake_g)
        with self.autocast():
            s_l = Dl(fake_l)
        adv = -(s_g.float().mean() + s_l.float().mean())
        fm = feature_matching(f_real, f_fake)
        l1 = self.l1(refined, coarse, target, mask)
        loss_g = self.cfg.deepfill_l1 * l1 + self.cfg.gan_weight * adv + self.cfg.fm_weight * fm
        self.update("generator", loss_g)
        set_requires_grad(C, True)
        return {"loss": loss_g.item(), "l1": l1.item(), "g_adv": adv.item(), "fm": fm.item(), "d": loss_d.item(), "gp": gp.item()}

    def l1(self, refined, coarse, target, mask):
        """The reconstruction term: L1 on the coarse and the refined output."""
        w = self.cfg.valid_weight
        return masked_recon(coarse, target, mask, valid_weight=w) + masked_recon(refined, target, mask, valid_weight=w)

    def pixel_step(self, x, mask, target):
        """The warm-up stage: L1 on the coarse and refined outputs only (the critics wait), so the
        adversarial stage starts from a generator that already fills holes plausibly on average."""
        with self.autocast():
            refined, coarse = self.g_forward(x, return_coarse=True)
        l1 = self.l1(refined, coarse, target, mask)
        self.update("generator", self.cfg.deepfill_l1 * l1)
        return {"loss": (self.cfg.deepfill_l1 * l1).item(), "l1": l1.item()}


class GANFineTuneRecipe(Recipe):
    """Adversarial fine-tuning of a restorer trained with a pixel loss (the ESRGAN / Real-ESRGAN
    recipe: a fidelity model first, then a shorter GAN stage). The discriminator is a conditional
    70x70 PatchGAN with spectral normalization (no batch norm) on cat([input, image]); its loss
    counts only the patches that touch the hidden region (the others are the same pixels in real
    and composited images). The generator minimizes
    ``ft_l1 * L1 + ft_fm * feature matching + ft_adv * GAN``, where feature matching is the L1
    distance between the discriminator's activations for the real and the composited image over
    the positions that see the region: a perceptual loss learned from our own photos, since no
    ImageNet network can be had offline. Works for any restoration generator (``--init`` the
    shipped fidelity weights)."""

    name = "gan"

    def __init__(self, generator: nn.Module, cfg: RecipeConfig, device) -> None:
        super().__init__(generator, cfg, device)
        self._add("generator", generator, cfg.ft_betas)
        D = PatchGAN(in_channels=generator.in_channels + 3, base=cfg.d_base, n_layers=3, norm="none", spectral=True)
        self._add("discriminator", D, cfg.ft_betas)

    def step(self, x, mask, target):
        D = self.nets["discriminator"]
        with self.autocast():
            fake = self.g_forward(x)
        comp = composite(fake.float(), x[:, :3], mask)
        real_in, fake_in = torch.cat([x, target], 1), torch.cat([x, comp], 1)
        # 1. update D on the region's patches: real -> 1, composited -> 0
        set_requires_grad(D, True)
        with self.autocast():
            d_real = D(real_in)
            d_fake = D(fake_in.detach())
        w = patch_weights(mask, d_real.shape[-2:])
        loss_d = 0.5 * (gan_bce_masked(d_real, True, w) + gan_bce_masked(d_fake, False, w))
        self.update("discriminator", loss_d)
        # 2. update G against the updated D
        set_requires_grad(D, False)
        s_fake, f_fake, f_real = self.critic_view(D, real_in, fake_in)
        adv = gan_bce_masked(s_fake, True, w)
        fm = masked_feature_matching(f_real, f_fake, mask)
        l1 = masked_recon(fake, target, mask, kind="l1", valid_weight=self.cfg.valid_weight)
        loss_g = self.cfg.ft_l1 * l1 + self.cfg.ft_fm * fm + self.cfg.ft_adv * adv
        self.update("generator", loss_g)
        set_requires_grad(D, True)
        return {
            "loss": loss_g.item(), "l1": l1.item(), "fm": fm.item(), "g_adv": adv.item(), "d": loss_d.item(),
            "d_real": float(torch.sigmoid(d_real.detach().float())[w.expand_as(d_real) > 0].mean()),
            "d_fake": float(torch.sigmoid(d_fake.detach().float())[w.expand_as(d_fake) > 0].mean()),
        }


class DCGANRecipe(Recipe):
    """DCGAN (Radford et al. 2016) on whole images: 1. update D (real -> 1, G(z) -> 0, each its own
    batch), 2. update G (non-saturating: make D call G(z) real). The model (``generator``) is the
    whole DCGAN; its two halves have their own Adam (lr 2e-4 in the paper, betas (0.5, 0.999))."""

    name = "dcgan"
    data = "images"

    def __init__(self, generator: nn.Module, cfg: RecipeConfig, device) -> None:
        super().__init__(generator, cfg, device)
        self.nets = {}
        self._add("generator", generator.generator, cfg.betas)
        self._add("critic", generator.critic, cfg.betas)

    @staticmethod
    def model_state(nets: dict[str, dict[str, Any]]) -> dict[str, Any]:
        return {f"{part}.{k}": v for part in ("generator", "critic") for k, v in nets[part].items()}

    def step(self, real: torch.Tensor) -> dict[str, float]:
        G, D = self.generator.generator, self.generator.critic
        z = torch.randn(real.shape[0], self.generator.z_dim, device=real.device)
        fake = G(z)  # (N, 3, size, size)
        # 1. update D
        d_real, d_fake = D(real), D(fake.detach())
        loss_d = gan_bce(d_real, True) + gan_bce(d_fake, False)
        self.update("critic", loss_d)
        # 2. update G
        set_requires_grad(D, False)
        loss_g = gan_bce(D(fake), True)
        self.update("generator", loss_g)
        set_requires_grad(D, True)
        return {
            "g": loss_g.item(), "d": loss_d.item(),
            "d_real": torch.sigmoid(d_real).mean().item(), "d_fake": torch.sigmoid(d_fake).mean().item(),
        }


class SegmentRecipe(Recipe):
    """The mosaic detector (MosaicSegNet): per-pixel BCE + 0.5 soft Dice on the hidden-pixel mask,
    AdamW (weight decay 1e-4)."""

    name = "segnet"
    data = "cases"

    def __init__(self, generator: nn.Module, cfg: RecipeConfig, device) -> None:
        super().__init__(generator, cfg, device)
        self.optimizers["generator"] = torch.optim.AdamW(generator.parameters(), lr=cfg.lr, weight_decay=1e-4)
        self.scalers["generator"] = torch.amp.GradScaler(self.device.type, enabled=cfg.amp == "fp16")

    def step(self, x: torch.Tensor, target: torch.Tensor) -> dict[str, float]:
        with self.autocast():
            logits = self.g_forward(x).float()
        bce = torch.nn.functional.binary_cross_entropy_with_logits(logits, target)
        p = torch.sigmoid(logits)
        dice = 1 - (2 * (p * target).sum() + 1) / (p.sum() + target.sum() + 1)
        loss = bce + 0.5 * dice
        self.update("generator", loss)
        return {"loss": loss.item(), "bce": bce.item(), "dice": dice.item()}


RECIPES = {
    "unet": UNetRecipe, "pix2pix": Pix2PixRecipe, "deepfill": DeepFillRecipe, "gan": GANFineTuneRecipe,
    "dcgan": DCGANRecipe, "segnet": SegmentRecipe,
}


def build_recipe(model: str, model_kwargs: dict[str, Any], cfg: RecipeConfig, device="cpu") -> Recipe:
    """A fresh recipe: the generator ``MODELS[model](**model_kwargs)`` and its adversaries.
    ``cfg.name`` picks another recipe than the model's own (``"gan"``: adversarial fine-tuning)."""
    name = cfg.name or model
    if name not in RECIPES or (not cfg.name and name == "gan"):
        raise ValueError(f"no training recipe for model {model!r}; choose one of {sorted(RECIPES)}")
    generator = build_model(model, **model_kwargs)
    return RECIPES[name](generator, cfg, device).to(device)
