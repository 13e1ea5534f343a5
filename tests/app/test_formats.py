"""iBUG .pts and COCO-keypoints export (issue 15), and ``awing predict --format/--crops`` and faces.csv."""

from __future__ import annotations

import csv
import json

import cv2
import numpy as np

from awing.app.cli import main
from awing.app.formats import coco_keypoints, read_pts, write_pts
from awing.data.synthetic import make_example
from awing.schemas import load_schema


def test_pts_round_trip_is_one_based(tmp_path):
    pts = np.array([[0.0, 0.0], [10.5, 20.25], [np.nan, np.nan]])
    write_pts(tmp_path / "a.pts", pts)
    text = (tmp_path / "a.pts").read_text().splitlines()
    assert text[:3] == ["version: 1", "n_points: 3", "{"] and text[-1] == "}"
    assert text[3] == "1.000 1.000"  # iBUG counts pixels from 1
    back = read_pts(tmp_path / "a.pts")
    np.testing.assert_allclose(back[:2], pts[:2], atol=1e-3)
    np.testing.assert_allclose(back[2], [-2, -2])  # a missing point is written as -1 -1


def test_coco_keypoints_layout():
    face = {"box": [10, 20, 110, 140], "score": 0.9, "quality": 0.7, "pose": {"yaw": 1, "pitch": 2, "roll": 3},
            "points": [[float(i), float(i + 1)] for i in range(14)], "confidence": [1.0] * 14}
    face["points"][3] = [None, None]
    data = coco_keypoints([{"file_name": "a.jpg", "width": 200, "height": 300, "faces": [face, face]}], "fdd14")
    assert [im["id"] for im in data["images"]] == [1]
    a = data["annotations"][0]
    assert len(a["keypoints"]) == 3 * 14 and a["keypoints"][:3] == [0.0, 1.0, 2] and a["keypoints"][9:12] == [0, 0, 0]
    assert a["num_keypoints"] == 13 and a["bbox"] == [10, 20, 100, 120] and a["area"] == 12000
    assert a["score"] == 0.7 and a["head_pose"] == {"yaw": 1, "pitch": 2, "roll": 3}
    assert [x["id"] for x in data["annotations"]] == [1, 2]
    cat = data["categories"][0]
    assert cat["keypoints"] == list(load_schema("fdd14").point_names)
    assert [1, 2] in cat["skeleton"] and min(min(s) for s in cat["skeleton"]) >= 1  # 1-based, as COCO's


def test_predict_cli_writes_pts_coco_crops_and_faces_csv(tmp_path):
    img, _ = make_example(0, "val", 7, 256, "w300_68")
    cv2.imwrite(str(tmp_path / "face.png"), img)
    out = tmp_path / "out"
    args = ["predict", str(tmp_path / "face.png"), "--out", str(out), "--detector", "full", "--device", "cpu",
            "--format", "pts", "--format", "coco", "--crops", str(tmp_path / "crops"), "--crop-size", "96"]
    assert main(args) == 0
    pred = json.loads((out / "predictions.json").read_text())
    (face,) = pred["files"][0]["frames"][0]["faces"]
    assert set(face["pose"]) == {"yaw", "pitch", "roll"} and 0 <= face["quality"] <= 1
    np.testing.assert_allclose(read_pts(out / "pts" / "face_0.pts"), face["points"], atol=1e-2)
    coco = json.loads((out / "predictions_coco.json").read_text())
    assert coco["images"][0]["width"] == 256 and coco["images"][0]["file_name"].endswith("face.png")
    assert len(coco["annotations"]) == 1 and len(coco["annotations"][0]["keypoints"]) == 3 * len(face["points"])
    crop = cv2.imread(str(tmp_path / "crops" / "face_0.png"))
    assert crop.shape == (96, 96, 3)
    with open(out / "faces.csv") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 1 and float(rows[0]["yaw"]) == face["pose"]["yaw"]
