"""A model and what it needs to be used, to and from a checkpoint's fields.

The inference part of a checkpoint (:mod:`awing.core.checkpoint` holds the file format) is::

    model   state_dict          spec    HourglassSpec fields (architecture)
    schema  Schema.to_dict()    codec   HeatmapCodec.to_dict() (input size, heatmap frame, decoder)
"""

from __future__ import annotations

import dataclasses
from types import SimpleNamespace
from typing import NamedTuple

import torch

from awing.core.checkpoint import CheckpointError
from awing.method.codec import HeatmapCodec, build_codec, codec_from_dict
from awing.method.model.hourglass import HourglassSpec, StackedHourglass
from awing.schemas import Schema

__all__ = ["LoadedModel", "model_payload", "model_from_checkpoint", "codec_of_checkpoint", "spec_of_checkpoint"]


class LoadedModel(NamedTuple):
    model: StackedHourglass
    schema: Schema
    codec: HeatmapCodec


def model_payload(model: StackedHourglass, schema: Schema, codec: HeatmapCodec | None = None) -> dict:
    """The checkpoint fields that rebuild ``model`` for inference (weights as they are)."""
    codec = codec or build_codec(model.spec)
    return {
        "model": model.state_dict(),
        "spec": dataclasses.asdict(model.spec),
        "schema": schema.to_dict(),
        "codec": codec.to_dict(),
    }


def codec_of_checkpoint(ckpt: dict, spec: HourglassSpec) -> HeatmapCodec:
    """The checkpoint's codec; files written before codecs were stored get the default one for their
    spec and their run's target settings."""
    if "codec" in ckpt:
        try:
            return codec_from_dict(ckpt["codec"])
        except (ValueError, TypeError, KeyError, AttributeError) as err:
            raise CheckpointError(f"checkpoint codec is invalid: {err}") from err
    config = ckpt.get("config") or {}
    targets = (config.get("targets") if isinstance(config, dict) else None) or {}
    if not isinstance(targets, dict):
        raise CheckpointError(f"checkpoint config 'targets' must be a mapping, not {type(targets).__name__}")
    fields = {k: targets[k] for k in ("sigma", "radius", "boundary_sigma") if k in targets}
    return build_codec(spec, SimpleNamespace(**{"sigma": 1.5, "radius": 3, "boundary_sigma": 1.0, **fields}))


def _check_spec_types(fields: dict) -> None:
    """TypeError/ValueError unless each known spec field has its type (an int >= 1, a bool or a string): a ``"14"``
    or ``14.0`` would otherwise fail deep in the layers, or compare unequal to the schema's 14."""
    known = {f.name: f for f in dataclasses.fields(HourglassSpec)}
    for name, value in fields.items():
        field = known.get(name)
        if field is None:
            continue  # HourglassSpec(**fields) names it
        if isinstance(field.default, str):
            if not isinstance(value, str):
                raise TypeError(f"spec {name!r} must be a string, got {value!r}")
            continue
        is_bool = isinstance(field.default, bool)
        if is_bool and not isinstance(value, bool):
            raise TypeError(f"spec {name!r} must be true or false, got {value!r}")
        if not is_bool:
            if not isinstance(value, int) or isinstance(value, bool):
                raise TypeError(f"spec {name!r} must be an integer, got {value!r}")
            if value < 1:
                raise ValueError(f"spec {name!r} must be at least 1, got {value}")


def spec_of_checkpoint(ckpt: dict) -> HourglassSpec:
    """The architecture a checkpoint stores, as loading rebuilds it: a field added to the spec after the file
    was written takes its default.

    Raises:
        TypeError, ValueError: no ``spec`` mapping, or a field of the wrong type or value.
    """
    if not isinstance(ckpt.get("spec"), dict):
        raise TypeError("'spec' must be a mapping")
    _check_spec_types(ckpt["spec"])
    return HourglassSpec(**ckpt["spec"])


def model_from_checkpoint(ckpt: dict, device: str | torch.device = "cpu") -> LoadedModel:
    """Rebuild the model (in eval mode, fp32), its schema and its codec from a loaded checkpoint.

    Raises:
        CheckpointError: fields of the wrong type or shape, or weights that do not fit the architecture.
    """
    try:
        if not isinstance(ckpt.get("schema"), dict):
            raise TypeError("'schema' must be a mapping")
        spec = spec_of_checkpoint(ckpt)
        schema = Schema.from_dict(ckpt["schema"], source="checkpoint")
    except (TypeError, ValueError, KeyError, AttributeError) as err:
        raise CheckpointError(f"checkpoint architecture or schema is invalid: {err}") from err
    if spec.num_points != schema.num_points:
        raise CheckpointError(f"checkpoint model has {spec.num_points} points but its schema {schema.num_points}")
    codec = codec_of_checkpoint(ckpt, spec)
    weights = ckpt.get("model")
    if not isinstance(weights, dict) or not all(
        isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in weights.items()
    ):
        raise CheckpointError("checkpoint 'model' is not a state dict of tensors")
    try:
        model = StackedHourglass(spec)
    except (TypeError, ValueError, RuntimeError) as err:
        raise CheckpointError(f"checkpoint architecture is invalid: {err}") from err
    state = {k: v.float() if v.is_floating_point() else v for k, v in weights.items()}
    try:
        model.load_state_dict(state)
    except RuntimeError as err:
        raise CheckpointError(f"checkpoint weights do not match its architecture: {err}") from err
    return LoadedModel(model.to(device).eval(), schema, codec)
