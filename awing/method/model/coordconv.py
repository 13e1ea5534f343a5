"""CoordConv (Liu et al. 2018) with the paper's boundary coordinates (Sec. 6, Eq. 6, supp. 10.1)."""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F


def coordinate_channels(batch: int, height: int, width: int, device=None, dtype=None) -> torch.Tensor:
    """(B, 3, H, W): x and y in [-1, 1] and the radius sqrt(x^2 + y^2) scaled to [0, 1]."""
    ys = torch.linspace(-1.0, 1.0, height, device=device, dtype=dtype)
    xs = torch.linspace(-1.0, 1.0, width, device=device, dtype=dtype)
    yy, xx = torch.meshgrid(ys, xs, indexing="ij")
    radius = torch.sqrt(xx**2 + yy**2) / (2.0**0.5)
    return torch.stack([xx, yy, radius]).unsqueeze(0).expand(batch, -1, -1, -1)


def boundary_coordinate_channels(coords: torch.Tensor, boundary: torch.Tensor, threshold: float = 0.05):
    """Eq. 6: B_x, B_y = C_x, C_y where the boundary prediction (clamped to [0, 1]) >= threshold, else 0.

    Args:
        coords: (B, 3, H, W) from :func:`coordinate_channels`.
        boundary: (B, 1, H, W) the previous stack's boundary channel.
    Returns:
        (B, 2, H, W).
    """
    on_boundary = boundary.detach().clamp(0, 1) >= threshold
    xy = coords[:, :2]
    return torch.where(on_boundary, xy, torch.zeros_like(xy))


class CoordConv(nn.Module):
    """A convolution whose input is extended with coordinate channels.

    ``with_boundary`` adds the two boundary-coordinate channels; then ``forward`` needs the previous
    stack's boundary prediction. Shapes: (B, in, H, W) -> (B, out, H', W').
    """

    def __init__(
        self, in_channels: int, out_channels: int, with_boundary: bool = False, **conv_kwargs
    ) -> None:
        super().__init__()
        self.with_boundary = with_boundary
        self.in_channels = in_channels
        extra = 3 + (2 if with_boundary else 0)
        self.conv = nn.Conv2d(in_channels + extra, out_channels, **conv_kwargs)
        if self.conv.groups != 1 or self.conv.padding_mode != "zeros":
            raise ValueError("CoordConv supports groups=1 and zero padding only")

    def forward(self, x: torch.Tensor, boundary: torch.Tensor | None = None) -> torch.Tensor:
        # conv(cat[x, coords]) == conv(x; W_x) + conv(coords; W_c): the coordinates are the same for every
        # image, so their part runs once on a batch of one and broadcasts. Same weights and result, but the
        # 7x7 stem convolution no longer reads six input channels where the image has three.
        b, _, h, w = x.shape
        c = self.in_channels
        # int(): the map's size is fixed for a given input size, so an exported graph holds it as a constant
        coords = coordinate_channels(1, int(h), int(w), device=x.device, dtype=x.dtype)
        weight = self.conv.weight
        out = self._conv(x, weight[:, :c], self.conv.bias) + self._conv(coords, weight[:, c : c + 3], None)
        if self.with_boundary:
            if boundary is None:
                raise ValueError("this CoordConv uses boundary coordinates: pass the previous boundary map")
            on_boundary = boundary_coordinate_channels(coords.expand(b, -1, -1, -1), boundary.to(x.dtype))
            out = out + self._conv(on_boundary, weight[:, c + 3 :], None)
        return out

    def _conv(self, x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
        conv = self.conv
        return F.conv2d(x, weight, bias, conv.stride, conv.padding, conv.dilation, conv.groups)
