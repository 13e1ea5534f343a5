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

import os
import tempfile
from pathlib import Path

import torch

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


def checkpoint_metrics(ckpt: dict) -> dict:
    """A checkpoint's ``metrics`` in its one shape: the metrics.csv row of its epoch (``epoch``, ``lr``,
    ``train_loss``, ..., ``val_nme``, ``val_fr@0.08``, ``val_auc@0.08``, ...; fractions).

    Files from before that shape held the validation figures without the ``val_`` prefix, or under
    ``metrics["val"]``; those are read into it.
    """
    metrics = ckpt.get("metrics")
    if not isinstance(metrics, dict):
        return {}
    if isinstance(metrics.get("val"), dict):  # {"val": {"nme": ...}}
        rest = {k: v for k, v in metrics.items() if k != "val"}
        return {**rest, **{f"val_{k}": v for k, v in metrics["val"].items()}}
    if "nme" in metrics and "val_nme" not in metrics:  # {"nme": ..., "fr@0.1": ...}
        return {f"val_{k}" if k != "epoch" else k: v for k, v in metrics.items()}
    return dict(metrics)


def export_weights(ckpt: dict, path: str | Path, half: bool = True, extra: dict | None = None) -> Path:
    """A small inference-only file: model weights (fp16 by default), spec, schema, metrics, and the run's
    config (so ``awing eval`` crops test faces the way the model was trained)."""
    state = {k: v.half() if half and v.is_floating_point() else v for k, v in ckpt["model"].items()}
    keep = {k: ckpt[k] for k in ("spec", "schema", "metrics", "epoch", "config") if k in ckpt}
    return save_checkpoint(path, {"model": state, **keep, **(extra or {})})
