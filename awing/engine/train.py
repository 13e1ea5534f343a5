"""Training: ``awing train CONFIG [key=value ...] [--resume [PATH]]``.

The loop is :func:`train` over :func:`train_one_epoch`; the helpers above them build what they need from
the config. Run it under ``torchrun --nproc_per_node=N -m awing train ...`` for DistributedDataParallel
(NCCL on GPUs, gloo on CPU); rank 0 alone logs and writes the run folder.

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
from pathlib import Path

import torch
from tqdm import tqdm

from awing.core.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from awing.core.config import Config, ConfigError, config_from_dict, load_config, save_config
from awing.core.device import autocast, resolve_device, resolve_precision, set_threads
from awing.data.build import build_dataset, build_training_set, load_training_splits
from awing.data.dataset import build_loader
from awing.engine import distributed
from awing.engine.evaluate import evaluate_model, evaluate_splits, write_evaluation
from awing.engine.runtime import (
    MetricsLog,
    RunFolder,
    StopRequest,
    environment,
    rng_state,
    seed_everything,
    set_rng_state,
)
from awing.method.codec import HeatmapCodec, build_codec
from awing.method.decode import DECODERS
from awing.method.losses import build_loss
from awing.method.model import create_model, model_spec
from awing.method.weights import WEIGHT_MAPS, build_loss_weights
from awing.schemas import lines_as_segments

log = logging.getLogger("awing.train")

OPTIMIZERS = ("rmsprop", "adam", "sgd")

# Config keys a resumed run may change: they do not alter what the finished epochs computed.
RESUMABLE_CHANGES = (
    "optim.epochs", "train.progress", "train.val_every", "train.tensorboard", "train.device", "train.threads",
    "train.overwrite", "data.workers", "data.root", "eval.",
)  # fmt: skip


class TrainingDiverged(RuntimeError):
    """A non-finite training loss; the run stops with its last end-of-epoch checkpoint intact."""


# ----------------------------------------------------------------------------------------- building
def model_kwargs(cfg: Config) -> dict:
    m = cfg.model
    return dict(
        stacks=m.stacks, width=m.width, input_size=m.input_size, boundary=m.boundary, coordconv=m.coordconv,
        boundary_coords=m.boundary_coords and m.boundary and m.coordconv,
    )  # fmt: skip


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


def build_model(cfg: Config, num_points: int) -> torch.nn.Module:
    """A freshly initialised model for the config's ``model`` section."""
    return create_model(cfg.model.name, num_points, **model_kwargs(cfg))


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


def training_targets(batch: dict, cfg: Config, codec: HeatmapCodec, segments, device):
    """Heatmap targets and per-pixel loss weights for one batch, rendered on ``device``.

    Returns targets (B, C, H, W) and weights (B, C, H, W): the loss map times the channel mask that
    drops missing / outside landmarks.
    """
    targets, mask = codec.encode(batch["points"].to(device, non_blocking=True), segments)
    weights = build_loss_weights(targets, cfg.loss.weight_map, cfg.loss.weight, cfg.loss.threshold)
    channel = mask[..., None, None].to(targets.dtype)
    return targets, channel if weights is None else weights * channel


def config_changes(old: dict, new: dict, prefix: str = "") -> dict[str, tuple]:
    """``{dotted key: (old, new)}`` for every value that differs between two config dicts."""
    changes = {}
    for key in sorted(set(old) | set(new)):
        a, b = old.get(key), new.get(key)
        if isinstance(a, dict) and isinstance(b, dict) and key not in ("params", "options"):
            changes.update(config_changes(a, b, f"{prefix}{key}."))
        elif a != b:
            changes[prefix + key] = (a, b)
    return changes


def check_resume(ckpt: dict, cfg: Config, path: Path) -> None:
    """Refuse a resume whose config changes what the finished epochs computed; log the allowed changes."""
    saved = config_from_dict(ckpt["config"]).to_dict() if ckpt.get("config") else None
    if saved is None:
        return
    saved["train"]["name"], saved["train"]["out_dir"] = cfg.train.name, cfg.train.out_dir
    changes = config_changes(saved, cfg.to_dict())
    refused = {k: v for k, v in changes.items() if not k.startswith(RESUMABLE_CHANGES)}
    if refused:
        listed = "; ".join(f"{k}: {a!r} -> {b!r}" for k, a, b in ((k, *v) for k, v in refused.items()))
        raise ConfigError(
            f"--resume from {path}: the config differs from the run's in {listed}. A resumed run continues the "
            "same experiment; start a new run (train.name=...) to change these"
        )
    for key, (a, b) in changes.items():
        log.info("resume: %s changed from %r to %r", key, a, b)


# ------------------------------------------------------------------------------------------ the loop
@dataclasses.dataclass
class EpochTotals:
    """Sums over one epoch's steps (per sample), reduced over ranks at the end of the epoch."""

    loss: float = 0.0
    mse_all: float = 0.0
    mse_fg: float = 0.0
    samples: int = 0
    skipped: int = 0

    def reduced(self, info, device) -> EpochTotals:
        values = torch.tensor([self.loss, self.mse_all, self.mse_fg, self.samples, self.skipped],
                              dtype=torch.float64, device=device)  # fmt: skip
        values = distributed.all_reduce_mean(values, info) * info.world_size
        loss, mse_all, mse_fg, samples, skipped = values.tolist()
        return EpochTotals(loss, mse_all, mse_fg, round(samples), round(skipped))


def train_one_epoch(
    net, loader, loss_fn, optimizer, scaler, codec, segments, cfg, device, amp_dtype, memory_format, epoch, step,
    stop, info, bar,
) -> tuple[EpochTotals, int, list[int], bool]:  # fmt: skip
    """One pass over ``loader``. Returns the totals, the global step, the indices of unreadable images and
    whether a stop was requested (the epoch is then incomplete).

    Raises:
        TrainingDiverged: a non-finite loss (before the optimiser applies it).
    """
    totals, invalid = EpochTotals(), []
    for batch in tqdm(loader, desc=f"epoch {epoch + 1}/{cfg.optim.epochs}", leave=False, disable=not bar):
        totals.skipped += int(batch["n_invalid"])
        invalid += batch["invalid_index"]
        if batch["image"].shape[0] == 0:
            continue
        images = batch["image"].to(device, non_blocking=True).float().div_(255).contiguous(memory_format=memory_format)
        targets, weights = training_targets(batch, cfg, codec, segments, device)
        with autocast(device, amp_dtype):
            outputs = net(images)
        loss = sum(loss_fn(out, targets, weights) for out in outputs)  # intermediate supervision
        value = loss.item()
        if not math.isfinite(value):
            raise TrainingDiverged(
                f"non-finite training loss ({value}) in epoch {epoch + 1}, step {step + 1}: the run stops; its "
                "last end-of-epoch checkpoint (last.pt) is intact. Lower optim.lr or check loss.params and the data"
            )
        optimizer.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        scaler.step(optimizer)
        scaler.update()
        step += 1
        with torch.no_grad():  # Table 10: the last stack's error measured in MSE
            err = (outputs[-1].float() - targets) ** 2
            n = images.shape[0]
            totals.loss += value * n
            totals.mse_all += err.mean().item() * n
            totals.mse_fg += err[targets > 0].mean().item() * n
            totals.samples += n
        if distributed.any_rank(stop.requested, info, device):  # all ranks stop at one step
            return totals, step, invalid, True
    return totals, step, invalid, False


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


def restore(path: Path, cfg: Config, schema, model, optimizer, scheduler, scaler, device) -> tuple[int, int, float]:
    """Load a training checkpoint into the run's objects; returns ``(epoch, step, best val NME)``.

    Raises:
        CheckpointError: not a training checkpoint, or another schema or architecture.
        ConfigError: the config changes what the finished epochs computed (:func:`check_resume`).
    """
    ckpt = load_checkpoint(path, map_location=device)
    missing = [k for k in ("optimizer", "scheduler", "scaler", "rng", "epoch", "step", "best_metric") if k not in ckpt]
    if missing:
        raise CheckpointError(
            f"{path} is not a training checkpoint (it lacks {', '.join(missing)}); resume from a run's last.pt"
        )
    if ckpt["schema"].get("num_points") != schema.num_points or ckpt["spec"] != dataclasses.asdict(model.spec):
        raise CheckpointError(f"{path} was trained with another schema or architecture than this config")
    check_resume(ckpt, cfg, path)
    model.load_state_dict(ckpt["model"])
    optimizer.load_state_dict(ckpt["optimizer"])
    scheduler.load_state_dict(ckpt["scheduler"])
    scaler.load_state_dict(ckpt["scaler"])
    set_rng_state(ckpt["rng"])
    log.info("resumed from %s at epoch %d", path, ckpt["epoch"])
    return ckpt["epoch"], ckpt["step"], ckpt["best_metric"]


def train(cfg: Config, resume: str | None = None) -> dict:
    """Train per ``cfg``; returns the final evaluation results (rank 0) or {} (other ranks)."""
    check_config(cfg)
    info, device = distributed.setup(cfg.train.device)
    threads = set_threads(cfg.train.threads) if device.type == "cpu" else None
    seed_everything(cfg.train.seed + info.rank, cfg.train.deterministic)
    run = RunFolder(Path(cfg.train.out_dir), cfg.train.name or "run", enabled=info.is_main)
    run.check(resume=bool(resume), overwrite=cfg.train.overwrite)  # before any work: a refused run costs nothing
    env = environment(device)  # the code this process runs, whatever is checked out when it ends

    schema, train_samples, val_samples = load_training_splits(cfg)
    model = build_model(cfg, schema.num_points).to(device)
    codec = build_codec(model.spec, cfg.targets, decoder=cfg.eval.decoder or "quarter")
    segments = torch.as_tensor(lines_as_segments(schema)) if model.spec.boundary else None
    train_set = build_training_set(cfg, train_samples, schema, codec.input_size)
    val_set = build_dataset(cfg, val_samples, schema, codec.input_size) if val_samples else None
    batch, world = cfg.optim.batch_size, info.world_size
    # A seeded (seed, epoch) shuffle on every rank count, so a resumed run sees the same order.
    sampler = torch.utils.data.DistributedSampler(
        train_set, world, info.rank, shuffle=True, seed=cfg.train.seed, drop_last=len(train_set) >= batch * world
    )  # fmt: skip
    loader = build_loader(train_set, batch, shuffle=False, workers=cfg.data.workers, seed=cfg.train.seed,
                          sampler=sampler, drop_last=len(train_set) > batch * world)  # fmt: skip

    memory_format = torch.channels_last if cfg.train.channels_last else torch.contiguous_format
    model = model.to(memory_format=memory_format)
    net = torch.nn.parallel.DistributedDataParallel(model, device_ids=[device] if device.type == "cuda" else None) \
        if info.enabled else model  # fmt: skip
    loss_fn = build_loss(cfg.loss.name, **cfg.loss.params)
    optimizer = build_optimizer(cfg, model)
    scheduler = torch.optim.lr_scheduler.MultiStepLR(optimizer, cfg.optim.milestones, cfg.optim.gamma)
    amp_dtype = resolve_precision(cfg.train.precision, device)
    scaler = torch.amp.GradScaler(device.type, enabled=amp_dtype == torch.float16)

    start_epoch, step, best = 0, 0, math.inf
    if resume:
        path = run.path / "last.pt" if resume == "auto" else Path(resume)
        start_epoch, step, best = restore(path, cfg, schema, model, optimizer, scheduler, scaler, device)

    def checkpoint(epoch: int, metrics: dict) -> dict:
        return {
            "model": model.state_dict(), "spec": dataclasses.asdict(model.spec), "schema": schema.to_dict(),
            "codec": codec.to_dict(), "config": cfg.to_dict(), "epoch": epoch, "step": step, "best_metric": best,
            "metrics": metrics, "optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(),
            "scaler": scaler.state_dict(), "rng": rng_state(),
        }  # fmt: skip

    run.claim(resume=bool(resume), overwrite=cfg.train.overwrite)  # the first write: create and lock the folder
    try:
        if info.is_main:
            save_config(cfg, run.path / "config.yaml")
            metrics_log = MetricsLog(run.path, cfg.train.tensorboard)
            metrics_log.truncate(start_epoch)  # rows after the checkpoint (a resume redoes those epochs)
            if start_epoch == 0:
                save_checkpoint(run.path / "last.pt", checkpoint(0, {"epoch": 0}))  # a stop in epoch 1 can resume
            log.info("%s: %d train / %d val samples, model %s (%.2f M params), precision %s, device %s%s",
                     run.path, len(train_set), len(val_samples), cfg.model.name,
                     sum(p.numel() for p in model.parameters()) / 1e6, amp_dtype or "fp32", device,
                     f", {threads} thread(s)" if threads else "")  # fmt: skip

        with StopRequest() as stop:
            for epoch in range(start_epoch, cfg.optim.epochs):
                sampler.set_epoch(epoch)
                train_set.set_epoch(epoch)
                net.train()
                t0 = time.time()
                totals, step, invalid, stopped = train_one_epoch(
                    net, loader, loss_fn, optimizer, scaler, codec, segments, cfg, device, amp_dtype, memory_format,
                    epoch, step, stop, info, bar=info.is_main and cfg.train.progress,
                )  # fmt: skip
                if stopped:
                    code = distributed.max_over_ranks(stop.exit_code if stop.requested else 0, info, device)
                    log.warning("stopped in epoch %d; last.pt holds the end of epoch %d: --resume continues exactly "
                                "from there", epoch + 1, epoch)  # fmt: skip
                    raise SystemExit(code)
                totals = totals.reduced(info, device)
                check_skipped(totals, invalid, train_set.samples, cfg.train.max_skipped)
                scheduler.step()
                n = totals.samples
                row = {
                    "epoch": epoch + 1, "lr": optimizer.param_groups[0]["lr"], "train_loss": totals.loss / n,
                    "train_mse_all": totals.mse_all / n, "train_mse_fg": totals.mse_fg / n,
                    "skipped_images": totals.skipped, "images_per_s": n / max(time.time() - t0, 1e-9),
                }  # fmt: skip
                if val_set is not None and ((epoch + 1) % cfg.train.val_every == 0 or epoch + 1 == cfg.optim.epochs):
                    distributed.broadcast_buffers(model, info)  # every rank validates what rank 0 saves
                    val = evaluate_model(model, codec, val_set, schema, cfg, device, info, amp_dtype)
                    row.update(val.summary())
                    finite = all(torch.isfinite(p).all() for p in model.parameters())
                    if math.isfinite(val.nme) and finite and val.nme < best:
                        best = val.nme
                        if info.is_main:
                            save_checkpoint(run.path / "best.pt", checkpoint(epoch + 1, row))
                if info.is_main:
                    metrics_log.write(row)  # before last.pt: a resume from it never lacks its row
                    save_checkpoint(run.path / "last.pt", checkpoint(epoch + 1, row))
                    log.info(" ".join(f"{k}={v:.5g}" if isinstance(v, float) else f"{k}={v}" for k, v in row.items()))

        results = {}
        d = cfg.data
        specs = [(d.format, d.root, s) for s in [d.val_split if val_set is not None else None, *d.test_splits] if s]
        if specs:
            best_path = run.path / "best.pt"
            distributed.barrier(info)  # rank 0 has finished writing best.pt
            if best_path.exists():
                model.load_state_dict(load_checkpoint(best_path, map_location=device)["model"])
            evaluations = evaluate_splits(model, codec, schema, cfg, specs, device, info, amp_dtype)
            if info.is_main:
                results = write_evaluation(evaluations, run.path, cfg, schema, device, env)
    finally:  # also on errors and stop signals: the next run may take the folder, the group is left
        run.release()
        distributed.cleanup()
    return results


# ------------------------------------------------------------------------------------------------ CLI
def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("config", help="YAML config, e.g. configs/cpu/fdd14.yaml")
    parser.add_argument("overrides", nargs="*", help="dotted key=value overrides, e.g. optim.epochs=3")
    parser.add_argument(
        "--resume", nargs="?", const="auto", metavar="PATH",
        help="resume from PATH or (no value) the run's last.pt; put it after the overrides",
    )  # fmt: skip


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
        print(f"{split}: NME {100 * res['nme']:.2f}%  " + "  ".join(
            f"FR@{t} {100 * res['fr'][t]:.2f}%  AUC@{t} {res['auc'][t]:.4f}" for t in res["fr"]))  # fmt: skip
    return 0


__all__ = [
    "train",
    "train_one_epoch",
    "check_config",
    "load_training_config",
    "build_model",
    "build_optimizer",
    "training_targets",
    "TrainingDiverged",
]
