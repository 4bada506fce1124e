"""The detector (segnet) and the DCGAN train through the same fit as the restorers: same
checkpoints, exact resume, export to the one weight format."""

from __future__ import annotations

import os
import signal
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from tessera import weights
from tessera.train.loop import TrainConfig, export_checkpoint, fit, load_checkpoint
from tessera.train.recipes import RecipeConfig


@pytest.fixture
def photos(tmp_path):
    root = tmp_path / "photos"
    root.mkdir()
    rng = np.random.default_rng(0)
    for i in range(4):
        y, x = np.mgrid[0:48, 0:56]
        img = np.stack([(x * 4 + i * 20) % 256, (y * 5) % 256, ((x + y) * 3) % 256], -1) + rng.integers(0, 20, (48, 56, 3))
        Image.fromarray(np.clip(img, 0, 255).astype(np.uint8)).save(root / f"p{i}.png")
    return root


def _cfg(data: Path, out: Path, model: str, **kw) -> TrainConfig:
    base = dict(data=data, out=out, model=model, preset="tiny", steps=4, batch=2, crop=32, workers=0, log_every=1,
                ckpt_every=100, lr=1e-3, recipe=RecipeConfig(d_base=8))
    base.update(kw)
    return TrainConfig(**base)


@pytest.mark.parametrize("model, crop", [("segnet", 32), ("dcgan", 16)])
def test_fit_trains_exports_and_resumes_exactly(photos, tmp_path, model, crop):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        seen: dict[int, dict] = {}
        fit(_cfg(photos, tmp_path / "a", model, crop=crop), lambda s, n, l: seen.__setitem__(s, l))
        def interrupt(step, total, losses):  # Ctrl-C during step 2: saved there, resumed below
            if step == 2:
                os.kill(os.getpid(), signal.SIGINT)

        assert fit(_cfg(photos, tmp_path / "b", model, crop=crop), interrupt)["step"] == 2
        resumed: dict[int, dict] = {}
        fit(_cfg(photos, tmp_path / "b", model, crop=crop, resume=True), lambda s, n, l: resumed.__setitem__(s, l))
    assert list(seen) == [1, 2, 3, 4] and all(np.isfinite(v) for l in seen.values() for v in l.values())
    assert resumed[4] == seen[4]  # step 4 after a resume is the same step
    a = load_checkpoint(tmp_path / "a" / "checkpoint.pt")["recipe"]["nets"]
    b = load_checkpoint(tmp_path / "b" / "checkpoint.pt")["recipe"]["nets"]
    assert all(torch.equal(v, b[n][k]) for n in a for k, v in a[n].items())
    path = export_checkpoint(tmp_path / "a" / "checkpoint.pt", tmp_path / f"{model}.safetensors")
    net = weights.load(path)
    assert net.name == model and net.metadata["step"] == "4"
    if model == "segnet":
        from tessera.models.segnet import load_segnet

        x = torch.rand(1, 3, 32, 32) * 2 - 1
        with torch.no_grad():
            plain, fused = net(x), load_segnet(path, fuse=True)(x)
        assert torch.allclose(plain, fused, atol=1e-4)
    else:  # the whole DCGAN (generator and critic) is exported
        assert net.generator(torch.randn(2, net.z_dim)).shape == (2, 3, 16, 16)
        trained = load_checkpoint(tmp_path / "a" / "checkpoint.pt")["recipe"]["nets"]["critic"]
        assert all(torch.equal(v, net.critic.state_dict()[k]) for k, v in trained.items())


def test_dcgan_needs_its_image_size_as_crop(photos, tmp_path):
    from tessera.train.loop import TrainError

    with pytest.raises(TrainError, match="image size 16"):
        fit(_cfg(photos, tmp_path / "c", "dcgan", crop=32))
