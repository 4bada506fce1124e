"""Image I/O against real-world files: every colour mode, EXIF, animations, bombs, broken files,
atomic writes. All inputs are generated in tmp_path (no checked-in binaries), plus a few real
photos from ../shared/data."""

from __future__ import annotations

import hashlib
import os
import pickle
import struct
import warnings
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tessera.io import image as imaging
from tessera.io.image import (
    IMAGE_EXTS,
    ImageInfo,
    ImageReadError,
    ImageWriteError,
    MaskError,
    TesseraWarning,
    collect_inputs,
    read_image,
    read_mask,
    same_file,
    write_image,
)

DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"
RNG = np.random.default_rng(1234)


# ---------------------------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------------------------


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def png_bytes(width: int, height: int, bit_depth: int, colour_type: int, rows: bytes | None) -> bytes:
    """A minimal PNG written by hand (Pillow cannot write 16-bit RGB or lie about its size).
    rows: raw scanlines without filter bytes; None writes a tiny bogus IDAT."""

    def chunk(tag: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", width, height, bit_depth, colour_type, 0, 0, 0)
    if rows is None:
        idat = zlib.compress(b"\x00" * 64)
    else:
        stride = len(rows) // height
        idat = zlib.compress(b"".join(b"\x00" + rows[i * stride : (i + 1) * stride] for i in range(height)))
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


def read_quiet(path: Path, **kw) -> tuple[np.ndarray, ImageInfo]:
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a clean file must read without any warning
        return read_image(path, **kw)


PALETTE = [255, 0, 0, 0, 255, 0, 0, 0, 255, 10, 20, 30]  # indices 0..3


# ---------------------------------------------------------------------------------------------
# colour modes -> RGB uint8
# ---------------------------------------------------------------------------------------------


def test_rgb_png_exact(tmp_path):
    rgb = RNG.integers(0, 256, (7, 5, 3), dtype=np.uint8)
    Image.fromarray(rgb).save(tmp_path / "a.png")
    out, info = read_quiet(tmp_path / "a.png")
    assert out.dtype == np.uint8 and out.shape == (7, 5, 3)
    np.testing.assert_array_equal(out, rgb)
    assert (info.format, info.mode, info.size, info.n_frames, info.alpha) == ("PNG", "RGB", (5, 7), 1, None)
    assert info.warnings == () and info.orientation == 1 and info.path == tmp_path / "a.png"


def test_mode_1_becomes_0_and_255(tmp_path):
    bits = np.array([[0, 1, 1], [1, 0, 0]], dtype=bool)
    Image.fromarray(bits).save(tmp_path / "b.png")
    out, info = read_quiet(tmp_path / "b.png")
    assert info.mode == "1"
    np.testing.assert_array_equal(out, np.repeat((bits * 255).astype(np.uint8)[..., None], 3, 2))


def test_mode_l_three_equal_channels(tmp_path):
    grey = np.arange(12, dtype=np.uint8).reshape(3, 4) * 20
    Image.fromarray(grey, "L").save(tmp_path / "g.png")
    out, info = read_quiet(tmp_path / "g.png")
    assert info.mode == "L" and info.alpha is None
    for c in range(3):
        np.testing.assert_array_equal(out[..., c], grey)


def test_mode_la_keeps_alpha(tmp_path):
    la = np.dstack([np.full((2, 3), 77, np.uint8), np.array([[0, 128, 255], [1, 2, 3]], np.uint8)])
    Image.fromarray(la, "LA").save(tmp_path / "la.png")
    out, info = read_quiet(tmp_path / "la.png")
    assert info.mode == "LA"
    assert (out == 77).all()
    np.testing.assert_array_equal(info.alpha, la[..., 1])


def test_rgba_keeps_alpha(tmp_path):
    rgba = RNG.integers(0, 256, (4, 6, 4), dtype=np.uint8)
    Image.fromarray(rgba, "RGBA").save(tmp_path / "x.png")
    out, info = read_quiet(tmp_path / "x.png")
    np.testing.assert_array_equal(out, rgba[..., :3])
    np.testing.assert_array_equal(info.alpha, rgba[..., 3])
    assert info.alpha.dtype == np.uint8 and info.alpha.shape == (4, 6)


@pytest.mark.parametrize("ext", [".png", ".gif", ".bmp"])
def test_palette_colours_exact(tmp_path, ext):
    idx = np.array([[0, 1, 2, 3], [3, 2, 1, 0]], np.uint8)
    im = Image.fromarray(idx, "P")
    im.putpalette(PALETTE)
    im.save(tmp_path / f"p{ext}")
    out, info = read_quiet(tmp_path / f"p{ext}")
    assert info.mode == "P" and info.alpha is None
    colours = np.array(PALETTE, np.uint8).reshape(-1, 3)
    np.testing.assert_array_equal(out, colours[idx])


def test_palette_with_transparency(tmp_path):
    idx = np.array([[0, 1, 2, 3]], np.uint8)
    im = Image.fromarray(idx, "P")
    im.putpalette(PALETTE)
    im.save(tmp_path / "pt.png", transparency=1)
    out, info = read_quiet(tmp_path / "pt.png")
    np.testing.assert_array_equal(out[0], np.array(PALETTE, np.uint8).reshape(-1, 3))
    np.testing.assert_array_equal(info.alpha, [[255, 0, 255, 255]])


def test_grey_colour_key_transparency(tmp_path):
    Image.fromarray(np.array([[7, 9]], np.uint8), "L").save(tmp_path / "t.png", transparency=7)
    out, info = read_quiet(tmp_path / "t.png")
    np.testing.assert_array_equal(out[0, :, 0], [7, 9])
    np.testing.assert_array_equal(info.alpha, [[0, 255]])


SIXTEEN = np.array([[0, 257, 32896, 65535], [2570, 128, 129, 65280]], np.uint16)
SIXTEEN_8 = np.array([[0, 1, 128, 255], [10, 0, 1, 254]], np.uint8)  # round(v / 257)


def test_png_16bit_grey_scaled_not_clipped(tmp_path):
    Image.fromarray(SIXTEEN).save(tmp_path / "g16.png")
    out, info = read_quiet(tmp_path / "g16.png")
    assert info.mode in ("I;16", "I")
    np.testing.assert_array_equal(out[..., 0], SIXTEEN_8)
    np.testing.assert_array_equal(out[..., 0], out[..., 2])


def test_png_16bit_rgb(tmp_path):
    px = np.array([[[65535, 32896, 0], [2570, 257, 51400]]], np.uint16)  # 255,128,0 / 10,1,200
    (tmp_path / "rgb16.png").write_bytes(png_bytes(2, 1, 16, 2, px.astype(">u2").tobytes()))
    out, info = read_quiet(tmp_path / "rgb16.png")
    assert info.format == "PNG"
    np.testing.assert_array_equal(out, [[[255, 128, 0], [10, 1, 200]]])


def test_png_16bit_grey_by_hand(tmp_path):
    (tmp_path / "g.png").write_bytes(png_bytes(4, 2, 16, 0, SIXTEEN.astype(">u2").tobytes()))
    out, _ = read_quiet(tmp_path / "g.png")
    np.testing.assert_array_equal(out[..., 1], SIXTEEN_8)


def test_tiff_i16_big_endian(tmp_path):
    im = Image.frombytes("I;16B", (4, 2), SIXTEEN.astype(">u2").tobytes())
    im.save(tmp_path / "b.tif")
    out, info = read_quiet(tmp_path / "b.tif")
    assert info.mode == "I;16B" and info.format == "TIFF"
    np.testing.assert_array_equal(out[..., 0], SIXTEEN_8)


def test_tiff_mode_i_16bit_range(tmp_path):
    Image.fromarray(SIXTEEN.astype(np.int32), "I").save(tmp_path / "i.tif")
    out, info = read_quiet(tmp_path / "i.tif")
    assert info.mode == "I"
    np.testing.assert_array_equal(out[..., 0], SIXTEEN_8)


def test_tiff_mode_i_out_of_range_is_stretched_with_warning(tmp_path):
    Image.fromarray(np.array([[-100, 0, 100_000]], np.int32), "I").save(tmp_path / "i.tif")
    with pytest.warns(TesseraWarning, match="stretched"):
        out, info = read_image(tmp_path / "i.tif")
    np.testing.assert_array_equal(out[0, :, 0], [0, 0, 255])
    assert len(info.warnings) == 1


def test_tiff_float_unit_range(tmp_path):
    f = np.array([[0.0, 0.5, 1.0, 0.25]], np.float32)
    Image.fromarray(f, "F").save(tmp_path / "f.tif")
    out, info = read_quiet(tmp_path / "f.tif")
    assert info.mode == "F"
    np.testing.assert_array_equal(out[0, :, 0], [0, 128, 255, 64])


@pytest.mark.parametrize("ext", [".tif", ".jpg"])
def test_cmyk_approx(tmp_path, ext):
    # red, green, blue, white, black (full K), grey (half K)
    cmyk = np.array([[[0, 255, 255, 0], [255, 0, 255, 0], [255, 255, 0, 0],
                      [0, 0, 0, 0], [0, 0, 0, 255], [0, 0, 0, 128]]], np.uint8)
    cmyk = np.repeat(np.repeat(cmyk, 8, axis=0), 8, axis=1)  # 8x8 blocks survive JPEG
    Image.fromarray(cmyk, "CMYK").save(tmp_path / f"c{ext}", quality=100)
    out, info = read_quiet(tmp_path / f"c{ext}")
    assert info.mode == "CMYK"
    want = np.array([[255, 0, 0], [0, 255, 0], [0, 0, 255], [255, 255, 255], [0, 0, 0], [127, 127, 127]])
    got = out[4, 4::8].astype(int)
    assert np.abs(got - want).max() <= (2 if ext == ".tif" else 12), got


def test_cmyk_with_unusable_icc_profile_falls_back(tmp_path):
    Image.new("CMYK", (8, 8), (0, 255, 255, 0)).save(tmp_path / "c.jpg", quality=100, icc_profile=b"not a profile")
    with pytest.warns(TesseraWarning, match="ICC profile not applied"):
        out, info = read_image(tmp_path / "c.jpg")
    assert info.icc_profile == b"not a profile"
    assert np.abs(out.astype(int) - (255, 0, 0)).max() <= 12


def test_exif_orientation_6_rotates_clockwise(tmp_path):
    # 8 wide x 4 high: left half red, right half blue. Orientation 6 = display rotated 90 deg CW,
    # so the left half ends on top (orientation 8 would put it at the bottom).
    a = np.zeros((4, 8, 3), np.uint8)
    a[:, :4] = (255, 0, 0)
    a[:, 4:] = (0, 0, 255)
    exif = Image.Exif()
    exif[0x0112] = 6
    for ext, tol in ((".png", 0), (".jpg", 40)):
        Image.fromarray(a).save(tmp_path / f"o{ext}", exif=exif, quality=95)
        out, info = read_quiet(tmp_path / f"o{ext}")
        assert out.shape == (8, 4, 3) and info.size == (4, 8) and info.orientation == 6
        assert np.abs(out[1, 2].astype(int) - (255, 0, 0)).max() <= tol
        assert np.abs(out[6, 2].astype(int) - (0, 0, 255)).max() <= tol


def test_exif_orientation_applies_to_alpha(tmp_path):
    rgba = np.zeros((2, 4, 4), np.uint8)
    rgba[:, :2, 3] = 255  # left half opaque
    exif = Image.Exif()
    exif[0x0112] = 6
    Image.fromarray(rgba, "RGBA").save(tmp_path / "o.png", exif=exif)
    out, info = read_quiet(tmp_path / "o.png")
    assert info.alpha.shape == out.shape[:2] == (4, 2)
    np.testing.assert_array_equal(info.alpha[:, 0], [255, 255, 0, 0])


# ---------------------------------------------------------------------------------------------
# animations
# ---------------------------------------------------------------------------------------------


def _frames() -> list[Image.Image]:
    return [Image.new("RGB", (6, 4), c) for c in ((255, 0, 0), (0, 255, 0), (0, 0, 255))]


@pytest.mark.parametrize("ext", [".gif", ".png", ".webp"])
def test_animation_first_frame_with_warning(tmp_path, ext):
    frames = _frames()
    kw = {"lossless": True} if ext == ".webp" else {}
    frames[0].save(tmp_path / f"anim{ext}", save_all=True, append_images=frames[1:], duration=100, loop=0, **kw)
    with pytest.warns(TesseraWarning, match="first frame") as rec:
        out, info = read_image(tmp_path / f"anim{ext}")
    assert str(tmp_path / f"anim{ext}") in str(rec[0].message)
    assert info.n_frames == 3
    assert len(info.warnings) == 1 and "3 frames" in info.warnings[0]
    assert out.shape == (4, 6, 3)
    assert (out == (255, 0, 0)).all()


def test_camera_mpo_reads_primary_frame_without_warning(tmp_path):
    # Many camera JPEGs are MPO files whose extra frames are previews: not worth a warning.
    frames = _frames()
    frames[0].save(tmp_path / "cam.jpg", "MPO", save_all=True, append_images=frames[1:2])
    out, info = read_quiet(tmp_path / "cam.jpg")
    assert info.format == "MPO" and info.n_frames == 2 and info.warnings == ()
    assert np.abs(out.astype(int) - (255, 0, 0)).max() <= 3


def test_info_compares_by_identity(tmp_path):
    Image.new("RGBA", (2, 2)).save(tmp_path / "a.png")
    _, a = read_quiet(tmp_path / "a.png")
    _, b = read_quiet(tmp_path / "a.png")
    assert a == a and a != b  # no "truth value of an array is ambiguous"


def test_tessera_warning_is_user_warning():
    assert issubclass(TesseraWarning, UserWarning)


# ---------------------------------------------------------------------------------------------
# decompression bombs
# ---------------------------------------------------------------------------------------------


def test_max_pixels_refuses_small_image(tmp_path):
    Image.new("RGB", (20, 10)).save(tmp_path / "s.png")
    with pytest.raises(ImageReadError, match=r"s\.png: image is 20x10 = 200 pixels, more than the limit of 100"):
        read_image(tmp_path / "s.png", max_pixels=100)
    assert read_image(tmp_path / "s.png", max_pixels=200)[0].shape == (10, 20, 3)


def test_bomb_header_refused_before_decoding(tmp_path):
    # 12000 x 9000 = 108 MP claimed with a few bytes of IDAT: over our 100 MP default, under
    # Pillow's hard error limit. Decoding would fail differently, so the message proves the
    # header check ran first; Pillow's DecompressionBombWarning must not leak either.
    bomb = tmp_path / "bomb.png"
    bomb.write_bytes(png_bytes(12000, 9000, 8, 2, None))
    with warnings.catch_warnings(record=True) as rec:
        warnings.simplefilter("always")
        with pytest.raises(ImageReadError, match="max_pixels") as ei:
            read_image(bomb)
    assert "bomb.png" in str(ei.value) and "108,000,000" in str(ei.value)
    assert not [w for w in rec if issubclass(w.category, Image.DecompressionBombWarning)]


def test_huge_bomb_header_refused(tmp_path):
    bomb = tmp_path / "huge.png"
    bomb.write_bytes(png_bytes(100_000, 100_000, 8, 2, None))
    with pytest.raises(ImageReadError, match="huge.png.*decompression bomb"):
        read_image(bomb, max_pixels=None)
    with pytest.raises(ImageReadError, match="huge.png"):
        read_image(bomb)


def test_import_sets_no_global_pil_state():
    from PIL import ImageFile

    assert ImageFile.LOAD_TRUNCATED_IMAGES is False
    assert Image.MAX_IMAGE_PIXELS == int(1024 * 1024 * 1024 // 4 // 3)


# ---------------------------------------------------------------------------------------------
# broken inputs -> ImageReadError naming the file
# ---------------------------------------------------------------------------------------------


def _jpeg_bytes() -> bytes:
    import io

    buf = io.BytesIO()
    Image.fromarray(RNG.integers(0, 256, (64, 64, 3), dtype=np.uint8)).save(buf, "JPEG", quality=90)
    return buf.getvalue()


def _png_file_bytes() -> bytes:
    import io

    buf = io.BytesIO()
    Image.fromarray(RNG.integers(0, 256, (64, 64, 3), dtype=np.uint8)).save(buf, "PNG")
    return buf.getvalue()


BROKEN = {
    "empty.jpg": (lambda: b"", "empty"),
    "half.jpg": (lambda: _jpeg_bytes()[: len(_jpeg_bytes()) // 2], "truncated or corrupt"),
    "head.jpg": (lambda: _jpeg_bytes()[:40], "truncated or corrupt"),
    "half.png": (lambda: _png_file_bytes()[: len(_png_file_bytes()) // 2], "truncated or corrupt"),
    "head.png": (lambda: _png_file_bytes()[:20], "truncated or corrupt"),
    "badcrc.png": (lambda: _png_file_bytes()[:40] + b"\x00" * 8 + _png_file_bytes()[48:], "truncated or corrupt"),
    "random.png": (lambda: np.random.default_rng(5).bytes(5000), "not an image file"),
    "notes.png": (lambda: b"this is a text file\n" * 10, "not an image file"),
}


@pytest.mark.parametrize("name", sorted(BROKEN))
def test_broken_files_raise_read_error(tmp_path, name):
    make, reason = BROKEN[name]
    p = tmp_path / name
    p.write_bytes(make())
    before = sha(p)
    with pytest.raises(ImageReadError) as ei:
        read_image(p)
    err = ei.value
    assert str(err).startswith(f"{p}: ") and reason in str(err)
    assert err.path == p and reason in err.reason
    assert err.__cause__ is None  # no chained Pillow traceback for the caller
    assert sha(p) == before


def test_fuzzed_files_raise_only_read_error(tmp_path):
    # Truncate or flip bytes of small valid files in every format: each read either succeeds with
    # RGB uint8 or raises ImageReadError, never a Pillow/OSError/struct error.
    import io

    rng = np.random.default_rng(7)
    rgb = rng.integers(0, 256, (12, 10, 3), dtype=np.uint8)
    seeds = []
    for fmt in ("PNG", "JPEG", "WEBP", "BMP", "TIFF", "GIF"):
        buf = io.BytesIO()
        Image.fromarray(rgb).save(buf, fmt)
        seeds.append(buf.getvalue())
    p = tmp_path / "fuzz.img"
    outcomes = {"ok": 0, "error": 0}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", TesseraWarning)
        for data in seeds:
            for _ in range(25):
                d = bytearray(data)
                if rng.random() < 0.5:
                    d = d[: rng.integers(1, len(d))]
                else:
                    for _ in range(rng.integers(1, 5)):
                        d[rng.integers(0, len(d))] = rng.integers(0, 256)
                p.write_bytes(bytes(d))
                try:
                    out, _ = read_image(p)
                    assert out.dtype == np.uint8 and out.ndim == 3 and out.shape[2] == 3
                    outcomes["ok"] += 1
                except ImageReadError as err:
                    assert str(err).startswith(f"{p}: ")
                    outcomes["error"] += 1
    assert outcomes["ok"] > 0 and outcomes["error"] > 0


def test_directory_and_missing(tmp_path):
    with pytest.raises(ImageReadError, match="is a folder"):
        read_image(tmp_path)
    with pytest.raises(ImageReadError, match=r"nope\.jpg: no such file"):
        read_image(tmp_path / "nope.jpg")
    (tmp_path / "f").write_text("x")
    with pytest.raises(ImageReadError, match="no such file"):
        read_image(tmp_path / "f" / "x.png")


def test_read_error_pickles_and_is_catchable(tmp_path):
    err = ImageReadError(tmp_path / "a.jpg", "file is truncated or corrupt")
    back = pickle.loads(pickle.dumps(err))
    assert str(back) == str(err) == f"{tmp_path / 'a.jpg'}: file is truncated or corrupt"
    assert isinstance(back, imaging.ImageIOError)


def _good_corpus(tmp_path: Path) -> list[Path]:
    out = []
    rgb = RNG.integers(0, 256, (9, 11, 3), dtype=np.uint8)
    for ext in (".png", ".jpg", ".webp", ".bmp", ".tif", ".gif"):
        Image.fromarray(rgb).save(tmp_path / f"c{ext}")
        out.append(tmp_path / f"c{ext}")
    Image.fromarray(SIXTEEN).save(tmp_path / "c16.png")
    Image.fromarray(np.zeros((3, 3, 4), np.uint8), "CMYK").save(tmp_path / "cmyk.jpg")
    frames = _frames()
    frames[0].save(tmp_path / "anim.gif", save_all=True, append_images=frames[1:])
    return out + [tmp_path / "c16.png", tmp_path / "cmyk.jpg", tmp_path / "anim.gif"]


def test_reading_never_changes_input_bytes(tmp_path):
    files = _good_corpus(tmp_path)
    for name, (make, _) in BROKEN.items():
        (tmp_path / name).write_bytes(make())
        files.append(tmp_path / name)
    bomb = tmp_path / "bomb.png"
    bomb.write_bytes(png_bytes(12000, 9000, 8, 2, None))
    files.append(bomb)
    hashes = {p: sha(p) for p in files}
    for p in files:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", TesseraWarning)
            try:
                rgb, _ = read_image(p)
                assert rgb.dtype == np.uint8 and rgb.ndim == 3 and rgb.shape[2] == 3
            except ImageReadError:
                pass
    assert {p: sha(p) for p in files} == hashes
    assert sorted(os.listdir(tmp_path)) == sorted(p.name for p in files)


# ---------------------------------------------------------------------------------------------
# writing
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("ext", [".png", ".bmp", ".tif", ".tiff"])
def test_lossless_round_trip(tmp_path, ext):
    rgb = RNG.integers(0, 256, (6, 9, 3), dtype=np.uint8)
    out = write_image(tmp_path / f"w{ext}", rgb)
    assert out == tmp_path / f"w{ext}"
    np.testing.assert_array_equal(read_quiet(out)[0], rgb)


@pytest.mark.parametrize("ext", [".jpg", ".jpeg", ".webp", ".JPG"])
def test_lossy_round_trip_close(tmp_path, ext):
    rgb = np.zeros((32, 32, 3), np.uint8)
    rgb[:, :16] = (200, 40, 90)
    rgb[:, 16:] = (30, 160, 220)
    back, info = read_quiet(write_image(tmp_path / f"w{ext}", rgb))
    assert info.format == {".webp": "WEBP"}.get(ext.lower(), "JPEG")
    assert np.abs(back.astype(int) - rgb)[:, [2, 29]].max() <= 6


@pytest.mark.parametrize("ext", [".png", ".webp"])
def test_alpha_round_trip(tmp_path, ext):
    rgb = RNG.integers(0, 256, (16, 16, 3), dtype=np.uint8)
    alpha = RNG.integers(0, 256, (16, 16), dtype=np.uint8)
    back, info = read_quiet(write_image(tmp_path / f"a{ext}", rgb, alpha=alpha, quality=100))
    assert info.mode == "RGBA"
    np.testing.assert_array_equal(info.alpha, alpha)
    np.testing.assert_array_equal(back, rgb)  # PNG, and WebP at quality 100 (lossless)


def test_webp_lossy_keeps_alpha_exact(tmp_path):
    alpha = np.tile(np.arange(0, 256, 16, dtype=np.uint8), (16, 1))
    _, info = read_quiet(write_image(tmp_path / "a.webp", np.full((16, 16, 3), 99, np.uint8), alpha=alpha))
    np.testing.assert_array_equal(info.alpha, alpha)


@pytest.mark.parametrize("ext", [".jpg", ".bmp"])
def test_alpha_dropped_for_jpeg_and_bmp(tmp_path, ext):
    rgb = np.full((8, 8, 3), 120, np.uint8)
    back, info = read_quiet(write_image(tmp_path / f"a{ext}", rgb, alpha=np.zeros((8, 8), np.uint8)))
    assert info.mode == "RGB" and info.alpha is None
    assert np.abs(back.astype(int) - 120).max() <= 2


def test_jpeg_quality_changes_size(tmp_path):
    rgb = RNG.integers(0, 256, (64, 64, 3), dtype=np.uint8)
    low = write_image(tmp_path / "q30.jpg", rgb, quality=30).stat().st_size
    high = write_image(tmp_path / "q95.jpg", rgb, quality=95).stat().st_size
    assert high > 1.5 * low
    with pytest.raises(ValueError, match="quality"):
        write_image(tmp_path / "q0.jpg", rgb, quality=0)


def test_png_text_chunks(tmp_path):
    text = {"tessera:synthesized-mask": "photo.mask.png", "Comment": "Restoration is imagination", "uni": "café ✓"}
    p = write_image(tmp_path / "t.png", np.zeros((2, 2, 3), np.uint8), text=text)
    with Image.open(p) as im:
        im.load()
        assert {k: im.text[k] for k in text} == text
    # ignored (no error) by formats without text chunks
    write_image(tmp_path / "t.jpg", np.zeros((2, 2, 3), np.uint8), text=text)
    with pytest.raises(ValueError, match="PNG text keys"):
        write_image(tmp_path / "bad.png", np.zeros((2, 2, 3), np.uint8), text={"": "x"})


def test_icc_profile_written(tmp_path):
    from PIL import ImageCms

    icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    for ext in (".png", ".jpg", ".webp", ".tif"):
        _, info = read_quiet(write_image(tmp_path / f"i{ext}", np.zeros((4, 4, 3), np.uint8), icc_profile=icc))
        assert info.icc_profile == icc, ext


def test_masks_written_as_l(tmp_path):
    mask = np.zeros((5, 7), bool)
    mask[1:4, 2:6] = True
    for name, arr in (("b.png", mask), ("u.png", mask.astype(np.uint8)), ("u255.png", mask.astype(np.uint8) * 255)):
        p = write_image(tmp_path / name, arr)
        with Image.open(p) as im:
            assert im.mode == "L"
            np.testing.assert_array_equal(np.asarray(im), mask.astype(np.uint8) * 255)
        np.testing.assert_array_equal(read_mask(p, shape=(5, 7)), mask)


def test_grey_uint8_written_as_is(tmp_path):
    grey = np.arange(20, dtype=np.uint8).reshape(4, 5) * 10
    with Image.open(write_image(tmp_path / "g.png", grey)) as im:
        np.testing.assert_array_equal(np.asarray(im), grey)


@pytest.mark.parametrize(
    "arr",
    [np.zeros((4, 4, 3), np.float32), np.zeros((4, 4, 4), np.uint8), np.zeros((4, 4, 3), np.uint16), np.zeros((0, 4, 3), np.uint8)],
)
def test_bad_arrays_rejected(tmp_path, arr):
    with pytest.raises(ValueError):
        write_image(tmp_path / "x.png", arr)
    assert os.listdir(tmp_path) == []


def test_bad_alpha_rejected(tmp_path):
    with pytest.raises(ValueError, match="alpha"):
        write_image(tmp_path / "x.png", np.zeros((4, 4, 3), np.uint8), alpha=np.zeros((4, 5), np.uint8))


@pytest.mark.parametrize("name", ["x.gif", "x.heic", "noext"])
def test_unknown_extension(tmp_path, name):
    with pytest.raises(ImageWriteError) as ei:
        write_image(tmp_path / name, np.zeros((2, 2, 3), np.uint8))
    msg = str(ei.value)
    assert msg.startswith(str(tmp_path / name))
    for ext in (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff"):
        assert ext in msg
    assert os.listdir(tmp_path) == []


def test_existing_output_refused_then_overwritten(tmp_path):
    p = write_image(tmp_path / "o.png", np.zeros((3, 3, 3), np.uint8))
    before = sha(p)
    with pytest.raises(ImageWriteError, match="exists; use --overwrite"):
        write_image(p, np.full((3, 3, 3), 255, np.uint8))
    assert sha(p) == before
    write_image(p, np.full((3, 3, 3), 255, np.uint8), overwrite=True)
    assert (read_quiet(p)[0] == 255).all()
    assert os.listdir(tmp_path) == ["o.png"]


def test_creates_parents_and_leaves_no_temp_files(tmp_path):
    rgb = np.zeros((3, 3, 3), np.uint8)
    for ext in (".png", ".jpg", ".webp", ".bmp", ".tif"):
        write_image(tmp_path / "a" / "b" / f"x{ext}", rgb)
    write_image(tmp_path / "a" / "b" / "x.png", rgb, overwrite=True)
    assert sorted(os.listdir(tmp_path / "a" / "b")) == ["x.bmp", "x.jpg", "x.png", "x.tif", "x.webp"]


def test_written_file_has_normal_permissions(tmp_path):
    p = write_image(tmp_path / "m.png", np.zeros((2, 2, 3), np.uint8))
    umask = os.umask(0)
    os.umask(umask)
    assert p.stat().st_mode & 0o777 == 0o666 & ~umask


def test_failed_encode_is_atomic(tmp_path, monkeypatch):
    p = write_image(tmp_path / "keep.png", np.zeros((3, 3, 3), np.uint8))
    before = sha(p)

    def broken_save(self, fp, format=None, **params):
        fp.write(b"half an image")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(Image.Image, "save", broken_save)
    with pytest.raises(ImageWriteError, match="keep.png: writing failed .*no space left"):
        write_image(p, np.full((3, 3, 3), 9, np.uint8), overwrite=True)
    assert sha(p) == before
    assert os.listdir(tmp_path) == ["keep.png"]


def test_unwritable_output_folder(tmp_path):
    (tmp_path / "file.txt").write_text("not a folder")
    rgb = np.zeros((2, 2, 3), np.uint8)
    for target in (tmp_path / "file.txt" / "x.png", tmp_path / "file.txt" / "sub" / "x.png"):
        with pytest.raises(ImageWriteError) as ei:
            write_image(target, rgb)
        assert str(ei.value).startswith(str(target)) and "file.txt" in ei.value.reason
    (tmp_path / "dir.png").mkdir()
    with pytest.raises(ImageWriteError, match="is a folder"):
        write_image(tmp_path / "dir.png", rgb, overwrite=True)
    assert (tmp_path / "file.txt").read_text() == "not a folder"


# ---------------------------------------------------------------------------------------------
# masks
# ---------------------------------------------------------------------------------------------


def test_read_mask_threshold_and_shape(tmp_path):
    grey = np.array([[0, 127, 128, 255]], np.uint8)
    Image.fromarray(grey, "L").save(tmp_path / "m.png")
    np.testing.assert_array_equal(read_mask(tmp_path / "m.png"), [[False, False, True, True]])
    np.testing.assert_array_equal(read_mask(tmp_path / "m.png", shape=(1, 4, 3)), [[False, False, True, True]])
    with pytest.raises(MaskError, match=r"mask is 4x1 \(WxH\) but the image is 5x2") as ei:
        read_mask(tmp_path / "m.png", shape=(2, 5))
    assert isinstance(ei.value, ValueError) and "m.png" in str(ei.value)


def test_read_mask_colour_uses_grey(tmp_path):
    rgb = np.array([[[255, 255, 255], [255, 0, 0], [0, 255, 0], [0, 0, 0]]], np.uint8)
    Image.fromarray(rgb).save(tmp_path / "c.png")
    np.testing.assert_array_equal(read_mask(tmp_path / "c.png"), [[True, False, True, False]])


def test_read_mask_from_alpha_when_colour_is_flat(tmp_path):
    rgba = np.zeros((1, 3, 4), np.uint8)
    rgba[0, :, 3] = (0, 200, 100)
    Image.fromarray(rgba, "RGBA").save(tmp_path / "a.png")
    np.testing.assert_array_equal(read_mask(tmp_path / "a.png"), [[False, True, False]])


# ---------------------------------------------------------------------------------------------
# inputs for the CLI
# ---------------------------------------------------------------------------------------------


def test_collect_inputs_mirrors_tree(tmp_path):
    root = tmp_path / "in"
    for rel in ("b.png", "a.jpg", "sub/c.JPG", "sub/deeper/d.webp", ".hidden.png", ".git/e.png", "notes.txt", "sub/x.json"):
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(b"x")
    (root / "dir.png").mkdir()
    got = collect_inputs([root])
    assert [(s.relative_to(root).as_posix(), r.as_posix()) for s, r in got] == [
        ("a.jpg", "a.jpg"),
        ("b.png", "b.png"),
        ("sub/c.JPG", "sub/c.JPG"),
        ("sub/deeper/d.webp", "sub/deeper/d.webp"),
    ]
    # a named file: just its name, whatever its extension; the same file twice is kept once
    single = collect_inputs([root / "sub" / "c.JPG", root / "notes.txt", root / "sub" / ".." / "sub" / "c.JPG"])
    assert [(s, r) for s, r in single] == [(root / "sub" / "c.JPG", Path("c.JPG")), (root / "notes.txt", Path("notes.txt"))]


def test_collect_inputs_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="missing.png: no such file or folder"):
        collect_inputs([tmp_path / "missing.png"])
    for d in ("x", "y"):
        (tmp_path / d).mkdir()
        (tmp_path / d / "same.png").write_bytes(b"x")
    with pytest.raises(ValueError, match="same.png"):
        collect_inputs([tmp_path / "x", tmp_path / "y"])


def test_collect_inputs_relative_folder(tmp_path, monkeypatch):
    (tmp_path / "s").mkdir()
    (tmp_path / "s" / "a.png").write_bytes(b"x")
    monkeypatch.chdir(tmp_path)
    assert collect_inputs([Path(".")]) == [(Path("s/a.png"), Path("s/a.png"))]


def test_image_exts():
    assert {".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff", ".gif"} <= IMAGE_EXTS
    assert all(e == e.lower() and e.startswith(".") for e in IMAGE_EXTS)


def test_same_file(tmp_path):
    a = tmp_path / "a.png"
    a.write_bytes(b"x")
    (tmp_path / "d").mkdir()
    assert same_file(a, tmp_path / "d" / ".." / "a.png")
    os.link(a, tmp_path / "hard.png")
    os.symlink(a, tmp_path / "soft.png")
    assert same_file(a, tmp_path / "hard.png") and same_file(tmp_path / "soft.png", a)
    b = tmp_path / "b.png"
    b.write_bytes(b"x")
    assert not same_file(a, b)
    assert not same_file(a, tmp_path / "new.png")
    assert same_file(tmp_path / "new.png", tmp_path / "d" / ".." / "new.png")


# ---------------------------------------------------------------------------------------------
# real photos
# ---------------------------------------------------------------------------------------------

needs_data = pytest.mark.skipif(not DATA.is_dir(), reason="../shared/data is not present")


@needs_data
def test_real_grey_photo_has_equal_channels(tmp_path):
    # The bundled data stores grey photos as RGB JPEGs (no mode-L files); check one, then the same
    # pixels saved as a real mode-L PNG.
    src = DATA / "faces" / "train" / "face-0020.jpg"
    rgb, info = read_quiet(src)
    assert info.format == "JPEG" and rgb.shape == (123, 155, 3)
    assert (rgb[..., 0] == rgb[..., 1]).all() and (rgb[..., 1] == rgb[..., 2]).all()
    with Image.open(src) as im:
        im.convert("L").save(tmp_path / "grey.png")
    grey, ginfo = read_quiet(tmp_path / "grey.png")
    assert ginfo.mode == "L"
    np.testing.assert_array_equal(grey, rgb)


@needs_data
def test_real_photos_read_and_round_trip(tmp_path):
    for src in (DATA / "scenes" / "val" / "set5-img_001_SRF_2_HR.png", DATA / "scenes" / "train" / "bsds-100075.jpg"):
        before = sha(src)
        rgb, info = read_quiet(src)
        assert rgb.shape == (info.size[1], info.size[0], 3) and rgb.std() > 10
        assert sha(src) == before
        back, _ = read_quiet(write_image(tmp_path / (src.stem + ".png"), rgb))
        np.testing.assert_array_equal(back, rgb)
