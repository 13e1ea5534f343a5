"""FG-NET Aging Database (Lanitis, Taylor, Cootes, PAMI 2002): 82 people from infancy to old age.

Layout, as released::

    root/FGNET/images/NNNAxx.JPG     NNN the person (001-082), xx the age in years, an optional letter
                                     (``001A43a``, ``001A43b``) for several photos at one age
    root/FGNET/points/nnnaxx.pts     the same name in lower case: iBUG-style text .pts, 68 points

``root`` may also be the ``FGNET`` folder itself. The points are FG-NET's own 68-point layout (schema
``fgnet68``, not the 300-W order; its ``from_schemas`` declares the points shared with 300-W), used as
stored (``one_based=True`` subtracts 1). Box: the tight landmark box.

Attributes: ``person`` (int), ``age`` (int, years), ``child`` = 1 when the age is under 18 (640 of the
1,002 images), else 0.

Splits, by person so that no one is on both sides: ``val`` = every image of the people whose id
(``NNN``, three digits, as in the file name) is held out by :func:`awing.data.readers.w300.held_out`
(SHA-1 of the id, first 8 bytes divisible by 8; decided by the id alone), ``train`` = the other people,
``all`` = everyone.
"""

from __future__ import annotations

import re
from pathlib import Path

from awing.data.readers import register_reader
from awing.data.readers._common import IMAGE_EXTENSIONS, check_split, no_samples
from awing.data.readers.w300 import held_out, read_pts
from awing.data.sample import AnnotationError, Sample, landmark_box
from awing.schemas import load_schema

SPLITS = ("train", "val", "all")
NUM_POINTS = load_schema("fgnet68").num_points
CHILD_AGE = 18  # years: younger is a child
NAME = re.compile(r"^(?P<person>\d{3})a(?P<age>\d{2})(?P<extra>[a-z]?)$", re.IGNORECASE)


def find_folder(root: Path) -> Path:
    """``root/FGNET`` if it exists, else ``root`` (the folder itself)."""
    folder = Path(root) / "FGNET"
    return folder if folder.is_dir() else Path(root)


def parse_name(path: Path) -> tuple[str, int]:
    """(person id ``NNN``, age) from a ``nnnaxx[x].pts`` file name; an AnnotationError naming the file."""
    match = NAME.match(path.stem)
    if match is None:
        raise AnnotationError(f"{path}: file name is not FG-NET's nnnaxx.pts (person, 'a', age)")
    return match["person"], int(match["age"])


def find_image(images: Path, pts: Path, check: bool = True) -> str:
    """The image of a ``.pts`` file: ``NNNAxx[x].JPG`` (upper-case A, any case of extension) in ``images``."""
    stem = pts.stem
    for name in dict.fromkeys((stem[:3] + "A" + stem[4:], stem.upper(), stem)):
        for ext in IMAGE_EXTENSIONS:
            if (images / (name + ext)).is_file():
                return str(images / (name + ext))
    if check:
        raise AnnotationError(f"{pts}: image not found: no {stem[:3]}A{stem[4:]}.JPG in {images}")
    return str(images / (stem[:3] + "A" + stem[4:] + ".JPG"))


@register_reader(
    "fgnet",
    schema="fgnet68",
    splits=SPLITS,
    landmark_boxes=True,
    description="FG-NET Aging images/ + points/*.pts (68 points, own layout; ages 0-69; val = held-out people)",
)
def read(root: Path, split: str, one_based: bool = False, check_images: bool = True) -> list[Sample]:
    """Read one FG-NET split (module docstring: layout, splits, attributes).

    Args:
        root: folder holding ``FGNET/`` (or that folder).
        split: ``train``, ``val`` or ``all``.
        one_based: subtract 1 from the stored coordinates.
        check_images: raise if a ``.pts`` file has no image.
    """
    check_split("fgnet", split, SPLITS)
    folder = find_folder(root)
    files = sorted((folder / "points").glob("*.pts"))
    if not files:
        raise FileNotFoundError(f"fgnet: no .pts file in {folder / 'points'}")
    shift = 1.0 if one_based else 0.0
    samples = []
    for path in files:
        person, age = parse_name(path)
        if split != "all" and held_out(person) != (split == "val"):
            continue
        where = str(path)
        landmarks = read_pts(path, NUM_POINTS) - shift
        samples.append(
            Sample(
                image=find_image(folder / "images", path, check_images),
                landmarks=landmarks,
                box=landmark_box(landmarks, where),
                attributes={"person": int(person), "age": age, "child": int(age < CHILD_AGE)},
                split=split,
                source=where,
            )
        )
    if not samples:
        raise no_samples("fgnet", split, folder)
    return samples
