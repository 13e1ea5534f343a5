"""From heatmaps back to points: argmax with the quarter-pixel shift, and batched affine maps.

The frames (heatmap -> crop -> image) are the codec's (:mod:`awing.method.codec`); these are its parts.
"""

from __future__ import annotations

import torch


def decode_heatmaps(
    heatmaps: torch.Tensor, shift: float = 0.25, interior: str = "axis"
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-channel argmax, moved ``shift`` pixels toward the larger neighbour on each axis (Sec. 7.3).

    ``interior="axis"`` (awing): the shift applies on an axis where the peak has neighbours on both sides
    along it; ``"both"`` (the authors' ``get_preds_fromhm``): only where the peak is interior on both axes.

    Args:
        heatmaps: (B, N, H, W).
    Returns:
        points: (B, N, 2) float32 ``x, y`` in heatmap pixels.
        confidence: (B, N) float32, the peak value.
    """
    b, n, h, w = heatmaps.shape
    flat = heatmaps.detach().float().reshape(b, n, h * w)
    confidence, index = flat.max(dim=-1)
    x, y = index % w, torch.div(index, w, rounding_mode="floor")

    def value_at(xx: torch.Tensor, yy: torch.Tensor) -> torch.Tensor:
        return flat.gather(-1, (yy.clamp(0, h - 1) * w + xx.clamp(0, w - 1)).unsqueeze(-1)).squeeze(-1)

    inside_x, inside_y = (x > 0) & (x < w - 1), (y > 0) & (y < h - 1)
    if interior == "both":
        inside_x = inside_y = inside_x & inside_y
    elif interior != "axis":
        raise ValueError(f"interior must be 'axis' or 'both', got {interior!r}")
    dx = torch.sign(value_at(x + 1, y) - value_at(x - 1, y)) * inside_x
    dy = torch.sign(value_at(x, y + 1) - value_at(x, y - 1)) * inside_y
    points = torch.stack([x.float() + shift * dx, y.float() + shift * dy], dim=-1)
    return points, confidence


def invert_affine(matrix: torch.Tensor) -> torch.Tensor:
    """(..., 2, 3) affine -> its inverse, also (..., 2, 3)."""
    linear, offset = matrix[..., :2], matrix[..., 2:]
    inv = torch.linalg.inv(linear)
    return torch.cat([inv, -inv @ offset], dim=-1)


def apply_affine(points: torch.Tensor, matrix: torch.Tensor) -> torch.Tensor:
    """Apply (B, 2, 3) affines to (B, N, 2) points (NaN stays NaN)."""
    return points @ matrix[..., :2].transpose(-1, -2) + matrix[..., None, :, 2]
