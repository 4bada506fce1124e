"""Runners for Tessera's feed-forward networks (restorers, the detector's segnet): float32
(N, C, H, W) -> (N, C', H, W) with eager PyTorch or with ONNX Runtime.

``load_runner(weights, backend="auto")`` picks ONNX Runtime when it is installed
(``pip install tessera[onnx]``) and PyTorch otherwise. ONNX files are never downloaded: they are
exported from our own safetensors weights (:func:`export_onnx`, ``tessera export --onnx``) into a
user cache folder (:func:`cache_dir`), named by the SHA-256 of the weight file, so new weights
never meet a stale graph. Once a file is cached, the ONNX path does not import torch at all
(importing torch alone takes 1.5-3.5 s on a 2-core CPU; start-up counts for a command-line tool).

H and W given to a runner must be multiples of ``runner.info["size_multiple"]``; pad first
(:func:`pad_to_multiple`). ``runner.info`` also holds the model's ``name``, ``kwargs``, ``prefill``,
``in_channels`` and ``out_channels``, read from the weights (torch) or from the ONNX file's
metadata (no torch).
"""

from __future__ import annotations

import hashlib
import json
import os
import warnings
from collections.abc import Callable
from functools import lru_cache
from importlib.util import find_spec
from pathlib import Path
from typing import Any, Literal, Protocol

import numpy as np

__all__ = [
    "BACKENDS", "Backend", "Runner", "TorchRunner", "OnnxRunner", "load_runner", "export_onnx", "onnx_available",
    "cache_dir", "onnx_cache_path", "default_threads", "pad_to_multiple", "run_flips", "run_tiled", "BackendError",
    "QUALITY_FLIPS",
]

Backend = Literal["auto", "torch", "onnx"]
BACKENDS = ("auto", "torch", "onnx")
# Bumped whenever the exported graph changes for the same weights (part of every cached file's name).
ONNX_FORMAT = 1
OPSET = 17
META_KEY = "tessera"
PARITY_TOL = 1e-3  # max |onnx - torch| an export must meet on its check inputs


class BackendError(RuntimeError):
    """A backend that cannot run: ONNX Runtime missing, an export that failed or disagreed with torch."""


class Runner(Protocol):
    backend: str
    info: dict[str, Any]

    def __call__(self, x: np.ndarray) -> np.ndarray: ...


def onnx_available() -> bool:
    """Whether ONNX Runtime is installed (checked without importing it)."""
    return find_spec("onnxruntime") is not None


def default_threads() -> int:
    """Threads for one inference: ``$TESSERA_THREADS`` when set, else the CPUs this process may
    run on (its affinity, not the machine's count), at most 16."""
    env = os.environ.get("TESSERA_THREADS", "").strip()
    if env:
        try:
            n = int(env)
        except ValueError:
            raise BackendError(f"TESSERA_THREADS must be a positive integer, got {env!r}") from None
        if n < 1:
            raise BackendError(f"TESSERA_THREADS must be a positive integer, got {env!r}")
        return n
    try:
        n = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        n = os.cpu_count() or 1
    return max(1, min(n, 16))


def cache_dir() -> Path:
    """Where exported ONNX files live: ``$TESSERA_CACHE/onnx``, else ``$XDG_CACHE_HOME/tessera/onnx``,
    else ``~/.cache/tessera/onnx``."""
    env = os.environ.get("TESSERA_CACHE")
    if env:
        return Path(env) / "onnx"
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg) if xdg else Path.home() / ".cache"
    return base / "tessera" / "onnx"


@lru_cache(maxsize=32)
def _digest(path: str, size: int, mtime_ns: int) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def weights_digest(path: str | os.PathLike) -> str:
    """SHA-256 of a weight file (computed once per process per (path, size, mtime))."""
    st = os.stat(path)
    return _digest(str(Path(path).resolve()), st.st_size, st.st_mtime_ns)


def onnx_cache_path(weights: str | os.PathLike) -> Path:
    """The cached ONNX file for a weight file (a path or a shipped name): named by its hash."""
    from tessera.weights import resolve

    path = resolve(weights)
    return cache_dir() / f"{path.stem}-{weights_digest(path)[:24]}-f{ONNX_FORMAT}.onnx"


# ----------------------------------------------------------------------------- array helpers


def pad_to_multiple(x: np.ndarray, multiple: int, mode: str = "reflect") -> tuple[np.ndarray, int, int]:
    """Pad (N, C, H, W) at the bottom and right to multiples of ``multiple``; returns (x, H, W) with
    the original size. ``mode``: 'reflect' (falls back to 'edge' when the image is too small to
    reflect) or 'edge'."""
    h, w = x.shape[-2:]
    ph, pw = (-h) % multiple, (-w) % multiple
    if ph or pw:
        if mode == "reflect" and not (ph < h and pw < w):
            mode = "edge"
        x = np.pad(x, ((0, 0), (0, 0), (0, ph), (0, pw)), mode=mode)
    return x, h, w


FLIPS = ((), (3,), (2,), (2, 3))  # identity, mirror, upside down, both (axes of (N, C, H, W))


def run_flips(runner: Callable[[np.ndarray], np.ndarray], x: np.ndarray, flips: int, max_batch: int = 0) -> np.ndarray:
    """The mean over ``flips`` (1, 2 or 4) flipped copies of every image of ``x`` (N, C, H, W), each
    output flipped back: one runner call per at most ``max_batch`` images (0 = all at once)."""
    if flips not in (1, 2, 4):
        raise ValueError(f"flips must be 1, 2 or 4, got {flips}")
    n = x.shape[0]
    batch = np.concatenate([np.flip(x, d) if d else x for d in FLIPS[:flips]]) if flips > 1 else x
    batch = np.ascontiguousarray(batch, dtype=np.float32)
    step = max_batch if max_batch > 0 else len(batch)
    y = np.concatenate([runner(batch[i : i + step]) for i in range(0, len(batch), step)])
    out = y[:n].copy()
    for k, d in enumerate(FLIPS[1:flips], start=1):
        out += np.flip(y[k * n : (k + 1) * n], d)
    if flips > 1:
        out /= flips
    return out


#: the flip ensemble as a quality preset: flipped copies averaged per model pass (see run_flips)
QUALITY_FLIPS = {"fast": 1, "balanced": 2, "best": 4}
#: most pixels (batch x height x width) given to one runner call: bounds the activations' memory
MAX_PIXELS = 2_300_000


def tile_starts(n: int, tile: int, overlap: int) -> list[int]:
    """Starts of tiles of ``tile`` px covering ``n`` px, overlapping by at least 2 * ``overlap``."""
    if n <= tile:
        return [0]
    step = tile - 2 * overlap
    starts = list(range(0, n - tile + 1, step))
    return starts + ([n - tile] if starts[-1] != n - tile else [])


def tile_size(n: int, tile: int, overlap: int, multiple: int = 1) -> int:
    """The tile length along an axis of ``n`` px: ``n`` when it fits in ``tile``, else the smallest
    length (a multiple of ``multiple``, at most ``tile``) that covers ``n`` with as few tiles as
    ``tile`` would need, so the tiles do not overshoot (a 1280-px crop takes two 672-px tiles,
    not two 1024-px ones: 2.3x less work and smaller buffers)."""
    if n <= tile or tile <= 2 * overlap:
        return min(n, tile)
    k = -(-(n - 2 * overlap) // (tile - 2 * overlap))  # tiles needed along the axis
    size = -(-(n + (k - 1) * 2 * overlap) // k)
    size += (-size) % max(1, multiple)
    return min(size, tile)


def run_tiled(
    runner: Runner,
    x: np.ndarray,
    mask: np.ndarray | None = None,
    *,
    flips: int = 4,
    tile: int = 1024,
    overlap: int = 32,
    pad_mode: str = "reflect",
    max_pixels: int = MAX_PIXELS,
) -> np.ndarray:
    """``runner`` over a large float32 image ``x`` (C, H, W) -> (C', H, W): overlapping tiles of at
    most ``tile`` px, sized by :func:`tile_size` (only those touching ``mask``; all when None), each padded to the runner's size
    multiple and averaged over ``flips`` flipped copies. Tiles share one shape, so they go through
    the runner in batches of at most ``max_pixels`` pixels; outputs are blended by linear ramps
    over the overlap. Pixels no tile covers are 0 (outside the mask only)."""
    from tessera.restore.blend import tile_weight

    C, H, W = x.shape
    m = int(runner.info.get("size_multiple", 1)) or 1
    th, tw = tile_size(H, tile, overlap, m), tile_size(W, tile, overlap, m)
    boxes = [
        (y0, x0) for y0 in tile_starts(H, th, overlap) for x0 in tile_starts(W, tw, overlap)
        if mask is None or mask[y0 : y0 + th, x0 : x0 + tw].any()
    ]
    ph, pw = th + (-th) % m, tw + (-tw) % m
    per_call = max(1, max_pixels // (ph * pw))
    group = max(1, per_call // flips)  # whole tiles (all their flips) per call when they fit
    single = (th, tw) == (H, W)  # one tile is the whole image
    acc = None
    wsum = None if single else np.zeros((H, W), np.float32)
    wgt = None if single else tile_weight(th, tw, overlap)
    for i in range(0, len(boxes), group):
        part = boxes[i : i + group]
        batch = np.stack([x[:, y0 : y0 + th, x0 : x0 + tw] for y0, x0 in part])
        batch, _, _ = pad_to_multiple(batch, m, pad_mode)
        y = run_flips(runner, batch, flips, max_batch=per_call)[:, :, :th, :tw]
        if single:
            return np.ascontiguousarray(y[0])
        if acc is None:
            acc = np.zeros((y.shape[1], H, W), np.float32)
        for (y0, x0), out in zip(part, y):
            acc[:, y0 : y0 + th, x0 : x0 + tw] += out * wgt
            wsum[y0 : y0 + th, x0 : x0 + tw] += wgt
    if acc is None:  # no tile touches the mask
        return np.zeros((int(runner.info.get("out_channels", C)), H, W), np.float32)
    acc /= np.maximum(wsum, 1e-6)
    return acc


# ----------------------------------------------------------------------------- runners


def _net_info(net) -> dict[str, Any]:
    kwargs = dict(getattr(net, "kwargs", {}) or {})
    # the segnet pads inside its forward (any H, W); restorers need multiples of size_multiple
    multiple = getattr(net, "size_multiple", None) or 1
    info = {
        "name": getattr(net, "name", type(net).__name__),
        "kwargs": {k: list(v) if isinstance(v, tuple) else v for k, v in kwargs.items()},
        "size_multiple": int(multiple),
        "prefill": getattr(net, "prefill", "none"),
        "in_channels": int(getattr(net, "in_channels", 3 if getattr(net, "name", "") == "segnet" else 4)),
        "out_channels": int(getattr(net, "out_channels", 1 if getattr(net, "name", "") == "segnet" else 3)),
    }
    return info


class TorchRunner:
    """Eager PyTorch under ``inference_mode``. ``threads``: torch's intra-op threads (a process-wide
    setting, applied only when given; torch's own default is the physical cores)."""

    backend = "torch"

    def __init__(self, net, threads: int | None = None, device: str = "cpu") -> None:
        import torch

        self.torch = torch
        if threads:
            torch.set_num_threads(int(threads))
        self.device = torch.device(device)
        self.net = net.eval().to(self.device)
        self.info = _net_info(net)

    def __call__(self, x: np.ndarray) -> np.ndarray:
        torch = self.torch
        with torch.inference_mode():
            t = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32)).to(self.device)
            return self.net(t).float().cpu().numpy()


class OnnxRunner:
    """ONNX Runtime session on the CPU (or CUDA when ``device='cuda'`` and the GPU build is
    installed): all graph optimizations, ``threads`` intra-op threads, one inter-op thread, no
    spinning threads (the CPU is shared; spinning only burns other jobs' time)."""

    backend = "onnx"

    def __init__(self, path: str | os.PathLike, threads: int | None = None, device: str = "cpu") -> None:
        import onnxruntime as ort

        so = ort.SessionOptions()
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        so.intra_op_num_threads = int(threads or default_threads())
        so.inter_op_num_threads = 1
        so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        so.add_session_config_entry("session.intra_op.allow_spinning", "0")
        so.log_severity_level = 3
        # no memory patterns: ORT plans one for each input shape it meets and keeps its block in the
        # arena, so the bands of a tall photo (and tiles of changing sizes) each added a block: peak
        # of detect on a 24 MP photo 1317 -> 870 MB, outputs identical, no slower (RESULTS.md, reliability)
        so.enable_mem_pattern = False
        providers = ["CPUExecutionProvider"]
        if device == "cuda":
            if "CUDAExecutionProvider" not in ort.get_available_providers():
                raise BackendError("device 'cuda' needs onnxruntime-gpu (CUDAExecutionProvider is not available)")
            providers.insert(0, "CUDAExecutionProvider")
        self.path = Path(path)
        self.session = ort.InferenceSession(str(path), so, providers=providers)
        self.input = self.session.get_inputs()[0].name
        meta = self.session.get_modelmeta().custom_metadata_map
        if META_KEY not in meta:
            raise BackendError(f"{path} is not an ONNX file exported by Tessera (no {META_KEY!r} metadata)")
        self.info = json.loads(meta[META_KEY])

    def __call__(self, x: np.ndarray) -> np.ndarray:
        options, self._release = self._release, None
        return self.session.run(None, {self.input: np.ascontiguousarray(x, dtype=np.float32)}, options)[0]

    _release = None

    def release_after_next(self) -> None:
        """Hand the runtime's buffer arena back to the system at the end of the next call (the last
        band of a large image): what follows (region analysis, restoration) does not sit on top of
        it. Not done on every call: re-growing the arena costs about half again as much time."""
        import onnxruntime as ort

        self._release = ort.RunOptions()
        self._release.add_run_config_entry("memory.enable_memory_arena_shrinkage", "cpu:0")


# ----------------------------------------------------------------------------- export


def _load_for_export(weights):
    from tessera import weights as W

    net = W.load(weights)
    if net.name == "segnet":
        from tessera.models.segnet import fuse_batchnorm

        net = fuse_batchnorm(net).fold_stem()
        net.name = "segnet"
    elif net.name == "dcgan":
        raise BackendError(f"{weights}: dcgan is not an image-to-image network (it is used by latent search); nothing to export")
    return net


def _export_graph(net, sample, path: Path, exporter: str) -> None:
    import torch

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if exporter == "torchscript":
            torch.onnx.export(
                net, (sample,), str(path), dynamo=False, opset_version=OPSET, input_names=["x"], output_names=["y"],
                dynamic_axes={"x": {0: "n", 2: "h", 3: "w"}, "y": {0: "n", 2: "h", 3: "w"}},
            )
        elif exporter == "dynamo":
            dyn = {"x": {0: torch.export.Dim.DYNAMIC, 2: torch.export.Dim.DYNAMIC, 3: torch.export.Dim.DYNAMIC}}
            import contextlib
            import io

            with contextlib.redirect_stdout(io.StringIO()):  # the exporter reports progress on stdout
                torch.onnx.export(
                    net, (sample,), str(path), dynamo=True, dynamic_shapes=dyn, input_names=["x"], output_names=["y"],
                    external_data=False, optimize=True, verbose=False,
                )
        else:
            raise ValueError(f"exporter must be 'torchscript' or 'dynamo', got {exporter!r}")


def export_onnx(
    weights: str | os.PathLike,
    output: str | os.PathLike | None = None,
    *,
    exporter: str = "auto",
    overwrite: bool = False,
) -> Path:
    """Export a restorer's or the detector's weights (a path or a shipped name) to ONNX with dynamic
    batch, height and width; by default into the cache (:func:`onnx_cache_path`), where
    ``load_runner`` finds it. The graph is checked against eager torch on two sizes (max difference
    <= 1e-3) before it is written (atomically). exporter: 'torchscript' (torch's TorchScript-based
    exporter: seconds), 'dynamo' (``torch.export``-based, needs onnxscript: slower to export, same
    speed to run), or 'auto' (the first, then the second if it fails or disagrees)."""
    import torch

    if find_spec("onnx") is None or not onnx_available():
        raise BackendError("ONNX export needs the onnx and onnxruntime packages: pip install 'tessera[onnx]'")
    import onnx

    from tessera.weights import resolve

    src = resolve(weights)
    out = Path(output) if output is not None else onnx_cache_path(src)
    if out.exists() and not overwrite:
        if output is None:
            return out  # already in the cache (its name holds the weights' hash)
        raise FileExistsError(f"{out} exists (use overwrite=True)")
    net = _load_for_export(src)
    info = _net_info(net)
    m = info["size_multiple"]
    seen = max(m, 64 // m * m)
    # a net that pads itself is traced on a size that needs padding, so the padding stays in the graph
    odd = 0 if m > 1 else 5
    gen = torch.Generator().manual_seed(0)
    sample = torch.rand(1, info["in_channels"], seen + odd, seen + 2 * odd, generator=gen) * 2 - 1
    check = torch.rand(2, info["in_channels"], seen + m + 3 * odd, 2 * seen + m, generator=gen) * 2 - 1
    with torch.inference_mode():
        want = [net(sample).numpy(), net(check).numpy()]
    import tempfile

    from tessera.io.image import ImageIOError, write_bytes

    out.parent.mkdir(parents=True, exist_ok=True)
    errors = []
    # the exporters write into a private folder; the checked graph reaches ``out`` through the one
    # atomic, no-follow writer (tessera.io.image.write_bytes)
    with tempfile.TemporaryDirectory(prefix="tessera-onnx-") as scratch:
        tmp = Path(scratch) / "model.onnx"
        for name in ("torchscript", "dynamo") if exporter == "auto" else (exporter,):
            try:
                _export_graph(net, sample, tmp, name)
                model = onnx.load(str(tmp))
                onnx.helper.set_model_props(model, {META_KEY: json.dumps({**info, "exporter": name, "format": ONNX_FORMAT})})
                onnx.save(model, str(tmp))
                runner = OnnxRunner(tmp, threads=1)
                diff = max(float(np.abs(runner(x.numpy()) - y).max()) for x, y in zip((sample, check), want))
                if not diff <= PARITY_TOL:
                    raise BackendError(f"the {name} export differs from torch by {diff:.2e} (> {PARITY_TOL})")
                return write_bytes(out, tmp.read_bytes(), overwrite=overwrite)
            except (FileExistsError, ImageIOError):  # the target, not the exporter: no second try
                raise
            except Exception as exc:  # noqa: BLE001  (try the next exporter; all failures are reported)
                errors.append(f"{name}: {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}")
    raise BackendError(f"could not export {src} to ONNX ({'; '.join(errors)})")


# ----------------------------------------------------------------------------- loading


def resolve_backend(backend: str) -> str:
    """'auto' -> 'onnx' when ONNX Runtime is installed, else 'torch'; others are checked."""
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {', '.join(BACKENDS)}, got {backend!r}")
    if backend == "auto":
        return "onnx" if onnx_available() and find_spec("onnx") is not None else "torch"
    if backend == "onnx" and not onnx_available():
        raise BackendError("backend 'onnx' needs ONNX Runtime: pip install 'tessera[onnx]'")
    return backend


@lru_cache(maxsize=8)
def _cached_runner(path: str, digest: str, backend: str, threads: int | None, device: str) -> Runner:
    if backend == "onnx":
        cached = onnx_cache_path(path)
        if not cached.is_file():
            export_onnx(path)
        return OnnxRunner(cached, threads=threads, device=device)
    return TorchRunner(_load_for_torch(path), threads=threads, device=device)


def _load_for_torch(path: str):
    from tessera import weights as W

    net = W.load(path)
    if net.name == "segnet":
        from tessera.models.segnet import fuse_batchnorm

        net = fuse_batchnorm(net).fold_stem()
        net.name = "segnet"
    return net


def load_runner(
    weights: str | os.PathLike, backend: str = "auto", *, threads: int | None = None, device: str = "cpu"
) -> Runner:
    """A runner for a weight file (a path or a shipped name), loaded once per process per (file
    contents, backend, threads, device). backend 'auto' uses ONNX Runtime when installed and falls
    back to torch, with a warning, when the export fails; 'onnx' raises instead."""
    from tessera.weights import resolve

    path = resolve(weights)
    digest = weights_digest(path)
    chosen = resolve_backend(backend)
    if chosen == "onnx":
        try:
            return _cached_runner(str(path.resolve()), digest, "onnx", threads, device)
        except (BackendError, OSError) as exc:
            if backend == "onnx":
                raise
            warnings.warn(f"ONNX Runtime backend unavailable for {path.name} ({exc}); using torch", RuntimeWarning, stacklevel=2)
    return _cached_runner(str(path.resolve()), digest, "torch", threads, device)
