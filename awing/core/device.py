"""Devices, numeric precision and CPU threads: the choices every caller (training, evaluation, the API)
makes the same way."""

from __future__ import annotations

import os
from contextlib import nullcontext

import torch

__all__ = [
    "resolve_device",
    "cpu_has_native_bf16",
    "resolve_precision",
    "inference_dtype",
    "autocast",
    "set_threads",
    "default_threads",
]


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """``"auto"`` -> CUDA when available, else CPU; anything else as ``torch.device``.

    Raises:
        ValueError: a CUDA device asked for where CUDA is not available, or an unparsable name.
    """
    if str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(device)
    except (RuntimeError, TypeError) as err:
        raise ValueError(f"unknown device {device!r}: use auto, cpu, cuda or cuda:N") from err
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {str(device)!r} asked for but CUDA is not available; use cpu or auto")
    return device


def cpu_has_native_bf16() -> bool:
    """Whether this CPU computes bf16 natively (AVX512-BF16 or AMX); elsewhere bf16 is emulated and slower."""
    for probe in ("_is_avx512_bf16_supported", "_is_amx_tile_supported"):
        try:
            if getattr(torch.cpu, probe)():
                return True
        except (AttributeError, RuntimeError):
            continue
    return False


def resolve_precision(precision: str, device: torch.device) -> torch.dtype | None:
    """The training autocast dtype, or None for fp32. ``auto``: bf16 where the hardware has it."""
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


def inference_dtype(device: torch.device) -> torch.dtype | None:
    """The reduced precision worth using for inference on ``device``, or None (stay in fp32).

    CPU: bf16 where the CPU has native bf16 (AVX512-BF16 or AMX; elsewhere bf16 is emulated and slower
    than fp32); with channels_last it runs a 256 px 1-stack model about 2x faster. CUDA: None, since at
    the batch sizes of one photo the forward pass is bound by kernel launches, not arithmetic (measured on
    an H200: bf16 autocast was 1.05-1.5x slower than fp32 at batch 1 and 16).

    It is a speed choice, not an accuracy-neutral one: bf16 moves single landmarks against fp32 (mean NME
    unchanged, but a few per cent of points by more than half a pixel), so ``FaceAligner`` uses it only
    when asked (``fast=True``); docs/RESULTS.md, "Precision and backend".
    """
    return torch.bfloat16 if device.type == "cpu" and cpu_has_native_bf16() else None


def autocast(device: torch.device, dtype: torch.dtype | None):
    """``torch.autocast`` for ``dtype``, or a no-op context for None (fp32)."""
    return torch.autocast(device.type, dtype=dtype) if dtype is not None else nullcontext()


def default_threads() -> int:
    """Intra-op threads when the user sets none: ``OMP_NUM_THREADS`` if set, else the cores this process
    may use. Callers that share the machine (several runs at once) should pass an explicit count."""
    env = os.environ.get("OMP_NUM_THREADS", "").strip()
    if env.isdigit() and int(env) > 0:
        return int(env)
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)


def set_threads(threads: int | None) -> int:
    """Set torch's intra-op CPU threads (``None`` or 0: :func:`default_threads`); returns the count used."""
    count = int(threads) if threads else default_threads()
    if count < 1:
        raise ValueError(f"threads must be >= 1, got {threads}")
    torch.set_num_threads(count)
    return count
