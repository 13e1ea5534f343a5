"""Where a heatmap loss spends its gradient, and how tall the predicted heatmaps are (issue 26).

The paper's argument for the Adaptive Wing loss is about which pixels drive training: foreground pixels
(near a landmark) against the many background ones. These functions measure it on a fixed batch:

- :func:`pixel_classes`: **foreground** (target >= threshold), **difficult background** (Eq. 4's mask,
  the 3x3 grey dilation of the target >= threshold, less the foreground) and **background** (the rest);
- :func:`gradient_shares`: each class's share of ``sum |dL/d y_hat|``;
- :func:`channel_gradient`: ``sum |dL/d y_hat|`` per landmark channel (``benchmarks/sharpness.py`` sums it
  by facial part);
- :func:`heatmap_figures`: the heatmap's value at the true point (bilinear), its peak, and the decoding
  error in heatmap pixels.

:func:`measure` applies them to a model's last stack as a training step computes the loss (weights and
precision included). ``train.diagnose: N`` logs them at every validation of a run (metrics.csv columns
``diag_*``); ``benchmarks/gradients.py`` after every epoch of a short run.
"""

from __future__ import annotations

import math

import torch

from awing.method.decode import bilinear_sample
from awing.method.weights import loss_map_mask

__all__ = [
    "CLASSES",
    "pixel_classes",
    "gradient_shares",
    "loss_gradient",
    "channel_gradient",
    "heatmap_figures",
    "diagnose_output",
]

CLASSES = ("foreground", "difficult", "background")


def pixel_classes(target: torch.Tensor, threshold: float = 0.2) -> dict[str, torch.Tensor]:
    """Boolean masks of the three pixel classes of (B, C, H, W) targets (module docstring); they
    partition the pixels."""
    foreground = target >= threshold
    difficult = loss_map_mask(target, threshold).bool() & ~foreground
    return {"foreground": foreground, "difficult": difficult, "background": ~(foreground | difficult)}


def gradient_shares(grad: torch.Tensor, target: torch.Tensor, threshold: float = 0.2) -> dict[str, float]:
    """The share of ``sum |grad|`` on each pixel class of :func:`pixel_classes` (they sum to 1; all NaN
    for an all-zero gradient)."""
    magnitude = grad.detach().double().abs()
    total = float(magnitude.sum())
    masks = pixel_classes(target, threshold)
    return {name: float(magnitude[mask].sum()) / total if total > 0 else math.nan for name, mask in masks.items()}


def loss_gradient(loss_fn, output: torch.Tensor, targets: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """``d loss_fn(output, targets, weights) / d output`` for one stack's (detached) output, as a training
    step would compute it (the loss casts a bf16 output to fp32 itself)."""
    leaf = output.detach().requires_grad_()
    (grad,) = torch.autograd.grad(loss_fn(leaf, targets, weights), leaf)
    return grad


def channel_gradient(loss_fn, output: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """(B, N, H, W) heatmaps and targets -> (B, N): each channel's ``sum |dL/d y_hat|`` under ``loss_fn``
    (no weight map), where a loss spends its gradient between landmarks."""
    with torch.enable_grad():
        return loss_gradient(loss_fn, output.float(), targets, None).abs().sum((-1, -2))


def heatmap_figures(heat: torch.Tensor, points: torch.Tensor, codec) -> dict[str, float]:
    """Means over the annotated landmarks of (B, N, H, W) heatmaps at (B, N, 2) heatmap-pixel points: value
    at the point, peak, decoding error (heatmap pixels, ``codec.peaks``)."""
    heat = heat.float()
    value = bilinear_sample(heat, points)
    peak = heat.flatten(2).amax(-1)
    decoded, _ = codec.peaks(heat)
    error = (decoded - points).norm(dim=-1)
    known = torch.isfinite(value)

    def mean(t: torch.Tensor) -> float:
        return float(t[known].double().mean())

    return {"value_at_gt": mean(value), "peak": mean(peak), "error_px": mean(error)}


def diagnose_output(
    output: torch.Tensor,
    targets: torch.Tensor,
    weights: torch.Tensor,
    points: torch.Tensor,
    loss_fn,
    codec,
    num_points: int,
    threshold: float = 0.2,
) -> dict[str, float]:
    """Every figure of this module for one stack's (B, C, H, W) ``output`` against its training
    ``targets`` / loss ``weights`` and (B, N, 2) true ``points`` in heatmap pixels, on the first
    ``num_points`` (landmark) channels: ``share_<class>``, ``pixels_foreground`` / ``pixels_difficult``
    (each class's share of the pixels), ``value_at_gt``, ``peak`` and ``error_px``."""
    grad = loss_gradient(loss_fn, output, targets, weights)[:, :num_points]
    landmarks = targets[:, :num_points]
    row = {f"share_{name}": value for name, value in gradient_shares(grad, landmarks, threshold).items()}
    pixels = pixel_classes(landmarks, threshold)
    row["pixels_foreground"] = float(pixels["foreground"].double().mean())
    row["pixels_difficult"] = float(pixels["difficult"].double().mean())
    return {**row, **heatmap_figures(output[:, :num_points], points, codec)}
