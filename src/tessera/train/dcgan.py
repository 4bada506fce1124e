"""Training a DCGAN on a folder of face crops (the generator behind ``restore --model dcgan``).

The DCGAN is unconditional (z -> image), so it does not fit the (x, mask, target) recipes; this
module is its own small loop: the DCGAN paper's step (update D on real -> 1 and G(z) -> 0 with
binary cross-entropy, then G to make D say 1), Adam lr 2e-4, betas (0.5, 0.999), training on
whole face crops (centre square, resized to ``size + size // 16``, random ``size`` crop and
horizontal flip).

Run: ``python -m tessera.train.dcgan --data ../shared/data/faces/train --minutes 40``. It writes
the weights (``tessera.models.save_model``, name 'dcgan') and a sample grid every
``--export-every`` steps and at the end, and a resumable checkpoint in ``runs/``.
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import cv2
import numpy as np
import torch

from tessera.io.image import write_files, write_json
from tessera.models import build_model, save_model
from tessera.train.losses import gan_bce


@dataclass(frozen=True)
class DCGANTrainConfig:
    data: Path
    out: Path = Path("src/tessera/weights/dcgan-faces64.safetensors")
    run_dir: Path = Path("runs/dcgan")
    size: int = 64
    z_dim: int = 100
    g_base: int = 48
    d_base: int = 32
    batch: int = 64
    lr: float = 2e-4
    beta1: float = 0.5
    minutes: float = 40.0
    max_steps: int = 1_000_000
    export_every: int = 200
    log_every: int = 25
    seed: int = 0
    threads: int = 1


def load_faces(folder: Path, size: int) -> np.ndarray:
    """Every face crop of ``folder`` as its centre square resized to ``size + size // 16``: uint8 (N, s, s, 3)."""
    from tessera.train.data import find_images, read_rgb

    s = size + size // 16
    out = []
    for p in find_images(folder):
        try:
            rgb = read_rgb(p)
        except Exception:  # unreadable file: skip it
            continue
        H, W = rgb.shape[:2]
        k = min(H, W)
        y, x = (H - k) // 2, (W - k) // 2
        sq = rgb[y : y + k, x : x + k]
        out.append(cv2.resize(sq, (s, s), interpolation=cv2.INTER_AREA if k > s else cv2.INTER_CUBIC))
    if not out:
        raise ValueError(f"no readable images in {folder}")
    return np.stack(out)


def sample_batch(faces: np.ndarray, batch: int, size: int, rng: np.random.Generator) -> torch.Tensor:
    """A random batch of crops, flipped at random: float (batch, 3, size, size) in [-1, 1]."""
    idx = rng.integers(0, len(faces), batch)
    s = faces.shape[1]
    ys, xs = rng.integers(0, s - size + 1, batch), rng.integers(0, s - size + 1, batch)
    flip = rng.random(batch) < 0.5
    crops = np.stack(
        [faces[i, y : y + size, x : x + size][:, ::-1] if f else faces[i, y : y + size, x : x + size] for i, y, x, f in zip(idx, ys, xs, flip)]
    )
    return torch.from_numpy(crops.astype(np.float32) / 127.5 - 1.0).permute(0, 3, 1, 2).contiguous()


class DCGANTrainer:
    """The two networks, their Adam optimizers, and one DCGAN step."""

    def __init__(self, model: torch.nn.Module, lr: float = 2e-4, beta1: float = 0.5) -> None:
        self.model = model
        self.G, self.D = model.generator, model.critic
        self.opt_g = torch.optim.Adam(self.G.parameters(), lr=lr, betas=(beta1, 0.999))
        self.opt_d = torch.optim.Adam(self.D.parameters(), lr=lr, betas=(beta1, 0.999))

    def step(self, real: torch.Tensor, generator: torch.Generator | None = None) -> dict[str, float]:
        N = real.shape[0]
        z = torch.randn(N, self.model.z_dim, generator=generator)
        fake = self.G(z)  # (N, 3, size, size)
        # 1. update D: real -> 1, G(z) -> 0 (each its own batch, as in the paper)
        self.opt_d.zero_grad(set_to_none=True)
        d_real, d_fake = self.D(real), self.D(fake.detach())
        loss_d = gan_bce(d_real, True) + gan_bce(d_fake, False)
        loss_d.backward()
        self.opt_d.step()
        # 2. update G: make D call G(z) real (non-saturating loss)
        self.opt_g.zero_grad(set_to_none=True)
        loss_g = gan_bce(self.D(fake), True)
        loss_g.backward()
        self.opt_g.step()
        return {
            "g": loss_g.item(),
            "d": loss_d.item(),
            "d_real": torch.sigmoid(d_real).mean().item(),
            "d_fake": torch.sigmoid(d_fake).mean().item(),
        }

    def state_dict(self) -> dict:
        return {"model": self.model.state_dict(), "opt_g": self.opt_g.state_dict(), "opt_d": self.opt_d.state_dict()}

    def load_state_dict(self, state: dict) -> None:
        self.model.load_state_dict(state["model"])
        self.opt_g.load_state_dict(state["opt_g"])
        self.opt_d.load_state_dict(state["opt_d"])


def sample_grid(model: torch.nn.Module, z: torch.Tensor, path: Path, cols: int = 8) -> None:
    """A PNG grid of G(z) (eval mode)."""
    from PIL import Image

    was = model.training
    model.eval()
    with torch.no_grad():
        x = model.generator(z)
    model.train(was)
    imgs = ((x.clamp(-1, 1) + 1) * 127.5).round().byte().permute(0, 2, 3, 1).numpy()
    n, s = len(imgs), imgs.shape[1]
    rows = (n + cols - 1) // cols
    sheet = np.zeros((rows * s, cols * s, 3), np.uint8)
    for i, im in enumerate(imgs):
        sheet[(i // cols) * s : (i // cols + 1) * s, (i % cols) * s : (i % cols + 1) * s] = im
    # a 256-colour palette keeps an 8x8 grid of 64 px samples small enough to ship (< 300 KB)
    import io

    from tessera.io.image import write_bytes

    buf = io.BytesIO()
    Image.fromarray(sheet).quantize(256, dither=Image.Dither.NONE).save(buf, format="PNG", optimize=True)
    if buf.tell() > 290_000:
        buf = io.BytesIO()
        Image.fromarray(sheet).quantize(128, dither=Image.Dither.NONE).save(buf, format="PNG", optimize=True)
    write_bytes(path, buf.getvalue(), overwrite=True)


CHECKPOINT_FORMAT = "tessera-dcgan-2"


def load_checkpoint(path: Path, kwargs: dict) -> dict:
    """Read a DCGAN training checkpoint with ``weights_only=True``: tensors and plain data only, so
    a planted file cannot run code. Raises ValueError naming the file and the problem."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - an unpicklable object, a corrupt file, a link to nowhere
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
        raise ValueError(
            f"{path} is not a checkpoint that can be loaded safely ({first}); move it away to start afresh"
        ) from None
    if not isinstance(state, dict) or state.get("format") != CHECKPOINT_FORMAT:
        raise ValueError(f"{path} is not a Tessera DCGAN checkpoint (format {CHECKPOINT_FORMAT}); move it away to start afresh")
    if state.get("kwargs") != json.dumps(kwargs, sort_keys=True):
        raise ValueError(f"{path} holds a DCGAN {state.get('kwargs')}, not {json.dumps(kwargs, sort_keys=True)}; use another --run-dir")
    return state


def train(cfg: DCGANTrainConfig, log=print) -> Path:
    torch.set_num_threads(cfg.threads)
    torch.manual_seed(cfg.seed)
    rng = np.random.default_rng(cfg.seed)
    gen = torch.Generator().manual_seed(cfg.seed)
    faces = load_faces(cfg.data, cfg.size)
    kwargs = {"z_dim": cfg.z_dim, "g_base": cfg.g_base, "d_base": cfg.d_base, "size": cfg.size}
    model = build_model("dcgan", **kwargs)
    trainer = DCGANTrainer(model, cfg.lr, cfg.beta1)
    run = Path(cfg.run_dir)
    run.mkdir(parents=True, exist_ok=True)
    ckpt = run / "last.pt"
    step, spent = 0, 0.0
    if ckpt.exists() or ckpt.is_symlink():  # resume
        state = load_checkpoint(ckpt, kwargs)
        trainer.load_state_dict(state["trainer"])
        step, spent = int(state["step"]), float(state["seconds"])
        rng = np.random.default_rng()
        rng.bit_generator.state = state["rng"]
        gen.set_state(state["gen"])
        log(f"resumed at step {step} ({spent / 60:.1f} min)")
    z_fixed = torch.randn(64, cfg.z_dim, generator=torch.Generator().manual_seed(1234))
    model.train()
    t0 = time.time() - spent

    def export(final: bool = False) -> None:
        meta = {
            "steps": step,
            "wall_minutes": round((time.time() - t0) / 60, 1),
            "images": len(faces),
            "batch": cfg.batch,
            "data": str(cfg.data),
            "hardware": f"CPU, {cfg.threads} thread(s)",
            "final": final,
        }
        model.eval()
        save_model(model, cfg.out, "dcgan", kwargs, metadata=meta)
        model.train()
        sample_grid(model, z_fixed, Path(cfg.out).with_suffix(".samples.png"))
        state = {
            "format": CHECKPOINT_FORMAT, "kwargs": json.dumps(kwargs, sort_keys=True), "trainer": trainer.state_dict(),
            "step": step, "seconds": time.time() - t0, "rng": rng.bit_generator.state, "gen": gen.get_state(),
        }
        write_files([(ckpt, lambda fh: torch.save(state, fh))], overwrite=True)  # plain data only: loads with weights_only
        write_json(run / "meta.json", {**meta, "config": {k: str(v) for k, v in asdict(cfg).items()}}, overwrite=True)

    while step < cfg.max_steps and time.time() - t0 < cfg.minutes * 60:
        losses = trainer.step(sample_batch(faces, cfg.batch, cfg.size, rng), gen)
        step += 1
        if step % cfg.log_every == 0:
            log(f"step {step} {(time.time() - t0) / 60:.1f} min " + " ".join(f"{k} {v:.3f}" for k, v in losses.items()))
        if step % cfg.export_every == 0:
            export()
    export(final=True)
    log(f"done: {step} steps in {(time.time() - t0) / 60:.1f} min -> {cfg.out}")
    return Path(cfg.out)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", type=Path, required=True)
    for f in ("out", "run_dir"):
        p.add_argument("--" + f.replace("_", "-"), type=Path, default=getattr(DCGANTrainConfig, f))
    for f in ("size", "z_dim", "g_base", "d_base", "batch", "max_steps", "export_every", "log_every", "seed", "threads"):
        p.add_argument("--" + f.replace("_", "-"), type=int, default=getattr(DCGANTrainConfig, f))
    for f in ("lr", "beta1", "minutes"):
        p.add_argument("--" + f, type=float, default=getattr(DCGANTrainConfig, f))
    a = p.parse_args(argv)
    train(DCGANTrainConfig(**vars(a)), log=lambda s: print(s, flush=True))


if __name__ == "__main__":
    main()
