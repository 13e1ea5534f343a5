"""Dataset readers: one module per official layout, one registry.

A reader is a function ``read(root, split, **options) -> list[Sample]`` registered under a name with
the schema its samples follow and the splits it knows. Readers never drop a sample silently: a
malformed line raises :class:`~awing.data.sample.AnnotationError` naming the file and line.
"""

from __future__ import annotations

import dataclasses
import importlib
import pkgutil
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
    accepts: Callable[[str], bool] | None = None  # split names beyond ``splits``; ``read`` then checks them
    landmark_boxes: bool = False  # every sample's box is its tight landmark box (so crop=box is a GT-box crop)

    def knows(self, split: str) -> bool:
        """Whether ``read_dataset`` passes ``split`` on (a reader with ``accepts`` names its own errors)."""
        return not self.splits or split in self.splits or self.accepts is not None


READERS: dict[str, ReaderInfo] = {}

# Modules of this package that are not readers.
_NOT_READERS = {"cli"}


def register_reader(
    name: str, schema: str, splits: tuple[str, ...], description: str = "", creates_root: bool = False,
    accepts: Callable[[str], bool] | None = None, landmark_boxes: bool = False,
):
    """Decorator: register ``read(root, split, **options)`` under ``name``."""

    def wrap(fn):
        text = description or (fn.__doc__ or "").strip()
        READERS[name] = ReaderInfo(name, schema, tuple(splits), fn, text, creates_root, accepts, landmark_boxes)
        return fn

    return wrap


def _import_all() -> None:
    """Import every reader module of this package (each registers itself): a new file is found as it is."""
    for module in pkgutil.iter_modules(__path__):
        if not module.name.startswith("_") and module.name not in _NOT_READERS:
            importlib.import_module(f"{__name__}.{module.name}")


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
    if not info.knows(split):
        raise ValueError(f"unknown split {split!r} for {name!r}; known: {', '.join(info.splits)}")
    return info.read(root, split, **options)


# Built-in schemas that a point count alone identifies (14 is ambiguous: FDD faces or LSP bodies).
SCHEMA_BY_POINT_COUNT = {98: "wflw98", 68: "w300_68", 29: "cofw29", 19: "aflw19", 5: "mtfl5"}


def schema_for_point_count(count: int, where: str = "") -> str:
    """The built-in schema with ``count`` points, or a ValueError asking for an explicit one."""
    if count not in SCHEMA_BY_POINT_COUNT:
        raise ValueError(f"{where}: {count} points match no single built-in schema; set the schema explicitly")
    return SCHEMA_BY_POINT_COUNT[count]
