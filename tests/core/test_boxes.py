"""awing.core.boxes: the one place boxes are measured against each other (IoU, NMS)."""

from __future__ import annotations

import numpy as np
import pytest

from awing.core.boxes import box_area, box_intersection, box_iou, empty_detections, nms


def _greedy_nms(boxes: np.ndarray, scores: np.ndarray, iou: float) -> list[int]:
    """The reference: greedy suppression written out, best score first, ties in index order."""
    order = list(np.argsort(-scores, kind="stable"))
    keep: list[int] = []
    for i in order:
        if all(box_iou(boxes[i], boxes[k])[0, 0] <= iou for k in keep):
            keep.append(int(i))
    return keep


def test_iou_area_and_intersection():
    a = np.array([[0, 0, 2, 2]], float)
    b = np.array([[1, 0, 3, 2], [5, 5, 6, 6], [0, 0, 2, 2]], float)
    np.testing.assert_allclose(box_intersection(a, b), [[2, 0, 4]])
    np.testing.assert_allclose(box_iou(a, b), [[1 / 3, 0, 1]])
    np.testing.assert_allclose(box_area(b), [4, 1, 4])
    assert box_iou(a[0], b).shape == (1, 3)  # a single (4,) box is one row
    assert box_iou([[0, 0, 0, 0]], [[0, 0, 0, 0]])[0, 0] == 0.0  # an empty union
    assert box_iou([[np.nan, 0, 1, 1]], a)[0, 0] == 0.0  # undefined


def test_empty_detections():
    boxes, scores = empty_detections()
    assert boxes.shape == (0, 4) and scores.shape == (0,) and boxes.dtype == scores.dtype == np.float32


@pytest.mark.parametrize("seed", range(5))
def test_nms_is_greedy_suppression(seed):
    rng = np.random.default_rng(seed)
    k = 40
    xy = rng.uniform(0, 100, (k, 2))
    boxes = np.concatenate([xy, xy + rng.uniform(1, 40, (k, 2))], 1)
    scores = np.round(rng.normal(size=k) * 3)  # negative scores and ties
    for iou in (0.1, 0.3, 0.7):
        assert nms(boxes, scores, iou).tolist() == _greedy_nms(boxes, scores, iou)


def test_nms_edge_cases():
    assert nms(np.zeros((0, 4)), np.zeros(0)).shape == (0,)
    keep = nms(np.array([[0, 0, 10, 10], [1, 1, 11, 11], [20, 20, 30, 30]], float), np.array([0.5, 0.9, 0.1]))
    assert keep.tolist() == [1, 2] and keep.dtype == np.int64
    with pytest.raises(ValueError, match="one score per box"):
        nms(np.zeros((2, 4)), np.zeros(3))
