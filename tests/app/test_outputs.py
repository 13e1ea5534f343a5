"""The result writers (awing.app.outputs, issue 22): from FaceLandmarks, exact content, atomic files."""

from __future__ import annotations

import csv
import errno
import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from awing.app import outputs
from awing.app.api import FaceLandmarks
from awing.app.formats import coco_keypoints, read_pts
from awing.app.outputs import FileResult, FrameResult, write_crops, write_image, write_json, write_predictions
from awing.data.synthetic import make_example
from awing.schemas import load_schema

NAMES = ("a", "b", "c")


def face(shift: float = 0.0, pose: dict | None = None) -> FaceLandmarks:
    points = np.array([[10.123456, 20.5], [30.004, np.nan], [50.0, 60.0]], np.float32) + shift
    return FaceLandmarks(
        np.array([1.0, 2.0, 81.0, 82.0], np.float32),
        points,
        np.array([1.0, 0.25, 0.123456]),
        NAMES,
        "custom3",
        score=0.987654,
        quality=0.6,
        pose=pose,
    )


HEADER = {
    "model": {"path": "m.pt", "schema": "custom3", "output_schema": "custom3", "point_names": list(NAMES)},
    "detector": "full",
    "enlarge": 0.1,
    "missing": ["gone.jpg"],
}


def results() -> list[FileResult]:
    image = FileResult(
        "photo.jpg",
        "image",
        [FrameResult(0, [face(pose={"yaw": 1.5, "pitch": -2, "roll": 3})])],
        name=Path("photo.jpg"),
        size=(100, 90),
    )
    video = FileResult(
        "clip.mp4",
        "video",
        [FrameResult(0, [face()], True, [0]), FrameResult(2, [face(1)], False, [0])],
        name=Path("clip.mp4"),
    )
    broken = FileResult("broken.jpg", "image", error="cannot read the file as an image", name=Path("broken.jpg"))
    return [image, video, broken]


def test_json_and_csv_content(tmp_path):
    write_predictions(tmp_path, HEADER, results())
    data = json.loads((tmp_path / "predictions.json").read_text())
    assert list(data) == ["model", "detector", "enlarge", "missing", "files"] and data["missing"] == ["gone.jpg"]
    image, video, broken = data["files"]
    assert list(image) == ["file", "kind", "frames", "error"] and list(image["frames"][0]) == ["frame", "faces"]
    f = image["frames"][0]["faces"][0]
    assert f["points"] == [[10.12, 20.5], [30.0, None], [50.0, 60.0]]  # to_dict's rounding, NaN as null
    assert f["confidence"] == [1.0, 0.25, 0.1235] and f["score"] == 0.9877 and f["is_face"] is True
    assert [list(fr) for fr in video["frames"]] == [["frame", "detected", "faces"]] * 2
    assert [(fr["frame"], fr["detected"], fr["faces"][0]["track"]) for fr in video["frames"]] == [
        (0, True, 0),
        (2, False, 0),
    ]
    assert broken == {"file": "broken.jpg", "kind": "image", "frames": [], "error": "cannot read the file as an image"}

    with open(tmp_path / "predictions.csv") as fh:
        rows = list(csv.reader(fh))
    assert rows[0] == [
        "file",
        "frame",
        "face",
        "box_x0",
        "box_y0",
        "box_x1",
        "box_y1",
        "score",
        "quality",
        "is_face",
        "a_x",
        "a_y",
        "b_x",
        "b_y",
        "c_x",
        "c_y",
        "a_conf",
        "b_conf",
        "c_conf",
    ]
    assert rows[1] == [
        "photo.jpg",
        "0",
        "0",
        "1.0",
        "2.0",
        "81.0",
        "82.0",
        "0.9877",
        "0.6",
        "1",
        "10.12",
        "20.5",
        "30.0",
        "nan",
        "50.0",
        "60.0",
        "1.0",
        "0.25",
        "0.1235",
    ]
    assert [r[:3] for r in rows[2:]] == [["clip.mp4", "0", "0"], ["clip.mp4", "2", "0"]]

    with open(tmp_path / "faces.csv") as fh:
        rows = list(csv.reader(fh))
    assert rows[0] == list(outputs.FACES_CSV)
    assert rows[1] == ["photo.jpg", "0", "0", "0.9877", "0.6", "1", "1.5", "-2", "3"]
    assert rows[2] == ["clip.mp4", "0", "0", "0.9877", "0.6", "1", "", "", ""]  # no pose: empty
    assert sorted(p.name for p in tmp_path.iterdir()) == ["faces.csv", "predictions.csv", "predictions.json"]


def test_pts_files_keep_full_precision_and_coco_takes_faces(tmp_path):
    write_predictions(tmp_path, {**HEADER, "model": {**HEADER["model"], "output_schema": "fdd14"}}, results(), ["pts"])
    names = sorted(p.name for p in (tmp_path / "pts").iterdir())
    assert names == ["clip_000000_0.pts", "clip_000002_0.pts", "photo_0.pts"]  # the broken file has none
    pts = read_pts(tmp_path / "pts" / "photo_0.pts")
    np.testing.assert_allclose(pts[0], [10.123, 20.5], atol=1e-3)  # not the JSON's 0.01 rounding
    assert np.isnan(face().landmarks[1, 1]) and (pts[1] == -2).all()  # a NaN point: -1 -1 (one-based)

    s = load_schema("fdd14")
    f = FaceLandmarks(
        np.array([0, 0, 10, 10], np.float32),
        np.ones((14, 2), np.float32),
        np.ones(14),
        s.point_names,
        s.name,
        quality=0.5,
    )
    items = [{"file_name": "x.png", "width": 10, "height": 10, "faces": [f]}]
    assert coco_keypoints(items, s) == coco_keypoints([{**items[0], "faces": [f.to_dict()]}], s)


def test_crops_come_from_the_image_in_memory(tmp_path):
    img, rec = make_example(0, "val", 7, 256, "w300_68")
    s = load_schema("w300_68")
    f = FaceLandmarks(rec["box"], rec["landmarks"].astype(np.float32), np.ones(s.num_points), s.point_names, s.name)
    lost = FaceLandmarks(
        rec["box"], np.full((s.num_points, 2), np.nan, np.float32), np.ones(s.num_points), s.point_names, s.name
    )
    assert write_crops(tmp_path / "crops", img, [f, lost], Path("sub/face.png"), 64, 0.0) == 1
    crop = cv2.imread(str(tmp_path / "crops" / "sub" / "face_0.png"))
    assert crop.shape == (64, 64, 3) and not (tmp_path / "crops" / "sub" / "face_1.png").exists()
    other = FaceLandmarks(rec["box"], np.ones((3, 2), np.float32), np.ones(3), NAMES, "custom3")
    with pytest.raises(ValueError, match="mtfl5"):
        write_crops(tmp_path / "crops", img, [other], Path("x.png"), 64, 0.0)
    assert write_crops(tmp_path / "crops", img, [], Path("y.png"), 64, 0.0) == 0


def test_writes_are_atomic(tmp_path, monkeypatch):
    target = tmp_path / "predictions.json"
    write_json(target, {"old": True})

    def fail(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(Path, "write_text", fail)
    with pytest.raises(OSError, match="no space left") as info:
        write_json(target, {"new": float("nan")})
    assert "unchanged" in str(info.value)
    monkeypatch.undo()
    assert json.loads(target.read_text()) == {"old": True}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["predictions.json"]  # no temporary file left
    write_json(target, {"new": float("nan")})
    assert json.loads(target.read_text()) == {"new": None}

    write_image(tmp_path / "a" / "b.jpg", np.zeros((8, 8, 3), np.uint8))
    assert cv2.imread(str(tmp_path / "a" / "b.jpg")).shape == (8, 8, 3)
    with pytest.raises(ValueError, match="encode"):
        write_image(tmp_path / "c.nothing", np.zeros((8, 8, 3), np.uint8))
    assert not (tmp_path / "c.nothing").exists()
