"""Shipped weights, and the one way every network is saved and loaded.

The ``*.safetensors`` files in this folder are package data: a wheel or a non-editable install
carries them, so an installed Tessera restores exactly as the checkout does. Each has a card
(``NAME.md``: data, steps, hardware, scores).

One resolve rule for a name: ``$TESSERA_WEIGHTS/FILE`` when that variable names a folder holding
the file, else the file installed with the package. A shipped name whose file is missing raises
:class:`WeightsError` naming the file; nothing falls back silently.

One file format for every network (restorers, detector, DCGAN): safetensors whose metadata holds
``tessera_model`` (a name in :data:`tessera.models.MODELS`) and ``tessera_kwargs`` (the constructor
kwargs as JSON), so :func:`load` needs nothing else. Kwargs read from a file are validated (known
keys, sane values, a parameter-count cap) before anything is allocated. Nothing is ever unpickled.
"""

from __future__ import annotations

import inspect
import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

__all__ = [
    "SHIPPED", "WeightsError", "weights_dir", "shipped_path", "resolve", "save", "read", "read_header", "model_name", "load", "validate_kwargs",
]

# The one table of shipped weights: name -> file in this package.
SHIPPED: dict[str, str] = {
    "scenes": "restore-scenes.safetensors",
    "faces": "restore-faces.safetensors",
    "faces-gan": "restore-faces-gan.safetensors",
    "scenes-gan": "restore-scenes-gan.safetensors",
    "pix2pix": "restore-pix2pix.safetensors",
    "dcgan": "dcgan-faces64.safetensors",
    "detector": "detector.safetensors",
    "facecam": "facecam.safetensors",
}

MODEL_KEY = "tessera_model"
KWARGS_KEY = "tessera_kwargs"
#: the names of tessera.models.MODELS, here so that reading a name needs no torch (a test keeps them equal)
MODEL_NAMES = ("unet", "pix2pix", "deepfill", "dcgan", "segnet", "facecam")
MAX_PARAMS = 64_000_000  # 256 MB of float32: far above any shipped model (<= 30 MB), far below a bomb
MAX_INT_KWARG = 4096  # channels, depths, sizes: no sane model asks for more
PACKAGE_DIR = Path(__file__).resolve().parent


class WeightsError(ValueError):
    """A weight file that is missing, unreadable, not a Tessera model, or does not match its model."""


def weights_dir() -> Path:
    """The folder searched first for shipped names: ``$TESSERA_WEIGHTS`` when set, else the package's."""
    env = os.environ.get("TESSERA_WEIGHTS")
    return Path(env) if env else PACKAGE_DIR


def shipped_path(name: str) -> Path:
    """The file of a shipped name (see :data:`SHIPPED`), by the resolve rule; raises when missing."""
    if name not in SHIPPED:
        raise WeightsError(f"no shipped weights named {name!r}; shipped: {', '.join(SHIPPED)}")
    candidates = [weights_dir() / SHIPPED[name], PACKAGE_DIR / SHIPPED[name]]
    for path in candidates:
        if path.is_file():
            return path
    raise WeightsError(
        f"the shipped weights {SHIPPED[name]!r} for {name!r} are missing (looked in "
        + " and ".join(dict.fromkeys(str(p.parent) for p in candidates))
        + "); reinstall Tessera or set TESSERA_WEIGHTS to a folder holding the file"
    )


def resolve(name_or_path: str | os.PathLike) -> Path:
    """A shipped name (``scenes``, ``detector``, ...) or a path to a .safetensors file -> its path."""
    text = str(name_or_path)
    if text in SHIPPED:
        return shipped_path(text)
    path = Path(text)
    if path.is_file():
        return path
    raise WeightsError(f"no weight file {text!r}: give a path to a .safetensors file or one of: {', '.join(SHIPPED)}")


def _jsonable(kwargs: Mapping[str, Any]) -> dict[str, Any]:
    return {k: list(v) if isinstance(v, tuple) else v for k, v in kwargs.items()}


def save(
    model, path: str | os.PathLike, name: str, kwargs: Mapping[str, Any], metadata: Mapping[str, Any] | None = None,
    *, overwrite: bool = True,
) -> Path:
    """Write ``model``'s weights (float tensors as stored) with its name and kwargs in the metadata,
    plus ``metadata`` (values JSON-encoded unless strings), through :func:`tessera.io.image.write_files`
    (a temporary file renamed into place; a link at ``path`` is refused; an existing file is
    replaced only with ``overwrite``)."""
    from safetensors.torch import save as to_bytes

    from tessera.io.image import write_bytes

    from tessera.models import MODELS

    if name not in MODELS:
        raise WeightsError(f"unknown model {name!r}; choose one of {sorted(MODELS)}")
    validate_kwargs(name, kwargs)
    path = Path(path)
    meta = {k: v if isinstance(v, str) else json.dumps(v) for k, v in (metadata or {}).items()}
    meta[MODEL_KEY] = name
    meta[KWARGS_KEY] = json.dumps(_jsonable(kwargs), sort_keys=True)
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    return write_bytes(path, to_bytes(state, metadata=meta), overwrite=overwrite)


def _check_value(name: str, key: str, value: Any) -> None:
    values = value if isinstance(value, (list, tuple)) else [value]
    if len(values) > 64:
        raise WeightsError(f"model {name!r}: kwarg {key!r} has {len(values)} entries (at most 64)")
    for v in values:
        if isinstance(v, bool) or v is None or isinstance(v, str):
            continue
        if isinstance(v, int):
            if not 0 <= v <= MAX_INT_KWARG:
                raise WeightsError(f"model {name!r}: kwarg {key}={v} is outside 0..{MAX_INT_KWARG}")
        elif isinstance(v, float):
            if not (v == v and abs(v) <= 1e6):
                raise WeightsError(f"model {name!r}: kwarg {key}={v} is not a sane number")
        else:
            raise WeightsError(f"model {name!r}: kwarg {key} has a value of type {type(v).__name__}")


def validate_kwargs(name: str, kwargs: Mapping[str, Any]) -> dict[str, Any]:
    """Check a model's kwargs before building it: known keys, sane values, and at most
    :data:`MAX_PARAMS` parameters (counted on the meta device, so nothing is allocated).
    Returns the kwargs with lists turned back into tuples."""
    import torch

    from tessera.models import MODELS

    if name not in MODELS:
        raise WeightsError(f"unknown model {name!r}; choose one of {sorted(MODELS)}")
    if not isinstance(kwargs, Mapping):
        raise WeightsError(f"model {name!r}: kwargs must be a JSON object, got {type(kwargs).__name__}")
    params: dict[str, inspect.Parameter] = {}
    for cls in MODELS[name].__mro__:  # a subclass taking **kwargs passes them to its parent
        if "__init__" in vars(cls):
            params.update({k: p for k, p in inspect.signature(cls.__init__).parameters.items() if p.kind == p.KEYWORD_ONLY or p.kind == p.POSITIONAL_OR_KEYWORD})
        if not any(p.kind == p.VAR_KEYWORD for p in inspect.signature(cls.__init__).parameters.values()):
            break
    params.pop("self", None)
    unknown = sorted(set(kwargs) - set(params))
    if unknown:
        raise WeightsError(f"model {name!r} has no kwargs {', '.join(unknown)} (known: {', '.join(params)})")
    for key, value in kwargs.items():
        _check_value(name, key, value)
    clean = {k: tuple(v) if isinstance(v, list) else v for k, v in kwargs.items()}
    try:
        with torch.device("meta"):
            n = sum(p.numel() for p in MODELS[name](**clean).parameters())
    except (TypeError, ValueError, RuntimeError) as exc:
        raise WeightsError(f"model {name!r} cannot be built with {dict(kwargs)}: {exc}") from None
    if n > MAX_PARAMS:
        raise WeightsError(f"model {name!r} with {dict(kwargs)} would have {n:,} parameters (at most {MAX_PARAMS:,})")
    return clean


def model_name(path: str | os.PathLike) -> str:
    """The Tessera model name a weight file's metadata names, read from the safetensors JSON header
    alone: no tensors, no torch (the ONNX Runtime path stays free of it). Raises WeightsError for a
    file that is no safetensors file or names no Tessera model; its kwargs are checked when a
    network is built from it (:func:`read_header`, :func:`load`)."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(8)
            size = int.from_bytes(head, "little") if len(head) == 8 else -1
            if not 2 <= size <= 100_000_000:
                raise ValueError("no safetensors header")
            header = json.loads(fh.read(size))
        meta = header.get("__metadata__") or {}
        if not isinstance(meta, dict):
            raise ValueError("its metadata is not a table")
    except (OSError, ValueError, AttributeError) as exc:
        raise WeightsError(f"{path} is not a readable safetensors file: {exc}") from None
    name = meta.get(MODEL_KEY)
    if name not in MODEL_NAMES:
        raise WeightsError(f"{path} has no Tessera model name in its metadata (found {name!r}); export it with `tessera export`")
    return name


def read_header(path: str | os.PathLike) -> tuple[str, dict[str, Any]]:
    """A weight file's model name and validated kwargs, from its metadata only (no tensors read)."""
    name, kwargs, _ = _header(Path(path))
    return name, kwargs


def _header(path: Path) -> tuple[str, dict[str, Any], dict[str, str]]:
    from safetensors import SafetensorError
    from safetensors.torch import safe_open

    from tessera.models import MODELS

    try:
        with safe_open(str(path), framework="pt") as fh:
            meta = fh.metadata() or {}
    except (SafetensorError, OSError, ValueError) as exc:
        raise WeightsError(f"{path} is not a readable safetensors file: {exc}") from None
    name = meta.get(MODEL_KEY)
    if name not in MODELS:
        raise WeightsError(f"{path} has no Tessera model name in its metadata (found {name!r}); export it with `tessera export`")
    try:
        kwargs = json.loads(meta.get(KWARGS_KEY, "{}"))
    except ValueError as exc:
        raise WeightsError(f"{path}: the model kwargs in its metadata are not JSON ({exc})") from None
    try:
        kwargs = validate_kwargs(name, kwargs)
    except WeightsError as exc:
        raise WeightsError(f"{path}: {exc}") from None
    return name, kwargs, {k: v for k, v in meta.items() if k not in (MODEL_KEY, KWARGS_KEY)}


def read(path: str | os.PathLike, device: str = "cpu") -> tuple[str, dict[str, Any], dict, dict[str, str]]:
    """A weight file -> (model name, validated kwargs, state dict, other metadata)."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    path = Path(path)
    name, kwargs, other = _header(path)
    try:
        state = load_file(str(path), device=device)
    except (SafetensorError, OSError, ValueError) as exc:
        raise WeightsError(f"{path} is not a readable safetensors file: {exc}") from None
    return name, kwargs, state, other


def load(name_or_path: str | os.PathLike, *, device: str = "cpu", expect: str | tuple[str, ...] | None = None):
    """Build and load the network in a weight file (a path or a shipped name), in eval mode, with
    ``.name``, ``.kwargs`` and ``.metadata`` set. ``expect``: the model name(s) the caller accepts."""
    from tessera.models import build_model

    path = resolve(name_or_path)
    name, kwargs, state, other = read(path, device=device)
    if expect is not None and name not in ((expect,) if isinstance(expect, str) else expect):
        raise WeightsError(f"{path} holds a {name!r} model, not {expect if isinstance(expect, str) else ' or '.join(expect)}")
    model = build_model(name, **kwargs)
    own = model.state_dict()
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    bad_shape = [k for k in own if k in state and tuple(state[k].shape) != tuple(own[k].shape)]
    if missing or unexpected or bad_shape:
        raise WeightsError(
            f"{path} does not match model {name} {kwargs}: missing {missing[:3]}, unexpected {unexpected[:3]}, "
            f"wrong shape {bad_shape[:3]}"
        )
    model.load_state_dict(state)
    model.metadata = other
    return model.to(device).eval()
