"""Face crops as affine matrices (pure numpy / OpenCV functions).

Conventions (docs/ARCHITECTURE.md): points are ``(x, y)`` pixels with pixel centres at integer
coordinates, so pixel ``i`` covers the continuous interval ``[i - 0.5, i + 0.5]`` and an image of width
``W`` covers ``[-0.5, W - 0.5]``. A crop is a ``(2, 3)`` float64 matrix ``M`` mapping ORIGINAL image
points to CROP points; ``cv2.warpAffine(image, M, (S, S))`` renders it and :func:`cv2.invertAffineTransform` maps
crop points (predictions) back.

The crop of a square of side ``side`` centred at ``(cx, cy)`` onto ``S x S`` output pixels is

    u = (x - cx) * S / side + (S - 1) / 2

so the square's edges ``cx -/+ side / 2`` land on the output's edges ``-0.5`` and ``S - 0.5`` and the
centre ``cx`` on ``(S - 1) / 2`` (the centre of the output's middle pixel, or the boundary between the
two middle pixels when ``S`` is even). Augmentation composes into the same single matrix, see
:func:`crop_matrix`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import cv2
import numpy as np

from awing.data.sample import landmark_box

__all__ = [
    "square_box",
    "crop_matrix",
    "transform_points",
    "warp_image",
    "crop_square",
    "face_square",
    "landmark_crop_box",
]


def square_box(box: Sequence[float] | np.ndarray, enlarge: float = 0.0) -> tuple[float, float, float]:
    """The square crop region for a face box.

    Args:
        box: ``x0, y0, x1, y1`` in pixels.
        enlarge: fraction by which both dimensions grow (WFLW: 0.1, i.e. x1.1), about the centre.
    Returns:
        ``(cx, cy, side)``: the box centre and ``max(w, h) * (1 + enlarge)`` (Sec. 7.3: the longer side
        is the square's side).
    Raises:
        ValueError for a non-finite or empty box.
    """
    x0, y0, x1, y1 = (float(v) for v in np.asarray(box, dtype=np.float64).reshape(4))
    side = max(x1 - x0, y1 - y0) * (1.0 + float(enlarge))
    if not all(math.isfinite(v) for v in (x0, y0, x1, y1)) or not side > 0:
        raise ValueError(f"cannot crop an empty or non-finite box {(x0, y0, x1, y1)}")
    return (x0 + x1) / 2.0, (y0 + y1) / 2.0, side


def crop_matrix(
    center: Sequence[float],
    side: float,
    out_size: int,
    rotation_deg: float = 0.0,
    scale: float = 1.0,
    flip: bool = False,
    shift: Sequence[float] = (0.0, 0.0),
) -> np.ndarray:
    """(2, 3) float64 affine ``M``: original image points -> crop points, all steps in one matrix.

    ``u = F @ (k * R @ (p - c)) + (S - 1) / 2 + shift``, where ``c = center``, ``S = out_size``,
    ``k = S / side * scale``, ``R`` rotates by ``rotation_deg`` about the box centre (positive is
    counter-clockwise as displayed, y pointing down: the sign of ``cv2.getRotationMatrix2D``),
    ``F = diag(-1, 1)`` if ``flip`` (a mirror about the crop's vertical centre line ``u = (S - 1) / 2``)
    and ``shift`` is a translation in output pixels.

    Args:
        center: ``(cx, cy)`` of the crop square in original pixels.
        side: the square's side in original pixels.
        out_size: S, the crop's width and height in pixels.
        rotation_deg: rotation of the content about the centre, degrees.
        scale: zoom; > 1 magnifies the face (the crop then covers ``side / scale`` original pixels).
        flip: mirror the crop horizontally. Landmark indices must then be permuted by the caller
            (``schema.flip_permutation``); this function only moves points.
        shift: ``(tx, ty)`` translation of the content in output pixels.
    """
    if not side > 0 or not scale > 0:
        raise ValueError(f"crop side and scale must be positive, got side={side}, scale={scale}")
    cx, cy = float(center[0]), float(center[1])
    k = float(out_size) / float(side) * float(scale)
    theta = math.radians(float(rotation_deg))
    c, s = math.cos(theta), math.sin(theta)
    linear = k * np.array([[c, s], [-s, c]], dtype=np.float64)
    if flip:
        linear[0] *= -1.0
    half = (float(out_size) - 1.0) / 2.0
    offset = np.array([half + float(shift[0]), half + float(shift[1])], dtype=np.float64)
    m = np.empty((2, 3), dtype=np.float64)
    m[:, :2] = linear
    m[:, 2] = offset - linear @ np.array([cx, cy], dtype=np.float64)
    return m


def transform_points(points: np.ndarray, m: np.ndarray) -> np.ndarray:
    """Apply affine ``m`` ((2, 3), or (..., 2, 3) broadcasting over the points' leading dimensions).

    Args:
        points: (..., N, 2) ``x, y``; NaN (missing) points stay NaN.
    Returns:
        (..., N, 2) float64.
    """
    pts = np.asarray(points, dtype=np.float64)
    m = np.asarray(m, dtype=np.float64)
    return np.einsum("...ij,...nj->...ni", m[..., :2], pts) + m[..., None, :, 2]


def _source_roi(m: np.ndarray, out_size: int, margin: float, shape: tuple[int, int]):
    """``x0, y0, x1, y1`` (end exclusive) of the source pixels a crop reads, clipped; None if empty."""
    inv = cv2.invertAffineTransform(np.asarray(m, dtype=np.float64))
    e = float(out_size) - 0.5
    corners = transform_points(np.array([[-0.5, -0.5], [e, -0.5], [-0.5, e], [e, e]]), inv)
    lo = np.floor(corners.min(axis=0) - margin)
    hi = np.ceil(corners.max(axis=0) + margin) + 1
    h, w = shape
    x0, y0 = int(max(lo[0], 0)), int(max(lo[1], 0))
    x1, y1 = int(min(hi[0], w)), int(min(hi[1], h))
    if x1 <= x0 or y1 <= y0:
        return None
    return x0, y0, x1, y1


def warp_image(
    image: np.ndarray,
    m: np.ndarray,
    out_size: int,
    border_value: float = 0,
    antialias: bool = True,
) -> np.ndarray:
    """The ``out_size x out_size`` crop ``cv2.warpAffine(image, m, ...)``: bilinear, constant border.

    With ``antialias`` and a crop that shrinks the image by 2x or more, the source region the crop
    reads is first reduced with ``cv2.pyrDown`` (Gaussian filter + exact 2:1 decimation, no
    interpolation: pyramid pixel ``i`` is centred on source pixel ``2 i``) and ``m`` is rescaled to
    match, so points map exactly as with ``m`` and there is still a single interpolation. This both
    avoids aliasing and makes large images cheap to crop.

    Args:
        image: (H, W) or (H, W, C) array (uint8 or float32).
        m: (2, 3) original -> crop affine.
        border_value: the value of every channel outside the image.
    Returns:
        (S, S) or (S, S, C) array of the image's dtype.
    """
    m = np.asarray(m, dtype=np.float64)
    size = (int(out_size), int(out_size))
    channels = image.shape[2:]
    if antialias:
        k = math.sqrt(abs(float(np.linalg.det(m[:, :2]))))  # output pixels per source pixel
        levels = int(math.floor(math.log2(1.0 / k) + 1e-9)) if 0 < k <= 0.5 else 0
        if levels > 0:
            step = 2**levels
            roi = _source_roi(m, out_size, margin=3.0 * step + 2.0, shape=image.shape[:2])
            if roi is None:  # the crop lies entirely outside the image
                return np.full(size[::-1] + channels, border_value, dtype=image.dtype)
            x0, y0, x1, y1 = roi
            image = image[y0:y1, x0:x1]
            done = 0
            while done < levels and min(image.shape[:2]) >= 2:
                image = cv2.pyrDown(image)
                done += 1
            linear = m[:, :2]
            m = np.concatenate([linear * 2**done, (m[:, 2] + linear @ np.array([x0, y0], float))[:, None]], 1)
    out = cv2.warpAffine(
        image,
        m,
        size,
        flags=cv2.INTER_LINEAR,
        borderMode=cv2.BORDER_CONSTANT,
        borderValue=(float(border_value),) * 4,
    )
    return out.reshape(size[::-1] + channels)  # OpenCV drops a trailing channel of 1


def crop_square(box, rule: dict) -> tuple[float, float, float]:
    """The square crop region of a face box under a stored crop rule (``checkpoint["inference"]["crop"]``).

    Rules (``rule["kind"]``):
        ``authors``: the authors' WFLW crop (their ``convert_WFLW.py`` + data loader): box coordinates
            truncated to integers (``integer``, default True), each side padded by ``int(pad * w / 2)``
            / ``int(pad * h / 2)`` (``pad`` 0.05, so w' ~ 1.05 w) with the left / top edge clamped at 0,
            then a square of side ``factor * (w' + h')`` (``factor`` 0.64 = 0.8 x 200 / 250) about the
            padded box's centre.

    Args:
        box: ``x0, y0, x1, y1`` in original pixels.
        rule: the rule's dict.
    Returns:
        ``(cx, cy, side)`` in original pixels, for :func:`awing.data.crop.crop_matrix`.
    Raises:
        ValueError: an unknown rule, or an empty / non-finite box.
    """
    kind = rule.get("kind") if isinstance(rule, dict) else None
    if kind != "authors":
        raise ValueError(f"unknown crop rule {rule!r}; known kinds: 'authors'")
    x0, y0, x1, y1 = (float(v) for v in box)
    if not all(math.isfinite(v) for v in (x0, y0, x1, y1)) or not (x1 > x0 and y1 > y0):
        raise ValueError(f"cannot crop an empty or non-finite box {(x0, y0, x1, y1)}")
    pad, factor = float(rule.get("pad", 0.05)), float(rule.get("factor", 0.64))
    if rule.get("integer", True):
        x0, y0, x1, y1 = (float(int(v)) for v in (x0, y0, x1, y1))
        px, py = int(pad * (x1 - x0) / 2), int(pad * (y1 - y0) / 2)
    else:
        px, py = pad * (x1 - x0) / 2, pad * (y1 - y0) / 2
    if rule.get("clamp", True):
        x0, y0 = max(0.0, x0 - px), max(0.0, y0 - py)
    else:
        x0, y0 = x0 - px, y0 - py
    x1, y1 = x1 + px, y1 + py
    side = factor * ((x1 - x0) + (y1 - y0))
    if not side > 0:
        raise ValueError(f"cannot crop an empty box {(x0, y0, x1, y1)}")
    return (x0 + x1) / 2.0, (y0 + y1) / 2.0, side


def face_square(box, enlarge: float = 0.0, rule: dict | None = None) -> tuple[float, float, float]:
    """The crop region of a face box: a stored crop rule's (:func:`crop_square`) when the model carries
    one, else :func:`square_box` enlarged by ``enlarge``. Returns ``(cx, cy, side)``, original pixels."""
    return crop_square(box, rule) if rule else square_box(box, enlarge)


def landmark_crop_box(points, side: float | None = None) -> np.ndarray | None:
    """The box a face's next crop is built from, around its current points: the second pass of
    ``FaceAligner(refine=...)`` and each followed frame of video tracking use this one rule.

    Args:
        points: (N, 2) ``x, y`` in pixels, NaN where missing.
        side: None: the points' landmark box (:func:`awing.data.sample.landmark_box`) itself, for a model
            trained on landmark-box crops (the caller enlarges it by the training enlargement); a length
            in pixels: the square of that side about the landmark box's centre (the caller enlarges it as
            it did the detector's box).
    Returns:
        (4,) float64 ``x0, y0, x1, y1``, or None when no point is finite or the box is empty or not finite.
    """
    try:
        box = landmark_box(points).astype(np.float64)
    except ValueError:  # no finite point
        return None
    if side is not None:
        centre, half = (box[:2] + box[2:]) / 2, float(side) / 2
        box = np.concatenate([centre - half, centre + half])
    return box if box[2] > box[0] and box[3] > box[1] and np.isfinite(box).all() else None
