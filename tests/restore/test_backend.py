"""Runners (restore/backend.py): ONNX Runtime agrees with eager torch on real images (max |diff|
<= 1e-3), exported files are cached by the weights' hash, and the ONNX path imports no torch."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("onnxruntime")
pytest.importorskip("onnx")

from tessera.restore import backend as B  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("TESSERA_CACHE", str(tmp_path / "cache"))
    B._cached_runner.cache_clear()
    yield tmp_path / "cache" / "onnx"
    B._cached_runner.cache_clear()


def _tiny(tmp_path: Path, name: str, seed: int = 0) -> Path:
    import torch

    from tessera.models import build_model, model_kwargs, save_model

    torch.manual_seed(seed)
    kwargs = model_kwargs("unet", "tiny", {"residual": True}) if name == "unet" else {"fold": 2, "base": 4, "depth": 2}
    net = build_model(name, **kwargs)
    with torch.no_grad():  # non-trivial BatchNorm statistics, so folding them is tested too
        for m in net.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.uniform_(-0.2, 0.2)
                m.running_var.uniform_(0.5, 1.5)
            if isinstance(m, (torch.nn.Conv2d, torch.nn.ConvTranspose2d)) and m.weight.abs().sum() == 0:  # residual starts at zero
                m.weight.normal_(0, 0.05)
    return save_model(net, tmp_path / f"{name}-{seed}.safetensors", name, kwargs)


def _real_input(photo: np.ndarray, h: int, w: int) -> np.ndarray:
    """The boat photo (real pixels) as (1, 4, h, w): RGB in [-1, 1] plus a box mask."""
    rgb = photo[:h, :w].astype(np.float32).transpose(2, 0, 1) / 127.5 - 1
    mask = np.zeros((1, h, w), np.float32)
    mask[:, h // 4 : h // 2, w // 3 : w // 2] = 1
    return np.concatenate([rgb, mask])[None]


def test_onnx_matches_torch_on_a_real_image(tmp_path, cache, photo):
    path = _tiny(tmp_path, "unet")
    onnx_runner = B.load_runner(path, "onnx", threads=1)
    torch_runner = B.load_runner(path, "torch")
    assert (onnx_runner.backend, torch_runner.backend) == ("onnx", "torch")
    assert onnx_runner.info["size_multiple"] == torch_runner.info["size_multiple"] == 8
    for h, w in ((288, 352), (64, 200)):  # dynamic height and width, batch of 2 flipped copies
        x = _real_input(photo, h, w)
        x = np.concatenate([x, x[..., ::-1]])
        a, b = onnx_runner(x), torch_runner(x)
        assert a.shape == b.shape == (2, 3, h, w)
        assert np.abs(a - b).max() <= 1e-3
        assert np.abs(b - x[:, :3]).mean() > 1e-3  # the net does something


def test_detector_onnx_matches_torch_at_any_size(tmp_path, cache, photo):
    path = _tiny(tmp_path, "segnet")
    onnx_runner, torch_runner = B.load_runner(path, "onnx", threads=1), B.load_runner(path, "torch")
    assert onnx_runner.info["name"] == "segnet" and onnx_runner.info["size_multiple"] == 1  # it pads itself
    x = photo[:203, :301].astype(np.float32).transpose(2, 0, 1)[None] / 127.5 - 1  # not a multiple of 8
    a, b = onnx_runner(x), torch_runner(x)
    assert a.shape == (1, 1, 203, 301) and np.abs(a - b).max() <= 1e-3
    from tessera.detect.mosaics import probability_map

    pa, pb = probability_map(photo, onnx_runner), probability_map(photo, torch_runner)
    assert pa.shape == photo.shape[:2] and np.abs(pa - pb).max() <= 1e-3


def test_cache_is_keyed_by_the_weights_hash(tmp_path, cache):
    a, b = _tiny(tmp_path, "unet", seed=0), _tiny(tmp_path, "unet", seed=1)
    pa, pb = B.onnx_cache_path(a), B.onnx_cache_path(b)
    assert pa != pb and pa.parent == cache and pa.name.startswith("unet-0-")
    B.load_runner(a, "onnx")
    assert pa.is_file() and not pb.exists()
    assert B.load_runner(a, "auto").backend == "onnx"  # auto takes ONNX Runtime when installed
    mtime = pa.stat().st_mtime_ns
    B._cached_runner.cache_clear()
    B.load_runner(a, "onnx")
    assert pa.stat().st_mtime_ns == mtime  # reused, not exported again
    with pytest.raises(FileExistsError):
        B.export_onnx(a, pa.parent / pa.name)
    with pytest.raises(ValueError, match="backend"):
        B.load_runner(a, "tensorrt")


def test_onnx_inference_imports_no_torch(tmp_path, cache, photo):
    path = _tiny(tmp_path, "unet")
    B.export_onnx(path)  # cached once (this needs torch) ...
    code = (
        "import sys, numpy as np; from tessera.restore.backend import load_runner; "
        f"r = load_runner({str(path)!r}); y = r(np.zeros((1, 4, 16, 24), np.float32)); "
        "print(r.backend, y.shape, 'torch' in sys.modules)"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["onnx", "(1,", "3,", "16,", "24)", "False"]  # ... then run without torch


def test_run_flips_is_the_mean_of_flipped_outputs():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(2, 4, 8, 12)).astype(np.float32)
    weights = rng.normal(size=(3, 4)).astype(np.float32)
    calls = []

    def net(t):  # not flip-symmetric: a per-pixel mix plus a ramp along the width
        calls.append(len(t))
        return np.einsum("oc,nchw->nohw", weights, t) + np.arange(t.shape[-1], dtype=np.float32)

    want = (net(x) + net(x[..., ::-1])[..., ::-1] + net(x[..., ::-1, :])[..., ::-1, :] + net(x[..., ::-1, ::-1])[..., ::-1, ::-1]) / 4
    calls.clear()
    got = B.run_flips(net, x, 4)
    assert calls == [8]  # all flips of all images in one call
    assert np.abs(got - want).max() < 1e-5
    assert np.abs(B.run_flips(net, x, 1) - want).max() > 0.1
    calls.clear()
    B.run_flips(net, x, 2, max_batch=3)
    assert calls == [3, 1]
    with pytest.raises(ValueError, match="flips"):
        B.run_flips(net, x, 3)


def test_pad_to_multiple_and_threads(monkeypatch):
    x = np.arange(2 * 5 * 7, dtype=np.float32).reshape(1, 2, 5, 7)
    y, h, w = B.pad_to_multiple(x, 4)
    assert y.shape == (1, 2, 8, 8) and (h, w) == (5, 7) and (y[..., :5, :7] == x).all()
    assert (y[..., 5, :7] == x[..., 3, :]).all()  # reflection without repeating the edge
    monkeypatch.setenv("TESSERA_THREADS", "3")
    assert B.default_threads() == 3
    monkeypatch.setenv("TESSERA_THREADS", "zero")
    with pytest.raises(B.BackendError):
        B.default_threads()
    monkeypatch.delenv("TESSERA_THREADS")
    assert 1 <= B.default_threads() <= 16


def test_cli_export_onnx(tmp_path, cache):
    from tessera.cli import main

    path = _tiny(tmp_path, "unet")
    out = tmp_path / "tiny.onnx"
    with pytest.raises(SystemExit) as done:
        main(["export", str(path), "--onnx", "-o", str(out)])
    assert done.value.code in (0, None) and out.is_file()
    runner = B.OnnxRunner(out)
    assert runner.info["name"] == "unet" and runner.info["exporter"] in ("torchscript", "dynamo")
    with pytest.raises(SystemExit) as done:  # refuses to replace it
        main(["export", str(path), "--onnx", "-o", str(out)])
    assert done.value.code == 2
    with pytest.raises(SystemExit) as done:  # without -o: into the cache that load_runner reads
        main(["export", str(path), "--onnx"])
    assert done.value.code in (0, None) and B.onnx_cache_path(path).is_file()


def test_run_tiled_batches_tiles_and_matches_one_pass():
    rng = np.random.default_rng(2)
    x = rng.normal(size=(4, 70, 90)).astype(np.float32)
    weights = rng.normal(size=(3, 4)).astype(np.float32)
    calls = []

    class Pointwise:  # position-independent, so tiles must give exactly the one-pass result
        backend, info = "test", {"size_multiple": 8, "out_channels": 3}

        def __call__(self, t):
            calls.append(t.shape)
            assert t.shape[-2] % 8 == 0 and t.shape[-1] % 8 == 0
            return np.einsum("oc,nchw->nohw", weights, t)

    whole = np.einsum("oc,chw->ohw", weights, x)
    got = B.run_tiled(Pointwise(), x, flips=2, tile=128)
    assert calls == [(2, 4, 72, 96)] and np.abs(got - whole).max() < 1e-4  # one call, padded, 2 flips
    calls.clear()
    got = B.run_tiled(Pointwise(), x, flips=4, tile=40, overlap=4)  # 2 x 3 tiles of 40 x 40
    assert len(calls) == 1 and calls[0] == (24, 4, 40, 40)  # all tiles and flips batched
    assert np.abs(got - whole).max() < 1e-4
    calls.clear()
    B.run_tiled(Pointwise(), x, flips=4, tile=40, overlap=4, max_pixels=40 * 40 * 8)
    assert [c[0] for c in calls] == [8, 8, 8]  # 2 tiles (8 images) per call
    mask = np.zeros((70, 90), bool)
    mask[5:10, 80:85] = True  # touches one tile only
    calls.clear()
    got = B.run_tiled(Pointwise(), x, mask, flips=1, tile=40, overlap=4)
    assert calls == [(1, 4, 40, 40)] and np.abs(got[:, mask] - whole[:, mask]).max() < 1e-4


def test_restorer_presets_and_backends_agree_on_a_real_image(tmp_path, cache, photo):
    from tessera.mosaic.pixelate import pixelate
    from tessera.mosaic.region import Grid
    from tessera.restore.pipeline import RestoreConfig, restore_image
    from tessera.restore.restorer import resolve_model

    path = _tiny(tmp_path, "unet")
    fast = resolve_model(path, quality="fast")
    assert fast.flips == 1 and fast._runner is None  # nothing loaded before the first crop
    assert resolve_model(path).flips == 2 and resolve_model(path, quality="best").flips == 4
    with pytest.raises(ValueError, match="quality"):
        resolve_model(path, quality="ultra")
    with pytest.raises(ValueError, match="backend"):
        RestoreConfig(backend="tensorrt")
    degraded, mask = pixelate(photo, boxes=[(100, 80, 120, 90)], cell=10)
    out = {b: restore_image(degraded, mask, model=path, grid=Grid(10, 10), quality="best", backend=b).image for b in ("torch", "onnx")}
    diff = np.abs(out["torch"].astype(int) - out["onnx"].astype(int))
    assert diff.max() <= 1 and (diff[~mask] == 0).all()  # one grey level of rounding at most
    fast_out = restore_image(degraded, mask, model=path, grid=Grid(10, 10), quality="fast").image
    assert np.abs(fast_out.astype(int) - out["onnx"]).max() > 0  # the presets differ


def test_cli_restore_quality_and_backend(tmp_path, cache, photo):
    from PIL import Image

    from tessera.cli import main
    from tessera.mosaic.pixelate import pixelate

    path = _tiny(tmp_path, "unet")
    degraded, mask = pixelate(photo[:96, :128], boxes=[(30, 20, 50, 40)], cell=8)
    Image.fromarray(degraded).save(tmp_path / "in.png")
    Image.fromarray(mask.astype(np.uint8) * 255).save(tmp_path / "m.png")
    for q, b in (("fast", "onnx"), ("best", "torch")):
        with pytest.raises(SystemExit) as done:
            main(["restore", str(tmp_path / "in.png"), "-o", str(tmp_path / f"{q}.jpg"), "--mask", str(tmp_path / "m.png"),
                  "--model", str(path), "--quality", q, "--backend", b, "--jpeg-quality", "90"])
        assert done.value.code == 0 and (tmp_path / f"{q}.jpg").is_file()
    with pytest.raises(SystemExit) as done:
        main(["restore", str(tmp_path / "in.png"), "-o", str(tmp_path / "x.jpg"), "--quality", "ultra"])
    assert done.value.code == 2


def test_export_onnx_writes_through_the_one_writer(tmp_path, cache):
    """A link planted at the target is refused and what it points to is untouched; the folder holds
    no temporary file afterwards (the exporters work in a private folder)."""
    from tessera.io.image import ImageIOError

    path = _tiny(tmp_path, "unet")
    victim = tmp_path / "victim.txt"
    victim.write_text("keep me")
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    (out_dir / "net.onnx").symlink_to(victim)
    with pytest.raises(ImageIOError, match="symbolic link"):
        B.export_onnx(path, out_dir / "net.onnx", overwrite=True)
    assert victim.read_text() == "keep me"
    written = B.export_onnx(path, out_dir / "plain.onnx")
    assert written == out_dir / "plain.onnx" and B.OnnxRunner(written).info["name"] == "unet"
    assert sorted(p.name for p in out_dir.iterdir()) == ["net.onnx", "plain.onnx"]


def test_tile_size_covers_without_overshoot():
    """Tiles are as short as the tile count allows: a 1280-px crop takes two 672-px tiles (not two
    1024-px ones), every length is covered with the overlap kept, and short axes stay whole."""
    assert B.tile_size(1000, 1024, 32, 16) == 1000
    assert B.tile_size(1280, 1024, 32, 32) == 672
    for n in (1025, 1280, 2000, 3001, 5000):
        size = B.tile_size(n, 1024, 32, 16)
        starts = B.tile_starts(n, size, 32)
        assert size <= 1024 and size % 16 == 0 and starts[0] == 0 and starts[-1] + size == n
        assert len(starts) == len(B.tile_starts(n, 1024, 32))  # no more tiles than before
        assert all(b - a <= size - 64 for a, b in zip(starts, starts[1:]))  # overlap >= 2 * 32


def test_onnx_runner_releases_its_arena_on_the_next_call_only(tmp_path, cache, photo):
    path = _tiny(tmp_path, "unet")
    runner = B.load_runner(path, "onnx", threads=1)
    x = _real_input(photo, 64, 96)
    plain = runner(x)
    runner.release_after_next()
    assert runner._release is not None
    released = runner(x)
    assert runner._release is None and np.array_equal(plain, released)  # same output, option used once


def test_onnx_runner_plans_no_memory_pattern_per_shape(tmp_path, cache, photo):
    """Inputs of changing shapes (the bands of a tall photo, tiles) must not each keep a planned block:
    memory patterns are off, and a shape seen before gives the same output after others."""
    path = _tiny(tmp_path, "unet")
    runner = B.load_runner(path, "onnx", threads=1)
    assert runner.session.get_session_options().enable_mem_pattern is False
    x = _real_input(photo, 64, 96)
    first = runner(x)
    runner(_real_input(photo, 96, 64))
    assert np.array_equal(first, runner(x))
