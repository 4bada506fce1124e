"""Adversarial fine-tuning (issue 16): the GAN recipe, its losses, the spectral PatchGAN, the
wall-clock stop of fit and the detail ratio."""

from __future__ import annotations

import math
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from tessera.models import load_model, model_kwargs
from tessera.models.patchgan import PatchGAN
from tessera.train.losses import (
    gan_bce_masked,
    gradient_magnitude,
    masked_detail_ratio,
    masked_feature_matching,
    patch_weights,
)
from tessera.train.loop import TrainConfig, export_checkpoint, fit, load_checkpoint
from tessera.train.recipes import GANFineTuneRecipe, RecipeConfig, build_recipe

pytestmark = pytest.mark.usefixtures("one_thread")


def _photo(h: int, w: int, seed: int) -> np.ndarray:
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    a = np.random.default_rng(seed).uniform(0.5, 2.0, 3)
    img = np.stack([128 + 100 * np.sin(a[c] * xx / w * 9 + c) * np.cos(a[c] * yy / h * 7) for c in range(3)], -1)
    return img.clip(0, 255).astype(np.uint8)


def _batch(n: int = 4, size: int = 32):
    imgs = np.stack([_photo(size, size, s) for s in range(n)])
    target = torch.from_numpy(imgs).permute(0, 3, 1, 2).float() / 127.5 - 1
    mask = torch.zeros(n, 1, size, size)
    mask[..., 8:24, 10:26] = 1
    x = torch.cat([target * (1 - mask), mask], 1)
    return x, mask, target


# ---------------------------------------------------------------- losses


def test_detail_ratio_of_ramps_is_the_ratio_of_their_slopes():
    # mean of R, G, B is 3*x (channels x, 2x, 6x) in one image and 1.5*x in the other: central
    # differences give gradient magnitude 3 and 1.5 inside, so the ratio is exactly 2
    xx = torch.arange(16.0).view(1, 1, 1, 16).expand(1, 1, 16, 16)
    steep = torch.cat([xx, 2 * xx, 6 * xx], 1)
    mask = torch.zeros(1, 1, 16, 16)
    mask[..., 4:12, 4:12] = 1
    mag = gradient_magnitude(steep)
    assert mag[0, 0, 5, 5].item() == pytest.approx(3.0)
    assert mag[0, 0, 0, 5].item() == 0.0  # the border is 0
    assert masked_detail_ratio(steep, steep / 2, mask).item() == pytest.approx(2.0)
    flat = torch.zeros_like(steep)
    assert masked_detail_ratio(flat, steep, mask).item() == 0.0


def test_patch_weights_and_masked_bce_ignore_patches_outside_the_region():
    mask = torch.zeros(1, 1, 64, 64)
    mask[..., :16, :16] = 1  # top-left quarter
    w = patch_weights(mask, (4, 4))
    assert w.sum().item() == 1.0 and w[0, 0, 0, 0].item() == 1.0
    logits = torch.zeros(1, 1, 4, 4)
    other = logits.clone()
    other[..., 1:, 1:] = 50.0  # patches the region does not touch
    assert gan_bce_masked(other, True, w).item() == pytest.approx(math.log(2))
    assert gan_bce_masked(logits, True, w).item() == gan_bce_masked(other, True, w).item()
    # no region at all: every patch counts
    assert gan_bce_masked(other, True, torch.zeros_like(w)).item() == pytest.approx(9 / 16 * math.log1p(math.exp(-50)) + 7 / 16 * math.log(2))


def test_masked_feature_matching_sees_only_the_region():
    mask = torch.zeros(1, 1, 32, 32)
    mask[..., :8, :8] = 1
    real = [torch.zeros(1, 2, 8, 8)]
    fake = [torch.zeros(1, 2, 8, 8)]
    fake[0][..., 4:, 4:] = 5.0  # outside the pooled region: no loss
    assert masked_feature_matching(real, fake, mask).item() == 0.0
    fake[0][..., :2, :2] = 1.0  # the region's 2x2 cells of this 8x8 grid, both channels
    assert masked_feature_matching(real, fake, mask).item() == pytest.approx(1.0)


def test_spectral_patchgan_returns_features_and_has_unit_spectral_norm():
    torch.manual_seed(0)
    d = PatchGAN(in_channels=7, base=8, n_layers=3, norm="none", spectral=True)
    x = torch.randn(2, 7, 64, 64)
    for _ in range(20):  # power iterations run in train mode
        d(x)
    d.eval()  # no more power iterations: the same weights for both calls
    logits = d(x)
    logits2, feats = d(x, features=True)
    assert logits.shape == (2, 1, 6, 6) and torch.equal(logits, logits2)
    assert [f.shape[1] for f in feats] == [8, 16, 32, 64]
    w = d.net[2].weight  # the parametrized (normalized) weight of the second conv
    sigma = torch.linalg.matrix_norm(w.detach().reshape(w.shape[0], -1), ord=2).item()
    assert sigma == pytest.approx(1.0, abs=0.05)


# ---------------------------------------------------------------- the recipe


def test_gan_recipe_updates_d_then_g_and_g_does_not_move_d():
    torch.manual_seed(0)
    recipe = build_recipe("unet", model_kwargs("unet", "tiny"), RecipeConfig(name="gan", lr=1e-3, d_base=8))
    assert isinstance(recipe, GANFineTuneRecipe) and set(recipe.nets) == {"generator", "discriminator"}
    order, d_after = [], {}
    update = recipe.update

    def spy(name, loss):
        update(name, loss)
        order.append(name)
        if name == "discriminator":
            d_after.update({k: v.detach().clone() for k, v in recipe.nets["discriminator"].named_parameters()})

    recipe.update = spy
    g0 = {k: v.clone() for k, v in recipe.generator.state_dict().items()}
    d0 = {k: v.detach().clone() for k, v in recipe.nets["discriminator"].named_parameters()}
    losses = recipe.step(*_batch())
    assert order == ["discriminator", "generator"]
    assert set(losses) == {"loss", "l1", "fm", "g_adv", "d", "d_real", "d_fake"}
    assert losses["loss"] == pytest.approx(losses["l1"] + losses["fm"] + 0.1 * losses["g_adv"], rel=1e-5)
    d1 = dict(recipe.nets["discriminator"].named_parameters())
    assert any(not torch.equal(d0[k], d1[k]) for k in d0)  # D learned
    assert all(torch.equal(d_after[k], d1[k]) for k in d1)  # the G step left D's weights as they were
    assert any(not torch.equal(g0[k], v) for k, v in recipe.generator.state_dict().items())
    assert all(p.requires_grad for p in recipe.nets["discriminator"].parameters())


def test_gan_recipe_on_a_fixed_batch_lowers_l1_and_d_learns():
    # a fresh tiny U-Net with the L1 term weighted up (a pretrained generator starts near the
    # target; a fresh one needs the pixel loss to get there): means of the first and last 5 steps
    torch.manual_seed(0)
    recipe = build_recipe("unet", model_kwargs("unet", "tiny"), RecipeConfig(name="gan", lr=1e-3, d_base=8, ft_l1=10.0))
    batch = _batch()
    steps = [recipe.step(*batch) for _ in range(30)]
    assert all(np.isfinite(v) for s in steps for v in s.values())

    def mean(key, part):
        return float(np.mean([s[key] for s in part]))

    first, last = steps[:5], steps[-5:]
    assert mean("l1", last) < 0.9 * mean("l1", first)
    assert mean("d", last) < 0.5 * mean("d", first)  # D tells real from composited patches
    assert mean("d_real", last) > mean("d_fake", last) + 0.3
    assert abs(mean("d_real", first) - mean("d_fake", first)) < 0.1  # it could not at the start


def test_recipe_config_refuses_unknown_recipe_and_negative_weights():
    with pytest.raises(ValueError, match="recipe must be one of"):
        RecipeConfig(name="wgan")
    with pytest.raises(ValueError, match=">= 0"):
        RecipeConfig(name="gan", ft_adv=-1)
    with pytest.raises(ValueError, match="no training recipe"):
        build_recipe("gan", {}, RecipeConfig())


# ---------------------------------------------------------------- fit: init, time limit, resume


@pytest.fixture
def folder(tmp_path):
    root = tmp_path / "photos"
    root.mkdir()
    for i in range(4):
        Image.fromarray(_photo(48, 48, i)).save(root / f"p{i}.png")
    return root


def _cfg(data: Path, out: Path, **kw) -> TrainConfig:
    base = dict(data=data, out=out, model="unet", preset="tiny", steps=3, batch=2, crop=32, region=16,
                workers=0, log_every=1, eval_every=100, sample_every=100, ckpt_every=100, val_count=2,
                recipe=RecipeConfig(name="gan", d_base=8))
    base.update(kw)
    return TrainConfig(**base)


def test_fit_gan_from_init_stops_at_the_time_limit_and_resumes(folder, tmp_path):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fit(_cfg(folder, tmp_path / "fid", steps=2, recipe=RecipeConfig(d_base=8)))  # a fidelity model
        init = export_checkpoint(tmp_path / "fid" / "checkpoint.pt", tmp_path / "fid.safetensors")
        summary = fit(_cfg(folder, tmp_path / "gan", init=init, minutes=0.0, val=folder))
        assert summary["timed_out"] and not summary["interrupted"] and summary["step"] == 1
        state = load_checkpoint(tmp_path / "gan" / "checkpoint.pt")
        assert state["step"] == 1 and set(state["recipe"]["nets"]) == {"generator", "discriminator"}
        summary = fit(_cfg(folder, tmp_path / "gan", resume=True, val=folder))
    assert summary["step"] == 3 and not summary["timed_out"]
    assert 0.0 < summary["val"]["detail"] < 5.0
    out = export_checkpoint(tmp_path / "gan" / "checkpoint.pt", tmp_path / "gan.safetensors")
    g, f = load_model(out), load_model(init)
    x = torch.rand(1, 4, 32, 32)
    with torch.no_grad():
        assert not torch.equal(g(x), f(x))  # fine-tuned away from its init
    # the GAN weights run without the 4-flip average (it would average their texture away)
    from tessera.restore.restorer import resolve_model

    assert g.metadata["flips"] == "1" and "flips" not in f.metadata
    assert resolve_model(str(out)).flips == 1 and resolve_model(str(init)).flips == 2  # the default preset (balanced)


def test_cli_train_gan_recipe_with_a_time_limit(folder, tmp_path):
    from typer.testing import CliRunner

    from tessera.cli import app

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fit(_cfg(folder, tmp_path / "fid", steps=1, recipe=RecipeConfig(d_base=8)))
    init = export_checkpoint(tmp_path / "fid" / "checkpoint.pt", tmp_path / "fid.safetensors")
    common = ["train", "--model", "unet", "--preset", "tiny", "--data", str(folder), "--out", str(tmp_path / "run"),
              "--steps", "5", "--batch", "2", "--crop", "32", "--region", "16", "--workers", "0", "--d-width", "8"]
    runner = CliRunner()
    res = runner.invoke(app, [*common, "--recipe", "wgan"])
    assert res.exit_code != 0 and "--recipe" in res.output
    res = runner.invoke(app, [*common, "--recipe", "gan", "--init", str(init), "--minutes", "0"])
    assert res.exit_code == 0, res.output
    assert "stopped at the time limit at step 1" in res.output
    state = load_checkpoint(tmp_path / "run" / "checkpoint.pt")
    assert state["step"] == 1 and "discriminator" in state["recipe"]["nets"]
