"""Does a face still show the same person? dlib's face-recognition ResNet (a 128-d descriptor;
two faces of one person lie within 0.6 of each other: 99.38 % on LFW by dlib's account).

The network and its 5-point landmark model ship in the ``face-recognition-models`` package (CC0);
they are loaded here by path with ``dlib`` (``dlib-bin`` wheels), since that package's own
``pkg_resources`` import fails beside current setuptools. Used by ``tessera anonymize --check``
and benchmarks/anonymize.py to ask whether our restorer's attack on a redaction re-identifies the
person. Landmarks come from the *original* face (the attacker is told where the face is), so the
measure is not weakened by a redaction that spoils the alignment.
"""

from __future__ import annotations

import importlib.util
from functools import lru_cache
from pathlib import Path

import numpy as np

__all__ = ["MATCH_DISTANCE", "available", "descriptor", "face_distance", "same_person"]

MATCH_DISTANCE = 0.6  # dlib's threshold for "same person"


def _models_dir() -> Path:
    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None or not spec.submodule_search_locations:
        raise ModuleNotFoundError("the 'face-recognition-models' package is not installed: pip install 'tessera[anonymize]'")
    return Path(next(iter(spec.submodule_search_locations))) / "models"


@lru_cache(maxsize=1)
def _nets():
    import dlib

    d = _models_dir()
    return (
        dlib.shape_predictor(str(d / "shape_predictor_5_face_landmarks.dat")),
        dlib.face_recognition_model_v1(str(d / "dlib_face_recognition_resnet_model_v1.dat")),
    )


def available() -> bool:
    """True when dlib and the model files are installed."""
    try:
        _nets()
        return True
    except (ImportError, FileNotFoundError, RuntimeError):
        return False


def _shape(image: np.ndarray, box: tuple[int, int, int, int]):
    import dlib

    x, y, w, h = (int(v) for v in box)
    sp, _ = _nets()
    return sp(np.ascontiguousarray(image), dlib.rectangle(x, y, x + w - 1, y + h - 1))


def descriptor(image: np.ndarray, box: tuple[int, int, int, int], *, landmarks_from: np.ndarray | None = None) -> np.ndarray:
    """The 128-d face descriptor of the face in ``box`` (x, y, w, h) of an RGB uint8 image; the
    landmarks are found in ``landmarks_from`` (same size) when given, else in ``image``."""
    _, rec = _nets()
    shape = _shape(landmarks_from if landmarks_from is not None else image, box)
    return np.asarray(rec.compute_face_descriptor(np.ascontiguousarray(image), shape), np.float64)


def face_distance(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.linalg.norm(a - b))


def same_person(original: np.ndarray, other: np.ndarray, box: tuple[int, int, int, int]) -> bool | None:
    """Whether the face in ``box`` of ``other`` matches the one in ``original`` (dlib distance <
    0.6, landmarks from the original), or None when dlib or its models are not installed."""
    if not available():
        return None
    d0 = descriptor(original, box)
    d1 = descriptor(other, box, landmarks_from=original)
    return face_distance(d0, d1) < MATCH_DISTANCE
