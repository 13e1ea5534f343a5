"""``awing predict`` end to end: images, a folder, a generated video, --boxes, per-file errors."""

from __future__ import annotations

import ast
import csv
import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from awing.app.cli import main
from awing.schemas import load_schema


@pytest.fixture(scope="module")
def ckpt(tiny_fdd_checkpoint) -> Path:
    return tiny_fdd_checkpoint


def _frame(i: int, size: int = 96) -> np.ndarray:
    img = np.full((size, size, 3), 40 + 30 * i, np.uint8)
    cv2.circle(img, (size // 2 + i, size // 2), size // 3, (180, 160, 140), -1)
    return img


def write_video(path: Path, frames: int = 5) -> Path:
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 10.0, (96, 96))
    assert writer.isOpened()
    for i in range(frames):
        writer.write(_frame(i))
    writer.release()
    return path


def predict(*args) -> int:
    return main(["predict", *map(str, args)])


def test_images_folder_and_video_round_trip(ckpt, tmp_path):
    video = write_video(tmp_path / "clip.mp4")
    cv2.imwrite(str(tmp_path / "photo.jpg"), _frame(0))
    folder = tmp_path / "album" / "sub"
    folder.mkdir(parents=True)
    cv2.imwrite(str(folder / "a.png"), _frame(1))
    (folder / "notes.txt").write_text("ignored: not an image extension")
    (tmp_path / "broken.jpg").write_text("not an image")
    out = tmp_path / "out"
    rc = predict(
        video,
        tmp_path / "photo.jpg",
        tmp_path / "album",
        tmp_path / "broken.jpg",
        tmp_path / "gone.jpg",
        "--model",
        ckpt,
        "--out",
        out,
        "--detector",
        "full",
        "--device",
        "cpu",
    )
    assert rc == 1  # broken.jpg and gone.jpg could not be used (issue 25); the rest is written
    data = json.loads((out / "predictions.json").read_text())
    assert data["model"]["schema"] == "fdd14" and len(data["model"]["point_names"]) == 14
    files = {r["file"]: r for r in data["files"]}
    assert set(files) == {
        str(video),
        str(tmp_path / "photo.jpg"),
        "album/sub/a.png",
        str(tmp_path / "broken.jpg"),
    }
    clip = files[str(video)]
    assert clip["kind"] == "video" and clip["error"] is None
    assert [f["frame"] for f in clip["frames"]] == [0, 1, 2, 3, 4]
    for frame in clip["frames"]:
        (face,) = frame["faces"]
        assert len(face["points"]) == 14 and len(face["confidence"]) == 14
        assert all(-0.5 <= v <= 95.5 for p in face["points"] for v in p)
    assert "cannot read" in files[str(tmp_path / "broken.jpg")]["error"]
    assert files["album/sub/a.png"]["frames"][0]["faces"]

    with open(out / "predictions.csv") as f:
        rows = list(csv.reader(f))
    first = ["file", "frame", "face", "box_x0", "box_y0", "box_x1", "box_y1", "score", "quality", "is_face"]
    assert rows[0][:10] == first  # quality and is_face after the score (issue 25)
    names = load_schema("fdd14").point_names
    assert rows[0][10:12] == [f"{names[0]}_x", f"{names[0]}_y"] and rows[0][-1] == f"{names[-1]}_conf"
    assert len(rows[0]) == 10 + 3 * 14
    assert len(rows) == 1 + 5 + 1 + 1  # header, 5 video frames, photo, a.png

    annotated = cv2.VideoCapture(str(out / "annotated" / "clip.mp4"))
    assert annotated.isOpened() and int(annotated.get(cv2.CAP_PROP_FRAME_COUNT)) == 5
    annotated.release()
    assert (out / "annotated" / "album" / "sub" / "a.png").is_file()
    assert (out / "annotated" / "photo.jpg").is_file()


def test_video_stride_boxes_and_no_draw(ckpt, tmp_path):
    video = write_video(tmp_path / "clip.avi")
    image = tmp_path / "two.png"
    cv2.imwrite(str(image), np.hstack([_frame(0), _frame(2)]))
    boxes = tmp_path / "boxes.json"
    boxes.write_text(json.dumps({"two.png": [[0, 0, 95, 95], [96, 0, 191, 95]], "clip.avi": [[10, 10, 80, 80]]}))
    out = tmp_path / "out"
    rc = predict(video, image, "--model", ckpt, "--out", out, "--boxes", boxes, "--video-stride", "2", "--no-draw")
    assert rc == 0
    data = json.loads((out / "predictions.json").read_text())
    assert data["detector"] == "boxes"
    files = {Path(r["file"]).name: r for r in data["files"]}
    assert [f["frame"] for f in files["clip.avi"]["frames"]] == [0, 2, 4]
    assert files["clip.avi"]["frames"][0]["faces"][0]["box"] == [10, 10, 80, 80]
    assert len(files["two.png"]["frames"][0]["faces"]) == 2
    assert not (out / "annotated").exists()


def test_missing_boxes_and_no_faces_are_reported_not_fatal(ckpt, tmp_path, caplog):
    blank = tmp_path / "blank.png"
    cv2.imwrite(str(blank), np.full((120, 160, 3), 128, np.uint8))
    out = tmp_path / "out"
    assert predict(blank, "--model", ckpt, "--out", out, "--detector", "blazeface") == 0
    record = json.loads((out / "predictions.json").read_text())["files"][0]
    assert record["error"] == "no face found" and record["frames"][0]["faces"] == []
    assert "no face found" in caplog.text
    boxes = tmp_path / "boxes.json"
    boxes.write_text(json.dumps({"other.png": [[0, 0, 10, 10]]}))
    before = (out / "predictions.json").read_text()
    assert predict(blank, "--model", ckpt, "--out", out, "--boxes", boxes, "--overwrite") == 1
    assert "no boxes" in caplog.text and "nothing written" in caplog.text
    assert (out / "predictions.json").read_text() == before  # nothing processed: the earlier results stay


def test_nothing_processable_exits_non_zero(ckpt, tmp_path):
    (tmp_path / "bad.jpg").write_text("x")
    assert predict(tmp_path / "bad.jpg", "--model", ckpt, "--out", tmp_path / "o") == 1
    assert not (tmp_path / "o" / "predictions.json").exists()  # nothing processed: nothing written
    assert predict(tmp_path / "nothing-here", "--model", ckpt, "--out", tmp_path / "o") == 1


def test_predict_output_schema_writes_the_other_layouts_points(ckpt, tmp_path):
    image = tmp_path / "face.png"
    cv2.imwrite(str(image), _frame(2))
    out = tmp_path / "out5"
    assert predict(image, "--model", ckpt, "--out", out, "--detector", "full", "--no-draw",
                   "--output-schema", "mtfl5") == 0
    data = json.loads((out / "predictions.json").read_text())
    assert data["model"]["schema"] == "fdd14" and data["model"]["output_schema"] == "mtfl5"
    assert data["model"]["point_names"] == list(load_schema("mtfl5").point_names)
    (face,) = data["files"][0]["frames"][0]["faces"]
    assert len(face["points"]) == 5
    with open(out / "predictions.csv") as f:
        header = next(csv.reader(f))
    assert header[10:12] == ["left_eye_centre_x", "left_eye_centre_y"] and len(header) == 10 + 3 * 5


def test_drawing_options_are_passed_not_kept(ckpt, tmp_path):
    """Issue 22: --labels / --confidence-colours reach the drawing as a DrawOptions; no module state is left."""
    from awing.app import draw, frames, inputs, outputs
    from awing.app import predict as command
    from awing.app.api import FaceLandmarks

    image = tmp_path / "face.png"
    cv2.imwrite(str(image), _frame(2))
    out = tmp_path / "out"
    assert predict(image, "--model", ckpt, "--out", out, "--detector", "full", "--labels", "--confidence-colours") == 0
    for module in (command, draw, frames, inputs, outputs):  # no module-level dict, list or set of their own
        tree = ast.parse(Path(module.__file__).read_text())
        own = {
            t.id
            for node in tree.body
            if isinstance(node, (ast.Assign, ast.AnnAssign))
            for t in (node.targets if isinstance(node, ast.Assign) else [node.target])
            if isinstance(t, ast.Name)
        }
        mutable = [k for k in own - {"__all__"} if isinstance(getattr(module, k), (dict, list, set))]
        assert mutable == [], module.__name__
    s = load_schema("fdd14")
    face = FaceLandmarks(
        np.array([10, 10, 80, 80], np.float32), np.full((14, 2), 40, np.float32), np.zeros(14), s.point_names, s.name
    )
    img = np.zeros((96, 96, 3), np.uint8)
    plain = draw.draw_faces(img, [face])
    assert (plain == draw.draw_faces(img, [face], draw.DrawOptions())).all()  # the run changed no default
    assert (draw.draw_faces(img, [face], draw.DrawOptions(labels=True)) != plain).any()
    assert (
        draw.draw_faces(img, [face], labels=True) == draw.draw_faces(img, [face], draw.DrawOptions(labels=True))
    ).all()


def test_every_detector_choice_is_a_detector_name():
    from awing.app.cli import build_parser
    from awing.detect import DETECTORS

    parser = build_parser("predict")
    sub = next(a for a in parser._actions if a.dest == "command").choices["predict"]
    choices = next(a for a in sub._actions if a.dest == "detector").choices
    assert choices == sorted(DETECTORS)  # the registry's names, not a second list
    assert {"blazeface", "blazeface-back", "opencv", "opencv-profile", "dlib", "full"} <= set(choices)
