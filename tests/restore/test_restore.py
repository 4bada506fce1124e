"""restore_image end to end with the classical restorers (the learned ones are tested in tests/weights/test_weights.py)."""

from __future__ import annotations

import numpy as np
import pytest

from tessera.evaluate import blockiness, psnr
from tessera.mosaic.pixelate import pixelate
from tessera.mosaic.region import Grid
from tessera.restore.classical import cubic_matrix, smooth
from tessera.restore.pipeline import restore_image
from tessera.restore.restorer import NetRestorer


def test_outside_mask_is_byte_identical(photo):
    degraded, mask = pixelate(photo, boxes=[(40, 30, 100, 80)], cell=12)
    for model in ("smooth", "telea", "ns"):
        res = restore_image(degraded, mask, model=model, grid=Grid(12, 12))
        assert (res.image[~mask] == degraded[~mask]).all()
        assert (res.mask == mask).all()
        assert res.residual == 0.0


def test_smooth_beats_the_mosaic_and_removes_the_lattice(photo):
    grid = Grid(12, 12, 4, 7)
    degraded, mask = pixelate(photo, boxes=[(40, 30, 120, 96)], cell=12, phase=(4, 7))
    res = restore_image(degraded, mask, model="smooth", grid=grid)
    assert psnr(res.image, photo, mask) > psnr(degraded, photo, mask) + 0.3
    assert blockiness(degraded, mask, grid) > 3.0
    assert blockiness(res.image, mask, grid) < 1.5


def test_empty_mask_returns_input_unchanged(photo):
    res = restore_image(photo, np.zeros(photo.shape[:2], bool), model="smooth")
    assert (res.image == photo).all() and not res.mask.any() and res.regions == []


def test_all_masked_tiny_and_grey_images():
    rng = np.random.default_rng(0)
    img = rng.integers(0, 256, (40, 40, 3), dtype=np.uint8)
    res = restore_image(img, np.ones((40, 40), bool), model="telea", kind="hole")
    assert res.image.shape == img.shape and res.mask.all()
    one = np.array([[[10, 20, 30]]], np.uint8)
    for model in ("smooth", "telea"):
        assert restore_image(one, np.ones((1, 1), bool), model=model).image.shape == (1, 1, 3)
    grey = np.repeat(rng.integers(0, 256, (32, 32, 1), dtype=np.uint8), 3, axis=2)
    deg, m = pixelate(grey, cell=8, boxes=[(8, 8, 16, 16)])
    out = restore_image(deg, m, model="smooth", grid=Grid(8, 8)).image
    assert (out[..., 0] == out[..., 1]).all() and (out[..., 1] == out[..., 2]).all()


def test_bad_inputs_give_clear_errors(photo):
    with pytest.raises(ValueError, match="mask is"):
        restore_image(photo, np.zeros((3, 3), bool), model="smooth")
    with pytest.raises(ValueError, match="unknown model"):
        restore_image(photo, np.zeros(photo.shape[:2], bool), model="nope")
    with pytest.raises(ValueError, match="uint8"):
        restore_image(photo.astype(float), None, model="smooth")


def test_cubic_matrix_interpolates_through_the_centres():
    centres = np.array([2.5, 8.5, 14.5, 20.5])
    M = cubic_matrix(24, centres)
    assert np.allclose(M.sum(1), 1)
    v = np.array([1.0, 5.0, -2.0, 7.0])
    y = M @ v
    assert np.allclose(y[[3, 9, 15, 21]], v, atol=0.6)  # half a pixel off the centre
    lin = M @ (2 * centres + 1)  # a linear ramp is reproduced exactly between the centres
    assert np.allclose(lin[9:15], 2 * np.arange(9, 15) + 1)


class _Shift(__import__("torch").nn.Module):
    """A toy 'network' whose output depends on position: it reports each pixel's tile-local column."""

    size_multiple = 8

    def forward(self, x):
        import torch

        n, _, h, w = x.shape
        return torch.zeros(n, 3, h, w) + 0.5


def test_tiling_covers_a_huge_region():
    rng = np.random.default_rng(0)
    img = rng.integers(0, 256, (300, 700, 3), dtype=np.uint8)
    mask = np.zeros((300, 700), bool)
    mask[10:290, 20:690] = True
    restorer = NetRestorer(_Shift(), "toy", tile=128, overlap=16)
    out = restorer(img, mask, None, "hole")
    # 0.5 in [-1, 1] is 191 everywhere in the mask: every masked pixel was covered by some tile
    assert (out[mask] == 191).all() and (out[~mask] == img[~mask]).all()


def test_flip_ensemble_averages_the_flipped_outputs(one_thread):
    import torch

    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Conv2d(4, 3, 3, padding=1), torch.nn.Tanh())
    rng = np.random.default_rng(1)
    img = rng.integers(0, 256, (24, 40, 3), dtype=np.uint8)
    mask = np.ones((24, 40), bool)
    x = torch.from_numpy(np.concatenate([img.transpose(2, 0, 1) / 127.5 - 1.0, mask[None]], 0).astype(np.float32))[None]
    with torch.no_grad():
        want = (net(x) + net(x.flip(3)).flip(3) + net(x.flip(2)).flip(2) + net(x.flip(2, 3)).flip(2, 3)) / 4
    want = np.clip(np.rint((want[0].numpy().transpose(1, 2, 0) + 1.0) * 127.5), 0, 255)
    net.size_multiple = 8
    out = NetRestorer(net, "toy", flips=4)(img, mask, None, "mosaic")
    single = NetRestorer(net, "toy", flips=1)(img, mask, None, "mosaic")
    assert np.abs(out.astype(int) - want).max() <= 1
    assert np.abs(single.astype(int) - want).mean() > 1.0  # the ensemble is not the single pass
    with pytest.raises(ValueError, match="flips"):
        NetRestorer(net, "toy", flips=3)


@pytest.mark.parametrize("cell,phase,sampling", [((8, 8), (3, 2), "mean"), ((5, 9), (0, 4), "centre"), ((12, 7), (11, 6), "mean")])
def test_smooth_torch_matches_numpy(cell, phase, sampling):
    import torch

    from tessera.restore.classical import smooth_torch

    rng = np.random.default_rng(3)
    img = rng.integers(0, 256, (40, 50, 3), dtype=np.uint8)
    deg, m = pixelate(img, boxes=[(5, 5, 30, 25)], cell=cell, phase=phase, sampling=sampling)
    ref = smooth(deg, m, Grid(*cell, *phase, sampling))
    t = smooth_torch(torch.from_numpy(deg).permute(2, 0, 1)[None], torch.from_numpy(m)[None], [cell], [phase], [sampling])
    assert (t[0].permute(1, 2, 0).numpy() == ref).all()
    f = smooth_torch(torch.from_numpy(deg).permute(2, 0, 1)[None].float(), torch.from_numpy(m)[None], [None], [phase], [sampling])
    assert (f[0].permute(1, 2, 0).numpy() == deg).all()  # no grid: unchanged


def test_untrained_residual_prefill_model_equals_smooth(photo, tmp_path):
    """A residual U-Net starts as the identity, so with prefill='smooth' its restoration is exactly
    the classical smooth one: learned models start from the baseline and add detail."""
    import torch

    from tessera.models import build_model, save_model

    torch.manual_seed(0)
    net = build_model("unet", base=4, depth=3, residual=True, prefill="smooth")
    path = save_model(net, tmp_path / "r.safetensors", "unet", net.kwargs)
    grid = Grid(8, 8, 3, 5)
    deg, mask = pixelate(photo, boxes=[(60, 50, 100, 90)], cell=8, phase=(3, 5))
    ours = restore_image(deg, mask, model=path, grid=grid)
    base = restore_image(deg, mask, model="smooth", grid=grid)
    assert (ours.image == base.image).all()


def test_prefill_batch_matches_numpy_smooth():
    import torch

    from tessera.train.data import DegradeConfig, degrade_batch, plans_to_tensors, prefill_batch, sample_plan

    rng = np.random.default_rng(5)
    cfg = DegradeConfig(region=48, kinds=("mosaic",), kind_weights=(1.0,), jpeg_prob=0.0, feather_prob=0.0)
    imgs = rng.integers(0, 256, (3, 64, 64, 3), dtype=np.uint8)
    plans = [sample_plan((64, 64), rng, cfg) for _ in range(3)]
    raw = plans_to_tensors(plans)
    deg, mask = degrade_batch(torch.from_numpy(imgs).permute(0, 3, 1, 2).contiguous(), raw)
    filled = prefill_batch(deg, mask, raw)
    for i, p in enumerate(plans):
        d = deg[i].permute(1, 2, 0).numpy()
        g = Grid(p.cell[0], p.cell[1], p.phase[0] % p.cell[0], p.phase[1] % p.cell[1], p.sampling)
        ref = smooth(d, mask[i].numpy(), g)
        assert (filled[i].permute(1, 2, 0).numpy() == ref).all()


def test_unknown_sampling_is_decided_by_projecting_under_both(photo):
    """An estimated grid's sampling is tested: a centre-sampled mosaic is restored as one (the
    'mean' constraint would pin each cell's average to a single pixel's colour), with one model pass
    projected under both hypotheses."""
    from tessera.restore.restorer import resolve_model

    degraded, mask = pixelate(photo, boxes=[(40, 30, 160, 128)], cell=12, phase=(3, 5), sampling="centre")
    smooth, calls = resolve_model("smooth"), []

    def counting(image, m, grid, kind):
        calls.append(grid.sampling)
        return smooth(image, m, grid, kind)

    counting.name = "smooth"
    auto = restore_image(degraded, mask, restorer=counting)
    forced = {s: restore_image(degraded, mask, model="smooth", sampling=s) for s in ("mean", "centre")}
    assert calls == ["mean"] and auto.regions[0].grid.sampling == "centre"
    assert auto.residual == 0.0  # every cell's centre pixel is what was observed
    assert abs(psnr(auto.image, photo, mask) - psnr(forced["centre"].image, photo, mask)) < 0.3
    assert psnr(auto.image, photo, mask) > psnr(forced["mean"].image, photo, mask) + 0.5
    assert forced["mean"].regions[0].grid.sampling == "mean" and forced["mean"].residual == 0.0


def test_a_given_grid_keeps_its_sampling_unless_told(photo):
    degraded, mask = pixelate(photo, boxes=[(40, 30, 96, 96)], cell=12, sampling="centre")
    given = restore_image(degraded, mask, model="smooth", grid=Grid(12, 12, 0, 0, "mean"))
    assert given.regions[0].grid.sampling == "mean"
    tested = restore_image(degraded, mask, model="smooth", grid=Grid(12, 12, 0, 0, "mean"), sampling="auto")
    assert tested.regions[0].grid.sampling == "centre"
    with pytest.raises(ValueError, match="sampling"):
        restore_image(degraded, mask, model="smooth", sampling="median")


def test_without_a_mask_a_given_grid_and_kind_apply_to_the_detected_regions(photo):
    out, changed = pixelate(photo, boxes=[(96, 72, 144, 120)], cell=12, phase=(0, 0))
    g = Grid(24, 24, 0, 0, "mean")  # not the mosaic's lattice, but the user's word goes
    res = restore_image(out, None, model="smooth", grid=g)
    assert res.regions and all(r.grid == g and r.kind == "mosaic" for r in res.regions)
    res = restore_image(out, None, model="telea", kind="hole")
    assert res.regions and all(r.grid is None and r.kind == "hole" for r in res.regions)


def test_weights_are_loaded_once(tmp_path):
    import torch

    from tessera.models import build_model, save_model
    from tessera.restore.pipeline import resolve_model

    torch.manual_seed(0)
    path = save_model(build_model("unet", base=4, depth=2), tmp_path / "w.safetensors", "unet", {"base": 4, "depth": 2})
    a, b = resolve_model(path), resolve_model(str(path))
    assert a.runner is b.runner


def test_a_mosaic_a_few_cells_across_gets_a_grid_from_one_line_per_axis():
    # an ellipse 37 px across over cells of 18.5 px (ffmpeg area scaling): one lattice line inside per
    # axis, too few for the estimate's two; told it is a mosaic, the pipeline accepts one
    import cv2

    from tessera.mosaic.grid import estimate_grid
    from tessera.mosaic.synth import zoo_apply

    rng = np.random.default_rng(0)
    img = cv2.GaussianBlur((rng.random((80, 100, 3)) * 255).astype(np.uint8), (0, 0), 3)
    region = np.zeros((80, 100), np.uint8)
    cv2.ellipse(region, (48, 38), (18, 18), 0, 0, 360, 1, -1)
    out, mask, _, nominal, _ = zoo_apply(img, region > 0, rng, "ffmpeg-area", cell=(18, 18))
    assert estimate_grid(out, mask, fractional=True) is None
    res = restore_image(out, mask, model="smooth", kind="mosaic")
    g = res.regions[0].grid
    assert g is not None and 16 <= g.cell_h <= 19 and 16 <= g.cell_w <= 19
    assert blockiness(out, mask, nominal) > 4.0 and blockiness(res.image, mask, nominal) < 1.2


def test_a_detected_blur_that_shows_flat_cells_is_restored_as_a_mosaic_and_a_real_blur_is_not():
    # the detector leaves a small JPEG'd mosaic without a lattice (kind 'blur'); measured on the region
    # its cells are flat between the lines, which a blur (no phase) never is
    import cv2

    from tessera.mosaic.region import Region
    from tessera.mosaic.synth import encode
    from tessera.mosaic.grid import LATTICE_CONTRAST
    from tessera.restore.pipeline import _lattice_of_blur

    rng = np.random.default_rng(0)
    img = cv2.GaussianBlur((rng.random((112, 112, 3)) * 255).astype(np.uint8), (0, 0), 2.5)
    box = np.zeros((112, 112), bool)
    box[20:90, 24:94] = True
    mosaic, _ = pixelate(img, box, cell=14, phase=(6, 10))
    mosaic, info = encode(mosaic, "jpeg", np.random.default_rng(2))
    assert info["quality"] == 85
    blurred = np.where(box[..., None], cv2.GaussianBlur(img, (0, 0), 4), img)
    as_blur = Region.from_mask(box, kind="blur")
    found = _lattice_of_blur(mosaic, as_blur)
    assert found.kind == "mosaic" and (found.grid.cell_h, found.grid.cell_w) == (14, 14)
    assert _lattice_of_blur(blurred, as_blur).kind == "blur"
    assert LATTICE_CONTRAST == 2.0


def test_a_detected_mask_that_cuts_the_outline_cells_is_completed_to_them():
    import cv2

    from tessera.mosaic.region import Region
    from tessera.restore.pipeline import GROW_TOL, _grow_to_cells

    rng = np.random.default_rng(0)
    img = cv2.GaussianBlur((rng.random((80, 80, 3)) * 255).astype(np.uint8), (0, 0), 2.0)
    box = np.zeros((80, 80), bool)
    box[20:60, 10:70] = True  # 4 x 6 cells of 10 px
    mosaic, _ = pixelate(img, box, cell=10)
    short = np.zeros_like(box)
    short[23:57, 14:67] = True  # the detector's outline stops 3-4 px short of the mosaic's
    grid = Grid(10, 10, 0, 0, "mean")
    grown = _grow_to_cells(mosaic, Region.from_mask(short, grid=grid))
    assert (grown.full_mask() == box).all() and grown.grid == grid
    blur = Region.from_mask(short, kind="blur")
    assert _grow_to_cells(mosaic, blur) is blur  # no lattice: nothing to complete
    assert GROW_TOL == 6.0
