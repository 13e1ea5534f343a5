"""300W (Sagonas et al. 2013): 68 points, in the iBUG folder layout or HRNet's CSV files.

``w300`` reads the iBUG download, one ``.pts`` file beside each image::

    root/lfpw/trainset  root/lfpw/testset  root/helen/trainset  root/helen/testset
    root/afw  root/ibug  root/300W/01_Indoor  root/300W/02_Outdoor      (300W private test set)

The private set's folders are also accepted as ``300W/Test/0x_...``, ``Test/0x_...`` or ``0x_...``.

Splits (the protocol of REFERENCE_NOTES): ``train`` = LFPW train + HELEN train + AFW (3148 faces),
``common`` = LFPW test + HELEN test (554), ``challenge`` = iBUG (135), ``full`` = common + challenge
(689), ``private`` = indoor + outdoor (600).

``w300_csv`` reads HRNet's ``face_landmarks_300w_{train,valid,valid_common,valid_challenge,test}.csv``
(``image_name, scale, center_w, center_h`` then 68 ``x, y`` pairs); ``common``, ``challenge``, ``full``
and ``private`` are accepted for ``valid_common``, ``valid_challenge``, ``valid`` and ``test``.

Coordinates: iBUG ``.pts`` files are 1-based (MATLAB convention: the centre of the top-left pixel is
``(1, 1)``). Both readers subtract 1, so points are 0-based with pixel centres at integers as
everywhere in awing; HRNet's CSV holds the ``.pts`` values unchanged, so the same face gets the same
points from either reader. Pass ``one_based=False`` to keep the values as stored.

Boxes: the iBUG layout has no official face boxes, so the box is the tight landmark box (the paper's
"GT bbox"). HRNet's box is a square of side ``200 * scale`` centred on ``(center_w, center_h)``
(HRNet's ``scale`` is box size / 200; checked on the real test file, where ``200 * scale`` is the
larger landmark extent rounded up to a whole pixel and the centre is the landmark box's, rounded).

Every sample has attributes ``subset`` (``lfpw_train``, ``helen_train``, ``afw``, ``lfpw_test``,
``helen_test``, ``ibug``, ``indoor``, ``outdoor``; ``""`` for a CSV path outside those folders) and
0/1 flags ``common``, ``challenge``, ``indoor``, ``outdoor`` for per-subset evaluation of a ``full``
or ``private`` run.
"""

from __future__ import annotations

import re
from pathlib import Path, PurePosixPath

import numpy as np

from awing.data.readers import register_reader
from awing.data.readers._common import (
    at_line,
    check_split,
    csv_records,
    find_image_dir,
    first_existing,
    image_beside,
    image_path,
    landmark_box,
    no_samples,
    parse_floats,
    parse_int,
    points_interleaved,
    require_file,
    text_lines,
)
from awing.data.sample import AnnotationError, Sample
from awing.schemas import load_schema

NUM_POINTS = load_schema("w300_68").num_points

#: subset -> folders that hold it, relative to the root, first match wins.
SUBSET_DIRS = {
    "lfpw_train": ("lfpw/trainset",),
    "helen_train": ("helen/trainset",),
    "afw": ("afw",),
    "lfpw_test": ("lfpw/testset",),
    "helen_test": ("helen/testset",),
    "ibug": ("ibug",),
    "indoor": ("300W/01_Indoor", "300W/Test/01_Indoor", "Test/01_Indoor", "01_Indoor"),
    "outdoor": ("300W/02_Outdoor", "300W/Test/02_Outdoor", "Test/02_Outdoor", "02_Outdoor"),
}
SPLIT_SUBSETS = {
    "train": ("lfpw_train", "helen_train", "afw"),
    "common": ("lfpw_test", "helen_test"),
    "challenge": ("ibug",),
    "full": ("lfpw_test", "helen_test", "ibug"),
    "private": ("indoor", "outdoor"),
}
#: 0/1 attribute flags -> the subsets they mark.
FLAGS = {
    "common": ("lfpw_test", "helen_test"),
    "challenge": ("ibug",),
    "indoor": ("indoor",),
    "outdoor": ("outdoor",),
}

CSV_SPLITS = ("train", "valid", "valid_common", "valid_challenge", "test")
CSV_ALIASES = {"common": "valid_common", "challenge": "valid_challenge", "full": "valid", "private": "test"}


def subset_attributes(subset: str) -> dict:
    """``{"subset": subset, "common": 0/1, "challenge": 0/1, "indoor": 0/1, "outdoor": 0/1}``."""
    return {"subset": subset, **{flag: int(subset in members) for flag, members in FLAGS.items()}}


def subset_of(relative: str) -> str:
    """The subset an image path (relative to the 300W root) belongs to, ``""`` if none."""
    folder = PurePosixPath(relative.replace("\\", "/")).parent.as_posix().lower()
    for subset, dirs in SUBSET_DIRS.items():
        if any(folder == d.lower() or folder.endswith("/" + d.lower()) for d in dirs):
            return subset
    return ""


def read_pts(path: Path, num_points: int | None = NUM_POINTS) -> np.ndarray:
    """(N, 2) float64 points of an iBUG ``.pts`` file, values as stored (1-based).

    Format: header lines ``key: value`` (``version: 1``, ``n_points: N``), ``{``, N lines ``x y``, ``}``.

    Raises:
        AnnotationError: a malformed file (the message names the file and line), or ``n_points`` other
        than ``num_points`` when given.
    """
    lines = list(text_lines(path))
    header: dict[str, tuple[int, str]] = {}
    body_start = None
    for index, (number, line) in enumerate(lines):
        if line == "{":
            body_start = index + 1
            break
        key, sep, value = line.partition(":")
        if not sep:
            raise AnnotationError(f"{at_line(path, number)}: expected 'key: value' or '{{', found {line!r}")
        header[key.strip()] = (number, value.strip())
    if body_start is None:
        raise AnnotationError(f"{path}: no '{{' opening the point list")
    if "n_points" not in header:
        raise AnnotationError(f"{path}: no 'n_points:' header line")
    number, value = header["n_points"]
    n = parse_int(value, at_line(path, number), "n_points")
    if num_points is not None and n != num_points:
        raise AnnotationError(f"{at_line(path, number)}: n_points is {n}, expected {num_points}")
    body = lines[body_start : body_start + n]
    if len(body) < n or any(line == "}" for _, line in body):
        raise AnnotationError(f"{path}: n_points is {n} but fewer point lines follow")
    points = np.array(
        [parse_floats(line.split(), at_line(path, num), count=2, what="coordinates") for num, line in body]
    ).reshape(-1, 2)
    rest = lines[body_start + n :]
    if not rest or rest[0][1] != "}":
        where = at_line(path, rest[0][0]) if rest else str(path)
        raise AnnotationError(f"{where}: expected '}}' after {n} points")
    if len(rest) > 1:
        raise AnnotationError(f"{at_line(path, rest[1][0])}: unexpected content after '}}'")
    return points


def subset_folder(root: Path, subset: str) -> Path:
    return first_existing((root / d for d in SUBSET_DIRS[subset]), f"300W {subset} folder", kind="dir")


@register_reader(
    "w300",
    schema="w300_68",
    splits=tuple(SPLIT_SUBSETS),
    description="300W iBUG folders with .pts files (68 points, box from landmarks)",
)
def read(root: Path, split: str, one_based: bool = True, check_images: bool = True) -> list[Sample]:
    """Read one 300W split from the iBUG folder layout.

    Args:
        root: folder holding ``lfpw/``, ``helen/``, ``afw/``, ``ibug/`` and/or ``300W/``.
        split: ``train``, ``common``, ``challenge``, ``full`` or ``private``.
        one_based: the ``.pts`` values are 1-based (iBUG): subtract 1.
        check_images: raise if a ``.pts`` file has no image beside it.
    """
    check_split("w300", split, tuple(SPLIT_SUBSETS))
    root = Path(root)
    shift = 1.0 if one_based else 0.0
    samples = []
    for subset in SPLIT_SUBSETS[split]:
        folder = subset_folder(root, subset)
        files = sorted(folder.glob("*.pts"))
        if not files:
            raise no_samples("w300", split, f"{folder} (no .pts file)")
        for pts in files:
            landmarks = read_pts(pts) - shift
            where = str(pts)
            # AFW faces of one photo are <photo>_1.pts, <photo>_2.pts; accept a shared <photo>.jpg there.
            shared = (re.sub(r"_\d+$", "", pts.stem),) if subset == "afw" else ()
            image = image_beside(pts, where, check_images, stems=shared)
            samples.append(
                Sample(
                    image=image,
                    landmarks=landmarks,
                    box=landmark_box(landmarks, where),
                    attributes=subset_attributes(subset),
                    split=split,
                    source=where,
                )
            )
    return samples


@register_reader(
    "w300_csv",
    schema="w300_68",
    splits=CSV_SPLITS + tuple(CSV_ALIASES),
    description="300W in HRNet's CSV files (68 points, box from center/scale)",
)
def read_csv(
    root: Path,
    split: str,
    csv_file: str | None = None,
    image_dir: str | None = None,
    one_based: bool = True,
    check_images: bool = True,
) -> list[Sample]:
    """Read one 300W split from HRNet's ``face_landmarks_300w_<split>.csv``.

    Args:
        root: folder holding the CSV files; images in ``root/images`` if it exists, else ``root``.
        split: ``train``, ``valid``, ``valid_common``, ``valid_challenge``, ``test`` (or the aliases
            ``full``, ``common``, ``challenge``, ``private``).
        csv_file: the CSV file (relative to ``root`` or absolute), overriding the split's file name.
        image_dir: image folder (relative to ``root`` or absolute).
        one_based: the values are iBUG's 1-based ones: subtract 1 (points and box).
        check_images: raise if an image file is missing (HRNet's CSVs are often used without images).
    """
    check_split("w300_csv", split, CSV_SPLITS + tuple(CSV_ALIASES))
    root = Path(root)
    name = f"face_landmarks_300w_{CSV_ALIASES.get(split, split)}.csv"
    path = require_file(root / csv_file if csv_file else root / name, "300W CSV file")
    images = find_image_dir(root, image_dir)
    shift = 1.0 if one_based else 0.0
    samples = []
    for number, row in csv_records(path, ("image_name", "scale", "center_w", "center_h")):
        where = at_line(path, number)
        values = list(row.values())
        scale, cx, cy = parse_floats(values[1:4], where, what="scale/center values")
        if scale <= 0:
            raise AnnotationError(f"{where}: scale must be positive, found {scale}")
        coords = parse_floats(values[4:], where, count=2 * NUM_POINTS, what="coordinates")
        half = 100.0 * scale
        box = np.array([cx - half, cy - half, cx + half, cy + half]) - shift
        relative = row["image_name"].strip()
        samples.append(
            Sample(
                image=image_path(images, relative, where, check_images),
                landmarks=points_interleaved(coords) - shift,
                box=box,
                attributes=subset_attributes(subset_of(relative)),
                split=split,
                source=where,
            )
        )
    if not samples:
        raise no_samples("w300_csv", split, path)
    return samples
