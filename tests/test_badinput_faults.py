"""Faults through real processes: planted pickles must not run code (DCGAN resume, train --resume,
export), and a batch killed with SIGKILL mid-way is finished by a plain rerun without stray,
orphan or temporary files."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from tessera.cli import main


class Planted:
    """Unpickling this calls os.mkdir(marker): proof that code ran."""

    def __init__(self, marker: Path) -> None:
        self.marker = str(marker)

    def __reduce__(self):
        return (os.mkdir, (self.marker,))


def plant(path: Path, marker: Path, extra: dict | None = None) -> None:
    torch.save({"format": "x", **(extra or {}), "evil": Planted(marker)}, path)
    assert not marker.exists()


def env() -> dict:
    return {**os.environ, "COLUMNS": "400", "PYTHONPATH": str(Path(__file__).resolve().parents[1] / "src")}


def faces(folder: Path, n: int = 4) -> Path:
    folder.mkdir(parents=True)
    rng = np.random.default_rng(3)
    for i in range(n):
        Image.fromarray(rng.integers(0, 256, (40, 40, 3), dtype=np.uint8)).save(folder / f"f{i}.png")
    return folder


@pytest.mark.parametrize("command", ["export", "train", "train-dcgan"])
def test_planted_training_checkpoint_runs_no_code(tmp_path, capsys, command):
    marker = tmp_path / "pwned"
    run = tmp_path / "run"
    run.mkdir()
    plant(run / "checkpoint.pt", marker, {"format": 2})
    args = (["export", run / "checkpoint.pt", "-o", tmp_path / "w.safetensors"] if command == "export" else
            ["train", "--data", faces(tmp_path / "faces"), "--out", run, "--resume", "--preset", "tiny", "--crop", "32",
             "--steps", "1", "--workers", "0"])
    if command == "train-dcgan":  # the DCGAN trains (and resumes) through the same fit
        args = ["train", "--model", "dcgan", "--data", tmp_path / "faces", "--out", run, "--resume", "--preset", "tiny",
                "--crop", "16", "--steps", "1", "--workers", "0"]
    with pytest.raises(SystemExit) as ei:
        main([str(a) for a in args])
    assert ei.value.code == 1
    assert not marker.exists(), "the planted pickle ran code"
    err = capsys.readouterr().err
    assert "checkpoint.pt" in err and "Traceback" not in err
    assert not (tmp_path / "w.safetensors").exists()


def test_killed_batch_is_finished_by_a_rerun(tmp_path):
    """SIGKILL while `restore --save-mask` writes a batch; the rerun keeps the finished pairs, replaces
    its own leftovers (a mask without its image, hidden temporary files) and finishes the rest."""
    src = tmp_path / "in"
    src.mkdir()
    rng = np.random.default_rng(5)
    n = 24
    for i in range(n):
        Image.fromarray(rng.integers(0, 256, (192, 256, 3), dtype=np.uint8)).save(src / f"p{i:02d}.png")
    mask = np.zeros((192, 256), np.uint8)
    mask[40:150, 60:200] = 255
    Image.fromarray(mask).save(tmp_path / "mask.png")
    out = tmp_path / "out"
    args = [sys.executable, "-m", "tessera", "restore", str(src), "--mask", str(tmp_path / "mask.png"), "--model", "smooth",
            "--kind", "hole", "--save-mask", "-o", str(out)]
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env())
    deadline = time.time() + 90
    while time.time() < deadline and not (out.exists() and len(os.listdir(out)) >= 5):
        time.sleep(0.005)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    # whatever the kill left, plant the two kinds of leftovers a kill can leave, at the next files
    names = set(os.listdir(out))
    todo = [i for i in range(n) if f"p{i:02d}.png" not in names]
    assert len(todo) >= 2, "the batch finished before the kill; make it larger"
    i, j = todo[-1], todo[-2]
    Image.fromarray(mask).save(out / f"p{i:02d}.synthesized.png", pnginfo=_pair(f"p{i:02d}.png"))  # orphan mask
    (out / f".p{j:02d}.png.deadbeef.tmp").write_bytes(b"")  # an empty temporary file
    r = subprocess.run(args, capture_output=True, text=True, timeout=300, env=env())
    assert "Traceback" not in r.stderr
    # finished pairs are not replaced without --overwrite (one line each); every other file is done
    for line in r.stderr.splitlines():
        if line.startswith("failed"):
            assert "exists; use --overwrite" in line, line
    final = sorted(os.listdir(out))
    assert final == sorted([f"p{k:02d}.png" for k in range(n)] + [f"p{k:02d}.synthesized.png" for k in range(n)]), final
    for k in range(n):
        with Image.open(out / f"p{k:02d}.png") as im:
            assert im.text["tessera:synthesized-mask"] == f"p{k:02d}.synthesized.png"
            im.load()


def _pair(name: str):
    from PIL import PngImagePlugin

    info = PngImagePlugin.PngInfo()
    info.add_text("tessera:pair", name)
    return info
