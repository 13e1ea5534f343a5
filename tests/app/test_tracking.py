"""Issue 13: video tracking (awing.app.tracking) -- the One-Euro filter, FaceTracker's detector schedule,
losses and identities, and ``awing predict clip.mp4`` with and without tracking."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from awing.app.api import FaceAligner
from awing.app.cli import main
from awing.app.tracking import FaceTracker, OneEuroFilter, box_iou, tracking_enlarge
from awing.data.crop import transform_points


@pytest.fixture(scope="module")
def ckpt(tiny_fdd_checkpoint) -> Path:
    return tiny_fdd_checkpoint


# ------------------------------------------------------------------------------------------- filter
def test_one_euro_reduces_noise_and_follows_a_step():
    rng = np.random.default_rng(0)
    noisy = 100.0 + rng.normal(0, 1.0, (300, 14, 2))
    f = OneEuroFilter(fps=30, min_cutoff=1.0, beta=0.2)
    out = np.stack([f(x) for x in noisy])
    assert out.shape == noisy.shape
    assert np.diff(out, axis=0).var() < 0.15 * np.diff(noisy, axis=0).var()  # about 0.075
    assert abs(out[50:].mean() - 100.0) < 0.2  # no bias on a constant

    step = np.where(np.arange(60) < 30, 0.0, 10.0)[:, None, None] * np.ones((1, 3, 2))
    f = OneEuroFilter(fps=30, min_cutoff=1.0, beta=0.2)
    out = np.stack([f(x) for x in step])
    assert np.all(out[:30] == 0)
    settled = np.flatnonzero(np.all(np.abs(out - 10.0) < 0.5, axis=(1, 2)))
    assert settled.size and settled[0] - 30 <= 10  # within 5% of the step in at most 10 frames (1/3 s)
    assert np.all(np.abs(out[settled[0] :] - 10.0) < 0.5)  # and stays there (no overshoot)


def test_one_euro_is_per_coordinate_and_passes_nan():
    rng = np.random.default_rng(1)
    x = np.cumsum(rng.normal(0, 2, (40, 2, 2)), axis=0)
    joint = OneEuroFilter(fps=25)
    together = np.stack([joint(v) for v in x])
    for i in range(2):
        for j in range(2):
            alone = OneEuroFilter(fps=25)
            np.testing.assert_allclose(together[:, i, j], [alone(v) for v in x[:, i, j]])
    f = OneEuroFilter()
    f(np.zeros((2, 2)))
    out = f(np.array([[np.nan, 1.0], [1.0, 1.0]]))
    assert np.isnan(out[0, 0]) and np.isfinite(out[1]).all()
    assert f(np.ones((2, 2)))[0, 0] == 1.0  # a coordinate back from NaN restarts
    with pytest.raises(ValueError):
        OneEuroFilter(min_cutoff=0)


# ------------------------------------------------------------------------------------------ tracker
class StubDetector:
    """Fixed boxes (a list per call, cycling through ``schedule``); counts its calls."""

    enlarge = 0.0
    box_style = "stub"

    def __init__(self, schedule):
        self.schedule, self.calls = schedule, 0

    def detect(self, image):
        boxes = np.asarray(self.schedule[self.calls % len(self.schedule)], np.float32).reshape(-1, 4)
        self.calls += 1
        return boxes, np.ones(len(boxes), np.float32)


def stub_aligner(ckpt, detector) -> FaceAligner:
    """The tiny model's aligner with a deterministic "model": 14 points spread over the middle half of
    each crop (so the landmark box -> crop relation of enlarge 1.0 is a fixed point), confidence = the
    crop's mean brightness (a black frame loses every track)."""
    aligner = FaceAligner(ckpt, device="cpu", detector=detector, fast=False)
    s = aligner.input_size
    grid = np.stack(np.meshgrid(np.linspace(0.25, 0.75, 7), [0.25, 0.75]), -1).reshape(-1, 2) * s - 0.5

    def landmarks_in_crops(crops, matrices):
        inv = np.stack([cv2.invertAffineTransform(m) for m in matrices])
        points = transform_points(np.broadcast_to(grid, (len(crops), 14, 2)), inv).astype(np.float32)
        conf = np.repeat(crops.reshape(len(crops), -1).mean(1, keepdims=True) / 255, 14, 1).astype(np.float32)
        return points, conf

    aligner.landmarks_in_crops = landmarks_in_crops
    return aligner


def bright(h=120, w=200):
    return np.full((h, w, 3), 255, np.uint8)


def test_detector_runs_on_frame_zero_and_every_nth_frame_only(ckpt):
    detector = StubDetector([[[40, 20, 120, 100]]])
    tracker = FaceTracker(stub_aligner(ckpt, detector), redetect_every=4, enlarge=1.0, smooth=False)
    frames = list(tracker.track([bright() for _ in range(10)]))
    assert [f.index for f in frames if f.detected] == [0, 4, 8]
    assert detector.calls == tracker.detections == 3
    assert all(len(f.faces) == 1 and f.faces[0].track == 0 for f in frames)
    assert [f.faces[0].detected for f in frames] == [f.detected for f in frames]
    # tracked crops: the landmark box (the middle half of the detector's square) enlarged 1.0 again
    np.testing.assert_allclose(frames[1].faces[0].face.box, [60, 40, 100, 80], atol=1e-3)
    np.testing.assert_allclose(frames[1].faces[0].face.landmarks, frames[0].faces[0].face.landmarks, atol=1e-3)


def test_lost_track_is_redetected_on_the_same_frame(ckpt):
    detector = StubDetector([[[40, 20, 120, 100]]])
    tracker = FaceTracker(stub_aligner(ckpt, detector), redetect_every=5, enlarge=1.0, smooth=False)
    images = [bright() for _ in range(12)]
    images[3] = np.zeros_like(images[3])  # the face vanishes for one frame: confidence 0 < 0.5
    frames = list(tracker.track(images))
    assert [f.index for f in frames if f.detected] == [0, 3, 4, 9]
    assert frames[3].faces and frames[3].faces[0].detected  # the detector's (low-confidence) face is reported
    assert frames[2].faces[0].track == 0 and frames[5].faces[0].track == 1  # not followed: a new track


def test_box_leaving_the_frame_is_a_loss(ckpt):
    detector = StubDetector([[[150, 20, 230, 100]]])  # more than half of its landmark box is outside
    tracker = FaceTracker(stub_aligner(ckpt, detector), redetect_every=100, enlarge=1.0, min_inside=0.9)
    frames = list(tracker.track([bright() for _ in range(3)]))
    assert all(f.detected for f in frames)


def test_two_faces_keep_their_ids_when_the_detector_swaps_them(ckpt):
    left, right = [10, 20, 90, 100], [110, 20, 190, 100]
    detector = StubDetector([[left, right], [right, left]])
    tracker = FaceTracker(stub_aligner(ckpt, detector), redetect_every=3, enlarge=1.0, smooth=True)
    frames = list(tracker.track([bright() for _ in range(8)]))
    assert [f.index for f in frames if f.detected] == [0, 3, 6]
    for f in frames:
        ids = [face.track for face in f.faces]
        assert ids == [0, 1]
        x = {face.track: face.face.landmarks[:, 0].mean() for face in f.faces}
        assert x[0] < 100 < x[1]


def test_crop_relation_from_the_model():
    assert tracking_enlarge(FaceAligner("fdd14-1hg-tiny", device="cpu")) == 1.0  # FDD: landmark boxes, data.enlarge 1.0
    mapped = FaceAligner("fdd14-1hg-tiny", device="cpu", output_schema="mtfl5")
    assert tracking_enlarge(mapped) is None  # measured instead
    np.testing.assert_allclose(box_iou([[0, 0, 2, 2]], [[1, 0, 3, 2], [5, 5, 6, 6]]), [[1 / 3, 0]])


def test_measured_crop_scale_without_a_training_relation(ckpt):
    detector = StubDetector([[[40, 20, 120, 100]]])
    aligner = stub_aligner(ckpt, detector)
    tracker = FaceTracker(aligner, redetect_every=10, smooth=False)
    assert tracker.enlarge is None  # the tiny checkpoint has no training config
    frames = list(tracker.track([bright() for _ in range(3)]))
    # the detector box is 2x the landmark box: tracked boxes are that square again
    np.testing.assert_allclose(frames[2].faces[0].face.box, [40, 20, 120, 100], atol=1e-3)


# --------------------------------------------------------------------------------------------- CLI
def write_video(path: Path, frames: int = 6, fps: float = 12.0) -> Path:
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, (96, 96))
    assert writer.isOpened()
    for i in range(frames):
        img = np.full((96, 96, 3), 60, np.uint8)
        cv2.circle(img, (48 + i, 48), 30, (180, 160, 140), -1)
        writer.write(img)
    writer.release()
    return path


def predict(*args) -> int:
    return main(["predict", *map(str, args)])


def frames_of(out: Path) -> list[dict]:
    (record,) = json.loads((out / "predictions.json").read_text())["files"]
    assert record["error"] is None
    return record["frames"]


def video_fps(path: Path) -> tuple[float, int]:
    cap = cv2.VideoCapture(str(path))
    assert cap.isOpened()
    fps, count = cap.get(cv2.CAP_PROP_FPS), int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
    cap.release()
    return fps, count


def test_predict_video_tracks_and_records_detections(ckpt, tmp_path):
    video = write_video(tmp_path / "clip.mp4")
    common = ["--model", ckpt, "--detector", "full", "--device", "cpu", "--fp32", "--track-min-confidence", "-1"]
    out = tmp_path / "tracked"
    assert predict(video, "--out", out, "--redetect-every", "3", *common) == 0
    frames = frames_of(out)
    assert [f["frame"] for f in frames] == list(range(6))
    assert [f["detected"] for f in frames] == [True, False, False, True, False, False]
    assert all([face["track"] for face in f["faces"]] == [0] for f in frames)
    assert video_fps(out / "annotated" / "clip.mp4") == (12.0, 6)

    out = tmp_path / "per-frame"
    assert predict(video, "--out", out, "--no-track", "--video-stride", "2", *common) == 0
    frames = frames_of(out)
    assert [f["frame"] for f in frames] == [0, 2, 4]
    assert all(f["detected"] for f in frames) and all(face["track"] is None for f in frames for face in f["faces"])
    assert video_fps(out / "annotated" / "clip.mp4") == (12.0, 6)  # the source's rate, every frame written

    out = tmp_path / "strided"
    assert predict(video, "--out", out, "--video-stride", "2", "--no-smooth", "--no-draw", *common) == 0
    frames = frames_of(out)
    assert [(f["frame"], f["detected"]) for f in frames] == [(0, True), (2, False), (4, False)]
    assert not (out / "annotated").exists()


def test_video_arguments_are_checked(ckpt, tmp_path):
    video = write_video(tmp_path / "clip.mp4", frames=2)
    for bad in (["--redetect-every", "0"], ["--smooth-min-cutoff", "0"], ["--smooth-beta", "-1"]):
        with pytest.raises(SystemExit) as err:
            predict(video, "--model", ckpt, "--out", tmp_path / "o", *bad)
        assert err.value.code == 2


def test_two_tracks_on_one_face_merge(ckpt):
    box = [40, 20, 120, 100]
    detector = StubDetector([[box, box]])  # a detector that reports one face twice
    tracker = FaceTracker(stub_aligner(ckpt, detector), redetect_every=10, enlarge=1.0)
    first, second = tracker.track([bright(), bright()])
    assert [f.track for f in first.faces] == [0, 1]
    assert [f.track for f in second.faces] == [0]
