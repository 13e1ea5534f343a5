"""``awing datasets``: the dataset layouts awing reads, their schemas and splits."""

from __future__ import annotations

import argparse

from awing.data.readers import READERS, _import_all


def add_arguments(parser: argparse.ArgumentParser) -> None:
    del parser  # no options


def run(args: argparse.Namespace) -> int:
    _import_all()
    print(f"{'format':<10} {'schema':<9} {'splits':<40} description")
    for name in sorted(READERS):
        info = READERS[name]
        first_line = info.description.splitlines()[0] if info.description else ""
        print(f"{name:<10} {info.schema:<9} {','.join(info.splits):<40} {first_line}")
    return 0
