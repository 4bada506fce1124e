"""Train the mosaic segmentation net on synthetic cases (``python -m tessera.train.detector``).

Crops of ../shared/data/*/train are hidden with :func:`tessera.mosaic.synth.random_case`
(cells 4-32, rectangular cells, mean/centre sampling, feathered and pasted edges, blurs,
hard negatives, JPEG 50-95) and the net learns the hidden-pixel mask with BCE + soft Dice.
Made for a CPU: a small net, small crops, one thread; it writes the latest weights every
``--save-every`` steps so a long run can be stopped at any time.
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from tessera.models.segnet import MosaicSegNet, save_segnet
from tessera.mosaic.synth import random_case

REPO = Path(__file__).resolve().parents[3]


@dataclass(frozen=True)
class TrainConfig:
    data: str = str(REPO.parent / "shared" / "data")
    out: str = str(REPO / "runs" / "detector" / "latest.safetensors")
    log: str = str(REPO / "runs" / "detector" / "log.jsonl")
    steps: int = 20000
    batch: int = 12
    crop: int = 192
    lr: float = 2e-3
    base: int = 16
    depth: int = 3
    fold: int = 4
    threads: int = 1
    save_every: int = 250
    seed: int = 0
    max_hours: float = 1.5
    init: str = ""  # start from these weights (a detector .safetensors), e.g. to fine-tune at a lower lr


def load_images(root: Path, min_side: int, max_side: int = 640) -> list[np.ndarray]:
    """All train images under root/*/train as RGB uint8, scaled so min_side <= short side, long side <= max_side."""
    import cv2
    from PIL import Image

    images = []
    for path in sorted(root.glob("*/train/*")):
        if path.suffix.lower() not in (".png", ".jpg", ".jpeg", ".bmp", ".webp"):
            continue
        img = np.asarray(Image.open(path).convert("RGB"))
        h, w = img.shape[:2]
        s = max(min_side / min(h, w), 1.0)
        s = min(s, max(max_side / max(h, w), min_side / min(h, w)))
        if s != 1.0:
            img = cv2.resize(img, (round(w * s), round(h * s)), interpolation=cv2.INTER_AREA if s < 1 else cv2.INTER_CUBIC)
        images.append(np.ascontiguousarray(img))
    if not images:
        raise FileNotFoundError(f"no training images found under {root}/*/train")
    return images


class CaseStream(torch.utils.data.IterableDataset):
    """Endless batches (x float (B, 3, S, S) in [-1, 1], mask float (B, 1, S, S))."""

    def __init__(self, images: list[np.ndarray], crop: int, batch: int, seed: int) -> None:
        self.images, self.crop, self.batch, self.seed = images, crop, batch, seed

    def _crop(self, rng: np.random.Generator) -> np.ndarray:
        import cv2

        img = self.images[int(rng.integers(len(self.images)))]
        h, w = img.shape[:2]
        s = rng.uniform(self.crop / min(h, w), 1.0) if min(h, w) > self.crop else 1.0
        if s < 0.999 and rng.random() < 0.5:
            img = cv2.resize(img, (max(self.crop, round(w * s)), max(self.crop, round(h * s))), interpolation=cv2.INTER_AREA)
            h, w = img.shape[:2]
        y, x = int(rng.integers(0, h - self.crop + 1)), int(rng.integers(0, w - self.crop + 1))
        c = img[y : y + self.crop, x : x + self.crop]
        if rng.random() < 0.5:
            c = c[:, ::-1]
        return np.ascontiguousarray(c)

    def __iter__(self):
        import cv2

        cv2.setNumThreads(1)
        torch.set_num_threads(1)
        info = torch.utils.data.get_worker_info()
        rng = np.random.default_rng([self.seed, info.id if info else 0])
        while True:
            xs, ms = [], []
            for _ in range(self.batch):
                out, mask, *_ = random_case(self._crop(rng), rng)
                xs.append(out)
                ms.append(mask)
            x = torch.from_numpy(np.stack(xs)).permute(0, 3, 1, 2).float() / 127.5 - 1
            m = torch.from_numpy(np.stack(ms)).float()[:, None]
            yield x, m


def seg_loss(logits: torch.Tensor, target: torch.Tensor) -> dict[str, torch.Tensor]:
    bce = F.binary_cross_entropy_with_logits(logits, target)
    p = torch.sigmoid(logits)
    inter = (p * target).sum()
    dice = 1 - (2 * inter + 1) / (p.sum() + target.sum() + 1)
    return {"bce": bce, "dice": dice, "total": bce + 0.5 * dice}


def train(cfg: TrainConfig) -> None:
    import cv2

    cv2.setNumThreads(1)  # no OpenCV thread pool: the data worker is forked
    torch.set_num_threads(cfg.threads)
    torch.manual_seed(cfg.seed)
    images = load_images(Path(cfg.data), cfg.crop)
    stream = CaseStream(images, cfg.crop, cfg.batch, cfg.seed)
    loader = torch.utils.data.DataLoader(stream, batch_size=None, num_workers=1, prefetch_factor=4, persistent_workers=True)
    model = MosaicSegNet(fold=cfg.fold, base=cfg.base, depth=cfg.depth)
    if cfg.init:
        from tessera.models.segnet import load_segnet, segnet_kwargs

        start = load_segnet(cfg.init)
        if segnet_kwargs(start) != segnet_kwargs(model):
            raise ValueError(f"{cfg.init} has kwargs {segnet_kwargs(start)}, not {segnet_kwargs(model)}")
        model.load_state_dict(start.state_dict())
        from safetensors import safe_open

        with safe_open(cfg.init, framework="pt") as f:
            meta = f.metadata() or {}
        prior_steps, prior_hours = int(json.loads(meta.get("steps", "0"))), float(json.loads(meta.get("hours", "0")))
    else:
        prior_steps, prior_hours = 0, 0.0
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=1e-4)
    Path(cfg.log).parent.mkdir(parents=True, exist_ok=True)
    Path(cfg.out).parent.mkdir(parents=True, exist_ok=True)
    from tessera.io.image import open_append

    log = open_append(cfg.log)  # never through a link
    log.write(json.dumps({"config": asdict(cfg), "images": len(images)}) + "\n")
    log.flush()
    t0 = time.time()
    avg: dict[str, float] = {}
    for step, (x, m) in enumerate(loader, start=1):
        model.train()
        losses = seg_loss(model(x), m)
        opt.zero_grad(set_to_none=True)
        losses["total"].backward()
        opt.step()
        # cosine schedule over wall time (the run ends at max_hours or steps, whichever first)
        frac = max((time.time() - t0) / (3600 * cfg.max_hours), step / cfg.steps)
        for group in opt.param_groups:
            group["lr"] = cfg.lr * min(1.0, step / 200) * (0.02 + 0.98 * 0.5 * (1 + np.cos(np.pi * min(frac, 1.0))))
        for k, v in losses.items():
            avg[k] = 0.98 * avg.get(k, float(v.detach())) + 0.02 * float(v.detach())
        done = step >= cfg.steps or (time.time() - t0) / 3600 > cfg.max_hours
        if step % 25 == 0:
            print(f"step {step} {time.time() - t0:.0f}s " + " ".join(f"{k}={v:.4f}" for k, v in avg.items()), flush=True)
        if step % cfg.save_every == 0 or done:
            hours = (time.time() - t0) / 3600
            tmp = Path(cfg.out).with_suffix(".tmp")
            save_segnet(
                model,
                tmp,
                extra={"steps": prior_steps + step, "batch": cfg.batch, "crop": cfg.crop, "hours": round(prior_hours + hours, 3)},
            )
            tmp.replace(cfg.out)
            log.write(json.dumps({"step": step, "hours": round(hours, 3), **{k: round(v, 4) for k, v in avg.items()}}) + "\n")
            log.flush()
        if done:
            break
    log.close()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    defaults = TrainConfig()
    for name, value in asdict(defaults).items():
        parser.add_argument("--" + name.replace("_", "-"), type=type(value), default=value)
    args = parser.parse_args(argv)
    train(TrainConfig(**vars(args)))


if __name__ == "__main__":
    main()
