"""One annotated face: the unit every reader produces and every later stage consumes."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np


class AnnotationError(ValueError):
    """A malformed annotation: the message names the file and line (or record) at fault."""


@dataclasses.dataclass
class Sample:
    """One face in one image.

    Coordinates are image pixels with pixel centres at integers (OpenCV's convention).

    Attributes:
        image: path of the image file.
        landmarks: (N, 2) float32 ``x, y``; NaN where a point is missing (not annotated).
        visible: (N,) bool, False where the annotation flags the point occluded; None if unknown.
        box: (4,) float32 face box ``x0, y0, x1, y1``; None if the dataset gives none.
        attributes: dataset-specific flags (e.g. WFLW's ``pose``/``occlusion`` 0/1, FDD's ``background``).
        split: the split this sample belongs to (``train``, ``test``, ``common``, ...).
        source: ``file:line`` (or ``file[record]``) the annotation came from, for error messages.
    """

    image: str
    landmarks: np.ndarray
    visible: np.ndarray | None = None
    box: np.ndarray | None = None
    attributes: dict = dataclasses.field(default_factory=dict)
    split: str = ""
    source: str = ""

    def __post_init__(self) -> None:
        self.landmarks = np.asarray(self.landmarks, dtype=np.float32).reshape(-1, 2)
        if self.visible is not None:
            self.visible = np.asarray(self.visible, dtype=bool).reshape(-1)
        if self.box is not None:
            self.box = np.asarray(self.box, dtype=np.float32).reshape(4)

    @property
    def num_points(self) -> int:
        return int(self.landmarks.shape[0])


def landmark_box(points: np.ndarray, where: str = "") -> np.ndarray:
    """(4,) float32 tight box ``x0, y0, x1, y1`` around the non-missing points (the paper's "GT bbox").

    The one way awing builds a box from landmarks (readers, crops, evaluation).

    Raises:
        AnnotationError (a ValueError): every point is missing; the message starts with ``where``.
    """
    pts = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    pts = pts[~np.isnan(pts).any(axis=1)]
    if len(pts) == 0:
        raise AnnotationError(f"{where + ': ' if where else ''}no annotated landmark to build a box from")
    return np.concatenate([pts.min(axis=0), pts.max(axis=0)]).astype(np.float32)


def check_image_exists(path: Path, source: str) -> str:
    """The path as a string, or an AnnotationError naming the annotation that refers to it."""
    if not path.is_file():
        raise AnnotationError(f"{source}: image not found: {path}")
    return str(path)
