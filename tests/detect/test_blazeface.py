"""The BlazeFace detector (MediaPipe's models, on its default runtime: ONNX Runtime where installed, else
OpenCV's DNN): anchors, real and synthetic faces, blank images, its options, the errors for a missing model
file, and its still-photo and video modes. The runtimes against each other: test_blazeface_runtime.py."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

import awing.detect.blazeface as blazeface
from awing.core.images import load_image
from awing.detect import DETECTORS, BlazeFaceDetector, detector_enlarge, get_detector, video_mode
from awing.detect.blazeface import (
    BLAZEFACE_ENLARGE,
    BLAZEFACE_MODELS,
    MODEL_DIR,
    merge_detections,
    ssd_anchors,
    weighted_nms,
)

from shared_data import SHARED, need

FDD = SHARED / "fdd14"
EXAMPLE = Path(__file__).resolve().parents[2] / "docs" / "assets" / "example.jpg"


@pytest.fixture(scope="module")
def short():
    return BlazeFaceDetector("short")


def _fdd(name: str) -> tuple[np.ndarray, np.ndarray]:
    """An FDD-14 image and its 14 landmarks."""
    import csv

    root = need(FDD)
    with open(root / "landmarks.csv", newline="") as f:
        for row in csv.DictReader(f):
            if row["image"].endswith(name):
                pts = np.array([[float(row[f"x{i}"]), float(row[f"y{i}"])] for i in range(14)], np.float32)
                return load_image(root / "images" / name), pts
    pytest.skip(f"{name} not in {root / 'landmarks.csv'}")


def _holds(box: np.ndarray, points: np.ndarray) -> bool:
    """The benchmark's rule: the box holds the landmarks' centre, side 0.5-3x the landmark extent."""
    centre, extent = points.mean(0), float(np.ptp(points, axis=0).max())
    side = max(box[2] - box[0], box[3] - box[1])
    return bool(box[0] <= centre[0] <= box[2] and box[1] <= centre[1] <= box[3] and 0.5 * extent <= side <= 3 * extent)


# ---------------------------------------------------------------------------------------------- anchors
def test_anchors_follow_mediapipe_layout():
    short = ssd_anchors(128, (8, 16, 16, 16))
    assert short.shape == (896, 2) and short.dtype == np.float32
    # stride 8: 16x16 cells, 2 anchors each, row-major; stride 16 (3 layers): 8x8 cells, 6 anchors each
    np.testing.assert_allclose(short[0], short[1])
    np.testing.assert_allclose(short[0], [0.5 / 16, 0.5 / 16])
    np.testing.assert_allclose(short[2], [1.5 / 16, 0.5 / 16])  # x varies fastest
    np.testing.assert_allclose(short[32], [0.5 / 16, 1.5 / 16])
    np.testing.assert_allclose(short[512:518], np.tile([0.5 / 8, 0.5 / 8], (6, 1)))
    np.testing.assert_allclose(short[-1], [7.5 / 8, 7.5 / 8])
    assert ((short > 0) & (short < 1)).all()
    back = ssd_anchors(256, (16, 32, 32, 32))
    np.testing.assert_allclose(back, short)  # the same grids on a 256 px input
    assert len(ssd_anchors(192, (4,))) == 48 * 48 * 2


@pytest.mark.parametrize("model", list(BLAZEFACE_MODELS))
def test_anchor_count_matches_the_network_outputs(model):
    det = BlazeFaceDetector(model)
    size = BLAZEFACE_MODELS[model].size
    logits, raw = det._forward(cv2.dnn.blobFromImage(np.zeros((size, size, 3), np.uint8), 1 / 127.5, (size, size)))
    assert logits.shape == (len(det.anchors),) and raw.shape == (len(det.anchors), 16)


def test_weighted_nms_merges_overlapping_boxes():
    boxes = np.array([[0, 0, 10, 10], [1, 1, 11, 11], [50, 50, 60, 60]], np.float32)
    scores = np.array([0.9, 0.3, 0.6], np.float32)
    out, s = weighted_nms(boxes, scores, 0.3)
    assert out.shape == (2, 4) and s.tolist() == pytest.approx([0.9, 0.6])
    np.testing.assert_allclose(out[0], (boxes[0] * 0.9 + boxes[1] * 0.3) / 1.2, rtol=1e-5)
    np.testing.assert_allclose(out[1], boxes[2])
    assert weighted_nms(np.zeros((0, 4), np.float32), np.zeros(0, np.float32))[0].shape == (0, 4)


# ---------------------------------------------------------------------------------------------- detection
def test_finds_a_real_face_around_its_landmarks(short):
    rgb, points = _fdd("simple_0001.jpg")
    boxes, scores = short.detect(rgb)
    assert boxes.dtype == np.float32 and scores.dtype == np.float32 and boxes.shape == (len(scores), 4)
    assert len(boxes) >= 1 and 0.5 <= scores[0] <= 1.0
    assert _holds(boxes[0], points)
    assert np.all(np.diff(scores) <= 0)  # best first


def test_letterbox_maps_boxes_back_to_original_pixels(short):
    rgb, points = _fdd("simple_1601.jpg")
    box = short.detect(rgb)[0][0]
    tall = np.full((400, 256, 3), 128, np.uint8)
    tall[100:356] = rgb
    moved = short.detect(tall)[0]
    assert len(moved) >= 1 and _holds(moved[0], points + [0, 100])
    np.testing.assert_allclose(moved[0], box + [0, 100, 0, 100], atol=0.08 * (box[2] - box[0]))


def test_finds_the_synthetic_example_face(short):
    rgb = load_image(EXAMPLE)
    boxes, scores = short.detect(rgb)
    assert len(boxes) == 1 and scores[0] > 0.5
    h, w = rgb.shape[:2]
    cx, cy = (boxes[0, 0] + boxes[0, 2]) / 2, (boxes[0, 1] + boxes[0, 3]) / 2
    side = max(boxes[0, 2] - boxes[0, 0], boxes[0, 3] - boxes[0, 1])
    assert w / 4 < cx < 3 * w / 4 and h / 4 < cy < 3 * h / 4 and 0.2 * w < side < 0.9 * w


@pytest.mark.parametrize("model", list(BLAZEFACE_MODELS))
def test_blank_and_noise_images_give_no_boxes(model):
    det = BlazeFaceDetector(model)
    for value in (0, 128, 255):
        boxes, scores = det.detect(np.full((200, 300, 3), value, np.uint8))
        assert boxes.shape == (0, 4) and scores.shape == (0,) and boxes.dtype == np.float32
    noise = np.random.default_rng(0).integers(0, 256, (240, 320, 3), dtype=np.uint8)
    assert len(det.detect(noise)[0]) == 0


def test_rejects_images_that_are_not_rgb_uint8(short):
    with pytest.raises(ValueError, match="uint8 RGB"):
        short.detect(np.zeros((64, 64), np.uint8))
    with pytest.raises(ValueError, match="uint8 RGB"):
        short.detect(np.zeros((64, 64, 3), np.float32))


# ---------------------------------------------------------------------------------------------- options
@pytest.fixture(scope="module")
def two_faces():
    """A full FDD face on the left, a smaller one on the right."""
    a, _ = _fdd("simple_1601.jpg")
    b, _ = _fdd("complex_1700.jpg")
    canvas = np.full((256, 448, 3), 255, np.uint8)
    canvas[:, :256] = a
    canvas[64:, 256:] = cv2.resize(b, (192, 192), interpolation=cv2.INTER_AREA)
    return canvas


def _sides(boxes: np.ndarray) -> np.ndarray:
    return np.maximum(boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1])


def test_max_faces_keeps_the_largest(two_faces):
    boxes, scores = BlazeFaceDetector().detect(two_faces)
    assert len(boxes) == 2
    one, one_score = BlazeFaceDetector(max_faces=1).detect(two_faces)
    assert len(one) == 1
    np.testing.assert_allclose(one[0], boxes[np.argmax(_sides(boxes))])
    assert len(BlazeFaceDetector(max_faces=5).detect(two_faces)[0]) == 2
    with pytest.raises(ValueError, match="max_faces"):
        BlazeFaceDetector(max_faces=0)


def test_min_size_drops_small_boxes(two_faces):
    boxes, _ = BlazeFaceDetector().detect(two_faces)
    small, large = sorted(_sides(boxes))
    kept, _ = BlazeFaceDetector(min_size=(small + large) / 2).detect(two_faces)
    assert len(kept) == 1 and _sides(kept)[0] == pytest.approx(large)
    assert len(BlazeFaceDetector(min_size=large + 1).detect(two_faces)[0]) == 0


def test_score_threshold_acts(two_faces):
    boxes, scores = BlazeFaceDetector(score_threshold=0.3).detect(two_faces)
    assert len(boxes) >= 2 and (scores >= 0.3).all()
    cut = float(np.sort(scores)[-1]) - 1e-3  # only the best face's anchors pass
    high, high_scores = BlazeFaceDetector(score_threshold=cut).detect(two_faces)
    assert 1 <= len(high) < len(boxes) and (high_scores >= cut).all()
    assert len(BlazeFaceDetector(score_threshold=1.0).detect(two_faces)[0]) == 0
    with pytest.raises(ValueError, match="score_threshold"):
        BlazeFaceDetector(score_threshold=1.5)



def test_resize_picks_how_a_photo_is_shrunk(two_faces):
    """``resize``: the letterbox shrinks with that interpolation (the back model of a cascade too); both find
    the same faces, boxes within 3 % of their side; an unknown name is a ValueError."""
    photo = cv2.resize(two_faces, (896, 512), interpolation=cv2.INTER_LINEAR)  # larger than both inputs
    found = {}
    for resize, flag in blazeface.RESIZES.items():
        det = BlazeFaceDetector("cascade", resize=resize)
        for d in (det, det.fallback):
            blob, (ox, oy, nw, nh) = d._letterbox(photo)
            small = cv2.resize(photo, (nw, nh), interpolation=flag)
            inside = blob[0, :, oy : oy + nh, ox : ox + nw]
            np.testing.assert_allclose(inside, small.transpose(2, 0, 1) / 127.5 - 1, atol=1e-5)
        found[resize] = det.detect(photo)[0]
    linear, area = found["linear"], found["area"]
    assert len(linear) == len(area) == 2
    np.testing.assert_allclose(linear, area, atol=0.03 * _sides(area).max())
    with pytest.raises(ValueError, match="resize must be one of"):
        BlazeFaceDetector(resize="cubic")

# ---------------------------------------------------------------------------------------------- registry, files
def test_registered_behind_the_detector_interface():
    assert DETECTORS["blazeface"] is BlazeFaceDetector
    det = get_detector("blazeface", max_faces=2)
    assert isinstance(det, BlazeFaceDetector) and det.max_faces == 2 and det.spec.size == 128
    assert get_detector("blazeface-back").spec.size == 256
    assert det.box_style == "blazeface" and det.enlarge == BLAZEFACE_ENLARGE
    assert detector_enlarge(det) == BLAZEFACE_ENLARGE
    assert detector_enlarge(det, {"opencv": 0.2, "blazeface": 0.5}) == 0.5
    assert detector_enlarge(det, {"opencv": 0.2}) == BLAZEFACE_ENLARGE
    assert "blazeface" in repr(det).lower()


def test_model_files_ship_with_their_licence():
    for spec in BLAZEFACE_MODELS.values():
        assert (MODEL_DIR / spec.file).stat().st_size > 100_000
    assert "Apache License" in (MODEL_DIR / "LICENSE").read_text()
    notice = (MODEL_DIR / "NOTICE").read_text()
    assert "MediaPipe" in notice and all(spec.file in notice for spec in BLAZEFACE_MODELS.values())


def test_missing_model_file_is_a_clear_error(tmp_path, monkeypatch):
    with pytest.raises(FileNotFoundError, match="BlazeFace model file not found.*nope.tflite"):
        BlazeFaceDetector(tmp_path / "nope.tflite")
    monkeypatch.setattr(blazeface, "MODEL_DIR", tmp_path)
    with pytest.raises(FileNotFoundError, match=r"face_detection_short_range\.(onnx|tflite)"):
        get_detector("blazeface")
    with pytest.raises(FileNotFoundError, match="face_detection_short_range.tflite"):
        get_detector("blazeface", runtime="opencv")


def test_a_model_given_by_path_works(tmp_path):
    import shutil

    path = tmp_path / "my_face_model.tflite"
    shutil.copy(MODEL_DIR / BLAZEFACE_MODELS["short"].file, path)
    det = BlazeFaceDetector(path, input_size=128)
    assert det.runtime == "opencv"  # a .tflite file: OpenCV's DNN reads it
    image = load_image(EXAMPLE)
    np.testing.assert_allclose(det.detect(image)[0], BlazeFaceDetector("short", runtime="opencv").detect(image)[0])
    with pytest.raises(ValueError, match="input_size"):
        BlazeFaceDetector(path, input_size=200)


def _no_boxes(calls: list):
    """A stand-in for a model's run that records its call and finds nothing."""
    return lambda image: calls.append(1) or (np.zeros((0, 4)), np.zeros(0))


def test_the_fallback_runs_the_back_model_only_when_the_short_one_finds_nothing():
    """A crowd photo from mmpose's WFLW samples: the short-range model finds no face, the fallback finds them
    through the back-camera model; an image the short model handles never runs the back one."""
    crowd = load_image(need(SHARED / "fixtures" / "mmpose_samples" / "wflw") / "7_Cheering_Cheering_7_16.jpg")
    assert len(get_detector("blazeface-back").detect(crowd)[0]) > 5
    assert len(BlazeFaceDetector("short").detect(crowd)[0]) == 0
    fallback = BlazeFaceDetector("fallback")
    assert fallback.mode == "fallback" and len(fallback.detect(crowd)[0]) > 5
    calls = []
    fallback.fallback._run = _no_boxes(calls)
    assert len(fallback.detect(load_image(EXAMPLE))[0]) == 1 and calls == []


# ---------------------------------------------------------------------------------------------- stills and video
MPII = SHARED / "fixtures" / "mmpose_samples" / "mpii"


def _mpii_face(name: str) -> tuple[np.ndarray, np.ndarray, float]:
    """An MPII sample photo, its annotated person's face centre (mid-point of the head-top and upper-neck
    joints) and that head length."""
    import json

    for person in json.loads((need(MPII) / "test_mpii.json").read_text()):
        if person["image"] == name:
            neck, top = (np.asarray(person["joints"][j], np.float64) for j in (8, 9))
            return load_image(MPII / name), (neck + top) / 2, float(np.linalg.norm(top - neck))
    pytest.skip(f"{name} not in {MPII / 'test_mpii.json'}")


def _finds(boxes: np.ndarray, centre: np.ndarray, head: float) -> bool:
    """A box holds the face's centre with a side of 0.3-1.5x the head length."""
    sides = _sides(boxes) if len(boxes) else np.zeros(0)
    inside = ((boxes[:, :2] <= centre) & (centre <= boxes[:, 2:])).all(1) if len(boxes) else np.zeros(0, bool)
    return bool((inside & (sides >= 0.3 * head) & (sides <= 1.5 * head)).any())


@pytest.mark.parametrize("name", ["060754485.jpg", "005808361.jpg"])
def test_the_default_finds_the_small_faces_of_ordinary_photos(name):
    """The man by the truck and the curler: the short-range model alone misses them (it boxes a sign and the
    back of a jersey instead), the default (both models, on still photos) finds them."""
    rgb, centre, head = _mpii_face(name)
    assert not _finds(BlazeFaceDetector("short").detect(rgb)[0], centre, head)
    default = get_detector()
    assert default.mode == "cascade" and _finds(default.detect(rgb)[0], centre, head)
    assert not _finds(default.first_stage(rgb)[0], centre, head)  # the short model's boxes alone
    assert _finds(default.second_stage(rgb, default.first_stage(rgb)[0])[0], centre, head)
    assert _finds(BlazeFaceDetector("merged").detect(rgb)[0], centre, head)


def test_the_cascade_adds_only_the_faces_its_first_stage_missed():
    """The second stage drops the back model's boxes that overlap a known box (IoU > iou) and keeps the rest;
    detect() returns both stages' boxes best score first; max_faces counts the known faces; a one-model
    detector has no second stage."""
    det = BlazeFaceDetector("cascade")
    a, b, c = [100, 100, 140, 140], [102, 98, 142, 138], [10, 10, 30, 30]
    det.fallback._run = lambda image: (np.array([b, c], np.float64), np.array([0.8, 0.6]))
    det._run = lambda image: (np.array([a], np.float64), np.array([0.55]))
    rgb = np.zeros((200, 200, 3), np.uint8)
    boxes, scores = det.second_stage(rgb, np.array([a], np.float32))
    np.testing.assert_array_equal(boxes, [c])
    assert boxes.dtype == scores.dtype == np.float32 and scores.tolist() == pytest.approx([0.6])
    assert len(det.second_stage(rgb, np.zeros((0, 4)))[0]) == 2  # nothing known: every back box is new
    boxes, scores = det.detect(rgb)
    assert scores.tolist() == pytest.approx([0.6, 0.55]) and boxes.tolist() == [c, a]  # best score first
    det.max_faces = 1
    assert det.detect(rgb)[0].tolist() == [a]  # the first stage's face fills max_faces
    with pytest.raises(ValueError, match="two-model"):
        BlazeFaceDetector("short").second_stage(rgb, np.zeros((0, 4)))


def test_merging_two_models_keeps_one_box_per_face():
    """Hand-made detections: both models find face A (slightly different boxes), only the short one a
    large face C, only the back one a small face B: three boxes, A's the score-weighted mean."""
    a_short, a_back = [100, 100, 140, 140], [102, 98, 142, 138]
    short = (np.array([a_short, [300, 50, 500, 250]], np.float32), np.array([0.9, 0.7], np.float32))
    back = (np.array([[10, 10, 30, 30], a_back], np.float32), np.array([0.6, 0.8], np.float32))
    boxes, scores = merge_detections([short, back])
    assert boxes.shape == (3, 4) and boxes.dtype == np.float32 and scores.tolist() == pytest.approx([0.9, 0.7, 0.6])
    np.testing.assert_allclose(boxes[0], (np.array(a_short) * 0.9 + np.array(a_back) * 0.8) / 1.7, rtol=1e-6)
    np.testing.assert_allclose(boxes[1:], [[300, 50, 500, 250], [10, 10, 30, 30]])
    empty = (np.zeros((0, 4), np.float32), np.zeros(0, np.float32))
    assert merge_detections([empty, empty])[0].shape == (0, 4)
    assert len(merge_detections([short, short])[0]) == 2  # the same boxes twice: still one per face


def test_video_mode_keeps_the_short_range_model():
    """In video mode (what FaceTracker sets) the default runs the short-range model, and the back one only
    where it finds nothing: on a photo where the short model finds a face, its boxes exactly."""
    rgb, _ = _fdd("simple_0001.jpg")
    default = get_detector("blazeface")
    assert default.video is False and default.mode == "cascade"
    calls = []
    default.fallback._run = _no_boxes(calls)
    with video_mode(default):
        assert default.video is True and default.mode == "fallback"
        boxes, scores = default.detect(rgb)
    assert calls == [] and default.video is False and default.mode == "cascade"
    np.testing.assert_array_equal(boxes, BlazeFaceDetector("short").detect(rgb)[0])
    default.detect(rgb)
    assert calls == [1]  # stills: both models
    assert get_detector("blazeface", video=True).mode == "fallback"
    assert BlazeFaceDetector("back", video=True).mode == "single"  # a chosen model stays chosen
    with pytest.raises(RuntimeError), video_mode(default):
        raise RuntimeError("an error inside the block")
    assert default.video is False
    opencv_like = object()
    with video_mode(opencv_like):  # a detector without a video mode: nothing to set
        pass
