"""The convolution block of Bulat & Tzimiropoulos (FAN): hierarchical, parallel, multi-scale."""

from __future__ import annotations

import torch
import torch.nn as nn


def conv3x3(in_channels: int, out_channels: int) -> nn.Conv2d:
    return nn.Conv2d(in_channels, out_channels, kernel_size=3, padding=1, bias=False)


class ConvBlock(nn.Module):
    """Pre-activation BN-ReLU-conv3x3 in three chained branches of out/2, out/4, out/4 channels,
    concatenated, plus a residual (BN-ReLU-conv1x1 when the channel counts differ).

    Shapes: (B, in, H, W) -> (B, out, H, W).
    """

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        half, quarter = out_channels // 2, out_channels // 4
        self.bn1, self.conv1 = nn.BatchNorm2d(in_channels), conv3x3(in_channels, half)
        self.bn2, self.conv2 = nn.BatchNorm2d(half), conv3x3(half, quarter)
        self.bn3, self.conv3 = nn.BatchNorm2d(quarter), conv3x3(quarter, out_channels - half - quarter)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = (
            nn.Sequential(
                nn.BatchNorm2d(in_channels),
                nn.ReLU(inplace=True),
                nn.Conv2d(in_channels, out_channels, kernel_size=1, bias=False),
            )
            if in_channels != out_channels
            else None
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out1 = self.conv1(self.relu(self.bn1(x)))
        out2 = self.conv2(self.relu(self.bn2(out1)))
        out3 = self.conv3(self.relu(self.bn3(out2)))
        residual = x if self.downsample is None else self.downsample(x)
        return torch.cat([out1, out2, out3], dim=1) + residual
