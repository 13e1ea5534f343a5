"""What ``awing predict`` reads: the files its PATH arguments name (folders searched recursively), the
``--boxes`` table of given face boxes, and its options' values (argparse ``type`` functions that refuse a
value out of range, naming the option, before anything is read or loaded)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from awing.app.api import ENLARGE_RANGE

__all__ = [
    "IMAGE_EXTENSIONS",
    "VIDEO_EXTENSIONS",
    "boxes_for",
    "checked",
    "collect_inputs",
    "count_arg",
    "crop_size_arg",
    "enlarge_arg",
    "fraction_arg",
    "load_boxes",
    "non_negative_arg",
    "positive_arg",
]

IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp", ".ppm", ".pgm"})
VIDEO_EXTENSIONS = frozenset({".mp4", ".avi", ".mov", ".mkv"})


def collect_inputs(paths: list[str], skip: Path | None = None) -> tuple[list[tuple[Path, str, Path]], list[str]]:
    """Expand folders: ``([(file, key, name)], missing)``.

    Files inside ``skip`` (the output folder, when it lies inside an input folder) are left out of the
    folders' files, so that a run does not read its own annotated copies.

    ``key`` names the file in predictions.json/.csv: the path as given, or ``folder/relative/path`` for a
    file found in a folder. ``name`` is the relative path of its annotated copy: that relative path, or
    the file name of a file given directly; videos get ``.mp4``; clashes get ``-2``, ``-3``, ...
    """
    found, missing, used = [], [], set()
    skip = skip.resolve() if skip is not None else None
    for text in paths:
        path = Path(text)
        if path.is_dir():
            for f in sorted(path.rglob("*")):
                if skip is not None and f.resolve().is_relative_to(skip):
                    continue
                if f.is_file() and f.suffix.lower() in IMAGE_EXTENSIONS | VIDEO_EXTENSIONS:
                    rel = Path(path.resolve().name) / f.relative_to(path)
                    found.append((f, rel.as_posix(), rel))
        elif path.is_file():
            found.append((path, text, Path(path.name)))
        else:
            missing.append(text)
    out = []
    for file, key, name in found:
        if file.suffix.lower() in VIDEO_EXTENSIONS:
            name = name.with_suffix(".mp4")
        candidate, n = name, 1
        while candidate in used:
            n += 1
            candidate = name.with_name(f"{name.stem}-{n}{name.suffix}")
        used.add(candidate)
        out.append((file, key, candidate))
    return out, missing


def load_boxes(path: str) -> dict[str, np.ndarray]:
    """The ``--boxes`` JSON as ``{key: (K, 4) float32}``.

    Raises:
        ValueError: the file cannot be read, is not a JSON object, or a value is not a list of boxes.
    """
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, json.JSONDecodeError) as err:
        raise ValueError(f"--boxes {path}: cannot read a JSON object: {err}") from err
    if not isinstance(data, dict):
        raise ValueError(f"--boxes {path}: expected {{filename: [[x0, y0, x1, y1], ...]}}")
    out = {}
    for key, boxes in data.items():
        arr = np.asarray(boxes, dtype=np.float32)
        if arr.size and (arr.ndim != 2 or arr.shape[1] != 4):
            raise ValueError(f"--boxes {path}: {key!r} needs a list of [x0, y0, x1, y1] boxes")
        out[key] = arr.reshape(-1, 4)
    return out


def boxes_for(table: dict[str, np.ndarray], file: Path, key: str) -> np.ndarray | None:
    """A file's boxes in the ``--boxes`` table: by its key, its path, its path inside its folder argument or
    its name (the first that matches); None if none does."""
    for k in (key, str(file), key.split("/", 1)[-1], file.name):
        if k in table:
            return table[k]
    return None


# ------------------------------------------------------------------------------------------ option values
def checked(cast, ok, what: str):
    """An argparse ``type``: ``cast(text)``, refused unless finite and ``ok``: argparse then says
    "argument --OPTION: must be ``what``, got TEXT" and exits with 2."""

    def parse(text: str):
        try:
            value = cast(text)
        except ValueError:
            value = None
        if value is None or not (np.isfinite(value) and ok(value)):
            raise argparse.ArgumentTypeError(f"must be {what}, got {text}")
        return value

    return parse


count_arg = checked(int, lambda v: v >= 1, "a whole number >= 1")
positive_arg = checked(float, lambda v: v > 0, "a positive number")
non_negative_arg = checked(float, lambda v: v >= 0, "a number >= 0")
fraction_arg = checked(float, lambda v: 0 <= v <= 1, "a number in [0, 1]")
enlarge_arg = checked(
    float,
    lambda v: ENLARGE_RANGE[0] <= v <= ENLARGE_RANGE[1],
    f"a number in [{ENLARGE_RANGE[0]:g}, {ENLARGE_RANGE[1]:g}] (0: the squared box)",
)
crop_size_arg = checked(int, lambda v: 16 <= v <= 4096, "a whole number of pixels in [16, 4096]")
