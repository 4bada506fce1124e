"""Losses and validation metrics. Pure functions of tensors.

Reconstruction losses weigh the hidden pixels (mask = 1) and the visible ones separately:
``hole_mean + valid_weight * valid_mean``, so a small region is not drowned by the many
visible pixels that the caller copies from the input anyway.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def _masked_mean(err: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    w = weight.expand_as(err)
    return (err * w).sum() / w.sum().clamp_min(1.0)


def masked_recon(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor, *, kind: str = "l1", valid_weight: float = 0.1) -> torch.Tensor:
    """L1 or MSE: mean over hidden pixels + ``valid_weight`` * mean over visible pixels."""
    diff = pred.float() - target.float()
    err = diff.abs() if kind == "l1" else diff.square()
    m = mask.float()
    return _masked_mean(err, m) + valid_weight * _masked_mean(err, 1 - m)


def log_mse(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor, *, valid_weight: float = 0.1, eps: float = 1e-5) -> torch.Tensor:
    """Mean over samples of log(MSE over the sample's hidden pixels), + ``valid_weight`` x the same
    over visible pixels: minimizing it maximizes the mean per-image PSNR (what the benchmarks report),
    where a plain MSE over the batch lets the hardest samples (big cells) dominate the gradient."""
    err = (pred.float() - target.float()).square().mean(1, keepdim=True)  # (N, 1, H, W)
    m = mask.float()

    def per_sample(w: torch.Tensor) -> torch.Tensor:
        return (err * w).flatten(1).sum(1) / w.flatten(1).sum(1).clamp_min(1.0)

    return torch.log(per_sample(m) + eps).mean() + valid_weight * torch.log(per_sample(1 - m) + eps).mean()


def composite(pred: torch.Tensor, x_rgb: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """The model's output inside the mask, the input outside."""
    return pred * mask + x_rgb * (1 - mask)


def gan_bce(logits: torch.Tensor, real: bool) -> torch.Tensor:
    """Vanilla GAN loss (pix2pix): binary cross-entropy with logits against all-real or all-fake."""
    target = torch.ones_like(logits) if real else torch.zeros_like(logits)
    return F.binary_cross_entropy_with_logits(logits.float(), target.float())


def patch_weights(mask: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """(N, 1, h, w) weights of a PatchGAN's logits: 1 where the logit's cell of the mask (max-pooled
    to the logit grid) touches the hidden region, else 0. Patches wholly outside the region are
    the same pixels in the real and the composited image, so they carry no signal."""
    return (F.adaptive_max_pool2d(mask.float(), size) > 0).float()


def gan_bce_masked(logits: torch.Tensor, real: bool, weight: torch.Tensor) -> torch.Tensor:
    """:func:`gan_bce` averaged over the patches of ``weight`` (> 0) only (all patches when none)."""
    target = torch.ones_like(logits) if real else torch.zeros_like(logits)
    err = F.binary_cross_entropy_with_logits(logits.float(), target.float(), reduction="none")
    w = weight.float().expand_as(err)
    if float(w.sum()) <= 0:
        return err.mean()
    return (err * w).sum() / w.sum()


def gradient_penalty(critic, real: torch.Tensor, fake: torch.Tensor, *, alpha: torch.Tensor | None = None, generator: torch.Generator | None = None) -> torch.Tensor:
    """WGAN-GP (Gulrajani et al. 2017): E[(||grad_x critic(x_hat)||_2 - 1)^2] at random points
    ``x_hat = alpha * real + (1 - alpha) * fake`` (alpha ~ U(0, 1) per sample unless given)."""
    N = real.shape[0]
    if alpha is None:
        alpha = torch.rand(N, 1, 1, 1, device=real.device, generator=generator)
    alpha = alpha.to(real.dtype).reshape(N, *([1] * (real.dim() - 1)))
    x_hat = (alpha * real.detach() + (1 - alpha) * fake.detach()).requires_grad_(True)
    out = critic(x_hat)
    (grad,) = torch.autograd.grad(out.float().sum(), x_hat, create_graph=True)
    return (grad.flatten(1).norm(2, dim=1) - 1).square().mean()


def feature_matching(real_feats: list[torch.Tensor], fake_feats: list[torch.Tensor]) -> torch.Tensor:
    """Perceptual loss on critic features: mean L1 between each layer's activations for the real
    image (detached) and the generated one, averaged over layers."""
    losses = [(f.float() - r.detach().float()).abs().mean() for r, f in zip(real_feats, fake_feats)]
    return torch.stack(losses).mean()


def masked_feature_matching(real_feats: list[torch.Tensor], fake_feats: list[torch.Tensor], mask: torch.Tensor) -> torch.Tensor:
    """:func:`feature_matching` over the feature positions that see the hidden region (the mask
    max-pooled to each layer's grid), so the loss does not shrink with the region's area."""
    losses = []
    for r, f in zip(real_feats, fake_feats):
        w = patch_weights(mask, f.shape[-2:]).expand_as(f)
        err = (f.float() - r.detach().float()).abs()
        losses.append((err * w).sum() / w.sum().clamp_min(1.0))
    return torch.stack(losses).mean()


# ---------------------------------------------------------------- validation metrics


def masked_psnr(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """PSNR (dB) per image over the hidden pixels only; images in [-1, 1] (peak 2). (N,)"""
    m = mask.float().expand_as(pred)
    mse = ((pred.float() - target.float()).square() * m).flatten(1).sum(1) / m.flatten(1).sum(1).clamp_min(1)
    return 10 * torch.log10(4.0 / mse.clamp_min(1e-10))


def gradient_magnitude(img: torch.Tensor) -> torch.Tensor:
    """(N, 1, H, W) gradient magnitude of the mean of the channels by central differences
    ((x[i+1] - x[i-1]) / 2 per axis); the one-pixel border is 0."""
    g = img.float().mean(1, keepdim=True)
    gx = torch.zeros_like(g)
    gy = torch.zeros_like(g)
    gx[..., :, 1:-1] = (g[..., :, 2:] - g[..., :, :-2]) / 2
    gy[..., 1:-1, :] = (g[..., 2:, :] - g[..., :-2, :]) / 2
    mag = torch.sqrt(gx.square() + gy.square())
    mag[..., 0, :] = 0
    mag[..., -1, :] = 0
    mag[..., :, 0] = 0
    mag[..., :, -1] = 0
    return mag


def masked_detail_ratio(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Per image: mean gradient magnitude inside the hidden region, ``pred`` / ``target``
    (1.0 = as much fine detail as the photo; a blurry restoration is below 1). (N,)"""
    m = mask.float()
    area = m.flatten(1).sum(1).clamp_min(1)
    a = (gradient_magnitude(pred) * m).flatten(1).sum(1) / area
    b = (gradient_magnitude(target) * m).flatten(1).sum(1) / area
    return a / b.clamp_min(1e-8)


def masked_ssim(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor, window: int = 11) -> torch.Tensor:
    """Mean SSIM (Gaussian window, on [0, 1] images) per image over the hidden pixels. (N,)"""
    from kornia.metrics import ssim

    smap = ssim((pred.float() + 1) / 2, (target.float() + 1) / 2, window, max_val=1.0)  # (N, 3, H, W)
    m = mask.float().expand_as(smap)
    return (smap * m).flatten(1).sum(1) / m.flatten(1).sum(1).clamp_min(1)
