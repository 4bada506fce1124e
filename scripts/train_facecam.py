"""Train FaceCAM (tessera.models.facecam), the face / no-face classifier behind `anonymize --find cam`.

    nice python scripts/train_facecam.py --steps 1500 --out src/tessera/weights/facecam.safetensors

Positives: faces/train crops, either the whole crop resized to 64x64 or pasted at 24-64 px into a
64x64 scenes/train crop (so the map learns *where* the face is). Negatives: 64x64 scenes/train
crops at random scales. Validation: faces/val crops vs scenes/val crops (accuracy). Seeded.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
S = 64


def _load_all(folder: Path, long: int) -> list[np.ndarray]:
    out = []
    for p in sorted(folder.iterdir()):
        if p.suffix.lower() not in (".jpg", ".jpeg", ".png"):
            continue
        im = Image.open(p).convert("RGB")
        s = long / max(im.size)
        if s < 1:
            im = im.resize((max(S, round(im.width * s)), max(S, round(im.height * s))), Image.BILINEAR)
        out.append(np.asarray(im))
    return out


def _scene_crop(rng, scenes, size=S) -> np.ndarray:
    im = scenes[rng.integers(len(scenes))]
    H, W = im.shape[:2]
    c = int(rng.integers(size, max(size + 1, min(H, W) // 2 + 1)))  # a crop of c px, resized to `size`
    c = min(c, H, W)
    y, x = int(rng.integers(0, H - c + 1)), int(rng.integers(0, W - c + 1))
    return np.asarray(Image.fromarray(im[y : y + c, x : x + c]).resize((size, size), Image.BILINEAR))


def batch(rng, faces, scenes, n):
    xs, ys = [], []
    for _ in range(n):
        if rng.random() < 0.5:
            xs.append(_scene_crop(rng, scenes))
            ys.append(0.0)
            continue
        f = Image.fromarray(faces[rng.integers(len(faces))])
        if rng.random() < 0.5:
            xs.append(np.asarray(f.resize((S, S), Image.BILINEAR)))
        else:
            bg = _scene_crop(rng, scenes).copy()
            s = int(rng.integers(24, S + 1))
            x, y = int(rng.integers(0, S - s + 1)), int(rng.integers(0, S - s + 1))
            bg[y : y + s, x : x + s] = np.asarray(f.resize((s, s), Image.BILINEAR))
            xs.append(bg)
        ys.append(1.0)
    x = torch.from_numpy(np.stack(xs)).permute(0, 3, 1, 2).float() / 127.5 - 1
    if rng.random() < 0.5:
        x = x.flip(3)
    return x, torch.tensor(ys)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=1500)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--lr", type=float, default=3e-3)
    ap.add_argument("--width", type=int, default=16)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args()
    from tessera.models.facecam import FaceCAM
    from tessera.weights import save

    torch.manual_seed(args.seed)
    torch.set_num_threads(1)
    rng = np.random.default_rng(args.seed)
    t0 = time.time()
    faces = _load_all(DATA / "faces" / "train", 96)
    scenes = _load_all(DATA / "scenes" / "train", 320)
    vfaces = [np.asarray(Image.fromarray(f).resize((S, S), Image.BILINEAR)) for f in _load_all(DATA / "faces" / "val", 96)]
    vscenes = _load_all(DATA / "scenes" / "val", 320)
    vr = np.random.default_rng(99)
    vneg = [_scene_crop(vr, vscenes) for _ in range(len(vfaces))]
    print(f"data: {len(faces)} faces, {len(scenes)} scenes ({time.time() - t0:.0f} s)", flush=True)
    kwargs = {"width": args.width, "depth": 4}
    net = FaceCAM(**kwargs)
    opt = torch.optim.AdamW(net.parameters(), lr=args.lr, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=args.lr, total_steps=args.steps, pct_start=0.1)
    lossf = torch.nn.BCEWithLogitsLoss()
    run = 0.0
    for step in range(1, args.steps + 1):
        x, y = batch(rng, faces, scenes, args.batch)
        loss = lossf(net(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        run = 0.98 * run + 0.02 * loss.item() if step > 1 else loss.item()
        if step % 100 == 0:
            print(f"step {step} loss {run:.4f} ({time.time() - t0:.0f} s)", flush=True)
    net.eval()
    with torch.no_grad():
        v = torch.from_numpy(np.stack(vfaces + vneg)).permute(0, 3, 1, 2).float() / 127.5 - 1
        pred = (net(v) > 0).numpy()
    truth = np.array([1] * len(vfaces) + [0] * len(vneg), bool)
    acc = float((pred == truth).mean())
    tpr, tnr = float(pred[truth].mean()), float((~pred[~truth]).mean())
    hours = (time.time() - t0) / 3600
    print(f"val accuracy {acc:.4f} (faces {tpr:.4f}, scenes {tnr:.4f}); {hours * 60:.1f} min", flush=True)
    save(net, args.out, "facecam", kwargs, {"steps": args.steps, "batch": args.batch, "val_accuracy": round(acc, 4), "val_face_recall": round(tpr, 4), "val_scene_specificity": round(tnr, 4), "minutes": round(hours * 60, 1)})


if __name__ == "__main__":
    main()
