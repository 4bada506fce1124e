"""Seeded fuzzing through the command line: a few hundred mutated PNG/JPEG/GIF/WebP/TIFF files go
through `tessera detect` and `tessera pixelate` as one batch each. Every file either succeeds or
fails alone with one line naming it; nothing crashes, inputs stay byte-identical, and the only new
files are the outputs of the files that succeeded."""

from __future__ import annotations

import hashlib
import io
import os
import re
from pathlib import Path

import numpy as np
from PIL import Image

from tessera.cli import main

FORMATS = {"png": "PNG", "jpg": "JPEG", "gif": "GIF", "webp": "WEBP", "tif": "TIFF"}
N_FILES = 300


def _seed_files(rng: np.random.Generator) -> dict[str, bytes]:
    img = rng.integers(0, 256, (20, 28, 3), dtype=np.uint8)
    img[4:16, 6:22] = img[4:16, 6:22] // 64 * 64  # some structure
    out = {}
    for ext, fmt in FORMATS.items():
        buf = io.BytesIO()
        Image.fromarray(img).save(buf, format=fmt)
        out[ext] = buf.getvalue()
    return out


def _mutate(data: bytes, rng: np.random.Generator) -> bytes:
    b = bytearray(data)
    how = int(rng.integers(0, 6))
    if how == 0:  # flip a few bits
        for _ in range(int(rng.integers(1, 8))):
            i = int(rng.integers(0, len(b)))
            b[i] ^= 1 << int(rng.integers(0, 8))
    elif how == 1:  # truncate
        b = b[: int(rng.integers(0, len(b)))]
    elif how == 2:  # overwrite a run with random bytes
        i = int(rng.integers(0, len(b)))
        n = int(rng.integers(1, 32))
        b[i : i + n] = rng.bytes(n)
    elif how == 3:  # insert bytes
        i = int(rng.integers(0, len(b)))
        b[i:i] = rng.bytes(int(rng.integers(1, 64)))
    elif how == 4:  # duplicate a slice
        i, j = sorted(int(v) for v in rng.integers(0, len(b), 2))
        b[j:j] = b[i:j]
    else:  # header bytes (sizes live there)
        for _ in range(int(rng.integers(1, 4))):
            i = int(rng.integers(0, min(len(b), 40)))
            b[i] = int(rng.integers(0, 256))
    return bytes(b)


def _digests(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest() for p in root.rglob("*") if p.is_file()}


def run_cli(*args) -> tuple[int, str]:
    """``tessera ARGS`` in process: (exit code, everything it printed)."""
    import contextlib

    buf = io.StringIO()
    with contextlib.redirect_stderr(buf), contextlib.redirect_stdout(buf):
        try:
            main([str(a) for a in args])
            code = 0
        except SystemExit as exc:
            code = int(exc.code or 0)
    return code, buf.getvalue()


def fuzz_batch(root: Path, n: int = N_FILES, seed: int = 20261130) -> dict[str, tuple[int, int]]:
    """Write ``n`` mutated files under root/in, run detect and pixelate over the folder as one batch
    each, check every file succeeded or failed alone (one line), inputs unchanged, no stray or
    temporary file. Returns {command: (done, failed)}."""
    rng = np.random.default_rng(seed)
    seeds = _seed_files(rng)
    src = root / "in"
    src.mkdir(parents=True)
    exts = list(FORMATS)
    for i in range(n):
        ext = exts[i % len(exts)]
        (src / f"f{i:03d}.{ext}").write_bytes(_mutate(seeds[ext], rng))
    before = _digests(src)
    results = {}
    for cmd, out, flags in (("detect", root / "det", ["--no-net"]), ("pixelate", root / "pix", ["--cell", "4"])):
        code, msg = run_cli(cmd, src, "-o", out, *flags)
        assert "Traceback" not in msg and "(set TESSERA_DEBUG" not in msg, msg[-2000:]
        assert code in (0, 1), msg[-2000:]
        failed = re.findall(r"^failed (\S+): (.+)$", msg, flags=re.M)
        assert all(reason.strip() for _, reason in failed)
        failed_names = {Path(p).name for p, _ in failed}
        m = re.search(rf"{cmd}: (\d+) of (\d+) done", msg)
        assert m and int(m.group(2)) == n, msg[-500:]
        done = int(m.group(1))
        assert done + len(failed_names) == n
        made = sorted(p.name for p in out.rglob("*")) if out.exists() else []
        assert not [x for x in made if x.startswith(".")], "temporary files left"
        per_input = 2 if cmd == "detect" else 1
        assert len(made) == per_input * done
        for name in failed_names:  # a failed file leaves no output of its own
            stem = name.rsplit(".", 1)[0]
            assert not [x for x in made if x.startswith(stem + ".")], name
        results[cmd] = (done, len(failed_names))
    assert _digests(src) == before
    return results


def test_fuzzed_batch_through_detect_and_pixelate(tmp_path, monkeypatch):
    monkeypatch.setenv("TESSERA_MAX_PIXELS", "1000000")  # a mutated header may claim a huge size: refuse fast
    results = fuzz_batch(tmp_path)
    # the mutations are strong enough to break many files and mild enough to leave many readable
    for cmd, (done, failed) in results.items():
        assert done >= 30 and failed >= 30, (cmd, done, failed)
