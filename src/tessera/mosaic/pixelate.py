"""Pixelation: replace the cells of a lattice by one colour each, inside a region.

The lattice has cells of ``cell = (h, w)`` pixels whose edges lie on rows
``phase_y + k * h`` and columns ``phase_x + k * w``; cells cut by the image border are
kept partial. A cell is mosaicked when its *centre pixel* lies in the region, where the
centre of the (border-clipped) cell spanning rows ``[y0, y1)`` is row ``(y0 + y1 - 1) // 2``.

Sampling ``mean`` fills a cell with its pixels' mean, rounded half up, per channel;
``centre`` copies its centre pixel. ``feather=N`` blends the mosaic into the surroundings
over N pixels (Chebyshev distance; weight ``(N + 1 - d) / (N + 1)``), computed in integers
so the numpy and torch versions agree bit for bit. ``blur=sigma`` replaces the region with
a Gaussian blur instead of cells.

Both versions return the new image and the mask of pixels that pixelation replaced or
blended (every other pixel is byte-identical to the input).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import cv2
import numpy as np

from tessera.mosaic.lattice import Lattice, lattice, point
from tessera.mosaic.masks import Box, region_mask
from tessera.mosaic.region import POINT_SAMPLINGS, SAMPLINGS, Grid

CellArg = int | Sequence[int]


def as_pair(value: CellArg, what: str) -> tuple[int, int]:
    """``12`` -> (12, 12); ``(12, 18)`` -> (12, 18); validates positivity."""
    if isinstance(value, (int, np.integer)):
        pair = (int(value), int(value))
    else:
        vals = tuple(int(v) for v in value)
        if len(vals) != 2:
            raise ValueError(f"{what} needs one or two numbers, got {value!r}")
        pair = (vals[0], vals[1])
    return pair


def check_cell(cell: CellArg) -> tuple[int, int]:
    ch, cw = as_pair(cell, "cell")
    if ch < 1 or cw < 1:
        raise ValueError(f"cell size must be at least 1 pixel, got {ch}x{cw}")
    return ch, cw


def feather_weight(selected: np.ndarray, feather: int) -> np.ndarray:
    """Integer blend weight 0..feather+1 (feather+1 = fully mosaicked) from a bool mask: the number
    of k in 0..feather whose k-dilation (a (2k+1)-square) covers the pixel, i.e.
    ``max(0, feather + 1 - d)`` for the Chebyshev distance d to the mask. One exact chessboard
    distance transform, so the cost does not grow with ``feather``."""
    if feather <= 0 or not selected.any():
        return selected.astype(np.int64)
    dist = cv2.distanceTransform((~selected).astype(np.uint8), cv2.DIST_C, 3)  # exact integers, 0 inside
    return np.clip(feather + 1 - dist, 0, feather + 1).astype(np.int64)


def _blend(image: np.ndarray, effect: np.ndarray, weight: np.ndarray, feather: int) -> np.ndarray:
    n = feather + 1
    w = weight[..., None]
    out = (w * effect.astype(np.int64) + (n - w) * image.astype(np.int64) + n // 2) // n
    return out.astype(image.dtype)


def _lattice(shape: tuple[int, int], cell: tuple[int, int], phase: tuple[int, int]) -> Lattice:
    return Lattice(shape, Grid(cell[0], cell[1], phase[0] % cell[0], phase[1] % cell[1]))


def cell_image(image: np.ndarray, cell: tuple[int, int], phase: tuple[int, int], sampling: str) -> np.ndarray:
    """The whole image turned into cells (every cell mosaicked)."""
    lat = _lattice(image.shape[:2], cell, phase)
    if sampling in POINT_SAMPLINGS:
        rows, cols = lat.samples(sampling)
        values = image[rows][:, cols]
    elif sampling == "mean":
        values = lat.rounded_means(image)
    else:
        raise ValueError(f"sampling must be one of {', '.join(SAMPLINGS)}, got {sampling!r}")
    return lat.expand(values.astype(image.dtype))  # cast per cell, then expand: no (H, W, C) int64


def selected_cells(region: np.ndarray, cell: tuple[int, int], phase: tuple[int, int]) -> np.ndarray:
    """Pixels of the cells whose centre pixel lies in ``region``."""
    return _lattice(region.shape, cell, phase).selected(region)


def pixelate(
    image: np.ndarray,
    mask: np.ndarray | None = None,
    *,
    boxes: Iterable[Box] = (),
    ellipses: Iterable[Box] = (),
    cell: CellArg = 12,
    phase: Sequence[int] = (0, 0),
    sampling: str = "mean",
    feather: int = 0,
    blur: float | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Mosaic (or blur) the region given by ``mask`` | ``boxes`` | ``ellipses`` (the whole
    image when none is given).

    image: uint8 (H, W, C). Returns ``(new_image, changed)`` with ``changed`` a bool (H, W)
    mask: outside it the new image is byte-identical to ``image``.
    """
    image = np.asarray(image)
    if image.ndim != 3 or image.dtype != np.uint8:
        raise ValueError(f"image must be uint8 (H, W, C), got {image.dtype} {image.shape}")
    H, W = image.shape[:2]
    if H == 0 or W == 0:
        raise ValueError("image is empty (0 pixels)")
    if feather < 0:
        raise ValueError(f"feather must be >= 0, got {feather}")
    feather = int(feather)
    region = region_mask((H, W), mask=mask, boxes=boxes, ellipses=ellipses)

    # Memory stays near 10 bytes per pixel (input, output, masks): the effect is computed only on the
    # bounding box of the selected pixels (+ feather, aligned to whole cells or padded by the blur
    # kernel), and blended in strips of rows in small integers.
    if blur is not None:
        if not (np.isfinite(blur) and blur > 0):
            raise ValueError(f"blur sigma must be a finite number > 0, got {blur}")
        selected = region
    else:
        ch, cw = check_cell(cell)
        py, px = as_pair(phase, "phase")
        grid_phase = (py % ch, px % cw)
        selected = selected_cells(region, (ch, cw), grid_phase)
    del region
    out = image.copy()
    rows = np.flatnonzero(selected.any(axis=1))
    if rows.size == 0:
        return out, selected
    cols = np.flatnonzero(selected.any(axis=0))
    y0, y1 = max(0, int(rows[0]) - feather), min(H, int(rows[-1]) + 1 + feather)
    x0, x1 = max(0, int(cols[0]) - feather), min(W, int(cols[-1]) + 1 + feather)
    weight = _small_weight(selected[y0:y1, x0:x1], feather)  # (h, w): bool, or uint16 0..feather+1
    if blur is None:
        ey0, ey1 = _cell_span(y0, y1, ch, grid_phase[0], H)
        ex0, ex1 = _cell_span(x0, x1, cw, grid_phase[1], W)
        crop = image[ey0:ey1, ex0:ex1]
        effect = cell_image(crop, (ch, cw), ((grid_phase[0] - ey0) % ch, (grid_phase[1] - ex0) % cw), sampling)
    else:
        ey0, ex0 = y0, x0
        effect = _blur_crop(image, (y0, y1, x0, x1), float(blur))
        if effect.ndim == 2:
            effect = effect[..., None]
    effect = effect[y0 - ey0 : y1 - ey0, x0 - ex0 : x1 - ex0]
    n = feather + 1
    step = max(1, (1 << 22) // max(1, (x1 - x0) * image.shape[2]))  # about 4 M values per strip
    for s0 in range(0, y1 - y0, step):
        s1 = min(y1 - y0, s0 + step)
        w = weight[s0:s1, :, None]
        img = image[y0 + s0 : y0 + s1, x0:x1]
        if feather == 0:
            blended = np.where(w, effect[s0:s1], img)
        else:  # (w * effect + (n - w) * image + n // 2) // n, rounded as the torch version does
            wi = w.astype(np.int32)
            blended = ((wi * effect[s0:s1] + (n - wi) * img.astype(np.int32) + n // 2) // n).astype(image.dtype)
        out[y0 + s0 : y0 + s1, x0:x1] = blended
    changed = np.zeros((H, W), bool)
    changed[y0:y1, x0:x1] = weight if feather == 0 else weight > 0
    return out, changed


def _small_weight(selected: np.ndarray, feather: int) -> np.ndarray:
    """:func:`feather_weight` in few bytes: the bool mask itself without feather, else uint16."""
    if feather == 0:
        return selected
    dist = cv2.distanceTransform((~selected).astype(np.uint8), cv2.DIST_C, 3)  # float32, exact integers
    np.subtract(feather + 1, dist, out=dist)
    np.clip(dist, 0, feather + 1, out=dist)
    return dist.astype(np.uint16)


def _cell_span(a: int, b: int, cell: int, phase: int, n: int) -> tuple[int, int]:
    """The smallest [start, end) made of whole cells (edges at phase + k * cell, clipped to 0..n) that holds [a, b)."""
    start = a - ((a - phase) % cell)
    end = b + ((phase - b) % cell)
    return max(0, start), min(n, end)


def _blur_crop(image: np.ndarray, box: tuple[int, int, int, int], sigma: float) -> np.ndarray:
    """cv2.GaussianBlur(image, BORDER_REFLECT_101) on the box only: the crop is padded by reflecting
    the image where the box touches its border and by the image's own pixels elsewhere."""
    y0, y1, x0, x1 = box
    H, W = image.shape[:2]
    k = int(np.ceil(4 * sigma)) + 2
    ry0, ry1, rx0, rx1 = max(0, y0 - k), min(H, y1 + k), max(0, x0 - k), min(W, x1 + k)
    src = image[ry0:ry1, rx0:rx1]
    top, bottom = k - (y0 - ry0), k - (ry1 - y1)
    left, right = k - (x0 - rx0), k - (rx1 - x1)
    if top or bottom or left or right:  # only at the image's border, where BORDER_REFLECT_101 applies
        src = cv2.copyMakeBorder(src, top, bottom, left, right, cv2.BORDER_REFLECT_101)
    out = cv2.GaussianBlur(src, (0, 0), sigmaX=sigma, sigmaY=sigma, borderType=cv2.BORDER_REFLECT_101)
    return out[k : k + (y1 - y0), k : k + (x1 - x0)]


# --------------------------------------------------------------------------- torch


def pixelate_torch(
    images,
    masks,
    *,
    cell: CellArg | Sequence[CellArg] = 12,
    phase: Sequence[int] | Sequence[Sequence[int]] = (0, 0),
    sampling: str | Sequence[str] = "mean",
    feather: int | Sequence[int] = 0,
):
    """Batched pixelation on any torch device, for training data.

    images: (N, C, H, W) uint8 (bit-exact with :func:`pixelate`) or float (no rounding).
    masks: (N, H, W) bool regions. ``cell``, ``phase``, ``sampling`` and ``feather`` are
    one value for the batch or one per sample. Returns ``(new_images, changed (N, H, W) bool)``.
    """
    import torch
    import torch.nn.functional as F

    N, C, H, W = images.shape
    if masks.shape != (N, H, W):
        raise ValueError(f"masks must be (N, H, W) = {(N, H, W)}, got {tuple(masks.shape)}")

    def per_sample(value, is_scalar):
        return [value] * N if is_scalar(value) else list(value)

    cells = per_sample(cell, lambda v: isinstance(v, (int, np.integer)) or (len(v) == 2 and isinstance(v[0], (int, np.integer))))
    phases = per_sample(phase, lambda v: len(v) == 2 and isinstance(v[0], (int, np.integer)))
    samplings = per_sample(sampling, lambda v: isinstance(v, str))
    feathers = per_sample(feather, lambda v: isinstance(v, (int, np.integer)))
    if not (len(cells) == len(phases) == len(samplings) == len(feathers) == N):
        raise ValueError("per-sample cell/phase/sampling/feather lists must have one entry per image")

    exact = images.dtype == torch.uint8
    device = images.device
    outs, changed = [], []
    for i in range(N):
        ch, cw = check_cell(cells[i])
        py, px = as_pair(phases[i], "phase")
        py, px = py % ch, px % cw
        rows, cols = lattice(H, ch, py), lattice(W, cw, px)
        ri, rs, re, rc = (torch.as_tensor(a, device=device) for a in rows)
        ci, cs, ce, cc = (torch.as_tensor(a, device=device) for a in cols)
        img = images[i]
        # 1. cell values, (C, nR, nC)
        if samplings[i] in POINT_SAMPLINGS:
            pr = torch.as_tensor(point(rows[1], rows[2], samplings[i]), device=device)
            pc = torch.as_tensor(point(cols[1], cols[2], samplings[i]), device=device)
            values = img[:, pr][:, :, pc]
        elif samplings[i] == "mean":
            nR, nC = rs.numel(), cs.numel()
            cell_id = (ri[:, None] * nC + ci[None, :]).reshape(-1)  # (H*W,)
            acc = torch.int64 if exact else img.dtype
            sums = torch.zeros(C, nR * nC, dtype=acc, device=device)
            sums.index_add_(1, cell_id, img.reshape(C, -1).to(acc))
            counts = ((re - rs)[:, None] * (ce - cs)[None, :]).reshape(1, -1)
            values = (2 * sums + counts) // (2 * counts) if exact else sums / counts
            values = values.reshape(C, nR, nC)
        else:
            raise ValueError(f"sampling must be one of {', '.join(SAMPLINGS)}, got {samplings[i]!r}")
        effect = values[:, ri][:, :, ci]  # (C, H, W)
        # 2. cells whose centre pixel is in the region
        sel = masks[i][rc][:, cc][ri][:, ci]
        # 3. feathered blend in integers
        n = int(feathers[i]) + 1
        sel_f = sel.to(torch.float32)[None, None]
        weight = sel.to(torch.int64)
        for k in range(1, n):
            weight = weight + F.max_pool2d(sel_f, 2 * k + 1, stride=1, padding=k)[0, 0].to(torch.int64)
        if exact:
            out = (weight * effect.to(torch.int64) + (n - weight) * img.to(torch.int64) + n // 2) // n
            out = out.to(torch.uint8)
        else:
            wf = weight.to(img.dtype) / n
            out = wf * effect + (1 - wf) * img
        m = weight > 0
        out = torch.where(m[None], out, img)
        outs.append(out)
        changed.append(m)
    return torch.stack(outs), torch.stack(changed)
