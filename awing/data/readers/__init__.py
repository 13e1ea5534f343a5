"""Dataset readers: one module per official layout, one registry.

A reader is a function ``read(root, split, **options) -> list[Sample]`` registered under a name with
the schema its samples follow and the splits it knows. Readers never drop a sample silently: a
malformed line raises :class:`~awing.data.sample.AnnotationError` naming the file and line.
"""

from __future__ import annotations

import dataclasses
import importlib
from collections.abc import Callable
from pathlib import Path

from awing.data.sample import Sample


@dataclasses.dataclass(frozen=True)
class ReaderInfo:
    name: str
    schema: str
    splits: tuple[str, ...]
    read: Callable[..., list[Sample]]
    description: str = ""
    creates_root: bool = False  # the reader makes its data (synthetic faces): a missing root is fine


READERS: dict[str, ReaderInfo] = {}

# Modules that register readers when imported; kept explicit so ``awing datasets`` lists all of them.
_READER_MODULES = ("wflw", "w300", "cofw", "aflw", "lsp", "coco", "fdd", "mtfl", "custom", "synthetic")


def register_reader(name: str, schema: str, splits: tuple[str, ...], description: str = "", creates_root: bool = False):
    """Decorator: register ``read(root, split, **options)`` under ``name``."""

    def wrap(fn):
        text = description or (fn.__doc__ or "").strip()
        READERS[name] = ReaderInfo(name, schema, tuple(splits), fn, text, creates_root)
        return fn

    return wrap


def _import_all() -> None:
    for module in _READER_MODULES:
        try:
            importlib.import_module(f"awing.data.readers.{module}")
        except ModuleNotFoundError as err:  # a reader module not written yet
            if err.name != f"awing.data.readers.{module}":
                raise


def get_reader(name: str) -> ReaderInfo:
    _import_all()
    if name not in READERS:
        raise ValueError(f"unknown dataset format {name!r}; known: {', '.join(sorted(READERS))}")
    return READERS[name]


def read_dataset(name: str, root: str | Path, split: str, **options) -> list[Sample]:
    """Read one split of a dataset in the named layout.

    Raises:
        FileNotFoundError: ``root`` does not exist.
        ValueError: unknown format or split.
    """
    info = get_reader(name)
    root = Path(root).expanduser()
    if not root.exists() and not info.creates_root:
        raise FileNotFoundError(f"data root for {name!r} does not exist: {root}")
    if info.splits and split not in info.splits:
        raise ValueError(f"unknown split {split!r} for {name!r}; known: {', '.join(info.splits)}")
    return info.read(root, split, **options)


# Built-in schemas that a point count alone identifies (14 is ambiguous: FDD faces or LSP bodies).
SCHEMA_BY_POINT_COUNT = {98: "wflw98", 68: "w300_68", 29: "cofw29", 19: "aflw19", 5: "mtfl5"}


def schema_for_point_count(count: int, where: str = "") -> str:
    """The built-in schema with ``count`` points, or a ValueError asking for an explicit one."""
    if count not in SCHEMA_BY_POINT_COUNT:
        raise ValueError(f"{where}: {count} points match no single built-in schema; set the schema explicitly")
    return SCHEMA_BY_POINT_COUNT[count]
