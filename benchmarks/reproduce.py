"""Check the paper's claims on real data: each table is one command.

    python -m benchmarks.reproduce TABLE [TABLE ...] [--dataset fdd14|mtfl5|w300|...] [--seeds 0 1 2] [--quick]
                                   [--device cpu|cuda] [--jobs N] [--out runs/reproduce]

Each run is ``awing train CONFIG overrides`` in its own process, written to
``OUT/DATASET/ROW_sSEED/``; a run whose results.json exists is not run again (so an interrupted
reproduction resumes where it stopped, and tables share identical runs). Each table is written to
``OUT/DATASET/TABLE.md`` (and .json) with mean +- std over seeds. ``--quick`` shrinks every run to a
smoke test (a few hundred images, one epoch) written under ``OUT-quick``.

A table is one entry of :data:`TABLES` (its rows, the rows trained on every seed, its writer): adding one
is adding an entry there. The tables (paper numbering; this list is read from :data:`TABLES`):
"""

from __future__ import annotations

import argparse
import concurrent.futures as futures
import csv
import json
import os
import platform
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable, Collection
from dataclasses import dataclass
from pathlib import Path

import numpy as np

if __package__:  # python -m benchmarks.reproduce, or imported
    from benchmarks._common import REPO, dataset_root
else:  # python benchmarks/reproduce.py
    from _common import REPO, dataset_root

ROOT = REPO  # runs are trained with the repository as the working directory (the configs' paths are from here)
CONFIGS = {
    "fdd14": "configs/cpu/fdd14.yaml",
    "mtfl5": "configs/cpu/mtfl5.yaml",
    "w300": "configs/cpu/w300_64.yaml",  # 300-W at the paper's 64x64 heatmaps (256 px input)
    "w300-32": "configs/cpu/w300.yaml",  # the same faces at 32x32 (128 px input): the resolution effect
    "w300-sigma2": "configs/cpu/w300_64_sigma2.yaml",  # 64x64 with sigma 2 on 13x13 (issue 26's recipe change)
    "w300-init": "configs/cpu/w300_64_init.yaml",  # 64x64 with the output layers initialised N(0, 1e-3) (issue 26)
}
# the data set of each (benchmarks/_common.py: DATASETS)
DATA_SETS = {"fdd14": "fdd14", "mtfl5": "mtfl5", **{d: "w300" for d in ("w300", "w300-32", "w300-sigma2", "w300-init")}}
NAMES = {
    "fdd14": "FDD-14 val",
    "mtfl5": "MTFL-5 hold-out",
    "w300": "300-W val (64x64)",
    "w300-32": "300-W val (32x32)",
    "w300-sigma2": "300-W val (64x64, sigma 2 on 13x13)",
    "w300-init": "300-W val (64x64, output init N(0, 1e-3))",
}

# Table 7's rows as config overrides of the full method (configs/cpu/*.yaml = AW+WM+B+C+CB).
NO_BC = ["model.boundary=false", "model.coordconv=false", "model.boundary_coords=false"]
FULL_2HG = "AW+WM+B+C+CB, 2 stacks"
ABLATION = {
    "MSE": ["loss.name=mse", "loss.weight_map=none", *NO_BC],
    "MSE+WM": ["loss.name=mse", "loss.weight_map=paper", *NO_BC],
    "AW": ["loss.name=awing", "loss.weight_map=none", *NO_BC],
    "AW+WM_base": ["loss.name=awing", "loss.weight_map=base", *NO_BC],
    "AW+WM": ["loss.name=awing", "loss.weight_map=paper", *NO_BC],
    "AW+WM, 2 stacks": ["loss.name=awing", "loss.weight_map=paper", *NO_BC, "model.stacks=2"],
    "AW+WM+B": ["model.coordconv=false", "model.boundary_coords=false"],
    "AW+WM+B+C": ["model.boundary_coords=false"],
    "AW+WM+B+C+CB": [],
    # Boundary coordinates come from the previous stack's boundary map, so with one stack CB changes
    # nothing (the two 1-stack rows above are the same model); these two rows test CB on two stacks.
    "AW+WM+B+C, 2 stacks": ["model.boundary_coords=false", "model.stacks=2"],
    FULL_2HG: ["model.stacks=2"],
}
# Table 7's core rows: trained over every seed (FDD-14 trains its other ablation rows on seed 0 only) and
# the only rows off FDD. On 300-W the full method has two stacks, so that CB (boundary coordinates from the
# previous stack's boundary map) acts; MTFL-5's five points have no boundary lines worth a second stack.
CORE_ROWS = {
    "fdd14": ("MSE", "AW", "AW+WM", "AW+WM+B+C+CB"),
    "mtfl5": ("MSE", "AW", "AW+WM", "AW+WM+B+C+CB"),
    "w300": ("MSE", "AW", "AW+WM", FULL_2HG),
    "w300-32": ("MSE", "AW", "AW+WM", FULL_2HG),
    "w300-sigma2": ("MSE", "AW", "AW+WM", FULL_2HG),
    "w300-init": ("MSE", "AW", "AW+WM", FULL_2HG),
}


def awing_params(**params: float) -> list[str]:
    return [f"loss.params.{k}={v}" for k, v in params.items()]


TABLE5 = {
    f"omega={w},eps={e}": awing_params(omega=w, epsilon=e) for w, e in [(10, 1), (14, 1), (18, 1), (14, 0.5), (14, 2)]
}
TABLE6 = {f"theta={t}": awing_params(theta=t) for t in (0.3, 0.5, 0.7)}
NOISE = {
    f"{m} P/S={p}/{p}": ABLATION[m] + [f"data.label_noise=[{p},{p}]"] for m in ("AW", "MSE") for p in (0, 10, 20, 30)
}
STACKS = {f"{n} stack{'s' * (n > 1)}": [f"model.stacks={n}"] for n in (1, 2, 3, 4)}


# Not a paper table: do AW's and WM's effects change with longer training? The CPU configs train 12 epochs.
def longer(epochs: int) -> list[str]:
    """The CPU schedule (decay x0.1 after 2/3 and before the last epoch) stretched to ``epochs``."""
    return [] if epochs == 12 else [f"optim.epochs={epochs}", f"optim.milestones=[{epochs * 2 // 3},{epochs - 1}]"]


SCHEDULE = {f"{m}, {e} epochs": ABLATION[m] + longer(e) for e in (12, 24) for m in ("MSE", "AW", "AW+WM")}

# Issue 26: why AW alone loses to MSE at 64x64 on 300-W. One change at a time to the w300_64 recipe
# (RMSProp lr 5e-4, x0.1 after 30 and 37 of 40 epochs, sigma 1.5 on 7x7, PyTorch's output init, bf16).
RECIPE_CHANGES = {
    "RMSProp 1e-4, paper decay": ["optim.lr=1e-4", "optim.milestones=[13,27]"],  # 240 ep, x0.1 at 80/160, scaled
    "Adam 2e-3": ["optim.name=adam", "optim.lr=2e-3"],  # mmpose's AdaptiveWingLoss recipe
    "fp32": ["train.precision=fp32"],
    "output init N(0, 1e-3)": ["model.output_init=small"],  # mmpose's heads
    "sigma 2 on 13x13": ["targets.sigma=2", "targets.radius=6"],  # mmpose's sigma and 3-sigma support
    "sigma 1.75 on 7x7": ["targets.sigma=1.75"],  # the authors' kernel: its effective sigma on their 7x7
    "80 epochs": ["optim.epochs=80", "optim.milestones=[60,74]"],
}
RECIPE = {
    "AW": ABLATION["AW"],  # the baselines: Table 7's seed-0 runs
    "MSE": ABLATION["MSE"],
    **{f"{m}, {change}": ABLATION[m] + extra for change, extra in RECIPE_CHANGES.items() for m in ("AW", "MSE")},
}


# Overrides that restate a default of the CPU configs: rows differing only by these are the same run.
DEFAULTS = {
    "data.label_noise=[0,0]",
    "model.stacks=1",
    "loss.params.omega=14",
    "loss.params.epsilon=1",
    "loss.params.theta=0.5",
}


def row_key(label: str, overrides: list[str]) -> str:
    """The run folder of a row: the Table 7 row it equals if any (so tables share runs), else its label."""
    effective = set(overrides) - DEFAULTS
    for name, ablation in ABLATION.items():
        if effective == set(ablation):
            label = name
            break
    return "".join(c if c.isalnum() or c in "=.-+" else "_" for c in label).strip("_")


# ------------------------------------------------------------------------------------------ running
def run_one(dataset: str, label: str, overrides: list[str], seed: int, args) -> Path:
    """Train one row (unless its results exist); returns the run folder."""
    out = Path(args.out) / dataset
    run_dir = run_dir_of(dataset, label, overrides, seed, args)
    name = run_dir.name
    if (run_dir / "results.json").exists():
        return run_dir
    cmd = [
        sys.executable,
        "-m",
        "awing",
        "train",
        CONFIGS[dataset],
        *overrides,
        f"train.seed={seed}",
        f"train.out_dir={out}",
        f"train.name={name}",
        f"train.device={args.device}",
        "train.tensorboard=false",
        "train.progress=false",  # train.log gets one line per epoch, not a bar per step
        "train.diagnose=16",  # gradient shares and heatmap height at every validation (measured, not trained on)
    ]
    if args.quick:
        cmd += ["data.limit=96", "optim.epochs=1", "optim.milestones=[1]", "train.val_every=1"]
    if args.data_root:
        cmd.append(f"data.root={dataset_root(DATA_SETS[dataset], args.data_root)}")
    if args.device == "cpu":  # runs side by side share the cores: default threads each would thrash them
        cmd.append(f"train.threads={max(1, (os.cpu_count() or 1) // args.jobs)}")
    if args.workers is not None:
        cmd.append(f"data.workers={args.workers}")
    run_dir.mkdir(parents=True, exist_ok=True)
    resume = ["--resume"] if (run_dir / "last.pt").exists() else []
    t0 = time.time()
    with open(run_dir / "train.log", "a") as log:
        log.write("$ " + " ".join(cmd + resume) + "\n")
        log.flush()
        proc = subprocess.run(cmd + resume, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
    wall = run_dir / "wall_seconds.txt"  # a resumed run adds its time to the earlier parts
    before = float(wall.read_text()) if resume and wall.exists() else 0.0
    wall.write_text(f"{before + time.time() - t0:.1f}\n")
    if proc.returncode != 0:
        raise RuntimeError(f"run {run_dir} failed (exit {proc.returncode}); see {run_dir / 'train.log'}")
    print(f"  done {run_dir} in {time.time() - t0:.0f} s", flush=True)
    return run_dir


def run_dir_of(dataset: str, label: str, overrides: list[str], seed: int, args) -> Path:
    return Path(args.out) / dataset / f"{row_key(label, overrides)}_s{seed}"


def run_rows(dataset: str, rows: dict[str, list[str]], seeds_for, args) -> dict[str, list[Path]]:
    """Run every (row, seed) not yet done (only ``--rows`` if given); returns each row's finished runs."""
    if args.rows:
        unknown = sorted(set(args.rows) - set(rows))
        if unknown:
            raise SystemExit(f"unknown row(s) {unknown}; rows: {list(rows)}")
    jobs = [(label, seed) for label in rows for seed in seeds_for(label) if not args.rows or label in args.rows]
    with futures.ThreadPoolExecutor(max_workers=args.jobs) as pool:
        for fut in futures.as_completed([pool.submit(run_one, dataset, l, rows[l], s, args) for l, s in jobs]):
            fut.result()
    finished = {}
    for label in rows:
        dirs = [run_dir_of(dataset, label, rows[label], seed, args) for seed in seeds_for(label)]
        finished[label] = [d for d in dirs if (d / "results.json").exists()]
    return finished


# ------------------------------------------------------------------------------------------ results
def device_of(run_dir: Path) -> str:
    """Where a run trained (``train.device`` of its saved config)."""
    import yaml

    return str(yaml.safe_load((run_dir / "config.yaml").read_text())["train"]["device"])


def metrics_of(run_dir: Path) -> dict:
    res = json.loads((run_dir / "results.json").read_text())
    test = next(iter(res["testsets"].values()))
    wall = run_dir / "wall_seconds.txt"
    return {
        "nme": test["nme"],
        "fr": test["fr"]["0.1"],
        "auc": test["auc"]["0.1"],
        "fr8": test["fr"]["0.08"],
        "auc8": test["auc"]["0.08"],
        "nme_ip": test.get("nme_by_normaliser", {}).get("inter_pupil"),  # None for a layout without pupils
        "minutes": float(wall.read_text()) / 60 if wall.exists() else None,
    }


def fmt(values: list[float], scale: float = 100.0, digits: int = 2) -> str:
    v = np.asarray(values, dtype=float) * scale
    if len(v) == 1:
        return f"{v[0]:.{digits}f}"
    return f"{v.mean():.{digits}f} ± {v.std(ddof=1):.{digits}f}"


def dark_nme(run_dir: Path) -> float:
    """The run's best checkpoint on its val split with the dark decoder instead of the paper's quarter
    shift (``awing eval best.pt --decoder dark``, written once to ``RUN/eval_dark/``)."""
    out = run_dir / "eval_dark"
    if not (out / "results.json").exists():
        cmd = [sys.executable, "-m", "awing", "eval", str(run_dir / "best.pt"), "--decoder", "dark", "--out", str(out)]
        subprocess.run(cmd + ["--device", "cpu"], cwd=ROOT, check=True, capture_output=True)
    return next(iter(json.loads((out / "results.json").read_text())["testsets"].values()))["nme"]


def metric_table(
    title: str, runs: dict[str, list[Path]], extra: dict[str, str] | None = None, extra_title: str = "extra"
) -> tuple[str, dict]:
    lines = [
        f"### {title}",
        "",
        "| method | seeds | NME % | FR@10% % | AUC@10% | FR@8% % | AUC@8% | NME % (inter-pupil) | train min "
        "| trained on |" + (f" {extra_title} |" if extra else ""),
        "|---|---|---|---|---|---|---|---|---|---|" + ("---|" if extra else ""),
    ]
    data = {}
    for label, dirs in runs.items():
        if not dirs:
            lines.append(f"| {label} | 0 | not run yet |" + " |" * (7 + bool(extra)))
            continue
        ms = [metrics_of(d) for d in sorted(dirs)]
        data[label] = ms
        cells = [
            fmt([m["nme"] for m in ms]),
            fmt([m["fr"] for m in ms]),
            fmt([m["auc"] for m in ms], 1, 4),
            fmt([m["fr8"] for m in ms]),
            fmt([m["auc8"] for m in ms], 1, 4),
            fmt([m["nme_ip"] for m in ms]) if all(m["nme_ip"] is not None for m in ms) else "–",
            fmt([m["minutes"] for m in ms], 1, 0) if all(m["minutes"] is not None for m in ms) else "–",
            ", ".join(sorted({device_of(d) for d in dirs})),
        ]
        lines.append(f"| {label} | {len(ms)} | " + " | ".join(cells) + " |" + (f" {extra[label]} |" if extra else ""))
    return "\n".join(lines) + "\n", data


def read_metrics(run_dir: Path) -> list[dict]:
    """A run's metrics.csv: one dict of strings per epoch (validation fields empty where not evaluated)."""
    with open(run_dir / "metrics.csv") as f:
        return list(csv.DictReader(f))


def training_loss_table(run_dirs: dict[str, Path], title: str = "Table 10: training loss measured in MSE") -> str:
    """Per-epoch train MSE over all / foreground pixels (last stack) of each run; the first is the reference."""
    cols = {label: read_metrics(run_dir) for label, run_dir in run_dirs.items()}
    reference = next(iter(cols))
    epochs = [r["epoch"] for r in cols[reference]]
    lines = [
        f"### {title} (last stack, per epoch)",
        "",
        "| epoch | " + " | ".join(epochs) + " |",
        "|---|" + "---|" * len(epochs),
    ]
    for key, name in (("train_mse_all", "all"), ("train_mse_fg", "fg")):
        ref = [float(r[key]) for r in cols[reference]]
        for label, rows in cols.items():
            cells = [
                f"{v:.4f}" + ("" if label == reference else f" ({100 * (v - b) / b:+.0f}%)")
                for v, b in zip((float(r[key]) for r in rows), ref)
            ]
            lines.append(f"| {label}_{name} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def fps_at_batch1(run_dirs: dict[str, Path], repeats: int = 40) -> dict[str, float]:
    """CPU frames/s at batch 1 on the path of ``FaceAligner(fast=True)`` (:func:`awing.core.device.inference_dtype`:
    bf16 autocast + channels_last on CPUs with native bf16, else fp32) for each run's model (Table 12's
    speed ratios; FaceAligner's default is fp32).

    The models are timed in turns (one forward each per round, median over rounds), so a slow spell of a
    noisy machine hits them all alike.
    """
    import torch

    from awing.core.checkpoint import load_checkpoint
    from awing.core.device import inference_dtype
    from awing.method.model import model_from_checkpoint

    dtype = inference_dtype(torch.device("cpu"))
    layout = torch.channels_last if dtype is not None else torch.contiguous_format
    models, inputs = {}, {}
    for label, run_dir in run_dirs.items():
        model = model_from_checkpoint(load_checkpoint(run_dir / "best.pt")).model
        models[label] = model.to(memory_format=layout)
        size = model.spec.input_size
        inputs[label] = torch.rand(1, 3, size, size).contiguous(memory_format=layout)
    times: dict[str, list[float]] = {label: [] for label in models}
    with torch.no_grad(), torch.autocast("cpu", dtype=dtype, enabled=dtype is not None):
        for round_ in range(5 + repeats):
            for label, model in models.items():
                t0 = time.perf_counter()
                model(inputs[label])
                if round_ >= 5:  # the first rounds warm up
                    times[label].append(time.perf_counter() - t0)
    return {label: 1.0 / float(np.median(t)) for label, t in times.items()}


def fps_label(fps: float, reference: float) -> str:
    import torch

    from awing.core.device import inference_dtype

    threads = torch.get_num_threads()
    path = "" if inference_dtype(torch.device("cpu")) is not None else ", fp32"
    return f"{fps:.1f} FPS ({fps / reference:.2f}x; CPU, batch 1, {threads} thread{'s' * (threads > 1)}{path})"


# ------------------------------------------------------------------------------------------ figures
def ced_figure(run_dirs: dict[str, Path], path: Path, title: str) -> Path:
    """CED curves of one run per row (the rows' seed-0 runs) on their first test set."""
    from awing.engine.reports import plot_ced

    curves = []
    for label, run_dir in run_dirs.items():
        test = next(iter(json.loads((run_dir / "results.json").read_text())["testsets"].values()))
        curves.append({"label": label, "nme": test["per_image_nme"]})
    return plot_ced(curves, path, title=title)


def stacks_figure(data: dict[str, list[dict]], fps: dict[str, float], path: Path, title: str) -> Path:
    """Table 12 as a trade-off: NME (mean +- std over seeds) against CPU frames/s at batch 1."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(6.4, 4.0), dpi=100)
    ax = fig.add_subplot()
    for label, ms in data.items():
        nme = 100 * np.array([m["nme"] for m in ms])
        ax.errorbar(fps[label], nme.mean(), yerr=nme.std(ddof=1) if len(nme) > 1 else 0, fmt="o", capsize=4)
        ax.annotate(f"{label} (n={len(nme)})", (fps[label], nme.mean()), textcoords="offset points", xytext=(6, 6))
    ax.margins(x=0.2)  # room for the labels
    ax.set_xlabel("CPU frames/s, batch 1 (bf16 + channels_last)")
    ax.set_ylabel("NME (%)")
    ax.set_title(title)
    ax.grid(True, alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, format="png")
    return path


def validation_curves_figure(runs: dict[str, list[Path]], path: Path, title: str) -> Path:
    """Validation NME per evaluated epoch for each row: the mean over seeds, a band of +- one std."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(6.4, 4.0), dpi=100)
    ax = fig.add_subplot()
    colours, styles, lowest = {}, {}, np.inf
    for label, dirs in runs.items():
        method, _, variant = label.partition(",")  # "AW, 24 epochs": colour by method, line style by variant
        colour = colours.setdefault(method, f"C{len(colours)}")
        style = styles.setdefault(variant, ["--", "-", ":", "-."][len(styles) % 4])
        curves = {}
        for row in (row for run_dir in dirs for row in read_metrics(run_dir)):
            if row["val_nme"]:
                curves.setdefault(int(row["epoch"]), []).append(100 * float(row["val_nme"]))
        epochs = sorted(e for e, v in curves.items() if len(v) == len(dirs))
        mean = np.array([np.mean(curves[e]) for e in epochs])
        std = np.array([np.std(curves[e], ddof=1) if len(dirs) > 1 else 0.0 for e in epochs])
        ax.plot(epochs, mean, marker=".", color=colour, linestyle=style, label=f"{label} (n={len(dirs)})")
        ax.fill_between(epochs, mean - std, mean + std, color=colour, alpha=0.15)
        lowest = min(lowest, float(mean.min(initial=np.inf)))
    if np.isfinite(lowest):
        ax.set_ylim(0.95 * lowest, 1.4 * lowest)  # the end of training, where the rows differ
    ax.set_xlabel("epoch")
    ax.set_ylabel("validation NME (%)")
    ax.set_title(title)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize="small")
    fig.tight_layout()
    fig.savefig(path, format="png")
    return path


def provenance(run_dirs: list[Path]) -> str:
    """One line: the awing commits the runs were trained at (from their results.json environment)."""
    commits: dict[str, int] = {}
    for run_dir in run_dirs:
        env = json.loads((run_dir / "results.json").read_text()).get("environment") or {}
        commit = env.get("git_commit")
        key = "unrecorded" if not commit else commit[:7] + (" (uncommitted changes)" if env.get("git_dirty") else "")
        commits[key] = commits.get(key, 0) + 1
    if not commits:
        return ""
    return "Trained at: " + ", ".join(f"{k} ({n} run{'s' * (n > 1)})" for k, n in sorted(commits.items())) + ".\n"


def header(args, tables: list[str]) -> str:
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True).stdout
    return (
        f"<!-- python -m benchmarks.reproduce {' '.join(tables)} --dataset {args.dataset} "
        f"--seeds {' '.join(map(str, args.seeds))} --device {args.device}{' --quick' if args.quick else ''} -->\n"
        f"commit {commit.strip()}, {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
        f"device {args.device}, config {CONFIGS[args.dataset]}\n\n"
    )


# ------------------------------------------------------------------------------------------ tables
@dataclass(frozen=True)
class Finished:
    """One table's runs once trained: what its writer reads."""

    table: str  # its key in TABLES
    dataset: str  # its key in CONFIGS
    runs: dict[str, list[Path]]  # row label -> the row's finished run folders (one per seed)
    out: Path  # OUT/DATASET
    device: str  # --device

    @property
    def seed0(self) -> dict[str, Path]:
        """Each row's first finished run (the seed-0 run when seed 0 is among the seeds)."""
        return {label: sorted(dirs)[0] for label, dirs in self.runs.items() if dirs}

    @property
    def name(self) -> str:
        """The data set's name in figure titles."""
        return NAMES[self.dataset]

    def metrics(self, title: str, extra: dict[str, str] | None = None, extra_title: str = "extra") -> tuple[str, dict]:
        """:func:`metric_table` of the runs, its data also written to ``OUT/DATASET/TABLE.json``."""
        text, data = metric_table(title, self.runs, extra, extra_title)
        (self.out / f"{self.table}.json").write_text(json.dumps(data, indent=1))
        return text, data


def metrics_writer(title: str) -> Callable[[Finished], str]:
    """The plain writer: one metric table (NME, FR, AUC, ... per row, mean +- std over seeds) and its .json."""

    def write(done: Finished) -> str:
        return done.metrics(title)[0]

    return write


def write_table7(done: Finished) -> str:
    """The ablation, with the decoder's share (the same checkpoints read with dark_refine), and the core
    rows' CED curves (``table7_ced.png``)."""
    extra = {label: fmt([dark_nme(d) for d in sorted(dirs)]) for label, dirs in done.runs.items() if dirs}
    text, _ = done.metrics("Table 7: ablation", extra, "NME % (dark decoder)")
    shown = {label: done.seed0[label] for label in CORE_ROWS[done.dataset] if label in done.seed0}
    ced_figure(shown, done.out / "table7_ced.png", f"{done.name}, seed 0")
    return text


def write_table10(done: Finished) -> str:
    """Per-epoch training MSE of the seed-0 MSE and AW runs (no .json)."""
    return training_loss_table({label: done.seed0[label] for label in ("MSE", "AW")})


def write_table12(done: Finished) -> str:
    """The metric table with each row's CPU speed, and accuracy against speed (``table12_stacks.png``)."""
    fps = fps_at_batch1(done.seed0)
    one_stack = next(iter(fps.values()))
    extra = {label: fps_label(f, one_stack) for label, f in fps.items()}
    text, data = done.metrics("Table 12: stacks", extra, "CPU speed")
    if data:
        stacks_figure(data, fps, done.out / "table12_stacks.png", f"{done.name}: stacks, accuracy vs speed")
    return text


def write_sharpness(done: Finished) -> str:
    """:func:`benchmarks.sharpness.sharpness_report` on the MSE and AW runs (``sharpness.json`` / ``.png``)."""
    from benchmarks.sharpness import sharpness_report

    return sharpness_report(done.runs, done.out, device=done.device)


def write_schedule(done: Finished) -> str:
    """The metric table, the validation curves (``schedule_val.png``) and Table 10 at 24 epochs."""
    text, _ = done.metrics("MSE, AW and AW+WM at 12 and 24 epochs (not in the paper)")
    validation_curves_figure(done.runs, done.out / "schedule_val.png", f"{done.name}: 12 and 24 epochs")
    longest = ("MSE, 24 epochs", "AW, 24 epochs")
    if set(longest) <= done.seed0.keys():
        runs = {label.split(",")[0]: done.seed0[label] for label in longest}
        text += "\n" + training_loss_table(runs, "Table 10 at 24 epochs: training loss measured in MSE")
    return text


def write_recipe(done: Finished) -> str:
    """The metric table, the validation curves (``recipe_val.png``) and, for the runs that logged it
    (``train.diagnose``), the diagnosis over training (``recipe_diagnosis.png``: gradient shares, heatmap
    value at the true point, peak, decoding error)."""
    text, _ = done.metrics("AW and MSE, one recipe change at a time (not in the paper)")
    validation_curves_figure(done.runs, done.out / "recipe_val.png", f"{done.name}: recipe changes")
    diagnosed = diagnosis_rows(done.seed0)
    if diagnosed:
        from benchmarks.gradients import figure  # not at the top: gradients imports this module

        figure(diagnosed, done.out / "recipe_diagnosis.png", f"{done.name}: diagnosis over training (seed 0)")
        text += "\n" + diagnosis_table(diagnosed)
    return text


def diagnosis_rows(run_dirs: dict[str, Path]) -> list[dict]:
    """``[{"method": label, "rows": [{"epoch", share_*, value_at_gt, ...}]}]`` from the ``diag_*`` columns of
    each run's metrics.csv (runs without them are left out), in the form benchmarks/gradients.py plots."""
    out = []
    for label, run_dir in run_dirs.items():
        rows = [
            {"epoch": int(r["epoch"]), **{k[5:]: float(v) for k, v in r.items() if k.startswith("diag_") and v}}
            for r in read_metrics(run_dir)
            if r.get("diag_share_foreground")
        ]
        if rows:
            out.append({"method": label, "rows": rows})
    return out


def diagnosis_table(diagnosed: list[dict]) -> str:
    """The diagnosis as Markdown: one line per run and validated epoch."""
    lines = [
        "| run | epoch | foreground share % | difficult-bg share % | background share % | value@GT | peak "
        "| error (px) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for result in diagnosed:
        for r in result["rows"]:
            shares = " | ".join(f"{100 * r[f'share_{c}']:.1f}" for c in ("foreground", "difficult", "background"))
            lines.append(
                f"| {result['method']} | {r['epoch']} | {shares} | {r['value_at_gt']:.3f} | {r['peak']:.3f} "
                f"| {r['error_px']:.2f} |"
            )
    return "\n".join(lines) + "\n"


def fixed(value):
    """The same rows (or seeded rows) on every data set."""
    return lambda dataset: value


# Off FDD-14, Table 7 also trains these rows (first seed only) where listed: on 300-W at 64x64, the two rows
# that split the full method's gain between the second stack and CB (issue 26).
SPLIT_ROWS = {"w300": ("AW+WM, 2 stacks", "AW+WM+B+C, 2 stacks")}


def ablation_rows(dataset: str) -> dict[str, list[str]]:
    """Table 7's rows: every ablation row on FDD-14 (but the two-stack AW+WM), the core rows
    (``CORE_ROWS``) and ``SPLIT_ROWS`` elsewhere."""
    if dataset == "fdd14":
        return {k: v for k, v in ABLATION.items() if k != "AW+WM, 2 stacks"}
    return {k: ABLATION[k] for k in (*CORE_ROWS[dataset], *SPLIT_ROWS.get(dataset, ()))}


def mse_and_aw(dataset: str) -> dict[str, list[str]]:
    return {k: ablation_rows(dataset)[k] for k in ("MSE", "AW")}


@dataclass(frozen=True)
class Table:
    """One table of the reproduction: everything ``reproduce`` and the command line know about it.

    ``rows``: data set -> {row label: config overrides of the full method}; ``write``: the finished runs ->
    the table's Markdown (writing its .json and figures, if any); ``every_seed``: data set -> the rows
    trained on every ``--seeds`` (the other rows train on the first seed only).
    """

    summary: str  # what it shows: the module docstring's list
    rows: Callable[[str], dict[str, list[str]]]
    write: Callable[[Finished], str]
    every_seed: Callable[[str], Collection[str]] = fixed(())


TABLES: dict[str, Table] = {
    "table5": Table(
        "AWing omega / epsilon (omega in {10, 14, 18} at epsilon = 1; epsilon in {0.5, 2} at omega = 14)",
        fixed(TABLE5),
        metrics_writer("Table 5: AWing omega / epsilon"),
    ),
    "table6": Table("AWing theta in {0.3, 0.5, 0.7}", fixed(TABLE6), metrics_writer("Table 6: AWing theta")),
    "table7": Table(
        "ablation: MSE, MSE+WM, AW, AW+WM_base, AW+WM, AW+WM+B, AW+WM+B+C, AW+WM+B+C+CB (+ C vs C+CB on two "
        "stacks: boundary coordinates need a previous stack); on MTFL-5 and 300-W only the core rows MSE, AW, "
        "AW+WM and the full method (on 300-W with two stacks), every seed; a column of NME with the dark "
        "decoder, and CED curves",
        ablation_rows,
        write_table7,
        every_seed=CORE_ROWS.__getitem__,
    ),
    "table10": Table(
        "training loss measured in MSE (all pixels / foreground) of MSE- vs AW-trained runs", mse_and_aw, write_table10
    ),
    "table11": Table(
        "annotation noise P/S in {0/0, 10/10, 20/20, 30/30}, AW vs MSE (no WM, B, C)",
        fixed(NOISE),
        metrics_writer("Table 11: annotation noise"),
    ),
    "table12": Table(
        "1-4 stacks over every seed: NME and CPU frames/s at batch 1 (bf16 + channels_last), and a figure",
        fixed(STACKS),
        write_table12,
        every_seed=fixed(tuple(STACKS)),
    ),
    "sharpness": Table(
        "Fig. 2: peak value and spread of predicted heatmaps, MSE vs AW, and a figure", mse_and_aw, write_sharpness
    ),
    "recipe": Table(
        "not in the paper (issue 26): AW and MSE with one change each to the 64x64 recipe: RMSProp 1e-4 with the "
        "paper's decay, Adam 2e-3, fp32, a small output init, sigma 2 or 1.75, 80 epochs; and validation curves "
        "(the output init, which matters, over every seed)",
        fixed(RECIPE),
        write_recipe,
        every_seed=fixed(tuple(f"{m}, output init N(0, 1e-3)" for m in ("AW", "MSE"))),
    ),
    "schedule": Table(
        "not in the paper: MSE, AW and AW+WM at 12 and 24 epochs (do the effects change with training?), "
        "validation curves, and Table 10 at 24 epochs",
        fixed(SCHEDULE),
        write_schedule,
        every_seed=fixed(tuple(SCHEDULE)),
    ),
}


def table_list() -> str:
    """The tables and what each shows, one indented paragraph each (for the module docstring)."""
    return "".join(
        textwrap.fill(table.summary, 110, initial_indent=f"    {name:<9} ", subsequent_indent=" " * 14) + "\n"
        for name, table in TABLES.items()
    )


if __doc__:  # None under python -OO
    __doc__ += table_list()


def table_rows(table: str, dataset: str) -> dict[str, list[str]]:
    """``{row label: config overrides}`` of a table on a data set."""
    return TABLES[table].rows(dataset)


def reproduce(table: str, args) -> str:
    """Train the table's runs not yet done, then write ``OUT/DATASET/TABLE.md`` (and what its writer writes)."""
    dataset = args.dataset
    spec = TABLES[table]
    rows = spec.rows(dataset)
    every_seed = set(spec.every_seed(dataset))

    def seeds_for(label):
        return args.seeds if label in every_seed else args.seeds[:1]

    t0 = time.time()
    runs = run_rows(dataset, rows, seeds_for, args)
    wall = time.time() - t0
    text = spec.write(Finished(table, dataset, runs, Path(args.out) / dataset, args.device))
    secs = [
        float((d / "wall_seconds.txt").read_text())
        for ds in runs.values()
        for d in ds
        if (d / "wall_seconds.txt").exists()
    ]
    text += f"\n{len(secs)} runs, {sum(secs) / 60:.1f} min of training in total ({wall / 60:.1f} min this call).\n"
    text += provenance([d for ds in runs.values() for d in ds])
    path = Path(args.out) / dataset / f"{table}.md"
    path.write_text(header(args, [table]) + text)
    print(text)
    return text


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("tables", nargs="+", choices=list(TABLES))
    parser.add_argument("--dataset", default="fdd14", choices=sorted(CONFIGS))
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--quick", action="store_true", help="smoke-test sizes (minutes), results under OUT-quick")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--jobs", type=int, default=1, help="runs in parallel (useful on a GPU machine)")
    parser.add_argument("--workers", type=int, help="DataLoader workers per run (default: the config's)")
    parser.add_argument("--data-root", help="folder holding fdd14/ and mtfl5/ (default: the configs' ../shared/data)")
    parser.add_argument("--out", default="runs/reproduce")
    parser.add_argument("--rows", nargs="+", help="run only these rows (labels as in the table); the table lists all")
    args = parser.parse_args(argv)
    if args.quick:
        args.out = args.out.rstrip("/") + "-quick"
    for table in args.tables:
        reproduce(table, args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
