"""The stacked hourglass of the paper (FAN-style, Bulat & Tzimiropoulos), with the boundary channel,
CoordConv and boundary coordinates as switches (Table 7's B, C and CB)."""

from __future__ import annotations

import dataclasses

import torch
import torch.nn as nn
import torch.nn.functional as F

from awing.method.model.blocks import ConvBlock
from awing.method.model.coordconv import CoordConv

STEMS = ("fan", "light")
HEATMAP_STRIDES = (4, 2)


@dataclasses.dataclass(frozen=True)
class HourglassSpec:
    """Architecture of one model; stored in checkpoints so a model can be rebuilt exactly.

    ``boundary_coords`` (Eq. 6) feeds each stack after the first the boundary map of the stack before
    it, so it changes nothing in a one-stack model. ``stem``: ``"fan"`` (the paper's: a residual block at
    half the input resolution, then two at a quarter) or ``"light"`` (pool to a quarter first, then two
    blocks: no block runs at half resolution, for fast CPU models). ``heatmap_stride``: input pixels per
    heatmap pixel, 4 (the paper's: heatmaps at the hourglass's resolution) or 2 (each stack's head is
    upsampled x2 by a 1x1 convolution and a pixel shuffle before its output convolution: finer heatmaps
    for a small input at little cost).
    """

    num_points: int
    stacks: int = 4
    width: int = 256
    depth: int = 4
    input_size: int = 256
    boundary: bool = True
    coordconv: bool = True
    boundary_coords: bool = True
    stem: str = "fan"
    heatmap_stride: int = 4

    def __post_init__(self) -> None:
        if not 1 <= self.stacks <= 8:
            raise ValueError(f"stacks must be in 1..8, got {self.stacks}")
        if self.width % 16:
            raise ValueError(f"width must be a multiple of 16, got {self.width}")
        if self.input_size % (4 * 2**self.depth):
            raise ValueError(f"input_size must be a multiple of {4 * 2**self.depth} for depth {self.depth}")
        if self.stem not in STEMS:
            raise ValueError(f"stem must be one of {', '.join(STEMS)}, got {self.stem!r}")
        if self.heatmap_stride not in HEATMAP_STRIDES:
            raise ValueError(f"heatmap_stride must be one of {HEATMAP_STRIDES}, got {self.heatmap_stride!r}")
        if self.boundary_coords and not (self.boundary and self.coordconv):
            raise ValueError("boundary_coords needs both the boundary channel and CoordConv")

    @property
    def heatmap_size(self) -> int:
        return self.input_size // self.heatmap_stride

    @property
    def out_channels(self) -> int:
        return self.num_points + int(self.boundary)


class Hourglass(nn.Module):
    """One hourglass of ``depth`` levels: a residual branch at each scale plus a pooled branch
    recursing to the next level, merged after nearest-neighbour upsampling. (B, C, H, W) -> same."""

    def __init__(self, depth: int, channels: int) -> None:
        super().__init__()
        self.skip = ConvBlock(channels, channels)
        self.down = ConvBlock(channels, channels)
        self.inner = Hourglass(depth - 1, channels) if depth > 1 else ConvBlock(channels, channels)
        self.up = ConvBlock(channels, channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        low = self.up(self.inner(self.down(F.avg_pool2d(x, 2, stride=2))))
        return self.skip(x) + F.interpolate(low, scale_factor=2, mode="nearest")


class StackedHourglass(nn.Module):
    """The AWing network.

    Input: (B, 3, S, S) RGB in [0, 1]. Output: a list with one (B, N + boundary, S/r, S/r) tensor per
    stack, r the spec's ``heatmap_stride`` (intermediate supervision); the last one is the prediction. The
    boundary channel, if any, is the last channel.
    """

    def __init__(self, spec: HourglassSpec) -> None:
        super().__init__()
        self.spec = spec
        w = spec.width
        stem_kwargs = dict(kernel_size=7, stride=2, padding=3)
        self.stem_conv = (
            CoordConv(3, w // 4, **stem_kwargs) if spec.coordconv else nn.Conv2d(3, w // 4, **stem_kwargs)
        )
        if spec.stem == "fan":
            self.stem = nn.Sequential(nn.BatchNorm2d(w // 4), nn.ReLU(inplace=True), ConvBlock(w // 4, w // 2))
            self.stem_tail = nn.Sequential(ConvBlock(w // 2, w // 2), ConvBlock(w // 2, w))
        else:
            self.stem = nn.Sequential(nn.BatchNorm2d(w // 4), nn.ReLU(inplace=True))
            self.stem_tail = nn.Sequential(ConvBlock(w // 4, w // 2), ConvBlock(w // 2, w))
        self.coord_convs = nn.ModuleList(
            CoordConv(w, w, with_boundary=spec.boundary_coords and i > 0, kernel_size=1)
            if spec.coordconv
            else nn.Identity()
            for i in range(spec.stacks)
        )
        self.hourglasses = nn.ModuleList(Hourglass(spec.depth, w) for _ in range(spec.stacks))
        self.heads = nn.ModuleList(
            nn.Sequential(ConvBlock(w, w), nn.Conv2d(w, w, 1), nn.BatchNorm2d(w), nn.ReLU(inplace=True))
            for _ in range(spec.stacks)
        )
        self.upsamplers = nn.ModuleList(_upsampler(w) if spec.heatmap_stride == 2 else nn.Identity()
                                        for _ in range(spec.stacks))
        head_width = w // 2 if spec.heatmap_stride == 2 else w
        self.outputs = nn.ModuleList(nn.Conv2d(head_width, spec.out_channels, 1) for _ in range(spec.stacks))
        self.merge_features = nn.ModuleList(nn.Conv2d(w, w, 1) for _ in range(spec.stacks - 1))
        self.merge_heatmaps = nn.ModuleList(
            nn.Conv2d(spec.out_channels, w, 1) for _ in range(spec.stacks - 1)
        )

    def forward(self, images: torch.Tensor) -> list[torch.Tensor]:
        x = self.stem(self.stem_conv(images))
        x = self.stem_tail(F.avg_pool2d(x, 2, stride=2))
        outputs: list[torch.Tensor] = []
        for i in range(self.spec.stacks):
            if self.spec.coordconv:
                boundary = self._to_features(outputs[-1][:, -1:]) if (self.spec.boundary_coords and i > 0) else None
                hg_in = self.coord_convs[i](x, boundary)
            else:
                hg_in = x
            features = self.heads[i](self.hourglasses[i](hg_in))
            heatmaps = self.outputs[i](self.upsamplers[i](features))
            outputs.append(heatmaps)
            if i < self.spec.stacks - 1:
                x = x + self.merge_features[i](features) + self.merge_heatmaps[i](self._to_features(heatmaps))
        return outputs

    def _to_features(self, maps: torch.Tensor) -> torch.Tensor:
        """Heatmaps (B, C, S/r, S/r) on the features' grid (B, C, S/4, S/4): averaged over 2x2 when r is 2."""
        return maps if self.spec.heatmap_stride == 4 else F.avg_pool2d(maps, 2, stride=2)


def _upsampler(width: int) -> nn.Sequential:
    """(B, width, H, W) -> (B, width / 2, 2H, 2W): a 1x1 convolution to twice the channels, a pixel shuffle."""
    return nn.Sequential(
        nn.Conv2d(width, 2 * width, 1, bias=False),
        nn.PixelShuffle(2),
        nn.BatchNorm2d(width // 2),
        nn.ReLU(inplace=True),
    )
