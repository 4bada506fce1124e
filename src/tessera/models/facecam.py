"""FaceCAM: a small face / no-face classifier whose class activation map (Zhou et al. 2016) says
where the face is. Global average pooling after the last convolution and one linear layer, so the
CAM is that linear layer applied at every position of the last feature map (stride 8).

Input: RGB in [-1, 1], (N, 3, H, W), any size (multiples of 8 keep the map aligned). ``forward``
returns one logit per image (face = 1); ``cam`` returns (N, H/8, W/8) logits per position.
"""

from __future__ import annotations

import torch
from torch import nn


class FaceCAM(nn.Module):
    size_multiple = 8

    def __init__(self, width: int = 32, depth: int = 4):
        super().__init__()
        if not 8 <= width <= 256 or not 3 <= depth <= 6:
            raise ValueError(f"FaceCAM needs 8 <= width <= 256 and 3 <= depth <= 6, got width={width}, depth={depth}")
        layers: list[nn.Module] = []
        c_in = 3
        for i in range(depth):
            c_out = width * min(2**i, 4)
            stride = 2 if i < 3 else 1  # three halvings: stride 8
            layers += [nn.Conv2d(c_in, c_out, 3, stride, 1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU(inplace=True)]
            c_in = c_out
        self.features = nn.Sequential(*layers)
        self.head = nn.Linear(c_in, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x).mean((2, 3)))[:, 0]

    def cam(self, x: torch.Tensor) -> torch.Tensor:
        f = self.features(x)
        return torch.einsum("nchw,c->nhw", f, self.head.weight[0]) + self.head.bias[0]
