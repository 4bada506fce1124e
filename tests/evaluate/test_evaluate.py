"""Evaluation: metrics on hand-made cases and `tessera eval` end to end on a tiny folder."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
from PIL import Image

from tessera.evaluate import PSNR_CAP, EvalConfig, Score, blockiness, interior, load_folder, make_cases, psnr, run_eval, summarize
from tessera.mosaic.pixelate import pixelate
from tessera.mosaic.region import Grid

ROOT = Path(__file__).resolve().parents[2]
BOAT = ROOT / "examples" / "boat.png"


def test_psnr_in_mask_and_interior():
    a = np.zeros((40, 40, 3), np.uint8)
    b = a.copy()
    b[:, :20] = 10  # error 10 on the left half only
    left = np.zeros((40, 40), bool)
    left[:, :20] = True
    assert psnr(a, b, ~left) == float("inf")
    assert abs(psnr(a, b, left) - 20 * np.log10(255 / 10)) < 1e-9
    m = np.zeros((40, 40), bool)
    m[5:35, 5:35] = True  # 30 x 30: pixels > 4 px from the outside form the 22 x 22 centre
    inner = interior(m, margin=4)
    assert inner.sum() == 22 * 22 and inner[9:31, 9:31].all()
    assert interior(np.ones((8, 8), bool), margin=4).all()  # no outside pixel at all: all interior


def test_blockiness_sees_the_lattice_and_not_a_photo():
    img = np.asarray(Image.open(BOAT).convert("RGB"))
    m = np.zeros(img.shape[:2], bool)
    m[60:204, 96:240] = True
    g = Grid(12, 12, 0, 0, "mean")
    mosaic, _ = pixelate(img, m, cell=12, phase=(0, 0))
    assert blockiness(mosaic, m, g) > 3.0
    assert 0.7 < blockiness(img, m, g) < 1.3


def test_eval_cli_writes_the_report(tmp_path):
    data = tmp_path / "photos"
    data.mkdir()
    img = Image.open(BOAT).convert("RGB")
    for i, box in enumerate([(0, 0, 160, 160), (150, 100, 310, 260), (60, 40, 220, 200)]):
        img.crop(box).save(data / f"p{i}.png")
    before = {p.name: p.read_bytes() for p in data.iterdir()}
    out = tmp_path / "report"
    env = {**os.environ, "COLUMNS": "400"}
    r = subprocess.run([sys.executable, "-m", "tessera", "eval", "--data", str(data), "--models", "smooth,telea", "--cases", "4",
                        "-o", str(out)], capture_output=True, text=True, timeout=300, env=env)
    assert r.returncode == 0, r.stderr
    assert {p.name: p.read_bytes() for p in data.iterdir()} == before
    for name in ("report.md", "scores.json", "psnr.png", "samples.png"):
        assert (out / name).is_file(), name
    def no_constants(name):
        raise AssertionError(f"{name} is not JSON")

    scores = json.loads((out / "scores.json").read_text(), parse_constant=no_constants)
    assert len(scores) == 8 and {s["model"] for s in scores} == {"smooth", "telea"}
    cases = {c.name: c for c in make_cases(load_folder(data), 4)}  # the same seeded cases
    gains = []
    for s in scores:
        c = cases[s["case"]]
        assert np.isfinite(s["psnr"]) and 0 < s["ssim"] <= 1
        if s["model"] == "smooth":
            gains.append(s["psnr"] - psnr(c.degraded, c.clean, c.mask))
            if c.grid is not None and c.grid.sampling == "mean":
                assert s["residual"] < 1.0  # smooth keeps every cell mean
    # on average smooth beats the mosaic itself (not on every case: 15.35 vs 15.60 dB on a small
    # polygon over the boat's rigging); telea ignores the cells and need not
    assert np.mean(gains) > 0.1, gains
    assert "| smooth | 4 |" in (out / "report.md").read_text()
    bad = subprocess.run([sys.executable, "-m", "tessera", "eval", "--data", str(data), "--models", "nope", "-o", str(out)],
                         capture_output=True, text=True, timeout=120, env=env)
    assert bad.returncode == 2 and "unknown model" in bad.stderr and "Traceback" not in bad.stderr
    for flags, word in ((["--models", ","], "at least one model"), (["--kinds", ","], "case kinds"), (["--kinds", "box,nope"], "not nope")):
        r = subprocess.run([sys.executable, "-m", "tessera", "eval", "--data", str(data), *flags, "-o", str(tmp_path / "r2")],
                           capture_output=True, text=True, timeout=120, env=env)
        assert r.returncode == 2 and word in r.stderr and "Traceback" not in r.stderr, (flags, r.stderr)
    (tmp_path / "file").write_text("x")
    r = subprocess.run([sys.executable, "-m", "tessera", "eval", "--data", str(data), "-o", str(tmp_path / "file")],
                       capture_output=True, text=True, timeout=120, env=env)
    assert r.returncode == 2 and "is a file" in r.stderr


def test_run_eval_reports_interior_and_edge_psnr(tmp_path):
    img = np.asarray(Image.open(BOAT).convert("RGB"))
    data = tmp_path / "d"
    data.mkdir()
    Image.fromarray(img).save(data / "boat.png")
    summary, scores = run_eval(EvalConfig(data=data, models=("smooth",), output=tmp_path / "r", cases=2, kinds=("box",)))
    assert summary["smooth"]["cases"] == 2
    perfect = Score("m", "c", float("inf"), 1.0, 1.0, 0.0, 0.01)
    assert summarize([perfect, Score("m", "d", 30.0, 0.9, 1.0, None, 0.01)])["m"]["psnr"] == (PSNR_CAP + 30.0) / 2
    for s in scores:
        assert np.isfinite(s.extra["psnr_edge"])
        assert s.extra["psnr_interior"] > 0 or np.isnan(s.extra["psnr_interior"])
        assert s.extra["sampling"] in ("mean", "centre") and 64 <= s.extra["area"] < img.shape[0] * img.shape[1]
        assert 4 <= s.extra["cell"] <= 32


def test_hole_cases_are_grey_and_restored_as_holes(tmp_path):
    """The inpainting task: a hole case hides its region with grey, and eval restores it as a hole
    (the model sees zeros there), so an inpainting baseline beats leaving the grey."""
    img = np.asarray(Image.open(BOAT).convert("RGB"))
    data = tmp_path / "d"
    data.mkdir()
    Image.fromarray(img).save(data / "boat.png")
    cases = make_cases(load_folder(data), 2, 0, ("hole",))
    for c in cases:
        assert c.grid is None and c.mask.mean() > 0.01 and (c.degraded[c.mask] == 128).all()
        assert (c.degraded[~c.mask] == c.clean[~c.mask]).all()
    _, scores = run_eval(EvalConfig(data=data, models=("telea",), output=tmp_path / "r", cases=2, kinds=("hole",)))
    for s, c in zip(scores, cases):
        grey = psnr(c.degraded, c.clean, c.mask)
        assert s.psnr > grey + 1.0, (s.psnr, grey)
        assert s.blockiness is None and s.residual is None
