"""Issue 13: ``FaceAligner(refine=...)``, a second pass cropped around the first pass's landmarks; issue 23:
``refine="auto"`` runs it only where its crop and the first pass's disagree (:func:`second_pass_pays`)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from awing.app.api import (
    REFINE_MAX_SHIFT,
    REFINE_MIN_IOU,
    FaceAligner,
    FaceLandmarks,
    refine_shift,
    second_pass_pays,
    square_to_box,
)
from awing.detect import FixedBoxes

BOX = np.array([[40.0, 30.0, 150.0, 150.0]], np.float32)


@pytest.fixture(scope="module")
def image() -> np.ndarray:
    rng = np.random.default_rng(1)
    img = rng.integers(0, 255, (200, 190, 3), dtype=np.uint8)
    img[60:130, 70:120] = 200  # something face-sized to look at
    return img


def _spy(aligner: FaceAligner) -> list:
    calls = []
    original = aligner.predict_crops

    def predict_crops(image, boxes, color=None, enlarge=None):
        out = original(image, boxes, color=color, enlarge=enlarge)
        calls.append({"boxes": np.asarray(boxes, np.float64).copy(), "enlarge": enlarge, "color": color, "out": out})
        return out

    aligner.predict_crops = predict_crops
    return calls


def _landmark_box(points: np.ndarray) -> np.ndarray:
    return np.concatenate([points.min(axis=0), points.max(axis=0)]).astype(np.float64)


def test_refine_auto_is_on_for_landmark_box_models_only():
    # fdd14 was trained on FDD landmark boxes x2 (the 68-point models too, but their files say never: below)
    assert FaceAligner("fdd14-1hg-tiny", device="cpu", detector="full").refine == "auto"
    assert FaceAligner("mtfl5-1hg-tiny", device="cpu", detector="full").refine == "never"  # whole 80 px images
    assert FaceAligner("mtfl5-1hg-tiny", device="cpu", detector="full", refine="always").refine == "always"
    for bad in ("sometimes", 1, None):
        with pytest.raises(ValueError, match="refine"):
            FaceAligner("fdd14-1hg-tiny", device="cpu", detector="full", refine=bad)
    for bad in (0, 1.5, float("nan"), True):
        with pytest.raises(ValueError, match="refine_min_iou"):
            FaceAligner("fdd14-1hg-tiny", device="cpu", detector="full", refine_min_iou=bad)


def test_a_model_file_can_turn_auto_refinement_off(tmp_path):
    """``awing export --refine never`` records it; FaceAligner(refine="auto") then runs one pass, and an explicit
    "always" still refines; a malformed stored value is a clear error."""
    from awing.app.cli import main
    from awing.core.checkpoint import load_checkpoint, save_checkpoint

    out = tmp_path / "m.pt"
    export = ["export", "fdd14-1hg-tiny", "--format", "weights", "--out", str(out)]  # a landmark-box model
    assert main([*export, "--refine", "never"]) == 0
    assert load_checkpoint(out)["inference"]["refine"] == "never"
    assert FaceAligner(str(out), device="cpu", detector="full").refine == "never"
    assert FaceAligner(str(out), device="cpu", detector="full", refine="always").refine == "always"
    assert main([*export, "--refine", "auto"]) == 0
    assert FaceAligner(str(out), device="cpu", detector="full").refine == "auto"
    bad = load_checkpoint(out)
    save_checkpoint(out, {**bad, "inference": {**bad["inference"], "refine": "sometimes"}})
    with pytest.raises(ValueError, match="inference 'refine' must be one of"):
        FaceAligner(str(out), device="cpu", detector="full")


def test_a_model_file_can_turn_the_flip_test_on_by_default(tmp_path):
    """``awing export --flip-test`` records it; FaceAligner() then runs the mirrored crop too, an explicit
    ``flip_test=False`` does not, and ``awing predict --no-flip-test`` passes that on."""
    import argparse

    from awing.app.cli import main
    from awing.app.predict import _aligner, add_arguments
    from awing.core.checkpoint import load_checkpoint, save_checkpoint

    out = tmp_path / "m.pt"
    export = ["export", "fdd14-1hg-tiny", "--format", "weights", "--out", str(out)]
    assert FaceAligner("fdd14-1hg-tiny", device="cpu", detector="full").flip_test is False  # no hint: off
    assert main([*export, "--flip-test"]) == 0
    assert load_checkpoint(out)["inference"]["flip_test"] is True
    on = FaceAligner(str(out), device="cpu", detector="full")
    assert on.flip_test and on.flip_permutation is not None and ", flip test" in repr(on)
    off = FaceAligner(str(out), device="cpu", detector="full", flip_test=False)
    assert not off.flip_test and off.flip_permutation is None
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    for flags, expected in (([], True), (["--no-flip-test"], False), (["--flip-test"], True)):
        args = parser.parse_args(["x.jpg", "--model", str(out), "--device", "cpu", *flags])
        assert _aligner(args, "full").flip_test is expected
    assert main([*export, "--no-flip-test"]) == 0
    assert FaceAligner(str(out), device="cpu", detector="full").flip_test is False
    bad = load_checkpoint(out)
    save_checkpoint(out, {**bad, "inference": {**bad["inference"], "flip_test": "yes"}})
    with pytest.raises(ValueError, match="inference 'flip_test' must be true or false"):
        FaceAligner(str(out), device="cpu", detector="full")


@pytest.mark.parametrize("name", ["w300-1hg-tiny-128", "w300-1hg-96", "w300-1hg-tiny"])
def test_the_68_point_models_say_their_second_pass_does_not_pay(name):
    """benchmarks/second_pass.py on each (docs/RESULTS.md, "Second pass: where it pays"; their cards): the files
    say ``refine: never``, over the crop rule's ``auto``; ``refine="always"`` still refines."""
    assert FaceAligner(name, device="cpu", detector="full").refine == "never"
    assert FaceAligner(name, device="cpu", detector="full", refine="always").refine == "always"


@pytest.mark.parametrize("given, mode", [(True, "always"), ("always", "always"), (False, "never"), ("never", "never")])
def test_true_and_false_are_always_and_never(given, mode):
    assert FaceAligner("fdd14-1hg-tiny", device="cpu", detector="full", refine=given).refine == mode


def test_second_pass_pays_where_the_two_crops_disagree():
    crop = np.array([0.0, 0.0, 100.0, 100.0])
    assert not second_pass_pays(crop, crop)  # the same crop: the second pass would read the same pixels
    assert not second_pass_pays(crop, crop + 2)  # 2 px off: IoU 0.92
    assert second_pass_pays(crop, crop + 20)  # 20 px off: IoU 0.47
    assert second_pass_pays(crop, np.array([10.0, 10.0, 90.0, 90.0]))  # 0.8x the side about one centre: 0.64
    assert second_pass_pays(crop, np.array([-15.0, -15.0, 115.0, 115.0]))  # 1.3x: IoU 0.59
    assert not second_pass_pays(crop, np.array([-2.0, -2.0, 102.0, 102.0]))  # 1.04x: IoU 0.92
    assert not second_pass_pays(crop, None) and not second_pass_pays(crop, np.full(4, np.nan))  # no second crop
    off = np.array([10.0, 0.0, 110.0, 100.0])  # IoU 90 / 110 = 0.818
    assert not second_pass_pays(crop, off, min_iou=0.8) and second_pass_pays(crop, off, min_iou=0.85)
    assert 0 < REFINE_MIN_IOU <= 1
    np.testing.assert_allclose(square_to_box((50.0, 40.0, 20.0)), [40, 30, 60, 50])


def test_auto_runs_the_second_pass_only_on_faces_whose_crops_disagree(image):
    boxes = np.array([[40.0, 30.0, 150.0, 150.0], [10.0, 20.0, 60.0, 70.0]], np.float32)
    aligner = FaceAligner("fdd14-1hg-tiny", device="cpu", detector=FixedBoxes(boxes), refine="auto")
    first_only = FaceAligner("fdd14-1hg-tiny", device="cpu", detector=FixedBoxes(boxes), refine="never")
    crop = np.array([0.0, 0.0, 100.0, 100.0])
    agree = {float(boxes[0, 0]): (crop, crop + 1), float(boxes[1, 0]): (crop, crop + 30)}  # by the face's box
    aligner.crop_squares = lambda face: agree[float(face.box[0])]
    calls = _spy(aligner)
    faces, first = aligner.predict(image, color="RGB"), first_only.predict(image, color="RGB")
    (call,) = calls
    assert len(call["boxes"]) == 1  # only the second face's crops disagree
    np.testing.assert_allclose(call["boxes"][0], aligner.refine_box(first[1]), atol=1e-4)
    assert np.array_equal(faces[0].landmarks, first[0].landmarks)  # the first face keeps its first pass


def test_crop_squares_are_the_first_crop_and_the_second(image):
    """``crop_squares``: the detector box's crop as the first pass made it, and the landmark-box crop the
    second pass would take (fdd14: its landmark box enlarged by 1.0, its training crop)."""
    from awing.data.crop import square_box

    aligner = FaceAligner("fdd14-1hg-tiny", device="cpu", detector=FixedBoxes(BOX))
    face = aligner.predict(image, color="RGB")[0]
    first, second = aligner.crop_squares(face)
    cx, cy, side = square_box(BOX[0], aligner.enlarge)
    length = 120.0
    centre = (cx + aligner.offset[0] * length, cy + aligner.offset[1] * length)
    np.testing.assert_allclose(first, square_to_box((*centre, side)), atol=1e-3)
    np.testing.assert_allclose(second, square_to_box(square_box(_landmark_box(face.landmarks), 1.0)), atol=1e-3)


def test_refine_off_is_the_single_pass(image):
    aligner = FaceAligner("fdd14-1hg-tiny", device="cpu", detector=FixedBoxes(BOX), fast=False, refine=False)
    assert aligner.refine == "never"
    calls = _spy(aligner)
    faces = aligner.predict(image, color="RGB")
    assert calls == [] and len(faces) == 1
    single = aligner._align([image], [BOX], [np.ones(1, np.float32)], aligner.enlarge, aligner.offset)[0][0]
    assert np.array_equal(faces[0].landmarks, single.landmarks)


def test_second_pass_crops_the_first_pass_landmark_box(image):
    """The shipped FDD model was trained on FDD landmark boxes x2 (data.enlarge 1.0): the second crop
    is its first-pass landmark box, enlarged by 1.0."""
    one = FaceAligner("fdd14-1hg-tiny", device="cpu", detector=FixedBoxes(BOX), fast=False, refine=False)
    two = FaceAligner("fdd14-1hg-tiny", device="cpu", detector=FixedBoxes(BOX), fast=False, refine=True)
    assert two.landmark_crop_enlarge == 1.0
    first = one.predict(image, color="RGB")[0]
    calls = _spy(two)
    faces = two.predict(image, color="RGB")
    assert len(calls) == 1 and len(faces) == 1
    (call,) = calls
    assert call["enlarge"] == 1.0
    np.testing.assert_allclose(call["boxes"], _landmark_box(first.landmarks)[None], atol=1e-4)
    face = faces[0]
    assert np.array_equal(face.landmarks, call["out"][0].landmarks)  # the second pass's points
    assert np.array_equal(face.confidence, call["out"][0].confidence)
    assert np.array_equal(face.box, BOX[0]) and face.score == first.score  # the detector's box and score


def test_second_pass_of_a_model_without_landmark_box_crops(image, tiny_fdd_checkpoint):
    """A model whose training crops are unknown: the detector box's side about the landmark box's centre,
    with the aligner's own enlargement (the box / landmark ratio of the first pass)."""
    one = FaceAligner(tiny_fdd_checkpoint, device="cpu", detector=FixedBoxes(BOX), fast=False)
    two = FaceAligner(tiny_fdd_checkpoint, device="cpu", detector=FixedBoxes(BOX), fast=False, refine=True)
    assert two.landmark_crop_enlarge is None
    first = one.predict(image, color="RGB")[0]
    calls = _spy(two)
    two.predict(image, color="RGB")
    (call,) = calls
    assert call["enlarge"] == two.enlarge
    lb = _landmark_box(first.landmarks)
    centre = (lb[:2] + lb[2:]) / 2
    half = max(BOX[0, 2] - BOX[0, 0], BOX[0, 3] - BOX[0, 1]) / 2  # the detector box's longer side (120)
    np.testing.assert_allclose(call["boxes"][0], np.concatenate([centre - half, centre + half]), atol=1e-3)


def test_predict_crops_is_one_pass_even_with_refine(image):
    aligner = FaceAligner("fdd14-1hg-tiny", device="cpu", detector=FixedBoxes(BOX), fast=False, refine=True)
    single = FaceAligner("fdd14-1hg-tiny", device="cpu", detector=FixedBoxes(BOX), fast=False)
    a, b = aligner.predict_crops(image, BOX, color="RGB"), single.predict_crops(image, BOX, color="RGB")
    assert np.array_equal(a[0].landmarks, b[0].landmarks)


@pytest.mark.parametrize(
    "moved, max_shift, kept",
    [
        (0.2 * REFINE_MAX_SHIFT, REFINE_MAX_SHIFT, "second"),
        (2.0 * REFINE_MAX_SHIFT, REFINE_MAX_SHIFT, "first"),
        (2.0 * REFINE_MAX_SHIFT, 3.0 * REFINE_MAX_SHIFT, "second"),  # the caller's own cut
        (2.0 * REFINE_MAX_SHIFT, float("inf"), "second"),  # inf: always keep the second pass
    ],
)
def test_a_second_pass_that_moves_the_points_far_is_dropped(image, moved, max_shift, kept):
    """A second pass that moved the points by more than ``refine_max_shift`` of the box side means the
    first failed; the face keeps its first-pass points and confidences."""
    aligner = FaceAligner(
        "fdd14-1hg-tiny", device="cpu", detector=FixedBoxes(BOX), fast=False, refine=True, refine_max_shift=max_shift
    )
    one_pass = FaceAligner("fdd14-1hg-tiny", device="cpu", detector=FixedBoxes(BOX), fast=False, refine=False)
    first = one_pass.predict(image, color="RGB")[0]
    side = 120.0  # BOX's longer side
    shift = np.array([moved * side / np.sqrt(2)] * 2, np.float32)  # moved * side along the diagonal

    def predict_crops(image, boxes, color="RGB", enlarge=None):
        return [dataclasses.replace(first, landmarks=first.landmarks + shift, confidence=first.confidence / 2)]

    aligner.predict_crops = predict_crops
    face = aligner.predict(image, color="RGB")[0]
    second = dataclasses.replace(first, landmarks=first.landmarks + shift)
    assert refine_shift(first, second) == pytest.approx(moved, rel=1e-4)
    expected = first.landmarks + shift if kept == "second" else first.landmarks
    np.testing.assert_allclose(face.landmarks, expected, atol=1e-4)
    assert np.array_equal(face.confidence, first.confidence / 2 if kept == "second" else first.confidence)


def test_refine_shift_skips_missing_points_and_is_inf_without_any():
    box = np.array([0, 0, 100, 50], np.float32)
    a = FaceLandmarks(box, np.array([[10, 10], [20, 20]], np.float32), np.ones(2, np.float32), ("a", "b"), "x")
    b = dataclasses.replace(a, landmarks=np.array([[13, 14], [np.nan, np.nan]], np.float32))
    assert refine_shift(a, b) == pytest.approx(5 / 100)  # only the first point: 5 px over a 100 px side
    assert refine_shift(a, dataclasses.replace(a, landmarks=np.full((2, 2), np.nan, np.float32))) == float("inf")


@pytest.mark.parametrize("bad", [0, -0.1, float("nan"), True, "0.05", None])
def test_refine_max_shift_must_be_a_positive_number(bad):
    with pytest.raises(ValueError, match="refine_max_shift"):
        FaceAligner("fdd14-1hg-tiny", device="cpu", detector=FixedBoxes(BOX), refine_max_shift=bad)


@pytest.mark.parametrize("model", ["fdd14-1hg-tiny", "mtfl5-1hg-tiny"])
def test_the_second_pass_and_video_tracking_crop_by_one_rule(image, model):
    """``refine_box`` and ``FaceTracker.crop_box`` are the same rule (awing.data.crop.landmark_crop_box): the
    landmark box for a landmark-box model, else the detector box's side about the landmark box's centre."""
    from awing.app.tracking import FaceTracker
    from awing.data.crop import landmark_crop_box

    aligner = FaceAligner(model, device="cpu", detector=FixedBoxes(BOX), fast=False, refine=True)
    face = aligner.predict(image, color="RGB")[0]
    tracker = FaceTracker(aligner)
    lb = _landmark_box(face.landmarks)
    scale = 120.0 / max(lb[2] - lb[0], lb[3] - lb[1])  # rule 3's k: BOX's longer side / the landmark box's
    np.testing.assert_allclose(aligner.refine_box(face), tracker.crop_box(face.landmarks, scale), atol=1e-4)
    expected = lb if aligner.landmark_crop_enlarge is not None else landmark_crop_box(face.landmarks, 120.0)
    np.testing.assert_allclose(aligner.refine_box(face), expected, atol=1e-4)
    assert landmark_crop_box(np.full((3, 2), np.nan)) is None and landmark_crop_box([[1, 1], [1, 5]]) is None


def test_the_second_pass_states_its_colour_order(image):
    """The second pass re-crops the RGB image it was given and says so: only the caller's own unstated
    order warns (once), and a stated one not at all."""
    import warnings

    aligner = FaceAligner("fdd14-1hg-tiny", device="cpu", detector=FixedBoxes(BOX), fast=False, refine=True)
    calls = _spy(aligner)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        aligner.predict(image)
    assert len(calls) == 1 and calls[0]["color"] == "RGB"  # the second pass
    assert [str(w.message).split(":")[0] for w in caught] == ["a colour numpy array was passed without color="]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        aligner.predict(image[..., ::-1].copy(), color="BGR")
        aligner.predict_batch([image, image], color="RGB")
