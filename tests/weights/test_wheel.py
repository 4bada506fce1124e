"""A wheel carries every shipped weight, and an installed (not editable) Tessera restores with them."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", str(ROOT), "-w", str(out)],
        check=True, capture_output=True,
    )
    (whl,) = out.glob("tessera-*.whl")
    return whl


def test_wheel_contains_every_shipped_weight_and_card(wheel):
    from tessera.weights import SHIPPED

    names = set(zipfile.ZipFile(wheel).namelist())
    for file in SHIPPED.values():
        assert f"tessera/weights/{file}" in names
        assert f"tessera/weights/{Path(file).with_suffix('.md')}" in names
    assert "tessera/evaluate/niqe_pristine.npz" in names  # the NIQE pristine model is package data too


@pytest.mark.slow
def test_installed_wheel_restores_with_the_shipped_models(wheel, tmp_path):
    """Installed into a plain folder (not editable) and run from elsewhere: the shipped scenes model
    and detector are used, never a silent fallback."""
    site = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", str(site), str(wheel)], check=True)
    out = tmp_path / "out.png"
    code = (
        "import sys, tessera; from tessera.cli import main; "
        f"assert tessera.__file__.startswith({str(site)!r}), tessera.__file__; "
        f"main(['restore', {str(ROOT / 'examples' / 'boat_mosaic.png')!r}, '-o', {str(out)!r}])"
    )
    env = {"PYTHONPATH": str(site), "PATH": "/usr/bin:/bin"}
    run = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    from PIL import Image

    assert Image.open(out).text["tessera:model"] == "scenes"
