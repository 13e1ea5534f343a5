"""Models built by name: ``create_model("awing-4hg", num_points=98)``.

One registry of presets (stacks, width, input size); any field of :class:`HourglassSpec` can be
overridden by keyword.
"""

from __future__ import annotations

import dataclasses
from contextlib import nullcontext

import numpy as np
import torch

from awing.method.model.checkpoint import LoadedModel, model_from_checkpoint, model_payload, spec_of_checkpoint
from awing.method.model.hourglass import HourglassSpec, StackedHourglass

# name -> HourglassSpec fields (without num_points)
MODEL_PRESETS: dict[str, dict] = {
    "awing-1hg": dict(stacks=1, width=256, input_size=256),
    "awing-2hg": dict(stacks=2, width=256, input_size=256),
    "awing-3hg": dict(stacks=3, width=256, input_size=256),
    "awing-4hg": dict(stacks=4, width=256, input_size=256),
    "awing-1hg-small": dict(stacks=1, width=128, input_size=128),
    "awing-2hg-small": dict(stacks=2, width=128, input_size=128),
    "awing-1hg-tiny": dict(stacks=1, width=64, input_size=128),
    "awing-2hg-tiny": dict(stacks=2, width=64, input_size=128),
    # for CPUs and video: 96 px -> 24x24 heatmaps, 3 levels, the light stem; half awing-1hg-tiny's time
    "awing-1hg-96": dict(stacks=1, width=64, input_size=96, depth=3, stem="light"),
}


def register_model(name: str, **spec_fields) -> None:
    """Add a preset; fields are those of :class:`HourglassSpec` except ``num_points``."""
    HourglassSpec(num_points=1, **spec_fields)  # validate now, not at first use
    MODEL_PRESETS[name] = spec_fields


def available_architectures() -> list[str]:
    """The preset names :func:`create_model` accepts."""
    return sorted(MODEL_PRESETS)


def model_spec(name: str, num_points: int, **overrides) -> HourglassSpec:
    """The spec of a preset with overrides; ``None`` overrides are ignored."""
    if name not in MODEL_PRESETS:
        raise ValueError(f"unknown model {name!r}; available: {', '.join(available_architectures())}")
    fields = {**MODEL_PRESETS[name], **{k: v for k, v in overrides.items() if v is not None}}
    known = {f.name for f in dataclasses.fields(HourglassSpec)}
    unknown = sorted(set(fields) - known)
    if unknown:
        raise ValueError(f"unknown model option(s) {unknown}; known: {sorted(known - {'num_points'})}")
    return HourglassSpec(num_points=num_points, **fields)


def create_model(name: str, num_points: int, **overrides) -> StackedHourglass:
    """A freshly initialised model from a preset name."""
    return StackedHourglass(model_spec(name, num_points, **overrides))


@torch.no_grad()
def predict_heatmaps(
    model: StackedHourglass,
    images: torch.Tensor,
    amp_dtype: torch.dtype | None = None,
    flip_permutation: np.ndarray | None = None,
) -> torch.Tensor:
    """Last-stack landmark heatmaps (B, N, H, W), float32, for (B, 3, S, S) float images in [0, 1].

    ``amp_dtype`` runs the model under that autocast dtype (None: as the model is). With a flip
    permutation (the schema's), the result is averaged with the mirrored image's mirrored heatmaps
    (flip test). The boundary channel is dropped.
    """
    n = model.spec.num_points
    with torch.autocast(images.device.type, dtype=amp_dtype) if amp_dtype else nullcontext():
        heat = model(images)[-1][:, :n].float()
        if flip_permutation is not None:
            heat = flip_average(heat, model(images.flip(-1))[-1][:, :n].float(), flip_permutation)
    return heat


def flip_average(heatmaps: torch.Tensor, mirrored: torch.Tensor, flip_permutation) -> torch.Tensor:
    """The flip test: the mean of (B, N, H, W) heatmaps and those of the mirrored images, mirrored back
    and their channels swapped by the schema's ``flip_permutation`` (N,) (left eye <-> right eye)."""
    index = torch.as_tensor(np.asarray(flip_permutation), device=heatmaps.device)
    return 0.5 * (heatmaps + mirrored.flip(-1)[:, index])


__all__ = [
    "predict_heatmaps",
    "flip_average",
    "HourglassSpec",
    "StackedHourglass",
    "create_model",
    "model_spec",
    "register_model",
    "available_architectures",
    "LoadedModel",
    "model_payload",
    "model_from_checkpoint",
    "spec_of_checkpoint",
]
