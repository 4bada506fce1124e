"""Multi-scale neural patch synthesis: its losses (exact values on tiny tensors), that the
nearest-patch search picks an exactly repeated patch, and that synthesis lowers its energy."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from tessera.models import build_model
from tessera.restore.classical import telea
from tessera.restore.patch import (
    CriticFeatures,
    PatchConfig,
    PatchRefiner,
    content_loss,
    known_patches,
    nearest_patches,
    refine_patch,
    texture_loss,
    tv_loss,
)


def test_content_loss_exact():
    x = torch.zeros(1, 2, 2, 2)
    c = torch.tensor([[[[1.0, 2.0], [3.0, 4.0]], [[0.0, 0.0], [0.0, -2.0]]]])
    hole = torch.tensor([[True, False], [False, True]])
    # hole pixels: (0,0): 1, 0 and (1,1): 16, 4 -> (1 + 0 + 16 + 4) / 4
    assert content_loss(x, c, hole).item() == pytest.approx(21 / 4)


def test_tv_loss_exact():
    x = torch.tensor([[[[0.0, 1.0], [3.0, 1.0]]]])  # vertical diffs 3, 0; horizontal 1, -2
    assert tv_loss(x).item() == pytest.approx((9 + 0 + 1 + 4) / 4)
    hole = torch.tensor([[True, False], [False, False]])  # pairs touching (0,0): down (3) and right (1)
    assert tv_loss(x, hole).item() == pytest.approx((9 + 1) / 2)


def test_known_patches_are_wholly_known():
    feat = torch.arange(2 * 5 * 6, dtype=torch.float32).reshape(1, 2, 5, 6)
    known = torch.ones(5, 6, dtype=torch.bool)
    known[2, 3] = False
    patches, centres = known_patches(feat, known, 3)
    # centres rows 1..3 x cols 1..4; those whose 3x3 window holds (2, 3) (cols 2..4) are out
    assert patches.shape == (3, 2, 3, 3)
    assert centres.tolist() == [[1, 1], [2, 1], [3, 1]]
    for (cy, cx), p in zip(centres.tolist(), patches):
        assert torch.equal(p, feat[0, :, cy - 1 : cy + 2, cx - 1 : cx + 2])
        assert abs(cy - 2) > 1 or abs(cx - 3) > 1
    capped, _ = known_patches(feat, torch.ones(5, 6, dtype=torch.bool), 3, max_known=4)
    assert len(capped) <= 4


def test_nearest_patch_picks_an_exactly_repeated_patch():
    g = torch.Generator().manual_seed(0)
    feat = torch.randn(1, 4, 12, 12, generator=g)
    known = torch.ones(12, 12, dtype=torch.bool)
    known[7:10, 7:10] = False  # a 3x3 hole centred on (8, 8)
    src = (3, 2)  # a wholly known patch
    feat[0, :, 7:10, 7:10] = feat[0, :, 2:5, 1:4]
    hole = torch.zeros(12, 12, dtype=torch.bool)
    hole[8, 8] = True
    patches, centres = known_patches(feat, known, 3)
    idx = nearest_patches(feat, torch.tensor([[8, 8]]), patches)
    assert centres[idx[0]].tolist() == list(src)
    loss, picked = texture_loss(feat, hole, known, 3)
    assert picked.tolist() == [list(src)]
    assert loss.item() == pytest.approx(0.0, abs=1e-12)
    # normalized cross-correlation: a scaled copy is still the nearest, but no longer free
    feat2 = feat.clone()
    feat2[0, :, 7:10, 7:10] *= 2.5
    loss2, picked2 = texture_loss(feat2, hole, known, 3)
    assert picked2.tolist() == [list(src)]
    expect = (1.5 * feat[0, :, 2:5, 1:4]).square().mean().item()
    assert loss2.item() == pytest.approx(expect, rel=1e-5)


def tiny_features():
    torch.manual_seed(0)
    model = build_model("dcgan", z_dim=8, g_base=4, d_base=8, size=16)
    return CriticFeatures(model.critic, (0, 1))


def test_refine_patch_lowers_energy_and_keeps_known_pixels():
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[:48, :40]
    stripes = ((np.sin(xx / 2.0) * 60 + 128)[..., None] + rng.normal(0, 5, (48, 40, 1))).clip(0, 255)
    image = np.repeat(stripes, 3, axis=2).astype(np.uint8)
    mask = np.zeros((48, 40), bool)
    mask[16:32, 12:28] = True
    content = telea(image, mask)
    cfg = PatchConfig(scales=2, iters=8, min_side=16, texture_weight=10.0)
    res = refine_patch(image, mask, content, tiny_features(), cfg)
    assert res.sizes == [(24, 20), (48, 40)]
    assert len(res.energy) == 2 and all(len(e) == 9 for e in res.energy)
    assert all(e[-1] < e[0] for e in res.energy)
    assert res.image.dtype == np.uint8 and np.array_equal(res.image[~mask], image[~mask])


def test_patch_refiner_wraps_a_restorer():
    rng = np.random.default_rng(1)
    image = rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)
    mask = np.zeros((32, 32), bool)
    mask[10:20, 10:20] = True
    r = PatchRefiner(lambda img, m, g, k: telea(img, m), tiny_features(), PatchConfig(scales=1, iters=3))
    out = r(image, mask, None, "hole")
    assert np.array_equal(out[~mask], image[~mask])
    assert not np.array_equal(out[mask], image[mask])


@pytest.mark.slow
def test_cli_restore_refine_patch(tmp_path):
    """`tessera restore --refine patch` on a small face from faces/val (shipped DCGAN critic features)."""
    import subprocess
    import sys
    from pathlib import Path

    from PIL import Image

    from tessera.weights import SHIPPED, weights_dir

    if not (weights_dir() / SHIPPED["dcgan"]).is_file():
        pytest.skip("shipped DCGAN weights missing")
    face = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "faces" / "val" / "face-0018.jpg"
    img = np.asarray(Image.open(face).convert("RGB").resize((48, 48)))
    mask = np.zeros((48, 48), np.uint8)
    mask[16:32, 16:32] = 255
    Image.fromarray(img).save(tmp_path / "in.png")
    Image.fromarray(mask).save(tmp_path / "mask.png")
    cmd = [sys.executable, "-m", "tessera", "restore", str(tmp_path / "in.png"), "--mask", str(tmp_path / "mask.png"), "--kind", "hole"]
    r = subprocess.run([*cmd, "--model", "telea", "--refine", "patch", "-o", str(tmp_path / "out.png")], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    out = np.asarray(Image.open(tmp_path / "out.png").convert("RGB"))
    assert np.array_equal(out[mask == 0], img[mask == 0])
    bad = subprocess.run([*cmd, "--refine", "sharpen", "-o", str(tmp_path / "bad.png")], capture_output=True, text=True)
    assert bad.returncode == 2
