"""AFLW2000-3D's jaw points: keep them, mask them on turned faces, or mask them always? (issue 24)

    python -m benchmarks.jaw [--out runs/jaw] [--threads 1]

Trains one short 128-px run per ``aflw2000`` reader ``jaw`` option (configs/cpu/w300_all_fast.yaml with
AFLW2000-3D as its only extra source, 1,600 faces an epoch, 25 epochs, x0.1 after 19 and 23, rotation +-30
degrees; a run whose
results.json exists is not trained again, one that stopped resumes), then scores the three on every
source's validation split with the jaw as stored (``benchmarks/sources.py``) and prints the table.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

if __package__:  # python -m benchmarks.jaw, or imported
    from benchmarks._common import REPO
    from benchmarks.sources import main as sources_main
else:  # python benchmarks/jaw.py
    from _common import REPO
    from sources import main as sources_main

OPTIONS = ("keep", "mask_turned", "mask")
CONFIG = "configs/cpu/w300_all_fast.yaml"
# the short schedule; rotation +-30 degrees, as the recipe had when these runs were measured
SHORT = [
    "data.epoch_size=1600",
    "optim.epochs=25",
    "optim.milestones=[19,23]",
    "train.val_every=5",
    "augment.rotation=30",
]


def train_command(jaw: str, out: Path, threads: int) -> list[str]:
    source = (
        "{format: aflw2000, root: ../shared/data/aflw2000_3d, split: train, val_split: val, "
        f"options: {{jaw: {jaw}}}, crop: box, enlarge: 0.1}}"
    )
    return [
        sys.executable,
        "-m",
        "awing",
        "train",
        CONFIG,
        f"data.sources=[{source}]",
        *SHORT,
        f"train.out_dir={out}",
        f"train.name=jaw_{jaw}",
        f"train.threads={threads}",
        "train.tensorboard=false",
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("runs/jaw"))
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    out = args.out if args.out.is_absolute() else Path.cwd() / args.out
    for jaw in OPTIONS:
        run = out / f"jaw_{jaw}"
        if (run / "results.json").exists():
            continue
        resume = ["--resume"] if (run / "last.pt").exists() else []
        subprocess.run(train_command(jaw, out, args.threads) + resume, cwd=REPO, check=True)
    models = [str(out / f"jaw_{jaw}" / "best.pt") for jaw in OPTIONS]
    return sources_main(["--models", *models, "--out", str(out / "sources")])


if __name__ == "__main__":
    raise SystemExit(main())
