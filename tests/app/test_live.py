"""Live input (issue 15): ``awing predict --camera SOURCE`` with a video file as the stream."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest

from awing import FaceAligner
from awing.app import live
from awing.app.cli import main
from awing.data.synthetic import make_example

FPS = 12.0


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    path = tmp_path_factory.mktemp("live") / "clip.mp4"
    img, _ = make_example(0, "val", 7, 192, "w300_68")
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), FPS, (192, 192))
    for i in range(8):
        writer.write(np.roll(img, i, axis=1))
    writer.release()
    return path


def test_camera_option_with_a_video_as_the_stream(clip, tmp_path, monkeypatch):
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    assert live.can_show() is False  # headless: files only
    out = tmp_path / "out"
    rc = main(["predict", "--camera", str(clip), "--max-frames", "5", "--out", str(out), "--detector", "full",
               "--device", "cpu", "--format", "coco", "--track-min-confidence", "0.2"])
    assert rc == 0
    data = json.loads((out / "predictions.json").read_text())
    (rec,) = data["files"]
    assert rec["kind"] == "stream" and [f["frame"] for f in rec["frames"]] == [0, 1, 2, 3, 4]
    assert all(len(f["faces"]) == 1 and f["faces"][0]["track"] == 0 for f in rec["frames"])
    # the detector ran on frame 0 only: the face was tracked (the shipped model is unsure of synthetic faces,
    # hence the low --track-min-confidence)
    assert [f["detected"] for f in rec["frames"]] == [True] + [False] * 4 and "pose" in rec["frames"][0]["faces"][0]
    video = cv2.VideoCapture(str(out / "annotated" / "clip.mp4"))
    assert video.isOpened()
    assert int(video.get(cv2.CAP_PROP_FRAME_COUNT)) == 5 and video.get(cv2.CAP_PROP_FPS) == pytest.approx(FPS)
    video.release()
    assert len(json.loads((out / "predictions_coco.json").read_text())["images"]) == 5


def test_live_window_when_a_display_exists(clip, monkeypatch):
    shown = []
    monkeypatch.setattr(cv2, "imshow", lambda name, img: shown.append(img.shape))
    monkeypatch.setattr(cv2, "waitKey", lambda ms: -1)
    monkeypatch.setattr(cv2, "destroyAllWindows", lambda: None)
    aligner = FaceAligner("fdd14-1hg-tiny", device="cpu", detector="full")
    frames, info = live.predict_stream(aligner, str(clip), None, None, max_frames=3, show=True)
    assert len(frames) == 3 and info["shown"] and shown == [(192, 192, 3)] * 3 and info["fps"] == pytest.approx(FPS)


def test_a_source_that_does_not_open(tmp_path):
    with pytest.raises(ValueError, match="cannot open"):
        live.open_source(str(tmp_path / "nothing.mp4"))
    assert main(["predict", "--camera", str(tmp_path / "nothing.mp4"), "--out", str(tmp_path / "o"),
                 "--device", "cpu"]) == 1
    assert main(["predict", "--out", str(tmp_path / "o"), "--device", "cpu"]) == 2  # neither PATHs nor --camera
