"""Seeded evaluation cases made from a folder of clean photos with the detection benchmark's
generators (:mod:`tessera.mosaic.synth`): each a (clean, degraded, mask, grid) with a name."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tessera.mosaic.region import Grid


@dataclass
class Case:
    name: str
    clean: np.ndarray
    degraded: np.ndarray
    mask: np.ndarray
    grid: Grid | None
    kind: str
    nominal: Grid | None = None  # zoo cases: a lattice of about the right cell size when there is no exact grid


RESTORE_KINDS = ("box", "ellipse", "polygon", "rect", "border")


def load_folder(folder: Path, max_side: int = 512) -> list[tuple[str, np.ndarray]]:
    """Every readable image of a folder, centre-cropped to at most ``max_side`` px a side."""
    from tessera.io.image import ImageReadError, collect_inputs, read_image

    images = []
    for src, rel in collect_inputs([Path(folder)]):
        try:
            rgb, _ = read_image(src)
        except ImageReadError:
            continue
        H, W = rgb.shape[:2]
        y0, x0 = max((H - max_side) // 2, 0), max((W - max_side) // 2, 0)
        images.append((str(rel), np.ascontiguousarray(rgb[y0 : y0 + max_side, x0 : x0 + max_side])))
    return images


def make_cases(
    images: Sequence[tuple[str, np.ndarray]],
    n: int,
    seed: int = 0,
    kinds: Sequence[str] = RESTORE_KINDS,
    jpeg_quality: int | None = None,
) -> list[Case]:
    """``n`` seeded cases, cycling through the images and kinds. Cases whose mask is empty are redrawn."""
    from tessera.mosaic.synth import make_case

    if not images:
        raise ValueError("no readable images to make evaluation cases from")
    rng = np.random.default_rng(seed)
    cases = []
    i = 0
    while len(cases) < n and i < 20 * n:
        name, img = images[i % len(images)]
        kind = kinds[(i // len(images) + i) % len(kinds)]
        i += 1
        degraded, mask, grid = make_case(img, rng, kind, jpeg_quality=jpeg_quality)
        if mask.sum() < 64:
            continue
        cases.append(Case(f"{name}:{kind}", img, degraded, mask, grid, kind))
    return cases


def make_zoo_cases(
    images: Sequence[tuple[str, np.ndarray]], per: int, seed: int = 0, generators: Sequence[str] = (), formats: Sequence[str] = ("png",)
) -> list[Case]:
    """``per`` seeded cases for every generator x format of the zoo (:func:`tessera.mosaic.synth.zoo_case`),
    cycling through the images; named ``IMAGE:GENERATOR:FORMAT``. Each (generator, format) has its own
    seed stream, so adding one leaves the others' cases unchanged."""
    from tessera.mosaic.synth import ZOO, ZOO_FORMATS, zoo_case

    if not images:
        raise ValueError("no readable images to make evaluation cases from")
    bad = [g for g in generators if g not in ZOO] + [f for f in formats if f not in ZOO_FORMATS]
    if bad:
        raise ValueError(f"unknown zoo generator or format: {', '.join(bad)}")
    cases = []
    for gen in generators:
        for fmt in formats:
            # the zoo's own order, not the list's: a run on some generators draws the same cases as the full run
            gi, fi = list(ZOO).index(gen), ZOO_FORMATS.index(fmt)
            rng = np.random.default_rng([seed, gi, fi])
            got, i = 0, gi * 7 + fi * 3  # start at different images per generator and format
            while got < per and i < gi * 7 + fi * 3 + 20 * per:
                name, img = images[i % len(images)]
                i += 1
                c = zoo_case(img, rng, gen, fmt)
                if c.mask.sum() < 64:
                    continue
                cases.append(Case(f"{name}:{gen}:{fmt}", c.clean, c.degraded, c.mask, c.grid, gen, c.nominal))
                got += 1
    return cases
