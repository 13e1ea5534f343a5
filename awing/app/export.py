"""``awing export``: a checkpoint as ONNX, or as a small fp16 weights file for ``FaceAligner``.

ONNX: input ``image`` (B, 3, S, S) float32 RGB in [0, 1]; output ``heatmaps`` (B, N, S/r, S/r), r the model's
heatmap stride (4, or 2): the last stack's landmark heatmaps (the boundary channel is dropped). The batch axis
is dynamic. Decode them with the decoder named in the ``awing_codec`` metadata (``quarter``: :func:`awing.method.decode.
decode_heatmaps`, argmax and a quarter-pixel shift toward the larger neighbour; ``dark``:
:func:`awing.method.decode.dark_refine`), then ``c = (h + 0.5) * r - 0.5``. The file's metadata also
holds the schema name, point names, input size.

Weights: :func:`awing.core.checkpoint.export_weights` (fp16 model, spec, schema, metrics), plus with
``--calibrate`` the crop enlargement and centre offset that make each detector's boxes match the
model's training crops (``inference.enlarge``, ``inference.offset``), measured on the run's validation
images (:func:`awing.detect.calibrate.calibrate_crops`), and with ``--face-quality`` the is_face cut.
``--decoder`` stores a sub-pixel decoder in the file's codec (ONNX: in its ``awing_codec`` metadata) and,
for weights, re-measures the file's validation figures with it (its fp16 weights, the run's val split),
so that ``awing models`` and the file's ``metrics`` say what the file gives. ``--flip-test`` records that
``FaceAligner`` runs the mirrored crop too by default (its figures then re-measured with the flip test).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import warnings
from pathlib import Path

import numpy as np
import torch

from awing.core.checkpoint import checkpoint_metrics, export_weights, load_checkpoint, save_checkpoint
from awing.core.config import config_from_dict
from awing.core.extras import require
from awing.data.hints import REFINE_HINTS, inference_hints
from awing.detect.calibrate import calibration_hints
from awing.engine.evaluate import evaluate_splits
from awing.method.codec import build_codec
from awing.method.decode import DECODERS, describe_decoders
from awing.method.model import model_from_checkpoint
from awing.pretrained import resolve_model

log = logging.getLogger(__name__)

__all__ = ["LastStackHeatmaps", "export_onnx", "check_onnx"]


MIN_OPSET = 11  # ONNX Resize follows PyTorch's upsampling from 11 on; before 9 the CoordConv meshgrid fails


def check_opset(opset) -> int:
    """``opset`` as an int the exporter takes: ``MIN_OPSET`` to torch's newest TorchScript-export opset."""
    try:
        from torch.onnx._constants import ONNX_TORCHSCRIPT_EXPORTER_MAX_OPSET as newest
    except ImportError:  # a torch without the constant: let the exporter judge the upper end
        newest = None
    if isinstance(opset, bool) or not isinstance(opset, (int, np.integer)):
        raise ValueError(f"ONNX opset must be an integer, got {opset!r}")
    if opset < MIN_OPSET or (newest is not None and opset > newest):
        top = newest if newest is not None else "the newest this torch knows"
        raise ValueError(f"ONNX opset {opset} is not supported: use {MIN_OPSET} to {top} (default 17)")
    return int(opset)


class LastStackHeatmaps(torch.nn.Module):
    """The model reduced to what inference needs: (B, 3, S, S) -> the last stack's (B, N, S/r, S/r)."""

    def __init__(self, model: torch.nn.Module, num_points: int) -> None:
        super().__init__()
        self.model, self.num_points = model, int(num_points)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.model(images)[-1][:, : self.num_points]


def export_onnx(model: torch.nn.Module, schema, path: str | Path, opset: int = 17, codec=None) -> Path:
    """Write ``model`` (a StackedHourglass, any mode; exported in eval mode) as ONNX with a dynamic batch.

    Uses the TorchScript exporter (``dynamo=False``: no extra dependency); where a torch version lacks it,
    the dynamo exporter, which needs ``pip install onnxscript``.
    """
    onnx = require("onnx", "onnx", "ONNX export")
    opset = check_opset(opset)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    net = LastStackHeatmaps(model, schema.num_points).cpu().float().eval()  # eval(): BN running stats
    size = model.spec.input_size
    example = torch.rand(2, 3, size, size)
    kwargs = dict(
        input_names=["image"],
        output_names=["heatmaps"],
        opset_version=int(opset),
        dynamic_axes={"image": {0: "batch"}, "heatmaps": {0: "batch"}},
    )
    try:
        with warnings.catch_warnings():  # the legacy exporter's deprecation notice; it is still the lean one
            warnings.simplefilter("ignore", DeprecationWarning)
            # CoordConv reads its map size as a Python int on purpose: the coordinates become constants
            warnings.simplefilter("ignore", torch.jit.TracerWarning)
            torch.onnx.export(net, (example,), str(path), dynamo=False, **kwargs)
    except (TypeError, NotImplementedError, RuntimeError) as err:  # a torch without the legacy exporter
        log.info("TorchScript ONNX export unavailable (%s); using the dynamo exporter", err)
        require("onnxscript", "pip:onnxscript", "ONNX export with this torch (its dynamo exporter)")
        torch.onnx.export(net, (example,), str(path), dynamo=True, **kwargs)
    proto = onnx.load(str(path))
    meta = {
        "awing_schema": schema.name,
        "awing_point_names": json.dumps(list(schema.point_names)),
        "awing_input_size": str(size),
        "awing_input": "image: (B, 3, S, S) float32 RGB in [0, 1]",
        "awing_output": "heatmaps: (B, N, S/r, S/r) last-stack landmark heatmaps, r = input size / heatmap size",
        "awing_codec": json.dumps((codec or build_codec(model.spec)).to_dict()),
    }
    for key, value in meta.items():
        proto.metadata_props.add(key=key, value=value)
    onnx.save(proto, str(path))
    return path


def check_onnx(model: torch.nn.Module, path: str | Path, batch: int = 3, atol: float = 1e-4) -> float:
    """Run the ONNX file with ONNX Runtime and PyTorch on the same random batch.

    Returns the largest absolute difference of the heatmaps. Raises ValueError if it exceeds ``atol``.
    """
    ort = require("onnxruntime", "onnx", "checking an ONNX export")
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    size = model.spec.input_size
    x = torch.rand(batch, 3, size, size, generator=torch.Generator().manual_seed(0))
    num_points = session.get_outputs()[0].shape[1]
    with torch.inference_mode():
        expected = LastStackHeatmaps(model, num_points).cpu().float().eval()(x).numpy()
    got = session.run(None, {"image": x.numpy()})[0]
    diff = float(np.abs(got - expected).max())
    if not diff <= atol:
        raise ValueError(f"ONNX Runtime and PyTorch heatmaps differ by {diff:.3g} (> {atol:g})")
    return diff


def remeasure_validation(path: Path) -> dict:
    """Score a written weights file (its own fp16 weights and decoder, with the flip test only where the file
    turns it on, as ``FaceAligner`` runs it by default) on its run's val split and store those figures as its
    ``metrics`` (``val_nme``, ...; ``val_measured`` says how), with ``eval.flip_test`` set likewise in its
    config so that ``awing eval FILE`` gives them again. Returns them; {} and a warning, leaving the file's figures as
    they were, when the file has no run config with a val split or the data cannot be read."""
    ckpt = load_checkpoint(path)
    cfg = config_from_dict(ckpt["config"]) if ckpt.get("config") else None
    if cfg is None or not cfg.data.val_split:
        log.warning("%s: no run config with a val split, so its validation figures are the checkpoint's", path)
        return {}
    hints = inference_hints(ckpt)
    cfg.eval.flip_test = bool(hints.flip_test)
    model, schema, codec = model_from_checkpoint(ckpt)
    spec = (cfg.data.format, cfg.data.root, cfg.data.val_split)
    crop_rule = hints.crop
    try:
        evaluation = evaluate_splits(model, codec, schema, cfg, [spec], torch.device("cpu"), crop_rule=crop_rule)
    except (OSError, ValueError) as err:
        log.warning("could not re-measure %s on %s: %s; its validation figures are the checkpoint's", path, spec, err)
        return {}
    figures = next(iter(evaluation.values())).summary("val_")
    dtype = next(v.dtype for v in ckpt["model"].values() if v.is_floating_point())
    flip = ", flip test" if cfg.eval.flip_test else ""
    figures["val_measured"] = f"awing export: {str(dtype).replace('torch.', '')} weights, decoder {codec.decoder}{flip}"
    save_checkpoint(path, {**ckpt, "metrics": {**checkpoint_metrics(ckpt), **figures}, "config": cfg.to_dict()})
    return figures


# ------------------------------------------------------------------------------------------ awing export
def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("checkpoint", help="checkpoint path or shipped model name")
    parser.add_argument("--format", choices=["onnx", "weights"], default="onnx")
    parser.add_argument("--out", required=True, help="output file (.onnx or .pt)")
    parser.add_argument("--opset", type=int, default=17, help=f"ONNX opset, {MIN_OPSET} or newer (default 17)")
    parser.add_argument("--check", action="store_true", help="onnx: compare with PyTorch in ONNX Runtime")
    parser.add_argument("--fp32", action="store_true", help="weights: keep fp32 (default fp16)")
    parser.add_argument(
        "--calibrate",
        nargs="?",
        const="config",
        metavar="FORMAT:ROOT:SPLIT",
        help="weights: record per-detector crop enlargement and centre offset, measured on the val split (or this)",
    )
    parser.add_argument(
        "--decoder",
        choices=DECODERS,
        help=f"store this sub-pixel decoder in the file: {describe_decoders()}; default: the checkpoint's",
    )
    parser.add_argument(
        "--face-quality",
        type=float,
        metavar="CUT",
        help="weights: record this is_face cut on the mean point confidence (benchmarks/group_photo.py --calibrate)",
    )
    parser.add_argument(
        "--refine",
        choices=REFINE_HINTS,
        help="weights: record what FaceAligner(refine='auto') does with this model's second pass "
        "(never: a fast model whose second pass does not pay; benchmarks/second_pass.py)",
    )
    parser.add_argument(
        "--flip-test",
        action=argparse.BooleanOptionalAction,
        help="weights: record whether FaceAligner() runs the mirrored crop too by default (a model small enough "
        "that the flip test's gain is worth a second forward pass; benchmarks.peers NAME+flip)",
    )


def _write_weights(args: argparse.Namespace, ckpt: dict, codec, out: Path) -> int:
    """``awing export --format weights``: the fp16 (or fp32) file with its inference hints (the checkpoint's,
    plus ``--calibrate`` / ``--face-quality``) and, with ``--decoder``, its codec and re-measured figures."""
    if args.face_quality is not None and not 0.0 <= args.face_quality <= 1.0:
        raise ValueError(f"--face-quality must be in [0, 1] (a mean heatmap peak), got {args.face_quality}")
    hints = calibration_hints(ckpt, args.calibrate) if args.calibrate else inference_hints(ckpt)
    if args.face_quality is not None:
        hints = dataclasses.replace(hints, face_quality=float(args.face_quality))
    if args.refine is not None:
        hints = dataclasses.replace(hints, refine=args.refine)
    if args.flip_test is not None:
        hints = dataclasses.replace(hints, flip_test=args.flip_test)
    if args.calibrate:
        log.info("crop enlargement per detector: %s; centre offset: %s", hints.enlarge, hints.offset)
    extra = {"inference": hints.to_dict()}
    if args.decoder:
        extra["codec"] = codec.to_dict()
    export_weights(ckpt, out, half=not args.fp32, extra=extra)
    if args.decoder or args.flip_test is not None:
        remeasure_validation(out)
    log.info("wrote %s (%.1f MB)", out, out.stat().st_size / 2**20)
    return 0


def run(args: argparse.Namespace) -> int:
    out = Path(args.out)
    if out.is_dir():
        suffix = ".onnx" if args.format == "onnx" else ".pt"
        raise ValueError(f"--out {out} is a folder; give the file to write, e.g. {out / ('model' + suffix)}")
    if args.format == "onnx":  # before any work: the opset, the extras
        check_opset(args.opset)
        require("onnx", "onnx", "awing export --format onnx")
        if args.check:
            require("onnxruntime", "onnx", "awing export --check")
    path = resolve_model(args.checkpoint)
    ckpt = load_checkpoint(path)
    model, schema, codec = model_from_checkpoint(ckpt)  # a checkpoint that does not rebuild is not exported
    if args.decoder:
        codec = dataclasses.replace(codec, decoder=args.decoder)
    if args.format == "weights":
        return _write_weights(args, ckpt, codec, out)
    export_onnx(model, schema, out, opset=args.opset, codec=codec)
    log.info("wrote %s (%.1f MB)", out, out.stat().st_size / 2**20)
    if args.check:
        log.info("ONNX Runtime vs PyTorch: max |difference| %.2e", check_onnx(model, out))
    return 0
