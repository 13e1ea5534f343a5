"""Evaluation: ``awing eval CHECKPOINT [FORMAT:ROOT:SPLIT ...]``.

Predicts every face of a test set (no augmentation; optional flip test), maps the decoded points back
to original-image pixels, and scores them with :func:`awing.engine.metrics.evaluate_predictions`.

A test set of another layout than the model's is scored over the points the schemas relate
(:func:`scoring_layout`): every point under a full declared mapping, only the corresponding ones under a
partial one (FG-NET's 29 and SCUT's 21 points shared with 300-W's 68), with the data set's declared
normaliser when its points are among them, else :data:`FALLBACK_NORMALISER` (the ground truth's
landmark-box size); the results then say how many points were scored (:func:`score_predictions`).

How a set is evaluated is one :class:`EvalSettings`, built by :meth:`EvalSettings.from_config` from a run's
config and, for ``awing eval``, its command-line flags. Test sets are :class:`DataSpec` (``FORMAT:ROOT:SPLIT``).

Files, in the output folder (the run's folder by default): the run's own data (its config's format and
root) goes to ``results.json``, ``results.md``, ``results_ced.png`` and ``predictions_SPLIT.png``, where
training writes them; any other set goes to files named by the set, ``results_FORMAT_SPLIT_HASH.json``
(``.md``, ``_ced.png``, and ``predictions_FORMAT_SPLIT_HASH_SPLIT.png``; HASH: of the root's absolute
path), so evaluating on another set never replaces the run's own results. Every file is written
atomically.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import logging
import math
import re
from pathlib import Path
from typing import NamedTuple

import cv2
import numpy as np
import torch
from tqdm import tqdm

from awing.core.checkpoint import load_checkpoint
from awing.core.config import Config, DataConfig, config_from_dict
from awing.data.build import build_dataset, dataset_schema, read_split
from awing.data.dataset import LandmarkDataset, build_loader
from awing.data.hints import inference_hints
from awing.engine import distributed
from awing.engine.metrics import CONVENTION_NAMES, POOLINGS, evaluate_predictions, resolve_convention
from awing.engine.reports import make_results, predictions_grid, write_results
from awing.engine.runtime import environment
from awing.method.codec import HeatmapCodec
from awing.method.decode import DECODERS, describe_decoders
from awing.method.model import model_from_checkpoint, predict_heatmaps
from awing.pretrained import PRETRAINED_DIR, resolve_model
from awing.schemas import Schema, map_points, point_mapping

log = logging.getLogger("awing.eval")

#: The stem of the results files of a run's own data.
RUN_RESULTS = "results"
#: How many unreadable images' paths a test set's metrics name.
MAX_UNREADABLE_NAMED = 20


# ------------------------------------------------------------------------------------------ settings
@dataclasses.dataclass(frozen=True)
class EvalSettings:
    """How a test set is evaluated: everything :func:`evaluate_model` uses besides the model and the data.

    Attributes:
        batch_size: images per forward pass (>= 1).
        workers: data-loader worker processes (0: in this process).
        seed: the loader's seed.
        flip_test: average with the mirrored image's prediction.
        decoder: a sub-pixel decoder (:data:`awing.method.decode.DECODERS`) replacing the codec's; None
            keeps the codec's (the model's own).
        normaliser: the main NME normaliser; None: the convention's (the schema's protocol one).
        thresholds: FR and AUC cut-offs, fractions.
        convention: a named convention (:data:`awing.engine.metrics.CONVENTIONS`); None: ``paper``.
        pooling: ``per_image`` or ``pooled``; None: the convention's.
    """

    batch_size: int = 16
    workers: int = 0
    seed: int = 0
    flip_test: bool = False
    decoder: str | None = None
    normaliser: str | None = None
    thresholds: tuple[float, ...] = (0.08, 0.10)
    convention: str | None = None
    pooling: str | None = None

    def __post_init__(self) -> None:
        if self.batch_size < 1:
            raise ValueError(f"evaluation batch size must be >= 1, got {self.batch_size}")
        if self.decoder is not None and self.decoder not in DECODERS:
            raise ValueError(f"unknown decoder {self.decoder!r}; known: {', '.join(DECODERS)}")

    @classmethod
    def from_config(
        cls,
        cfg: Config,
        *,
        batch_size: int | None = None,
        flip_test: bool | None = None,
        decoder: str | None = None,
        normaliser: str | None = None,
        convention: str | None = None,
        pooling: str | None = None,
    ) -> EvalSettings:
        """The settings of a run's config (``eval``; the batch size falls back to ``optim.batch_size``,
        workers and seed come from ``data`` and ``train``), each keyword that is not None replacing the
        config's value (the ``awing eval`` flags). ``cfg.eval.decoder`` is not read: it chose the codec
        that a checkpoint stores, and None here keeps that codec's decoder.

        Raises:
            ValueError: a batch size below 1, an unknown decoder.
        """
        e = cfg.eval
        return cls(
            batch_size=(e.batch_size or cfg.optim.batch_size) if batch_size is None else batch_size,
            workers=cfg.data.workers,
            seed=cfg.train.seed,
            flip_test=e.flip_test if flip_test is None else flip_test,
            decoder=decoder,
            normaliser=normaliser or e.normaliser,
            thresholds=tuple(float(t) for t in e.thresholds),
            convention=convention,
            pooling=pooling,
        )

    def recorded_config(self, cfg: Config) -> dict:
        """``cfg.to_dict()`` with its ``eval`` section saying what these settings did (the config stored
        beside the results)."""
        out = cfg.to_dict()
        out["eval"] = {
            **out["eval"],
            "batch_size": self.batch_size,
            "normaliser": self.normaliser,
            "thresholds": list(self.thresholds),
            "flip_test": self.flip_test,
            "decoder": self.decoder or out["eval"]["decoder"],
        }
        return out


class DataSpec(NamedTuple):
    """One test set, ``FORMAT:ROOT:SPLIT`` (a reader name, a dataset folder, a split name)."""

    format: str
    root: str
    split: str

    @classmethod
    def parse(cls, spec: str) -> DataSpec:
        """``"wflw:/data/WFLW:test"`` -> ``DataSpec("wflw", "/data/WFLW", "test")`` (the root may hold colons).

        Raises:
            ValueError: fewer than three colon-separated parts.
        """
        parts = spec.split(":")
        if len(parts) < 3:
            raise ValueError(f"test set {spec!r} is not FORMAT:ROOT:SPLIT")
        return cls(parts[0], ":".join(parts[1:-1]), parts[-1])

    def __str__(self) -> str:
        return f"{self.format}:{self.root}:{self.split}"

    def is_run_data(self, data: DataConfig) -> bool:
        """Whether this is a split of the run's own dataset (``data.format`` and ``data.root`` as written,
        the test the data readers use too)."""
        return self.format == data.format and str(self.root) == str(data.root)

    @property
    def results_name(self) -> str:
        """The stem of this set's results files when it is not the run's own data:
        ``results_FORMAT_SPLIT_HASH``, HASH being 8 hex digits of the root's absolute path."""
        root = str(Path(self.root).expanduser().resolve())
        digest = hashlib.sha256(root.encode()).hexdigest()[:8]
        return f"{RUN_RESULTS}_{_slug(self.format)}_{_slug(self.split)}_{digest}"


def run_data_specs(data: DataConfig) -> list[DataSpec]:
    """The run's own val and test splits (those it names)."""
    return [DataSpec(data.format, str(data.root), s) for s in [data.val_split, *data.test_splits] if s]


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9.-]+", "-", text).strip("-") or "-"


def parse_data_spec(spec: str) -> DataSpec:
    """:meth:`DataSpec.parse` (a tuple ``(format, root, split)``)."""
    return DataSpec.parse(spec)


# ---------------------------------------------------------------------------------------- evaluation
@dataclasses.dataclass
class Evaluation:
    """One test set's predictions and metrics.

    Attributes:
        pred, gt: (M, N, 2) points in original-image pixels.
        confidence: (M, N) peak heatmap values.
        metrics: the dict of :func:`evaluate_predictions`, plus ``num_unreadable`` / ``unreadable_images``.
        samples: the M samples, in order.
        spec: the test set, where it was named by one (:func:`evaluate_splits`).
    """

    pred: np.ndarray
    gt: np.ndarray
    confidence: np.ndarray
    metrics: dict
    samples: list
    spec: DataSpec | None = None

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


#: The NME normaliser of a partially mapped test set whose own (or asked-for) normaliser needs points that
#: are not scored: sqrt(w * h) of the tight box around every annotated ground-truth point in the data
#: set's own layout (all of them, not just the shared ones: the face's size whatever the two layouts share;
#: a sample's ``attributes["gt_box"]`` where a mixed-source run recorded it before mapping the points).
FALLBACK_NORMALISER = "gt_box"


@dataclasses.dataclass(frozen=True)
class ScoringLayout:
    """How a model of one layout is scored on data of another (:func:`scoring_layout`).

    Attributes:
        layout: the layout the points are compared in.
        gt_weights: (T, S) weights carrying the data's points into ``layout`` (None: they are in it).
        pred_weights: (T, S) weights carrying the model's points into ``layout`` (None: they are in it).
        shared: (T,) bool, the points of ``layout`` that both sides have; None: every point (the same
            layout, or a full mapping).
    """

    layout: Schema
    gt_weights: np.ndarray | None = None
    pred_weights: np.ndarray | None = None
    shared: np.ndarray | None = None

    def apply(self, pred: np.ndarray, gt: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(M, N, 2) predictions and ground truth in image pixels -> both in :attr:`layout`."""
        pred = pred if self.pred_weights is None else map_points(pred, self.pred_weights)
        gt = gt if self.gt_weights is None else map_points(gt, self.gt_weights)
        return pred, gt

    def scored(self, known: np.ndarray | None = None) -> np.ndarray | None:
        """(T,) the points of :attr:`layout` that are scored: :attr:`shared`, less those the data cannot
        have (``known``: (S,) bool in the data's layout, e.g. a source mapped into a run's layout); None:
        all of them."""
        shared = self.shared
        if known is not None and not np.all(known):
            known = np.asarray(known, dtype=bool)
            if self.gt_weights is not None:  # a layout point is known when every data point it uses is
                known = ~((self.gt_weights > 0) & ~known[None, :]).any(axis=1)
            shared = known if shared is None else shared & known
        return None if shared is None or shared.all() else shared


def scoring_layout(model: Schema, data: Schema) -> ScoringLayout:
    """The layout a model is scored in on data of another layout, and how each side gets into it.

    The ground truth is mapped into the model's layout when the schemas declare how (a 68-point set
    scoring a 14-point model), else the predictions into the data's (a 68-point model on 14-point data);
    the same layout scores as it is. Without a full mapping either way, a partial one (``from_schemas``
    rows ``[]``: FG-NET's or SCUT's points from 300-W's) in the same order of preference: only the points
    that correspond are scored (:attr:`ScoringLayout.shared`).

    Raises:
        ValueError: no declared point mapping connects the two layouts, or the only ones share no point.
    """
    if model.name == data.name:  # the data's copy: today's subsets and normalisers, not the checkpoint's
        return ScoringLayout(data)
    to_model = point_mapping(data, model)
    if to_model is not None:
        return ScoringLayout(model, gt_weights=to_model)
    to_data = point_mapping(model, data)
    if to_data is not None:
        return ScoringLayout(data, pred_weights=to_data)
    candidates = [
        (model, "gt_weights", point_mapping(data, model, partial=True)),
        (data, "pred_weights", point_mapping(model, data, partial=True)),
    ]
    found = [(layout, side, w) for layout, side, w in candidates if w is not None]
    for layout, side, weights in found:
        shared = weights.any(axis=1)
        if shared.any():
            return ScoringLayout(layout, **{side: weights}, shared=None if shared.all() else shared)
    if found:
        raise ValueError(
            f"a {model.name} model cannot be scored on {data.name} data: the declared point mapping between "
            "them (from_schemas in the schema YAML) shares no point"
        )
    raise ValueError(
        f"a {model.name} model cannot be scored on {data.name} data: the schemas declare no point mapping "
        "between them (from_schemas in the schema YAML)"
    )


def common_layout(
    model: Schema, data: Schema, pred: np.ndarray, gt: np.ndarray
) -> tuple[Schema, np.ndarray, np.ndarray]:
    """The layout a model is scored in on data of another layout (:func:`scoring_layout`), and the points
    mapped into it: (M, N, 2) arrays in image pixels. Under a partial mapping the ground truth is NaN
    (not scored) at the points the two layouts do not share.

    Raises:
        ValueError: no declared point mapping connects the two layouts, or none shares a point.
    """
    scoring = scoring_layout(model, data)
    pred, gt = scoring.apply(pred, gt)
    if scoring.shared is not None:
        gt = np.where(scoring.shared[:, None], gt, np.nan)
    return scoring.layout, pred, gt


def gt_box_sizes(gt: np.ndarray, attributes: list | None = None) -> np.ndarray:
    """(M,) :data:`FALLBACK_NORMALISER` distances: sqrt(w * h) of the tight box around each image's
    annotated points of ``gt`` ((M, N, 2), the data set's own layout), or the image's recorded
    ``attributes["gt_box"]`` where there is one (a source's faces mapped into a run's layout keep the box
    of their own annotation there); NaN for an image with no annotated point."""
    gt = np.asarray(gt, dtype=np.float64)
    out = np.full(len(gt), np.nan)
    for i, points in enumerate(gt):
        recorded = (attributes[i] or {}).get("gt_box") if attributes else None
        if recorded is not None:
            out[i] = float(recorded)
            continue
        finite = points[np.isfinite(points).all(axis=1)]
        if len(finite):
            w, h = finite.max(axis=0) - finite.min(axis=0)
            out[i] = math.sqrt(w * h)
    return out


def partial_normaliser(layout: Schema, scored: np.ndarray, settings: EvalSettings) -> tuple[str, str | None]:
    """The NME normaliser on a partial mapping, and why it is not the usual one (None when it is): the one
    ``settings`` ask for (``--normaliser``, else the convention's for ``layout``, its declared default)
    when it is a box normaliser or its points are all among ``scored`` ((T,) bool), else
    :data:`FALLBACK_NORMALISER`.

    Raises:
        ValueError: an explicitly asked-for normaliser needs points that are not scored.
    """
    name = settings.normaliser or resolve_convention(layout, settings.convention)[0]
    norm = layout.normalisers.get(name)
    if norm is None or norm.kind == "box":  # an annotation's box size, a face box, or unknown (named later)
        return name, None
    missing = sorted({int(i) for group in norm.groups for i in group if not scored[i]})
    if not missing:
        return name, None
    why = f"{layout.name}'s normaliser {name!r} needs points {missing}, which the model's layout does not give"
    if settings.normaliser:
        raise ValueError(f"{why}; leave the normaliser unset to use {FALLBACK_NORMALISER!r}")
    return FALLBACK_NORMALISER, f"{why}: sqrt(w * h) of the ground truth's landmark box instead"


def score_predictions(
    pred: np.ndarray,
    gt: np.ndarray,
    model: Schema,
    data: Schema,
    settings: EvalSettings,
    boxes: np.ndarray | None = None,
    attributes: list | None = None,
    known: np.ndarray | None = None,
) -> dict:
    """:func:`evaluate_predictions` of a ``model``-layout prediction against ``data``-layout ground truth
    ((M, N, 2) image pixels each), in the layout :func:`scoring_layout` chooses (named in ``scored_in``
    when it is not both the model's and the data's). ``known``: (N,) bool, the data's points its faces can
    have (a source mapped into a run's layout; None: all).

    Where only some points correspond (a partial mapping, or ``known``), only those are scored, with
    :func:`partial_normaliser`'s normaliser, and the metrics add ``num_points_scored`` (how many of the
    scoring layout's ``num_points_in_layout``), ``scored_points`` (their indices) and, where the fallback
    normaliser is used, ``normaliser_fallback`` (why). A full mapping scores as it always has.
    """
    scoring = scoring_layout(model, data)
    layout = scoring.layout
    pred_scored, gt_scored = scoring.apply(pred, gt)
    scored = scoring.scored(known)
    common = dict(
        boxes=boxes,
        attributes=attributes,
        thresholds=settings.thresholds,
        convention=settings.convention,
        pooling=settings.pooling,
    )
    if scored is None:
        metrics = evaluate_predictions(pred_scored, gt_scored, layout, normaliser=settings.normaliser, **common)
    else:
        normaliser, why = partial_normaliser(layout, scored, settings)
        metrics = evaluate_predictions(
            pred_scored,
            gt_scored,
            layout,
            normaliser=normaliser,
            mask=np.broadcast_to(scored, gt_scored.shape[:2]),
            distances={FALLBACK_NORMALISER: gt_box_sizes(gt, attributes)},
            **common,
        )
        metrics["num_points_scored"] = int(scored.sum())
        metrics["num_points_in_layout"] = layout.num_points
        metrics["scored_points"] = np.flatnonzero(scored).tolist()
        if why:
            metrics["normaliser_fallback"] = why
    if layout.name != model.name or layout.name != data.name:
        metrics["scored_in"] = f"{layout.name} (model {model.name}, data {data.name})"
    return metrics


def _predict(model, codec, dataset, schema, settings, device, info, amp_dtype, progress) -> list[tuple]:
    """This rank's share of ``dataset``: ``(dataset indices, (b, N, 2) image-pixel points, (b, N)
    confidences)`` per batch. Unreadable images come in no batch."""
    indices = list(range(info.rank, len(dataset), info.world_size))
    loader = build_loader(
        torch.utils.data.Subset(dataset, indices),
        settings.batch_size,
        shuffle=False,
        workers=settings.workers,
        seed=settings.seed,
        drop_last=False,
    )
    flip = schema.flip_permutation if settings.flip_test else None
    parts = []
    bars = None if progress and info.is_main else True  # None: no bars when stderr is not a terminal
    for batch in tqdm(loader, desc="evaluate", unit="batch", leave=False, disable=bars):
        if batch["image"].shape[0] == 0:
            continue
        images = batch["image"].to(device).float().div_(255)
        points, conf = codec.decode(predict_heatmaps(model, images, amp_dtype, flip))
        pred = codec.to_image(points.cpu().double(), batch["affine"].double())
        parts.append((batch["index"].tolist(), pred.numpy(), conf.cpu().numpy()))
    return parts


def _in_dataset_order(gathered: list[tuple], num_points: int) -> tuple[list[int], np.ndarray, np.ndarray]:
    """Every rank's batches as dataset indices, (M, N, 2) points and (M, N) confidences, sorted by index."""
    order = [i for idx, _, _ in gathered for i in idx]
    pred = np.concatenate([p for _, p, _ in gathered]) if gathered else np.zeros((0, num_points, 2))
    conf = np.concatenate([c for _, _, c in gathered]) if gathered else np.zeros((0, num_points))
    sort = np.argsort(order, kind="stable")
    return [order[i] for i in sort], pred[sort], conf[sort]


def _score(pred, samples, dataset: LandmarkDataset, schema: Schema, settings: EvalSettings) -> tuple[np.ndarray, dict]:
    """The ground truth of ``samples`` and :func:`score_predictions` of ``pred`` against it."""
    gt = np.stack([s.landmarks for s in samples]).astype(np.float64) if samples else np.zeros_like(pred)
    boxes = np.stack([dataset.face_box(s) for s in samples]) if samples else np.zeros((0, 4))
    known = getattr(dataset, "known_points", None)
    metrics = score_predictions(
        pred, gt, schema, dataset.schema, settings, boxes, [s.attributes for s in samples], known
    )
    return gt, metrics


def evaluate_model(
    model,
    codec: HeatmapCodec,
    dataset: LandmarkDataset,
    schema: Schema,
    settings: EvalSettings,
    device,
    info=None,
    amp_dtype=None,
    progress: bool = False,
) -> Evaluation:
    """Predict and score every sample of ``dataset`` (split over ranks under DDP, gathered on all).

    ``schema`` is the model's layout; ``settings`` says how (batch size, flip test, decoder, normaliser,
    convention, ...). Unreadable images are left out of the scores and counted in
    ``metrics["num_unreadable"]`` (their paths, up to 20, in ``metrics["unreadable_images"]``); images read
    but without a defined NME are ``metrics["num_unscored"]``. ``progress`` shows a bar over batches on
    the main rank (the eval CLI; training logs one line instead). The model's training mode is restored.
    """
    info = info or distributed.DistInfo()
    if settings.decoder is not None and settings.decoder != codec.decoder:
        codec = dataclasses.replace(codec, decoder=settings.decoder)
    was_training = model.training
    model.eval()
    try:
        parts = _predict(model, codec, dataset, schema, settings, device, info, amp_dtype, progress)
    finally:
        model.train(was_training)
    gathered = [p for rank_parts in distributed.all_gather_objects(parts, info) for p in rank_parts]
    order, pred, conf = _in_dataset_order(gathered, schema.num_points)
    samples = [dataset.samples[i] for i in order]
    gt, metrics = _score(pred, samples, dataset, schema, settings)
    unreadable = sorted(set(range(len(dataset))) - set(order))  # in no rank's predictions
    metrics["num_unreadable"] = len(unreadable)
    metrics["unreadable_images"] = [dataset.samples[i].image for i in unreadable[:MAX_UNREADABLE_NAMED]]
    return Evaluation(pred, gt, conf, metrics, samples)


def draw_examples(evaluation: Evaluation, path: Path, count: int = 16, seed: int = 0) -> Path | None:
    """A grid of the worst and some random predictions (red) against the ground truth (green)."""
    if not evaluation.samples:
        return None
    nme = np.nan_to_num(np.asarray(evaluation.metrics["per_image_nme"], dtype=float), nan=-1)
    worst = list(np.argsort(-nme)[: count // 2])
    rest = [i for i in np.random.default_rng(seed).permutation(len(nme)) if i not in worst]
    chosen = worst + rest[: count - len(worst)]
    images = []
    for i in chosen:
        img = cv2.imread(evaluation.samples[i].image, cv2.IMREAD_COLOR)
        images.append(np.zeros((64, 64, 3), np.uint8) if img is None else cv2.cvtColor(img, cv2.COLOR_BGR2RGB))
    return predictions_grid(images, evaluation.pred[chosen], evaluation.gt[chosen], path)


def results_files(evaluations: dict[str, Evaluation], data: DataConfig) -> dict[str, dict[str, Evaluation]]:
    """Which results file each evaluation goes to: ``{file stem: {test-set name: Evaluation}}``. The
    run's own data (and an evaluation named by no spec) goes to :data:`RUN_RESULTS`, every other set to
    its own :attr:`DataSpec.results_name`."""
    files: dict[str, dict[str, Evaluation]] = {}
    for name, ev in evaluations.items():
        own = ev.spec is None or ev.spec.is_run_data(data)
        files.setdefault(RUN_RESULTS if own else ev.spec.results_name, {})[name] = ev
    return files


def write_evaluation(
    evaluations: dict[str, Evaluation],
    run_dir: Path,
    cfg: Config,
    schema: Schema,
    device=None,
    env=None,
    settings: EvalSettings | None = None,
    name: str = RUN_RESULTS,
) -> dict:
    """``{name}.json`` / ``.md`` / ``_ced.png`` plus one prediction grid per test set
    (``predictions{suffix}_{test set}.png``, suffix: what ``name`` adds to ``results``), each written
    atomically; returns the results dict.

    ``cfg`` is recorded in the results, its ``eval`` section as ``settings`` ran it when given
    (:meth:`EvalSettings.recorded_config`). ``env``: :func:`awing.engine.runtime.environment` as taken
    when the work started (training records the commit its code was loaded from, not the one checked out
    when it ends); None: taken now. Which file a test set belongs in is :func:`results_files`' choice.
    """
    config = settings.recorded_config(cfg) if settings is not None else cfg.to_dict()
    metrics = {k: v.metrics for k, v in evaluations.items()}
    results = make_results(cfg.train.name or Path(run_dir).name, schema, metrics, config, env or environment(device))
    paths = write_results(results, run_dir, name)
    suffix = name.removeprefix(RUN_RESULTS)
    for split, ev in evaluations.items():
        draw_examples(ev, Path(run_dir) / f"predictions{suffix}_{_slug(split)}.png")
    log.info("wrote %s", ", ".join(str(p) for p in paths.values()))
    return results


def evaluate_splits(
    model,
    codec: HeatmapCodec,
    schema: Schema,
    cfg: Config,
    specs: list[tuple[str, str, str]],
    device,
    info=None,
    amp_dtype=None,
    progress: bool = False,
    crop_rule: dict | None = None,
    settings: EvalSettings | None = None,
) -> dict[str, Evaluation]:
    """Evaluate on each ``(format, root, split)`` (a :class:`DataSpec` or a plain tuple); keys are the
    split names (``format:split`` when two specs share a split name). Prints one line per set on the main
    rank.

    ``cfg``: the run's config, for its data options (readers, crops); ``settings``: how to evaluate
    (None: :meth:`EvalSettings.from_config` of ``cfg``). ``crop_rule``: a model's stored crop rule
    (``checkpoint["inference"]["crop"]``; None: the config's ``square_box`` crop).
    """
    info = info or distributed.DistInfo()
    settings = settings or EvalSettings.from_config(cfg)
    specs = [DataSpec(fmt, str(root), split) for fmt, root, split in specs]
    unique = len({s.split for s in specs}) == len(specs)
    evaluations = {}
    for spec in specs:
        samples = read_split(cfg.data, spec.split, spec.format, spec.root)
        layout = schema if spec.is_run_data(cfg.data) else dataset_schema(cfg.data, samples, spec.format, spec.root)
        dataset = build_dataset(cfg, samples, layout, codec.input_size, crop_rule=crop_rule)
        ev = evaluate_model(model, codec, dataset, schema, settings, device, info, amp_dtype, progress=progress)
        ev.spec = spec
        evaluations[spec.split if unique else f"{spec.format}:{spec.split}"] = ev
        if info.is_main:
            print(_result_line(spec, len(samples), ev))
    return evaluations


def _result_line(spec: DataSpec, num_samples: int, ev: Evaluation) -> str:
    unreadable = ev.metrics["num_unreadable"]
    note = f" ({unreadable} unreadable, not scored)" if unreadable else ""
    figures = ", ".join(f"{k} {v:.4f}" for k, v in ev.summary("").items() if k != "nme")
    return f"{spec.format}:{spec.split}: {num_samples} faces{note}, NME {100 * ev.nme:.2f}%, {figures}"


# ------------------------------------------------------------------------------------------------ CLI
def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "checkpoint", help="a .pt file written by awing train (best.pt / last.pt) or a shipped model's name"
    )
    parser.add_argument(
        "data",
        nargs="*",
        help="test sets as FORMAT:ROOT:SPLIT (e.g. wflw:/data/WFLW:test); default: the run's val and test splits. "
        "Sets other than the run's own data are written to results_FORMAT_SPLIT_HASH.json, never results.json",
    )
    parser.add_argument(
        "--out", help="output folder (default: the checkpoint's folder; runs/eval/NAME for a shipped model)"
    )
    parser.add_argument(
        "--flip-test",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="average with the mirrored image's prediction (default: as the run was validated, eval.flip_test)",
    )
    parser.add_argument(
        "--decoder",
        choices=DECODERS,
        help=f"sub-pixel decoder: {describe_decoders()}; default: the model's",
    )
    parser.add_argument("--normaliser", help="NME normaliser name (default: the schema's protocol one)")
    parser.add_argument(
        "--convention",
        choices=sorted(CONVENTION_NAMES),
        help="named evaluation convention (normaliser + pooling): paper (default), authors, hrnet, mmpose",
    )
    parser.add_argument(
        "--pooling",
        choices=list(POOLINGS),
        help="NME aggregate: per_image (mean of per-image NMEs, the paper's) or pooled (mmpose: all points)",
    )
    parser.add_argument("--device", default="auto")
    parser.add_argument("--batch-size", type=int, help="evaluation batch size (eval.batch_size; default: the run's)")


def default_out(checkpoint: Path) -> Path:
    """Where ``awing eval`` writes without ``--out``: beside a run's checkpoint, but never into the
    installed package (a shipped model goes to ``runs/eval/NAME``)."""
    if checkpoint.resolve().parent == PRETRAINED_DIR.resolve():
        return Path("runs/eval") / checkpoint.stem
    return checkpoint.parent


def settings_from_args(args: argparse.Namespace, cfg: Config, codec: HeatmapCodec) -> EvalSettings:
    """The settings of ``awing eval``: the run's config with the flags given; the decoder is ``--decoder``
    or the checkpoint's codec's (so the recorded config names the one used).

    Raises:
        ValueError: ``--batch-size`` below 1.
    """
    if args.batch_size is not None and args.batch_size < 1:
        raise ValueError(f"--batch-size must be >= 1, got {args.batch_size}")
    return EvalSettings.from_config(
        cfg,
        batch_size=args.batch_size,
        flip_test=args.flip_test,
        decoder=getattr(args, "decoder", None) or codec.decoder,
        normaliser=args.normaliser,
        convention=getattr(args, "convention", None),
        pooling=getattr(args, "pooling", None),
    )


def run(args: argparse.Namespace) -> int:
    checkpoint = resolve_model(args.checkpoint)
    out = Path(args.out) if args.out else default_out(checkpoint)
    if out.exists() and not out.is_dir():  # before any work
        raise ValueError(f"--out {out} is a file; give a folder for results.json and the reports")
    ckpt = load_checkpoint(checkpoint)
    _, device = distributed.setup(args.device)
    model, schema, codec = model_from_checkpoint(ckpt, device)
    cfg = config_from_dict(ckpt["config"]) if "config" in ckpt else Config()
    settings = settings_from_args(args, cfg, codec)
    specs = [DataSpec.parse(s) for s in args.data] or run_data_specs(cfg.data)
    crop_rule = inference_hints(ckpt).crop  # e.g. the authors' crop of an imported model
    evaluations = evaluate_splits(
        model, codec, schema, cfg, specs, device, progress=True, crop_rule=crop_rule, settings=settings
    )
    for name, group in results_files(evaluations, cfg.data).items():
        write_evaluation(group, out, cfg, schema, device, settings=settings, name=name)
    return 0
