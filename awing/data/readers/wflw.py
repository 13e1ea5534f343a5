"""WFLW (Wu et al. 2018): 98 points, official ``list_98pt_rect_attr_{train,test}.txt`` annotations.

Layout (``root`` is the folder holding both)::

    WFLW_annotations/list_98pt_rect_attr_train_test/list_98pt_rect_attr_train.txt
    WFLW_annotations/list_98pt_rect_attr_train_test/list_98pt_rect_attr_test.txt
    WFLW_images/<event folder>/<image>.jpg

The list files may also sit directly in ``root`` (images then in ``root/WFLW_images`` if it exists,
else relative to ``root``). One face per line, 207 space-separated fields::

    x0 y0 ... x97 y97  x_min y_min x_max y_max  pose expression illumination make-up occlusion blur  path

Coordinates are image pixels, used as given (pixel centres at integers). The box is the official
face rectangle. The six 0/1 attribute columns become ``Sample.attributes`` under exactly those names,
which the ``wflw98`` schema's subsets refer to.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from awing.data.readers import register_reader
from awing.data.readers._common import (
    at_line,
    check_box,
    check_split,
    find_image_dir,
    first_existing,
    image_path,
    parse_flags,
    parse_floats,
    points_interleaved,
    text_lines,
)
from awing.data.sample import AnnotationError, Sample
from awing.schemas import load_schema

SPLITS = ("train", "test")
NUM_POINTS = load_schema("wflw98").num_points
ATTRIBUTES = ("pose", "expression", "illumination", "make-up", "occlusion", "blur")
LIST_DIR = Path("WFLW_annotations") / "list_98pt_rect_attr_train_test"


def list_file(root: Path, split: str) -> Path:
    """The official list file of a split, in the official tree or directly in ``root``."""
    name = f"list_98pt_rect_attr_{split}.txt"
    return first_existing([root / LIST_DIR / name, root / name], f"WFLW {split} list")


def parse_line(line: str, where: str) -> tuple[np.ndarray, np.ndarray, dict[str, int], str]:
    """``(landmarks (98, 2), box (4,), attributes, image path)`` of one list-file line."""
    fields = line.split()
    expected = 2 * NUM_POINTS + 4 + len(ATTRIBUTES) + 1
    if len(fields) != expected:
        raise AnnotationError(
            f"{where}: expected {expected} fields (196 coords, 4 box, 6 attributes, path), found {len(fields)}"
        )
    coords = parse_floats(fields[: 2 * NUM_POINTS], where, what="coordinates")
    box = parse_floats(fields[2 * NUM_POINTS : 2 * NUM_POINTS + 4], where, what="box values")
    attributes = parse_flags(fields[2 * NUM_POINTS + 4 : -1], where, ATTRIBUTES)
    return points_interleaved(coords), check_box(box, where), attributes, fields[-1]


@register_reader(
    "wflw",
    schema="wflw98",
    splits=SPLITS,
    description="WFLW official list files (98 points, boxes, six attribute flags)",
)
def read(root: Path, split: str, image_dir: str | None = None, check_images: bool = True) -> list[Sample]:
    """Read one WFLW split.

    Args:
        root: folder with ``WFLW_annotations/`` and ``WFLW_images/`` (or with the list files themselves).
        split: ``train`` or ``test``.
        image_dir: image folder (relative to ``root`` or absolute); default ``root/WFLW_images`` if present.
        check_images: raise if an image file is missing.
    """
    check_split("wflw", split, SPLITS)
    root = Path(root)
    path = list_file(root, split)
    images = find_image_dir(root, image_dir, default=("WFLW_images",))
    samples = []
    for number, line in text_lines(path):
        where = at_line(path, number)
        landmarks, box, attributes, relative = parse_line(line, where)
        samples.append(
            Sample(
                image=image_path(images, relative, where, check_images),
                landmarks=landmarks,
                box=box,
                attributes=attributes,
                split=split,
                source=where,
            )
        )
    return samples
