"""Drawings (issue 15): boundary-line contours, dots sized by the face, labels, confidence colours."""

from __future__ import annotations

import dataclasses

import numpy as np

from awing.app.api import FaceLandmarks
from awing.app.predict import draw_faces
from awing.data.synthetic import make_example
from awing.schemas import load_schema, map_points, point_mapping


def _face(offset: float = 0.0, confidence: float = 1.0) -> FaceLandmarks:
    _, rec = make_example(0, "val", 7, 256, "w300_68")
    s = load_schema("fdd14")
    pts = map_points(rec["landmarks"], point_mapping("w300_68", s)).astype(np.float32) + offset
    return FaceLandmarks(rec["box"] + offset, pts, np.full(s.num_points, confidence, np.float32), s.point_names,
                         s.name, quality=0.8, pose={"yaw": 1.0, "pitch": 2.0, "roll": 3.0})


def _changed(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (a != b).any(axis=2)


def test_dot_size_follows_the_face_not_the_image():
    face = _face()
    small = np.zeros((256, 256, 3), np.uint8)
    large = np.zeros((2048, 2048, 3), np.uint8)
    a = _changed(draw_faces(small, [face], pose=False), small).sum()
    b = _changed(draw_faces(large, [face], pose=False), large).sum()
    assert abs(int(a) - int(b)) <= 0.02 * a  # the same drawing on a 64x larger image


def test_contours_follow_the_schema_lines():
    face = _face()
    img = np.zeros((256, 256, 3), np.uint8)
    with_lines = draw_faces(img, [face], lines=True, pose=False)
    without = draw_faces(img, [face], lines=False, pose=False)
    # the midpoint of the upper-lip line (points 11 -> 12) is drawn only with the lines
    mid = np.round((face.landmarks[11] + face.landmarks[12]) / 2).astype(int)
    assert with_lines[mid[1], mid[0]].any() and not without[mid[1], mid[0]].any()
    assert _changed(with_lines, without).sum() > 50


def test_labels_and_confidence_colours():
    img = np.zeros((256, 256, 3), np.uint8)
    plain = draw_faces(img, [_face()], lines=False, pose=False)
    labelled = draw_faces(img, [_face()], labels=True, lines=False, pose=False)
    assert _changed(labelled, plain).sum() > 100
    x, y = np.round(_face().landmarks[10]).astype(int)
    sure = draw_faces(img, [_face(confidence=1.0)], confidence_colours=True, lines=False, pose=False)[y, x]
    guess = draw_faces(img, [_face(confidence=0.0)], confidence_colours=True, lines=False, pose=False)[y, x]
    assert sure[1] > 200 and sure[2] < 50  # green
    assert guess[2] > 200 and guess[1] < 50  # red
    with_pose = draw_faces(img, [_face()], lines=False)
    assert _changed(with_pose, plain).sum() > 20  # the yaw/pitch/roll text


def test_a_rejected_face_is_a_plain_grey_box_without_points():
    """Issue 25: a box whose landmark score says it is no face is not drawn with made-up points and contours."""
    img = np.zeros((256, 256, 3), np.uint8)
    face = _face()
    rejected = dataclasses.replace(face, quality=0.1)
    assert face.is_face and not rejected.is_face
    drawn = draw_faces(img, [rejected], labels=True)
    changed = _changed(drawn, img)
    assert changed.sum() > 50  # the box and its "not a face" text
    b, g, r = (drawn[..., c][changed].astype(int) for c in range(3))
    assert (b == g).all() and (g == r).all()  # grey only: no red points, yellow lines or green box
    x, y = np.round(face.landmarks).astype(int).T
    assert not changed[y, x].any()  # nothing at the points
    assert _changed(draw_faces(img, [face]), img)[y, x].all()  # a face keeps its points
