"""Zoo mosaics in the training data (DegradeConfig.zoo_prob)."""

from __future__ import annotations

import numpy as np
import pytest

from tessera.train.data import DegradeConfig, apply_plan, degrade_batch, plans_to_tensors, sample_plan


def test_zoo_prob_zero_keeps_the_old_stream():
    a = [sample_plan((64, 64), np.random.default_rng(s)) for s in range(20)]
    b = [sample_plan((64, 64), np.random.default_rng(s), DegradeConfig(zoo_prob=0.0, zoo=("magick",))) for s in range(20)]
    assert all(np.array_equal(x.region, y.region) and x.cell == y.cell and x.quality == y.quality for x, y in zip(a, b))
    assert not any(p.extra for p in a)


def test_zoo_plans_numpy_and_batch_agree():
    import torch

    cfg = DegradeConfig(region=40, kind_weights=(1.0, 0.0, 0.0), zoo_prob=1.0, zoo=("magick", "ffmpeg-nearest"), zoo_formats=("png", "jpeg"))
    rng = np.random.default_rng(0)
    img = np.random.default_rng(1).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    plans = [sample_plan((64, 64), rng, cfg) for _ in range(4)]
    assert {p.extra["zoo"] for p in plans} <= {"magick", "ffmpeg-nearest"} and all(p.quality == 0 for p in plans)
    clean = torch.from_numpy(np.stack([img] * 4)).permute(0, 3, 1, 2).contiguous()
    out, mask = degrade_batch(clean, plans_to_tensors(plans))
    for i, p in enumerate(plans):
        ref, m, info = apply_plan(img, p)
        assert info["zoo"] == p.extra["zoo"]
        assert np.array_equal(out[i].permute(1, 2, 0).numpy(), ref) and np.array_equal(mask[i].numpy(), m)
        assert m.sum() > 0 and np.abs(ref.astype(int) - img)[m].mean() > 5


def test_zoo_config_is_validated():
    with pytest.raises(ValueError, match="zoo"):
        DegradeConfig(zoo=("rescaled",))
    with pytest.raises(ValueError, match="zoo_prob"):
        DegradeConfig(zoo_prob=1.5)


def test_zoo_plans_carry_the_tools_own_sampling():
    # a plan's sampling is what the zoo's exact lattice says (OpenCV's nearest: the first pixel, not 'centre';
    # ffmpeg's neighbour: 'centre-up'), so the smooth pre-fill reads the cells where the tool took them
    from tessera.mosaic.synth import zoo_apply, zoo_sampling

    gens = ("opencv-nearest", "ffmpeg-nearest", "centre", "centre-up", "magick", "mean")
    assert [zoo_sampling(g) for g in gens] == ["first", "centre-up", "centre", "centre-up", "mean", "mean"]
    img = np.random.default_rng(1).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    region = np.zeros((64, 64), bool)
    region[8:56, 16:56] = True  # 48 x 40 px: whole 8-px cells, an exact lattice for every tool
    for g in gens:
        grid = zoo_apply(img, region, np.random.default_rng(0), g, cell=(8, 8))[2]
        assert grid is not None and grid.sampling == zoo_sampling(g), g
    cfg = DegradeConfig(region=40, kind_weights=(1.0, 0.0, 0.0), zoo_prob=1.0, zoo=("opencv-nearest", "ffmpeg-nearest"))
    rng = np.random.default_rng(0)
    plans = [sample_plan((64, 64), rng, cfg) for _ in range(8)]
    assert {p.extra["zoo"] for p in plans} == {"opencv-nearest", "ffmpeg-nearest"}
    assert all(p.sampling == {"opencv-nearest": "first", "ffmpeg-nearest": "centre-up"}[p.extra["zoo"]] for p in plans)
    # through the batch tensors and back
    from tessera.train.data import SAMPLINGS

    idx = plans_to_tensors(plans)["sampling"].tolist()
    assert [SAMPLINGS[i] for i in idx] == [p.sampling for p in plans]
    with pytest.raises(ValueError, match="generator"):
        zoo_sampling("paint")
