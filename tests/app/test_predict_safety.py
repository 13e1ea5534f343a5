"""Issue 25, ``awing predict``: nothing a user ran is lost, and bad input is caught before work starts.

Earlier results are refused or replaced only with ``--overwrite`` (and then only awing's own files), two
runs never write into one folder at once, a camera that does not open writes nothing, a full disk keeps
the earlier results; damaged images are reported per file; options out of range are refused up front;
rejected boxes are drawn plainly and the CSV says which faces are faces; no progress bars into a log.
"""

from __future__ import annotations

import csv
import errno
import fcntl
import json
from pathlib import Path

import cv2
import numpy as np
import pytest

import awing.app.frames
import awing.app.predict
from awing.app.api import FaceLandmarks
from awing.app.cli import build_parser, main
from awing.app.outputs import FileResult, FrameResult, write_predictions
from awing.schemas import load_schema


@pytest.fixture(scope="module")
def ckpt(tiny_fdd_checkpoint) -> Path:
    return tiny_fdd_checkpoint


def image(path: Path, shade: int = 60) -> Path:
    img = np.full((96, 96, 3), shade, np.uint8)
    cv2.circle(img, (48, 48), 30, (180, 160, 140), -1)
    cv2.imwrite(str(path), img)
    return path


def predict(*args) -> int:
    return main(["predict", *map(str, args)])


def common(ckpt) -> list:
    return ["--model", ckpt, "--detector", "full", "--device", "cpu"]


def error_line(capsys, *needles: str) -> str:
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.startswith("awing: error:")]
    assert len(lines) == 1 and "Traceback" not in err, err
    for needle in needles:
        assert needle in lines[0], lines[0]
    return lines[0]


def listing(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


# ------------------------------------------------------------------------------------ 1. results kept
def test_a_second_run_into_the_same_out_is_refused_and_overwrite_replaces_only_awings_files(ckpt, tmp_path, capsys):
    a, b = image(tmp_path / "a.png"), image(tmp_path / "b.png", 90)
    out = tmp_path / "out"
    assert predict(a, b, "--out", out, "--format", "pts", *common(ckpt)) == 0
    (out / "notes.txt").write_text("the user's own")
    (out / "annotated" / "readme.txt").write_text("also the user's")
    before = listing(out)
    assert len(json.loads(before["predictions.json"])["files"]) == 2

    # refused before any work: the model named is not even looked at
    assert predict(a, "--out", out, "--model", tmp_path / "no-such-model.pt", "--detector", "full") == 2
    error_line(capsys, str(out), "already holds", "--overwrite")
    assert listing(out) == before

    assert predict(a, "--out", out, "--overwrite", *common(ckpt)) == 0
    assert [r["file"] for r in json.loads((out / "predictions.json").read_text())["files"]] == [str(a)]
    assert (out / "annotated" / "a.png").is_file() and not (out / "annotated" / "b.png").exists()
    assert not (out / "pts").exists()  # the earlier run's .pts files (and their emptied folder) are gone
    assert (out / "notes.txt").read_text() == "the user's own"
    assert (out / "annotated" / "readme.txt").read_text() == "also the user's"


def test_a_second_run_while_the_first_holds_the_folder_is_refused(ckpt, tmp_path, capsys):
    photo = image(tmp_path / "a.png")
    out = tmp_path / "out"
    out.mkdir()
    with open(out / ".lock", "a+") as held:  # what a running `awing predict` holds
        fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)
        assert predict(photo, "--out", out, *common(ckpt)) == 2
        error_line(capsys, str(out), "in use by another awing run")
        assert not (out / "predictions.json").exists()
    # a lock file left by a run that died (its pid gone, its flock released by the OS) does not block
    (out / ".lock").write_text("999999999\n")
    assert predict(photo, "--out", out, *common(ckpt)) == 0
    assert (out / "predictions.json").is_file()


def test_a_camera_that_does_not_open_writes_nothing(ckpt, tmp_path):
    nothing = tmp_path / "no-camera.mp4"
    new = tmp_path / "new"
    assert predict("--camera", nothing, "--out", new, *common(ckpt)) == 1
    assert not new.exists()  # the source is opened before any output is made
    out = tmp_path / "out"
    out.mkdir()
    (out / "predictions.json").write_text('{"files": ["the earlier results"]}')
    before = listing(out)
    assert predict("--camera", nothing, "--out", out, "--overwrite", *common(ckpt)) == 1
    assert listing(out) == before and [p.name for p in out.iterdir()] == ["predictions.json"]


def test_a_full_disk_while_writing_predictions_json_keeps_the_earlier_results(ckpt, tmp_path, monkeypatch, capsys):
    a, b = image(tmp_path / "a.png"), image(tmp_path / "b.png", 90)
    out = tmp_path / "out"
    assert predict(a, b, "--out", out, *common(ckpt)) == 0
    before = (out / "predictions.json").read_bytes()
    real = Path.write_text

    def full_disk(self, text, *args, **kwargs):
        if self.name.startswith(".predictions.json."):  # the temporary file of predictions.json
            real(self, text[: len(text) // 2])
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(self, text, *args, **kwargs)

    monkeypatch.setattr(Path, "write_text", full_disk)
    assert predict(a, "--out", out, "--overwrite", *common(ckpt)) == 2
    error_line(capsys, "no space left", str(out / "predictions.json"), "unchanged")
    monkeypatch.undo()
    assert (out / "predictions.json").read_bytes() == before
    assert len(json.loads(before)["files"]) == 2
    assert (out / "annotated" / "b.png").is_file()  # a run that failed removes none of the earlier files
    assert not [p.name for p in out.iterdir() if p.name.endswith(".tmp")]


# ------------------------------------------------------------------------------------ 2. damaged input
def test_damaged_images_are_reported_per_file_and_the_rest_processed(ckpt, tmp_path, caplog, damaged_jpegs):
    good, cut, corrupt = damaged_jpegs
    junk = tmp_path / "junk.png"
    junk.write_text("not an image")
    out = tmp_path / "out"
    caplog.set_level("INFO")
    assert predict(good, cut, corrupt, "--out", out, *common(ckpt)) == 1  # damaged files: non-zero
    files = {Path(r["file"]).name: r for r in json.loads((out / "predictions.json").read_text())["files"]}
    assert files["good.jpg"]["error"] is None and files["good.jpg"]["frames"][0]["faces"]
    for name, said in (("cut.jpg", "Premature end"), ("corrupt.jpg", "Corrupt JPEG data")):
        assert files[name]["frames"] == [], name
        assert files[name]["error"].startswith("damaged image data") and said in files[name]["error"], files[name]
    assert "3 file(s), 1 face(s); 2 damaged" in caplog.text
    assert not (out / "annotated" / "cut.jpg").exists()
    # an unreadable file is reported the same way (its own count) and gives the same exit code
    assert predict(good, junk, "--out", tmp_path / "o2", *common(ckpt)) == 1
    assert "2 file(s), 1 face(s); 1 unreadable" in caplog.text
    assert predict(good, "--out", tmp_path / "o3", *common(ckpt)) == 0  # every input processed


# -------------------------------------------------------------------------------- 3. options checked
@pytest.mark.parametrize(
    "option, value, message",
    [
        ("--enlarge", "1e9", "argument --enlarge: must be a number in [-0.9, 10]"),
        ("--crop-size", "100000", "argument --crop-size: must be a whole number of pixels in [16, 4096]"),
        ("--crop-size", "8", "argument --crop-size: must be a whole number of pixels in [16, 4096]"),
        ("--track-min-confidence", "5", "argument --track-min-confidence: must be a number in [0, 1]"),
        ("--track-min-confidence", "-0.1", "argument --track-min-confidence: must be a number in [0, 1]"),
    ],
)
def test_an_out_of_range_option_is_one_line_before_any_work(tmp_path, monkeypatch, capsys, option, value, message):
    def no_work(*args, **kwargs):
        raise AssertionError("work started")

    monkeypatch.setattr(awing.app.predict, "FaceAligner", no_work)
    monkeypatch.setattr(awing.app.frames, "read_image", no_work)
    photo = image(tmp_path / "a.png")
    with pytest.raises(SystemExit) as stop:
        predict(photo, "--out", tmp_path / "out", "--crops", tmp_path / "crops", option, value)
    assert stop.value.code == 2
    (line,) = [line for line in capsys.readouterr().err.splitlines() if "error:" in line]
    assert message in line and line.endswith(f"got {value}")
    assert not (tmp_path / "out").exists() and not (tmp_path / "crops").exists()


def test_the_edges_of_the_ranges_are_taken():
    parser = build_parser("predict")
    for enlarge, size, confidence in (("10", "4096", "1"), ("-0.9", "16", "0")):
        args = ["predict", "a.png", "--enlarge", enlarge, "--crop-size", size, "--track-min-confidence", confidence]
        parsed = parser.parse_args(args)
        assert (parsed.enlarge, parsed.crop_size, parsed.track_min_confidence) == (
            float(enlarge),
            int(size),
            float(confidence),
        )


# ------------------------------------------------------------------------------------ 4. is_face shown
def test_predictions_csv_has_quality_and_is_face_after_the_score(tmp_path):
    s = load_schema("mtfl5")

    def face(quality):
        box, pts = np.array([0, 0, 50, 50], np.float32), np.full((5, 2), 20, np.float32)
        return FaceLandmarks(box, pts, np.full(5, quality), s.point_names, s.name, score=0.9, quality=quality)

    model = {"path": "m", "schema": s.name, "output_schema": s.name, "point_names": list(s.point_names)}
    header = {"model": model, "detector": "full", "enlarge": 0.0, "missing": []}
    write_predictions(tmp_path, header, [FileResult("a.png", "image", [FrameResult(0, [face(0.8), face(0.1)])])])
    with open(tmp_path / "predictions.csv") as f:
        rows = list(csv.DictReader(f))
    assert list(rows[0])[7:11] == ["score", "quality", "is_face", f"{s.point_names[0]}_x"]
    assert [(r["quality"], r["is_face"]) for r in rows] == [("0.8", "1"), ("0.1", "0")]


# ------------------------------------------------------------------------------------ 5. progress bars
def test_no_progress_bars_when_stderr_is_not_a_terminal(ckpt, tmp_path, capsys):
    photo = image(tmp_path / "a.png")
    video = tmp_path / "clip.mp4"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"mp4v"), 10.0, (96, 96))
    for _ in range(3):
        writer.write(cv2.imread(str(photo)))
    writer.release()
    assert predict(photo, video, "--out", tmp_path / "out", *common(ckpt)) == 0
    err = capsys.readouterr().err  # pytest's capture: not a terminal, as a log file is not
    assert "\r" not in err and "it/s" not in err and "file/s" not in err and "frame/s" not in err, err
