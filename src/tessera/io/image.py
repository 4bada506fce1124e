"""Image files in and out: the one place where formats, EXIF, colour modes and sizes are handled.

Everything past this module sees one convention: RGB ``uint8`` arrays shaped ``(H, W, 3)``, an
optional ``uint8 (H, W)`` alpha kept beside them, and ``bool (H, W)`` masks.

- :func:`read_image` decodes any file Pillow can read (EXIF orientation applied; modes 1, L, LA, P,
  RGBA, CMYK, 16-bit and float all become RGB uint8) and refuses decompression bombs from the header,
  before any pixel is decoded. Every failure is an :class:`ImageReadError` naming the file and the
  reason; a caller never sees a raw Pillow/OSError traceback.
- :func:`write_image` writes atomically (temporary file in the same folder, then ``os.replace``),
  never overwrites unless asked, and picks the format from the extension.
- :func:`read_mask`, :func:`collect_inputs` and :func:`same_file` serve the CLI.

Importing this module sets no global Pillow state (``Image.MAX_IMAGE_PIXELS`` and
``ImageFile.LOAD_TRUNCATED_IMAGES`` are left as they are).
"""

from __future__ import annotations

import errno
import io
import json
import os
import re
import secrets
import warnings
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
from PIL import Image, ImageOps, PngImagePlugin, UnidentifiedImageError

from tessera.io.errors import FileIOError

__all__ = [
    "IMAGE_EXTS",
    "WRITE_FORMATS",
    "ImageInfo",
    "ImageIOError",
    "ImageReadError",
    "ImageWriteError",
    "MaskError",
    "TesseraWarning",
    "PAIR_KEY",
    "collect_inputs",
    "default_max_pixels",
    "companion_of",
    "image_writer",
    "open_append",
    "read_image",
    "read_mask",
    "remove_temp_files",
    "same_file",
    "temp_files_for",
    "write_bytes",
    "write_files",
    "write_image",
    "write_json",
    "write_text",
]

#: Extensions that folder walks pick up (compared lower-case). Named files are read whatever their name.
IMAGE_EXTS: frozenset[str] = frozenset(
    {".png", ".apng", ".jpg", ".jpeg", ".jpe", ".jfif", ".webp", ".bmp", ".gif", ".tif", ".tiff",
     ".ppm", ".pgm", ".pbm", ".pnm", ".tga"}
)

#: Extension (lower-case) -> Pillow format for :func:`write_image`.
WRITE_FORMATS: Mapping[str, str] = {
    ".png": "PNG",
    ".jpg": "JPEG",
    ".jpeg": "JPEG",
    ".webp": "WEBP",
    ".bmp": "BMP",
    ".tif": "TIFF",
    ".tiff": "TIFF",
}

_ALPHA_FORMATS = frozenset({"PNG", "WEBP", "TIFF"})
_ICC_FORMATS = frozenset({"PNG", "JPEG", "WEBP", "TIFF"})

# Leading bytes of formats we recognise: a file that starts like an image but does not decode is
# "truncated or corrupt", anything else is "not an image file".
_SIGNATURES: tuple[tuple[bytes, str], ...] = (
    (b"\x89PNG\r\n\x1a\n", "PNG"),
    (b"\xff\xd8", "JPEG"),
    (b"GIF87a", "GIF"),
    (b"GIF89a", "GIF"),
    (b"BM", "BMP"),
    (b"II*\x00", "TIFF"),
    (b"MM\x00*", "TIFF"),
    (b"RIFF", "WEBP"),
)


class TesseraWarning(UserWarning):
    """Something about an input was adjusted (first frame of an animation, an unreadable EXIF block...)."""


class ImageIOError(FileIOError):
    """An image file could not be read or written. ``str(err)`` is ``"<path>: <reason>"``."""


class ImageReadError(ImageIOError):
    """The file is missing, not an image, truncated, corrupt or too large to decode safely."""


class ImageWriteError(ImageIOError):
    """The image could not be written: output exists, unsupported extension, unwritable folder..."""


class MaskError(ValueError):
    """A mask file does not fit the image it belongs to."""


@dataclass(frozen=True, eq=False)  # eq=False: an ndarray field has no truth value to compare
class ImageInfo:
    """What :func:`read_image` learnt about a file besides its RGB pixels.

    size is (width, height) of the returned array, i.e. after the EXIF orientation was applied;
    mode is the original Pillow mode ("P", "I;16", "CMYK", ...); alpha is uint8 (H, W) when the
    file has an alpha channel or palette/colour-key transparency, else None; orientation is the
    EXIF orientation tag that was applied (1 = none).
    """

    path: Path
    format: str | None
    mode: str
    size: tuple[int, int]
    alpha: np.ndarray | None
    n_frames: int
    icc_profile: bytes | None
    warnings: tuple[str, ...] = ()
    orientation: int = 1


# --------------------------------------------------------------------------------------------------
# reading
# --------------------------------------------------------------------------------------------------


#: Pixels never decoded by default, however much memory the machine has.
MAX_PIXELS_CAP = 100_000_000
#: Bytes of memory a command may need per image pixel (reading, detecting, restoring, writing),
#: measured by benchmarks/reliability.py with margin; the default pixel limit is what fits.
BYTES_PER_PIXEL = 64


def available_memory() -> int | None:
    """Bytes of memory this process can still use: MemAvailable, lowered by a cgroup limit; None if unknown."""
    avail = None
    try:
        with open("/proc/meminfo", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    avail = int(line.split()[1]) * 1024
                    break
    except (OSError, ValueError):
        try:
            avail = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
        except (ValueError, OSError, AttributeError):
            avail = None
    for limit_file, usage_file in (("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory.current"),
                                   ("/sys/fs/cgroup/memory/memory.limit_in_bytes", "/sys/fs/cgroup/memory/memory.usage_in_bytes")):
        try:
            limit = Path(limit_file).read_text().strip()
            if limit.isdigit() and int(limit) < (1 << 60):
                free = int(limit) - int(Path(usage_file).read_text().strip())
                avail = free if avail is None else min(avail, free)
            break
        except (OSError, ValueError):
            continue
    return avail


def default_max_pixels() -> int:
    """The default pixel limit of :func:`read_image`: ``$TESSERA_MAX_PIXELS`` when set, else what
    the available memory holds at :data:`BYTES_PER_PIXEL`, at most :data:`MAX_PIXELS_CAP` (and at
    least 4 MP, so a busy machine still reads ordinary photos)."""
    env = os.environ.get("TESSERA_MAX_PIXELS", "").strip()
    if env:
        try:
            value = int(float(env))
        except ValueError:
            raise ValueError(f"TESSERA_MAX_PIXELS must be a number of pixels, got {env!r}") from None
        if value < 1:
            raise ValueError(f"TESSERA_MAX_PIXELS must be a positive number of pixels, got {env!r}")
        return value
    avail = available_memory()
    if avail is None:
        return MAX_PIXELS_CAP
    return int(min(MAX_PIXELS_CAP, max(4_000_000, avail // BYTES_PER_PIXEL)))


def read_image(
    path: str | os.PathLike[str], *, max_pixels: int | None | str = "auto"
) -> tuple[np.ndarray, ImageInfo]:
    """Read an image file as RGB uint8 ``(H, W, 3)`` plus its :class:`ImageInfo`.

    The EXIF orientation is applied. Animated or multi-page files give their first frame and a
    :class:`TesseraWarning`. ``max_pixels`` (width x height from the header, checked before any
    decoding; "auto" = :func:`default_max_pixels`, what this machine's memory holds; None = no
    limit of ours) refuses decompression bombs and images too large to process; Pillow's own hard
    limit (``2 * Image.MAX_IMAGE_PIXELS``) still applies above it.

    Raises ImageReadError("<path>: <reason>") for missing files, folders, empty, truncated,
    corrupt or unrecognised files and images over the pixel limit.
    """
    path = Path(path)
    auto = max_pixels == "auto"
    if auto:
        max_pixels = default_max_pixels()
    if max_pixels is not None and (not isinstance(max_pixels, int) or max_pixels < 1):
        raise ValueError(f"max_pixels must be a positive number of pixels or None, got {max_pixels}")
    _check_readable(path)

    notes: list[str] = []
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        rgb, info = _decode(path, max_pixels, notes, auto)
    for w in caught:
        if issubclass(w.category, Image.DecompressionBombWarning):
            continue  # our max_pixels check above is the limit that counts
        if issubclass(w.category, (DeprecationWarning, PendingDeprecationWarning)):
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
            continue
        notes.append(f"decoder warning: {w.message}")

    info = replace(info, warnings=tuple(notes))
    for note in notes:
        warnings.warn(f"{path}: {note}", TesseraWarning, stacklevel=2)
    return rgb, info


def _check_readable(path: Path) -> None:
    """Cheap checks with clear reasons before Pillow sees the file."""
    try:
        st = path.stat()
    except FileNotFoundError:
        raise ImageReadError(path, "no such file") from None
    except NotADirectoryError:
        raise ImageReadError(path, "no such file (a parent in the path is a file, not a folder)") from None
    except PermissionError:
        raise ImageReadError(path, "permission denied") from None
    except OSError as exc:
        raise ImageReadError(path, f"cannot access the file ({_os_reason(exc)})") from None
    if path.is_dir():
        raise ImageReadError(path, "is a folder, not an image file")
    if st.st_size == 0:
        raise ImageReadError(path, "file is empty (0 bytes)")


def _decode(path: Path, max_pixels: int | None, notes: list[str], auto: bool = False) -> tuple[np.ndarray, ImageInfo]:
    try:
        im_file = Image.open(path)
    except Image.DecompressionBombError as exc:
        raise ImageReadError(path, f"too many pixels to decode safely (possible decompression bomb): {exc}") from None
    except UnidentifiedImageError:
        raise ImageReadError(path, _unidentified_reason(path)) from None
    except PermissionError:
        raise ImageReadError(path, "permission denied") from None
    except OSError as exc:
        if exc.errno is not None:  # a system error (EIO, ENXIO...), not a decoder complaint
            raise ImageReadError(path, f"cannot open the file ({_os_reason(exc)})") from None
        raise ImageReadError(path, f"file is truncated or corrupt ({_detail(exc)})") from None
    except Exception as exc:  # noqa: BLE001 - plugins raise SyntaxError, struct.error, ValueError...
        raise ImageReadError(path, f"file is truncated or corrupt ({_detail(exc)})") from None

    with im_file as im:
        width, height = im.size
        if max_pixels is not None and width * height > max_pixels:
            raise ImageReadError(
                path,
                f"image is {width}x{height} = {width * height:,} pixels, more than the limit of "
                f"{max_pixels:,} (max_pixels"
                + ("; set from this machine's available memory, change it with TESSERA_MAX_PIXELS" if auto else "")
                + "); refusing to decode it (too large, or a decompression bomb)",
            )
        fmt = im.format
        mode = im.mode
        icc = im.info.get("icc_profile") or None
        if isinstance(icc, str):  # a few plugins hand it over as str
            icc = icc.encode("latin-1", "replace")
        try:
            n_frames = int(getattr(im, "n_frames", 1))
            if n_frames > 1:
                im.seek(0)
            if n_frames > 1 and fmt != "MPO":  # MPO: a camera JPEG whose extra frames are previews
                kind = "animation" if getattr(im, "is_animated", False) else "multi-page file"
                notes.append(f"{kind} with {n_frames} frames; only the first frame is used")
            im.load()
        except Image.DecompressionBombError as exc:
            raise ImageReadError(path, f"too many pixels to decode safely (possible decompression bomb): {exc}") from None
        except MemoryError:
            raise ImageReadError(path, f"not enough memory to decode {width}x{height} pixels") from None
        except Exception as exc:  # noqa: BLE001 - OSError("image file is truncated"), SyntaxError, EOFError...
            raise ImageReadError(path, f"file is truncated or corrupt ({_detail(exc)})") from None

        orientation, oriented = 1, im
        try:
            tag = int(im.getexif().get(0x0112, 1) or 1)
            if 2 <= tag <= 8:
                oriented = ImageOps.exif_transpose(im)
                orientation = tag
        except Exception as exc:  # noqa: BLE001 - a broken EXIF block must not lose the picture
            notes.append(f"EXIF orientation ignored: it could not be read ({_detail(exc)})")
            orientation, oriented = 1, im

        try:
            rgb, alpha = _to_rgb(oriented, icc, notes)
        except ImageReadError:
            raise
        except Exception as exc:  # noqa: BLE001
            raise ImageReadError(path, f"cannot convert colour mode {mode!r} to RGB ({_detail(exc)})") from None

    info = ImageInfo(
        path=path,
        format=fmt,
        mode=mode,
        size=(rgb.shape[1], rgb.shape[0]),
        alpha=alpha,
        n_frames=n_frames,
        icc_profile=icc,
        orientation=orientation,
    )
    return rgb, info


def _to_rgb(im: Image.Image, icc: bytes | None, notes: list[str]) -> tuple[np.ndarray, np.ndarray | None]:
    """Any Pillow image -> (RGB uint8 (H, W, 3), alpha uint8 (H, W) or None)."""
    mode = im.mode
    has_alpha = mode in ("RGBA", "RGBa", "LA", "La", "PA") or (
        mode in ("1", "L", "P", "RGB") and im.has_transparency_data
    )
    if has_alpha:
        rgba = np.asarray(im.convert("RGBA"))
        return np.ascontiguousarray(rgba[..., :3]), np.ascontiguousarray(rgba[..., 3])
    if mode == "RGB":
        return np.array(im), None
    if mode == "CMYK":
        return _cmyk_to_rgb(im, icc, notes), None
    if mode.startswith("I;16") or mode == "I":
        return _grey_to_rgb(_int_to_uint8(np.asarray(im), mode, notes)), None
    if mode == "F":
        return _grey_to_rgb(_float_to_uint8(np.asarray(im), notes)), None
    if mode in ("1", "L"):
        return _grey_to_rgb(np.asarray(im.convert("L"))), None
    try:
        return np.array(im.convert("RGB")), None  # P, RGBX, YCbCr, HSV, ...
    except (ValueError, OSError) as exc:
        raise ValueError(f"unsupported colour mode {mode!r}") from exc


def _grey_to_rgb(grey: np.ndarray) -> np.ndarray:
    return np.repeat(grey[..., None], 3, axis=2)


def _int_to_uint8(values: np.ndarray, mode: str, notes: list[str]) -> np.ndarray:
    """16-bit (or 32-bit integer) grey -> uint8 by rounding v / 257, so 65535 -> 255 and 257*k -> k."""
    v = values.astype(np.int64)
    if mode == "I" and v.size and (v.min() < 0 or v.max() > 65535):
        lo, hi = int(v.min()), int(v.max())
        notes.append(f"32-bit integer pixels span {lo}..{hi}; stretched to 0..255")
        return _stretch(v.astype(np.float64), lo, hi)
    return ((v * 2 + 257) // 514).astype(np.uint8)


def _float_to_uint8(values: np.ndarray, notes: list[str]) -> np.ndarray:
    """Float grey -> uint8: [0, 1] scaled by 255, [0, 255] kept, anything else stretched (NaN -> 0)."""
    v = values.astype(np.float64)
    finite = np.isfinite(v)
    if not finite.all():
        notes.append("float pixels contain NaN or infinity; set to 0")
        v = np.where(finite, v, 0.0)
    lo, hi = (float(v.min()), float(v.max())) if v.size else (0.0, 0.0)
    if lo >= 0.0 and hi <= 1.0:
        return np.rint(v * 255.0).astype(np.uint8)
    if lo >= 0.0 and hi <= 255.0:
        return np.rint(v).astype(np.uint8)
    notes.append(f"float pixels span {lo:g}..{hi:g}; stretched to 0..255")
    return _stretch(v, lo, hi)


def _stretch(v: np.ndarray, lo: float, hi: float) -> np.ndarray:
    if hi <= lo:
        return np.zeros(v.shape, np.uint8)
    return np.rint((v - lo) * (255.0 / (hi - lo))).clip(0, 255).astype(np.uint8)


def _cmyk_to_rgb(im: Image.Image, icc: bytes | None, notes: list[str]) -> np.ndarray:
    """CMYK -> RGB through the embedded ICC profile when there is one, else Pillow's plain formula."""
    if icc:
        try:
            from PIL import ImageCms

            src = ImageCms.ImageCmsProfile(io.BytesIO(icc))
            dst = ImageCms.createProfile("sRGB")
            out = ImageCms.profileToProfile(im, src, dst, outputMode="RGB")
            if out is not None:
                return np.array(out)
        except Exception as exc:  # noqa: BLE001 - no LittleCMS, or a broken profile
            notes.append(f"CMYK ICC profile not applied ({_detail(exc)}); colours are approximate")
    return np.array(im.convert("RGB"))


def _unidentified_reason(path: Path) -> str:
    try:
        with open(path, "rb") as fh:
            head = fh.read(16)
    except OSError as exc:
        return f"cannot read the file ({_os_reason(exc)})"
    for sig, fmt in _SIGNATURES:
        if head.startswith(sig):
            return f"file is truncated or corrupt (starts like a {fmt} file but cannot be decoded)"
    return "not an image file, or a format Pillow cannot read"


def _detail(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text if len(text) <= 200 else text[:197] + "..."


def _os_reason(exc: OSError) -> str:
    if exc.errno is not None and exc.errno in errno.errorcode:
        return os.strerror(exc.errno).lower()
    return _detail(exc)


# --------------------------------------------------------------------------------------------------
# masks
# --------------------------------------------------------------------------------------------------


def read_mask(path: str | os.PathLike[str], shape: tuple[int, ...] | None = None) -> np.ndarray:
    """Read a mask image as bool (H, W): True where its grey value is above 127.

    A file whose colour is one flat value but whose alpha varies (a painted transparency mask) is
    read from its alpha instead. ``shape`` ((H, W) or (H, W, C)) is the image the mask belongs to;
    a different size raises :class:`MaskError` naming both sizes.
    """
    rgb, info = read_image(path)
    if info.alpha is not None and _is_flat(rgb) and not _is_flat(info.alpha):
        mask = info.alpha > 127
    else:
        r, g, b = (rgb[..., i].astype(np.uint32) for i in range(3))
        grey = (r * 299 + g * 587 + b * 114 + 500) // 1000  # ITU-R 601 luma, as Pillow's "L"
        mask = grey > 127
    if shape is not None:
        h, w = int(shape[0]), int(shape[1])
        if mask.shape != (h, w):
            raise MaskError(
                f"{path}: mask is {mask.shape[1]}x{mask.shape[0]} (WxH) but the image is {w}x{h}; "
                "the mask must have the same size as the image"
            )
    return mask


def _is_flat(a: np.ndarray) -> bool:
    return a.size == 0 or bool((a == a.reshape(-1, *a.shape[2:])[0]).all())


# --------------------------------------------------------------------------------------------------
# writing: every output file of every command goes through write_files (atomic, no-follow, no clobber)
# --------------------------------------------------------------------------------------------------

#: PNG text key a companion output (a mask beside its image) carries: the name of the file it belongs
#: to. A rerun that finds such a companion without its file recognizes it as its own leftover.
PAIR_KEY = "tessera:pair"

_TEMP_RE = re.compile(r"^\.(?P<name>.+)\.[0-9a-f]{8}\.tmp$")

Writer = Callable[[BinaryIO], None]


def write_image(
    path: str | os.PathLike[str],
    rgb: np.ndarray,
    *,
    alpha: np.ndarray | None = None,
    overwrite: bool = False,
    quality: int = 95,
    text: Mapping[str, str] | None = None,
    icc_profile: bytes | None = None,
    exif: bytes | None = None,
) -> Path:
    """Write an image atomically and return its path.

    rgb: uint8 (H, W, 3), or a grey/mask (H, W) as bool (written 0/255) or uint8 (a 0/1 uint8 mask
    is written 0/255 too). alpha: uint8 or bool (H, W), kept for PNG, WebP and TIFF, dropped for
    JPEG and BMP. The format follows the extension (see WRITE_FORMATS). quality (1-100) is used by
    JPEG and WebP (WebP at 100 is lossless). text: PNG tEXt/iTXt chunks (ignored by other formats).
    icc_profile: embedded for PNG, JPEG, WebP and TIFF. exif: raw EXIF bytes to embed (PNG, JPEG,
    WebP, TIFF); without it no EXIF is written (the pixels alone are saved).

    Written by :func:`write_files`: a hidden temporary file in the same folder, moved into place
    with one rename, so a reader never sees half a file and a failure leaves nothing behind; a
    symbolic link at ``path`` is refused, never followed. Missing parent folders are created.
    Raises ImageWriteError for an unsupported extension, an existing output (unless
    overwrite=True), a link or folder at ``path`` and any OS error; ValueError for a malformed array.
    """
    path = Path(path)
    writer = image_writer(path, rgb, alpha=alpha, quality=quality, text=text, icc_profile=icc_profile, exif=exif)
    write_files([(path, writer)], overwrite=overwrite)
    return path


def image_writer(
    path: str | os.PathLike[str],
    rgb: np.ndarray,
    *,
    alpha: np.ndarray | None = None,
    quality: int = 95,
    text: Mapping[str, str] | None = None,
    icc_profile: bytes | None = None,
    exif: bytes | None = None,
) -> Writer:
    """Check and convert an image for ``path`` now; return the function that encodes it into an
    open file (for :func:`write_files`, which writes an image and its companions as a group)."""
    path = Path(path)
    fmt = WRITE_FORMATS.get(path.suffix.lower())
    if fmt is None:
        supported = ", ".join(sorted(WRITE_FORMATS))
        got = f"extension {path.suffix!r}" if path.suffix else "no extension"
        raise ImageWriteError(path, f"cannot choose an image format from {got}; use one of {supported}")
    if not 1 <= int(quality) <= 100:
        raise ValueError(f"quality must be between 1 and 100, got {quality}")
    im = _to_pil(rgb, alpha, keep_alpha=fmt in _ALPHA_FORMATS)
    params = _save_params(fmt, int(quality), text, icc_profile)
    if exif and fmt in _ICC_FORMATS:
        params["exif"] = bytes(exif)

    def write(fh: BinaryIO) -> None:
        try:
            im.save(fh, format=fmt, **params)
        except OSError:
            raise
        except Exception as exc:  # noqa: BLE001 - encoder complaints become one clear reason
            raise _EncodeError(f"encoding as {fmt} failed ({_detail(exc)})") from None

    return write


def write_bytes(path: str | os.PathLike[str], data: bytes, *, overwrite: bool = False) -> Path:
    """Write ``data`` to ``path`` atomically, refusing links and (unless asked) existing files."""
    path = Path(path)
    write_files([(path, lambda fh: fh.write(data))], overwrite=overwrite)
    return path


def write_text(path: str | os.PathLike[str], text: str, *, overwrite: bool = False) -> Path:
    """Write UTF-8 ``text`` to ``path`` like :func:`write_bytes`."""
    return write_bytes(path, text.encode("utf-8"), overwrite=overwrite)


def write_json(path: str | os.PathLike[str], obj: Any, *, overwrite: bool = False, indent: int | None = 1) -> Path:
    """Write ``obj`` as JSON (strict: no NaN or infinity) plus a newline, like :func:`write_bytes`."""
    text = json.dumps(obj, indent=indent, allow_nan=False)
    return write_text(path, text + "\n", overwrite=overwrite)


def write_files(
    items: Sequence[tuple[str | os.PathLike[str], Writer]], *, overwrite: bool | Sequence[bool] = False
) -> list[Path]:
    """Write several files as one group and return their paths.

    Every target is checked first (a symbolic link or a folder at a target is refused, an existing
    file too unless ``overwrite``; ``overwrite`` may be one flag per item), then each writer fills a
    new hidden temporary file (``.NAME.XXXXXXXX.tmp``, created exclusively, never through a link)
    in the target's folder, and only when all are written and synced are they moved into place, in
    the given order (list a mask before its image: a crash never leaves an image naming a missing
    mask). A failure before the moves leaves nothing behind; the temporary files are always removed.
    """
    paths = [Path(p) for p, _ in items]
    flags = [bool(overwrite)] * len(paths) if isinstance(overwrite, bool) else [bool(o) for o in overwrite]
    if len(flags) != len(paths):
        raise ValueError(f"overwrite needs one flag per file ({len(paths)}), got {len(flags)}")
    for path, ow in zip(paths, flags):
        _check_target(path, ow)
    temps: list[Path] = []
    try:
        for path, (_, writer) in zip(paths, items):
            temps.append(_write_temp(path, writer))
        for tmp, path, ow in zip(temps, paths, flags):
            _move_into_place(tmp, path, ow)
    finally:
        for tmp in temps:
            _unlink_quietly(tmp)
    return paths


def _check_target(path: Path, overwrite: bool) -> None:
    if path.is_symlink():
        raise ImageWriteError(path, "is a symbolic link; refusing to write through it (remove it or choose another output)")
    if path.is_dir():
        raise ImageWriteError(path, "is a folder; give a file name for the output")
    if os.path.lexists(path) and not overwrite:
        raise ImageWriteError(path, "exists; use --overwrite to replace it")
    parent = path.parent
    try:
        parent.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError):
        raise ImageWriteError(path, f"cannot create folder {parent}: a file is in the way") from None
    except OSError as exc:
        raise ImageWriteError(path, f"cannot create folder {parent} ({_os_reason(exc)})") from None
    if not parent.is_dir():
        raise ImageWriteError(path, f"cannot write into {parent}: it is not a folder")


class _EncodeError(Exception):
    pass


def _to_pil(rgb: np.ndarray, alpha: np.ndarray | None, *, keep_alpha: bool) -> Image.Image:
    a = np.asarray(rgb)
    if a.ndim == 2 and a.dtype == bool:
        a = a.astype(np.uint8) * 255
    elif a.ndim == 2 and a.dtype == np.uint8:
        if a.size and a.max() <= 1:
            a = a * np.uint8(255)  # a 0/1 uint8 mask, e.g. mask.astype(np.uint8)
    elif not (a.ndim == 3 and a.shape[2] == 3 and a.dtype == np.uint8):
        raise ValueError(
            f"write_image expects RGB uint8 (H, W, 3) or a bool/uint8 (H, W) mask, got {a.dtype} {a.shape}"
        )
    if a.shape[0] < 1 or a.shape[1] < 1:
        raise ValueError(f"cannot write an empty image of shape {a.shape}")
    a = np.ascontiguousarray(a)

    if alpha is None or not keep_alpha:
        if alpha is not None:
            _check_alpha(alpha, a.shape[:2])
        return Image.fromarray(a, "L" if a.ndim == 2 else "RGB")
    al = _check_alpha(alpha, a.shape[:2])
    colour = _grey_to_rgb(a) if a.ndim == 2 else a
    return Image.fromarray(np.ascontiguousarray(np.dstack([colour, al])), "RGBA")


def _check_alpha(alpha: np.ndarray, hw: tuple[int, ...]) -> np.ndarray:
    al = np.asarray(alpha)
    if al.dtype == bool:
        al = al.astype(np.uint8) * 255
    if al.dtype != np.uint8 or al.shape != tuple(hw):
        raise ValueError(f"alpha must be uint8 or bool with shape {tuple(hw)}, got {al.dtype} {al.shape}")
    return al


def _save_params(fmt: str, quality: int, text: Mapping[str, str] | None, icc: bytes | None) -> dict:
    params: dict = {}
    if fmt == "JPEG":
        params["quality"] = quality
    elif fmt == "WEBP":
        params["quality"] = quality
        params["lossless"] = quality == 100
        params["method"] = 4
    elif fmt == "PNG" and text:
        info = PngImagePlugin.PngInfo()
        for key, value in text.items():
            if not isinstance(key, str) or not 1 <= len(key) <= 79 or not _latin1(key):
                raise ValueError(f"PNG text keys must be 1-79 Latin-1 characters, got {key!r}")
            info.add_text(key, str(value))  # falls back to an iTXt chunk for non-Latin-1 values
        params["pnginfo"] = info
    if icc and fmt in _ICC_FORMATS:
        params["icc_profile"] = bytes(icc)
    return params


def _latin1(s: str) -> bool:
    try:
        s.encode("latin-1")
    except UnicodeEncodeError:
        return False
    return True


def _write_temp(path: Path, writer: Writer) -> Path:
    """Fill a new hidden file beside ``path`` (created exclusively, never through a link, with the
    usual umask-derived mode), synced to disk."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_BINARY", 0)
    for _ in range(100):
        tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
        try:
            fd = os.open(tmp, flags, 0o666)
            break
        except FileExistsError:
            continue
        except OSError as exc:
            raise ImageWriteError(path, f"cannot write into folder {path.parent} ({_os_reason(exc)})") from None
    else:  # pragma: no cover - 100 random-name collisions
        raise ImageWriteError(path, f"cannot create a temporary file in {path.parent}")
    try:
        with os.fdopen(fd, "wb") as fh:
            writer(fh)
            fh.flush()
            os.fsync(fh.fileno())
    except BaseException as exc:
        _unlink_quietly(tmp)
        if isinstance(exc, _EncodeError):
            raise ImageWriteError(path, str(exc)) from None
        if isinstance(exc, OSError):
            raise ImageWriteError(path, f"writing failed ({_os_reason(exc)})") from None
        if isinstance(exc, Exception):
            raise ImageWriteError(path, f"writing failed ({_detail(exc)})") from None
        raise
    return tmp


def _move_into_place(tmp: Path, path: Path, overwrite: bool) -> None:
    try:
        if overwrite:
            os.replace(tmp, path)  # replaces a link itself, never what it points to
            return
        try:
            os.link(tmp, path, follow_symlinks=False)  # fails if anything (even a dangling link) is at `path`
        except FileExistsError:
            raise ImageWriteError(path, "exists; use --overwrite to replace it") from None
        except (OSError, NotImplementedError):  # no hard links here (FAT, some shares): check, then rename
            if os.path.lexists(path):
                raise ImageWriteError(path, "exists; use --overwrite to replace it") from None
            os.replace(tmp, path)
    except ImageWriteError:
        raise
    except OSError as exc:
        raise ImageWriteError(path, f"cannot move the finished file into place ({_os_reason(exc)})") from None


def _unlink_quietly(p: Path) -> None:
    try:
        os.unlink(p)
    except OSError:
        pass


def open_append(path: str | os.PathLike[str]):
    """Open a log file for appending text (created if missing), never through a symbolic link."""
    path = Path(path)
    flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0)
    try:
        fd = os.open(path, flags, 0o666)
    except OSError as exc:
        reason = "is a symbolic link; refusing to write through it" if path.is_symlink() else f"cannot open for appending ({_os_reason(exc)})"
        raise ImageWriteError(path, reason) from None
    return os.fdopen(fd, "a", encoding="utf-8")


def temp_files_for(path: str | os.PathLike[str]) -> list[Path]:
    """The hidden temporary files a writer interrupted by a crash left for ``path``."""
    path = Path(path)
    try:
        names = os.listdir(path.parent)
    except OSError:
        return []
    found = []
    for name in names:
        m = _TEMP_RE.match(name)
        if m and m.group("name") == path.name:
            found.append(path.parent / name)
    return sorted(found)


def remove_temp_files(path: str | os.PathLike[str]) -> int:
    """Remove what :func:`temp_files_for` finds (regular files only); return how many."""
    n = 0
    for tmp in temp_files_for(path):
        if tmp.is_file() and not tmp.is_symlink():
            _unlink_quietly(tmp)
            n += 1
    return n


def companion_of(path: str | os.PathLike[str]) -> str | None:
    """The file name a companion output (a PNG with :data:`PAIR_KEY` text) says it belongs to, else None."""
    path = Path(path)
    if path.is_symlink() or not path.is_file():
        return None
    try:
        with Image.open(path) as im:
            value = getattr(im, "text", {}).get(PAIR_KEY)
    except Exception:  # noqa: BLE001 - not ours, whatever it is
        return None
    return value if isinstance(value, str) else None


# --------------------------------------------------------------------------------------------------
# inputs for the CLI
# --------------------------------------------------------------------------------------------------


def collect_inputs(paths: Iterable[str | os.PathLike[str]]) -> list[tuple[Path, Path]]:
    """Expand files and folders into ``(source, relative_path)`` pairs, in a stable order.

    A named file is taken whatever its extension, with relative_path = its name. A folder is walked
    recursively in sorted order, keeping files whose extension is in IMAGE_EXTS and skipping hidden
    files and folders (names starting with "."); relative_path is the path inside that folder, so an
    output folder can mirror the input tree. The same file named twice is kept once.

    Raises FileNotFoundError for a missing path and ValueError when two different files would get
    the same relative_path (e.g. ``a/x.png`` and ``b/x.png`` from two folders).
    """
    out: list[tuple[Path, Path]] = []
    seen_sources: set[Path] = set()
    by_rel: dict[Path, Path] = {}
    for raw in paths:
        p = Path(raw)
        if p.is_dir():
            found = [(f, f.relative_to(p)) for f in _walk_images(p)]
        elif p.exists():
            found = [(p, Path(p.name))]
        else:
            raise FileNotFoundError(f"{p}: no such file or folder")
        for src, rel in found:
            key = src.resolve()
            if key in seen_sources:
                continue
            if rel in by_rel:
                raise ValueError(
                    f"{by_rel[rel]} and {src} would both be written as {rel}; "
                    "process them separately or rename one"
                )
            seen_sources.add(key)
            by_rel[rel] = src
            out.append((src, rel))
    return out


def _walk_images(root: Path) -> list[Path]:
    files: list[Path] = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for name in sorted(filenames):
            if name.startswith("."):
                continue
            if os.path.splitext(name)[1].lower() in IMAGE_EXTS:
                f = Path(dirpath) / name
                if f.is_file():
                    files.append(f)
    return sorted(files, key=lambda f: f.relative_to(root).parts)


def same_file(a: str | os.PathLike[str], b: str | os.PathLike[str]) -> bool:
    """True when ``a`` and ``b`` name the same file (through links, ``..`` or case-insensitive names).

    Paths that do not exist yet are compared by their resolved absolute form.
    """
    pa, pb = Path(a), Path(b)
    try:
        if pa.exists() and pb.exists():
            return os.path.samefile(pa, pb)
    except OSError:
        pass
    return os.path.normcase(str(pa.resolve())) == os.path.normcase(str(pb.resolve()))
