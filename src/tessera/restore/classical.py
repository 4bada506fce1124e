"""Classical restorers, the baselines every learned model must beat.

telea, ns: OpenCV inpainting (Telea's fast marching; Navier-Stokes), which ignore what is under the mask.
smooth:    grid-aware interpolation: every mosaic cell value is put at its cell's centre and the
           image is interpolated between the centres with a cubic (Keys, a = -0.5) kernel. Without a
           known grid it falls back to telea.

Each has the restorer signature ``(image uint8 (H,W,3), mask bool (H,W), grid | None) -> uint8 (H,W,3)``.
"""

from __future__ import annotations

import cv2
import numpy as np

from tessera.mosaic.lattice import Lattice
from tessera.mosaic.region import Grid, is_point


def telea(image: np.ndarray, mask: np.ndarray, grid: Grid | None = None, radius: int = 5) -> np.ndarray:
    if not mask.any():
        return image.copy()
    return cv2.inpaint(np.ascontiguousarray(image), mask.astype(np.uint8) * 255, radius, cv2.INPAINT_TELEA)


def ns(image: np.ndarray, mask: np.ndarray, grid: Grid | None = None, radius: int = 5) -> np.ndarray:
    if not mask.any():
        return image.copy()
    return cv2.inpaint(np.ascontiguousarray(image), mask.astype(np.uint8) * 255, radius, cv2.INPAINT_NS)


def _keys(t: np.ndarray, a: float = -0.5) -> np.ndarray:
    t = np.abs(t)
    return np.where(
        t <= 1,
        (a + 2) * t**3 - (a + 3) * t**2 + 1,
        np.where(t < 2, a * t**3 - 5 * a * t**2 + 8 * a * t - 4 * a, 0.0),
    )


def cubic_matrix(n: int, centres: np.ndarray) -> np.ndarray:
    """(n, k) weights interpolating values given at (increasing) ``centres`` onto pixels 0..n-1
    with a cubic kernel; positions outside the first/last centre take the edge value."""
    k = len(centres)
    M = np.zeros((n, k))
    if k == 1:
        M[:, 0] = 1
        return M
    pos = np.clip(np.arange(n, dtype=np.float64), centres[0], centres[-1])
    j = np.clip(np.searchsorted(centres, pos, side="right") - 1, 0, k - 2)
    t = (pos - centres[j]) / np.maximum(centres[j + 1] - centres[j], 1e-9)
    rows = np.arange(n)
    for off in (-1, 0, 1, 2):
        idx = np.clip(j + off, 0, k - 1)
        np.add.at(M, (rows, idx), _keys(t - off))
    return M / M.sum(axis=1, keepdims=True)


def smooth(image: np.ndarray, mask: np.ndarray, grid: Grid | None = None) -> np.ndarray:
    if not mask.any():
        return image.copy()
    if grid is None:
        return telea(image, mask)
    H, W = mask.shape
    cells = Lattice((H, W), grid)
    values = cells.values(image)
    ry, rx = cells.positions()
    out = np.einsum("hr,rcz,wc->hwz", cubic_matrix(H, ry), values, cubic_matrix(W, rx), optimize=True)
    out = np.clip(np.rint(out), 0, 255).astype(np.uint8)
    return np.where(mask[..., None], out, image)


CLASSICAL = {"telea": telea, "ns": ns, "smooth": smooth}


def smooth_torch(degraded, mask, cells, phases, samplings):
    """Batched :func:`smooth` for training data on any torch device: inside ``mask`` every image of
    ``degraded`` (N, 3, H, W) float in any range) is replaced by the cubic interpolation of its
    cell values. ``cells``/``phases``/``samplings`` give one grid per image; images whose cell is
    None are returned unchanged. Agrees with the numpy version up to float rounding."""
    import torch

    N, C, H, W = degraded.shape
    out = degraded.clone()
    for i in range(N):
        if cells[i] is None:
            continue
        grid = Grid(int(cells[i][0]), int(cells[i][1]), int(phases[i][0]) % int(cells[i][0]), int(phases[i][1]) % int(cells[i][1]), samplings[i])
        lat = Lattice((H, W), grid)
        img = degraded[i].to(torch.float64)
        dev = img.device
        if is_point(grid.sampling):
            values = img[:, torch.as_tensor(lat.sr, device=dev)][:, :, torch.as_tensor(lat.sc, device=dev)]
        else:
            nR, nC = lat.shape
            My = torch.zeros(nR, H, dtype=torch.float64, device=dev)
            My[torch.as_tensor(lat.ri, device=dev), torch.arange(H, device=dev)] = 1.0
            Mx = torch.zeros(nC, W, dtype=torch.float64, device=dev)
            Mx[torch.as_tensor(lat.ci, device=dev), torch.arange(W, device=dev)] = 1.0
            counts = torch.as_tensor(lat.counts.astype(np.float64), device=dev)
            values = torch.einsum("rh,chw,kw->crk", My, img, Mx) / counts
        ry, rx = lat.positions()
        Ay = torch.as_tensor(cubic_matrix(H, ry), device=dev)
        Ax = torch.as_tensor(cubic_matrix(W, rx), device=dev)
        filled = torch.einsum("hr,crk,wk->chw", Ay, values, Ax)
        if not degraded.dtype.is_floating_point:
            filled = filled.round().clamp(0, 255)
        filled = filled.to(degraded.dtype)
        out[i] = torch.where(mask[i][None].bool(), filled, degraded[i])
    return out
