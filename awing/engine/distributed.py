"""Process-group helpers: torchrun sets RANK / WORLD_SIZE / LOCAL_RANK; a plain run is rank 0 of 1."""

from __future__ import annotations

import dataclasses
import gc
import os

import torch
import torch.distributed as dist


@dataclasses.dataclass(frozen=True)
class DistInfo:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @classmethod
    def from_env(cls) -> DistInfo:
        """This process's place as torchrun's RANK / WORLD_SIZE / LOCAL_RANK say (rank 0 of 1 without)."""
        env = os.environ
        return cls(int(env.get("RANK", "0")), int(env.get("WORLD_SIZE", "1")), int(env.get("LOCAL_RANK", "0")))


def setup(device: str = "auto") -> tuple[DistInfo, torch.device]:
    """Join the process group if launched by torchrun (NCCL on GPUs, gloo on CPU); pick the device."""
    info = DistInfo.from_env()
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda" and info.enabled:
        device = f"cuda:{info.local_rank}"
    dev = torch.device(device)
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(f"device {device!r} asked for, but CUDA is not available; use cpu or auto")
        if dev.index is None:
            dev = torch.device("cuda", torch.cuda.current_device())
        torch.cuda.set_device(dev)
    if info.enabled and not dist.is_initialized():
        dist.init_process_group(backend="nccl" if dev.type == "cuda" else "gloo")
    return info, dev


def cleanup() -> None:
    """Leave the process group, once the caller's DDP model, optimiser and loaders are unreachable (collected
    here first).

    A DDP model keeps its process group alive: destroyed at interpreter exit instead, gloo's worker threads
    can abort the process ("terminate called without an active exception", a torchrun rank lost at exit after
    a run that succeeded). So callers drop their references first (return from the frame that holds them)."""
    gc.collect()
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def all_gather_objects(obj, info: DistInfo) -> list:
    """Every rank's ``obj`` (a list of one on a single process)."""
    if not info.enabled:
        return [obj]
    out = [None] * info.world_size
    dist.all_gather_object(out, obj)
    return out


def all_reduce_mean(values: torch.Tensor, info: DistInfo) -> torch.Tensor:
    if info.enabled:
        values = values.clone()
        dist.all_reduce(values, op=dist.ReduceOp.SUM)
        values /= info.world_size
    return values


def barrier(info: DistInfo) -> None:
    if info.enabled:
        dist.barrier()


def broadcast_buffers(module: torch.nn.Module, info: DistInfo) -> None:
    """Give every rank rank 0's buffers (BatchNorm running statistics).

    DDP keeps the parameters equal on all ranks, but each rank's running statistics follow its own last
    batches; evaluating, and what rank 0 saves, need one model.
    """
    if info.enabled:
        for buffer in module.buffers():
            dist.broadcast(buffer.data, src=0)


def any_rank(flag: bool, info: DistInfo, device: torch.device) -> bool:
    """True on every rank if ``flag`` is True on any (e.g. a stop signal that reached only some ranks)."""
    return bool(max_over_ranks(int(flag), info, device))


def max_over_ranks(value: int, info: DistInfo, device: torch.device) -> int:
    """The largest of every rank's ``value`` (e.g. the exit code of a stop signal that reached some ranks)."""
    if not info.enabled:
        return int(value)
    tensor = torch.tensor([int(value)], device=device)
    dist.all_reduce(tensor, op=dist.ReduceOp.MAX)
    return int(tensor.item())
