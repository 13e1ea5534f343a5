"""MTFL-5 (Zhang et al. 2014) as shipped in ``../shared/data/mtfl5``: its 10,000-face training part.

Layout::

    root/train.txt                   relative/path.jpg x1 x2 x3 x4 x5 y1 y2 y3 y4 y5
    root/lfw_5590/*.jpg, root/net_7876/*.jpg     80 x 80 face crops

Points (all x first, then all y in the file): left eye centre, right eye centre, nose tip, left mouth
corner, right mouth corner, in pixels of the 80 x 80 image, used as stored (some lie outside it).

MTFL's test part (``root/testing.txt``, 2,995 AFLW faces, the same line format, images of their own
sizes) is the ``test`` split, for users who have it; ``../shared/data`` does not ship it, so the
validation split is a fixed hold-out of ``train.txt``, with no randomness: counting the faces
(non-blank lines) of ``train.txt`` from 1, ``val`` is every 10th face (faces 10, 20, ..., 10000: 1,000
faces, from both ``lfw_5590`` and ``net_7876``), ``train`` the other 9,000 and ``all`` the 10,000.

Box: the training images are face-detector crops resized to 80 x 80 (all 10,000 checked), so by default
the box is the whole image, ``(0, 0, 79, 79)`` (first to last pixel centre) - the box the crop was made
from. Their size is taken from ``image_size``, not read from the files; the ``test`` images' sizes are
read from the files. ``box="landmarks"`` gives the
tight box of the five points instead (small: eyes to mouth).

Known defect of this copy: the 2,350 ``net_7876/_<angle>_<id>_<k>.jpg`` faces (file name starting with
an underscore) carry landmarks that do not match their images - all five points sit about 27 px too
high (mean eye y 3.7 vs 30 in the other images; 2,347 of the 2,350 have both eyes above y = 15, against
0 of the other 7,650). Training on them teaches wrong points and scoring on them measures nothing, so by
default they are left out (``misaligned="exclude"``, logged with their count: the split sizes become
6,885 train / 765 val); ``misaligned="keep"`` reads them as stored. The hold-out rule above still
counts every line of ``train.txt``, so a face's split never depends on this option.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from awing.data.readers import register_reader
from awing.data.readers._common import (
    at_line,
    check_split,
    image_path,
    parse_floats,
    points_planar,
    require_file,
    text_lines,
)
from awing.data.sample import AnnotationError, Sample, landmark_box
from awing.schemas import load_schema

SPLITS = ("train", "val", "all", "test")
ANNOTATIONS = {"train": "train.txt", "val": "train.txt", "all": "train.txt", "test": "testing.txt"}
NUM_POINTS = load_schema("mtfl5").num_points  # the schema says it, not the reader
VAL_EVERY = 10
MISALIGNED_PREFIX = "net_7876/_"  # see the module docstring

log = logging.getLogger("awing.data")


def in_split(face_number: int, split: str) -> bool:
    """Whether the ``face_number``-th face (1-based) of ``train.txt`` belongs to ``split``."""
    held_out = face_number % VAL_EVERY == 0
    return split in ("all", "test") or (split == "val") == held_out


def _whole_image_box(path: str, where: str) -> np.ndarray:
    """(0, 0, W - 1, H - 1) of an image file (its first to last pixel centre)."""
    import cv2

    image = cv2.imread(path, cv2.IMREAD_UNCHANGED)
    if image is None:
        raise AnnotationError(f"{where}: cannot read {path} to get its size")
    h, w = image.shape[:2]
    return np.array([0.0, 0.0, w - 1.0, h - 1.0])


@register_reader(
    "mtfl",
    schema="mtfl5",
    splits=SPLITS,
    description="MTFL 5-point 80x80 faces (train.txt; val = every 10th face, fixed)",
)
def read(
    root: Path,
    split: str,
    box: str = "image",
    image_size: int = 80,
    check_images: bool = True,
    misaligned: str = "exclude",
) -> list[Sample]:
    """Read one MTFL split.

    Args:
        root: folder holding ``train.txt`` and the image folders.
        split: ``train`` (9,000), ``val`` (every 10th face, 1,000), ``all``, or ``test`` (``testing.txt``).
        box: ``image`` (the whole ``image_size`` square) or ``landmarks`` (tight landmark box).
        image_size: side of the (square) images, in pixels.
        check_images: raise if an image file is missing.
        misaligned: ``exclude`` (default) or ``keep`` the faces whose stored landmarks are known not to
            match their images (module docstring).
    """
    check_split("mtfl", split, SPLITS)
    if misaligned not in ("exclude", "keep"):
        raise ValueError(f"mtfl: misaligned must be 'exclude' or 'keep', not {misaligned!r}")
    if box not in ("image", "landmarks"):
        raise ValueError(f"mtfl: box must be 'image' or 'landmarks', not {box!r}")
    root = Path(root)
    path = require_file(root / ANNOTATIONS[split], f"MTFL {ANNOTATIONS[split]}")
    image_box = np.array([0.0, 0.0, image_size - 1.0, image_size - 1.0])
    samples, excluded = [], 0
    for face, (number, line) in enumerate(text_lines(path), start=1):
        if not in_split(face, split):
            continue
        where = at_line(path, number)
        fields = line.split()
        if misaligned == "exclude" and fields[0].startswith(MISALIGNED_PREFIX):
            excluded += 1
            continue
        if len(fields) != 1 + 2 * NUM_POINTS:
            raise AnnotationError(
                f"{where}: expected an image path and {2 * NUM_POINTS} coordinates, found {len(fields)} fields"
            )
        landmarks = points_planar(parse_floats(fields[1:], where, what="coordinates"))
        image = image_path(root, fields[0].replace("\\", "/"), where, check_images)
        if box == "landmarks":
            face_box = landmark_box(landmarks, where)
        else:  # the whole image: 80 x 80 for the training part, each test image its own size
            face_box = _whole_image_box(image, where) if split == "test" else image_box
        samples.append(
            Sample(
                image=image,
                landmarks=landmarks,
                box=face_box,
                split=split,
                source=where,
            )
        )
    if excluded:
        log.info("mtfl %s: left out %d faces with misaligned landmarks (%s*; misaligned='keep' reads them)",
                 split, excluded, MISALIGNED_PREFIX)
    return samples
