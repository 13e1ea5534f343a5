"""Speed of the heatmap losses, forward + backward, on real training targets.

    python benchmarks/loss_speed.py [--data w300] [--batch 16] [--rounds 7] [--threads 1] [key=value ...]

One augmented training batch of the config's data is encoded as training does (landmark heatmaps, the
boundary channel, the Weighted Loss Map); the prediction is that target plus noise, in bf16 and channels_last
as the model gives it under autocast. Each loss's forward and backward is timed in rounds that alternate between
the losses (so the ratios are fair on a noisy machine); the median is printed, with its ratio to Eq. 3 written
out and differentiated by autograd (``adaptive_wing_reference``).

Targets must come from real landmarks: heatmaps are 0 on about 98 % of a 68-point map at 64x64, and the
AWing loss is computed cheaper there (:class:`awing.method.losses._AdaptiveWing`).
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

if __package__:  # python -m benchmarks.loss_speed, or imported
    from benchmarks._common import REPO
else:  # python benchmarks/loss_speed.py
    from _common import REPO

from awing.core.config import load_config
from awing.data.build import build_training_set, load_training_splits
from awing.data.dataset import build_loader
from awing.engine.train import model_kwargs, training_targets
from awing.method.codec import build_codec
from awing.method.losses import _fp32, _reduce, adaptive_wing_reference, build_loss, loss_parameters
from awing.method.model import model_spec
from awing.schemas import lines_as_segments

CONFIGS = {"w300": "configs/cpu/w300.yaml", "fdd": "configs/cpu/fdd14.yaml", "synthetic": "configs/cpu/synthetic.yaml"}


def reference_awing(pred, target, weight):
    """The AWing loss as Eq. 3 reads, differentiated by autograd (what the closed form replaces)."""
    pred, target = _fp32(pred, target)
    return _reduce(adaptive_wing_reference(pred, target, **loss_parameters("awing")), weight, "mean")


def time_once(loss_fn, pred, targets, weights) -> float:
    pred.grad = None
    t0 = time.perf_counter()
    loss_fn(pred, targets, weights).backward()
    return time.perf_counter() - t0


def check_same_loss(pred, targets, weights) -> float:
    """The closed form's loss and gradient against the autograd Eq. 3's; returns the largest gradient gap.

    Raises:
        AssertionError: if they differ beyond float rounding (then the timing would compare different things).
    """
    grads = []
    for fn in (build_loss("awing"), reference_awing):
        pred.grad = None
        value = fn(pred, targets, weights)
        value.backward()
        grads.append((value.detach(), pred.grad.float().clone()))
    (closed, g_closed), (eq3, g_eq3) = grads
    torch.testing.assert_close(closed, eq3, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(g_closed, g_eq3, rtol=1e-2, atol=1e-6)  # bf16 gradients: about 3 digits
    return (g_closed - g_eq3).abs().max().item()


def main(argv: list[str] | None = None) -> dict[str, float]:
    """Print the table; return the median seconds per loss."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="w300", choices=sorted(CONFIGS))
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("overrides", nargs="*", help="config overrides, e.g. model.input_size=128")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    cfg = load_config(REPO / CONFIGS[args.data], [f"optim.batch_size={args.batch}", *args.overrides])
    schema, train_samples, _ = load_training_splits(cfg)
    spec = model_spec(cfg.model.name, schema.num_points, **model_kwargs(cfg))
    dataset = build_training_set(cfg, train_samples, schema, spec.input_size)
    batch = next(iter(build_loader(dataset, args.batch, shuffle=True, workers=0, seed=0, drop_last=True)))
    segments = torch.as_tensor(lines_as_segments(schema)) if spec.boundary else None
    targets, weights = training_targets(batch, cfg, build_codec(spec, cfg.targets), segments, torch.device("cpu"))
    noisy = (targets + 0.1 * torch.randn(targets.shape, generator=torch.Generator().manual_seed(0))).bfloat16()
    pred = noisy.contiguous(memory_format=torch.channels_last).requires_grad_()

    losses = {
        "awing (closed form)": build_loss("awing"),
        "awing (Eq. 3 by autograd)": reference_awing,
        "wing": build_loss("wing"),
        "mse": build_loss("mse"),
    }
    gap = check_same_loss(pred, targets, weights)
    times: dict[str, list[float]] = {name: [] for name in losses}
    for fn in losses.values():  # warm-up
        time_once(fn, pred, targets, weights)
    for _ in range(args.rounds):
        for name, fn in losses.items():
            times[name].append(time_once(fn, pred, targets, weights))

    zero = (targets == 0).float().mean().item()
    print(
        f"data={args.data} targets={tuple(targets.shape)} zero targets={100 * zero:.1f} % "
        f"threads={torch.get_num_threads()} rounds={args.rounds} (median ms, forward + backward)"
    )
    print(f"closed form = autograd Eq. 3 (loss; largest gradient gap {gap:.2g})")
    base = statistics.median(times["awing (Eq. 3 by autograd)"])
    for name, runs in times.items():
        ms = statistics.median(runs)
        print(f"{name:<28}{1000 * ms:8.1f} ms   {base / ms:5.2f}x the autograd AWing")
    return {name: statistics.median(runs) for name, runs in times.items()}


if __name__ == "__main__":
    main()
