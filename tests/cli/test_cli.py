"""The command line through its real entry point (`python -m tessera`, the same `main` as the
`tessera` console script): exit codes, messages, outputs, and inputs left untouched."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tessera.mosaic.pixelate import pixelate

ROOT = Path(__file__).resolve().parents[2]
BOAT = ROOT / "examples" / "boat.png"


def run(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "COLUMNS": "400"}  # keep rich from wrapping messages
    return subprocess.run(
        [sys.executable, "-m", "tessera", *map(str, args)], capture_output=True, text=True, cwd=cwd, timeout=120, env=env
    )


def digest(p: Path) -> str:
    return hashlib.sha256(p.read_bytes()).hexdigest()


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    src = tmp_path / "in"
    (src / "sub").mkdir(parents=True)
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 256, (64, 80, 3), dtype=np.uint8)).save(src / "a.png")
    Image.fromarray(rng.integers(0, 256, (50, 40, 3), dtype=np.uint8)).save(src / "sub" / "b.jpg", quality=95)
    return src


def test_help_explains_every_command():
    out = run("--help")
    assert out.returncode == 0
    for cmd in ("pixelate", "restore", "eval"):
        assert cmd in out.stdout
    assert "imagination" in out.stdout
    sub = run("pixelate", "--help")
    assert sub.returncode == 0 and "--cell" in sub.stdout and "--feather" in sub.stdout


def test_pixelate_box_changes_exactly_the_cells_inside(tmp_path):
    out = tmp_path / "boat_mosaic.png"
    before = digest(BOAT)
    r = run("pixelate", BOAT, "--box", "100,80,128,128", "--cell", "12", "-o", out)
    assert r.returncode == 0, r.stderr
    assert digest(BOAT) == before
    img = np.asarray(Image.open(BOAT).convert("RGB"))
    got = np.asarray(Image.open(out).convert("RGB"))
    expected, changed = pixelate(img, boxes=[(100, 80, 128, 128)], cell=12)
    assert (got == expected).all()
    # the box 100..227 x 80..207 holds the cells whose centres (5 + 12k) fall inside it
    ys, xs = np.nonzero(changed)
    assert (ys.min(), ys.max(), xs.min(), xs.max()) == (84, 203, 96, 227)


def test_pixelate_folder_mirrors_names_and_options(folder, tmp_path):
    out = tmp_path / "out"
    r = run("pixelate", folder, "-o", out, "--cell", "6x10", "--phase", "2,3", "--sampling", "centre", "--save-mask")
    assert r.returncode == 0, r.stderr
    assert (out / "a.png").is_file() and (out / "sub" / "b.jpg").is_file() and (out / "a.mask.png").is_file()
    a = np.asarray(Image.open(folder / "a.png"))
    expected, _ = pixelate(a, cell=(6, 10), phase=(2, 3), sampling="centre")
    assert (np.asarray(Image.open(out / "a.png")) == expected).all()
    assert "2 of 2 done" in r.stderr


@pytest.mark.parametrize("sampling", ["centre-up", "first"])
def test_pixelate_takes_other_tools_samplings(folder, tmp_path, sampling):
    # ffmpeg's neighbour scaling (centre-up) and OpenCV's INTER_NEAREST (first): the pixel each cell holds
    out = tmp_path / "a.png"
    r = run("pixelate", folder / "a.png", "-o", out, "--cell", "6", "--sampling", sampling.upper())
    assert r.returncode == 0, r.stderr
    a = np.asarray(Image.open(folder / "a.png"))
    got = np.asarray(Image.open(out))
    assert (got == pixelate(a, cell=(6, 6), sampling=sampling)[0]).all()
    assert not (got == pixelate(a, cell=(6, 6), sampling="centre")[0]).all()
    # whole cells (64 x 80 px: 10 x 13 of them) hold their first pixel (0, 6, 12, ...) or, centre-up, the one at 3, 9, ...
    k = 0 if sampling == "first" else 3
    assert (got[0:60:6, 0:78:6] == a[k:60:6, k:78:6]).all()


def test_sampling_help_names_the_tools():
    r = run("pixelate", "--help")
    text = " ".join(r.stdout.split())
    for word in ("centre-up", "first", "ffmpeg", "INTER_NEAREST", "ImageMagick"):
        assert word in text, word
    r = run("restore", "--help")
    assert "centre-up" in r.stdout and "INTER_NEAREST" in " ".join(r.stdout.split())


def test_existing_output_is_kept_without_overwrite(folder, tmp_path):
    out = tmp_path / "o.png"
    out.write_bytes(b"keep me")
    r = run("pixelate", folder / "a.png", "-o", out)
    assert r.returncode == 1 and out.read_bytes() == b"keep me"
    assert "overwrite" in r.stderr
    r = run("pixelate", folder / "a.png", "-o", out, "--overwrite")
    assert r.returncode == 0 and Image.open(out).size == (80, 64)


def test_output_onto_the_input_is_refused(folder):
    before = digest(folder / "a.png")
    r = run("pixelate", folder / "a.png", "-o", folder / "a.png", "--overwrite")
    assert r.returncode == 1 and "input" in r.stderr
    assert digest(folder / "a.png") == before


BAD_USAGE = [
    (["--box", "1,2,3"], "--box"),
    (["--box", "a,b,c,d"], "--box"),
    (["--cell", "0"], "cell"),
    (["--cell", "3x"], "cell"),
    (["--phase", "1"], "--phase"),
    (["--sampling", "median"], "sampling"),
    (["--blur", "-1"], "blur"),
    (["--feather", "-2"], "feather"),
    (["--mask", "/nonexistent/mask.png"], "mask"),
]


@pytest.mark.parametrize("flags,word", BAD_USAGE)
def test_usage_errors_exit_2_with_a_message(folder, tmp_path, flags, word):
    r = run("pixelate", folder / "a.png", "-o", tmp_path / "x.png", *flags)
    assert r.returncode == 2, (r.returncode, r.stderr)
    assert word in r.stderr and "Traceback" not in r.stderr
    assert not (tmp_path / "x.png").exists()


def test_missing_input_is_a_usage_error(tmp_path):
    r = run("pixelate", tmp_path / "nope.png", "-o", tmp_path / "x.png")
    assert r.returncode == 2 and "does not exist" in r.stderr


def test_bad_files_in_a_batch_fail_alone(folder, tmp_path):
    (folder / "empty.png").write_bytes(b"")
    (folder / "text.jpg").write_text("not an image")
    good = (folder / "a.png").read_bytes()
    (folder / "trunc.png").write_bytes(good[: len(good) // 2])
    hashes = {p: digest(p) for p in folder.rglob("*") if p.is_file()}
    r = run("pixelate", folder, "-o", tmp_path / "out")
    assert r.returncode == 1
    assert "2 of 5 done, 3 failed" in r.stderr
    for name in ("empty.png", "text.jpg", "trunc.png"):
        assert name in r.stderr
    assert "Traceback" not in r.stderr
    assert {p: digest(p) for p in hashes} == hashes
    assert (tmp_path / "out" / "a.png").is_file() and not (tmp_path / "out" / "empty.png").exists()


@pytest.mark.parametrize(
    "flags,expect_code,word",
    [
        (["--box", "500,500,10,10"], 1, "outside"),  # a box entirely outside the image
        (["--cell", "500"], 0, None),  # a cell larger than the image: one cell, a correct result
    ],
)
def test_region_edge_cases(folder, tmp_path, flags, expect_code, word):
    out = tmp_path / "x.png"
    r = run("pixelate", folder / "a.png", "-o", out, *flags)
    assert r.returncode == expect_code, r.stderr
    if word:
        assert word in r.stderr
    else:
        got = np.asarray(Image.open(out))
        assert (got == got[0, 0]).all()


def test_mask_wrong_size_and_empty_mask(folder, tmp_path):
    Image.fromarray(np.zeros((10, 10), np.uint8)).save(tmp_path / "small.png")
    r = run("pixelate", folder / "a.png", "-o", tmp_path / "x.png", "--mask", tmp_path / "small.png")
    assert r.returncode == 1 and "size" in r.stderr
    Image.fromarray(np.zeros((64, 80), np.uint8)).save(tmp_path / "empty.png")
    r = run("pixelate", folder / "a.png", "-o", tmp_path / "y.png", "--mask", tmp_path / "empty.png")
    assert r.returncode == 0
    assert (np.asarray(Image.open(tmp_path / "y.png")) == np.asarray(Image.open(folder / "a.png"))).all()


def test_unwritable_output_folder(folder, tmp_path):
    blocker = tmp_path / "blocker"
    blocker.write_text("a file where a folder should be")
    r = run("pixelate", folder / "a.png", "-o", blocker / "x.png")
    assert r.returncode == 1 and "Traceback" not in r.stderr
    assert blocker.read_text() == "a file where a folder should be"


def test_restore_with_mask_saves_and_names_the_synthesized_mask(tmp_path):
    img = np.asarray(Image.open(BOAT).convert("RGB"))
    mos, changed = pixelate(img, boxes=[(100, 80, 128, 128)], cell=12)
    Image.fromarray(mos).save(tmp_path / "m.png")
    Image.fromarray(changed.astype(np.uint8) * 255).save(tmp_path / "mask.png")
    r = run("restore", tmp_path / "m.png", "--mask", tmp_path / "mask.png", "--cell", "12", "--model", "smooth",
            "--save-mask", "-o", tmp_path / "r.png")
    assert r.returncode == 0, r.stderr
    out = Image.open(tmp_path / "r.png")
    assert out.text["tessera:synthesized-mask"] == "r.synthesized.png"
    assert "imagined" in out.text["tessera:notice"] and "imagined" in r.stderr
    syn = np.asarray(Image.open(tmp_path / "r.synthesized.png")) > 127
    assert (syn == changed).all()
    got = np.asarray(out.convert("RGB"))
    assert (got[~changed] == mos[~changed]).all() and (got[changed] != mos[changed]).any()


def test_restore_with_a_known_cell_takes_the_tools_sampling(tmp_path):
    # an OpenCV INTER_NEAREST mosaic (each cell its first pixel) restored with --sampling first
    from tessera.mosaic.region import Grid
    from tessera.restore.pipeline import restore_image

    img = np.asarray(Image.open(BOAT).convert("RGB"))[:96, :96]
    mos, changed = pixelate(img, boxes=[(24, 24, 48, 48)], cell=12, sampling="first")
    Image.fromarray(mos).save(tmp_path / "m.png")
    Image.fromarray(changed.astype(np.uint8) * 255).save(tmp_path / "mask.png")
    r = run("restore", tmp_path / "m.png", "--mask", tmp_path / "mask.png", "--cell", "12", "--model", "smooth",
            "--sampling", "first", "-o", tmp_path / "r.png")
    assert r.returncode == 0, r.stderr
    want = restore_image(mos, changed, model="smooth", grid=Grid(12, 12, 0, 0, "first"), sampling="first").image
    assert (np.asarray(Image.open(tmp_path / "r.png").convert("RGB")) == want).all()
    other = restore_image(mos, changed, model="smooth", grid=Grid(12, 12, 0, 0, "mean"), sampling="mean").image
    assert not (want == other).all()  # the sampling matters
    bad = run("restore", tmp_path / "m.png", "--sampling", "median", "-o", tmp_path / "x.png")
    assert bad.returncode == 2 and "centre-up" in bad.stderr and "Traceback" not in bad.stderr


def test_restore_rejects_unknown_model(tmp_path):
    r = run("restore", BOAT, "--model", "nope", "-o", tmp_path / "r.png")
    assert r.returncode == 2 and "unknown model" in r.stderr


def test_pixelate_faces(tmp_path):
    face = sorted((ROOT.parent / "shared" / "data" / "faces" / "val").glob("*.jpg"))
    if not face:
        pytest.skip("no face images")
    # the first val faces the detector finds: pixelated inside, untouched outside the face box
    from tessera.detect.faces import find_faces

    src = next((f for f in face[:20] if find_faces(np.asarray(Image.open(f).convert("RGB")))), None)
    assert src is not None, "the Haar cascade found no face in 20 val face crops"
    r = run("pixelate", src, "--faces", "--cell", "8", "--save-mask", "-o", tmp_path / "f.png")
    assert r.returncode == 0, r.stderr
    changed = np.asarray(Image.open(tmp_path / "f.mask.png")) > 127
    assert 0.1 < changed.mean() < 1.0
    # an image without a face fails loudly instead of passing through unchanged
    r = run("pixelate", BOAT, "--faces", "-o", tmp_path / "b.png")
    assert r.returncode == 1 and "no face found" in r.stderr and not (tmp_path / "b.png").exists()


def test_unwritable_extensions_become_png_and_icc_profiles_are_kept(tmp_path):
    src = tmp_path / "in"
    src.mkdir()
    img = Image.open(BOAT).convert("RGB")
    img.save(src / "a.ppm")
    icc = b"\0" * 128 + b"not-a-real-profile"  # Pillow stores the bytes as they are
    img.save(src / "b.png", icc_profile=icc)
    mask = np.zeros((img.height, img.width), np.uint8)
    mask[80:200, 100:220] = 255
    Image.fromarray(mask).save(tmp_path / "mask.png")
    r = run("restore", src, "--mask", tmp_path / "mask.png", "--cell", "12", "--model", "smooth", "-o", tmp_path / "out")
    assert r.returncode == 0, r.stderr
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["a.png", "b.png"]
    assert Image.open(tmp_path / "out" / "b.png").info.get("icc_profile") == icc
    bad = run("restore", src / "a.ppm", "--model", "smooth", "-o", tmp_path / "x.gif")
    assert bad.returncode == 2 and "cannot write .gif" in bad.stderr and not (tmp_path / "x.gif").exists()


def test_restore_refuses_before_writing_when_the_mask_output_exists(tmp_path):
    img = np.asarray(Image.open(BOAT).convert("RGB"))
    mos, changed = pixelate(img, boxes=[(100, 80, 128, 128)], cell=12)
    Image.fromarray(mos).save(tmp_path / "m.png")
    Image.fromarray(changed.astype(np.uint8) * 255).save(tmp_path / "mask.png")
    (tmp_path / "r.synthesized.png").write_bytes(b"keep me")
    r = run("restore", tmp_path / "m.png", "--mask", tmp_path / "mask.png", "--model", "smooth", "--save-mask", "-o", tmp_path / "r.png")
    assert r.returncode == 1 and "exists" in r.stderr
    assert not (tmp_path / "r.png").exists() and (tmp_path / "r.synthesized.png").read_bytes() == b"keep me"
