"""Per-pixel loss weights: the Weighted Loss Map (Eq. 4-5) and the ablation's baseline map."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def loss_map_mask(target: torch.Tensor, threshold: float = 0.2) -> torch.Tensor:
    """Eq. 4: ``M = 1`` where the 3x3 grey dilation of the target is >= threshold, else 0.

    Args:
        target: (B, C, H, W) ground-truth heatmaps.
    Returns:
        (B, C, H, W) float mask, same dtype and device as ``target``.
    """
    return (grey_dilation_3x3(target) >= threshold).to(target.dtype)


def grey_dilation_3x3(images: torch.Tensor) -> torch.Tensor:
    """The 3x3 grey dilation (maximum over each pixel's 3x3 neighbourhood) of every (H, W) plane of
    (..., H, W) ``images``: ``max_pool2d(kernel 3, stride 1, padding 1)``, computed as a row then a column
    maximum, which is over ten times faster than max_pool2d on a CPU (that also computes indices)."""
    padded = F.pad(images, (1, 1, 1, 1), value=float("-inf"))
    rows = torch.maximum(torch.maximum(padded[..., :-2], padded[..., 1:-1]), padded[..., 2:])
    return torch.maximum(torch.maximum(rows[..., :-2, :], rows[..., 1:-1, :]), rows[..., 2:, :])


def weighted_loss_map(target: torch.Tensor, weight: float = 10.0, threshold: float = 0.2) -> torch.Tensor:
    """Eq. 5's weight ``W * M + 1``: foreground and difficult background pixels get ``W + 1``."""
    return weight * loss_map_mask(target, threshold) + 1.0


def baseline_loss_map(target: torch.Tensor, weight: float = 10.0) -> torch.Tensor:
    """Table 7's ``WM_base = W * H + 1``: weights follow the target, no focus on hard background."""
    return weight * target + 1.0


WEIGHT_MAPS = ("none", "base", "paper")  # Table 7: -, WM_base, WM


def build_loss_weights(target: torch.Tensor, kind: str, weight: float = 10.0, threshold: float = 0.2):
    """The weight map named by a config: ``none`` (None), ``base`` or ``paper``."""
    if kind == "none":
        return None
    if kind == "base":
        return baseline_loss_map(target, weight)
    if kind == "paper":
        return weighted_loss_map(target, weight, threshold)
    raise ValueError(f"unknown weight map {kind!r}; choose none, base or paper")
