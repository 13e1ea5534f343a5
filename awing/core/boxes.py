"""Axis-aligned boxes: area, overlap, intersection over union, non-maximum suppression.

Boxes are ``x0, y0, x1, y1`` float pixels (docs/ARCHITECTURE.md), shape (4,) or (K, 4). The one place
awing measures how boxes overlap: the detectors (:mod:`awing.detect`), video tracking and the app use
these functions.
"""

from __future__ import annotations

import cv2
import numpy as np

__all__ = ["empty_detections", "box_area", "box_intersection", "box_iou", "nms"]


def empty_detections() -> tuple[np.ndarray, np.ndarray]:
    """What a detector returns when it finds no face: boxes (0, 4) float32 and scores (0,) float32."""
    return np.zeros((0, 4), np.float32), np.zeros((0,), np.float32)


def box_area(boxes) -> np.ndarray:
    """(...,) float64 area of (..., 4) boxes; an inverted box (x1 < x0 or y1 < y0) has negative area."""
    b = np.asarray(boxes, np.float64)
    return (b[..., 2] - b[..., 0]) * (b[..., 3] - b[..., 1])


def box_intersection(a, b) -> np.ndarray:
    """(K, M) float64 area of the intersection of each of (K, 4) boxes ``a`` with each of (M, 4) ``b``
    (0 where they do not overlap)."""
    a = np.asarray(a, np.float64).reshape(-1, 1, 4)
    b = np.asarray(b, np.float64).reshape(1, -1, 4)
    w = np.clip(np.minimum(a[..., 2], b[..., 2]) - np.maximum(a[..., 0], b[..., 0]), 0, None)
    h = np.clip(np.minimum(a[..., 3], b[..., 3]) - np.maximum(a[..., 1], b[..., 1]), 0, None)
    return w * h


def box_iou(a, b) -> np.ndarray:
    """(K, M) float64 intersection over union of (K, 4) boxes ``a`` and (M, 4) boxes ``b``.

    0 where the union is empty (two zero-area boxes) or undefined (NaN coordinates).
    """
    a = np.asarray(a, np.float64).reshape(-1, 1, 4)
    b = np.asarray(b, np.float64).reshape(1, -1, 4)
    inter = box_intersection(a, b)
    union = box_area(a) + box_area(b) - inter
    return np.where(union > 0, inter / np.where(union > 0, union, 1.0), 0.0)


def nms(boxes, scores, iou: float = 0.3) -> np.ndarray:
    """Indices of the boxes kept by greedy non-maximum suppression (OpenCV's ``cv2.dnn.NMSBoxes``).

    Boxes are visited by decreasing score (equal scores in index order); a box whose IoU with a kept box
    is above ``iou`` is dropped. Any finite scores work (negative ones too: only their order is used).

    Args:
        boxes: (K, 4) ``x0, y0, x1, y1`` with positive width and height.
        scores: (K,) finite.
        iou: the overlap above which a box is dropped, in [0, 1].
    Returns:
        (k,) int64 indices into ``boxes``, best score first.
    """
    boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
    scores = np.asarray(scores, np.float64).reshape(-1)
    if len(boxes) != len(scores):
        raise ValueError(f"nms needs one score per box, got {len(boxes)} boxes and {len(scores)} scores")
    if len(boxes) == 0:
        return np.zeros((0,), np.int64)
    # NMSBoxes takes (x, y, w, h) boxes and float32 scores above a threshold >= 0: give it each box's rank
    # (K for the best, ..., 1), which keeps the float64 order and ties in index order exactly.
    order = np.argsort(-scores, kind="stable")
    rank = np.empty(len(scores), np.float32)
    rank[order] = np.arange(len(scores), 0, -1, dtype=np.float32)
    xywh = np.concatenate([boxes[:, :2], boxes[:, 2:] - boxes[:, :2]], axis=1)
    keep = cv2.dnn.NMSBoxes(xywh, rank, 0.0, float(iou))
    return np.asarray(keep, np.int64).reshape(-1)
