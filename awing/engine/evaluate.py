"""Evaluation: ``awing eval CHECKPOINT [FORMAT:ROOT:SPLIT ...]``.

Predicts every face of a test set (no augmentation; optional flip test), maps the decoded points back
to original-image pixels, and scores them with :func:`awing.engine.metrics.evaluate_predictions`.
Writes ``results.json``, ``results.md`` (the paper's table layout), ``results_ced.png`` and a grid of
predictions drawn on images.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
from pathlib import Path

import cv2
import numpy as np
import torch
from tqdm import tqdm

from awing.core.checkpoint import load_checkpoint
from awing.core.config import Config, config_from_dict
from awing.data.build import build_dataset, dataset_schema, read_split
from awing.data.dataset import LandmarkDataset, build_loader
from awing.engine import distributed
from awing.engine.metrics import CONVENTION_NAMES, POOLINGS, evaluate_predictions
from awing.engine.reports import make_results, predictions_grid, write_results
from awing.engine.runtime import environment
from awing.method.codec import HeatmapCodec
from awing.method.decode import DECODERS
from awing.method.model import model_from_checkpoint, predict_heatmaps
from awing.pretrained import PRETRAINED_DIR, resolve_model
from awing.schemas import Schema, map_points, point_mapping

log = logging.getLogger("awing.eval")


@dataclasses.dataclass
class Evaluation:
    """One test set's predictions and metrics.

    Attributes:
        pred, gt: (M, N, 2) points in original-image pixels.
        confidence: (M, N) peak heatmap values.
        metrics: the dict of :func:`evaluate_predictions`.
        samples: the M samples, in order.
    """

    pred: np.ndarray
    gt: np.ndarray
    confidence: np.ndarray
    metrics: dict
    samples: list

    @property
    def nme(self) -> float:
        return float(self.metrics["nme"])

    def summary(self, prefix: str = "val_") -> dict:
        """The headline figures as flat keys, the spelling of metrics.csv and of a checkpoint's
        ``metrics``: ``val_nme``, ``val_fr@0.08``, ``val_auc@0.08``, ... (fractions)."""
        m = self.metrics
        out = {f"{prefix}nme": m["nme"]}
        out.update({f"{prefix}fr@{k}": v for k, v in m["fr"].items()})
        out.update({f"{prefix}auc@{k}": v for k, v in m["auc"].items()})
        return out


def common_layout(
    model: Schema, data: Schema, pred: np.ndarray, gt: np.ndarray
) -> tuple[Schema, np.ndarray, np.ndarray]:
    """The layout a model is scored in on data of another layout, and the points mapped into it.

    The ground truth is mapped into the model's layout when the schemas declare how (a 68-point set
    scoring a 14-point model), else the predictions into the data's (a 68-point model on 14-point data);
    the same layout scores as it is. Points are (M, N, 2) arrays in image pixels.

    Raises:
        ValueError: no declared point mapping connects the two layouts.
    """
    if model.name == data.name:
        return model, pred, gt
    to_model = point_mapping(data, model)
    if to_model is not None:
        return model, pred, map_points(gt, to_model)
    to_data = point_mapping(model, data)
    if to_data is not None:
        return data, map_points(pred, to_data), gt
    raise ValueError(
        f"a {model.name} model cannot be scored on {data.name} data: the schemas declare no point mapping "
        "between them (from_schemas in the schema YAML)"
    )


def evaluate_model(
    model, codec: HeatmapCodec, dataset: LandmarkDataset, schema: Schema, cfg: Config, device, info=None,
    amp_dtype=None, progress: bool = False, convention: str | None = None, pooling: str | None = None,
) -> Evaluation:
    """Predict and score every sample of ``dataset`` (split over ranks under DDP, gathered on all).

    Unreadable images are left out of the scores and counted in ``metrics["num_skipped"]`` (their paths,
    up to 20, in ``metrics["skipped_images"]``). ``progress`` shows a bar over batches on the main rank
    (the eval CLI; training logs one line instead). ``convention`` / ``pooling``: see
    :func:`awing.engine.metrics.evaluate_predictions` (None: the schema's default normaliser, per-image mean).
    """
    info = info or distributed.DistInfo()
    was_training = model.training
    model.eval()
    indices = list(range(info.rank, len(dataset), info.world_size))
    loader = build_loader(
        torch.utils.data.Subset(dataset, indices), cfg.eval.batch_size or cfg.optim.batch_size, shuffle=False,
        workers=cfg.data.workers, seed=cfg.train.seed, drop_last=False,
    )  # fmt: skip
    flip = schema.flip_permutation if cfg.eval.flip_test else None
    parts = []
    for batch in tqdm(loader, desc="evaluate", unit="batch", leave=False, disable=not (progress and info.is_main)):
        if batch["image"].shape[0] == 0:
            continue
        images = batch["image"].to(device).float().div_(255)
        points, conf = codec.decode(predict_heatmaps(model, images, amp_dtype, flip))
        pred = codec.to_image(points.cpu().double(), batch["affine"].double())
        parts.append((batch["index"].tolist(), pred.numpy(), conf.cpu().numpy()))
    model.train(was_training)
    gathered = [p for rank_parts in distributed.all_gather_objects(parts, info) for p in rank_parts]
    order = [i for idx, _, _ in gathered for i in idx]
    pred = np.concatenate([p for _, p, _ in gathered]) if gathered else np.zeros((0, schema.num_points, 2))
    conf = np.concatenate([c for _, _, c in gathered]) if gathered else np.zeros((0, schema.num_points))
    skipped = sorted(set(range(len(dataset))) - set(order))  # unreadable images: in no rank's predictions
    sort = np.argsort(order, kind="stable")
    samples = [dataset.samples[order[i]] for i in sort]
    pred, conf = pred[sort], conf[sort]
    gt = np.stack([s.landmarks for s in samples]).astype(np.float64) if samples else np.zeros_like(pred)
    boxes = np.stack([dataset.face_box(s) for s in samples]) if samples else np.zeros((0, 4))
    scored_in, pred_scored, gt_scored = common_layout(schema, dataset.schema, pred, gt)
    metrics = evaluate_predictions(
        pred_scored, gt_scored, scored_in, boxes=boxes, attributes=[s.attributes for s in samples],
        normaliser=cfg.eval.normaliser, thresholds=cfg.eval.thresholds, convention=convention, pooling=pooling,
    )  # fmt: skip
    if scored_in.name != schema.name or scored_in.name != dataset.schema.name:
        metrics["scored_in"] = f"{scored_in.name} (model {schema.name}, data {dataset.schema.name})"
    metrics["num_skipped"] = len(skipped)
    metrics["skipped_images"] = [dataset.samples[i].image for i in skipped[:20]]
    return Evaluation(pred, gt, conf, metrics, samples)


def draw_examples(evaluation: Evaluation, path: Path, count: int = 16, seed: int = 0) -> Path | None:
    """A grid of the worst and some random predictions (red) against the ground truth (green)."""
    if not evaluation.samples:
        return None
    nme = np.nan_to_num(np.asarray(evaluation.metrics["per_image_nme"], dtype=float), nan=-1)
    worst = list(np.argsort(-nme)[: count // 2])
    rest = [i for i in np.random.default_rng(seed).permutation(len(nme)) if i not in worst][
        : count - len(worst)
    ]
    chosen = worst + rest
    images = []
    for i in chosen:
        img = cv2.imread(evaluation.samples[i].image, cv2.IMREAD_COLOR)
        images.append(
            np.zeros((64, 64, 3), np.uint8) if img is None else cv2.cvtColor(img, cv2.COLOR_BGR2RGB)
        )
    return predictions_grid(images, evaluation.pred[chosen], evaluation.gt[chosen], path)


def write_evaluation(
    evaluations: dict[str, Evaluation], run_dir: Path, cfg: Config, schema: Schema, device=None, env=None
) -> dict:
    """results.json / .md / CED png plus one prediction grid per test set; returns the results dict.

    ``env``: :func:`awing.engine.runtime.environment` as taken when the work started (training records
    the commit its code was loaded from, not the one checked out when it ends); None: taken now."""
    results = make_results(cfg.train.name or run_dir.name, schema, {k: v.metrics for k, v in evaluations.items()},
                           cfg.to_dict(), env or environment(device))  # fmt: skip
    paths = write_results(results, run_dir)
    for split, ev in evaluations.items():
        draw_examples(ev, run_dir / f"predictions_{split}.png")
    log.info("wrote %s", ", ".join(str(p) for p in paths.values()))
    return results


# ------------------------------------------------------------------------------------------------ CLI
def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "checkpoint", help="a .pt file written by awing train (best.pt / last.pt) or a shipped model's name"
    )
    parser.add_argument(
        "data", nargs="*",
        help="test sets as FORMAT:ROOT:SPLIT (e.g. wflw:/data/WFLW:test); default: the run's val and test splits",
    )  # fmt: skip
    parser.add_argument(
        "--out", help="output folder (default: the checkpoint's folder; runs/eval/NAME for a shipped model)"
    )
    parser.add_argument(
        "--flip-test", action=argparse.BooleanOptionalAction, default=None,
        help="average with the mirrored image's prediction (default: as the run was validated, eval.flip_test)",
    )  # fmt: skip
    parser.add_argument(
        "--decoder", choices=DECODERS,
        help="sub-pixel decoder: quarter (the paper's) or dark (Taylor step on the log heatmap); default: the model's",
    )  # fmt: skip
    parser.add_argument("--normaliser", help="NME normaliser name (default: the schema's protocol one)")
    parser.add_argument(
        "--convention", choices=sorted(CONVENTION_NAMES),
        help="named evaluation convention (normaliser + pooling): paper (default), authors, hrnet, mmpose",
    )  # fmt: skip
    parser.add_argument(
        "--pooling", choices=list(POOLINGS),
        help="NME aggregate: per_image (mean of per-image NMEs, the paper's) or pooled (mmpose: all points)",
    )  # fmt: skip
    parser.add_argument("--device", default="auto")
    parser.add_argument("--batch-size", type=int, help="evaluation batch size (eval.batch_size; default: the run's)")


def parse_data_spec(spec: str) -> tuple[str, str, str]:
    parts = spec.split(":")
    if len(parts) < 3:
        raise ValueError(f"test set {spec!r} is not FORMAT:ROOT:SPLIT")
    return parts[0], ":".join(parts[1:-1]), parts[-1]


def evaluate_splits(
    model, codec: HeatmapCodec, schema: Schema, cfg: Config, specs: list[tuple[str, str, str]], device,
    info=None, amp_dtype=None, progress: bool = False, crop_rule: dict | None = None,
    convention: str | None = None, pooling: str | None = None,
) -> dict[str, Evaluation]:
    """Evaluate on each ``(format, root, split)``; keys are the split names (``format:split`` when two
    specs share a split name). Prints one line per set on the main rank.

    ``crop_rule``: a model's stored crop rule (``checkpoint["inference"]["crop"]``; None: the config's
    ``square_box`` crop). ``convention`` / ``pooling``: see :func:`awing.engine.metrics.evaluate_predictions`.
    """
    info = info or distributed.DistInfo()
    evaluations = {}
    for fmt, root, split in specs:
        samples = read_split(cfg.data, split, fmt, root)
        own = fmt == cfg.data.format and str(root) == str(cfg.data.root)  # the run's own data: the model's layout
        layout = schema if own else dataset_schema(cfg.data, samples, fmt, root)
        dataset = build_dataset(cfg, samples, layout, codec.input_size, crop_rule=crop_rule)
        ev = evaluate_model(model, codec, dataset, schema, cfg, device, info, amp_dtype, progress=progress,
                            convention=convention, pooling=pooling)  # fmt: skip
        evaluations[split if len({s[2] for s in specs}) == len(specs) else f"{fmt}:{split}"] = ev
        if info.is_main:
            skipped = f" ({ev.metrics['num_skipped']} unreadable, not scored)" if ev.metrics["num_skipped"] else ""
            print(f"{fmt}:{split}: {len(samples)} faces{skipped}, NME {100 * ev.nme:.2f}%, "
                  + ", ".join(f"{k} {v:.4f}" for k, v in ev.summary("").items() if k != "nme"))  # fmt: skip
    return evaluations


def default_out(checkpoint: Path) -> Path:
    """Where ``awing eval`` writes without ``--out``: beside a run's checkpoint, but never into the
    installed package (a shipped model goes to ``runs/eval/NAME``)."""
    if checkpoint.resolve().parent == PRETRAINED_DIR.resolve():
        return Path("runs/eval") / checkpoint.stem
    return checkpoint.parent


def run(args: argparse.Namespace) -> int:
    checkpoint = resolve_model(args.checkpoint)
    out = Path(args.out) if args.out else default_out(checkpoint)
    if out.exists() and not out.is_dir():  # before any work
        raise ValueError(f"--out {out} is a file; give a folder for results.json and the reports")
    ckpt = load_checkpoint(checkpoint)
    _, device = distributed.setup(args.device)
    model, schema, codec = model_from_checkpoint(ckpt, device)
    cfg = config_from_dict(ckpt["config"]) if "config" in ckpt else Config()
    if args.flip_test is not None:
        cfg.eval.flip_test = args.flip_test
    if getattr(args, "decoder", None):
        codec = dataclasses.replace(codec, decoder=args.decoder)
    cfg.eval.decoder = codec.decoder
    cfg.eval.normaliser = args.normaliser or cfg.eval.normaliser
    if args.batch_size is not None:
        if args.batch_size < 1:
            raise ValueError(f"--batch-size must be >= 1, got {args.batch_size}")
        cfg.eval.batch_size = args.batch_size
    if args.data:
        specs = [parse_data_spec(s) for s in args.data]
    else:
        d = cfg.data
        specs = [(d.format, d.root, s) for s in [d.val_split, *d.test_splits] if s]
    crop_rule = (ckpt.get("inference") or {}).get("crop")  # e.g. the authors' crop of an imported model
    convention, pooling = getattr(args, "convention", None), getattr(args, "pooling", None)
    evaluations = evaluate_splits(model, codec, schema, cfg, specs, device, progress=True, crop_rule=crop_rule,
                                  convention=convention, pooling=pooling)  # fmt: skip
    write_evaluation(evaluations, out, cfg, schema, device)
    return 0
