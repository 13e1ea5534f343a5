"""Where the loss gradient goes during training, AW vs MSE: foreground, difficult background, background.

    python -m benchmarks.gradients [--methods AW MSE] [--epochs 8] [--limit 400] [--faces 16] [--seed 0]
                                   [--config configs/cpu/w300_64.yaml] [--threads N] [--workers N]
                                   [--out runs/gradients] [--figure docs/results/gradients_w300_64.png]
                                   [key=value ...]

Each method (a row of ``benchmarks.reproduce.ABLATION``: ``MSE`` and ``AW`` are the plain losses, no
weight map, no boundary, no CoordConv) trains from the config for ``--epochs`` epochs, with the engine's
own building blocks (``TrainState``, ``TrainingData``, ``StepContext``, ``run_epoch``: the same steps as
``awing train``), on ``--limit`` training faces evenly spaced over the split (all of them with 0). The
schedule is the config's: N epochs here are the first N of its recipe. Before the first epoch and after
each one, the model (eval mode) predicts a fixed batch of ``--faces`` validation faces (no augmentation),
and on its last stack's landmark channels we measure:

- the share of the loss gradient ``sum |dL/d y_hat|`` (the loss taken as ``train_step`` takes it, weights
  included) that falls on **foreground** pixels (target >= 0.2), **difficult background** pixels (in
  Eq. 4's mask, the 3x3 dilation of the target >= 0.2, but target < 0.2) and **background** pixels;
- the heatmap's **value at the true point** (bilinear, as ``benchmarks/sharpness.py``'s value@GT), its
  **peak** (channel maximum) and the **decoding error** (heatmap pixels, argmax + quarter shift).

Writes ``OUT/METHOD_sSEED.json`` per method (a finished file with the same settings is reused), one
figure (one panel per quantity, a line per method over epochs) and prints the table.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

if __package__:  # python -m benchmarks.gradients, or imported
    from benchmarks._common import REPO, line_panels, subsample
    from benchmarks.reproduce import ABLATION
else:  # python benchmarks/gradients.py
    from _common import REPO, line_panels, subsample
    from reproduce import ABLATION

from awing.core.config import Config, load_config
from awing.core.device import resolve_device, resolve_precision, set_threads
from awing.data.build import build_dataset, load_training_splits
from awing.data.dataset import build_loader
from awing.engine.diagnostics import CLASSES
from awing.engine.distributed import DistInfo
from awing.engine.runtime import environment, seed_everything
from awing.engine.train import StepContext, TrainingData, TrainState, check_config, diagnose_batch, run_epoch

QUANTITIES = {  # key -> panel title
    "share_foreground": "gradient share: foreground (target >= 0.2)",
    "share_difficult": "gradient share: difficult background",
    "share_background": "gradient share: background",
    "value_at_gt": "heatmap value at the true point",
    "peak": "heatmap peak (channel maximum)",
    "error_px": "decoding error (heatmap px)",
}
DEFAULT_CONFIG = "configs/cpu/w300_64.yaml"


# ------------------------------------------------------------------------------------------ measures
# ------------------------------------------------------------------------------------------ training
def method_config(args, method: str) -> Config:
    """The config of one method: ``--config``, the method's ablation overrides, then the user's."""
    overrides = [*ABLATION[method], f"train.seed={args.seed}", "train.progress=false", "train.tensorboard=false"]
    if args.workers is not None:
        overrides.append(f"data.workers={args.workers}")
    cfg = check_config(load_config(REPO / args.config if args.config else None, overrides + args.overrides))
    root = Path(cfg.data.root).expanduser()
    if not root.is_absolute() and not root.exists() and (REPO / root).exists():  # the configs' paths: from REPO
        cfg.data.root = str(REPO / root)
    return cfg


def fixed_batch(cfg: Config, schema, val_samples: list, faces: int, input_size: int) -> dict:
    """``faces`` validation faces evenly spaced over the split, cropped as in validation, as one batch."""
    if not val_samples:
        raise SystemExit("the config has no data.val_split: the measurement needs validation faces")
    dataset = build_dataset(cfg, subsample(val_samples, faces), schema, input_size)
    return next(iter(build_loader(dataset, len(dataset), False, 0, cfg.train.seed)))


def train_and_measure(cfg: Config, epochs: int, limit: int, faces: int, device: torch.device) -> list[dict]:
    """Train ``epochs`` epochs on ``limit`` training faces (0: all), measuring before and after each."""
    seed_everything(cfg.train.seed, cfg.train.deterministic)
    schema, train_samples, val_samples = load_training_splits(cfg)
    amp_dtype = resolve_precision(cfg.train.precision, device)
    state = TrainState.build(cfg, schema, device, amp_dtype)
    info = DistInfo()
    data = TrainingData.build(cfg, schema, subsample(train_samples, limit), [], state.codec.input_size, info)
    ctx = StepContext.build(cfg, state, device, amp_dtype, info)
    batch = fixed_batch(cfg, schema, val_samples, faces, state.codec.input_size)
    rows = [{"epoch": 0, **diagnose_batch(ctx, state.model, batch)}]
    for epoch in range(epochs):
        t0 = time.time()
        train_row = run_epoch(ctx, state, data, epoch)
        row = {"epoch": epoch + 1, "train_loss": train_row["train_loss"], "seconds": time.time() - t0}
        rows.append({**row, **diagnose_batch(ctx, state.model, batch)})
        print(f"  {cfg.loss.name}: epoch {epoch + 1}/{epochs} " + format_row(rows[-1]), flush=True)
    return rows


def format_row(row: dict) -> str:
    shares = " / ".join(f"{100 * row[f'share_{c}']:.1f}" for c in CLASSES)
    return (
        f"shares fg / difficult / bg {shares} %  value@GT {row['value_at_gt']:.3f}  peak {row['peak']:.3f}  "
        f"error {row['error_px']:.2f} px"
    )


def settings(args, cfg: Config) -> dict:
    """What a result file's numbers depend on (a file with other settings is computed again)."""
    return {
        "config": args.config,
        "overrides": args.overrides,
        "epochs": args.epochs,
        "limit": args.limit,
        "faces": args.faces,
        "seed": args.seed,
        "loss": cfg.loss.name,
        "weight_map": cfg.loss.weight_map,
    }


def run_method(args, method: str, device: torch.device) -> dict:
    """One method's rows, from ``OUT/METHOD_sSEED.json`` if it holds a run with the same settings."""
    cfg = method_config(args, method)
    path = Path(args.out) / f"{''.join(c if c.isalnum() else '_' for c in method)}_s{args.seed}.json"
    wanted = settings(args, cfg)
    if path.exists():
        saved = json.loads(path.read_text())
        if saved.get("settings") == wanted:
            print(f"{method}: read {path}")
            return saved
    print(f"{method}: training {args.epochs} epochs ({cfg.loss.name}, weight map {cfg.loss.weight_map})", flush=True)
    t0 = time.time()
    rows = train_and_measure(cfg, args.epochs, args.limit, args.faces, device)
    result = {
        "method": method,
        "settings": wanted,
        "rows": rows,
        "minutes": (time.time() - t0) / 60,
        "threads": torch.get_num_threads(),
        "environment": environment(device),
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=1) + "\n")
    return result


# ------------------------------------------------------------------------------------------ report
def figure(results: list[dict], path: Path, title: str) -> Path:
    """One panel per quantity of :data:`QUANTITIES`, a line per method over epochs."""
    panels = {}
    for key, name in QUANTITIES.items():
        scale = 100.0 if key.startswith("share_") else 1.0
        panels[name + (" (%)" if scale != 1 else "")] = {
            r["method"]: ([row["epoch"] for row in r["rows"]], [scale * row[key] for row in r["rows"]]) for r in results
        }
    return line_panels(panels, path, title, "epoch")


def print_table(results: list[dict]) -> None:
    print("\n| method | epoch | fg share % | difficult % | bg share % | value@GT | peak | error px | train loss |")
    print("|---|---|---|---|---|---|---|---|---|")
    for result in results:
        for r in result["rows"]:
            shares = " | ".join(f"{100 * r[f'share_{c}']:.1f}" for c in CLASSES)
            loss = f"{r['train_loss']:.4g}" if "train_loss" in r else "–"
            print(
                f"| {result['method']} | {r['epoch']} | {shares} | {r['value_at_gt']:.3f} | {r['peak']:.3f} "
                f"| {r['error_px']:.2f} | {loss} |"
            )
    first = results[0]["rows"][0]
    print(
        f"\npixels: foreground {100 * first['pixels_foreground']:.2f} %, difficult background "
        f"{100 * first['pixels_difficult']:.2f} %, background the rest (landmark channels of the fixed faces)"
    )


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--methods", nargs="+", default=["AW", "MSE"], choices=sorted(ABLATION), metavar="ROW")
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--limit", type=int, default=400, help="training faces, evenly spaced (0: all)")
    parser.add_argument("--faces", type=int, default=16, help="fixed validation faces measured after each epoch")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--config", default=DEFAULT_CONFIG, help="training config, relative to the repository")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, help="CPU threads (default: the config's train.threads)")
    parser.add_argument("--workers", type=int, help="data loader workers (default: the config's)")
    parser.add_argument("--out", default="runs/gradients", help="folder of the per-method result files")
    parser.add_argument("--figure", type=Path, help="the plot (default: OUT/gradients.png)")
    parser.add_argument("overrides", nargs="*", help="config overrides after the method's, e.g. data.root=...")
    args = parser.parse_args(argv)
    if args.epochs < 1 or args.limit < 0 or args.faces < 1:
        parser.error("--epochs and --faces must be >= 1, --limit >= 0")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    device = resolve_device(args.device)
    if device.type == "cpu":
        set_threads(args.threads or method_config(args, args.methods[0]).train.threads)
    results = [run_method(args, method, device) for method in args.methods]
    print_table(results)
    title = (
        f"{Path(args.config).stem}: {', '.join(args.methods)}; {args.epochs} epochs of "
        f"{args.limit or 'all'} faces, {args.faces} fixed val faces, seed {args.seed}"
    )
    path = figure(results, args.figure or Path(args.out) / "gradients.png", title)
    print(f"\nfigure: {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
