"""Make docs/gan_compare.png: held-out mosaics (faces/val, scenes/val) restored by the fidelity
model and by its GAN fine-tune, beside the original, cut around the region at 2x.

    python scripts/make_gan_figure.py [--faces faces,faces-gan] [--scenes scenes,scenes-gan] [--rows 2]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from tessera.evaluate import load_folder, make_cases
from tessera.restore.pipeline import restore_image
from tessera.restore.restorer import from_spec

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--faces", default="faces,faces-gan", help="fidelity,GAN model names or .safetensors paths")
    ap.add_argument("--scenes", default="scenes,scenes-gan")
    ap.add_argument("--rows", type=int, default=2, help="cases per set")
    ap.add_argument("--size", type=int, default=200, help="tile side in the figure")
    ap.add_argument("--seed", type=int, default=3)
    ap.add_argument("--out", type=Path, default=ROOT / "docs" / "gan_compare.png")
    args = ap.parse_args()
    rows = []
    for set_name, spec in (("faces", args.faces), ("scenes", args.scenes)):
        if not spec:  # "" leaves the set out
            continue
        fid, gan = spec.split(",")
        cases = [c for c in make_cases(load_folder(DATA / set_name / "val"), 12, args.seed, kinds=("box", "ellipse"))
                 if c.grid is not None and c.grid.sampling == "mean"][: args.rows]
        for c in cases:
            outs = [restore_image(c.degraded, c.mask, restorer=from_spec(m), grid=c.grid, kind="mosaic").image for m in (fid, gan)]
            ys, xs = np.nonzero(c.mask)
            half = max(ys.max() - ys.min(), xs.max() - xs.min()) // 2 + 12
            cy, cx = (ys.min() + ys.max()) // 2, (xs.min() + xs.max()) // 2
            H, W = c.mask.shape
            y0, y1, x0, x1 = max(cy - half, 0), min(cy + half, H), max(cx - half, 0), min(cx + half, W)
            rows.append([t[y0:y1, x0:x1] for t in (c.degraded, *outs, c.clean)])
    labels = ["mosaic (input)", "fidelity model", "GAN fine-tune (imagined)", "original (hidden)"]
    s, gap, top = args.size, 6, 20
    sheet = Image.new("RGB", (4 * s + 3 * gap, top + len(rows) * (s + gap)), "white")
    d = ImageDraw.Draw(sheet)
    for j, label in enumerate(labels):
        d.text((j * (s + gap) + 4, 4), label, fill="black")
    for i, tiles in enumerate(rows):
        for j, t in enumerate(tiles):
            im = Image.fromarray(np.ascontiguousarray(t)).resize((s, s), Image.Resampling.NEAREST)
            sheet.paste(im, (j * (s + gap), top + i * (s + gap)))
    sheet.save(args.out)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
