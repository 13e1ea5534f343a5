"""The frame loop video files and live sources share (awing.app.frames, issue 22), with stand-in models."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from awing.app import frames
from awing.app.api import FaceLandmarks
from awing.app.draw import DrawOptions
from awing.app.frames import VIDEO_BATCH, detected, read_frames, run_frames, tracked
from awing.app.tracking import TrackedFace, TrackedFrame

FPS = 10.0


def write_video(path: Path, count: int) -> Path:
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), FPS, (64, 48))
    for i in range(count):
        writer.write(np.full((48, 64, 3), 10 * i, np.uint8))
    writer.release()
    return path


def a_face(x: float = 20.0) -> FaceLandmarks:
    pts = np.array([[x, 20.0], [x + 10, 20.0], [x + 5, 30.0]], np.float32)
    return FaceLandmarks(
        np.array([x - 5, 10, x + 15, 35], np.float32), pts, np.ones(3, np.float32), ("a", "b", "c"), "custom3"
    )


class StandIn:
    """An aligner that finds one face per image and records its calls."""

    def __init__(self) -> None:
        self.batches: list[int] = []
        self.crops = 0
        self.detector = type("Detector", (), {"video": False})()
        self.video_modes: list[bool] = []

    def predict_batch(self, images, color="RGB"):
        self.batches.append(len(images))
        self.video_modes.append(self.detector.video)
        return [[a_face()] for _ in images]

    def predict_crops(self, image, boxes, color="RGB"):
        self.crops += 1
        return [a_face() for _ in boxes]


@pytest.fixture
def clip(tmp_path) -> Path:
    return write_video(tmp_path / "clip.mp4", 6)


def capture(path: Path) -> cv2.VideoCapture:
    cap = cv2.VideoCapture(str(path))
    assert cap.isOpened()
    return cap


def test_read_frames_stride_every_and_max_frames(clip):
    assert [(i, used) for i, _, used in read_frames(capture(clip), stride=2)] == [(0, True), (2, True), (4, True)]
    every = [(i, used) for i, _, used in read_frames(capture(clip), stride=2, every=True)]
    assert every == [(i, i % 2 == 0) for i in range(6)]
    assert [i for i, _, _ in read_frames(capture(clip), max_frames=3)] == [0, 1, 2]


def test_detected_batches_the_used_frames():
    images = [(i, np.zeros((8, 8, 3), np.uint8), i % 2 == 0) for i in range(2 * VIDEO_BATCH + 5)]
    aligner = StandIn()
    out = list(detected(images, aligner, None))
    assert [i for i, _, _ in out] == [i for i, _, _ in images]  # every frame, in order
    assert aligner.batches == [VIDEO_BATCH, 3]  # 11 used frames: one full batch, then the rest
    assert aligner.video_modes == [True, True] and aligner.detector.video is False  # video mode, then restored
    results = [r for _, _, r in out]
    assert all((r is None) == (i % 2 == 1) for i, r in enumerate(results))
    assert all(r.detected and r.tracks == [None] for r in results if r is not None)
    fixed = list(detected(images[:3], StandIn(), np.array([[0, 0, 8, 8]], np.float32)))
    assert [r.detected for _, _, r in fixed if r is not None] == [False, False]  # given boxes: no detection


def test_tracked_asks_the_tracker_with_the_frame_time():
    class Tracker:
        def __init__(self) -> None:
            self.times: list[float] = []

        def update(self, image, color="RGB", t=None):
            self.times.append(t)
            return TrackedFrame(len(self.times) - 1, len(self.times) == 1, [TrackedFace(7, a_face(), True)])

    tracker = Tracker()
    images = [(i, np.zeros((8, 8, 3), np.uint8), i != 1) for i in range(3)]
    out = [r for _, _, r in tracked(images, tracker, fps=4.0)]
    assert tracker.times == [0.0, 0.5] and out[1] is None
    assert (out[0].frame, out[0].detected, out[0].tracks) == (0, True, [7]) and out[2].detected is False


def test_run_frames_writes_the_video_atomically(clip, tmp_path):
    draw_to = tmp_path / "annotated" / "clip.mp4"
    analysed = detected(read_frames(capture(clip), stride=2, every=True), StandIn(), None)
    results = run_frames(analysed, draw_to, FPS, DrawOptions(labels=True))
    assert [r.frame for r in results] == [0, 2, 4]
    video = capture(draw_to)
    assert int(video.get(cv2.CAP_PROP_FRAME_COUNT)) == 6  # the skipped frames too
    ok, first = video.read()
    assert ok and first.max() > 100  # drawn on
    assert [p.name for p in draw_to.parent.iterdir()] == ["clip.mp4"]  # no temporary file left

    nothing = tmp_path / "none" / "x.mp4"
    assert run_frames(iter(()), nothing, FPS) == [] and not nothing.exists()

    def broken():
        yield 0, np.zeros((48, 64, 3), np.uint8), None
        raise cv2.error("decoder gone")

    failed = tmp_path / "failed" / "x.mp4"
    with pytest.raises(cv2.error):
        run_frames(broken(), failed, FPS)
    assert list(failed.parent.iterdir()) == []  # neither the video nor its temporary file


def test_the_live_window_stops_on_q(clip, monkeypatch):
    shown = []
    monkeypatch.setattr(cv2, "imshow", lambda name, img: shown.append(name))
    monkeypatch.setattr(cv2, "waitKey", lambda ms: ord("q"))
    monkeypatch.setattr(cv2, "destroyAllWindows", lambda: None)
    analysed = detected(read_frames(capture(clip)), StandIn(), None)
    assert len(run_frames(analysed, None, FPS, show=True)) == 1 and shown == [frames.WINDOW]


def test_predict_video_refuses_what_is_not_a_video(tmp_path):
    (tmp_path / "x.mp4").write_text("not a video")
    with pytest.raises(ValueError, match="cannot open"):
        frames.predict_video(StandIn(), tmp_path / "x.mp4", None, None)
