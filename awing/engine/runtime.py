"""Run-time services of a training run: the run folder and its lock, seeding and RNG state, stop signals,
the metrics log, provenance."""

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

from awing.core.checkpoint import load_checkpoint

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
    keys = np.asarray(nps["keys"], dtype=np.uint32)
    np.random.set_state(("MT19937", keys, int(nps["pos"]), int(nps["has_gauss"]), float(nps["cached_gaussian"])))
    random.setstate(tuple(tuple(x) if isinstance(x, list) else x for x in state["python"]))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


class RunFolderError(ValueError):
    """A run folder that holds another run, or that another run is using."""


class RunFolder:
    """``out_dir / name``, held by one run at a time.

    :meth:`claim` refuses a folder that already holds a run unless the run resumes it or ``overwrite`` is
    set, and takes an exclusive lock (``.lock``, ``fcntl.flock``: released by the OS when the process
    dies, so a killed run never leaves a stale lock) that a second run on the same folder is refused by.
    A folder whose only run file is the ``last.pt`` written before epoch 1 (a run that ended before it
    finished an epoch) holds no work, and is not refused. Only the main rank claims; other ranks get the
    path.
    """

    RUN_FILES = ("metrics.csv", "last.pt", "best.pt", "results.json")

    def __init__(self, out_dir: Path, name: str, enabled: bool = True) -> None:
        self.path = Path(out_dir) / name
        self.enabled = enabled
        self._lock = None

    def check(self, resume: bool, overwrite: bool) -> list[str]:
        """The run files already in the folder that hold work; refuses (RunFolderError) a fresh run on top
        of them. Writes nothing, so it can run before any other work."""
        existing = self._work_files() if self.enabled else []
        if existing and not resume and not overwrite:
            raise RunFolderError(
                f"{self.path} already holds a run ({', '.join(existing)}). Continue it with --resume, train into a "
                "new folder with train.name=NEW_NAME, or replace it with train.overwrite=true"
            )
        return existing

    def _work_files(self) -> list[str]:
        """The run files in the folder, none if all it holds is the ``last.pt`` written before epoch 1."""
        existing = [f for f in self.RUN_FILES if (self.path / f).exists()]
        if existing == ["last.pt"] and _checkpoint_epoch(self.path / "last.pt") == 0:
            return []
        return existing

    def claim(self, resume: bool, overwrite: bool) -> None:
        """Create and lock the folder (checking it again under the lock); with ``overwrite``, clear it."""
        if not self.enabled:
            return
        self.path.mkdir(parents=True, exist_ok=True)
        import fcntl

        handle = open(self.path / ".lock", "a+")  # noqa: SIM115 (held for the run's lifetime)
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            handle.close()
            raise RunFolderError(f"{self.path} is in use by another awing run (its .lock is held)") from None
        handle.seek(0)
        handle.truncate()
        handle.write(f"{os.getpid()}\n")
        handle.flush()
        self._lock = handle
        try:
            existing = self.check(resume, overwrite)
        except RunFolderError:
            self.release()
            raise
        if existing and overwrite and not resume:
            for f in [*existing, "config.yaml"]:
                (self.path / f).unlink(missing_ok=True)
            log.warning("train.overwrite: replaced the run in %s", self.path)
        elif not existing and not resume and (self.path / "last.pt").exists():
            log.info("%s: its last.pt is from before epoch 1 of a run that ended early; starting over", self.path)

    def release(self) -> None:
        if self._lock is not None:
            self._lock.close()
            self._lock = None


def _checkpoint_epoch(path: Path) -> int | None:
    """The ``epoch`` field of a checkpoint, None if the file is not a readable checkpoint."""
    try:
        epoch = load_checkpoint(path).get("epoch")
    except (OSError, ValueError):
        return None
    return epoch if isinstance(epoch, int) and not isinstance(epoch, bool) else None


class StopRequest:
    """SIGINT / SIGTERM set a flag; the loop stops at the next step boundary and exits with
    :attr:`exit_code` (130 for SIGINT, 143 for SIGTERM, the shell's convention)."""

    def __init__(self) -> None:
        self.requested = False
        self.exit_code = 130
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
        self.exit_code = 128 + int(signum)
        log.warning("signal %s: stopping after this step (last.pt keeps the last finished epoch)", signum)

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
        """Header and rows. A last line cut short (no newline: the writer was killed) is dropped, so the
        next row never merges into it; a row whose epoch is not a number is an error naming the file."""
        if not self.path.exists():
            return [], []
        text = self.path.read_text()
        if text and not text.endswith("\n"):
            cut = text.rfind("\n") + 1
            log.warning("%s: dropping its last line, which was cut short: %r", self.path, text[cut:][:80])
            text = text[:cut]
        reader = csv.DictReader(text.splitlines())
        rows = list(reader)
        for line, row in enumerate(rows, start=2):
            try:
                int(row.get("epoch") or "")
            except ValueError:
                raise ValueError(f"{self.path}, line {line}: not a metrics row (epoch {row.get('epoch')!r})") from None
        return list(reader.fieldnames or []), rows

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
        if not fields or not set(row) <= set(fields) or not self.path.read_text().endswith("\n"):
            self._rewrite(fields + [k for k in row if k not in fields], [*rows, row])
        else:
            with self.path.open("a", newline="") as f:
                csv.DictWriter(f, fieldnames=fields).writerow(row)
        if self.writer:
            for key, value in row.items():
                if key != "epoch" and isinstance(value, (int, float)) and math.isfinite(value):
                    self.writer.add_scalar(key, value, row["epoch"])
            self.writer.flush()
