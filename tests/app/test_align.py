"""Aligned face crops (issue 15): the ArcFace template, and one face's crops agree under rotation and scale."""

from __future__ import annotations

import itertools

import cv2
import numpy as np
import pytest

from awing.app.align import ARCFACE_5PT, aligned_crop, alignment_matrix, five_points, template_points
from awing.app.api import FaceLandmarks
from awing.data.synthetic import make_example
from awing.schemas import load_schema, map_points, point_mapping


def _face():
    img, rec = make_example(0, "val", 7, 256, "w300_68")  # a near-frontal face (yaw 1, pitch -3, roll 0)
    big = cv2.copyMakeBorder(img, 128, 128, 128, 128, cv2.BORDER_REFLECT)
    return big, rec["landmarks"].astype(np.float64) + 128


def test_the_points_land_on_the_template():
    img, pts = _face()
    five = map_points(pts, point_mapping("w300_68", "mtfl5"))
    for size, padding in ((112, 0.0), (224, 0.0), (112, 0.25)):
        m = alignment_matrix(five, size, padding=padding)
        moved = five @ m[:, :2].T + m[:, 2]
        target = template_points(size, padding=padding)
        # a similarity cannot fit five points exactly: within a few percent of the crop
        assert np.sqrt(((moved - target) ** 2).sum(1).mean()) < 0.05 * size
        assert aligned_crop(img, five, size, padding=padding).shape == (size, size, 3)
    np.testing.assert_allclose(template_points(112), ARCFACE_5PT)
    t = template_points(112, padding=0.25)  # padding shrinks the template towards the centre
    assert np.ptp(t[:, 0]) < np.ptp(ARCFACE_5PT[:, 0]) and abs(t.mean() - 56) < abs(ARCFACE_5PT.mean() - 56) + 1


def test_crops_of_one_face_under_rotation_and_scale_are_near_identical():
    img, pts = _face()
    w = point_mapping("w300_68", "mtfl5")
    crops = []
    for angle, scale in itertools.product((-30, 0, 30), (0.7, 1.0, 1.4)):
        m = cv2.getRotationMatrix2D((256, 256), angle, scale)
        moved = cv2.warpAffine(img, m, (512, 512), flags=cv2.INTER_LINEAR)
        p = pts @ m[:, :2].T + m[:, 2]
        crops.append(aligned_crop(moved, map_points(p, w)).astype(np.float32))
    ref = crops[4]  # no rotation, scale 1
    diffs = [np.abs(c - ref).mean() for c in crops]
    assert max(diffs) < 3.0, diffs  # of 255: resampling only
    # while the unaligned images differ a lot
    other = aligned_crop(img, map_points(pts, w) + [[0, 0], [0, 0], [0, 0], [6, 6], [6, 6]]).astype(np.float32)
    assert np.abs(other - ref).mean() > 3 * max(diffs)


def test_five_points_from_any_model_layout():
    img, rec = make_example(0, "val", 2, 256, "w300_68")
    for schema in ("w300_68", "fdd14", "mtfl5"):
        s = load_schema(schema)
        pts = map_points(rec["landmarks"], point_mapping("w300_68", s))
        face = FaceLandmarks(np.zeros(4, np.float32), pts.astype(np.float32), np.ones(s.num_points, np.float32),
                             s.point_names, s.name)
        five = five_points(face)
        assert five.shape == (5, 2) and five[0, 0] < five[1, 0]  # image-left eye first, as the template
    bad = FaceLandmarks(np.zeros(4), np.zeros((14, 2)), np.ones(14), ("p",) * 14, "lsp14")
    with pytest.raises(ValueError):
        five_points(bad)
    with pytest.raises(ValueError):
        aligned_crop(img, np.full((5, 2), np.nan))
