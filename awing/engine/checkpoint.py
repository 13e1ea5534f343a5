"""Checkpoints: atomic writes, safe loads, and rebuilding a model from one.

A checkpoint is a dict of tensors and plain Python values (loadable with ``weights_only=True``, so
loading never unpickles arbitrary objects)::

    format      "awing-checkpoint-v1"
    model       state_dict (fp32, or fp16 in a shipped model)
    spec        HourglassSpec fields (architecture)
    schema      Schema.to_dict() (landmark layout)
    config      Config.to_dict() of the run (absent in hand-made files)
    epoch, step, best_metric, metrics
    optimizer, scheduler, scaler, rng   (training checkpoints only: what --resume restores)
"""

from __future__ import annotations

import dataclasses
import os
import tempfile
from pathlib import Path

import torch

from awing.method.model import HourglassSpec, StackedHourglass
from awing.schemas import Schema

FORMAT = "awing-checkpoint-v1"


class CheckpointError(ValueError):
    """A file that is not an awing checkpoint, or one that does not fit what it is used for."""


def save_checkpoint(path: str | Path, payload: dict) -> Path:
    """Write ``payload`` atomically: a temporary file in the same folder, then a rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        torch.save({"format": FORMAT, **payload}, tmp)
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600 files; give the usual permissions
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return path


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict:
    """Load a checkpoint safely (``weights_only=True``) and check its format."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint not found: {path}")
    try:
        ckpt = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as err:  # torch raises several types for non-checkpoint files
        raise CheckpointError(f"{path} is not a loadable awing checkpoint: {err}") from err
    if not isinstance(ckpt, dict) or ckpt.get("format") != FORMAT:
        raise CheckpointError(f"{path} is not an awing checkpoint (format {FORMAT!r} expected)")
    for key in ("model", "spec", "schema"):
        if key not in ckpt:
            raise CheckpointError(f"{path} lacks {key!r}")
    return ckpt


def model_from_checkpoint(ckpt: dict, device: str | torch.device = "cpu") -> tuple[StackedHourglass, Schema]:
    """Rebuild the model (in eval mode, fp32) and its schema from a loaded checkpoint."""
    try:
        spec = HourglassSpec(**ckpt["spec"])
        schema = Schema.from_dict(ckpt["schema"], source="checkpoint")
    except (TypeError, ValueError) as err:
        raise CheckpointError(f"checkpoint architecture or schema is invalid: {err}") from err
    if spec.num_points != schema.num_points:
        raise CheckpointError(
            f"checkpoint model has {spec.num_points} points but its schema {schema.num_points}"
        )
    model = StackedHourglass(spec)
    state = {k: v.float() if v.is_floating_point() else v for k, v in ckpt["model"].items()}
    try:
        model.load_state_dict(state)
    except RuntimeError as err:
        raise CheckpointError(f"checkpoint weights do not match its architecture: {err}") from err
    return model.to(device).eval(), schema


def spec_dict(spec: HourglassSpec) -> dict:
    return dataclasses.asdict(spec)


def export_weights(ckpt: dict, path: str | Path, half: bool = True, extra: dict | None = None) -> Path:
    """A small inference-only file: model weights (fp16 by default), spec, schema, metrics, and the run's
    config (so ``awing eval`` crops test faces the way the model was trained)."""
    state = {k: v.half() if half and v.is_floating_point() else v for k, v in ckpt["model"].items()}
    keep = {k: ckpt[k] for k in ("spec", "schema", "metrics", "epoch", "config") if k in ckpt}
    return save_checkpoint(path, {"model": state, **keep, **(extra or {})})
