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

__all__ = ["MATCH_DISTANCE", "available", "why_unavailable", "descriptor", "face_distance", "match", "same_person", "false_match_rate"]

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


def why_unavailable() -> str | None:
    """None when dlib and its model files load, else a one-line reason with the fix."""
    try:
        _nets()
    except ImportError as exc:
        name = getattr(exc, "name", None) or str(exc)
        return f"{name} is not installed (pip install 'tessera[anonymize]': the dlib-bin wheel and face-recognition-models)"
    except (FileNotFoundError, RuntimeError) as exc:
        return f"dlib's face-recognition models could not be loaded ({' '.join(str(exc).split())[:200]}); reinstall face-recognition-models"
    return None


def available() -> bool:
    """True when dlib and the model files are installed."""
    return why_unavailable() is None


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


def match(original: np.ndarray, other: np.ndarray, box: tuple[int, int, int, int]) -> float | None:
    """dlib's distance between the face in ``box`` of ``original`` and the same box of ``other``
    (landmarks from the original; < :data:`MATCH_DISTANCE` = the same person), or None when dlib or
    its models are not installed."""
    if not available():
        return None
    return face_distance(descriptor(original, box), descriptor(other, box, landmarks_from=original))


def same_person(original: np.ndarray, other: np.ndarray, box: tuple[int, int, int, int]) -> bool | None:
    """Whether the face in ``box`` of ``other`` matches the one in ``original`` (:func:`match` <
    0.6), or None when dlib or its models are not installed."""
    d = match(original, other, box)
    return None if d is None else d < MATCH_DISTANCE


def false_match_rate(faces: list[tuple[np.ndarray, tuple[int, int, int, int]]]) -> float | None:
    """The fraction of pairs of *different* faces ((image, box) each, assumed to be different
    people) that dlib calls the same person: the chance level a re-identification rate is read
    against. None when dlib is not installed or there are fewer than two faces."""
    if not available() or len(faces) < 2:
        return None
    d = [descriptor(im, box) for im, box in faces]
    pairs = [face_distance(d[i], d[j]) < MATCH_DISTANCE for i in range(len(d)) for j in range(i + 1, len(d))]
    return float(np.mean(pairs))
