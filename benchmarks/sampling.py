"""Unknown cell sampling: what restore_image(sampling='auto') picks, and what a wrong pick costs.

On seeded cases from the *train* folders (the threshold `SAMPLING_RATIO` was chosen on these, so the
val benchmark stays unbiased), with the true mask and lattice but the sampling hidden, each folder's
own model restores every case four ways: the true sampling, forced 'mean', forced 'centre', and
'auto'. Writes its section of benchmarks/RESULTS.md (between the '<!-- sampling -->' markers).

    python -m benchmarks.sampling [--cases 30]
"""

from __future__ import annotations

import argparse
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
from benchmarks._results import write_section
from benchmarks.restore import machine

from tessera.evaluate import load_folder, make_cases, psnr
from tessera.restore.pipeline import SAMPLING_RATIO, restore_image

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cases", type=int, default=30)
    args = ap.parse_args()
    rows = ["| folder (model) | cases | true sampling | forced mean | forced centre | auto | auto picks right |", "|---|---|---|---|---|---|---|"]
    t0 = time.time()
    for folder in ("faces", "scenes"):
        cases = [c for c in make_cases(load_folder(DATA / folder / "train"), args.cases, seed=1) if c.grid is not None]
        scores: dict[str, list[float]] = {"true": [], "mean": [], "centre": [], "auto": []}
        right = []
        for c in cases:
            for how in scores:
                sampling = c.grid.sampling if how == "true" else how
                res = restore_image(c.degraded, c.mask, model=folder, grid=replace(c.grid, sampling="mean"), kind="mosaic", sampling=sampling)
                scores[how].append(psnr(res.image, c.clean, c.mask))
                if how == "auto":
                    right.append(res.regions[0].grid.sampling == c.grid.sampling)
            print(c.name, c.grid.sampling, " ".join(f"{k}={v[-1]:.2f}" for k, v in scores.items()), flush=True)
        m = {k: float(np.mean(v)) for k, v in scores.items()}
        rows.append(f"| {folder}/train ({folder}) | {len(cases)} | {m['true']:.2f} | {m['mean']:.2f} | {m['centre']:.2f} | {m['auto']:.2f} | {100 * np.mean(right):.0f}% |")
    text = (
        "## Unknown cell sampling (`benchmarks/sampling.py`)\n\n"
        f"Machine: {machine()}. Seeded cases from the train folders (seed 1; 60 % mean, 40 % centre sampled), true mask "
        f"and lattice, sampling hidden; mean PSNR (dB) inside the region. `auto` runs the model once, projects its output under both and keeps 'mean' "
        f"only when the 'centre' projection needs at least {SAMPLING_RATIO} of the correction the 'mean' one needs. "
        f"{time.time() - t0:.0f} s.\n\n" + "\n".join(rows) + "\n"
    )
    print(text)
    write_section(text, "<!-- sampling -->", "<!-- /sampling -->")


if __name__ == "__main__":
    main()
