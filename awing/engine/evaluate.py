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

from awing.data.dataset import LandmarkDataset, build_loader
from awing.data.readers import read_dataset
from awing.engine import distributed
from awing.engine.checkpoint import load_checkpoint, model_from_checkpoint
from awing.engine.config import Config, config_from_dict
from awing.engine.metrics import evaluate_predictions
from awing.engine.reports import make_results, predictions_grid, write_results
from awing.engine.runtime import environment
from awing.method.decode import decode_heatmaps, heatmap_to_image
from awing.method.model import predict_heatmaps
from awing.schemas import Schema

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

    def summary(self) -> dict:
        m = self.metrics
        out = {"nme": m["nme"]}
        out.update({f"fr@{k}": v for k, v in m["fr"].items()})
        out.update({f"auc@{k}": v for k, v in m["auc"].items()})
        return out


def evaluate_model(
    model, dataset: LandmarkDataset, schema: Schema, cfg: Config, device, info=None, amp_dtype=None,
    progress: bool = False,
) -> Evaluation:
    """Predict and score every sample of ``dataset`` (split over ranks under DDP, gathered on all).

    ``progress`` shows a bar over batches on the main rank (the eval CLI; training logs one line instead).
    """
    info = info or distributed.DistInfo()
    was_training = model.training
    model.eval()
    indices = list(range(info.rank, len(dataset), info.world_size))
    loader = build_loader(
        torch.utils.data.Subset(dataset, indices), cfg.optim.batch_size, shuffle=False, workers=cfg.data.workers,
        seed=cfg.train.seed, drop_last=False,
    )  # fmt: skip
    stride = model.spec.input_size / model.spec.heatmap_size
    flip = schema.flip_permutation if cfg.eval.flip_test else None
    parts = []
    for batch in tqdm(loader, desc="evaluate", unit="batch", leave=False, disable=not (progress and info.is_main)):
        if batch["image"].shape[0] == 0:
            continue
        images = batch["image"].to(device).float().div_(255)
        heat = predict_heatmaps(model, images, amp_dtype, flip)
        points, conf = decode_heatmaps(heat)
        pred = heatmap_to_image(points.cpu().double(), stride, batch["affine"].double())
        parts.append((batch["index"].tolist(), pred.numpy(), conf.cpu().numpy()))
    model.train(was_training)
    gathered = [p for rank_parts in distributed.all_gather_objects(parts, info) for p in rank_parts]
    order = [i for idx, _, _ in gathered for i in idx]
    pred = np.concatenate([p for _, p, _ in gathered]) if gathered else np.zeros((0, schema.num_points, 2))
    conf = np.concatenate([c for _, _, c in gathered]) if gathered else np.zeros((0, schema.num_points))
    sort = np.argsort(order, kind="stable")
    samples = [dataset.samples[order[i]] for i in sort]
    pred, conf = pred[sort], conf[sort]
    gt = np.stack([s.landmarks for s in samples]).astype(np.float64)
    boxes = np.stack([s.box if s.box is not None else s.landmark_box() for s in samples])
    metrics = evaluate_predictions(
        pred, gt, schema, boxes=boxes, attributes=[s.attributes for s in samples],
        normaliser=cfg.eval.normaliser, thresholds=cfg.eval.thresholds,
    )  # fmt: skip
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
    evaluations: dict[str, Evaluation], run_dir: Path, cfg: Config, schema: Schema, device=None
) -> dict:
    """results.json / .md / CED png plus one prediction grid per test set; returns the results dict."""
    results = make_results(cfg.train.name or run_dir.name, schema, {k: v.metrics for k, v in evaluations.items()},
                           cfg.to_dict(), environment(device))  # fmt: skip
    paths = write_results(results, run_dir)
    for split, ev in evaluations.items():
        draw_examples(ev, run_dir / f"predictions_{split}.png")
    log.info("wrote %s", ", ".join(str(p) for p in paths.values()))
    return results


# ------------------------------------------------------------------------------------------------ CLI
def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("checkpoint", help="a .pt file written by awing train (best.pt / last.pt)")
    parser.add_argument(
        "data", nargs="*",
        help="test sets as FORMAT:ROOT:SPLIT (e.g. wflw:/data/WFLW:test); default: the run's val and test splits",
    )  # fmt: skip
    parser.add_argument("--out", help="output folder (default: the checkpoint's folder)")
    parser.add_argument(
        "--flip-test", action="store_true", help="average with the mirrored image's prediction"
    )
    parser.add_argument("--normaliser", help="NME normaliser name (default: the schema's protocol one)")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--batch-size", type=int, default=16)


def parse_data_spec(spec: str) -> tuple[str, str, str]:
    parts = spec.split(":")
    if len(parts) < 3:
        raise ValueError(f"test set {spec!r} is not FORMAT:ROOT:SPLIT")
    return parts[0], ":".join(parts[1:-1]), parts[-1]


def run(args: argparse.Namespace) -> int:
    ckpt = load_checkpoint(args.checkpoint)
    _, device = distributed.setup(args.device)
    model, schema = model_from_checkpoint(ckpt, device)
    cfg = config_from_dict(ckpt["config"]) if "config" in ckpt else Config()
    cfg.eval.flip_test = args.flip_test or cfg.eval.flip_test
    cfg.eval.normaliser = args.normaliser or cfg.eval.normaliser
    cfg.optim.batch_size = args.batch_size
    if args.data:
        specs = [parse_data_spec(s) for s in args.data]
    else:
        d = cfg.data
        specs = [(d.format, d.root, s) for s in [d.val_split, *d.test_splits] if s]
    evaluations = {}
    for fmt, root, split in specs:
        options = cfg.data.options if fmt == cfg.data.format else {}
        samples = read_dataset(fmt, root, split, **options)
        dataset = LandmarkDataset(samples, schema, model.spec.input_size, model.spec.heatmap_size,
                                  crop=cfg.data.crop, enlarge=cfg.data.enlarge)  # fmt: skip
        ev = evaluate_model(model, dataset, schema, cfg, device, progress=True)
        evaluations[split if len({s[2] for s in specs}) == len(specs) else f"{fmt}:{split}"] = ev
        print(f"{fmt}:{split}: {len(samples)} faces, NME {100 * ev.nme:.2f}%, "
              + ", ".join(f"{k} {v:.4f}" for k, v in ev.summary().items() if k != "nme"))  # fmt: skip
    out = Path(args.out) if args.out else Path(args.checkpoint).parent
    write_evaluation(evaluations, out, cfg, schema, device)
    return 0
