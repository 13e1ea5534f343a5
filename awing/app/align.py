"""Aligned face crops: the similarity-transform crop face-recognition pipelines expect.

    from awing import FaceAligner
    from awing.app.align import aligned_crop, five_points
    aligner = FaceAligner()
    for face in aligner.predict(rgb, color="RGB"):
        crop = aligned_crop(rgb, five_points(face), size=112)   # ArcFace / insightface 112x112

The five points are ``mtfl5``'s (image-left eye centre, image-right eye centre, nose tip, image-left and
image-right mouth corner); any model's points become them through the schema mappings
(``point_mapping(model_schema, "mtfl5")``, :func:`five_points`). The crop is the least-squares
similarity (rotation, uniform scale, translation; ``cv2.estimateAffinePartial2D``) that takes the points
onto :data:`ARCFACE_5PT` scaled to ``size`` with ``padding``.
"""

from __future__ import annotations

import cv2
import numpy as np

from awing.core.images import load_image
from awing.schemas import load_schema, map_points, point_mapping

__all__ = ["ARCFACE_5PT", "aligned_crop", "alignment_matrix", "five_points"]

# insightface's arcface_dst: the five points in a 112x112 crop (x, y), the mtfl5 order.
ARCFACE_5PT = np.array(
    [[38.2946, 51.6963], [73.5318, 51.5014], [56.0252, 71.7366], [41.5493, 92.3655], [70.7299, 92.2041]],
    dtype=np.float64,
)
ARCFACE_5PT.setflags(write=False)
_TEMPLATE_SIZE = 112


def template_points(size: int = 112, template: np.ndarray = ARCFACE_5PT, padding: float = 0.0) -> np.ndarray:
    """(5, 2) the template for a ``size`` x ``size`` crop: the 112-pixel template scaled to ``size`` and
    shrunk towards the centre so that a margin of ``padding`` (a fraction of the face region, e.g. 0.25)
    surrounds it on each side."""
    t = np.asarray(template, dtype=np.float64) / _TEMPLATE_SIZE
    return (t + padding) / (1 + 2 * padding) * size


def alignment_matrix(
    points_5: np.ndarray, size: int = 112, template: np.ndarray = ARCFACE_5PT, padding: float = 0.0
) -> np.ndarray:
    """(2, 3) float64 similarity image -> crop that takes ``points_5`` (5, 2) onto the template.

    Raises:
        ValueError: fewer than 2 finite points, or no transform found.
    """
    src = np.asarray(points_5, dtype=np.float64).reshape(-1, 2)
    dst = template_points(size, template, padding)
    if len(src) != len(dst):
        raise ValueError(f"{len(src)} points for a {len(dst)}-point template")
    ok = np.isfinite(src).all(axis=1)
    if ok.sum() < 2:
        raise ValueError("an aligned crop needs at least 2 finite points")
    # every point an inlier, then Levenberg-Marquardt: the least-squares similarity (as insightface's)
    matrix, _ = cv2.estimateAffinePartial2D(src[ok], dst[ok], method=cv2.RANSAC, ransacReprojThreshold=1e9)
    if matrix is None:
        raise ValueError("no similarity transform found for these points")
    return matrix


def aligned_crop(
    image: np.ndarray,
    points_5: np.ndarray,
    size: int = 112,
    template: np.ndarray = ARCFACE_5PT,
    padding: float = 0.0,
) -> np.ndarray:
    """(size, size, C) the face warped so that its five points sit on ``template`` (any channel order in,
    the same out; bilinear, borders black).

    Args:
        image: (H, W[, C]) uint8 image, or a path or PIL image (read as RGB by :func:`load_image`).
        points_5: (5, 2) the mtfl5 points ``x, y`` in ``image``'s pixels (:func:`five_points`).
        size: the crop's side, pixels (112: the ArcFace input).
        padding: extra margin around the template's face region, as a fraction of it on each side.
    """
    if size < 1 or not np.isfinite(padding) or padding <= -0.5:
        raise ValueError(f"size must be >= 1 and padding > -0.5, got {size}, {padding}")
    if not isinstance(image, np.ndarray):  # what load_image takes (its clear errors for anything else)
        image = load_image(image)
    matrix = alignment_matrix(points_5, size, template, padding)
    return cv2.warpAffine(image, matrix, (int(size), int(size)), flags=cv2.INTER_LINEAR, borderValue=0)


def five_points(face) -> np.ndarray:
    """(5, 2) the mtfl5 points of a :class:`~awing.app.api.FaceLandmarks` (any layout the schemas map to
    mtfl5: fdd14, w300_68, wflw98, mtfl5).

    Raises:
        ValueError: the face's layout has no mapping to mtfl5.
    """
    weights = point_mapping(load_schema(face.schema), "mtfl5")
    if weights is None:
        raise ValueError(f"the schemas declare no mapping from {face.schema!r} to mtfl5")
    return map_points(face.landmarks, weights)
