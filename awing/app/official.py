"""The authors' released checkpoint as an awing model: ``awing import-official SRC --out DST.pt``.

The authors (protossw512/AdaptiveWingLoss, ``core/models.py`` ``FAN``) released one WFLW model; facexlib
redistributes the same file. It is ``{"state_dict": ...}`` (or the bare state dict) with their key names;
the network is the one :class:`awing.method.model.StackedHourglass` builds (4 stacks / 98 points: the same
24,153,036 parameters and the same state-dict shapes). :func:`import_official` renames the keys::

    conv1.conv.*            -> stem_conv.conv.*        bn1.*        -> stem.0.*
    conv2.* / conv3.* / conv4.*  -> stem.2.* / stem_tail.0.* / stem_tail.1.*
    m{i}.coordconv.conv.*   -> coord_convs.{i}.conv.*
    m{i}.b1_{l} / b2_{l} / b3_{l}  -> hourglasses.{i}.<inner x (4 - l)>.skip / down / up
    m{i}.b2_plus_1          -> hourglasses.{i}.inner.inner.inner.inner
    top_m_{i} / conv_last{i} / bn_end{i}  -> heads.{i}.0 / 1 / 2
    l{i} -> outputs.{i}     bl{i} -> merge_features.{i}     al{i} -> merge_heatmaps.{i}

and permutes the CoordConv input channels: theirs are (row, column, radius[, boundary row, boundary
column]) after the features, awing's (x, y, r[, B_x, B_y]); so input channels ``F`` and ``F + 1`` (and
``F + 3``, ``F + 4``) of the stem conv and of every hourglass's 1x1 CoordConv are swapped. Weights keep
their dtype (fp16 or fp32 files); loading uses ``torch.load(..., weights_only=True)``.

The written file is an ordinary awing checkpoint that carries the authors' decoder and frame
(:class:`awing.method.codec.AuthorsCodec`) and their crop (``inference.crop``, see
:func:`awing.data.crop.crop_square`), so ``FaceAligner`` and ``awing eval`` reproduce their chain.
Their input convention is awing's: RGB / 255, no mean / std.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import re
from pathlib import Path

import torch

from awing.core.checkpoint import CheckpointError, save_checkpoint
from awing.method.codec import AuthorsCodec
from awing.method.model import HourglassSpec, StackedHourglass
from awing.schemas import load_schema

log = logging.getLogger(__name__)

__all__ = ["import_official", "official_key_map", "AUTHORS_CROP", "SCHEMA_BY_POINTS"]

# The authors' WFLW crop (dataset/convert_WFLW.py then data/dataloader.py): see crop_square.
AUTHORS_CROP = {"kind": "authors", "pad": 0.05, "factor": 0.64, "integer": True, "clamp": True}
# Their code handles these landmark counts (data/dataloader.py AddBoundary).
SCHEMA_BY_POINTS = {98: "wflw98", 68: "w300_68", 29: "cofw29", 19: "aflw19"}


def _hourglass_path(level: int, depth: int) -> str:
    """awing's module path of the hourglass level ``level`` (theirs counts down from ``depth`` to 1)."""
    return ".inner" * (depth - level)


def official_key_map(stacks: int, depth: int = 4) -> dict[str, str]:
    """Their module prefixes -> awing's, for a model of ``stacks`` stacks and hourglass ``depth``."""
    out = {"conv1.conv": "stem_conv.conv", "bn1": "stem.0", "conv2": "stem.2", "conv3": "stem_tail.0",
           "conv4": "stem_tail.1"}
    for i in range(stacks):
        hg = f"hourglasses.{i}"
        out[f"m{i}.coordconv.conv"] = f"coord_convs.{i}.conv"
        for level in range(depth, 0, -1):
            path = hg + _hourglass_path(level, depth)
            out[f"m{i}.b1_{level}"] = f"{path}.skip"
            out[f"m{i}.b2_{level}"] = f"{path}.down"
            out[f"m{i}.b3_{level}"] = f"{path}.up"
        out[f"m{i}.b2_plus_1"] = hg + _hourglass_path(0, depth)
        out.update({f"top_m_{i}": f"heads.{i}.0", f"conv_last{i}": f"heads.{i}.1", f"bn_end{i}": f"heads.{i}.2",
                    f"l{i}": f"outputs.{i}"})
        if i < stacks - 1:
            out[f"bl{i}"] = f"merge_features.{i}"
            out[f"al{i}"] = f"merge_heatmaps.{i}"
    return out


def _rename(key: str, prefixes: dict[str, str]) -> str | None:
    """awing's name for one of their keys (the longest matching module prefix wins), or None."""
    best = None
    for theirs in prefixes:
        if key.startswith(theirs + ".") and (best is None or len(theirs) > len(best)):
            best = theirs
    return None if best is None else prefixes[best] + key[len(best) :]


def _swap_coordinate_channels(weight: torch.Tensor, features: int) -> torch.Tensor:
    """(out, features + 3 [+ 2], k, k) conv weight: their (row, col, r[, B_row, B_col]) input channels
    reordered to awing's (x, y, r[, B_x, B_y])."""
    order = list(range(weight.shape[1]))
    order[features], order[features + 1] = features + 1, features
    if weight.shape[1] == features + 5:
        order[features + 3], order[features + 4] = features + 4, features + 3
    return weight[:, order].clone()


def _state_dict_of(obj) -> dict[str, torch.Tensor]:
    """Their checkpoint's state dict (``{"state_dict": ...}``, or the bare dict), without a DataParallel
    ``module.`` prefix."""
    state = obj.get("state_dict", obj) if isinstance(obj, dict) else None
    if not isinstance(state, dict) or not state or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise CheckpointError("not the authors' checkpoint: no state dict of tensors (expected {'state_dict': ...})")
    if all(k.startswith("module.") for k in state):
        state = {k[len("module.") :]: v for k, v in state.items()}
    if "conv1.conv.weight" not in state or "l0.weight" not in state:
        found = ", ".join(sorted(state)[:4])
        raise CheckpointError(
            f"not the authors' AWing checkpoint: their keys 'conv1.conv.weight' and 'l0.weight' are missing "
            f"(found {found}, ...); for an awing checkpoint no import is needed"
        )
    return state


def import_official(path: str | Path) -> dict:
    """Read the authors' checkpoint and return an awing checkpoint payload (for :func:`save_checkpoint`).

    Args:
        path: their ``.pth`` file (e.g. ``WFLW_4HG.pth``), fp32 or fp16.
    Returns:
        ``{"model": state dict (their dtype), "spec": HourglassSpec fields, "schema": Schema.to_dict(),
        "codec": AuthorsCodec.to_dict(), "inference": {"crop": AUTHORS_CROP}, "source": {...}}``.
    Raises:
        FileNotFoundError: no such file. CheckpointError: not their layout, or shapes that do not fit.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint not found: {path}")
    try:
        raw = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # torch raises several types for files it cannot read
        raise CheckpointError(f"{path} is not a loadable PyTorch checkpoint: {err}") from err
    if isinstance(raw, dict) and raw.get("format", "").startswith("awing-checkpoint"):
        raise CheckpointError(f"{path} is already an awing checkpoint; no import is needed")
    state = _state_dict_of(raw)

    stacks = len({m.group(1) for k in state if (m := re.match(r"m(\d+)\.coordconv\.conv\.weight$", k))})
    depth = len({m.group(1) for k in state if (m := re.match(r"m0\.b1_(\d+)\.", k))})
    stem_out, stem_in = state["conv1.conv.weight"].shape[:2]
    num_points = int(state["l0.weight"].shape[0]) - 1
    if num_points not in SCHEMA_BY_POINTS:
        raise CheckpointError(f"{path}: {num_points} landmarks; the authors' layouts have {sorted(SCHEMA_BY_POINTS)}")
    if stem_in != 6:
        raise CheckpointError(f"{path}: the stem conv has {stem_in} input channels, expected 6 (RGB + row, col, r)")
    try:
        spec = HourglassSpec(num_points=num_points, stacks=stacks, width=4 * int(stem_out), depth=depth,
                             input_size=256, boundary=True, coordconv=True, boundary_coords=True)
    except ValueError as err:
        raise CheckpointError(f"{path}: unsupported architecture ({stacks} stacks, depth {depth}): {err}") from err

    prefixes = official_key_map(stacks, depth)
    renamed, unknown = {}, []
    for key, value in state.items():
        new = _rename(key, prefixes)
        if new is None:
            unknown.append(key)
        else:
            renamed[new] = value
    features = {"stem_conv.conv.weight": 3, **{f"coord_convs.{i}.conv.weight": spec.width for i in range(stacks)}}
    for key, f in features.items():
        if key in renamed:
            renamed[key] = _swap_coordinate_channels(renamed[key], f)

    expected = StackedHourglass(spec).state_dict()
    missing = sorted(set(expected) - set(renamed))
    wrong = [f"{k}: {tuple(v.shape)} vs {tuple(expected[k].shape)}" for k, v in renamed.items()
             if k in expected and v.shape != expected[k].shape]
    extra = sorted(set(renamed) - set(expected)) + unknown
    if missing or wrong or extra:
        raise CheckpointError(
            f"{path} does not fit a {stacks}-stack {num_points}-point FAN: "
            f"missing {missing[:3]}, unexpected {extra[:3]}, shape mismatches {wrong[:3]}"
        )
    model = {k: renamed[k] for k in expected}
    codec = AuthorsCodec(input_size=spec.input_size, heatmap_size=spec.heatmap_size)
    source = {
        "file": path.name,
        "layout": "protossw512/AdaptiveWingLoss FAN",
        "epoch": raw.get("epoch") if isinstance(raw, dict) and isinstance(raw.get("epoch"), int) else None,
    }
    return {
        "model": model,
        "spec": dataclasses.asdict(spec),
        "schema": load_schema(SCHEMA_BY_POINTS[num_points]).to_dict(),
        "codec": codec.to_dict(),
        "inference": {"crop": dict(AUTHORS_CROP)},
        "source": source,
    }


# -------------------------------------------------------------------------------- awing import-official
def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("src", metavar="SRC", help="the authors' checkpoint (.pth), e.g. WFLW_4HG.pth")
    parser.add_argument("--out", required=True, metavar="DST", help="the awing checkpoint to write (.pt)")
    parser.add_argument("--fp16", action="store_true", help="store the weights in fp16 (default: as in SRC)")


def run(args: argparse.Namespace) -> int:
    payload = import_official(args.src)
    if args.fp16:
        payload["model"] = {k: v.half() if v.is_floating_point() else v for k, v in payload["model"].items()}
    out = save_checkpoint(args.out, payload)
    spec = payload["spec"]
    log.info("wrote %s: %d stacks, %d points (%s), codec %s, crop %s", out, spec["stacks"], spec["num_points"],
             payload["schema"]["name"], payload["codec"]["name"], payload["inference"]["crop"]["kind"])
    return 0
