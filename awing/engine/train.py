"""Training: ``awing train CONFIG [key=value ...] [--resume auto|PATH]``.

The whole loop is :func:`train`; the helpers above it build what it needs from the config. Run it
under ``torchrun --nproc_per_node=N -m awing train ...`` for DistributedDataParallel (NCCL on GPUs,
gloo on CPU); rank 0 alone logs and writes checkpoints.
"""

from __future__ import annotations

import argparse
import logging
import math
import time
from contextlib import nullcontext
from pathlib import Path

import torch
from tqdm import tqdm

from awing.data.dataset import LandmarkDataset, build_loader
from awing.data.noise import add_label_noise
from awing.data.readers import get_reader, read_dataset, schema_for_point_count
from awing.engine import distributed
from awing.engine.checkpoint import CheckpointError, load_checkpoint, save_checkpoint, spec_dict
from awing.engine.config import Config, load_config, save_config
from awing.engine.evaluate import evaluate_model, write_evaluation
from awing.engine.runtime import (
    MetricsLog,
    StopRequest,
    cpu_has_native_bf16,
    rng_state,
    seed_everything,
    set_rng_state,
)
from awing.method.decode import crop_to_heatmap
from awing.method.losses import build_loss
from awing.method.model import create_model
from awing.method.targets import render_targets
from awing.method.weights import build_loss_weights
from awing.schemas import Schema, lines_as_segments, load_schema

log = logging.getLogger("awing.train")


# ----------------------------------------------------------------------------------------- building
def load_splits(cfg: Config) -> tuple[Schema, list, list]:
    """Schema and the train / val samples named by the config (errors before any training work)."""
    info = get_reader(cfg.data.format)
    options = dict(cfg.data.options)
    train = read_dataset(cfg.data.format, cfg.data.root, cfg.data.train_split, **options)
    val = (
        read_dataset(cfg.data.format, cfg.data.root, cfg.data.val_split, **options)
        if cfg.data.val_split
        else []
    )
    if not train:
        raise ValueError(f"no training samples in {cfg.data.root} split {cfg.data.train_split!r}")
    schema_name = cfg.data.schema or options.get("schema") or info.schema
    if not schema_name:  # layouts such as COCO JSON whose schema depends on the file
        schema_name = schema_for_point_count(train[0].num_points, f"data.format={cfg.data.format}")
    schema = load_schema(schema_name)
    for name, samples in (("train", train), ("val", val)):
        if samples and samples[0].num_points != schema.num_points:
            raise ValueError(
                f"{name} samples have {samples[0].num_points} points but schema {schema.name} has {schema.num_points}"
            )
    if cfg.data.limit:
        train = train[: cfg.data.limit]
    p, s = cfg.train.label_noise
    return schema, add_label_noise(train, schema, p / 100, s / 100, seed=cfg.train.seed), val


def build_model(cfg: Config, num_points: int) -> torch.nn.Module:
    m = cfg.model
    return create_model(
        m.name, num_points, stacks=m.stacks, width=m.width, input_size=m.input_size, boundary=m.boundary,
        coordconv=m.coordconv, boundary_coords=m.boundary_coords and m.boundary and m.coordconv,
    )  # fmt: skip


def build_optimizer(cfg: Config, model: torch.nn.Module) -> torch.optim.Optimizer:
    o = cfg.optim
    if o.name == "rmsprop":
        return torch.optim.RMSprop(
            model.parameters(), lr=o.lr, momentum=o.momentum, weight_decay=o.weight_decay
        )
    if o.name == "adam":
        return torch.optim.Adam(model.parameters(), lr=o.lr, weight_decay=o.weight_decay)
    if o.name == "sgd":
        return torch.optim.SGD(model.parameters(), lr=o.lr, momentum=o.momentum, weight_decay=o.weight_decay)
    raise ValueError(f"unknown optimizer {o.name!r}; choose rmsprop, adam or sgd")


def resolve_precision(precision: str, device: torch.device) -> torch.dtype | None:
    """The autocast dtype, or None for fp32. ``auto``: bf16 where the hardware has it."""
    if precision == "fp32":
        return None
    if precision == "bf16":
        return torch.bfloat16
    if precision == "fp16":
        return torch.float16
    if precision != "auto":
        raise ValueError(f"unknown precision {precision!r}; choose auto, fp32, bf16 or fp16")
    if device.type == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return torch.bfloat16 if torch.backends.mkldnn.is_available() and cpu_has_native_bf16() else None


def autocast(device: torch.device, dtype: torch.dtype | None):
    return torch.autocast(device.type, dtype=dtype) if dtype is not None else nullcontext()


def training_step_targets(batch: dict, cfg: Config, stride: float, heatmap_size: int, segments, device):
    """Heatmap targets and per-pixel loss weights for one batch, rendered on ``device``.

    Returns targets (B, C, H, W), weights (B, C, H, W) (the loss map times the channel mask that drops
    missing / outside landmarks) and the channel mask (B, C).
    """
    points = crop_to_heatmap(batch["points"].to(device, non_blocking=True).float(), stride)
    t = cfg.targets
    targets, mask = render_targets(
        points, (heatmap_size, heatmap_size), segments, t.sigma, t.radius, t.boundary_sigma
    )  # fmt: skip
    weights = build_loss_weights(targets, cfg.loss.weight_map, cfg.loss.weight, cfg.loss.threshold)
    channel = mask[..., None, None].to(targets.dtype)
    return targets, channel if weights is None else weights * channel, mask


# ------------------------------------------------------------------------------------------ the loop
def train(cfg: Config, resume: str | None = None) -> dict:
    """Train per ``cfg``; returns the final evaluation results (rank 0) or {} (other ranks)."""
    info, device = distributed.setup(cfg.train.device)
    seed_everything(cfg.train.seed + info.rank, cfg.train.deterministic)
    schema, train_samples, val_samples = load_splits(cfg)
    model = build_model(cfg, schema.num_points).to(device)
    spec = model.spec
    stride, hm = spec.input_size / spec.heatmap_size, spec.heatmap_size
    segments = torch.as_tensor(lines_as_segments(schema)) if spec.boundary else None
    run_dir = Path(cfg.train.out_dir) / (cfg.train.name or "run")

    def dataset(samples, train_mode):
        d = cfg.data
        return LandmarkDataset(
            samples, schema, spec.input_size, hm, crop=d.crop, enlarge=d.enlarge,
            augment=cfg.augment if (train_mode and cfg.augment.enabled) else None, train=train_mode,
            cache=d.cache, seed=cfg.train.seed,
        )  # fmt: skip

    train_set = dataset(train_samples, True)
    # A seeded (seed, epoch) shuffle on every rank count, so a resumed run sees the same order.
    sampler = torch.utils.data.DistributedSampler(
        train_set, info.world_size, info.rank, shuffle=True, seed=cfg.train.seed,
        drop_last=len(train_set) >= cfg.optim.batch_size * info.world_size,
    )  # fmt: skip
    loader = build_loader(
        train_set, cfg.optim.batch_size, shuffle=False, workers=cfg.data.workers, seed=cfg.train.seed,
        sampler=sampler, drop_last=len(train_set) > cfg.optim.batch_size * info.world_size,
    )  # fmt: skip
    val_set = dataset(val_samples, False) if val_samples else None

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
        path = run_dir / "last.pt" if resume == "auto" else Path(resume)
        ckpt = load_checkpoint(path, map_location=device)
        if ckpt["schema"]["num_points"] != schema.num_points or ckpt["spec"] != spec_dict(spec):
            raise ValueError(f"{path} was trained with another schema or architecture than this config")
        needed = ("optimizer", "scheduler", "scaler", "rng", "epoch", "step", "best_metric")
        missing = [k for k in needed if k not in ckpt]
        if missing:
            raise CheckpointError(
                f"{path} is not a training checkpoint (it lacks {', '.join(missing)}); resume from a run's last.pt"
            )
        model.load_state_dict(ckpt["model"])
        optimizer.load_state_dict(ckpt["optimizer"])
        scheduler.load_state_dict(ckpt["scheduler"])
        scaler.load_state_dict(ckpt["scaler"])
        set_rng_state(ckpt["rng"])
        start_epoch, step, best = ckpt["epoch"], ckpt["step"], ckpt["best_metric"]
        log.info("resumed from %s at epoch %d", path, start_epoch)

    if info.is_main:
        run_dir.mkdir(parents=True, exist_ok=True)
        save_config(cfg, run_dir / "config.yaml")
        metrics_log = MetricsLog(run_dir, cfg.train.tensorboard)
        metrics_log.truncate(start_epoch)  # rows after the checkpoint (a resume redoes those epochs)
        log.info("%s: %d train / %d val samples, model %s (%.2f M params), precision %s, device %s",
                 run_dir, len(train_set), len(val_samples), cfg.model.name,
                 sum(p.numel() for p in model.parameters()) / 1e6, amp_dtype or "fp32", device)  # fmt: skip

    def checkpoint(epoch: int, metrics: dict) -> dict:
        return {
            "model": model.state_dict(), "spec": spec_dict(spec), "schema": schema.to_dict(), "config": cfg.to_dict(),
            "epoch": epoch, "step": step, "best_metric": best, "metrics": metrics, "optimizer": optimizer.state_dict(),
            "scheduler": scheduler.state_dict(), "scaler": scaler.state_dict(), "rng": rng_state(),
        }  # fmt: skip

    with StopRequest() as stop:
        for epoch in range(start_epoch, cfg.optim.epochs):
            sampler.set_epoch(epoch)
            train_set.set_epoch(epoch)
            net.train()
            totals = torch.zeros(5, device=device)  # loss, mse all pixels, mse foreground, samples, skipped
            skipped, t0, stopping = 0, time.time(), False
            bar = tqdm(
                loader, desc=f"epoch {epoch + 1}/{cfg.optim.epochs}", leave=False,
                disable=not (info.is_main and cfg.train.progress),
            )  # fmt: skip
            for batch in bar:
                skipped += int(batch.get("n_invalid", 0))
                if batch["image"].shape[0] == 0:
                    continue
                images = batch["image"].to(device, non_blocking=True).float().div_(255)
                images = images.contiguous(memory_format=memory_format)
                targets, weights, _ = training_step_targets(batch, cfg, stride, hm, segments, device)
                with autocast(device, amp_dtype):
                    outputs = net(images)
                loss = sum(loss_fn(out, targets, weights) for out in outputs)  # intermediate supervision
                optimizer.zero_grad(set_to_none=True)
                scaler.scale(loss).backward()
                scaler.step(optimizer)
                scaler.update()
                step += 1
                with torch.no_grad():  # Table 10: the last stack's error measured in MSE
                    err = (outputs[-1].float() - targets) ** 2
                    fg = targets > 0
                    n = images.shape[0]
                    totals[:4] += torch.stack(
                        [loss.detach() * n, err.mean() * n, err[fg].mean() * n, err.new_tensor(n)]
                    )
                bar.set_postfix(loss=f"{loss.item():.4f}")
                stopping = distributed.any_rank(stop.requested, info, device)  # all ranks stop at one step
                if stopping:
                    break
            scheduler.step() if not stopping else None
            totals[4] = skipped
            totals = distributed.all_reduce_mean(totals, info)
            skipped = round(totals[4].item() * info.world_size)  # unreadable images, over all ranks
            row = {
                "epoch": epoch + 1, "lr": optimizer.param_groups[0]["lr"],
                "train_loss": (totals[0] / totals[3]).item(), "train_mse_all": (totals[1] / totals[3]).item(),
                "train_mse_fg": (totals[2] / totals[3]).item(), "skipped_images": skipped,
                "images_per_s": totals[3].item() * info.world_size / max(time.time() - t0, 1e-9),
            }  # fmt: skip
            if stopping:
                if info.is_main:
                    save_checkpoint(run_dir / "last.pt", checkpoint(epoch, {}))
                    log.warning(
                        "stopped in epoch %d; resume with --resume auto (the epoch restarts)", epoch + 1
                    )
                distributed.cleanup()
                raise SystemExit(130)
            last_epoch = epoch + 1 == cfg.optim.epochs
            if val_set is not None and ((epoch + 1) % cfg.train.val_every == 0 or last_epoch):
                distributed.broadcast_buffers(model, info)  # every rank validates what rank 0 saves
                val = evaluate_model(model, val_set, schema, cfg, device, info, amp_dtype)
                row.update({f"val_{k}": v for k, v in val.summary().items()})
                if val.nme < best:
                    best = val.nme
                    if info.is_main:
                        save_checkpoint(run_dir / "best.pt", checkpoint(epoch + 1, val.summary()))
            if info.is_main:
                save_checkpoint(run_dir / "last.pt", checkpoint(epoch + 1, row))
                metrics_log.write(row)
                log.info(
                    " ".join(f"{k}={v:.5g}" if isinstance(v, float) else f"{k}={v}" for k, v in row.items())
                )

    results = {}
    if val_set is not None:
        best_path = run_dir / "best.pt"
        distributed.barrier(info)  # rank 0 has finished writing best.pt
        if best_path.exists():
            model.load_state_dict(load_checkpoint(best_path, map_location=device)["model"])
        val = evaluate_model(model, val_set, schema, cfg, device, info, amp_dtype)
        if info.is_main:
            results = write_evaluation({cfg.data.val_split: val}, run_dir, cfg, schema, device)
    distributed.cleanup()
    return results


# ------------------------------------------------------------------------------------------------ CLI
def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("config", help="YAML config, e.g. configs/cpu/fdd14.yaml")
    parser.add_argument("overrides", nargs="*", help="dotted key=value overrides, e.g. optim.epochs=3")
    parser.add_argument(
        "--resume", nargs="?", const="auto", help="resume from PATH or (no value) the run's last.pt"
    )


def run(args: argparse.Namespace) -> int:
    cfg = load_config(args.config, args.overrides)
    results = train(cfg, resume=args.resume)
    for split, res in results.get("testsets", {}).items():
        print(f"{split}: NME {100 * res['nme']:.2f}%  " + "  ".join(
            f"FR@{t} {100 * res['fr'][t]:.2f}%  AUC@{t} {res['auc'][t]:.4f}" for t in res["fr"]))  # fmt: skip
    return 0


__all__ = ["train", "load_splits", "build_model", "build_optimizer", "resolve_precision"]
