"""Latent-search completion: its losses (exact values on tiny tensors), that the search lowers the
contextual loss, Poisson blending, and the restorer's contract."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from tessera.models import build_model
from tessera.mosaic.pixelate import pixelate
from tessera.mosaic.region import Grid
from tessera.restore.latent import (
    LatentConfig,
    LatentRestorer,
    contextual_loss,
    importance_weights,
    mosaic_loss,
    mosaic_target,
    perceptual_loss,
    poisson_blend,
    search_latent,
    square_box,
)


def tiny_dcgan(seed: int = 0):
    torch.manual_seed(seed)
    return build_model("dcgan", z_dim=8, g_base=4, d_base=4, size=8).eval()


def test_importance_weights_exact():
    known = torch.ones(5, 5, dtype=torch.bool)
    known[2, 2] = False
    W = importance_weights(known, window=3)
    expect = torch.zeros(5, 5)
    expect[1:4, 1:4] = 1 / 9  # the 8 known neighbours of the hole see 1 unknown pixel of 9
    expect[2, 2] = 0.0  # unknown pixels weigh nothing
    assert torch.allclose(W, expect)
    # a pixel on the image border: outside counts as known
    known = torch.ones(3, 3, dtype=torch.bool)
    known[0, 0] = False
    W = importance_weights(known, window=3)
    assert W[0, 1].item() == pytest.approx(1 / 9) and W[1, 1].item() == pytest.approx(1 / 9) and W[2, 2].item() == 0


def test_contextual_and_perceptual_loss_exact():
    y = torch.tensor([[[0.0, 1.0], [0.5, -1.0]]])  # (1, 2, 2)
    gz = torch.stack([y, y + torch.tensor([[[1.0, -2.0], [0.0, 4.0]]])])  # (2, 1, 2, 2)
    W = torch.tensor([[0.5, 0.25], [1.0, 0.0]])
    lc = contextual_loss(gz, y, W)
    assert lc.tolist() == [0.0, 0.5 * 1 + 0.25 * 2 + 0 + 0 * 4]
    lp = perceptual_loss(torch.tensor([0.0, 2.0, -30.0]))
    assert lp[0].item() == pytest.approx(math.log(0.5))
    assert lp[1].item() == pytest.approx(math.log(1 - 1 / (1 + math.exp(-2))))
    assert lp[2].item() == pytest.approx(0.0, abs=1e-12)


def test_mosaic_loss_exact():
    # 4x4 image, 2x2 cells, the left half hidden: two wholly hidden cells (each 4 px)
    clean = np.arange(48, dtype=np.uint8).reshape(4, 4, 3) * 5
    mask = np.zeros((4, 4), bool)
    mask[:, :2] = True
    observed, _ = pixelate(clean, mask, cell=2)
    t = mosaic_target(observed, mask, Grid(2, 2, 0, 0, "mean"))
    assert t.weight.tolist() == [[4.0, 0.0], [4.0, 0.0]]
    x = torch.from_numpy(clean.astype(np.float32) / 127.5 - 1).permute(2, 0, 1)[None]
    # the clean image's cell means equal the observed mosaic up to its rounding
    assert mosaic_loss(x, t).item() == pytest.approx(0.0, abs=4 * 2 * 3 * 0.5 / 127.5 + 1e-6)
    # one channel of the top-left cell off by 0.25 -> 4 px * 0.25
    obs = torch.from_numpy(observed.astype(np.float32) / 127.5 - 1).permute(2, 0, 1)[None]
    x2 = obs.clone()
    x2[0, 0, 0:2, 0:2] += 0.25
    assert mosaic_loss(x2, t).item() == pytest.approx(1.0, abs=1e-5)
    assert mosaic_target(observed, np.zeros((4, 4), bool), Grid(2, 2, 0, 0, "mean")) is None


def test_latent_search_lowers_contextual_loss():
    model = tiny_dcgan()
    G, D = model.generator, model.critic
    with torch.no_grad():
        y = G(torch.randn(1, 8, generator=torch.Generator().manual_seed(5)))[0]
    known = torch.ones(8, 8, dtype=torch.bool)
    known[2:6, 2:6] = False
    res = search_latent(G, D, y, known, LatentConfig(iters=60, restarts=4, lr=0.1, window=3))
    start, end = res.context[0], res.context[-1]
    assert res.history.shape == (61, 4)
    assert (end < start).all()
    assert end.min() < 0.5 * start.min()
    # the best restart is the lowest total loss, and its image is G(z)
    assert res.best == int(np.argmin(res.history[-1]))
    with torch.no_grad():
        assert torch.allclose(G(res.z[None])[0], res.image, atol=1e-6)
    assert res.z.abs().max() <= 3.0


def test_poisson_blend_removes_offsets_exactly():
    rng = np.random.default_rng(0)
    target = rng.integers(0, 256, (30, 40, 3)).astype(np.float64)
    mask = np.zeros((30, 40), bool)
    mask[5:25, 0:30] = True  # touches the left image border (Neumann there)
    # source = target + constant: the gradients are the target's, so the result is the target
    out = poisson_blend(target, target + 17.0, mask)
    assert np.abs(out - target).max() < 1e-2
    # a linear source on a shifted background: the solution is the shifted source
    yy, xx = np.mgrid[:30, :40]
    src = np.stack([2.0 * yy + xx, 1.0 * xx, 0.5 * yy], -1)
    out = poisson_blend(src + 5, src, mask)
    assert np.abs(out - (src + 5)).max() < 1e-2
    assert np.array_equal(out[~mask], (src + 5)[~mask])
    # a component with no known neighbour keeps the source
    whole = np.ones((6, 6), bool)
    assert np.array_equal(poisson_blend(np.zeros((6, 6)), np.full((6, 6), 3.0), whole), np.full((6, 6), 3.0))


def test_square_box_contains_the_hole():
    mask = np.zeros((100, 60), bool)
    mask[70:90, 40:55] = True
    y0, x0, side = square_box(mask, 1.5)
    assert side == 60 and 0 <= y0 <= 40 and x0 == 0
    assert y0 <= 70 and y0 + side >= 90


@pytest.mark.parametrize("kind", ["hole", "mosaic"])
def test_latent_restorer_contract(kind):
    rng = np.random.default_rng(1)
    image = rng.integers(0, 256, (40, 30, 3), dtype=np.uint8)
    mask = np.zeros((40, 30), bool)
    mask[12:28, 8:24] = True
    grid = Grid(4, 4, 0, 0, "mean") if kind == "mosaic" else None
    if grid is not None:
        image, _ = pixelate(image, mask, cell=4)
    r = LatentRestorer(tiny_dcgan(), LatentConfig(iters=5, restarts=2))
    out = r(image, mask, grid, kind)
    assert out.shape == image.shape and out.dtype == np.uint8
    assert np.array_equal(out[~mask], image[~mask])
    assert r.last is not None and r.last.history.shape == (6, 2)


def test_pipeline_runs_a_dcgan_weight_file(tmp_path):
    from tessera.models import save_model
    from tessera.restore.patch import PatchRefiner
    from tessera.restore.pipeline import resolve_model, restore_image

    model = tiny_dcgan()
    path = save_model(model, tmp_path / "tiny-dcgan.safetensors", "dcgan", model.kwargs)
    restorer = resolve_model(path, latent=LatentConfig(iters=3, restarts=2))
    assert isinstance(restorer, LatentRestorer) and restorer.cfg.iters == 3
    refiner = resolve_model(path, refine="patch")
    assert refiner.name == f"{path}+patch" and isinstance(refiner, PatchRefiner) and isinstance(refiner.restorer, LatentRestorer)
    rng = np.random.default_rng(2)
    image = rng.integers(0, 256, (36, 36, 3), dtype=np.uint8)
    mask = np.zeros((36, 36), bool)
    mask[10:20, 12:24] = True
    res = restore_image(image, mask, model=str(path), kind="hole", iters=3)
    assert np.array_equal(res.image[~mask], image[~mask]) and res.mask.sum() == mask.sum()
    with pytest.raises(ValueError, match="refinement"):
        restore_image(image, mask, model="smooth", refine="sharpen")


def test_dcgan_training_step_updates_both_networks():
    from tessera.train.recipes import DCGANRecipe, RecipeConfig

    model = tiny_dcgan().train()
    recipe = DCGANRecipe(model, RecipeConfig(lr=1e-3), "cpu")
    real = torch.rand(4, 3, 8, 8) * 2 - 1
    g0 = [p.clone() for p in model.generator.parameters()]
    d0 = [p.clone() for p in model.critic.parameters()]
    torch.manual_seed(0)
    losses = recipe.step(real)
    assert set(losses) == {"g", "d", "d_real", "d_fake"} and all(np.isfinite(v) for v in losses.values())
    assert any(not torch.equal(a, b) for a, b in zip(g0, model.generator.parameters()))
    assert any(not torch.equal(a, b) for a, b in zip(d0, model.critic.parameters()))
