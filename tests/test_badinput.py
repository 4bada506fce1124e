"""The bad-input corpus: files, masks, flags, model files, paths and faults a careless or hostile
user hands the command line, through its real entry point (``tessera.cli.main``, in process for
speed; the kill test uses a subprocess). Each case asserts the exit code, a clear one-line message,
the inputs' bytes unchanged, and exactly the expected new files (no stray or temporary file)."""

from __future__ import annotations

import hashlib
import io
import json
import os
import struct
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tessera.cli import main


# ---------------------------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------------------------


def cli(*args) -> tuple[int, str]:
    """Run ``tessera ARGS`` in process; return (exit code, stderr + stdout)."""
    try:
        main([str(a) for a in args])
        code = 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    return code, ""


@pytest.fixture
def run(capsys):
    def _run(*args) -> tuple[int, str]:
        capsys.readouterr()
        code, _ = cli(*args)
        cap = capsys.readouterr()
        return code, cap.err + cap.out

    return _run


def snapshot(root: Path) -> dict[str, str]:
    """Every file under root (links too, by their target text) -> a digest of its bytes."""
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in filenames + [d for d in dirnames if os.path.islink(os.path.join(dirpath, d))]:
            p = Path(dirpath) / name
            rel = str(p.relative_to(root))
            if p.is_symlink():
                out[rel] = "link:" + os.readlink(p)
            else:
                out[rel] = hashlib.sha256(p.read_bytes()).hexdigest()
    return out


def png_bytes(arr: np.ndarray, **kw) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="PNG", **kw)
    return buf.getvalue()


def chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def bomb_png(w: int, h: int) -> bytes:
    """A tiny PNG whose header claims w x h pixels."""
    ihdr = struct.pack(">IIBBBBB", w, h, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")


def safetensors_file(path: Path, tensors: dict | None = None, meta: dict | None = None) -> Path:
    import torch
    from safetensors.torch import save_file

    save_file(tensors if tensors is not None else {"w": torch.zeros(2)}, str(path), metadata=meta)
    return path


RNG = np.random.default_rng(7)
A = RNG.integers(0, 256, (48, 64, 3), dtype=np.uint8)  # a.png: 64x48


class WS:
    """A workspace: inputs in ``in/``, outputs expected in ``out/`` (or where a case says)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.inp = root / "in"
        self.out = root / "out"
        self.inp.mkdir()
        (self.inp / "a.png").write_bytes(png_bytes(A))
        mask = np.zeros((48, 64), np.uint8)
        mask[8:40, 16:48] = 255
        (root / "mask.png").write_bytes(png_bytes(mask))

    def __truediv__(self, rel: str) -> Path:
        return self.root / rel

    def img(self, rel: str, arr: np.ndarray | None = None, **kw) -> Path:
        p = self.root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(A if arr is None else arr).save(p, **kw)
        return p

    def raw(self, rel: str, data: bytes) -> Path:
        p = self.root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(data)
        return p


@dataclass
class Case:
    kind: str  # files | masks | flags | models | paths | faults
    setup: Callable[[WS], list]  # -> the command line (after `tessera`)
    code: int
    says: str | None = None  # a word the message must hold (case-insensitive)
    new: tuple[str, ...] = ()  # files (relative to the workspace) the command must create
    changed: tuple[str, ...] = ()  # existing files the command may legitimately replace
    check: Callable[[WS, str], None] | None = None
    env: dict = field(default_factory=dict)


def pix(ws: WS, *flags, out: str = "out/a.png", src: str = "in/a.png") -> list:
    return ["pixelate", ws / src, "-o", ws / out, *flags]


def det(ws: WS, *flags, src: str = "in", out: str = "out") -> list:
    return ["detect", ws / src, "-o", ws / out, "--no-net", *flags]


def res(ws: WS, *flags, src: str = "in/a.png", out: str = "out/a.png") -> list:
    return ["restore", ws / src, "-o", ws / out, "--model", "smooth", "--mask", ws / "mask.png", *flags]


def with_files(fn: Callable[[WS], None], cmd: Callable[[WS], list]) -> Callable[[WS], list]:
    def setup(ws: WS) -> list:
        fn(ws)
        return cmd(ws)

    return setup


def same_pixels(rel: str, expect: Callable[[WS], np.ndarray]) -> Callable[[WS, str], None]:
    def check(ws: WS, _msg: str) -> None:
        got = np.asarray(Image.open(ws / rel).convert("RGB"))
        assert (got == expect(ws)).all()

    return check


def unchanged_a(ws: WS) -> np.ndarray:
    return A


def all_cells(ws: WS) -> np.ndarray:
    from tessera.mosaic.pixelate import pixelate

    return pixelate(A, cell=12)[0]


def mosaic_in_mask(ws: WS) -> np.ndarray:
    from tessera.mosaic.pixelate import pixelate

    return pixelate(A, np.asarray(Image.open(ws / "mask.png")) > 127, cell=12)[0]


def tiny_unet_file(path: Path, **kw) -> Path:
    from tessera.models import build_model, save_model

    return save_model(build_model("unet", base=4, depth=3), path, "unet", {"base": 4, "depth": 3}, **kw)


# ---------------------------------------------------------------------------------------------
# the corpus
# ---------------------------------------------------------------------------------------------

GOOD = b"\x89PNG\r\n\x1a\n"

CASES: dict[str, Case] = {
    # --- files -------------------------------------------------------------------------------
    "empty file": Case("files", with_files(lambda ws: ws.raw("in/e.png", b""), lambda ws: pix(ws, src="in/e.png", out="out/e.png")), 1, "empty"),
    "text named png": Case("files", with_files(lambda ws: ws.raw("in/t.png", b"hello"), lambda ws: pix(ws, src="in/t.png", out="out/t.png")), 1, "not an image"),
    "truncated png": Case("files", with_files(lambda ws: ws.raw("in/t.png", png_bytes(A)[:300]), lambda ws: pix(ws, src="in/t.png", out="out/t.png")), 1, "truncated"),
    "png signature only": Case("files", with_files(lambda ws: ws.raw("in/t.png", GOOD), lambda ws: pix(ws, src="in/t.png", out="out/t.png")), 1, "truncated or corrupt"),
    "truncated jpeg": Case("files", with_files(lambda ws: ws.raw("in/t.jpg", b"\xff\xd8\xff\xe0" + b"\0" * 40), lambda ws: pix(ws, src="in/t.jpg", out="out/t.png")), 1, "corrupt"),
    "random bytes jpg": Case("files", with_files(lambda ws: ws.raw("in/r.jpg", RNG.bytes(500)), lambda ws: pix(ws, src="in/r.jpg", out="out/r.png")), 1, "image"),
    "bomb header": Case("files", with_files(lambda ws: ws.raw("in/b.png", bomb_png(60000, 60000)), lambda ws: pix(ws, src="in/b.png", out="out/b.png")), 1, "pixels"),
    "over machine pixel limit": Case("files", lambda ws: pix(ws), 1, "TESSERA_MAX_PIXELS", env={"TESSERA_MAX_PIXELS": "1000"}),
    "one pixel image": Case("files", with_files(lambda ws: ws.img("in/p.png", A[:1, :1]), lambda ws: pix(ws, src="in/p.png", out="out/p.png")), 0, None, new=("out/p.png",)),
    "animated gif": Case("files", with_files(
        lambda ws: Image.fromarray(A).save(ws / "in/g.gif", save_all=True, append_images=[Image.fromarray(A[::-1].copy())]),
        lambda ws: pix(ws, src="in/g.gif", out="out/g.png")), 0, None, new=("out/g.png",)),
    "16-bit png": Case("files", with_files(lambda ws: Image.fromarray((A[..., 0].astype(np.uint16) * 257)).save(ws / "in/s.png"),
                                             lambda ws: pix(ws, src="in/s.png", out="out/s.png")), 0, None, new=("out/s.png",)),
    "cmyk jpeg": Case("files", with_files(lambda ws: Image.fromarray(A).convert("CMYK").save(ws / "in/c.jpg"),
                                            lambda ws: pix(ws, src="in/c.jpg", out="out/c.png")), 0, None, new=("out/c.png",)),
    "folder without images": Case("files", with_files(lambda ws: ws.raw("in2/readme.txt", b"x"), lambda ws: pix(ws, src="in2", out="out")), 2, "no images"),
    "missing input": Case("files", lambda ws: pix(ws, src="in/nope.png"), 2, "does not exist"),
    "link loop input": Case("files", with_files(lambda ws: os.symlink("loop.png", ws / "in/loop.png"), lambda ws: pix(ws, src="in/loop.png")), 2, "does not exist"),
    "bad files fail alone in a batch": Case("files", with_files(lambda ws: ws.raw("in/e.png", b""), lambda ws: det(ws)), 1, "e.png: ",
                                            new=("out/a.json", "out/a.mask.png")),
    # --- masks -------------------------------------------------------------------------------
    "mask wrong size": Case("masks", with_files(lambda ws: ws.img("m.png", A[:10, :10]), lambda ws: pix(ws, "--mask", ws / "m.png")), 1, "size"),
    "mask not an image": Case("masks", with_files(lambda ws: ws.raw("m.png", b"nope"), lambda ws: pix(ws, "--mask", ws / "m.png")), 1, "m.png"),
    "mask is a folder": Case("masks", with_files(lambda ws: (ws / "m.png").mkdir(), lambda ws: pix(ws, "--mask", ws / "m.png")), 2, "--mask"),
    "mask missing": Case("masks", lambda ws: pix(ws, "--mask", ws / "nope.png"), 2, "--mask"),
    "mask all white warns": Case("masks", with_files(lambda ws: ws.img("w.png", np.full((48, 64), 255, np.uint8)), lambda ws: pix(ws, "--mask", ws / "w.png")),
                                 0, "white everywhere", new=("out/a.png",), check=same_pixels("out/a.png", all_cells)),
    "mask all black": Case("masks", with_files(lambda ws: ws.img("k.png", np.zeros((48, 64), np.uint8)), lambda ws: pix(ws, "--mask", ws / "k.png")),
                           0, None, new=("out/a.png",), check=same_pixels("out/a.png", unchanged_a)),
    "mask used exactly": Case("masks", lambda ws: pix(ws, "--mask", ws / "mask.png"), 0, None, new=("out/a.png",), check=same_pixels("out/a.png", mosaic_in_mask)),
    "restore mask and mask-dir": Case("masks", lambda ws: res(ws, "--mask-dir", ws / "in"), 2, "not both"),
    "restore mask-dir not a folder": Case("masks", lambda ws: ["restore", ws / "in/a.png", "-o", ws / "out/a.png", "--model", "smooth", "--mask-dir", ws / "mask.png"], 2, "--mask-dir"),
    "restore mask-dir without the mask": Case("masks", with_files(lambda ws: (ws / "md").mkdir(),
                                              lambda ws: ["restore", ws / "in/a.png", "-o", ws / "out/a.png", "--model", "smooth", "--mask-dir", ws / "md"]), 1, "no mask named"),
    "restore all-white mask warns": Case("masks", with_files(lambda ws: ws.img("w.png", np.full((48, 64), 255, np.uint8)),
                                         lambda ws: ["restore", ws / "in/a.png", "-o", ws / "out/a.png", "--model", "smooth", "--mask", ws / "w.png", "--kind", "hole"]),
                                         0, "white everywhere", new=("out/a.png",)),
    # --- flags -------------------------------------------------------------------------------
    "cell 0": Case("flags", lambda ws: pix(ws, "--cell", "0"), 2, "cell"),
    "cell negative": Case("flags", lambda ws: pix(ws, "--cell", "-3"), 2, "cell"),
    "cell huge int": Case("flags", lambda ws: pix(ws, "--cell", "99999999999999999999"), 2, "at most"),
    "cell 3x": Case("flags", lambda ws: pix(ws, "--cell", "3x"), 2, "cell"),
    "cell words": Case("flags", lambda ws: pix(ws, "--cell", "big"), 2, "cell"),
    "cell larger than image": Case("flags", lambda ws: pix(ws, "--cell", "500"), 0, None, new=("out/a.png",)),
    "blur nan": Case("flags", lambda ws: pix(ws, "--blur", "nan"), 2, "--blur"),
    "blur inf": Case("flags", lambda ws: pix(ws, "--blur", "inf"), 2, "--blur"),
    "blur 1e9": Case("flags", lambda ws: pix(ws, "--blur", "1e9"), 2, "--blur"),
    "blur negative": Case("flags", lambda ws: pix(ws, "--blur", "-1"), 2, "--blur"),
    "blur zero": Case("flags", lambda ws: pix(ws, "--blur", "0"), 2, "--blur"),
    "feather 100000": Case("flags", lambda ws: pix(ws, "--feather", "100000"), 2, "feather"),
    "feather negative": Case("flags", lambda ws: pix(ws, "--feather", "-1"), 2, "feather"),
    "feather at the bound is fast": Case("flags", lambda ws: pix(ws, "--feather", "4096", "--box", "8,8,16,16"), 0, None, new=("out/a.png",)),
    "box three numbers": Case("flags", lambda ws: pix(ws, "--box", "1,2,3"), 2, "--box"),
    "box huge int": Case("flags", lambda ws: pix(ws, "--box", "99999999999999999999,0,1,1"), 2, "--box"),
    "box outside the image": Case("flags", lambda ws: pix(ws, "--box", "500,500,10,10"), 1, "outside"),
    "phase one number": Case("flags", lambda ws: pix(ws, "--phase", "1"), 2, "--phase"),
    "sampling median": Case("flags", lambda ws: pix(ws, "--sampling", "median"), 2, "sampling"),
    "quality 0": Case("flags", lambda ws: pix(ws, "--jpeg-quality", "0"), 2, "quality"),
    "quality 101": Case("flags", lambda ws: pix(ws, "--jpeg-quality", "101"), 2, "quality"),
    "unknown option": Case("flags", lambda ws: pix(ws, "--bogus"), 2, "--bogus"),
    "unknown command": Case("flags", lambda ws: ["pixelat", ws / "in/a.png"], 2, "pixelat"),
    "detect sensitivity nan": Case("flags", lambda ws: det(ws, "--sensitivity", "nan"), 2, "--sensitivity"),
    "detect sensitivity 2": Case("flags", lambda ws: det(ws, "--sensitivity", "2"), 2, "sensitivity"),
    "detect min-area 0": Case("flags", lambda ws: det(ws, "--min-area", "0"), 2, "min-area"),
    "detect output is an image name": Case("flags", lambda ws: det(ws, out="out/x.png"), 2, "folder"),
    "restore kind nope": Case("flags", lambda ws: res(ws, "--kind", "nope"), 2, "kind must be"),
    "restore model nope": Case("flags", lambda ws: res(ws, "--model", "nope"), 2, "unknown model"),
    "restore refine nope": Case("flags", lambda ws: res(ws, "--refine", "nope"), 2, "refine"),
    "restore lam nan": Case("flags", lambda ws: res(ws, "--lam", "nan"), 2, "--lam"),
    "restore iters negative": Case("flags", lambda ws: res(ws, "--iters", "-1"), 2, "iters"),
    "restore cell huge": Case("flags", lambda ws: res(ws, "--cell", "12345678901234567890"), 2, "at most"),
    "eval cases 0": Case("flags", lambda ws: ["eval", "--data", ws / "in", "--cases", "0", "-o", ws / "rep"], 2, "cases"),
    "train crop huge": Case("flags", lambda ws: ["train", "--data", ws / "in", "--out", ws / "run", "--crop", "100000"], 2, "crop"),
    "train width huge": Case("flags", lambda ws: ["train", "--data", ws / "in", "--out", ws / "run", "--width", "100000"], 2, "width"),
    "train kwargs bomb": Case("flags", lambda ws: ["train", "--data", ws / "in", "--out", ws / "run", "--kwargs", '{"base": 2048}'], 2, "parameters"),
    "train kwargs unknown key": Case("flags", lambda ws: ["train", "--data", ws / "in", "--out", ws / "run", "--kwargs", '{"evil": 1}'], 2, "evil"),
    "train kwargs not json": Case("flags", lambda ws: ["train", "--data", ws / "in", "--out", ws / "run", "--kwargs", "{nope"], 2, "JSON"),
    "train lr nan": Case("flags", lambda ws: ["train", "--data", ws / "in", "--out", ws / "run", "--lr", "nan"], 2, "--lr"),
    # --- model files -------------------------------------------------------------------------
    "model random bytes": Case("models", with_files(lambda ws: ws.raw("m.safetensors", RNG.bytes(300)), lambda ws: res(ws, "--model", ws / "m.safetensors")),
                               1, "m.safetensors is not a readable safetensors"),
    "model without metadata": Case("models", with_files(lambda ws: safetensors_file(ws / "m.safetensors"), lambda ws: res(ws, "--model", ws / "m.safetensors")),
                                   1, "no Tessera model name"),
    "model asking for base 2048": Case("models", with_files(
        lambda ws: safetensors_file(ws / "m.safetensors", meta={"tessera_model": "unet", "tessera_kwargs": '{"base": 2048}'}),
        lambda ws: res(ws, "--model", ws / "m.safetensors")), 1, "parameters"),
    "model kwargs not json": Case("models", with_files(
        lambda ws: safetensors_file(ws / "m.safetensors", meta={"tessera_model": "unet", "tessera_kwargs": "{base: 4"}),
        lambda ws: res(ws, "--model", ws / "m.safetensors")), 1, "not JSON"),
    "model unknown name": Case("models", with_files(
        lambda ws: safetensors_file(ws / "m.safetensors", meta={"tessera_model": "evil", "tessera_kwargs": "{}"}),
        lambda ws: res(ws, "--model", ws / "m.safetensors")), 1, "no Tessera model name"),
    "model wrong shapes": Case("models", with_files(
        lambda ws: safetensors_file(ws / "m.safetensors", meta={"tessera_model": "unet", "tessera_kwargs": '{"base": 4, "depth": 3}'}),
        lambda ws: res(ws, "--model", ws / "m.safetensors")), 1, "does not match"),
    "detector weights random": Case("models", with_files(lambda ws: ws.raw("d.safetensors", RNG.bytes(64)),
                                                         lambda ws: ["detect", ws / "in", "-o", ws / "out", "--weights", ws / "d.safetensors"]), 1, "d.safetensors"),
    "detector weights of another model": Case("models", with_files(lambda ws: tiny_unet_file(ws / "d.safetensors"),
                                                                   lambda ws: ["detect", ws / "in", "-o", ws / "out", "--weights", ws / "d.safetensors"]), 1, "segnet"),
    "export not a checkpoint": Case("models", with_files(lambda ws: ws.raw("c.pt", b"not a checkpoint"),
                                                        lambda ws: ["export", ws / "c.pt", "-o", ws / "w.safetensors"]), 1, "c.pt"),
    # --- paths -------------------------------------------------------------------------------
    "output link to a file outside": Case("paths", with_files(
        lambda ws: (ws.raw("outside.png", b"precious"), ws.out.mkdir(), os.symlink(ws / "outside.png", ws / "out/a.png")),
        lambda ws: pix(ws, "--overwrite")), 1, "symbolic link"),
    "dangling link at output": Case("paths", with_files(
        lambda ws: (ws.out.mkdir(), os.symlink(ws / "escaped.png", ws / "out/a.png")), lambda ws: pix(ws, "--overwrite")), 1, "symbolic link"),
    "detect json link": Case("paths", with_files(
        lambda ws: (ws.raw("outside.json", b"{}"), ws.out.mkdir(), os.symlink(ws / "outside.json", ws / "out/a.json")),
        lambda ws: det(ws, "--overwrite")), 1, "symbolic link"),
    "output onto the input": Case("paths", lambda ws: pix(ws, "--overwrite", out="in/a.png"), 1, "input"),
    "output onto the input by another name": Case("paths", with_files(lambda ws: os.link(ws / "in/a.png", ws / "hard.png"),
                                                                   lambda ws: pix(ws, "--overwrite", out="hard.png")), 1, "input"),
    "save-mask over the --mask it reads": Case("paths", with_files(lambda ws: ws.img("in/m.png", np.zeros((48, 64), np.uint8)),
                                                                  lambda ws: pix(ws, "--save-mask", "--overwrite", "--mask", ws / "in/m.png", out="in/m.png")), 1, "reads"),
    "detect into the input folder over an input mask": Case("paths", with_files(
        lambda ws: ws.img("in/a.mask.png", np.zeros((48, 64), np.uint8)), lambda ws: ["detect", ws / "in/a.png", ws / "in/a.mask.png", "-o", ws / "in", "--no-net", "--overwrite"]),
        1, "input", new=("in/a.mask.json", "in/a.mask.mask.png")),
    "detect collision a.png a.jpg": Case("paths", with_files(lambda ws: ws.img("in/a.jpg"), lambda ws: det(ws)), 0, "full input name",
                                         new=("out/a.png.json", "out/a.png.mask.png", "out/a.jpg.json", "out/a.jpg.mask.png")),
    "pixelate collision b.gif b.png": Case("paths", with_files(lambda ws: (ws.img("in/a.gif"), ws.img("in/a.jpg")), lambda ws: pix(ws, "--save-mask", src="in", out="out")),
                                           0, "full input name",
                                           new=("out/a.png", "out/a.png.mask.png", "out/a.gif.png", "out/a.gif.mask.png", "out/a.jpg", "out/a.jpg.mask.png")),
    "same name from two folders": Case("paths", with_files(lambda ws: ws.img("in2/a.png"), lambda ws: ["pixelate", ws / "in", ws / "in2", "-o", ws / "out"]), 2, "would both"),
    "output folder is a file": Case("paths", with_files(lambda ws: ws.raw("out", b"x"), lambda ws: det(ws)), 2, "folder"),
    "output parent is a file": Case("paths", with_files(lambda ws: ws.raw("f", b"x"), lambda ws: pix(ws, out="f/a.png")), 1, "in the way"),
    "existing output kept": Case("paths", with_files(lambda ws: ws.raw("out/a.png", b"keep"), lambda ws: pix(ws)), 1, "exists"),
    "existing output replaced with overwrite": Case("paths", with_files(lambda ws: ws.raw("out/a.png", b"keep"), lambda ws: pix(ws, "--overwrite")),
                                                    0, None, changed=("out/a.png",), check=same_pixels("out/a.png", all_cells)),
    "output extension unwritable": Case("paths", lambda ws: pix(ws, out="out/a.gif"), 2, "cannot write .gif"),
    "eval over an existing report": Case("paths", with_files(lambda ws: ws.raw("rep/report.md", b"old"), lambda ws: ["eval", "--data", ws / "in", "-o", ws / "rep"]), 2, "--overwrite"),
    "train over an existing run": Case("paths", with_files(lambda ws: ws.raw("run/checkpoint.pt", b"old"),
                                                           lambda ws: ["train", "--data", ws / "in", "--out", ws / "run", "--preset", "tiny"]), 2, "--resume"),
    "export onto the checkpoint": Case("paths", with_files(lambda ws: ws.raw("c.pt", b"x"), lambda ws: ["export", ws / "c.pt", "-o", ws / "c.pt", "--overwrite"]), 2, "checkpoint"),
    "restore mask-dir beside detect outputs": Case("paths", with_files(
        lambda ws: (ws.img("in/a.mask.png", np.asarray(Image.open(ws / "mask.png"))), ws.img("in/a.synthesized.png", np.zeros((48, 64), np.uint8))),
        lambda ws: ["restore", ws / "in", "--mask-dir", ws / "in", "--model", "smooth", "--kind", "hole", "-o", ws / "out"]),
        0, "skipped 2", new=("out/a.png",)),
    # --- faults ------------------------------------------------------------------------------
    "leftover temp file is cleaned": Case("faults", with_files(lambda ws: ws.raw("out/.a.png.0123abcd.tmp", b""), lambda ws: pix(ws)),
                                          0, None, new=("out/a.png",), changed=("out/.a.png.0123abcd.tmp",)),
    "orphan mask of an interrupted run is replaced": Case("faults", with_files(
        lambda ws: ws.raw("out/a.mask.png", png_bytes(np.zeros((48, 64), np.uint8), pnginfo=_pair("a.png"))), lambda ws: pix(ws, "--save-mask")),
        0, None, new=("out/a.png",), changed=("out/a.mask.png",)),
    "foreign file at the mask name is kept": Case("faults", with_files(lambda ws: ws.raw("out/a.mask.png", b"mine"), lambda ws: pix(ws, "--save-mask")), 1, "exists"),
}


def _pair(name: str):
    from PIL import PngImagePlugin

    info = PngImagePlugin.PngInfo()
    info.add_text("tessera:pair", name)
    return info


def test_corpus_has_at_least_60_kinds():
    assert len(CASES) >= 60
    assert {c.kind for c in CASES.values()} == {"files", "masks", "flags", "models", "paths", "faults"}


@pytest.mark.parametrize("name", list(CASES))
def test_bad_input(name, tmp_path, run, monkeypatch):
    case = CASES[name]
    ws = WS(tmp_path)
    for k, v in case.env.items():
        monkeypatch.setenv(k, v)
    args = case.setup(ws)
    before = snapshot(tmp_path)
    code, msg = run(*args)
    assert "Traceback" not in msg, msg
    assert code == case.code, (code, msg)
    lines = [line for line in msg.splitlines() if line.strip()]
    if case.code == 2:
        assert len(lines) == 1 and lines[0].startswith("error:"), msg  # one line, never a usage panel
    if case.says:
        assert case.says.lower() in msg.lower(), msg
    if case.code == 1:
        assert any(line.startswith(("failed", "error:")) for line in lines), msg
    after = snapshot(tmp_path)
    for rel, digest in before.items():  # every input byte-identical (or replaced where the case says)
        if rel not in case.changed:
            assert after.get(rel) == digest, f"{rel} changed or vanished"
    created = {rel for rel in after if rel not in before}
    stray = created - set(case.new)
    assert not stray, f"stray files {sorted(stray)}"
    assert set(case.new) <= set(after), f"missing {sorted(set(case.new) - set(after))}"
    assert not [rel for rel in after if rel.endswith(".tmp") and rel not in before], "temporary files left"
    if case.check:
        case.check(ws, msg)


# ---------------------------------------------------------------------------------------------
# faults that need more than one call
# ---------------------------------------------------------------------------------------------


def test_full_disk_leaves_no_empty_file_and_the_rerun_works(tmp_path, run, monkeypatch):
    """ENOSPC while writing detect's JSON: neither file of the pair appears, nothing 0-byte, no temp."""
    ws = WS(tmp_path)
    real_fsync = os.fsync
    calls = []

    def full(fd):
        calls.append(fd)
        if len(calls) == 2:  # the second file of the pair (the JSON)
            raise OSError(28, "No space left on device")
        return real_fsync(fd)

    monkeypatch.setattr(os, "fsync", full)
    code, msg = run(*det(ws))
    assert code == 1 and "no space left" in msg.lower(), msg
    assert not ws.out.exists() or sorted(os.listdir(ws.out)) == []
    monkeypatch.setattr(os, "fsync", real_fsync)
    code, msg = run(*det(ws))
    assert code == 0, msg
    assert sorted(os.listdir(ws.out)) == ["a.json", "a.mask.png"]
    assert json.loads((ws.out / "a.json").read_text())["image"] == "a.png"


def test_writer_never_follows_a_link(tmp_path):
    from tessera.io.image import ImageWriteError, write_bytes, write_json

    (tmp_path / "secret").write_text("keep")
    os.symlink(tmp_path / "secret", tmp_path / "x.json")
    for overwrite in (False, True):
        with pytest.raises(ImageWriteError, match="symbolic link"):
            write_json(tmp_path / "x.json", {"a": 1}, overwrite=overwrite)
    assert (tmp_path / "secret").read_text() == "keep"
    write_bytes(tmp_path / "y.bin", b"1")
    with pytest.raises(ImageWriteError, match="exists"):
        write_bytes(tmp_path / "y.bin", b"2")
    assert sorted(os.listdir(tmp_path)) == ["secret", "x.json", "y.bin"]


def test_mask_dir_matches_detect_output_names(tmp_path, run):
    """detect's masks (a.png.mask.png after a collision, a.mask.png otherwise) feed restore --mask-dir."""
    ws = WS(tmp_path)
    ws.img("in/a.jpg", quality=95)
    code, msg = run(*det(ws, out="masks"))
    assert code == 0 and (ws / "masks/a.png.mask.png").is_file(), msg
    code, msg = run("restore", ws / "in", "--mask-dir", ws / "masks", "--model", "smooth", "--kind", "hole", "-o", ws / "out")
    assert code == 0, msg
    assert sorted(os.listdir(ws.out)) == ["a.jpg", "a.png"]


def test_rerun_after_an_interrupted_pair_replaces_only_its_own_leftover(tmp_path, run):
    ws = WS(tmp_path)
    code, msg = run(*res(ws, "--save-mask"))
    assert code == 0, msg
    good = (ws / "out/a.synthesized.png").read_bytes()
    (ws / "out/a.png").unlink()  # as if killed between the two renames
    code, msg = run(*res(ws, "--save-mask"))
    assert code == 0, msg
    assert (ws / "out/a.synthesized.png").read_bytes() == good
    assert sorted(os.listdir(ws.out)) == ["a.png", "a.synthesized.png"]
