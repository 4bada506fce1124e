"""fit(): the training loop. Devices, autocast, channels_last, torch.compile, data-parallel
processes (torchrun), checkpoints and exact resume, JSONL/TensorBoard logs, sample grids,
validation PSNR/SSIM inside the hidden region.

Processes: under ``torchrun --nproc_per_node N`` each process trains on its own batches
(``rng([seed, rank, step])``); parameters start equal (broadcast from rank 0), gradients are
averaged with all-reduce after every backward (gloo on CPU, nccl on GPU) and buffers (batch-norm
statistics) are broadcast from rank 0 after every step, so the replicas stay identical. Only
rank 0 writes files.

Determinism: every step reseeds torch from ``(seed, rank, step)`` and the data of a step is
a pure function of the same triple, so a run resumed from a checkpoint at step s takes
exactly the same step s as the uninterrupted run (bit-identical on CPU).
"""

from __future__ import annotations

import json
import math
import os
import random
import signal
import threading
import time
import warnings
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from torch import nn

from tessera.config import ConfigError, check_choice, check_number
from tessera.models import model_kwargs as preset_kwargs
from tessera.models import save_model
from tessera.train.data import (
    AugmentConfig, CaseBatches, DegradeConfig, ImageFolder, SquareBatches, StepBatches, make_batch, validation_set,
)
from tessera.train.losses import composite, masked_detail_ratio, masked_psnr, masked_ssim
from tessera.train.recipes import Recipe, RecipeConfig, build_recipe

CHECKPOINT_FORMAT = "tessera-train-1"


class TrainError(RuntimeError):
    """A training run that cannot start or resume (bad folder, mismatching checkpoint)."""


@dataclass(frozen=True)
class TrainConfig:
    """One training run. CLI flags map one to one onto these fields (``recipe``: --d-width, --recipe;
    ``model_kwargs``: --kwargs), grouped by what they decide."""

    # where: the photos, the run folder and how a run already there is treated
    data: Path
    out: Path
    val: Path | None = None
    val_count: int = 16  # validation cases made from ``val``
    resume: bool = False
    overwrite: bool = False  # start afresh in an ``out`` that holds a run (see :meth:`refuse_existing_run`)
    # what: the model and its size
    model: str = "unet"
    preset: str = "paper"  # model size: paper | small | tiny (see tessera.models.PRESETS)
    model_kwargs: dict[str, Any] = field(default_factory=dict)  # overrides of the preset
    width: int | None = None  # base channels of the generator: overrides the preset (and model_kwargs["base"])
    init: Path | None = None  # start the generator from these weights (a safetensors file); ignored on resume
    recipe: RecipeConfig = field(default_factory=RecipeConfig)
    # the data: crops, augmentation and the degradations that make the inputs
    crop: int = 256
    small: str = "upscale"  # images smaller than the crop: upscale | skip
    augment: bool = True
    aug: AugmentConfig = field(default_factory=AugmentConfig)
    region: int = 128
    cell: int = 12
    cell_range: tuple[int, int] = (4, 24)
    degrade: DegradeConfig | None = None  # None: built from region/cell/cell_range
    # the optimization
    steps: int = 100_000
    batch: int = 16
    lr: float = 1e-4
    decay_from: float = 0.5  # linear LR decay to 0 over the last (1 - decay_from) of the steps
    seed: int = 0
    minutes: float | None = None  # wall-clock limit of this call: stop cleanly (checkpoint) after it; --resume continues
    # the machine
    device: str = "auto"  # auto | cpu | cuda | cuda:1
    amp: str = "none"  # none | bf16 | fp16
    channels_last: bool = False
    compile: bool = False
    workers: int = 2
    threads: int | None = None
    # how often (steps): log, validate, save sample grids, checkpoint
    log_every: int = 10
    eval_every: int = 500
    sample_every: int = 500
    ckpt_every: int = 500

    RUN_FILES = ("checkpoint.pt", "config.json", "metrics.jsonl")

    def __post_init__(self) -> None:
        from tessera.models import PRESETS, TRAINABLE_MODELS

        check_choice("model", self.model, TRAINABLE_MODELS)
        check_choice("preset", self.preset, tuple(PRESETS[self.model]))
        check_choice("amp", self.amp, ("none", "bf16", "fp16"))
        check_choice("small", self.small, ("upscale", "skip"))
        check_number("lr", self.lr, 0.0, 10.0, open_lo=True)
        lo, hi = self.cell_range
        if not 1 <= lo <= self.cell <= hi:
            raise ConfigError("cell_range", f"need 1 <= {lo} <= cell {self.cell} <= {hi}")
        self._check_paths()
        self._check_kwargs()

    def _check_paths(self) -> None:
        for name in ("data", "val"):
            path = getattr(self, name)
            if path is not None and not Path(path).exists():
                raise ConfigError(name, f"{path} does not exist")
        if Path(self.out).exists() and not Path(self.out).is_dir():
            raise ConfigError("out", f"{self.out} is a file; the run needs a folder")
        if self.resume and self.overwrite:
            raise ConfigError("resume", "give resume or overwrite, not both")

    def _check_kwargs(self) -> None:
        """The same checks a model file's kwargs get: known keys, sane values, a parameter cap."""
        from tessera.weights import WeightsError, validate_kwargs

        try:
            validate_kwargs(self.model, self.generator_kwargs())
        except (WeightsError, ValueError) as exc:
            raise ConfigError("model_kwargs", str(exc)) from None

    def generator_kwargs(self) -> dict[str, Any]:
        """The generator's constructor kwargs: the preset's, updated by ``model_kwargs`` and ``width``."""
        overrides = {**self.model_kwargs, **({"base": self.width} if self.width is not None else {})}
        return preset_kwargs(self.model, self.preset, overrides)

    def refuse_existing_run(self) -> None:
        """ConfigError when ``out`` already holds a run, unless ``resume`` or ``overwrite``. (:func:`fit`
        itself replaces a run's files: a caller that must not lose one calls this first, as the CLI does.)"""
        there = [n for n in self.RUN_FILES if os.path.lexists(Path(self.out) / n)]
        if there and not (self.resume or self.overwrite):
            raise ConfigError(
                "out", f"{self.out} already holds a run ({', '.join(there)}); continue it with --resume, start afresh with "
                "--overwrite, or choose another --out",
            )

    def degrade_config(self) -> DegradeConfig:
        if self.degrade is not None:
            return self.degrade
        return DegradeConfig(region=self.region, cell=self.cell, cell_range=self.cell_range)


# ---------------------------------------------------------------- processes


@dataclass
class Dist:
    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def main(self) -> bool:
        return self.rank == 0


def setup_dist(device_kind: str) -> Dist:
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return Dist()
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if device_kind == "cuda" else "gloo")
    return Dist(dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", "0")))


def all_reduce_grads(module: nn.Module, world: int) -> None:
    """Average the gradients of ``module`` over all processes (one flat all-reduce)."""
    grads = [p.grad for p in module.parameters() if p.grad is not None]
    if not grads:
        return
    flat = torch.cat([g.reshape(-1) for g in grads])
    dist.all_reduce(flat)
    flat /= world
    i = 0
    for g in grads:
        n = g.numel()
        g.copy_(flat[i : i + n].view_as(g))
        i += n


def broadcast_state(recipe: Recipe, buffers_only: bool = False) -> None:
    for net in recipe.nets.values():
        tensors = list(net.buffers()) if buffers_only else list(net.parameters()) + list(net.buffers())
        for t in tensors:
            dist.broadcast(t.data, 0)


def pick_device(name: str, d: Dist) -> torch.device:
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cuda" and d.world > 1:
        name = f"cuda:{d.local_rank}"
    dev = torch.device(name)
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise TrainError("--device cuda was asked for but this torch has no CUDA device; use --device cpu")
        torch.cuda.set_device(dev)
    return dev


# ---------------------------------------------------------------- rng and checkpoints


def step_seed(seed: int, rank: int, step: int) -> int:
    return int(np.random.SeedSequence([seed, rank, step, 7]).generate_state(1, dtype=np.uint64)[0] % (2**63))


def rng_state() -> dict[str, Any]:
    np_state = np.random.get_state()
    out = {
        "torch": torch.get_rng_state(),
        "numpy": [np_state[0], torch.from_numpy(np_state[1].astype(np.int64)), int(np_state[2]), int(np_state[3]), float(np_state[4])],
        "python": random.getstate(),
    }
    if torch.cuda.is_available():
        out["cuda"] = torch.cuda.get_rng_state_all()
    return out


def set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    n = state["numpy"]
    np.random.set_state((n[0], n[1].numpy().astype(np.uint32), n[2], n[3], n[4]))
    random.setstate(state["python"] if isinstance(state["python"], tuple) else tuple(state["python"]))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def _config_json(cfg: TrainConfig) -> dict[str, Any]:
    def conv(v):
        if isinstance(v, Path):
            return str(v)
        if isinstance(v, dict):
            return {k: conv(x) for k, x in v.items()}
        if isinstance(v, (list, tuple)):
            return [conv(x) for x in v]
        return v

    return conv(asdict(cfg))


def save_checkpoint(path: Path, recipe: Recipe, schedulers: dict, step: int, cfg: TrainConfig, kwargs: dict) -> None:
    state = {
        "format": CHECKPOINT_FORMAT,
        "model": cfg.model,
        "model_kwargs": json.dumps(kwargs),
        "config": json.dumps(_config_json(cfg)),
        "step": step,
        "recipe": recipe.state_dict(),
        "schedulers": {k: s.state_dict() for k, s in schedulers.items()},
        "rng": rng_state(),
    }
    from tessera.io.image import write_files

    write_files([(path, lambda fh: torch.save(state, fh))], overwrite=True)  # atomic, never through a link


def load_checkpoint(path: str | os.PathLike) -> dict[str, Any]:
    """Read a training checkpoint (tensors and plain data only: no code is unpickled)."""
    path = Path(path)
    if not path.is_file():
        raise TrainError(f"no checkpoint at {path}")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise TrainError(f"{path} is not a Tessera training checkpoint: {exc}") from None
    if not isinstance(state, dict) or state.get("format") != CHECKPOINT_FORMAT:
        raise TrainError(f"{path} is not a Tessera training checkpoint (format {CHECKPOINT_FORMAT})")
    return state


def _same_model(name: str, kwargs: Any, model: str, expected: dict[str, Any]) -> bool:
    """Whether a saved (name, kwargs) is ``model`` built with ``expected`` (compared as JSON)."""
    as_json = json.loads(kwargs) if isinstance(kwargs, str) else json.loads(json.dumps(kwargs))
    return name == model and as_json == json.loads(json.dumps(expected))


def _unet_family_match(src: torch.nn.Module, generator: torch.nn.Module, model: str) -> bool:
    """pix2pix's generator is a U-Net with other defaults (more levels, dropout): a saved U-Net
    starts it, or the other way round, when every weight has the same shape and both read the same
    input (prefill) and predict the same thing (residual). Dropout holds no weights."""
    if {src.name, model} - {"unet", "pix2pix"}:
        return False
    same_io = all(getattr(src, a, None) == getattr(generator, a, None) for a in ("prefill", "residual", "in_channels"))
    a, b = src.state_dict(), generator.state_dict()
    return same_io and a.keys() == b.keys() and all(a[k].shape == b[k].shape for k in a)


def init_generator(generator: torch.nn.Module, path: str | os.PathLike, model: str, kwargs: dict[str, Any]) -> None:
    """Copy the weights of a saved model (``tessera export`` / shipped safetensors) into
    ``generator``, which must be the same model with the same kwargs (fine-tuning), the same
    U-Net grown by more residual ``blocks`` (the new blocks start as the identity, so the grown
    model computes what the saved one did), or the other member of the U-Net family with the
    same layers (a pix2pix generator started from a trained U-Net)."""
    from tessera.models import ModelLoadError, load_model

    try:
        src = load_model(path)
    except ModelLoadError as exc:
        raise TrainError(f"--init: {exc}") from None

    def unblocked(kw: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in kw.items() if k != "blocks"}

    if not _same_model(src.name, unblocked(src.kwargs), model, unblocked(kwargs)) and not _unet_family_match(src, generator, model):
        raise TrainError(f"--init {path} holds {src.name} {json.dumps(src.kwargs)}, not {model} {json.dumps(kwargs)}")
    state = src.state_dict()
    own = generator.state_dict().keys()
    missing, unexpected = own - state.keys(), state.keys() - own
    if unexpected or any(not k.startswith("blocks.") for k in missing):  # checked before anything is copied
        raise TrainError(f"--init {path}: its blocks {src.kwargs.get('blocks', [])} are not a subset of {list(kwargs.get('blocks', []))}")
    generator.load_state_dict(state, strict=not missing)


def export_checkpoint(
    ckpt: str | os.PathLike, out: str | os.PathLike, metadata: dict[str, Any] | None = None, *, overwrite: bool = True
) -> Path:
    """Write the generator of a training checkpoint as a safetensors weight file with its
    model name, kwargs, step and training config in the metadata. A model trained adversarially
    (recipe ``gan``, pix2pix, deepfill) also gets ``flips: 1``: the pipeline then runs it once
    instead of averaging four flipped passes, which would average its synthesized texture away."""
    from tessera.models import build_model

    from tessera.weights import WeightsError, validate_kwargs

    state = load_checkpoint(ckpt)
    try:  # a checkpoint is a file a user hands us: its kwargs get the checks a weight file's get
        kwargs = validate_kwargs(str(state.get("model")), json.loads(state["model_kwargs"]))
    except (WeightsError, ValueError, KeyError, TypeError) as exc:
        raise TrainError(f"{ckpt}: {exc}") from None
    from tessera.train.recipes import RECIPES, Recipe

    model = build_model(state["model"], **kwargs)
    try:
        model.load_state_dict(RECIPES.get(state["model"], Recipe).model_state(state["recipe"]["nets"]))
    except (KeyError, TypeError, RuntimeError) as exc:
        raise TrainError(f"{ckpt}: its generator weights do not fit {state['model']} {kwargs} ({str(exc).splitlines()[0]})") from None
    config = json.loads(state["config"])
    adversarial = (config.get("recipe") or {}).get("name") == "gan" or state["model"] in ("pix2pix", "deepfill")
    meta = {"step": state["step"], "train_config": config, **({"flips": 1} if adversarial else {}), **(metadata or {})}
    return save_model(model, out, state["model"], kwargs, meta, overwrite=overwrite)


# ---------------------------------------------------------------- logs


class Logger:
    """JSONL metrics, TensorBoard event files (when tensorboard is installed), sample PNGs."""

    def __init__(self, out: Path, enabled: bool) -> None:
        self.enabled = enabled
        self.out = out
        self.tb = None
        if enabled:
            out.mkdir(parents=True, exist_ok=True)
            from tessera.io.image import open_append

            self.jsonl = open_append(out / "metrics.jsonl")
            try:
                from torch.utils.tensorboard import SummaryWriter

                self.tb = SummaryWriter(str(out / "tb"))
            except Exception:  # tensorboard missing: JSONL only
                self.tb = None

    def log(self, step: int, values: dict[str, Any], kind: str = "train") -> None:
        if not self.enabled:
            return
        self.jsonl.write(json.dumps({"step": step, "kind": kind, "time": round(time.time(), 3), **values}) + "\n")
        self.jsonl.flush()
        if self.tb is not None:
            for k, v in values.items():
                if isinstance(v, (int, float)) and math.isfinite(v):
                    self.tb.add_scalar(f"{kind}/{k}", v, step)

    def grid(self, step: int, x: torch.Tensor, out: torch.Tensor, target: torch.Tensor) -> Path | None:
        """Write samples/step_XXXXXXX.png: one row per image, input | output | target."""
        if not self.enabled:
            return None
        from tessera.io.image import write_image

        rows = torch.cat([x[:, :3], out, target], dim=3)  # (N, 3, H, 3W)
        img = torch.cat(list(rows), dim=1)  # (3, N*H, 3W)
        arr = ((img.float().clamp(-1, 1) + 1) * 127.5).round().byte().permute(1, 2, 0).cpu().numpy()
        path = self.out / "samples" / f"step_{step:07d}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        write_image(path, arr, overwrite=True)
        if self.tb is not None:
            self.tb.add_image("samples", arr, step, dataformats="HWC")
        return path

    def close(self) -> None:
        if self.enabled:
            self.jsonl.close()
            if self.tb is not None:
                self.tb.close()


@torch.no_grad()
def evaluate(recipe: Recipe, val: tuple[torch.Tensor, ...], device, batch: int) -> tuple[dict[str, float], torch.Tensor]:
    """PSNR and SSIM inside the hidden region of the composited output, over the validation set."""
    x_all, m_all, t_all = val
    recipe.generator.eval()
    outs, psnr, ssim, detail = [], [], [], []
    for i in range(0, len(x_all), batch):
        x, m, t = (a[i : i + batch].to(device) for a in (x_all, m_all, t_all))
        with recipe.autocast():
            y = recipe.generator(x).float()
        comp = composite(y, x[:, :3], m)
        psnr.append(masked_psnr(comp, t, m).cpu())
        ssim.append(masked_ssim(comp, t, m).cpu())
        detail.append(masked_detail_ratio(comp, t, m).cpu())
        outs.append(comp.cpu())
    recipe.generator.train()
    base = masked_psnr(x_all[:, :3], t_all, m_all)
    return (
        {"psnr": float(torch.cat(psnr).mean()), "ssim": float(torch.cat(ssim).mean()), "detail": float(torch.cat(detail).mean()), "psnr_input": float(base.mean())},
        torch.cat(outs),
    )


# ---------------------------------------------------------------- fit


def _quiet_worker(worker_id: int) -> None:
    """Loader workers ignore SIGINT/SIGTERM: the main process stops at a step boundary,
    saves a checkpoint and shuts them down."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)


class _StopFlag:
    def __init__(self) -> None:
        self.stop = False
        self.old: dict[int, Any] = {}

    def __enter__(self) -> _StopFlag:
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self.old[sig] = signal.signal(sig, self._handle)
        return self

    def _handle(self, signum, frame) -> None:
        if self.stop:  # a second signal: give up at once
            raise KeyboardInterrupt
        self.stop = True

    def __exit__(self, *exc) -> None:
        for sig, handler in self.old.items():
            signal.signal(sig, handler)


@dataclass
class _Run:
    """What the stages of :func:`fit` share: the networks and their schedules, where to write, the
    step reached, the last losses and validation scores."""

    cfg: TrainConfig
    d: Dist
    device: torch.device
    recipe: Recipe
    kwargs: dict[str, Any]
    schedulers: dict[str, Any]
    ckpt_path: Path
    step: int
    losses: dict[str, float] = field(default_factory=dict)
    scores: dict[str, float] = field(default_factory=dict)

    def save(self) -> None:
        save_checkpoint(self.ckpt_path, self.recipe, self.schedulers, self.step, self.cfg, self.kwargs)


def _build(cfg: TrainConfig, d: Dist, device: torch.device) -> _Run:
    """Stage 1: networks, optimizers, LR schedules; weights from --init or the checkpoint on --resume;
    the same state on every process."""
    kwargs = cfg.generator_kwargs()
    torch.manual_seed(cfg.seed)
    rcfg = RecipeConfig(**{**asdict(cfg.recipe), "lr": cfg.lr, "amp": cfg.amp, "local_size": min(cfg.recipe.local_size, cfg.region)})
    recipe = build_recipe(cfg.model, kwargs, rcfg, device)
    multiple = getattr(recipe.generator, "size_multiple", 1)
    if recipe.data == "images" and cfg.crop != getattr(recipe.generator, "size", cfg.crop):
        raise TrainError(f"crop {cfg.crop} must equal the image size {recipe.generator.size} of {cfg.model} {kwargs}")
    if cfg.crop % multiple:
        raise TrainError(f"crop {cfg.crop} must be a multiple of {multiple} for {cfg.model} {kwargs}")
    recipe.to(device, channels_last=cfg.channels_last)
    decay_start = int(cfg.steps * cfg.decay_from)

    def lr_factor(step: int) -> float:  # constant, then linear to 0 over the last (1 - decay_from) of the steps
        if step < decay_start:
            return 1.0
        return max(0.0, 1.0 - (step - decay_start) / max(1, cfg.steps - decay_start))

    schedulers = {k: torch.optim.lr_scheduler.LambdaLR(o, lr_factor) for k, o in recipe.optimizers.items()}
    run = _Run(cfg, d, device, recipe, kwargs, schedulers, Path(cfg.out) / "checkpoint.pt", 0)
    if cfg.init is not None and not cfg.resume:
        init_generator(recipe.generator, cfg.init, cfg.model, kwargs)
    if cfg.resume:
        state = load_checkpoint(run.ckpt_path)
        if not _same_model(state["model"], state["model_kwargs"], cfg.model, kwargs):
            raise TrainError(
                f"{run.ckpt_path} holds {state['model']} {state['model_kwargs']}, not {cfg.model} {json.dumps(kwargs)}; "
                "use the same --model/--preset or another --out"
            )
        recipe.load_state_dict(state["recipe"])
        for k, sch in schedulers.items():
            sch.load_state_dict(state["schedulers"][k])
        set_rng_state(state["rng"])
        run.step = int(state["step"])
    if d.world > 1:
        broadcast_state(recipe)
        recipe.reduce_grads = lambda module: all_reduce_grads(module, d.world)
    if cfg.compile:
        recipe.compile()
    return run


def _data(run: _Run):
    """Stage 2: the batch loader (a pure function of (seed, rank, step), so resume is exact) and, on
    the main process, the fixed validation set."""
    cfg, d = run.cfg, run.d
    dcfg = cfg.degrade_config()
    folder = ImageFolder(cfg.data, crop=cfg.crop, small=cfg.small)
    batches = {
        "restore": lambda: StepBatches(folder, cfg.batch, dcfg, seed=cfg.seed, rank=d.rank),
        "images": lambda: SquareBatches(folder, cfg.batch, cfg.crop, seed=cfg.seed, rank=d.rank),
        "cases": lambda: CaseBatches(folder, cfg.batch, seed=cfg.seed, rank=d.rank),
    }[run.recipe.data]()
    loader = torch.utils.data.DataLoader(
        batches,
        batch_size=None,
        sampler=range(run.step, cfg.steps),
        num_workers=cfg.workers,
        worker_init_fn=_quiet_worker if cfg.workers else None,
        pin_memory=run.device.type == "cuda",
        persistent_workers=False,
    )
    val = None
    if cfg.val is not None and d.main and run.recipe.data == "restore":
        val = validation_set(
            cfg.val, crop=cfg.crop, degrade_cfg=dcfg, count=cfg.val_count, seed=cfg.seed + 1234, small=cfg.small,
            prefill=getattr(run.recipe.generator, "prefill", "none"),
        )
    return loader, val


def _batch(run: _Run, raw: dict[str, Any]) -> tuple[torch.Tensor, ...]:
    """The step's batch on the device: restorers get (x, mask, target) degraded and augmented there;
    image generators (images) and the detector (images, masks) get theirs as loaded."""
    cfg, d = run.cfg, run.d
    if run.recipe.data == "restore":
        batch = make_batch(
            raw, run.device, cfg.aug if cfg.augment else None, step_seed(cfg.seed, d.rank, run.step) + 1,
            prefill=getattr(run.recipe.generator, "prefill", "none"),
        )
    else:
        batch = tuple(raw[k].to(run.device) for k in (("x",) if run.recipe.data == "images" else ("x", "m")))
    if cfg.channels_last:
        batch = tuple(a.contiguous(memory_format=torch.channels_last) for a in batch)
    return batch


def _train_step(run: _Run, raw: dict[str, Any]) -> tuple[torch.Tensor, ...]:
    """Stage 3a: the step's batch (:func:`_batch`), one recipe step (update D, then G), the
    schedules. Returns the batch."""
    cfg, d = run.cfg, run.d
    assert raw["step"] == run.step, (raw["step"], run.step)
    torch.manual_seed(step_seed(cfg.seed, d.rank, run.step))
    batch = _batch(run, raw)
    run.recipe.train()
    run.recipe.at_step = run.step
    run.losses = run.recipe.step(*batch)
    with warnings.catch_warnings():  # a network that sat out the step (a warm-up) still follows its schedule
        warnings.filterwarnings("ignore", message="Detected call of `lr_scheduler.step", category=UserWarning)
        for sch in run.schedulers.values():
            sch.step()
    if d.world > 1:
        broadcast_state(run.recipe, buffers_only=True)
    run.step += 1
    return batch


def _report(run: _Run, logger: Logger, val, batch: tuple[torch.Tensor, ...], throughput: float | None) -> None:
    """Stage 3b (main process): losses to the log, validation scores and sample grids, checkpoints."""
    cfg, step, recipe = run.cfg, run.step, run.recipe
    last = step == cfg.steps
    if throughput is not None:
        lr = next(iter(recipe.optimizers.values())).param_groups[0]["lr"]
        logger.log(step, {**run.losses, "lr": lr, "img_per_s": round(throughput, 3)})
    want_scores, want_grid = step % cfg.eval_every == 0 or last, step % cfg.sample_every == 0 or last
    if val is not None and (want_scores or want_grid):
        run.scores, outs = evaluate(recipe, val, run.device, cfg.batch)
        if want_scores:
            logger.log(step, run.scores, kind="val")
        if want_grid:
            logger.grid(step, val[0][:4], outs[:4], val[2][:4])
    elif val is None and want_grid and recipe.data == "restore":
        x, m, t = batch
        with torch.no_grad():
            y = recipe.predict(x[:4]).float()
        logger.grid(step, x[:4].cpu(), composite(y, x[:4, :3], m[:4]).cpu(), t[:4].cpu())
    if step % cfg.ckpt_every == 0:
        run.save()


def fit(cfg: TrainConfig, on_step: Callable[[int, int, dict[str, float]], None] | None = None) -> dict[str, Any]:
    """Train ``cfg.model`` on ``cfg.data``; write checkpoints and logs under ``cfg.out``.

    on_step(step, total, losses) is called after every step on rank 0 (for a progress bar).
    Returns a summary: final step, last losses, last validation scores, whether interrupted or
    stopped by ``cfg.minutes``, the checkpoint path and the trained ``recipe`` (its ``generator`` is
    the model). Stages: 1. build (:func:`_build`), 2. data (:func:`_data`), 3. the loop
    (:func:`_train_step`, :func:`_report`), 4. the last checkpoint.
    """
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    kind = "cuda" if cfg.device.startswith("cuda") or (cfg.device == "auto" and torch.cuda.is_available()) else "cpu"
    d = setup_dist(kind)
    device = pick_device(cfg.device, d)
    out = Path(cfg.out)
    run = _build(cfg, d, device)  # 1.
    loader, val = _data(run)  # 2.
    logger = Logger(out, d.main)
    if d.main:
        from tessera.io.image import write_json

        write_json(out / "config.json", {"model_kwargs": run.kwargs, **_config_json(cfg)}, overwrite=True, indent=2)

    # 3. the loop
    start, interrupted, timed_out = run.step, False, False
    t_last, n_last = time.perf_counter(), 0
    deadline = None if cfg.minutes is None else time.monotonic() + 60.0 * cfg.minutes
    try:
        with _StopFlag() as flag:
            it = iter(loader)
            while run.step < cfg.steps and not flag.stop:
                try:
                    raw = next(it)
                except StopIteration:
                    break
                except Exception:
                    if flag.stop:  # a loader worker died of the same signal
                        break
                    if d.main and run.step > start:  # between steps the state is whole: keep it
                        run.save()
                    raise
                batch = _train_step(run, raw)
                n_last += cfg.batch * d.world
                if not d.main:
                    continue
                if on_step is not None:
                    on_step(run.step, cfg.steps, run.losses)
                throughput = None
                if run.step % cfg.log_every == 0 or run.step == cfg.steps:
                    now = time.perf_counter()
                    throughput, t_last, n_last = n_last / max(now - t_last, 1e-9), now, 0
                _report(run, logger, val, batch, throughput)
                if deadline is not None and time.monotonic() >= deadline and run.step < cfg.steps:
                    timed_out = True  # the checkpoint below holds this step; --resume continues
                    break
            interrupted = flag.stop and run.step < cfg.steps
        if d.main:  # 4.
            run.save()
    finally:
        logger.close()
        del loader
    return {
        "step": run.step, "losses": run.losses, "val": run.scores, "interrupted": interrupted, "timed_out": timed_out,
        "checkpoint": str(run.ckpt_path), "recipe": run.recipe,
    }
