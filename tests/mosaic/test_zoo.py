"""The generator zoo (tessera.mosaic.synth.zoo_case): pure, seeded, each generator as its tool does it."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from tessera.mosaic.pixelate import pixelate
from tessera.mosaic.synth import ZOO, ZOO_FORMATS, _resize_mosaic, encode, zoo_apply, zoo_case


def _texture(rng, H=96, W=120):
    img = cv2.resize(rng.integers(0, 256, (12, 15, 3), dtype=np.uint8), (W, H), interpolation=cv2.INTER_CUBIC)
    return np.clip(img.astype(int) + rng.integers(-20, 21, img.shape), 0, 255).astype(np.uint8)


@pytest.mark.parametrize("generator", list(ZOO))
def test_every_generator_is_seeded_and_leaves_the_outside_alone(generator):
    img = _texture(np.random.default_rng(0))
    a = zoo_case(img, np.random.default_rng(5), generator, "png")
    b = zoo_case(img, np.random.default_rng(5), generator, "png")
    assert np.array_equal(a.degraded, b.degraded) and np.array_equal(a.mask, b.mask)
    assert a.mask.sum() >= 64
    assert a.degraded.shape == a.clean.shape and a.mask.shape == a.clean.shape[:2]
    diff = np.abs(a.degraded.astype(int) - a.clean.astype(int)).sum(2)
    if generator not in ("feather", "soft", "rescaled"):
        assert (diff[~a.mask] == 0).all()  # lossless and hard-edged: only the mask changed
    assert diff[a.mask].mean() > 5  # the region is really hidden


def test_mean_and_centre_match_tessera_pixelate():
    img = _texture(np.random.default_rng(1))
    for gen in ("mean", "centre"):
        c = zoo_case(img, np.random.default_rng(2), gen)
        g = c.grid
        ref, _ = pixelate(img, c.mask, cell=g.cell, phase=g.phase, sampling=g.sampling)
        assert np.array_equal(ref, c.degraded)


def test_rounding_rules_differ_only_by_rounding():
    img = _texture(np.random.default_rng(3))
    cases = {g: zoo_case(img, np.random.default_rng(4), g) for g in ("mean", "mean-floor", "mean-even")}
    m = cases["mean"].mask
    assert all(np.array_equal(c.mask, m) for c in cases.values())
    d_floor = cases["mean"].degraded.astype(int) - cases["mean-floor"].degraded
    d_even = cases["mean"].degraded.astype(int) - cases["mean-even"].degraded
    assert set(np.unique(d_floor[m])) <= {0, 1} and (d_floor[m] == 1).mean() > 0.2  # floor is one level lower about half the time
    assert set(np.unique(d_even[m])) <= {0, 1}


def test_magick_is_box_average_with_non_integer_cells():
    rng = np.random.default_rng(0)
    box = rng.integers(0, 256, (30, 50, 3), dtype=np.uint8)
    out = _resize_mosaic(box, (7, 7), "area", "nearest")  # 30/4 = 7.5 and 50/7 = 7.14 px cells
    assert len(np.unique(out.reshape(-1, 3), axis=0)) == 4 * 7
    # the first cell averages the first 7.5 rows x 7.14 columns (area weights): close to the plain mean
    assert np.abs(out[0, 0].astype(float) - box[:7, :7].reshape(-1, 3).mean(0)).max() < 12


def test_nearest_tools_copy_source_pixels():
    rng = np.random.default_rng(0)
    box = rng.integers(0, 256, (24, 24, 3), dtype=np.uint8)
    cv = _resize_mosaic(box, (8, 8), "nearest", "nearest")
    ff = _resize_mosaic(box, (8, 8), "centre", "centre")
    assert np.array_equal(cv[0, 0], box[0, 0])  # OpenCV: the cell's first pixel
    assert np.array_equal(ff[0, 0], box[4, 4])  # ffmpeg neighbor: the pixel under the cell's centre
    assert np.array_equal(ff[9, 17], box[12, 20])


@pytest.mark.parametrize("fmt", ZOO_FORMATS)
def test_formats_are_lossy_as_said(fmt):
    img = _texture(np.random.default_rng(6))
    out, info = encode(img, fmt, np.random.default_rng(1))
    err = np.abs(out.astype(int) - img).mean()
    assert info["format"] == fmt
    if fmt == "png":
        assert err == 0
    else:
        assert 0.3 < err < 25
    if fmt.startswith("jpeg"):
        assert 30 <= info["quality"] <= 95


def test_jpeg444_keeps_more_colour_than_420():
    img = _texture(np.random.default_rng(7))
    a, _ = encode(img, "jpeg", np.random.default_rng(3))
    b, _ = encode(img, "jpeg444", np.random.default_rng(3))  # same quality drawn
    assert np.abs(b.astype(int) - img).mean() < np.abs(a.astype(int) - img).mean()


def test_rescaled_changes_the_size_of_both():
    img = _texture(np.random.default_rng(8))
    c = zoo_case(img, np.random.default_rng(9), "rescaled")
    assert c.clean.shape == c.degraded.shape != img.shape
    assert c.grid is None and c.info["scale"] != 1


def test_unknown_names_raise():
    img = _texture(np.random.default_rng(0))
    with pytest.raises(ValueError, match="generator"):
        zoo_apply(img, np.ones(img.shape[:2], bool), np.random.default_rng(0), "nope")
    with pytest.raises(ValueError, match="format"):
        zoo_case(img, np.random.default_rng(0), "mean", "gif")


def test_eval_zoo_cases_are_per_generator_and_format_and_stable():
    from tessera.evaluate import make_zoo_cases, score_case

    imgs = [("a", _texture(np.random.default_rng(10))), ("b", _texture(np.random.default_rng(11)))]
    one = make_zoo_cases(imgs, 2, seed=3, generators=("magick", "mean"), formats=("png", "jpeg"))
    assert [c.name.split(":", 1)[1] for c in one] == ["magick:png"] * 2 + ["magick:jpeg"] * 2 + ["mean:png"] * 2 + ["mean:jpeg"] * 2
    two = make_zoo_cases(imgs, 2, seed=3, generators=("mean",), formats=("jpeg",))
    assert all(np.array_equal(a.degraded, b.degraded) for a, b in zip(one[6:], two))
    # a run on some generators and formats draws the full run's cases (same images, same draws)
    five = [(k, _texture(np.random.default_rng(20 + i))) for i, k in enumerate("cdefg")]
    full = {c.name: c for c in make_zoo_cases(five, 1, seed=4, generators=("mean", "rect", "soft"), formats=("png", "h264"))}
    part = make_zoo_cases(five, 1, seed=4, generators=("soft",), formats=("h264",))
    assert part[0].name in full and np.array_equal(part[0].degraded, full[part[0].name].degraded)
    s, out = score_case(one[0], "smooth")  # magick: no exact grid, estimated; blockiness on the nominal grid
    assert s.blockiness is not None and np.isfinite(s.psnr) and out.shape == one[0].clean.shape


@pytest.mark.parametrize("generator", ["centre", "centre-up", "ffmpeg-nearest", "opencv-nearest", "mean", "magick"])
@pytest.mark.parametrize("cell", [6, 7])
def test_an_exact_zoo_grid_remosaics_the_tool_output_with_its_own_sampling(generator, cell):
    # a box of whole cells: the tool's lattice is exact, and its sampling (the mean, tessera's centre
    # pixel, ffmpeg's (start + end) // 2, OpenCV's first pixel) gives back every pixel it made
    from tessera.mosaic.lattice import Lattice
    from tessera.mosaic.synth import zoo_apply

    rng = np.random.default_rng(cell)
    img = (rng.random((60, 64, 3)) * 255).astype(np.uint8)
    region = np.zeros((60, 64), bool)
    region[5 : 5 + 6 * cell, 9 : 9 + 7 * cell] = True
    out, mask, grid, _, _ = zoo_apply(img, region, rng, generator, cell=(cell, cell))
    assert grid is not None and grid.sampling == {"centre-up": "centre-up", "ffmpeg-nearest": "centre-up",
                                                   "opencv-nearest": "first", "centre": "centre"}.get(generator, "mean")
    lat = Lattice(img.shape, grid)
    values = lat.values(img.astype(np.float64))
    remosaic = lat.expand(np.floor(values + 0.5) if grid.sampling == "mean" else values)
    assert np.abs(remosaic[mask] - out[mask].astype(np.float64)).max() <= 1.0
