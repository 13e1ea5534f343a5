"""SCUT-FBP5500 v2 (Liang et al., ICPR 2018): frontal faces, 350 x 350, 86 points in its own layout.

Layout, as released::

    root/SCUT-FBP5500_v2/Images/<ID>.jpg                 ``root`` may also be the SCUT-FBP5500_v2 folder
    root/SCUT-FBP5500_v2/facial landmark/<ID>.pts        BINARY: int32 count, then count (x, y) float32
                                                         pairs, little-endian (4 + 8 x 86 = 692 bytes)

``<ID>`` is the group and a number: ``AF`` Asian female, ``AM`` Asian male, ``CF`` Caucasian female,
``CM`` Caucasian male (``AF1``, ``CM152``). Points: schema ``scut86`` (its ``from_schemas`` declares the
points shared with 300-W), used as stored (``one_based=True`` subtracts 1). Box: the tight landmark box;
note that it reaches up to the hairline (points 0-3, 19-21 outline the forehead).

Attributes: ``group`` (``AF``, ``AM``, ``CF``, ``CM``), ``ethnicity`` (``asian``, ``caucasian``: the
ID's first letter), ``sex`` (``female``, ``male``) and the 0/1 flags ``asian`` and ``caucasian`` (the
schema's subsets).

Splits: one face per photo, so a fixed hold-out by photo: ``val`` = the IDs held out by
:func:`awing.data.readers.w300.held_out` (SHA-1 of the ID, first 8 bytes divisible by 8: about 1 in 8,
decided by the ID alone), ``train`` = the others, ``all`` = every face.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from awing.data.readers import register_reader
from awing.data.readers._common import check_split, image_path, no_samples
from awing.data.readers.w300 import held_out
from awing.data.sample import AnnotationError, Sample, landmark_box
from awing.schemas import load_schema

SPLITS = ("train", "val", "all")
NUM_POINTS = load_schema("scut86").num_points
ID = re.compile(r"^(?P<group>[AC][FM])\d+$")
ETHNICITY = {"A": "asian", "C": "caucasian"}
SEX = {"F": "female", "M": "male"}
LANDMARK_DIR = "facial landmark"


def find_folder(root: Path) -> Path:
    """``root/SCUT-FBP5500_v2`` if it exists, else ``root`` (the folder itself)."""
    folder = Path(root) / "SCUT-FBP5500_v2"
    return folder if folder.is_dir() else Path(root)


def read_binary_pts(path: Path, num_points: int | None = NUM_POINTS) -> np.ndarray:
    """(N, 2) float64 points of a SCUT binary ``.pts``: little-endian int32 N, then N float32 (x, y) pairs.

    Raises:
        AnnotationError: a short or long file, a count other than ``num_points``, a non-finite value (the
        message names the file).
    """
    data = path.read_bytes()
    if len(data) < 4:
        raise AnnotationError(f"{path}: {len(data)} bytes, too short for the int32 point count")
    count = int(np.frombuffer(data[:4], "<i4")[0])
    if num_points is not None and count != num_points:
        raise AnnotationError(f"{path}: point count is {count}, expected {num_points}")
    if count <= 0 or len(data) != 4 + 8 * count:
        raise AnnotationError(
            f"{path}: {len(data)} bytes, expected 4 + 8 x {count} = {4 + 8 * count} for {count} float32 (x, y) pairs"
        )
    points = np.frombuffer(data[4:], "<f4").astype(np.float64).reshape(count, 2)
    bad = np.flatnonzero(~np.isfinite(points).all(axis=1))
    if len(bad):
        raise AnnotationError(f"{path}: point {int(bad[0])} is not a finite number: {points[bad[0]].tolist()}")
    return points


def id_attributes(path: Path) -> dict:
    """``group``, ``ethnicity``, ``sex`` and the ``asian`` / ``caucasian`` flags of a face's ID."""
    match = ID.match(path.stem)
    if match is None:
        raise AnnotationError(f"{path}: file name is not a SCUT-FBP5500 ID (AF, AM, CF or CM and a number)")
    group = match["group"]
    ethnicity = ETHNICITY[group[0]]
    flags = {name: int(name == ethnicity) for name in ETHNICITY.values()}
    return {"group": group, "ethnicity": ethnicity, "sex": SEX[group[1]], **flags}


@register_reader(
    "scut",
    schema="scut86",
    splits=SPLITS,
    landmark_boxes=True,
    description="SCUT-FBP5500 Images/ + 'facial landmark'/*.pts, binary (86 points, own layout; val = 1-in-8 hash)",
)
def read(root: Path, split: str, one_based: bool = False, check_images: bool = True) -> list[Sample]:
    """Read one SCUT-FBP5500 split (module docstring: layout, splits, attributes).

    Args:
        root: folder holding ``SCUT-FBP5500_v2/`` (or that folder).
        split: ``train``, ``val`` or ``all``.
        one_based: subtract 1 from the stored coordinates.
        check_images: raise if a ``.pts`` file has no ``Images/<ID>.jpg``.
    """
    check_split("scut", split, SPLITS)
    folder = find_folder(root)
    files = sorted((folder / LANDMARK_DIR).glob("*.pts"))
    if not files:
        raise FileNotFoundError(f"scut: no .pts file in {folder / LANDMARK_DIR}")
    shift = 1.0 if one_based else 0.0
    samples = []
    for path in files:
        attributes = id_attributes(path)
        if split != "all" and held_out(path.stem) != (split == "val"):
            continue
        where = str(path)
        landmarks = read_binary_pts(path) - shift
        samples.append(
            Sample(
                image=image_path(folder / "Images", path.stem + ".jpg", where, check_images),
                landmarks=landmarks,
                box=landmark_box(landmarks, where),
                attributes=attributes,
                split=split,
                source=where,
            )
        )
    if not samples:
        raise no_samples("scut", split, folder)
    return samples
