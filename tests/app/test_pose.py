"""Head pose (issue 15): the 3-D mean faces are the generator's, the angles match synthetic faces' known pose."""

from __future__ import annotations

import numpy as np
import pytest

from awing.app.pose import _generate, head_pose, mean_face_3d, pose_of_points, rotation_angles
from awing.data.synthetic import make_example
from awing.data.synthetic.geometry import face_points, project, rotation, to_layout
from awing.schemas import load_schema, map_points, point_mapping


def test_stored_mean_faces_are_the_generators_neutral_face():
    for name, rows in _generate().items():
        np.testing.assert_allclose(mean_face_3d(name), rows, atol=1e-4)
    # mapped layouts: each point the mean of its sources
    w = point_mapping("w300_68", "mtfl5")
    np.testing.assert_allclose(mean_face_3d("mtfl5"), w @ mean_face_3d("w300_68"))
    assert mean_face_3d("fdd14").shape == (14, 3)
    assert mean_face_3d("lsp14") is None  # a body layout: no mean face, no pose


@pytest.mark.parametrize("angles", [(0, 0, 0), (30, 0, 0), (0, 20, 0), (0, 0, 25), (-35, -15, 10)])
def test_rotation_angles_invert_the_generators_rotation(angles):
    np.testing.assert_allclose(rotation_angles(rotation(*angles)), angles, atol=1e-9)


@pytest.mark.parametrize("angles", [(25, 0, 0), (-25, 0, 0), (0, 15, 0), (0, -15, 0), (0, 0, 20), (20, -10, -15)])
def test_exact_projection_gives_the_pose_back_with_its_signs(angles):
    face = to_layout(face_points(), "w300_68")
    # the generator's projection as the renderer does it, 32 px per unit, 8 units away: the focal length
    # is 8 * 32 = 256 px, head_pose's max(width, height)
    pts = project(face, rotation(*angles), cam_dist=8.0) * 32.0 + 127.5
    est = head_pose(pts, mean_face_3d("w300_68"), (256, 256))
    np.testing.assert_allclose(est, angles, atol=1.5)


def test_synthetic_faces_known_pose_from_ground_truth_landmarks():
    examples = [make_example(0, "val", i, 256, "w300_68") for i in range(40)]
    truth = np.array([[r["head_pose"][k] for k in ("yaw", "pitch", "roll")] for _, r in examples])
    assert np.abs(truth[:, 0]).max() > 25  # the set has real head turns
    for schema, limit in (("w300_68", (4.5, 5.5, 1.5)), ("fdd14", (5.0, 6.0, 1.5)), ("mtfl5", (5.5, 6.0, 2.0))):
        w = point_mapping("w300_68", schema)
        est = np.array(
            [head_pose(map_points(r["landmarks"], w), mean_face_3d(schema), (256, 256)) for _, r in examples]
        )
        err = np.abs(est - truth).mean(axis=0)
        assert (err < limit).all(), (schema, err)
        # signs: estimates follow the truth (a flipped sign would give a negative slope)
        for k in range(3):
            assert np.corrcoef(est[:, k], truth[:, k])[0, 1] > 0.9, (schema, k)


def test_too_few_points_and_missing_points():
    face = mean_face_3d("mtfl5")
    pts = np.full((5, 2), np.nan)
    assert head_pose(pts, face, (100, 100)) is None
    img, rec = make_example(0, "val", 3, 256, "w300_68")
    pts = rec["landmarks"].astype(np.float64).copy()
    pts[:10] = np.nan  # half the contour missing: still a pose
    assert pose_of_points(pts, "w300_68", (256, 256)) is not None
    with pytest.raises(ValueError):
        head_pose(np.zeros((4, 2)), face, (100, 100))


def test_api_faces_carry_a_pose(tmp_path):
    from awing import FaceAligner

    aligner = FaceAligner("fdd14-1hg-tiny", device="cpu")
    img, rec = make_example(0, "val", 0, 256, "w300_68")
    (face,) = aligner.predict_crops(img, [rec["box"]], color="BGR")
    assert set(face.pose) == {"yaw", "pitch", "roll"}
    d = face.to_dict()
    assert d["pose"] == face.pose and {"box", "score", "points", "confidence"} <= set(d)


def test_the_pose_is_fitted_when_first_read_and_kept():
    """FaceAligner's faces hold a pending fit (about 0.5 ms a face, spent only when read); a given pose or
    the default None is returned as given."""
    from awing import FaceAligner
    from awing.app.api import FaceLandmarks

    aligner = FaceAligner("fdd14-1hg-tiny", device="cpu", refine="always")
    img, rec = make_example(0, "val", 0, 256, "w300_68")
    (face,) = aligner.predict_crops(img, [rec["box"]], color="BGR")
    assert callable(vars(face)["_pose"])  # not fitted yet
    expected = pose_of_points(face.landmarks, aligner.output_schema, (256, 256))
    assert face.pose == expected and vars(face)["_pose"] == expected  # fitted on reading, then kept
    (refined,) = aligner.refine_faces(np.ascontiguousarray(img[..., ::-1]), [face])  # the second pass's face:
    assert callable(vars(refined)["_pose"]) and not np.array_equal(refined.landmarks, face.landmarks)  # pending
    assert refined.pose == pose_of_points(refined.landmarks, aligner.output_schema, (256, 256))  # its own points'
    s = load_schema("w300_68")
    given = FaceLandmarks(np.zeros(4), np.zeros((68, 2)), np.ones(68), s.point_names, s.name, pose={"yaw": 1.0})
    unset = FaceLandmarks(np.zeros(4), np.zeros((68, 2)), np.ones(68), (), "x")
    assert given.pose == {"yaw": 1.0} and unset.pose is None
