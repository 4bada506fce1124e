"""Perceptual measures (issue 16): detail ratio, NIQE, the two-sample critic, and their place in
`tessera eval`."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from tessera.evaluate import (
    EvalConfig,
    NIQE_MODEL,
    NiqeModel,
    detail_ratio,
    fit_aggd,
    fit_ggd,
    gradient_magnitude,
    markdown_table,
    mscn,
    mvg_distance,
    niqe,
    niqe_features,
    pair_crops,
    run_eval,
    two_sample_critic,
)
from tessera.train.losses import masked_detail_ratio

ROOT = Path(__file__).resolve().parents[2]
BOAT = ROOT / "examples" / "boat.png"


def _r_ggd(alpha: float) -> float:
    return math.gamma(2 / alpha) ** 2 / (math.gamma(1 / alpha) * math.gamma(3 / alpha))


# ---------------------------------------------------------------- detail ratio


def test_detail_ratio_by_hand_and_same_as_the_training_metric():
    xx = np.tile(np.arange(20, dtype=np.float64), (20, 1))
    steep = np.stack([xx * 4, xx * 4, xx * 4], -1).astype(np.uint8)  # grey ramp, slope 4
    gentle = np.stack([xx * 2] * 3, -1).astype(np.uint8)  # slope 2
    mask = np.zeros((20, 20), bool)
    mask[5:15, 5:15] = True
    assert gradient_magnitude(steep)[10, 10] == 4.0 and gradient_magnitude(steep)[0, 10] == 0.0
    assert detail_ratio(gentle, steep, mask) == pytest.approx(0.5)
    assert detail_ratio(steep, steep, mask) == 1.0
    assert math.isnan(detail_ratio(steep, steep, np.zeros_like(mask)))
    # the validation metric of the training loop (torch, [-1, 1]) agrees
    rng = np.random.default_rng(0)
    a, b = rng.integers(0, 256, (2, 24, 24, 3), dtype=np.uint8)
    m = np.zeros((24, 24), bool)
    m[4:20, 6:18] = True
    t = lambda x: torch.from_numpy(x).permute(2, 0, 1)[None].double() / 127.5 - 1  # noqa: E731
    ours = masked_detail_ratio(t(a), t(b), torch.from_numpy(m)[None, None].double()).item()
    assert ours == pytest.approx(detail_ratio(a, b, m), rel=1e-5)


# ---------------------------------------------------------------- NIQE


def test_ggd_and_aggd_fits_by_hand():
    # x = [-1, 1, -5, 5]: E[x^2] = 13, E|x| = 3, so the fitted shape solves r(alpha) = 9 / 13
    alpha, var = fit_ggd(np.array([-1.0, 1.0, -5.0, 5.0]))
    assert var == 13.0
    assert _r_ggd(alpha) == pytest.approx(9 / 13, abs=1e-4)
    rng = np.random.default_rng(0)
    assert fit_ggd(rng.normal(size=50_000))[0] == pytest.approx(2.0, abs=0.05)  # Gaussian
    assert fit_ggd(rng.laplace(size=50_000))[0] == pytest.approx(1.0, abs=0.05)  # Laplacian
    # AGGD with alpha 2, left scale 1, right scale 2 (each side's mass is proportional to its
    # scale): variances 1 and 4, eta > 0
    x = np.concatenate([-np.abs(rng.normal(size=50_000)), np.abs(rng.normal(scale=2.0, size=100_000))])
    a, eta, vl, vr = fit_aggd(x)
    assert vl == pytest.approx(1.0, rel=0.03) and vr == pytest.approx(4.0, rel=0.03)
    assert a == pytest.approx(2.0, abs=0.1) and eta > 0


def test_mscn_and_mvg_distance_by_hand():
    m, sigma = mscn(np.full((16, 16), 77.0))
    assert np.abs(m).max() < 1e-9 and np.abs(sigma).max() < 1e-6
    # sqrt(d^T ((S1 + S2) / 2)^-1 d) with d = (3, 4): identity -> 5; diag(4, 1) -> sqrt(9/4 + 16)
    assert mvg_distance(np.zeros(2), np.eye(2), np.array([3.0, 4.0]), np.eye(2)) == pytest.approx(5.0)
    d = np.diag([4.0, 1.0])
    assert mvg_distance(np.zeros(2), d, np.array([3.0, 4.0]), d) == pytest.approx(math.sqrt(18.25))


def test_niqe_of_a_one_patch_image_against_a_hand_built_model():
    img = np.asarray(Image.open(BOAT).convert("RGB"))[100:132, 150:182]
    feats = niqe_features(img)
    assert feats.shape == (1, 36)
    # one patch: the test covariance is 0, so the distance is sqrt(d^T (I / 2)^-1 d) = sqrt(2) |d|
    shift = np.zeros(36)
    shift[0] = 3.0
    model = NiqeModel(feats[0] + shift, np.eye(36), 32, 1)
    assert niqe(img, model=model) == pytest.approx(3.0 * math.sqrt(2), rel=1e-9)
    assert niqe(img, model=NiqeModel(feats[0], np.eye(36), 32, 1)) == pytest.approx(0.0, abs=1e-9)
    with pytest.raises(ValueError, match="at least 32x32"):
        niqe_features(img[:20])


def test_shipped_niqe_model_finds_blur_and_noise_less_natural():
    import cv2

    assert NIQE_MODEL.is_file()
    model = NiqeModel.load()
    assert model.mean.shape == (36,) and model.cov.shape == (36, 36) and model.patches > 1000
    img = np.asarray(Image.open(BOAT).convert("RGB"))[:192, :192]
    blurred = cv2.GaussianBlur(img, (0, 0), 2.5)
    noisy = np.clip(img + np.random.default_rng(0).normal(0, 25, img.shape), 0, 255).astype(np.uint8)
    mask = np.zeros(img.shape[:2], bool)
    mask[40:150, 30:160] = True
    base = niqe(img, mask)
    assert np.isfinite(base) and niqe(blurred, mask) > base + 1.5 and niqe(noisy, mask) > base + 0.5  # 3.95, 5.98, 4.70


# ---------------------------------------------------------------- two-sample critic


def test_pair_crops_share_positions_and_the_critic_tells_apart_only_what_differs():
    rng = np.random.default_rng(0)
    photos = [rng.integers(0, 256, (48, 48, 3), dtype=np.uint8) for _ in range(12)]
    masks = [np.zeros((48, 48), bool) for _ in photos]
    for m in masks:
        m[10:40, 8:36] = True
    flat = [np.where(m[..., None], 128, p).astype(np.uint8) for p, m in zip(photos, masks)]  # smudged regions
    real, fake = pair_crops(photos, photos, masks, per_case=6, size=16, seed=1)
    assert real.shape == (72, 16, 16, 4) and np.array_equal(real, fake)  # same positions
    assert set(np.unique(real[..., 3])) <= {0, 255} and (real[:, 8, 8, 3] == 255).all()  # centres in the region
    r, f = pair_crops(flat, photos, masks, per_case=6, size=16, seed=1)
    tr, tf, vr, vf = r[:36], f[:36], r[36:], f[36:]
    assert two_sample_critic(tr, tf, vr, vf, steps=40, batch=16, width=8) > 0.9  # a smudge is easy to spot
    # restorations that are photos of the same kind: the critic cannot do better than chance
    other = [rng.integers(0, 256, (48, 48, 3), dtype=np.uint8) for _ in photos]
    r, f = pair_crops(other, photos, masks, per_case=6, size=16, seed=1)
    acc = two_sample_critic(r[:36], f[:36], r[36:], f[36:], steps=40, batch=16, width=8)
    assert 0.3 <= acc <= 0.7


# ---------------------------------------------------------------- tessera eval


def test_run_eval_scores_detail_niqe_and_the_critic(tmp_path):
    img = np.asarray(Image.open(BOAT).convert("RGB"))
    data, train = tmp_path / "val", tmp_path / "train"
    data.mkdir()
    train.mkdir()
    Image.fromarray(img[:160, :160]).save(data / "a.png")
    Image.fromarray(img[128:288, 160:320]).save(train / "b.png")
    cfg = EvalConfig(data=data, models=("smooth",), output=tmp_path / "r", cases=2, kinds=("box",), niqe=True,
                     critic_data=train, critic_cases=2, critic_steps=20)
    summary, scores = run_eval(cfg)
    row = summary["smooth"]
    assert 0.05 < row["detail"] < 1.0  # interpolation is smoother than the photo
    assert np.isfinite(row["niqe"]) and np.isfinite(row["niqe_original"]) and row["niqe"] != row["niqe_original"]
    assert 0.0 <= row["critic"] <= 1.0
    assert all(s.detail is not None and s.niqe is not None for s in scores)
    table = markdown_table(summary)
    assert "detail ratio" in table and "NIQE (original)" in table and "critic accuracy" in table
    assert table.splitlines()[1].count("|") == table.splitlines()[2].count("|")
    with pytest.raises(ValueError, match=">= 1"):
        EvalConfig(data=data, critic_steps=0)


# ---------------------------------------------------------------- shipped GAN weights


FACES_VAL = ROOT.parent / "shared" / "data" / "faces" / "val"
SCENES_VAL = ROOT.parent / "shared" / "data" / "scenes" / "val"


@pytest.mark.skipif(not (FACES_VAL / "face-0033.jpg").exists(), reason="../shared/data not present")
@pytest.mark.parametrize("fidelity,gan,photo,lowest,gain", [
    ("faces", "faces-gan", FACES_VAL / "face-0033.jpg", 0.8, 0.1),  # measured: 0.727 -> 0.906
    ("scenes", "scenes-gan", SCENES_VAL / "set14-img_008_SRF_2_HR.png", 0.8, 0.1),  # measured at GAN step 1500: 0.735 -> 0.935
])
def test_shipped_gan_model_restores_sharper_and_consistent(fidelity, gan, photo, lowest, gain):
    from tessera.io.image import read_image
    from tessera.mosaic.pixelate import pixelate
    from tessera.mosaic.region import Grid
    from tessera.restore.consistency import remosaic_residual
    from tessera.restore.pipeline import restore_image
    from tessera.restore.restorer import MODEL_TABLE, resolve_model
    from tessera.weights import SHIPPED

    assert gan in SHIPPED and gan in MODEL_TABLE and resolve_model(gan).flips == 1
    img, _ = read_image(photo)  # a held-out photo (the face is 139x144)
    img = img[:192, :192]
    H, W = img.shape[:2]
    box = np.zeros((H, W), bool)
    box[H // 4 : 3 * H // 4, W // 4 : 3 * W // 4] = True
    deg, mask = pixelate(img, box, cell=8)  # mask: the whole cells that were mosaicked
    grid = Grid(8, 8)
    outs = {m: restore_image(deg, mask, restorer=resolve_model(m), grid=grid, kind="mosaic").image for m in (fidelity, gan)}
    for out in outs.values():
        assert remosaic_residual(out, deg, mask, grid) == 0.0 and (out[~mask] == deg[~mask]).all()
    fid, ours = detail_ratio(outs[fidelity], img, mask), detail_ratio(outs[gan], img, mask)
    assert ours > fid + gain and lowest < ours < 1.2, (fid, ours)
