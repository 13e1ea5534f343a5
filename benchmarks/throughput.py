"""Training throughput: loader images/s next to model-step images/s, fp32 eager vs the fast path.

    python benchmarks/throughput.py [--model NAME] [--data fdd|mtfl|w300|synthetic] [--steps 10] [key=value ...]

Prints, in one run (so the ratios are fair on a noisy machine):
  - loader: images/s of the Dataset + DataLoader alone (augmentation on, the training path),
  - step fp32: images/s of a training step (targets, forward, AWing + weight map, backward, RMSProp),
    fp32, contiguous memory,
  - step fast: the same with bf16 autocast + channels_last,
  - loader share: loader time per image / (loader + fast step time per image) with workers = 0.
"""

from __future__ import annotations

import argparse
import itertools
import time

import torch

if __package__:  # python -m benchmarks.throughput, or imported
    from benchmarks._common import REPO
else:  # python benchmarks/throughput.py
    from _common import REPO

from awing.core.config import load_config
from awing.data.build import build_training_set, load_training_splits
from awing.data.dataset import build_loader
from awing.engine.train import build_model, build_optimizer, training_targets
from awing.method.codec import build_codec
from awing.method.losses import build_loss
from awing.schemas import lines_as_segments

CONFIGS = {  # under the repository; their data.root is relative to the working directory (run from the repository)
    "fdd": "configs/cpu/fdd14.yaml",
    "mtfl": "configs/cpu/mtfl5.yaml",
    "w300": "configs/cpu/w300.yaml",
    "synthetic": "configs/cpu/synthetic.yaml",
}


def loader_rate(loader, batches: int) -> float:
    it = iter(loader)
    next(it)  # warm-up (workers start, caches fill)
    t0, n = time.perf_counter(), 0
    for batch in itertools.islice(it, batches):
        n += batch["image"].shape[0]
    return n / (time.perf_counter() - t0)


def step_rate(cfg, model, batch, steps: int, fast: bool) -> float:
    memory_format = torch.channels_last if fast else torch.contiguous_format
    model = model.to(memory_format=memory_format).train()
    optimizer = build_optimizer(cfg, model)
    loss_fn = build_loss(cfg.loss.name, **cfg.loss.params)
    spec = model.spec
    codec = build_codec(spec, cfg.targets)
    segments = torch.as_tensor(lines_as_segments_cache[0]) if spec.boundary else None
    images = batch["image"].float().div(255).contiguous(memory_format=memory_format)

    def one_step():
        targets, weights = training_targets(batch, cfg, codec, segments, torch.device("cpu"))
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=fast):
            outputs = model(images)
        loss = sum(loss_fn(o, targets, weights) for o in outputs)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    one_step()  # warm-up
    t0 = time.perf_counter()
    for _ in range(steps):
        one_step()
    return steps * images.shape[0] / (time.perf_counter() - t0)


lines_as_segments_cache: list = []


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="synthetic", choices=sorted(CONFIGS))
    parser.add_argument("--model", help="model preset (default: the config's)")
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--workers", type=int, default=0)
    parser.add_argument("overrides", nargs="*", help="config overrides, e.g. model.input_size=256 model.stacks=2")
    args = parser.parse_args()
    overrides = [f"optim.batch_size={args.batch}", f"data.workers={args.workers}"]
    if args.model:
        overrides.append(f"model.name={args.model}")
    overrides += args.overrides
    cfg = load_config(REPO / CONFIGS[args.data], overrides)
    schema, train_samples, _ = load_training_splits(cfg)
    lines_as_segments_cache.append(lines_as_segments(schema))
    model = build_model(cfg, schema.num_points)
    dataset = build_training_set(cfg, train_samples, schema, model.spec.input_size)
    loader = build_loader(dataset, args.batch, shuffle=True, workers=args.workers, seed=0, drop_last=True)
    batch = next(iter(loader))
    load = loader_rate(loader, max(args.steps, 4))
    fp32 = step_rate(cfg, model, batch, args.steps, fast=False)
    fast = step_rate(cfg, model, batch, args.steps, fast=True)
    share = (1 / load) / (1 / load + 1 / fast)
    print(
        f"data={args.data} model={cfg.model.name} input={model.spec.input_size} batch={args.batch} "
        f"workers={args.workers} threads={torch.get_num_threads()}"
    )
    print(f"{'loader (augmented)':<28}{load:8.1f} img/s")
    print(f"{'train step fp32 eager':<28}{fp32:8.1f} img/s")
    print(f"{'train step bf16+chlast':<28}{fast:8.1f} img/s   ({fast / fp32:.2f}x fp32)")
    print(f"{'loader share of step time':<28}{100 * share:8.1f} %  (fast path, in-process loading)")


if __name__ == "__main__":
    main()
