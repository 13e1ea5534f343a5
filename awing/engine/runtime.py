"""Run-time services of a training run: seeding and RNG state, stop signals, the metrics log, provenance."""

from __future__ import annotations

import csv
import logging
import math
import os
import platform
import random
import signal
import subprocess
from pathlib import Path

import numpy as np
import torch

log = logging.getLogger("awing.train")


def environment(device: torch.device | str | None = None) -> dict:
    """What produced a result: awing version and git commit (None outside a checkout), torch, machine.

    ``git_dirty`` is True when tracked files differ from the commit (the result may not reproduce from it).
    """
    from awing import __version__

    def git(*args: str) -> str | None:
        try:
            done = subprocess.run(["git", *args], cwd=Path(__file__).parent, capture_output=True, text=True, timeout=10)
        except (OSError, subprocess.SubprocessError):
            return None
        return done.stdout.strip() if done.returncode == 0 else None

    package = Path(__file__).resolve().parents[1]
    top = git("rev-parse", "--show-toplevel")  # only awing's own checkout, not a repo that holds a venv
    own = top is not None and (Path(top) / "awing").resolve() == package
    commit = git("rev-parse", "HEAD") if own else None
    device = torch.device(device) if device is not None else None
    return {
        "awing": __version__,
        "git_commit": commit,
        "git_dirty": bool(git("status", "--porcelain", "--untracked-files=no")) if commit else None,
        "torch": torch.__version__,
        "python": platform.python_version(),
        "machine": platform.machine(),
        "cpu_count": os.cpu_count(),
        "device": str(device) if device is not None else None,
        "gpu": torch.cuda.get_device_name(device) if device is not None and device.type == "cuda" else None,
    }


def cpu_has_native_bf16() -> bool:
    """Whether this CPU computes bf16 natively (AVX512-BF16 or AMX); elsewhere bf16 is emulated and slower."""
    for probe in ("_is_avx512_bf16_supported", "_is_amx_tile_supported"):
        try:
            if getattr(torch.cpu, probe)():
                return True
        except (AttributeError, RuntimeError):
            continue
    return False


def seed_everything(seed: int, deterministic: bool) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    if deterministic:
        torch.use_deterministic_algorithms(True, warn_only=True)
        torch.backends.cudnn.benchmark = False


def _numpy_state() -> dict:
    """numpy's global MT19937 state in full (the position matters, not only the key)."""
    _, keys, pos, has_gauss, cached = np.random.get_state()
    return {"keys": keys.tolist(), "pos": int(pos), "has_gauss": int(has_gauss), "cached_gaussian": float(cached)}


def rng_state() -> dict:
    state = {
        "torch": torch.get_rng_state(),
        "numpy": _numpy_state(),
        "python": random.getstate(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict) -> None:
    torch.set_rng_state(state["torch"])
    nps = state["numpy"]
    if not isinstance(nps, dict):  # older checkpoints kept the key only
        nps = {"keys": nps, "pos": 624, "has_gauss": 0, "cached_gaussian": 0.0}
    np.random.set_state(("MT19937", np.asarray(nps["keys"], dtype=np.uint32), int(nps["pos"]),
                         int(nps["has_gauss"]), float(nps["cached_gaussian"])))  # fmt: skip
    random.setstate(tuple(tuple(x) if isinstance(x, list) else x for x in state["python"]))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


class StopRequest:
    """SIGINT / SIGTERM set a flag; the loop writes a resumable checkpoint and exits cleanly."""

    def __init__(self) -> None:
        self.requested = False
        self._previous = {}

    def __enter__(self):
        for sig in (signal.SIGINT, signal.SIGTERM):
            try:
                self._previous[sig] = signal.signal(sig, self._handle)
            except ValueError:  # not the main thread
                pass
        return self

    def _handle(self, signum, frame) -> None:
        if self.requested:  # a second Ctrl-C stops at once
            raise KeyboardInterrupt
        self.requested = True
        log.warning("signal %s: finishing this step, then saving a resumable checkpoint", signum)

    def __exit__(self, *exc) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)


class MetricsLog:
    """Per-epoch metrics to ``metrics.csv`` (appended across resumes) and TensorBoard if installed."""

    def __init__(self, run_dir: Path, tensorboard: bool) -> None:
        self.path = run_dir / "metrics.csv"
        self.writer = None
        if tensorboard:
            try:
                from torch.utils.tensorboard import SummaryWriter

                self.writer = SummaryWriter(str(run_dir / "tb"))
            except ImportError:
                log.info("tensorboard is not installed (pip install awing[tensorboard]); logging to CSV only")

    def _read(self) -> tuple[list[str], list[dict]]:
        if not self.path.exists():
            return [], []
        with self.path.open(newline="") as f:
            reader = csv.DictReader(f)
            return list(reader.fieldnames or []), list(reader)

    def _rewrite(self, fields: list[str], rows: list[dict]) -> None:
        tmp = self.path.with_name(self.path.name + ".tmp")
        with tmp.open("w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=fields)
            w.writeheader()
            w.writerows(rows)
        tmp.replace(self.path)

    def truncate(self, epoch: int) -> None:
        """Drop the rows after ``epoch`` (a run resumed from an earlier checkpoint redoes them)."""
        fields, rows = self._read()
        kept = [r for r in rows if int(r["epoch"]) <= epoch]
        if len(kept) < len(rows):
            self._rewrite(fields, kept)

    def write(self, row: dict) -> None:
        # Rows differ in their columns (val_* only on validation epochs): a row with new columns
        # rewrites the file under the union header, so that every row stays under its own column names.
        fields, rows = self._read()
        if not fields or not set(row) <= set(fields):
            self._rewrite(fields + [k for k in row if k not in fields], [*rows, row])
        else:
            with self.path.open("a", newline="") as f:
                csv.DictWriter(f, fieldnames=fields).writerow(row)
        if self.writer:
            for key, value in row.items():
                if key != "epoch" and isinstance(value, (int, float)) and math.isfinite(value):
                    self.writer.add_scalar(key, value, row["epoch"])
            self.writer.flush()
