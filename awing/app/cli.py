"""awing: facial landmarks by heatmap regression with the Adaptive Wing loss.

Each sub-command lives in its own module exposing ``add_arguments(parser)`` and ``run(args) -> int``;
this file only wires them together, and imports only the module of the command being run, so that
``awing --help`` and ``awing --version`` answer without loading torch or OpenCV.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys

from awing import __version__

COMMANDS = {
    "train": ("awing.engine.train", "train a model from a config (torchrun-ready)"),
    "eval": ("awing.engine.evaluate", "evaluate a checkpoint on test sets: NME, FR, AUC, CED, subsets"),
    "compare": ("awing.engine.compare", "put several runs' tables and CED curves side by side"),
    "predict": ("awing.app.predict", "landmarks on photos, folders and videos"),
    "export": ("awing.app.export", "export a model to ONNX or a small fp16 weights file"),
    "import-official": ("awing.app.official", "convert the authors' released checkpoint into an awing one"),
    "models": ("awing.app.models", "list the shipped models"),
    "datasets": ("awing.data.readers.cli", "list the dataset readers and their splits"),
}


def _command_in(argv: list[str]) -> str | None:
    """The sub-command named in ``argv`` (the first word that is not an option), if any."""
    for word in argv:
        if not word.startswith("-"):
            return word if word in COMMANDS else None
    return None


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The ``awing`` parser; only ``command``'s module is imported for its arguments (all are listed)."""
    parser = argparse.ArgumentParser(prog="awing", description=__doc__.splitlines()[0])
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    parser.add_argument("--version", action="version", version=f"awing {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (module, help_text) in COMMANDS.items():
        p = sub.add_parser(name, help=help_text, description=help_text)
        p.set_defaults(_module=module)
        if name == command:
            importlib.import_module(module).add_arguments(p)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser = build_parser(_command_in(argv))
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    if not args.command:
        parser.print_help()
        return 2
    import os

    from awing.core.extras import MissingExtra  # no torch: --help and --version stay quick

    try:
        return int(importlib.import_module(args._module).run(args) or 0)
    except (OSError, ValueError, MissingExtra) as err:  # bad paths, configs, checkpoints; full disks; extras
        if args.verbose:
            raise
        if isinstance(err, OSError) and err.strerror:
            where = f"{err.filename}: " if err.filename else ""
            message = where + err.strerror  # "[Errno 28] ..." without the number
            if isinstance(err, FileExistsError) and err.filename and os.path.isfile(err.filename):
                message = f"{err.filename} is a file, not a folder"
        else:
            message = str(err)
        print(f"awing: error: {message}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
