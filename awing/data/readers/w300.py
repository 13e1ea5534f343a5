"""300W (Sagonas et al. 2013): 68 points, in the iBUG folder layout or HRNet's CSV files.

``w300`` reads the iBUG download, one ``.pts`` file beside each image::

    root/lfpw/trainset  root/lfpw/testset  root/helen/trainset  root/helen/testset
    root/afw  root/ibug  root/300W/01_Indoor  root/300W/02_Outdoor      (300W private test set)

The private set's folders are also accepted as ``300W/Test/0x_...``, ``Test/0x_...`` or ``0x_...``.

Subsets (one folder each): ``lfpw_train``, ``helen_train``, ``afw``, ``lfpw_test``, ``helen_test``,
``ibug``, ``indoor``, ``outdoor``.

Splits (the protocol of REFERENCE_NOTES): ``train`` = LFPW train + HELEN train + AFW (3148 faces),
``common`` = LFPW test + HELEN test (554), ``challenge`` = iBUG (135), ``full`` = common + challenge
(689), ``private`` = indoor + outdoor (600).

Validation: 300W has no validation split, so awing holds out a fixed part of ``train`` *by photo*:
``val`` = the ``train`` faces whose photo is held out, ``fit`` = the other ``train`` faces (``fit`` +
``val`` = ``train``, disjoint). A photo is held out when the SHA-1 digest of its id (UTF-8), read as a
big-endian integer from its first 8 bytes, is divisible by 8 (:func:`held_out`): about 1 photo in 8,
with no randomness, decided by the photo id alone (not by which other faces or subsets are present, nor
by the order of the files). The photo id is the ``.pts`` file name without extension and, for AFW and
HELEN, without the trailing ``_<k>`` face number (``134212_2.pts`` -> ``134212``), so all faces of one
photo fall on the same side; LFPW has one face per image (``image_0001``). On the AFW + HELEN-train copy
in ``../shared/data/w300`` (1,207 faces), ``val`` holds 145 faces (AFW 34 of 337 faces = 21 of 185
photos; HELEN train 111 of 870 faces = 99 of 783 photos) and ``fit`` 1,062 (AFW 303, HELEN train 759).

Explicit subsets: the split may also be a ``+``-joined list of subset names, e.g. ``helen_train+afw``
or ``lfpw_test+helen_test``, read in the order given; an unknown name is an error listing the known
ones, and a named subset whose folder is missing is an error.

Partial copies: a named split (``train``, ``fit``, ``val``, ``common``, ...) reads the subsets whose
folder is present and logs one warning naming the missing subsets and the number of faces read; only
when none of its subsets is present does it raise (``FileNotFoundError`` naming the folders looked
for). A present folder with no ``.pts`` file is an error.

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

import hashlib
import logging
import re
from pathlib import Path, PurePosixPath

import numpy as np

from awing.data.readers import register_reader
from awing.data.readers._common import (
    at_line,
    check_split,
    csv_records,
    find_image_dir,
    image_beside,
    image_path,
    no_samples,
    parse_floats,
    parse_int,
    points_interleaved,
    require_file,
    text_lines,
)
from awing.data.sample import AnnotationError, Sample, landmark_box
from awing.schemas import load_schema

NUM_POINTS = load_schema("w300_68").num_points

log = logging.getLogger(__name__)

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
TRAIN_SUBSETS = ("lfpw_train", "helen_train", "afw")
SPLIT_SUBSETS = {
    "train": TRAIN_SUBSETS,
    "fit": TRAIN_SUBSETS,  # train minus val
    "val": TRAIN_SUBSETS,  # the held-out photos of train
    "common": ("lfpw_test", "helen_test"),
    "challenge": ("ibug",),
    "full": ("lfpw_test", "helen_test", "ibug"),
    "private": ("indoor", "outdoor"),
}
#: split -> whether it keeps the held-out photos (True) or the others (False); other splits keep all.
HOLD_OUT = {"fit": False, "val": True}
#: a photo is held out when its id's hash is divisible by this (about 1 photo in 8).
VAL_ONE_IN = 8
#: subsets whose file names are ``<photo>_<k>``, one file per face of a photo.
FACE_NUMBERED = ("afw", "helen_train", "helen_test")
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


def photo_id(subset: str, stem: str) -> str:
    """The photo a face file (``.pts`` name without extension) of ``subset`` was cut from.

    AFW and HELEN number the faces of one photo: ``<photo>_<k>``; other subsets have one face per image.
    """
    return re.sub(r"_\d+$", "", stem) if subset in FACE_NUMBERED else stem


def held_out(photo: str) -> bool:
    """Whether the photo is in the ``val`` split: SHA-1 of its id, first 8 bytes, divisible by 8."""
    digest = hashlib.sha1(photo.encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") % VAL_ONE_IN == 0


def split_subsets(split: str) -> tuple[tuple[str, ...], bool]:
    """The subsets a split reads and whether they were named explicitly (``a+b``).

    Raises:
        ValueError: an unknown split, an unknown subset name in a ``+`` list, or a subset named twice.
    """
    if split in SPLIT_SUBSETS:
        return SPLIT_SUBSETS[split], False
    names = tuple(str(split).split("+"))
    known = ", ".join(SUBSET_DIRS)
    if "+" not in str(split) and split not in SUBSET_DIRS:
        raise ValueError(
            f"unknown split {split!r} for 'w300'; known: {', '.join(SPLIT_SUBSETS)}, or subsets joined by '+' ({known})"
        )
    unknown = [name for name in names if name not in SUBSET_DIRS]
    if unknown:
        raise ValueError(
            f"unknown subset {', '.join(map(repr, unknown))} in split {split!r} for 'w300'; known subsets: {known}"
        )
    twice = sorted({name for name in names if names.count(name) > 1})
    if twice:
        raise ValueError(f"w300 split {split!r} names subset {', '.join(map(repr, twice))} more than once")
    return names, True


def find_subset_folder(root: Path, subset: str) -> Path | None:
    """The first of the subset's folders under ``root`` that exists, ``None`` if none does."""
    return next((root / d for d in SUBSET_DIRS[subset] if (root / d).is_dir()), None)


def looked_for(root: Path, subsets) -> str:
    """``300W <subset> folder (<path>, ...)`` for each subset, ``; ``-joined (for error messages)."""
    return "; ".join(f"300W {s} folder ({', '.join(str(root / d) for d in SUBSET_DIRS[s])})" for s in subsets)


@register_reader(
    "w300",
    schema="w300_68",
    splits=tuple(SPLIT_SUBSETS),
    accepts=lambda split: "+" in split or split in SUBSET_DIRS,  # subsets, alone or joined: a+b
    landmark_boxes=True,
    description="300W iBUG folders with .pts files (68 points, box from landmarks; split may be subsets: a+b)",
)
def read(root: Path, split: str, one_based: bool = True, check_images: bool = True) -> list[Sample]:
    """Read one 300W split from the iBUG folder layout (module docstring: splits, hold-out, partial copies).

    Args:
        root: folder holding ``lfpw/``, ``helen/``, ``afw/``, ``ibug/`` and/or ``300W/``.
        split: ``train``, ``fit``, ``val``, ``common``, ``challenge``, ``full``, ``private``, or subset
            names joined by ``+`` (``helen_train+afw``).
        one_based: the ``.pts`` values are 1-based (iBUG): subtract 1.
        check_images: raise if a ``.pts`` file has no image beside it.

    Raises:
        ValueError: an unknown split or subset name; a subset folder without ``.pts`` files; no face.
        FileNotFoundError: none of a named split's subsets is under ``root``, or an explicitly named
            subset is missing.
    """
    subsets, explicit = split_subsets(split)
    root = Path(root)
    folders = {subset: find_subset_folder(root, subset) for subset in subsets}
    missing = [subset for subset, folder in folders.items() if folder is None]
    if missing and explicit:
        raise FileNotFoundError(f"w300 split {split!r}: not found under {root}: {looked_for(root, missing)}")
    if len(missing) == len(subsets):
        raise FileNotFoundError(
            f"w300 split {split!r}: none of its subsets ({', '.join(subsets)}) is under {root}; "
            f"looked for: {looked_for(root, missing)}"
        )
    keep = HOLD_OUT.get(split)
    shift = 1.0 if one_based else 0.0
    samples, counts = [], {}
    for subset, folder in folders.items():
        if folder is None:
            continue
        files = sorted(folder.glob("*.pts"))
        if not files:
            raise no_samples("w300", split, f"{folder} (no .pts file)")
        if keep is not None:
            files = [pts for pts in files if held_out(photo_id(subset, pts.stem)) == keep]
        counts[subset] = len(files)
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
    if missing:
        read_counts = ", ".join(f"{subset} {n}" for subset, n in counts.items())
        log.warning(
            "w300 split %r: read %d faces (%s) from %s; missing subsets: %s (no %s)",
            split, len(samples), read_counts, root, ", ".join(missing),
            ", ".join(" or ".join(SUBSET_DIRS[s]) for s in missing),
        )
    if not samples:
        raise no_samples("w300", split, root, present=counts)
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
