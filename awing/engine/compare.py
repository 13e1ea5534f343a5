"""``awing compare RUN... --out DIR``: several runs' tables and CED curves side by side."""

from __future__ import annotations

import argparse

from awing.engine.reports import compare_runs


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("runs", nargs="+", help="run folders (holding results.json) or results JSON files")
    parser.add_argument("--out", default="runs/compare", help="output folder for comparison.md and the CED plot")


def run(args: argparse.Namespace) -> int:
    paths = compare_runs(args.runs, args.out)
    for kind, path in paths.items():
        print(f"{kind}: {path}")
    return 0
