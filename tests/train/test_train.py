"""Training: degradations, image folders, losses, recipes, checkpoint/resume, export."""

from __future__ import annotations

import os
import signal
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from tessera.config import ConfigError
from tessera.models import build_model, load_model, model_kwargs, save_model
from tessera.train.data import (
    HOLE_FILL,
    KINDS,
    DegradeConfig,
    ImageFolder,
    StepBatches,
    apply_plan,
    degrade,
    degrade_batch,
    make_batch,
    plans_to_tensors,
    sample_plan,
)
from tessera.train.losses import gradient_penalty, masked_psnr, masked_recon
from tessera.train.loop import TrainConfig, TrainError, export_checkpoint, fit, init_generator, load_checkpoint
from tessera.train.recipes import RecipeConfig, build_recipe

DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"


pytestmark = pytest.mark.usefixtures("one_thread")


def photo(h: int = 64, w: int = 64, seed: int = 0) -> np.ndarray:
    """A smooth synthetic photo (gradients + a disc) as RGB uint8."""
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    r = np.random.default_rng(seed)
    a = r.uniform(0.5, 2.0, 3)
    img = np.stack([128 + 100 * np.sin(a[c] * xx / w * 3 + c) * np.cos(a[c] * yy / h * 2) for c in range(3)], -1)
    img[(yy - h / 2) ** 2 + (xx - w / 3) ** 2 < (h / 5) ** 2] = [220, 40, 60]
    return img.clip(0, 255).astype(np.uint8)


@pytest.fixture
def folder(tmp_path):
    """A folder with good photos, a grey one, a small one, a broken one, in sub folders."""
    root = tmp_path / "photos"
    (root / "a" / "b").mkdir(parents=True)
    for i in range(4):
        Image.fromarray(photo(80, 96, i)).save(root / "a" / f"p{i}.png")
    Image.fromarray(photo(72, 72, 9)[..., 0]).save(root / "a" / "b" / "grey.png")
    Image.fromarray(photo(40, 50, 5)).save(root / "small.jpg")
    (root / "broken.jpg").write_bytes(b"\xff\xd8 this is not a jpeg")
    (root / "notes.txt").write_text("not an image")
    return root


# ---------------------------------------------------------------- degradations


def test_degrade_is_pure_and_seeded():
    img = photo(128, 128)
    cfg = DegradeConfig(region=64)
    a = degrade(img, np.random.default_rng(3), cfg)
    b = degrade(img, np.random.default_rng(3), cfg)
    assert np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1]) and a[2] == b[2]
    assert img.sum() == photo(128, 128).sum()  # input untouched


@pytest.mark.parametrize("kind", KINDS)
def test_each_degradation_changes_only_the_mask(kind):
    img = photo(128, 128, 1)
    cfg = DegradeConfig(region=64, kinds=(kind,), kind_weights=(1.0,), jpeg_prob=0.0)
    for seed in range(5):
        out, mask, info = degrade(img, np.random.default_rng(seed), cfg)
        assert info["kind"] == kind and out.shape == img.shape and out.dtype == np.uint8
        assert mask.dtype == bool and mask.any()
        assert np.array_equal(out[~mask], img[~mask])
        x, y, w, h = info["box"]
        assert w <= 64 and h <= 64
        if kind == "hole":
            assert (out[mask] == HOLE_FILL).all()
        if kind == "mosaic":
            assert 4 <= min(info["cell"]) and max(info["cell"]) <= 24


def test_jpeg_changes_the_whole_image_but_keeps_holes():
    img = photo(96, 96, 2)
    cfg = DegradeConfig(region=48, kinds=("hole",), kind_weights=(1.0,), jpeg_prob=1.0, jpeg_quality=(30, 30))
    out, mask, info = degrade(img, np.random.default_rng(0), cfg)
    assert info["quality"] == 30
    assert (out[mask] == HOLE_FILL).all()
    assert not np.array_equal(out[~mask], img[~mask])


def test_torch_batch_path_matches_numpy_for_mosaics_and_holes():
    # on CPU both paths use OpenCV's JPEG, so even the JPEG'd samples agree bit for bit
    cfg = DegradeConfig(region=48, kinds=("mosaic", "hole"), kind_weights=(0.7, 0.3), jpeg_prob=0.5, feather_prob=0.5)
    rng = np.random.default_rng(11)
    crops = [photo(96, 96, s) for s in range(8)]
    plans = [sample_plan((96, 96), rng, cfg) for _ in crops]
    clean = torch.from_numpy(np.stack(crops)).permute(0, 3, 1, 2).contiguous()
    assert 0 < sum(p.quality > 0 for p in plans) < len(plans)
    out, mask = degrade_batch(clean, plans_to_tensors(plans))
    for i, (c, p) in enumerate(zip(crops, plans)):
        ref, ref_mask, _ = apply_plan(c, p)
        assert np.array_equal(out[i].permute(1, 2, 0).numpy(), ref)
        assert np.array_equal(mask[i].numpy(), ref_mask)


def test_blur_batch_path_is_close_to_numpy():
    cfg = DegradeConfig(region=48, kinds=("blur",), kind_weights=(1.0,), jpeg_prob=0.0)
    rng = np.random.default_rng(4)
    c = photo(96, 96, 3)
    p = sample_plan((96, 96), rng, cfg)
    out, mask = degrade_batch(torch.from_numpy(c).permute(2, 0, 1)[None].contiguous(), plans_to_tensors([p]))
    ref, ref_mask, _ = apply_plan(c, p)
    assert np.array_equal(mask[0].numpy(), ref_mask)
    assert np.abs(out[0].permute(1, 2, 0).numpy().astype(int) - ref).max() <= 3


# ---------------------------------------------------------------- folders and batches


def test_folder_skips_broken_converts_grey_and_handles_small(folder):
    f = ImageFolder(folder, crop=64, small="skip")
    assert len(f) == 7  # 4 photos + grey + small + broken, recursively; the .txt is ignored
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        crops = [f.random_crop(np.random.default_rng(s)) for s in range(40)]
    assert any("broken.jpg" in str(w.message) for w in caught)
    assert all(c.shape == (64, 64, 3) and c.dtype == np.uint8 for c in crops)
    names = {f.files[i].name for i in f._bad}
    assert names == {"broken.jpg", "small.jpg"}
    grey = f.load([i for i, p in enumerate(f.files) if p.name == "grey.png"][0])
    assert grey.shape == (72, 72, 3) and (grey[..., 0] == grey[..., 1]).all()
    up = ImageFolder(folder, crop=64, small="upscale")
    small = up.load([i for i, p in enumerate(up.files) if p.name == "small.jpg"][0])
    assert min(small.shape[:2]) == 64 and small.shape[2] == 3


def test_step_batches_are_a_function_of_the_step(folder):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ds = StepBatches(ImageFolder(folder, crop=64), 3, DegradeConfig(region=32), seed=5)
        a, b, c = ds[7], ds[7], ds[8]
    assert torch.equal(a["clean"], b["clean"]) and torch.equal(a["region"], b["region"])
    assert not torch.equal(a["clean"], c["clean"])
    x, m, t = make_batch(a, "cpu", None, 0)
    assert x.shape == (3, 4, 64, 64) and m.shape == (3, 1, 64, 64) and t.shape == (3, 3, 64, 64)
    assert torch.equal(x[:, 3:], m)
    assert float(x.abs().max()) <= 1 and float(t.abs().max()) <= 1
    holes = [i for i, k in enumerate(a["kind"].tolist()) if KINDS[k] == "hole"]
    for i in holes:
        assert float(x[i, :3][m[i].expand(3, -1, -1) > 0].abs().max()) == 0.0


# ---------------------------------------------------------------- losses


def test_gradient_penalty_matches_hand_computation():
    # linear critic f(x) = <w, x>: the gradient is w everywhere, so GP = (|w| - 1)^2
    w = torch.tensor([[[[3.0, 0.0], [0.0, 4.0]]]])  # |w| = 5
    linear = lambda x: (x * w).flatten(1).sum(1)  # noqa: E731
    real, fake = torch.rand(3, 1, 2, 2), torch.rand(3, 1, 2, 2)
    assert torch.allclose(gradient_penalty(linear, real, fake), torch.tensor(16.0))
    # quadratic critic f(x) = 0.5 |x|^2: the gradient at x_hat is x_hat itself
    quad = lambda x: 0.5 * x.flatten(1).square().sum(1)  # noqa: E731
    alpha = torch.tensor([0.0, 0.5, 1.0])
    x_hat = alpha.view(3, 1, 1, 1) * real + (1 - alpha.view(3, 1, 1, 1)) * fake
    hand = ((x_hat.flatten(1).norm(dim=1) - 1) ** 2).mean()
    gp = gradient_penalty(quad, real, fake, alpha=alpha)
    assert torch.allclose(gp, hand)
    # and it is differentiable for the critic's parameters
    lin = torch.nn.Linear(4, 1)
    gp = gradient_penalty(lambda x: lin(x.flatten(1)), real, fake)
    gp.backward()
    assert lin.weight.grad is not None and float(lin.weight.grad.abs().sum()) > 0


def test_masked_losses_and_psnr():
    t = torch.zeros(1, 3, 4, 4)
    p = t.clone()
    m = torch.zeros(1, 1, 4, 4)
    m[..., :2, :] = 1
    p[..., :2, :] = 0.2  # error 0.2 inside, 0 outside
    assert torch.allclose(masked_recon(p, t, m), torch.tensor(0.2))
    assert torch.allclose(masked_recon(p, t, m, kind="mse"), torch.tensor(0.04))
    assert torch.allclose(masked_psnr(p, t, m), torch.tensor([10 * np.log10(4 / 0.04)], dtype=torch.float32))


# ---------------------------------------------------------------- recipes


@pytest.mark.parametrize("name", ["unet", "pix2pix", "deepfill"])
def test_twenty_steps_on_a_fixed_batch_lower_the_loss(name):
    torch.manual_seed(0)
    imgs = np.stack([photo(32, 32, s) for s in range(4)])
    target = torch.from_numpy(imgs).permute(0, 3, 1, 2).float() / 127.5 - 1
    mask = torch.zeros(4, 1, 32, 32)
    mask[..., 8:24, 10:26] = 1
    x = torch.cat([target * (1 - mask), mask], 1)
    cfg = RecipeConfig(lr=1e-3, d_base=8, local_size=16)
    recipe = build_recipe(name, model_kwargs(name, "tiny"), cfg)
    key = {"unet": "mse", "pix2pix": "l1", "deepfill": "l1"}[name]
    first = recipe.step(x, mask, target)
    for _ in range(19):
        last = recipe.step(x, mask, target)
    assert all(np.isfinite(v) for v in last.values())
    assert last[key] < 0.8 * first[key], (first, last)


def test_deepfill_warmup_trains_the_generator_alone_then_the_critics():
    torch.manual_seed(0)
    target = torch.from_numpy(np.stack([photo(32, 32, s) for s in range(2)])).permute(0, 3, 1, 2).float() / 127.5 - 1
    mask = torch.zeros(2, 1, 32, 32)
    mask[..., 8:24, 8:24] = 1
    x = torch.cat([target * (1 - mask), mask], 1)
    recipe = build_recipe("deepfill", model_kwargs("deepfill", "tiny"), RecipeConfig(lr=1e-3, d_base=8, local_size=16, warmup=2))

    def critic_sum() -> float:
        return float(sum(p.detach().abs().sum() for p in recipe.nets["critic"].parameters()))

    g0, c0 = [p.detach().clone() for p in recipe.generator.parameters()], critic_sum()
    for step in range(2):  # the warm-up: L1 only, the critics do not move
        recipe.at_step = step
        out = recipe.step(x, mask, target)
        assert set(out) == {"loss", "l1"} and critic_sum() == c0
    assert any(not torch.equal(a, b) for a, b in zip(g0, recipe.generator.parameters()))
    recipe.at_step = 2  # then the adversarial stage
    out = recipe.step(x, mask, target)
    assert {"g_adv", "d", "gp"} <= set(out) and critic_sum() != c0
    with pytest.raises(ConfigError):
        RecipeConfig(warmup=-1)


def test_bf16_autocast_and_channels_last_step():
    recipe = build_recipe("unet", model_kwargs("unet", "tiny"), RecipeConfig(amp="bf16"))
    recipe.to("cpu", channels_last=True)
    x = torch.rand(2, 4, 32, 32).contiguous(memory_format=torch.channels_last)
    out = recipe.step(x, x[:, 3:], x[:, :3])
    assert np.isfinite(out["loss"])


# ---------------------------------------------------------------- fit, resume, export


def _cfg(data: Path, out: Path, **kw) -> TrainConfig:
    base = dict(data=data, out=out, model="pix2pix", preset="tiny", steps=4, batch=2, crop=32, region=16,
                workers=0, log_every=1, eval_every=2, sample_every=2, ckpt_every=100, val_count=2,
                recipe=RecipeConfig(d_base=8))
    base.update(kw)
    return TrainConfig(**base)


def test_checkpoint_resume_gives_a_bit_identical_next_step(folder, tmp_path):
    # run A: 4 steps straight. run B: SIGINT during step 3 (saves, stops), then --resume.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        seen_a: dict[int, dict] = {}
        fit(_cfg(folder, tmp_path / "a", val=folder), lambda s, n, l: seen_a.__setitem__(s, l))

        def interrupt(step, total, losses):
            if step == 3:
                os.kill(os.getpid(), signal.SIGINT)

        summary = fit(_cfg(folder, tmp_path / "b", val=folder), interrupt)
        assert summary["interrupted"] and summary["step"] == 3
        assert load_checkpoint(tmp_path / "b" / "checkpoint.pt")["step"] == 3
        seen_b: dict[int, dict] = {}
        summary = fit(_cfg(folder, tmp_path / "b", val=folder, resume=True), lambda s, n, l: seen_b.__setitem__(s, l))
    assert summary["step"] == 4 and list(seen_b) == [4]
    assert seen_b[4] == seen_a[4]
    a = load_checkpoint(tmp_path / "a" / "checkpoint.pt")["recipe"]
    b = load_checkpoint(tmp_path / "b" / "checkpoint.pt")["recipe"]
    for net in a["nets"]:
        for k, v in a["nets"][net].items():
            assert torch.equal(v, b["nets"][net][k]), (net, k)
    assert torch.equal(a["optimizers"]["generator"]["state"][0]["exp_avg"], b["optimizers"]["generator"]["state"][0]["exp_avg"])
    # logs: JSONL metrics with validation scores, sample grids
    lines = (tmp_path / "a" / "metrics.jsonl").read_text().splitlines()
    assert any('"kind": "val"' in line and '"psnr"' in line for line in lines)
    grid = Image.open(tmp_path / "a" / "samples" / "step_0000004.png")
    assert grid.size == (3 * 32, 2 * 32)


def test_export_then_load_model(folder, tmp_path):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        summary = fit(_cfg(folder, tmp_path / "run", model="deepfill", steps=2, recipe=RecipeConfig(d_base=8, local_size=16)))
    path = export_checkpoint(tmp_path / "run" / "checkpoint.pt", tmp_path / "w.safetensors")
    model = load_model(path)
    assert model.name == "deepfill" and model.kwargs == {"base": 4, "dilations": (2, 4)}
    assert model.metadata["step"] == "2"
    assert model.metadata["flips"] == "1"  # adversarial: run once, its texture is not averaged away
    g = summary["recipe"].generator.eval()
    x = torch.rand(1, 4, 32, 32)
    with torch.no_grad():
        assert torch.equal(model(x), g(x))


def test_resume_refuses_another_model(folder, tmp_path):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fit(_cfg(folder, tmp_path / "r", model="unet", steps=1))
        with pytest.raises(Exception, match="holds unet"):
            fit(_cfg(folder, tmp_path / "r", model="pix2pix", steps=2, resume=True))


def test_init_copies_saved_weights_and_refuses_another_shape(folder, tmp_path):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fit(_cfg(folder, tmp_path / "a", model="unet", steps=2))
    path = export_checkpoint(tmp_path / "a" / "checkpoint.pt", tmp_path / "a.safetensors")
    kwargs = model_kwargs("unet", "tiny")
    fresh = build_recipe("unet", kwargs, RecipeConfig()).generator.eval()
    saved = load_model(path)
    x = torch.rand(1, 4, 32, 32)
    with torch.no_grad():
        assert not torch.equal(fresh(x), saved(x))
        init_generator(fresh, path, "unet", kwargs)
        assert torch.equal(fresh(x), saved(x))
    assert "flips" not in saved.metadata  # a pixel-loss U-Net keeps the flip ensemble
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(TrainError, match="--init"):
            fit(_cfg(folder, tmp_path / "b", model="unet", steps=1, model_kwargs={"base": 8}, init=path))
        with pytest.raises(TrainError, match="--init"):
            fit(_cfg(folder, tmp_path / "c", model="unet", steps=1, init=tmp_path / "missing.safetensors"))


@pytest.mark.skipif(not (DATA / "faces" / "train").is_dir(), reason="bundled photos not present")
def test_real_photos_batch():
    f = ImageFolder(DATA / "faces" / "train", crop=64)
    ds = StepBatches(f, 4, DegradeConfig(region=32), seed=0)
    x, m, t = make_batch(ds[0], "cpu", None, 0)
    assert x.shape == (4, 4, 64, 64) and float(m.mean()) > 0


def test_log_mse_weighs_every_sample_alike():
    """log_mse is the mean per-sample log MSE: a sample with 100x the error gets 1/100 of the
    per-pixel gradient, so easy samples count as much as hard ones (mean PSNR)."""
    import math

    import torch

    from tessera.train.losses import log_mse

    target = torch.zeros(2, 3, 4, 4)
    pred = torch.cat([torch.full((1, 3, 4, 4), 0.1), torch.full((1, 3, 4, 4), 1.0)]).requires_grad_(True)
    mask = torch.zeros(2, 1, 4, 4)
    mask[:, :, :2] = 1.0
    loss = log_mse(pred, target, mask, valid_weight=0.0, eps=0.0)
    assert loss.item() == pytest.approx((math.log(0.01) + math.log(1.0)) / 2, rel=1e-6)
    loss.backward()
    g = pred.grad[:, :, :2].abs().mean((1, 2, 3))
    assert (g[0] / g[1]).item() == pytest.approx(10.0, rel=1e-5)  # d/dp log(p^2) = 2/p
    assert pred.grad[:, :, 2:].abs().max().item() == 0.0  # visible pixels are not weighted (valid_weight 0)


def test_init_grows_a_unet_by_identity_blocks(tmp_path):
    """A U-Net grown by residual blocks computes exactly what its saved source did, trains away
    from it, and a model with blocks the grown one lacks is refused."""
    torch.manual_seed(0)
    small = build_model("unet", base=4, depth=3)
    path = save_model(small, tmp_path / "small.safetensors", "unet", small.kwargs)
    grown_kwargs = {"base": 4, "depth": 3, "blocks": [0, 1, 2]}
    grown = build_model("unet", **grown_kwargs).eval()
    init_generator(grown, path, "unet", grown_kwargs)
    x = torch.rand(2, 4, 32, 32) * 2 - 1
    with torch.no_grad():
        assert torch.equal(grown(x), small.eval()(x))
    grown.train()
    opt = torch.optim.SGD(grown.blocks.parameters(), lr=0.1)
    for _ in range(2):
        opt.zero_grad()
        (grown(x) - x[:, :3].flip(-1)).square().mean().backward()
        opt.step()
    with torch.no_grad():
        assert (grown.eval()(x) - small(x)).abs().max() > 1e-4  # the new blocks learn
    bigger = save_model(grown, tmp_path / "grown.safetensors", "unet", grown_kwargs)
    with pytest.raises(TrainError, match="not a subset"):
        init_generator(build_model("unet", base=4, depth=3, blocks=[0, 1]), bigger, "unet", {"base": 4, "depth": 3, "blocks": [0, 1]})
    with pytest.raises(TrainError, match="holds unet"):
        init_generator(build_model("unet", base=8, depth=3), path, "unet", {"base": 8, "depth": 3, "residual": True})


def test_a_pix2pix_generator_starts_from_a_unet_with_the_same_layers(tmp_path):
    """pix2pix's generator is a U-Net with other defaults: a saved U-Net with the same layers and the
    same input/output conventions starts it (it computes the same), anything else is refused."""
    torch.manual_seed(0)
    kwargs = {"base": 4, "depth": 3, "residual": True, "prefill": "smooth"}
    unet = build_model("unet", **kwargs).eval()
    with torch.no_grad():  # the residual U-Net starts as the identity: make it compute something
        for p in unet.parameters():
            p.add_(0.05 * torch.randn_like(p))
    path = save_model(unet, tmp_path / "u.safetensors", "unet", kwargs)
    p2p_kwargs = {**kwargs, "dropout": 0.0}
    p2p = build_model("pix2pix", **p2p_kwargs).eval()
    init_generator(p2p, path, "pix2pix", p2p_kwargs)
    x = torch.rand(2, 4, 32, 32) * 2 - 1
    with torch.no_grad():
        assert torch.equal(p2p(x), unet(x)) and (unet(x) - x[:, :3]).abs().max() > 1e-3
    with pytest.raises(TrainError, match="holds unet"):  # the paper's 8 levels: other layers
        init_generator(build_model("pix2pix", base=4), path, "pix2pix", {"base": 4})
    other_io = {**p2p_kwargs, "prefill": "none"}  # same weights, another input
    with pytest.raises(TrainError, match="holds unet"):
        init_generator(build_model("pix2pix", **other_io), path, "pix2pix", other_io)
