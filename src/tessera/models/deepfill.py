"""DeepFill (Yu et al. 2018, "Generative Image Inpainting with Contextual Attention"):
a coarse network, then a refinement network whose attention branch copies features from
the visible background into the hole; gated convolutions (DeepFill v2) or plain ones (v1).
WGAN-GP critics (global and local) live here too; the losses are in ``tessera.train.losses``.

``DeepFill.forward(x)`` reads cat([degraded RGB in [-1, 1], mask]) (N, 4, H, W) and returns the
refined image (N, 3, H, W); ``forward(x, return_coarse=True)`` returns ``(refined, coarse)``.
H and W must be multiples of ``size_multiple`` (8).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

# ---------------------------------------------------------------- contextual attention


def _shift_sum(s: torch.Tensor, dim_a: int, dim_b: int, k: int) -> torch.Tensor:
    """Sum ``s`` along the diagonal of dims (a, b): out[.., i, .., j, ..] = sum_d s[.., i+d, .., j+d, ..]
    for d in [-k//2, k//2], zero outside. This propagates attention scores to neighbours."""
    r = k // 2
    pad = [0, 0] * s.dim()
    for dim in (dim_a, dim_b):
        pad[2 * (s.dim() - 1 - dim)] = r
        pad[2 * (s.dim() - 1 - dim) + 1] = r
    p = F.pad(s, pad)
    out = torch.zeros_like(s)
    na, nb = s.shape[dim_a], s.shape[dim_b]
    for d in range(-r, r + 1):
        out = out + p.narrow(dim_a, r + d, na).narrow(dim_b, r + d, nb)
    return out


def contextual_attention(
    foreground: torch.Tensor,
    background: torch.Tensor,
    mask: torch.Tensor,
    *,
    ksize: int = 3,
    rate: int = 2,
    fuse_k: int = 3,
    softmax_scale: float = 10.0,
    return_scores: bool = False,
):
    """Fill ``foreground`` features inside ``mask`` with a mix of background patches.

    foreground, background: (N, C, H, W); mask: (N, 1, H, W), 1 = hole (no background patch
    touching the hole is used). H and W must be multiples of ``rate``.

    1. match: every ``ksize`` x ``ksize`` foreground patch against every valid background patch
       by cosine similarity, at 1/rate resolution;
    2. propagate: sum scores along the diagonal of neighbouring (foreground, background) pairs
       (``fuse_k``), so coherent regions are copied together;
    3. softmax over background patches with ``softmax_scale``;
    4. reconstruct: a transposed convolution with the full-resolution background patches
       (``2*rate`` pixels, stride ``rate``) weighted by the attention, normalized by overlap.
    Returns the reconstructed features (N, C, H, W) (and the attention (N, Hb*Wb, Hf, Wf)).
    """
    N, C, H, W = foreground.shape
    if H % rate or W % rate:
        raise ValueError(f"feature size {H}x{W} must be a multiple of rate {rate}")
    # 0. matching resolution (nearest, as in the paper); a hole anywhere in a cell marks it hole
    if rate > 1:
        f = foreground[:, :, ::rate, ::rate]
        b = background[:, :, ::rate, ::rate]
        m = F.max_pool2d(mask.to(foreground.dtype), rate)
    else:
        f, b, m = foreground, background, mask.to(foreground.dtype)
    h, w = f.shape[-2:]
    L = h * w
    pad = ksize // 2
    # 1. cosine similarity of all patch pairs: (N, Lb, Lf)
    fp = F.unfold(f, ksize, padding=pad)  # (N, C*k*k, Lf)
    bp = F.unfold(b, ksize, padding=pad)  # (N, C*k*k, Lb)
    fp = fp / fp.norm(dim=1, keepdim=True).clamp_min(1e-4)
    bp = bp / bp.norm(dim=1, keepdim=True).clamp_min(1e-4)
    scores = torch.einsum("ncb,ncf->nbf", bp, fp)
    valid = (F.unfold(m, ksize, padding=pad).amax(dim=1) == 0).to(scores.dtype)  # (N, Lb): patch sees no hole
    scores = scores * valid[:, :, None]
    # 2. attention propagation in (hb, wb, hf, wf) space, along x then along y
    if fuse_k > 1:
        s = scores.reshape(N, h, w, h, w)
        s = _shift_sum(s, 2, 4, fuse_k)
        s = _shift_sum(s, 1, 3, fuse_k)
        scores = s.reshape(N, L, L)
    # 3. softmax over the valid background patches
    scores = scores.masked_fill(valid[:, :, None] == 0, float("-inf"))
    attn = torch.softmax(scores * softmax_scale, dim=1)
    attn = torch.nan_to_num(attn, nan=0.0)  # no valid background at all: zeros
    # 4. paste full-resolution background patches with the attention as weights
    K = 2 * rate if rate > 1 else ksize
    kpad = (K - rate) // 2
    raw = F.unfold(background, K, padding=kpad, stride=rate)  # (N, C*K*K, Lb)
    cols = torch.einsum("ncb,nbf->ncf", raw, attn)  # (N, C*K*K, Lf)
    out = F.fold(cols, (H, W), K, padding=kpad, stride=rate)
    ones = torch.ones(1, 1, H, W, dtype=out.dtype, device=out.device)
    overlap = F.fold(F.unfold(ones, K, padding=kpad, stride=rate), (H, W), K, padding=kpad, stride=rate)
    out = out / overlap
    if return_scores:
        return out, attn.reshape(N, L, h, w)
    return out


class ContextualAttention(nn.Module):
    def __init__(self, *, ksize: int = 3, rate: int = 2, fuse_k: int = 3, softmax_scale: float = 10.0) -> None:
        super().__init__()
        self.ksize, self.rate, self.fuse_k, self.softmax_scale = ksize, rate, fuse_k, softmax_scale

    def forward(self, f: torch.Tensor, b: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return contextual_attention(
            f, b, mask, ksize=self.ksize, rate=self.rate, fuse_k=self.fuse_k, softmax_scale=self.softmax_scale
        )


# ---------------------------------------------------------------- generator


class Conv(nn.Module):
    """Gated convolution (features * sigmoid(gate)) or a plain convolution with ELU."""

    def __init__(self, cin: int, cout: int, k: int = 3, stride: int = 1, dilation: int = 1, gated: bool = True, act: bool = True) -> None:
        super().__init__()
        self.gated = gated and act
        self.act = act
        pad = dilation * (k - 1) // 2
        self.conv = nn.Conv2d(cin, cout * (2 if self.gated else 1), k, stride, pad, dilation=dilation)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.conv(x)
        if not self.act:
            return h
        if self.gated:
            feat, gate = h.chunk(2, dim=1)
            return F.elu(feat) * torch.sigmoid(gate)
        return F.elu(h)


class Up(nn.Module):
    """Nearest x2 upsampling then a convolution (no checkerboard)."""

    def __init__(self, cin: int, cout: int, gated: bool) -> None:
        super().__init__()
        self.conv = Conv(cin, cout, 3, gated=gated)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(F.interpolate(x, scale_factor=2, mode="nearest"))


def _dilated(c: int, gated: bool, dilations: tuple[int, ...]) -> list[nn.Module]:
    return [Conv(c, c, 3, dilation=d, gated=gated) for d in dilations]


class DeepFill(nn.Module):
    """Coarse-to-fine inpainting generator with contextual attention.

    base: channels of the first layer (the paper uses 32 for v1, 48 for v2).
    gated: gated convolutions (v2) instead of plain ELU convolutions (v1).
    dilations: the dilated convolutions in the middle of both networks.
    softmax_scale: sharpness of the attention (10 in the paper).
    """

    def __init__(
        self,
        *,
        in_channels: int = 4,
        out_channels: int = 3,
        base: int = 32,
        gated: bool = True,
        dilations: tuple[int, ...] = (2, 4, 8, 16),
        softmax_scale: float = 10.0,
    ) -> None:
        super().__init__()
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.size_multiple = 8
        c, g, dil = base, gated, tuple(dilations)
        # coarse network: (N, 4, H, W) -> (N, 3, H, W)
        self.coarse = nn.Sequential(
            Conv(in_channels, c, 5, gated=g),
            Conv(c, 2 * c, 3, 2, gated=g), Conv(2 * c, 2 * c, 3, gated=g),  # H/2
            Conv(2 * c, 4 * c, 3, 2, gated=g), Conv(4 * c, 4 * c, 3, gated=g), Conv(4 * c, 4 * c, 3, gated=g),  # H/4
            *_dilated(4 * c, g, dil),
            Conv(4 * c, 4 * c, 3, gated=g), Conv(4 * c, 4 * c, 3, gated=g),
            Up(4 * c, 2 * c, g), Conv(2 * c, 2 * c, 3, gated=g),  # H/2
            Up(2 * c, c, g), Conv(c, c // 2, 3, gated=g),  # H
            Conv(c // 2, out_channels, 3, act=False),
        )
        # refinement, convolution branch: (N, 4, H, W) -> (N, 4c, H/4, W/4)
        self.refine_conv = nn.Sequential(
            Conv(out_channels + 1, c, 5, gated=g),
            Conv(c, c, 3, 2, gated=g), Conv(c, 2 * c, 3, gated=g),
            Conv(2 * c, 2 * c, 3, 2, gated=g), Conv(2 * c, 4 * c, 3, gated=g), Conv(4 * c, 4 * c, 3, gated=g),
            *_dilated(4 * c, g, dil),
        )
        # refinement, attention branch: features at H/4, attention, then convolutions
        self.refine_att_in = nn.Sequential(
            Conv(out_channels + 1, c, 5, gated=g),
            Conv(c, c, 3, 2, gated=g), Conv(c, 2 * c, 3, gated=g),
            Conv(2 * c, 4 * c, 3, 2, gated=g), Conv(4 * c, 4 * c, 3, gated=g), Conv(4 * c, 4 * c, 3, gated=g),
        )
        self.attention = ContextualAttention(rate=2, softmax_scale=softmax_scale)
        self.refine_att_out = nn.Sequential(Conv(4 * c, 4 * c, 3, gated=g), Conv(4 * c, 4 * c, 3, gated=g))
        self.refine_out = nn.Sequential(
            Conv(8 * c, 4 * c, 3, gated=g), Conv(4 * c, 4 * c, 3, gated=g),
            Up(4 * c, 2 * c, g), Conv(2 * c, 2 * c, 3, gated=g),
            Up(2 * c, c, g), Conv(c, c // 2, 3, gated=g),
            Conv(c // 2, out_channels, 3, act=False),
        )

    def forward(self, x: torch.Tensor, return_coarse: bool = False):
        H, W = x.shape[-2:]
        if H % self.size_multiple or W % self.size_multiple:
            raise ValueError(f"input {H}x{W} must be a multiple of {self.size_multiple} (pad it first)")
        rgb, mask = x[:, :3], x[:, 3:4]
        # 1. coarse guess of the whole image
        coarse = torch.tanh(self.coarse(x))  # (N, 3, H, W)
        # 2. composite: the coarse guess inside the mask, the input outside
        comp = coarse * mask + rgb * (1 - mask)
        r_in = torch.cat([comp, mask], dim=1)  # (N, 4, H, W)
        # 3. two refinement branches at H/4
        h_conv = self.refine_conv(r_in)  # (N, 4c, H/4, W/4)
        h_att = self.refine_att_in(r_in)  # (N, 4c, H/4, W/4)
        m4 = F.max_pool2d(mask, 4)  # (N, 1, H/4, W/4)
        h_att = self.refine_att_out(self.attention(h_att, h_att, m4))
        # 4. decode both
        refined = torch.tanh(self.refine_out(torch.cat([h_conv, h_att], dim=1)))  # (N, 3, H, W)
        return (refined, coarse) if return_coarse else refined


# ---------------------------------------------------------------- critics


class WGANCritic(nn.Module):
    """WGAN critic (no normalization, as the gradient penalty needs): ``n_layers`` 5x5
    stride-2 convolutions with LeakyReLU, spatial mean, linear. Works at any size >= 2**n_layers.
    ``forward(x, features=True)`` also returns the activations of every layer (for the
    feature-matching loss)."""

    def __init__(self, *, in_channels: int = 3, base: int = 64, n_layers: int = 4) -> None:
        super().__init__()
        self.in_channels = in_channels
        chans = [base * min(2**i, 4) for i in range(n_layers)]
        self.layers = nn.ModuleList()
        prev = in_channels
        for ch in chans:
            self.layers.append(nn.Conv2d(prev, ch, 5, 2, 2))
            prev = ch
        self.fc = nn.Linear(prev, 1)

    def forward(self, x: torch.Tensor, features: bool = False):
        feats = []
        h = x
        for conv in self.layers:
            h = F.leaky_relu(conv(h), 0.2)
            feats.append(h)
        score = self.fc(h.mean(dim=(2, 3)))  # (N, 1)
        return (score, feats) if features else score
