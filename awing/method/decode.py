"""From heatmaps back to points: argmax with the quarter-pixel shift (the paper's decoder), the
distribution-aware Taylor refinement (DARK), and batched affine maps.

The frames (heatmap -> crop -> image) are the codec's (:mod:`awing.method.codec`); these are its parts.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

DECODERS = ("quarter", "dark")  # HeatmapCodec.decoder: Sec. 7.3's quarter-pixel shift, or dark_refine


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


def gaussian_blur(heatmaps: torch.Tensor, sigma: float) -> torch.Tensor:
    """Separable Gaussian blur of every channel, support ``2 ceil(3 sigma) + 1``, edges replicated.

    Args:
        heatmaps: (B, N, H, W) float.
    Returns:
        (B, N, H, W), same dtype.
    """
    radius = max(1, int(math.ceil(3 * sigma)))
    offsets = torch.arange(-radius, radius + 1, dtype=heatmaps.dtype, device=heatmaps.device)
    kernel = torch.exp(-(offsets**2) / (2 * sigma**2))
    kernel = kernel / kernel.sum()
    b, n, h, w = heatmaps.shape
    flat = heatmaps.reshape(b * n, 1, h, w)
    flat = F.conv2d(F.pad(flat, (radius, radius, 0, 0), mode="replicate"), kernel.view(1, 1, 1, -1))
    flat = F.conv2d(F.pad(flat, (0, 0, radius, radius), mode="replicate"), kernel.view(1, 1, -1, 1))
    return flat.reshape(b, n, h, w)


def dark_refine(heatmaps: torch.Tensor, sigma: float = 1.5, shift: float = 0.25) -> tuple[torch.Tensor, torch.Tensor]:
    """Sub-pixel peaks by a second-order Taylor step on the log heatmap (DARK: Zhang et al., CVPR 2020).

    A Gaussian ``exp(-|p - mu|^2 / (2 sigma^2))`` is a paraboloid in log space, so from the argmax ``m``
    one Newton step ``mu = m - H^{-1} g`` (gradient ``g`` and Hessian ``H`` of the log by central
    differences) lands on ``mu`` exactly. Predicted heatmaps are first smoothed by a Gaussian of the
    targets' ``sigma`` (and rescaled to their peak) so that their log is close to a paraboloid. Where the
    step is not defined (a peak within 2 pixels of the border, a Hessian that is not negative definite,
    or a step longer than one pixel) the quarter-pixel decoder's point is kept.

    Args:
        heatmaps: (B, N, H, W).
        sigma: the smoothing Gaussian's sigma, heatmap pixels (the codec's target sigma).
        shift: the fallback's quarter-pixel shift.
    Returns:
        points: (B, N, 2) float32 ``x, y`` in heatmap pixels.
        confidence: (B, N) float32, the peak value of the raw heatmaps.
    """
    quarter, confidence = decode_heatmaps(heatmaps, shift)
    b, n, h, w = heatmaps.shape
    raw = heatmaps.detach().float()
    smooth = gaussian_blur(raw, sigma)
    peak = smooth.flatten(2).amax(-1).clamp_min(1e-10)
    smooth = smooth * (confidence.clamp_min(1e-10) / peak)[..., None, None]
    log = smooth.clamp_min(1e-10).log().reshape(b, n, h * w)
    index = raw.reshape(b, n, h * w).argmax(-1)
    x, y = index % w, torch.div(index, w, rounding_mode="floor")

    def at(dx: int, dy: int) -> torch.Tensor:
        xx, yy = (x + dx).clamp(0, w - 1), (y + dy).clamp(0, h - 1)
        return log.gather(-1, (yy * w + xx).unsqueeze(-1)).squeeze(-1)

    centre = at(0, 0)
    gx, gy = 0.5 * (at(1, 0) - at(-1, 0)), 0.5 * (at(0, 1) - at(0, -1))
    hxx, hyy = at(1, 0) - 2 * centre + at(-1, 0), at(0, 1) - 2 * centre + at(0, -1)
    hxy = 0.25 * (at(1, 1) - at(1, -1) - at(-1, 1) + at(-1, -1))
    det = hxx * hyy - hxy * hxy
    safe_det = torch.where(det > 1e-12, det, torch.ones_like(det))
    step_x = -(hyy * gx - hxy * gy) / safe_det
    step_y = -(hxx * gy - hxy * gx) / safe_det
    usable = (
        (x >= 2) & (x <= w - 3) & (y >= 2) & (y <= h - 3)
        & (hxx < 0) & (det > 1e-12) & (step_x.abs() <= 1) & (step_y.abs() <= 1)
    )  # fmt: skip
    refined = torch.stack([x.float() + step_x, y.float() + step_y], dim=-1)
    return torch.where(usable[..., None], refined, quarter), confidence


def invert_affine(matrix: torch.Tensor) -> torch.Tensor:
    """(..., 2, 3) affine -> its inverse, also (..., 2, 3)."""
    linear, offset = matrix[..., :2], matrix[..., 2:]
    inv = torch.linalg.inv(linear)
    return torch.cat([inv, -inv @ offset], dim=-1)


def apply_affine(points: torch.Tensor, matrix: torch.Tensor) -> torch.Tensor:
    """Apply (B, 2, 3) affines to (B, N, 2) points (NaN stays NaN)."""
    return points @ matrix[..., :2].transpose(-1, -2) + matrix[..., None, :, 2]
