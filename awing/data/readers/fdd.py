"""FDD-14 (Face Disguise Dataset, Singh et al. 2017) as shipped in ``../shared/data/fdd14``.

Layout::

    root/landmarks.csv   image, split, background, frame, x0, y0, ..., x13, y13
    root/images/{simple,complex}_NNNN.jpg       256 x 256 crops centred on the landmarks

Splits come from the ``split`` column: ``train`` (frames 1-1600), ``val`` (1601-1800) and ``test``
where present (frames 1801-2000 are not in the shared folder). Points are pixels in the 256 x 256 crop,
pixel centres at integers. The box is the tight landmark box (the crops have no other box).

Attributes: ``background`` (``simple``/``complex``), ``frame`` (int), and the 0/1 flags ``simple`` and
``complex`` that the ``fdd14`` schema's subsets (``simple_background``, ``complex_background``) use.
"""

from __future__ import annotations

from pathlib import Path

from awing.data.readers import register_reader
from awing.data.readers._common import (
    at_line,
    check_split,
    csv_records,
    image_path,
    no_samples,
    parse_int,
    require_file,
    row_points,
    xy_columns,
)
from awing.data.sample import AnnotationError, Sample, landmark_box
from awing.schemas import load_schema

SPLITS = ("train", "val", "test")
NUM_POINTS = load_schema("fdd14").num_points  # the schema says it, not the reader
BACKGROUNDS = ("simple", "complex")


@register_reader(
    "fdd",
    schema="fdd14",
    splits=SPLITS,
    description="Face Disguise Dataset 14-point crops (landmarks.csv; simple/complex backgrounds)",
    landmark_boxes=True,
)
def read(root: Path, split: str, check_images: bool = True) -> list[Sample]:
    """Read one FDD split.

    Args:
        root: folder holding ``landmarks.csv`` and ``images/``.
        split: ``train``, ``val`` or ``test``.
        check_images: raise if an image file is missing.
    """
    check_split("fdd", split, SPLITS)
    root = Path(root)
    path = require_file(root / "landmarks.csv", "FDD landmarks.csv")
    columns = ("image", "split", "background", "frame", *xy_columns(NUM_POINTS))
    samples, present = [], set()
    for number, row in csv_records(path, columns):
        where = at_line(path, number)
        present.add(row["split"].strip())
        if row["split"].strip() != split:
            continue
        background = row["background"].strip()
        if background not in BACKGROUNDS:
            raise AnnotationError(f"{where}: background must be one of {BACKGROUNDS}, found {background!r}")
        landmarks = row_points(row, NUM_POINTS, where)
        attributes = {
            "background": background,
            "frame": parse_int(row["frame"], where, "frame"),
            **{name: int(name == background) for name in BACKGROUNDS},
        }
        samples.append(
            Sample(
                image=image_path(root / "images", row["image"], where, check_images),
                landmarks=landmarks,
                box=landmark_box(landmarks, where),
                attributes=attributes,
                split=split,
                source=where,
            )
        )
    if not samples:
        raise no_samples("fdd", split, path, present)
    return samples
