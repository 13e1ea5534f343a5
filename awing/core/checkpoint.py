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

import contextlib
import errno
import math
import os
import re
import shutil
import tempfile
import zipfile
from collections.abc import Iterator
from pathlib import Path

import torch

FORMAT = "awing-checkpoint-v1"


class CheckpointError(ValueError):
    """A file that is not an awing checkpoint, or one that does not fit what it is used for."""


def save_checkpoint(path: str | Path, payload: dict) -> Path:
    """Write ``payload`` atomically: a temporary file in the same folder, then a rename."""
    path = Path(path)
    with atomic_file(path) as tmp:
        torch.save({"format": FORMAT, **payload}, tmp)
    return path


@contextlib.contextmanager
def atomic_file(path: str | Path, suffix: str = ".tmp") -> Iterator[str]:
    """A temporary file's path beside ``path`` (folders made) for the block to write; when the block ends
    without an error it replaces ``path`` (one rename: readers see the old file or the new one, never a
    part), else it is removed. ``suffix``: the temporary name's ending, for writers that choose the format by
    it (``cv2.VideoWriter``).

    Raises:
        OSError: ``errno.ENOSPC`` with a plain message (which says whether ``path`` kept its old content)
            when the device is full; any other error of the block, unchanged.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = None
    try:
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=suffix)
        os.close(fd)
        yield tmp
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600 files; give the usual permissions
        os.replace(tmp, path)
    except (OSError, RuntimeError) as err:
        if not _disk_full(err, path.parent):
            raise
        kept = f"the existing {path.name} is unchanged" if path.exists() else "nothing was written"
        raise OSError(errno.ENOSPC, f"no space left on the device to write {path} ({kept}); free some space") from err
    finally:
        if tmp is not None and os.path.exists(tmp):
            os.unlink(tmp)


def _disk_full(err: Exception, folder: Path) -> bool:
    """Whether a write failed for want of space: an OSError with ENOSPC, or a RuntimeError (torch's zip
    writer carries no errno: "file write failed", "unexpected pos ...", "basic_ios::clear: iostream error")
    that says so or that comes while the device has (almost) nothing free, the partial file still on it."""
    if isinstance(err, OSError):
        return err.errno == errno.ENOSPC
    if "No space left" in str(err):
        return True
    try:
        return shutil.disk_usage(folder).free < 2**24
    except OSError:
        return False


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
        raise _unloadable(path, err) from err
    if not isinstance(ckpt, dict) or ckpt.get("format") != FORMAT:
        raise CheckpointError(f"{path} is not an awing checkpoint (format {FORMAT!r} expected)")
    for key in ("model", "spec", "schema"):
        if key not in ckpt:
            raise CheckpointError(f"{path} lacks {key!r}")
    _check_fields(path, ckpt)
    return ckpt


def _unloadable(path: Path, err: Exception) -> CheckpointError:
    """Why ``torch.load(weights_only=True)`` refused a file, in awing's terms (not torch's advice to load
    it with ``weights_only=False``, which would run whatever code the file holds)."""
    try:
        with open(path, "rb") as f:
            head = f.read(16)
    except OSError:
        head = b""
    if path.suffix.lower() == ".onnx" or (head[:1] == b"\x08" and head[2:3] == b"\x12"):  # ModelProto
        return CheckpointError(
            f"{path} is not a loadable awing checkpoint: it is an ONNX file; give the .pt checkpoint it was "
            "exported from (ONNX files are for ONNX Runtime; FaceAligner(backend='onnx') makes its own)"
        )
    if not zipfile.is_zipfile(path):
        return CheckpointError(
            f"{path} is not a loadable awing checkpoint: not a PyTorch checkpoint file (or a damaged one)"
        )
    found = re.search(r"Unsupported global: GLOBAL (\S+)", str(err))
    what = f" ({found.group(1)})" if found else ""
    return CheckpointError(
        f"{path} is not a loadable awing checkpoint: it holds Python objects{what} besides tensors and plain values, "
        "and awing loads checkpoints with weights_only=True, which never runs code from the file"
    )


_OPTIONAL_MAPPINGS = ("codec", "config", "inference")  # ``metrics`` of any other type reads as none


def _check_fields(path: Path, ckpt: dict) -> None:
    """The inference fields' types: ``model``, ``spec``, ``schema`` mappings, ``codec``, ``config`` and
    ``inference`` mappings where present, ``inference["enlarge"]`` ``{style: number}``."""
    for key in ("model", "spec", "schema"):
        if not isinstance(ckpt[key], dict):
            raise CheckpointError(f"{path}: checkpoint field {key!r} must be a mapping, not {type(ckpt[key]).__name__}")
    for key in _OPTIONAL_MAPPINGS:
        if ckpt.get(key) is not None and not isinstance(ckpt[key], dict):
            raise CheckpointError(f"{path}: checkpoint field {key!r} must be a mapping, not {type(ckpt[key]).__name__}")
    enlarge = (ckpt.get("inference") or {}).get("enlarge")
    if enlarge is not None:
        good = isinstance(enlarge, dict) and all(
            isinstance(k, str)
            and isinstance(v, (int, float))
            and not isinstance(v, bool)
            and math.isfinite(v)
            and v > -1
            for k, v in enlarge.items()
        )
        if not good:
            raise CheckpointError(
                f"{path}: checkpoint field inference['enlarge'] must map box styles to finite numbers > -1, "
                f"got {enlarge!r}"
            )


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
    """A small inference-only file: model weights (fp16 by default), spec, schema, codec, metrics, inference
    hints, and the run's config (so ``awing eval`` crops test faces the way the model was trained)."""
    state = {k: v.half() if half and v.is_floating_point() else v for k, v in ckpt["model"].items()}
    keep = {k: ckpt[k] for k in ("spec", "schema", "codec", "metrics", "epoch", "config", "inference") if k in ckpt}
    return save_checkpoint(path, {"model": state, **keep, **(extra or {})})
