"""Training: ``awing train CONFIG [key=value ...] [--resume [PATH]]``.

The loop is :func:`train` over :func:`train_one_epoch` over :func:`train_step`. A :class:`StepContext`
holds what every step needs, a :class:`TrainState` what a checkpoint holds (and ``--resume`` restores),
a :class:`TrainingData` the sets and their loader; each epoch returns an :class:`EpochResult`. Run it
under ``torchrun --nproc_per_node=N -m awing train ...`` for DistributedDataParallel (NCCL on GPUs, gloo
on CPU); rank 0 alone logs and writes the run folder.

Checkpoints: ``last.pt`` is written at the end of every epoch (and before the first), ``best.pt`` when
the validation NME improves. A stop signal (Ctrl-C, SIGTERM) ends the run at a step boundary without
writing: ``last.pt`` keeps the end of the last finished epoch, so ``--resume`` continues exactly as if
the run had never stopped (as after ``kill -9``).
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import math
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch
from torch.utils.data import DataLoader, Dataset, Sampler
from tqdm import tqdm

from awing.core.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from awing.core.config import Config, ConfigError, config_changes, config_from_dict, load_config, save_config
from awing.core.device import autocast, resolve_device, resolve_precision, set_threads
from awing.data.build import (
    build_dataset,
    build_source_val_sets,
    build_training_set,
    load_training_splits,
    source_names,
    training_sampler,
)
from awing.data.dataset import build_loader, collate_landmarks
from awing.data.hints import training_hints
from awing.engine import distributed
from awing.engine.diagnostics import diagnose_output
from awing.engine.evaluate import EvalSettings, evaluate_model, evaluate_splits, write_evaluation
from awing.engine.runtime import (
    MetricsLog,
    RunFolder,
    RunFolderError,
    StopRequest,
    environment,
    rng_state,
    seed_everything,
    set_rng_state,
)
from awing.method.codec import HeatmapCodec, build_codec
from awing.method.decode import DECODERS
from awing.method.losses import build_loss
from awing.method.model import create_model, model_payload, model_spec, spec_of_checkpoint
from awing.method.weights import WEIGHT_MAPS, build_loss_weights
from awing.schemas import Schema, lines_as_segments

log = logging.getLogger("awing.train")

OPTIMIZERS = ("rmsprop", "adam", "sgd")

# Config keys a resumed run may change: they do not alter what the finished epochs computed.
RESUMABLE_CHANGES = (
    "optim.epochs",
    "train.progress",
    "train.val_every",
    "train.diagnose",
    "train.tensorboard",
    "train.device",
    "train.threads",
    "train.overwrite",
    "data.workers",
    "data.root",
    "eval.",
)

# The fields a training checkpoint adds to the model's (what --resume restores).
TRAINING_FIELDS = ("optimizer", "scheduler", "scaler", "rng", "epoch", "step", "best_metric")


class TrainingDiverged(RuntimeError):
    """A non-finite training loss; the run stops with its last end-of-epoch checkpoint intact."""


# ----------------------------------------------------------------------------------------- building
def model_kwargs(cfg: Config) -> dict:
    """The ``model`` section as overrides of its preset (None: the preset's value)."""
    m = cfg.model
    return dict(
        stacks=m.stacks,
        width=m.width,
        input_size=m.input_size,
        depth=m.depth,
        stem=m.stem,
        heatmap_stride=m.heatmap_stride,
        boundary=m.boundary,
        coordconv=m.coordconv,
        boundary_coords=m.boundary_coords and m.boundary and m.coordconv,
    )


def check_config(cfg: Config) -> Config:
    """The checks that need the losses, models and devices, before any data is read.

    Raises:
        ConfigError: naming the key (``loss.params``, ``model.name``, ``train.device``, ...).
    """
    try:
        build_loss(cfg.loss.name, **cfg.loss.params)
    except (TypeError, ValueError) as err:
        raise ConfigError(f"loss.params: {err}") from None
    if cfg.loss.weight_map not in WEIGHT_MAPS:
        raise ConfigError(f"loss.weight_map: choose one of {', '.join(WEIGHT_MAPS)}, got {cfg.loss.weight_map!r}")
    if not (cfg.loss.weight >= 0 and math.isfinite(cfg.loss.weight)):
        raise ConfigError(f"loss.weight: must be a finite number >= 0, got {cfg.loss.weight}")
    try:
        model_spec(cfg.model.name, 1, **model_kwargs(cfg))
    except ValueError as err:
        raise ConfigError(f"model: {err}") from None
    if cfg.model.output_init not in OUTPUT_INITS:
        raise ConfigError(f"model.output_init: choose one of {', '.join(OUTPUT_INITS)}, got {cfg.model.output_init!r}")
    if cfg.eval.decoder is not None and cfg.eval.decoder not in DECODERS:
        raise ConfigError(f"eval.decoder: choose one of {', '.join(DECODERS)}, got {cfg.eval.decoder!r}")
    if cfg.optim.name not in OPTIMIZERS:
        raise ConfigError(f"optim.name: choose one of {', '.join(OPTIMIZERS)}, got {cfg.optim.name!r}")
    if distributed.DistInfo.from_env().world_size == 1:  # torchrun picks each rank's device itself
        try:
            resolve_device(cfg.train.device)
        except ValueError as err:
            raise ConfigError(f"train.device: {err}") from None
    return cfg


OUTPUT_INITS = ("default", "small")


def build_model(cfg: Config, num_points: int) -> torch.nn.Module:
    """A freshly initialised model for the config's ``model`` section (``model.output_init`` applied)."""
    model = create_model(cfg.model.name, num_points, **model_kwargs(cfg))
    if cfg.model.output_init == "small":
        with torch.no_grad():
            for layer in model.outputs:
                layer.weight.normal_(0.0, 1e-3)
                layer.bias.zero_()
    return model


def load_training_config(path: str | Path | None, overrides: list[str] | None = None) -> Config:
    """:func:`awing.core.config.load_config` plus :func:`check_config`."""
    return check_config(load_config(path, overrides))


def build_optimizer(cfg: Config, model: torch.nn.Module) -> torch.optim.Optimizer:
    o = cfg.optim
    if o.name == "rmsprop":
        return torch.optim.RMSprop(model.parameters(), lr=o.lr, momentum=o.momentum, weight_decay=o.weight_decay)
    if o.name == "adam":
        return torch.optim.Adam(model.parameters(), lr=o.lr, weight_decay=o.weight_decay)
    if o.name == "sgd":
        return torch.optim.SGD(model.parameters(), lr=o.lr, momentum=o.momentum, weight_decay=o.weight_decay)
    raise ValueError(f"unknown optimizer {o.name!r}; choose {', '.join(OPTIMIZERS)}")


def memory_format(cfg: Config) -> torch.memory_format:
    return torch.channels_last if cfg.train.channels_last else torch.contiguous_format


def training_targets(batch: dict, cfg: Config, codec: HeatmapCodec, segments, device):
    """Heatmap targets and per-pixel loss weights for one batch, rendered on ``device``.

    Returns targets (B, C, H, W) and weights (B, C, H, W): the loss map times the channel mask that
    drops missing / outside landmarks.
    """
    targets, mask = codec.encode(batch["points"].to(device, non_blocking=True), segments)
    weights = build_loss_weights(targets, cfg.loss.weight_map, cfg.loss.weight, cfg.loss.threshold)
    channel = mask[..., None, None].to(targets.dtype)
    return targets, channel if weights is None else weights * channel


def check_resume(ckpt: dict, cfg: Config, path: Path) -> None:
    """Refuse a resume whose config changes what the finished epochs computed; log the allowed changes."""
    saved = config_from_dict(ckpt["config"]).to_dict() if ckpt.get("config") else None
    if saved is None:
        return
    saved["train"]["name"], saved["train"]["out_dir"] = cfg.train.name, cfg.train.out_dir
    changes = config_changes(saved, cfg.to_dict())
    refused = {k: v for k, v in changes.items() if not k.startswith(RESUMABLE_CHANGES)}
    if refused:
        listed = "; ".join(f"{k}: {a!r} -> {b!r}" for k, (a, b) in refused.items())
        raise ConfigError(
            f"--resume from {path}: the config differs from the run's in {listed}. A resumed run continues the "
            "same experiment; start a new run (train.name=...) to change these"
        )
    for key, (a, b) in changes.items():
        log.info("resume: %s changed from %r to %r", key, a, b)


# ------------------------------------------------------------------------------- what the loop holds
@dataclasses.dataclass
class TrainState:
    """What a training checkpoint holds and ``--resume`` restores."""

    cfg: Config
    schema: Schema
    model: torch.nn.Module  # the StackedHourglass itself (never the DDP wrapper)
    codec: HeatmapCodec
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LRScheduler
    scaler: torch.amp.GradScaler
    epoch: int = 0  # finished epochs
    step: int = 0  # optimiser steps taken
    best: float = math.inf  # the lowest validation NME so far (train.select's: selection_metric)

    @classmethod
    def build(cls, cfg: Config, schema: Schema, device: torch.device, amp_dtype: torch.dtype | None) -> TrainState:
        """A freshly initialised model on ``device`` and what trains it; the scaler is on for fp16 only."""
        model = build_model(cfg, schema.num_points).to(device)
        codec = build_codec(model.spec, cfg.targets, decoder=cfg.eval.decoder or "quarter")
        model = model.to(memory_format=memory_format(cfg))
        optimizer = build_optimizer(cfg, model)
        scheduler = torch.optim.lr_scheduler.MultiStepLR(optimizer, cfg.optim.milestones, cfg.optim.gamma)
        scaler = torch.amp.GradScaler(device.type, enabled=amp_dtype == torch.float16)
        return cls(cfg, schema, model, codec, optimizer, scheduler, scaler)

    def checkpoint(self, metrics: dict) -> dict:
        """The checkpoint of this state: :func:`model_payload`'s fields, the inference hints
        (:func:`~awing.data.hints.training_hints`), the run's config, the counters,
        ``metrics`` (the metrics.csv row of the epoch) and :data:`TRAINING_FIELDS`."""
        return {
            **model_payload(self.model, self.schema, self.codec),
            "inference": training_hints(self.cfg).to_dict(),
            "config": self.cfg.to_dict(),
            "epoch": self.epoch,
            "step": self.step,
            "best_metric": self.best,
            "metrics": metrics,
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "scaler": self.scaler.state_dict(),
            "rng": rng_state(),
        }

    def restore(self, path: Path, device: torch.device) -> None:
        """Continue from the training checkpoint at ``path`` (weights, optimiser, schedule, scaler, RNGs,
        counters).

        Raises:
            CheckpointError: not a training checkpoint, or another schema or architecture.
            ConfigError: the config changes what the finished epochs computed (:func:`check_resume`).
        """
        ckpt = load_checkpoint(path, map_location=device)
        missing = [k for k in TRAINING_FIELDS if k not in ckpt]
        if missing:
            raise CheckpointError(
                f"{path} is not a training checkpoint (it lacks {', '.join(missing)}); resume from a run's last.pt"
            )
        try:
            stored = spec_of_checkpoint(ckpt)
        except (TypeError, ValueError):
            stored = None
        if ckpt["schema"].get("num_points") != self.schema.num_points or stored != self.model.spec:
            raise CheckpointError(f"{path} was trained with another schema or architecture than this config")
        check_resume(ckpt, self.cfg, path)
        self.model.load_state_dict(ckpt["model"])
        self.optimizer.load_state_dict(ckpt["optimizer"])
        self.scheduler.load_state_dict(ckpt["scheduler"])
        self.scaler.load_state_dict(ckpt["scaler"])
        set_rng_state(ckpt["rng"])
        self.epoch, self.step, self.best = ckpt["epoch"], ckpt["step"], ckpt["best_metric"]
        log.info("resumed from %s at epoch %d", path, self.epoch)


@dataclasses.dataclass
class TrainingData:
    """The training set with its sampler and loader, the validation set (None without one) and each
    source's validation set (``data.sources[i].val_split``, by :func:`~awing.data.build.source_names`)."""

    train_set: Dataset
    val_set: Dataset | None
    sampler: Sampler
    loader: DataLoader
    source_vals: dict[str, Dataset] = dataclasses.field(default_factory=dict)

    @classmethod
    def build(cls, cfg: Config, schema: Schema, train_samples, val_samples, input_size: int, info) -> TrainingData:
        train_set = build_training_set(cfg, train_samples, schema, input_size)
        val_set = build_dataset(cfg, val_samples, schema, input_size) if val_samples else None
        batch, world = cfg.optim.batch_size, info.world_size
        # A seeded (seed, epoch) shuffle on every rank count, so a resumed run sees the same order.
        sampler = training_sampler(cfg, train_set, world, info.rank)
        drop = (cfg.data.epoch_size or len(train_set)) > batch * world  # the epoch's faces, over all ranks
        loader = build_loader(
            train_set, batch, False, cfg.data.workers, cfg.train.seed, sampler=sampler, drop_last=drop
        )
        return cls(train_set, val_set, sampler, loader, build_source_val_sets(cfg, schema, input_size))

    @property
    def validates(self) -> bool:
        """Whether there is anything to validate on (the run's split or a source's)."""
        return self.val_set is not None or bool(self.source_vals)

    def set_epoch(self, epoch: int) -> None:
        """The epoch's shuffle and augmentation draws."""
        self.sampler.set_epoch(epoch)
        self.train_set.set_epoch(epoch)


@dataclasses.dataclass
class StepContext:
    """What every training step needs, built once per run."""

    cfg: Config
    net: torch.nn.Module  # the model, wrapped in DistributedDataParallel on several ranks
    loss_fn: Callable[..., torch.Tensor]  # (output, targets, weights) -> loss, of one stack
    optimizer: torch.optim.Optimizer
    scaler: torch.amp.GradScaler  # fp16 loss scaling (a pass-through otherwise)
    codec: HeatmapCodec
    segments: torch.Tensor | None  # the schema's boundary lines, for the boundary channel
    device: torch.device
    amp_dtype: torch.dtype | None  # the autocast dtype; None: fp32
    memory_format: torch.memory_format  # of the input batches (the model's, channels_last or not)
    info: distributed.DistInfo
    stop: StopRequest = dataclasses.field(default_factory=StopRequest)

    @classmethod
    def build(cls, cfg: Config, state: TrainState, device: torch.device, amp_dtype, info) -> StepContext:
        model = state.model
        net = model
        if info.enabled:
            net = torch.nn.parallel.DistributedDataParallel(
                model, device_ids=[device] if device.type == "cuda" else None
            )
        segments = torch.as_tensor(lines_as_segments(state.schema)) if model.spec.boundary else None
        loss_fn = build_loss(cfg.loss.name, **cfg.loss.params)
        fmt = memory_format(cfg)
        return cls(
            cfg, net, loss_fn, state.optimizer, state.scaler, state.codec, segments, device, amp_dtype, fmt, info
        )

    @property
    def progress(self) -> bool:
        """Whether this process shows the per-step bar."""
        return self.info.is_main and self.cfg.train.progress


@dataclasses.dataclass
class EpochTotals:
    """Sums over one epoch's steps (per sample), reduced over ranks at the end of the epoch."""

    loss: float = 0.0
    mse_all: float = 0.0
    mse_fg: float = 0.0
    samples: int = 0
    skipped: int = 0

    @torch.no_grad()
    def add(self, loss: float, output: torch.Tensor, targets: torch.Tensor) -> None:
        """One step: its loss and the MSE of the last stack's ``output`` (Table 10), per sample."""
        err = (output.float() - targets) ** 2
        n = output.shape[0]
        self.loss += loss * n
        self.mse_all += err.mean().item() * n
        self.mse_fg += err[targets > 0].mean().item() * n
        self.samples += n

    def reduced(self, info, device) -> EpochTotals:
        values = [self.loss, self.mse_all, self.mse_fg, self.samples, self.skipped]
        values = torch.tensor(values, dtype=torch.float64, device=device)
        values = distributed.all_reduce_mean(values, info) * info.world_size
        loss, mse_all, mse_fg, samples, skipped = values.tolist()
        return EpochTotals(loss, mse_all, mse_fg, round(samples), round(skipped))

    def row(self, seconds: float) -> dict:
        """The training columns of the epoch's metrics row (means per sample)."""
        n = self.samples
        return {
            "train_loss": self.loss / n,
            "train_mse_all": self.mse_all / n,
            "train_mse_fg": self.mse_fg / n,
            "skipped_images": self.skipped,
            "images_per_s": n / max(seconds, 1e-9),
        }


@dataclasses.dataclass
class EpochResult:
    """What :func:`train_one_epoch` returns, for this rank."""

    step: int  # the global step after the epoch's last step
    totals: EpochTotals = dataclasses.field(default_factory=EpochTotals)
    invalid: list[int] = dataclasses.field(default_factory=list)  # unreadable training images (dataset indices)
    stopped: bool = False  # a stop was requested: the epoch is incomplete


# ------------------------------------------------------------------------------------------ the loop
def train_step(ctx: StepContext, batch: dict, epoch: int, step: int) -> tuple[float, torch.Tensor, torch.Tensor]:
    """One optimiser step on a non-empty batch (``epoch``, ``step``: 0-based, for the error message).

    Returns the loss (summed over the stacks), the last stack's output (B, C, H, W) and the targets.

    Raises:
        TrainingDiverged: a non-finite loss (before the optimiser applies it).
    """
    images = batch["image"].to(ctx.device, non_blocking=True).float().div_(255)
    images = images.contiguous(memory_format=ctx.memory_format)
    targets, weights = training_targets(batch, ctx.cfg, ctx.codec, ctx.segments, ctx.device)
    with autocast(ctx.device, ctx.amp_dtype):
        outputs = ctx.net(images)
    loss = sum(ctx.loss_fn(out, targets, weights) for out in outputs)  # intermediate supervision
    value = loss.item()
    if not math.isfinite(value):
        raise TrainingDiverged(
            f"non-finite training loss ({value}) in epoch {epoch + 1}, step {step + 1}: the run stops; its "
            "last end-of-epoch checkpoint (last.pt) is intact. Lower optim.lr or check loss.params and the data"
        )
    ctx.optimizer.zero_grad(set_to_none=True)
    ctx.scaler.scale(loss).backward()
    ctx.scaler.step(ctx.optimizer)
    ctx.scaler.update()
    return value, outputs[-1], targets


def train_one_epoch(ctx: StepContext, loader, epoch: int, step: int) -> EpochResult:
    """One pass over ``loader`` from global step ``step``, ending early (``stopped``) at the step
    boundary after a stop request on any rank.

    Raises:
        TrainingDiverged: a non-finite loss (before the optimiser applies it).
    """
    result = EpochResult(step)
    for batch in tqdm(
        loader, desc=f"epoch {epoch + 1}/{ctx.cfg.optim.epochs}", leave=False, disable=None if ctx.progress else True
    ):  # None: no bars when stderr is not a terminal
        result.totals.skipped += int(batch["n_invalid"])
        result.invalid += batch["invalid_index"]
        if batch["image"].shape[0] == 0:
            continue
        result.totals.add(*train_step(ctx, batch, epoch, result.step))
        result.step += 1
        if distributed.any_rank(ctx.stop.requested, ctx.info, ctx.device):  # all ranks stop at one step
            result.stopped = True
            break
    return result


def check_skipped(totals: EpochTotals, invalid: list[int], samples: list, max_share: float) -> None:
    """Fail when too many of an epoch's training images were unreadable (all of them, or more than
    ``max_share``). ``totals`` are over all ranks (every rank decides alike); ``invalid`` names this rank's."""
    if not totals.skipped:
        return
    share = totals.skipped / max(1, totals.samples + totals.skipped)
    if totals.samples == 0 or share > max_share:
        names = ", ".join(samples[i].image for i in sorted(set(invalid))[:5]) or "on other ranks"
        raise ValueError(
            f"{totals.skipped} of {totals.samples + totals.skipped} training images could not be read "
            f"({100 * share:.0f} %, more than train.max_skipped={max_share:g}), e.g. {names}"
        )


def run_epoch(ctx: StepContext, state: TrainState, data: TrainingData, epoch: int) -> dict:
    """Train epoch ``epoch`` (0-based) and step the schedule; returns the training part of its metrics row.

    Raises:
        SystemExit: a stop was requested (130 / 143, the largest over ranks); nothing is written.
        TrainingDiverged, ValueError: a non-finite loss; too many unreadable images (:func:`check_skipped`).
    """
    data.set_epoch(epoch)
    ctx.net.train()
    t0 = time.time()
    result = train_one_epoch(ctx, data.loader, epoch, state.step)
    if result.stopped:
        code = distributed.max_over_ranks(ctx.stop.exit_code if ctx.stop.requested else 0, ctx.info, ctx.device)
        log.warning(
            "stopped in epoch %d; last.pt holds the end of epoch %d: --resume continues exactly from there",
            epoch + 1,
            epoch,
        )
        raise SystemExit(code)
    totals = result.totals.reduced(ctx.info, ctx.device)
    check_skipped(totals, result.invalid, data.train_set.samples, ctx.cfg.train.max_skipped)
    state.scheduler.step()
    state.epoch, state.step = epoch + 1, result.step
    return {"epoch": state.epoch, "lr": state.optimizer.param_groups[0]["lr"], **totals.row(time.time() - t0)}


def validation_due(cfg: Config, epoch: int) -> bool:
    """Whether the run validates after finished epoch ``epoch`` (1-based): every ``train.val_every`` and last."""
    return epoch % cfg.train.val_every == 0 or epoch == cfg.optim.epochs


SOURCE_NME = "val_nme_"  # + the source's name: a source's validation NME in metrics.csv


def selection_metric(cfg: Config, row: dict) -> float:
    """The validation figure that picks ``best.pt`` from an epoch's metrics row: ``train.select: main``
    the run's own ``val_nme`` (without a val split: the mean over the sources), ``mean`` the mean of every
    ``val_nme`` column (the run's and each source's); NaN when one of them is."""
    own = row.get("val_nme")
    if cfg.train.select == "main" and own is not None:
        return own
    values = [v for k, v in row.items() if k == "val_nme" or k.startswith(SOURCE_NME)]
    return float(sum(values) / len(values)) if values else math.nan


def validate_sources(ctx: StepContext, state: TrainState, source_vals: dict[str, Dataset]) -> dict:
    """``{val_nme_<name>: NME}`` of each source's validation set, on the points that source gives, by its
    ``val_normaliser`` where it names one."""
    normalisers = dict(zip(source_names(ctx.cfg), (src.val_normaliser for src in ctx.cfg.data.sources)))
    out = {}
    for name, dataset in source_vals.items():
        settings = EvalSettings.from_config(ctx.cfg, normaliser=normalisers.get(name))
        ev = evaluate_model(
            state.model, state.codec, dataset, state.schema, settings, ctx.device, ctx.info, ctx.amp_dtype
        )
        out[f"{SOURCE_NME}{name}"] = ev.nme
    return out


def validate_epoch(ctx: StepContext, state: TrainState, data: TrainingData, row: dict, run_dir: Path) -> dict:
    """``row`` with the validation figures (the run's val split's, then each source's); the model becomes
    ``best.pt`` (written by rank 0) when its :func:`selection_metric` is finite and lower than any before
    and every weight is finite."""
    model = state.model
    distributed.broadcast_buffers(model, ctx.info)  # every rank validates what rank 0 saves
    if data.val_set is not None:
        settings = EvalSettings.from_config(ctx.cfg)
        val = evaluate_model(
            model, state.codec, data.val_set, state.schema, settings, ctx.device, ctx.info, ctx.amp_dtype
        )
        row = {**row, **val.summary()}
    row = {**row, **validate_sources(ctx, state, data.source_vals)}
    if ctx.cfg.train.diagnose and data.val_set is not None and ctx.info.is_main:
        row = {**row, **{f"diag_{k}": v for k, v in diagnose_faces(ctx, model, data.val_set).items()}}
    score = selection_metric(ctx.cfg, row)
    finite = all(torch.isfinite(p).all() for p in model.parameters())
    if math.isfinite(score) and finite and score < state.best:
        state.best = score
        if ctx.info.is_main:
            save_checkpoint(run_dir / "best.pt", state.checkpoint(row))
    return row


def diagnose_batch(ctx: StepContext, model: torch.nn.Module, batch: dict) -> dict[str, float]:
    """:func:`~awing.engine.diagnostics.diagnose_output` of ``model``'s last stack (eval mode, the run's
    autocast) on a collated batch, against the targets and loss weights a training step would use."""
    images = batch["image"].to(ctx.device).float().div_(255).contiguous(memory_format=ctx.memory_format)
    targets, weights = training_targets(batch, ctx.cfg, ctx.codec, ctx.segments, ctx.device)
    points = ctx.codec.crop_to_heatmap(batch["points"].to(ctx.device).float())
    model.eval()
    with torch.no_grad(), autocast(ctx.device, ctx.amp_dtype):
        output = model(images)[-1]
    landmarks = points.shape[1]  # the channels after them (the boundary) are not measured
    return diagnose_output(output, targets, weights, points, ctx.loss_fn, ctx.codec, landmarks, ctx.cfg.loss.threshold)


def diagnose_faces(ctx: StepContext, model: torch.nn.Module, val_set: Dataset) -> dict[str, float]:
    """:func:`diagnose_batch` on ``train.diagnose`` validation faces, evenly spaced over the split."""
    count = min(ctx.cfg.train.diagnose, len(val_set))
    indices = torch.linspace(0, len(val_set) - 1, count).round().long().tolist()
    return diagnose_batch(ctx, model, collate_landmarks([val_set[i] for i in indices]))


def start_run(run: RunFolder, ctx: StepContext, state: TrainState, data: TrainingData, threads) -> MetricsLog | None:
    """Rank 0: write the run's config.yaml, cut its metrics log to the restored epoch, write the ``last.pt``
    of a fresh run (a stop in epoch 1 can resume from it) and log one line; returns the metrics log (None
    on other ranks)."""
    if not ctx.info.is_main:
        return None
    cfg = ctx.cfg
    save_config(cfg, run.path / "config.yaml")
    metrics_log = MetricsLog(run.path, cfg.train.tensorboard)
    metrics_log.truncate(state.epoch)  # rows after the checkpoint (a resume redoes those epochs)
    if state.epoch == 0:
        save_checkpoint(run.path / "last.pt", state.checkpoint({"epoch": 0}))
    log.info(
        "%s: %d train / %d val samples, model %s (%.2f M params), precision %s, device %s%s",
        run.path,
        len(data.train_set),
        len(data.val_set) if data.val_set is not None else 0,
        cfg.model.name,
        sum(p.numel() for p in state.model.parameters()) / 1e6,
        ctx.amp_dtype or "fp32",
        ctx.device,
        f", {threads} thread(s)" if threads else "",
    )
    return metrics_log


def end_epoch(run: RunFolder, metrics_log: MetricsLog, state: TrainState, row: dict) -> None:
    """Rank 0: the epoch's metrics row, then ``last.pt`` (a resume from it never lacks its row), a log line."""
    metrics_log.write(row)
    save_checkpoint(run.path / "last.pt", state.checkpoint(row))
    log.info(" ".join(f"{k}={v:.5g}" if isinstance(v, float) else f"{k}={v}" for k, v in row.items()))


def final_evaluation(ctx: StepContext, state: TrainState, has_val: bool, run_dir: Path, env: dict) -> dict:
    """Evaluate ``best.pt`` (the last weights if validation never wrote one) on the validation split (if
    ``has_val``) and ``data.test_splits``; rank 0 writes the results files and returns the results, other
    ranks {}."""
    d = ctx.cfg.data
    specs = [(d.format, d.root, s) for s in [d.val_split if has_val else None, *d.test_splits] if s]
    if not specs:
        return {}
    distributed.barrier(ctx.info)  # rank 0 has finished writing best.pt
    if (run_dir / "best.pt").exists():
        state.model.load_state_dict(load_checkpoint(run_dir / "best.pt", map_location=ctx.device)["model"])
    evaluations = evaluate_splits(
        state.model, state.codec, state.schema, ctx.cfg, specs, ctx.device, ctx.info, ctx.amp_dtype
    )
    if not ctx.info.is_main:
        return {}
    return write_evaluation(evaluations, run_dir, ctx.cfg, state.schema, ctx.device, env)


def train(cfg: Config, resume: str | None = None) -> dict:
    """Train per ``cfg``; returns the final evaluation results (rank 0) or {} (other ranks).

    ``resume``: ``"auto"`` (the run's own ``last.pt``) or a checkpoint path to continue from; None: a new run.

    Raises:
        ConfigError, RunFolderError: before any data is read, and before anything is written.
        TrainingDiverged: a non-finite loss. SystemExit: a stop signal, at a step boundary (130, 143).
    """
    check_config(cfg)
    info, device = distributed.setup(cfg.train.device)
    threads = set_threads(cfg.train.threads) if device.type == "cpu" else None
    seed_everything(cfg.train.seed + info.rank, cfg.train.deterministic)
    run = RunFolder(Path(cfg.train.out_dir), cfg.train.name or "run", enabled=info.is_main)
    run.check(resume=bool(resume), overwrite=cfg.train.overwrite)  # before any work: a refused run costs nothing
    resume_from = (run.path / "last.pt" if resume == "auto" else Path(resume)) if resume else None
    if resume_from is not None and not resume_from.is_file():
        hint = ": nothing to continue there yet, so start the run without --resume" if resume == "auto" else ""
        raise RunFolderError(f"--resume: {resume_from} does not exist{hint}")
    env = environment(device)  # the code this process runs, whatever is checked out when it ends

    schema, train_samples, val_samples = load_training_splits(cfg)
    amp_dtype = resolve_precision(cfg.train.precision, device)
    state = TrainState.build(cfg, schema, device, amp_dtype)
    data = TrainingData.build(cfg, schema, train_samples, val_samples, state.codec.input_size, info)
    ctx = StepContext.build(cfg, state, device, amp_dtype, info)
    if resume_from is not None:
        state.restore(resume_from, device)

    run.claim(resume=bool(resume), overwrite=cfg.train.overwrite)  # the first write: create and lock the folder
    try:
        metrics_log = start_run(run, ctx, state, data, threads)
        with ctx.stop:
            for epoch in range(state.epoch, cfg.optim.epochs):
                row = run_epoch(ctx, state, data, epoch)
                if data.validates and validation_due(cfg, state.epoch):
                    row = validate_epoch(ctx, state, data, row, run.path)
                if info.is_main:
                    end_epoch(run, metrics_log, state, row)
        return final_evaluation(ctx, state, data.val_set is not None, run.path, env)
    finally:  # also on errors and stop signals: the next run may take the folder, the group is left
        run.release()
        del ctx, state, data  # the DDP model first, then its process group (distributed.cleanup)
        distributed.cleanup()


# ------------------------------------------------------------------------------------------------ CLI
def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("config", help="YAML config, e.g. configs/cpu/fdd14.yaml")
    parser.add_argument("overrides", nargs="*", help="dotted key=value overrides, e.g. optim.epochs=3")
    parser.add_argument(
        "--resume",
        nargs="?",
        const="auto",
        metavar="PATH",
        help="resume from PATH or (no value) the run's last.pt; put it after the overrides",
    )


def run(args: argparse.Namespace) -> int:
    if args.resume and "=" in args.resume:  # ``--resume key=value``: argparse took an override as the path
        args.overrides.append(args.resume)
        args.resume = "auto"
    cfg = load_training_config(args.config, args.overrides)
    try:
        results = train(cfg, resume=args.resume)
    except TrainingDiverged as err:
        print(f"awing: error: {err}", file=sys.stderr)
        return 3
    for split, res in results.get("testsets", {}).items():
        scores = "  ".join(f"FR@{t} {100 * res['fr'][t]:.2f}%  AUC@{t} {res['auc'][t]:.4f}" for t in res["fr"])
        print(f"{split}: NME {100 * res['nme']:.2f}%  {scores}")
    return 0


__all__ = [
    "train",
    "train_one_epoch",
    "train_step",
    "StepContext",
    "EpochResult",
    "TrainState",
    "TrainingData",
    "check_config",
    "load_training_config",
    "build_model",
    "build_optimizer",
    "training_targets",
    "TrainingDiverged",
]
