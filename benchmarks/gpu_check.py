"""The paper's own model on the GPU(s): images/s, peak memory and a falling loss, in one command.

    python -m benchmarks.gpu_check [--steps 50] [--batch 16] [--workers 8] [--data DIR] [key=value ...]
    python -m benchmarks.gpu_check --dry-run          # the same code on the CPU, a tiny model, seconds

Trains the paper's 300-W recipe (``configs/paper/300w.yaml``: 4 stacks, width 256, 256 px -> 64x64,
AWing + Weighted Loss Map + boundary + CoordConv with boundary coordinates, RMSProp 1e-4, batch 16, its
augmentation) with bf16 autocast and channels_last, on 300-W's training faces under ``--data``
(default ``$AWING_SHARED_DATA/w300``, else ``../shared/data/w300``: AFW + HELEN; LFPW is not there and
the reader says so), for ``--steps`` optimiser steps with the engine's own step (``train_step``), and
prints:

- images/s over the steps after the first ``--warmup`` (end to end, and the step alone without the time
  spent waiting for the loader, with that wait's share),
- the peak GPU memory (``torch.cuda.max_memory_allocated``; the largest over ranks),
- the loss (summed over the stacks, as training logs it) of the first vs the last 10 steps.

Then, with N = ``torch.cuda.device_count()`` > 1, the same under ``torchrun --nproc_per_node=N``
(DistributedDataParallel over NCCL, batch ``--batch`` per GPU); with one GPU that part is skipped and
the output says so.

``--dry-run`` runs the same code on the CPU: a 2-stack, width-32, 64 px model of the same recipe, 2 steps
of batch 2, bf16 CPU autocast, and the torchrun part with ``--ranks`` (default 2) CPU processes over
gloo, so that the test suite exercises every line in seconds.

Exit status: 0 when the check ran and the loss fell (a dry run only has to run); 1 when the loss did not
fall or was not finite; 2 when there is no CUDA GPU and no ``--dry-run``: one line says so and nothing is
checked (a GPU job that cannot see its GPU must not look like a success).
"""

from __future__ import annotations

import argparse
import dataclasses
import gc
import json
import math
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

if __package__:  # python -m benchmarks.gpu_check, or imported
    from benchmarks._common import REPO, dataset_root
else:  # python benchmarks/gpu_check.py
    from _common import REPO, dataset_root

from awing.core.config import Config, load_config
from awing.core.device import resolve_precision, set_threads
from awing.data.build import load_training_splits
from awing.engine import distributed
from awing.engine.runtime import seed_everything
from awing.engine.train import StepContext, TrainingData, TrainingDiverged, TrainState, check_config, train_step

CONFIG = "configs/paper/300w.yaml"
WINDOW = 10  # the loss is compared over the first and the last this many steps
# The dry run's model: the recipe's architecture at toy size (2 stacks so that CB acts).
DRY_RUN = ["model.stacks=2", "model.width=32", "model.input_size=64", "data.workers=0"]


@dataclasses.dataclass
class Result:
    """One training check (all ranks together)."""

    device: str
    world_size: int
    steps: int
    batch: int  # per rank
    timed_steps: int
    seconds: float  # the timed steps, end to end
    data_seconds: float  # of which waiting for the loader (rank 0)
    peak_bytes: int | None  # torch.cuda.max_memory_allocated, max over ranks; None on the CPU
    rss_bytes: int  # the processes' peak resident memory, max over ranks
    losses: list[float]  # per step, the mean over ranks

    @property
    def images_per_s(self) -> float:
        return self.timed_steps * self.batch * self.world_size / max(self.seconds, 1e-9)

    @property
    def step_images_per_s(self) -> float:
        return self.timed_steps * self.batch * self.world_size / max(self.seconds - self.data_seconds, 1e-9)

    def loss_change(self) -> tuple[float, float]:
        """Mean loss of the first and of the last :data:`WINDOW` steps (halves of a shorter run)."""
        k = max(1, min(WINDOW, len(self.losses) // 2))
        return sum(self.losses[:k]) / k, sum(self.losses[-k:]) / k

    def loss_fell(self) -> bool:
        first, last = self.loss_change()
        return all(math.isfinite(v) for v in self.losses) and last < first


def check_config_for(args) -> Config:
    """The paper's 300-W config with this check's overrides (and the dry run's), then the user's."""
    overrides = [
        f"data.root={args.data}",
        "data.val_split=''",  # no validation or test set is read
        "data.test_splits=[]",
        f"optim.batch_size={args.batch}",
        "train.precision=bf16",
        "train.channels_last=true",
        f"train.device={'cpu' if args.dry_run else 'cuda'}",
        "train.progress=false",
        "train.tensorboard=false",
    ]
    if args.dry_run:
        overrides += DRY_RUN
    if args.workers is not None:
        overrides.append(f"data.workers={args.workers}")
    return check_config(load_config(REPO / CONFIG, overrides + args.overrides))


def batches(data: TrainingData):
    """The training batches epoch after epoch (each epoch's own shuffle and augmentation)."""
    epoch = 0
    while True:
        data.set_epoch(epoch)
        yield from data.loader
        epoch += 1


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed_steps(ctx: StepContext, data: TrainingData, steps: int, warmup: int) -> tuple[list[float], float, float]:
    """``steps`` training steps; returns the per-step losses, and the seconds (all, and waiting for data)
    of the steps after the first ``warmup``."""
    losses, data_seconds, t0 = [], 0.0, None
    source = batches(data)
    ctx.net.train()
    for step in range(steps):
        if step == warmup:
            sync(ctx.device)
            t0, data_seconds = time.perf_counter(), 0.0
        t_data = time.perf_counter()
        batch = next(source)
        while batch["image"].shape[0] == 0:  # every image of the batch unreadable
            batch = next(source)
        data_seconds += time.perf_counter() - t_data
        loss, _, _ = train_step(ctx, batch, 0, step)
        losses.append(loss)
    sync(ctx.device)
    return losses, time.perf_counter() - t0, data_seconds


def run_check(args) -> tuple[Result, str]:
    """One check on this process's device (a rank of torchrun's group if launched by it): the result and
    :func:`model_line`."""
    cfg = check_config_for(args)
    info, device = distributed.setup(cfg.train.device)
    try:
        return _check_on_this_rank(args, cfg, info, device)
    finally:  # after the check's DDP model is freed (see distributed.cleanup)
        distributed.cleanup()


def _check_on_this_rank(args, cfg, info, device) -> tuple[Result, str]:
    """:func:`run_check`'s work, in its own frame so that its DDP model, optimiser and loader are freed when it
    returns."""
    if device.type == "cpu":
        set_threads(1 if args.dry_run else cfg.train.threads)
    seed_everything(cfg.train.seed + info.rank, cfg.train.deterministic)
    schema, samples, _ = load_training_splits(cfg)
    amp_dtype = resolve_precision(cfg.train.precision, device)
    state = TrainState.build(cfg, schema, device, amp_dtype)
    data = TrainingData.build(cfg, schema, samples, [], state.codec.input_size, info)
    ctx = StepContext.build(cfg, state, device, amp_dtype, info)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    losses, seconds, data_seconds = timed_steps(ctx, data, args.steps, args.warmup)
    peak = torch.cuda.max_memory_allocated(device) if device.type == "cuda" else None
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux: KiB
    everyone = distributed.all_gather_objects((losses, peak, rss), info)
    mean_losses = [sum(rank[0][i] for rank in everyone) / len(everyone) for i in range(len(losses))]
    peaks = [rank[1] for rank in everyone if rank[1] is not None]
    result = Result(
        device=describe_device(device),
        world_size=info.world_size,
        steps=args.steps,
        batch=cfg.optim.batch_size,
        timed_steps=args.steps - args.warmup,
        seconds=seconds,
        data_seconds=data_seconds,
        peak_bytes=max(peaks) if peaks else None,
        rss_bytes=max(rank[2] for rank in everyone),
        losses=mean_losses,
    )
    return result, model_line(cfg, state)


def free_device_memory() -> None:
    """Give back what a finished check held on the GPU (its model, optimiser and loader are unreachable
    once :func:`run_check` has returned), so that torchrun's rank 0 finds the GPU empty."""
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def describe_device(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"CPU ({torch.get_num_threads()} thread{'s' * (torch.get_num_threads() > 1)} per process)"


def report(result: Result, label: str) -> str:
    """The check's lines."""
    first, last = result.loss_change()
    k = max(1, min(WINDOW, len(result.losses) // 2))
    steps = f"{k} step{'s' * (k > 1)}"
    rss = f"peak RSS {result.rss_bytes / 2**20:.0f} MiB per process"
    if result.peak_bytes is not None:
        memory = f"{result.peak_bytes / 2**30:.2f} GiB (max_memory_allocated); {rss}"
    else:
        memory = f"n/a on the CPU; {rss}"
    change = 100 * (last - first) / first if first else math.nan
    verdict = "falling" if result.loss_fell() else "NOT falling"
    return "\n".join(
        [
            f"{label}: {result.world_size} x {result.device}, {result.steps} steps of batch {result.batch}"
            + (" per rank" if result.world_size > 1 else ""),
            f"  images/s        {result.images_per_s:.1f} end to end over steps {result.steps - result.timed_steps + 1}"
            f"-{result.steps}; {result.step_images_per_s:.1f} without the loader wait "
            f"({100 * result.data_seconds / max(result.seconds, 1e-9):.0f} % of the time, rank 0)",
            f"  peak memory     {memory}",
            f"  loss            first {steps} {first:.4f} -> last {steps} {last:.4f} ({change:+.0f} %): {verdict}",
        ]
    )


def model_line(cfg: Config, state: TrainState) -> str:
    spec = state.model.spec
    params = sum(p.numel() for p in state.model.parameters()) / 1e6
    return (
        f"model: {cfg.model.name} {spec.stacks} stacks, width {spec.width}, {spec.input_size} px -> "
        f"{spec.heatmap_size}x{spec.heatmap_size}, boundary {spec.boundary}, CoordConv {spec.coordconv}, "
        f"CB {spec.boundary_coords} ({params:.2f} M parameters); loss {cfg.loss.name} + weight map "
        f"{cfg.loss.weight_map}; {cfg.optim.name} lr {cfg.optim.lr:g}; bf16 autocast + channels_last; "
        f"data {cfg.data.format}:{cfg.data.root}:{cfg.data.train_split}"
    )


# ------------------------------------------------------------------------------------------ launching
def worker(args) -> int:
    """One torchrun rank: the check; rank 0 prints it and writes it to ``args.worker`` for the launcher."""
    is_main = distributed.DistInfo.from_env().is_main
    result, _ = run_check(args)
    if is_main:
        Path(args.worker).write_text(json.dumps(dataclasses.asdict(result)) + "\n")
    return 0


def launch(args, ranks: int) -> Result | None:
    """The check under ``torchrun --standalone --nproc_per_node=ranks`` (its ranks print as they go);
    None when it failed."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "result.json"
        cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={ranks}"]
        cmd += ["-m", "benchmarks.gpu_check", "--worker", str(path), *args.argv]
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}
        if args.dry_run:
            env["OMP_NUM_THREADS"] = "1"  # torchrun would set it anyway; say so
        print("$ " + " ".join(["torchrun", *cmd[3:]]), flush=True)
        try:
            code = subprocess.run(cmd, cwd=REPO, env=env, timeout=args.timeout).returncode
        except subprocess.TimeoutExpired:
            code = f"none: stopped after --timeout {args.timeout} s"
        if code != 0 or not path.exists():
            print(f"torchrun --nproc_per_node={ranks}: failed (exit {code}); its output is above")
            return None
        return Result(**json.loads(path.read_text()))


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, help="optimiser steps (default 50; dry run 2)")
    parser.add_argument("--batch", type=int, help="images per step and GPU (default 16, the paper's; dry run 2)")
    parser.add_argument("--warmup", type=int, help="first steps left out of the timing (default steps / 10)")
    parser.add_argument("--workers", type=int, help="data loader workers per process (default: the config's, 8)")
    parser.add_argument("--data", type=Path, default=dataset_root("w300"), help="the 300-W folder (AFW, HELEN, ...)")
    parser.add_argument("--dry-run", action="store_true", help="the same code on the CPU, tiny model, seconds")
    parser.add_argument("--ranks", type=int, default=2, help="dry run: CPU processes of the torchrun part")
    parser.add_argument("--timeout", type=int, default=1800, help="seconds the torchrun part may take")
    parser.add_argument("--worker", help=argparse.SUPPRESS)  # a torchrun rank; the launcher's result file
    parser.add_argument("overrides", nargs="*", help="config overrides after the check's, e.g. data.workers=4")
    args = parser.parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)
    args.steps = args.steps or (2 if args.dry_run else 50)
    args.batch = args.batch or (2 if args.dry_run else 16)
    args.warmup = max(1, args.steps // 10) if args.warmup is None else args.warmup
    if args.steps < 2 or not 0 <= args.warmup < args.steps:
        parser.error("--steps must be >= 2 and --warmup in [0, steps)")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.worker:
        return worker(args)
    if not args.dry_run and not torch.cuda.is_available():
        build = f"CUDA {torch.version.cuda}" if torch.version.cuda else "no CUDA"
        print(
            f"gpu_check: no CUDA GPU visible (torch {torch.__version__}, built with {build}): nothing was checked; "
            "--dry-run runs the same code on the CPU"
        )
        return 2
    try:
        single, model = run_check(args)
        free_device_memory()
        print(model)
        print(report(single, "one process"), flush=True)
        ok = args.dry_run or single.loss_fell()
        ranks = args.ranks if args.dry_run else torch.cuda.device_count()
        if ranks <= 1:
            print(f"multi-GPU: skipped, {ranks} {'GPU' if not args.dry_run else 'rank'} visible")
            return 0 if ok else 1
        multi = launch(args, ranks)
    except TrainingDiverged as err:
        print(f"gpu_check: {err}")
        return 1
    if multi is None:
        return 1
    print(report(multi, f"torchrun --nproc_per_node={ranks}"))
    print(
        f"  scaling         {multi.images_per_s / single.images_per_s:.2f}x the one-process images/s on {ranks} "
        f"{'GPUs' if not args.dry_run else 'CPU ranks'}"
    )
    return 0 if ok and (args.dry_run or multi.loss_fell()) else 1


if __name__ == "__main__":
    raise SystemExit(main())
