"""Issue 11: failures that must be loud and clear -- strict JSON, missing extras, bad checkpoints, CLI
edge cases and argument checks -- one ``awing: error: ...`` line (exit 2) and no traceback."""

from __future__ import annotations

import argparse
import errno
import importlib.util
import json
import math
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from awing.app.api import FaceAligner
from awing.app.cli import main
from awing.core.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from awing.core.extras import MissingExtra
from awing.core.images import load_image
from awing.engine.metrics import to_jsonable
from awing.method.model import create_model, model_from_checkpoint, model_payload
from awing.schemas import load_schema


def tiny_payload(nan: bool = False) -> dict:
    torch.manual_seed(0)
    model = create_model("awing-1hg-tiny", 14, width=32)
    if nan:  # a model gone wrong: every heatmap NaN
        with torch.no_grad():
            model.outputs[-1].bias.fill_(float("nan"))
    return model_payload(model, load_schema("fdd14"))


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory) -> Path:
    return save_checkpoint(tmp_path_factory.mktemp("model") / "tiny.pt", tiny_payload())


@pytest.fixture
def photo(tmp_path) -> Path:
    img = np.full((96, 96, 3), 60, np.uint8)
    cv2.circle(img, (48, 48), 30, (180, 160, 140), -1)
    path = tmp_path / "photo.png"
    cv2.imwrite(str(path), img)
    return path


def strict_json(text: str):
    """``json.loads`` as strict parsers read JSON: ``NaN``, ``Infinity`` and ``-Infinity`` are errors."""

    def reject(name: str):
        raise ValueError(f"not JSON: {name}")

    return json.loads(text, parse_constant=reject)


def one_error_line(capsys, *needles: str) -> str:
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.startswith("awing: error:")]
    assert len(lines) == 1, err
    assert "Traceback" not in err
    for needle in needles:
        assert needle in lines[0], lines[0]
    return lines[0]


def predict(*args) -> int:
    return main(["predict", *map(str, args)])


# ---------------------------------------------------------------------------------- 1. strict JSON
def test_predictions_json_is_strict_json_when_the_model_outputs_nan(tmp_path, photo):
    bad = save_checkpoint(tmp_path / "nan.pt", tiny_payload(nan=True))
    out = tmp_path / "out"
    assert predict(photo, "--model", bad, "--out", out, "--detector", "full", "--device", "cpu", "--no-draw") == 0
    data = strict_json((out / "predictions.json").read_text())  # raised on a bare NaN before the fix
    (face,) = data["files"][0]["frames"][0]["faces"]
    values = [*face["confidence"], *(v for p in face["points"] for v in p)]
    assert None in values  # the non-finite values, as null
    assert all(v is None or math.isfinite(v) for v in values)


def test_to_jsonable_makes_results_strict_json():
    data = to_jsonable({"nme": np.float32("nan"), "fr": {"0.1": float("inf")}, "ced": np.array([0.5, -np.inf])})
    assert strict_json(json.dumps(data, allow_nan=False)) == {"nme": None, "fr": {"0.1": None}, "ced": [0.5, None]}


# ------------------------------------------------------------------------------- 2. missing extras
def test_export_onnx_without_onnx_names_the_extra(ckpt, tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "onnx", None)  # `import onnx` fails
    assert main(["export", str(ckpt), "--format", "onnx", "--out", str(tmp_path / "m.onnx")]) == 2
    one_error_line(capsys, 'pip install "awing[onnx]"', "onnx")
    assert not (tmp_path / "m.onnx").exists()


def test_export_check_without_onnxruntime_names_the_extra_before_writing(ckpt, tmp_path, monkeypatch, capsys):
    pytest.importorskip("onnx", reason="onnx present, onnxruntime missing: needs the onnx extra installed")
    monkeypatch.setitem(sys.modules, "onnxruntime", None)
    assert main(["export", str(ckpt), "--format", "onnx", "--out", str(tmp_path / "m.onnx"), "--check"]) == 2
    one_error_line(capsys, 'pip install "awing[onnx]"', "onnxruntime")
    assert not (tmp_path / "m.onnx").exists()


def test_backend_onnx_without_onnxruntime_names_the_extra(ckpt, tmp_path, photo, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "onnxruntime", None)
    with pytest.raises(MissingExtra, match=r"awing\[onnx\]"):
        FaceAligner(ckpt, detector="full", backend="onnx")
    assert predict(photo, "--model", ckpt, "--out", tmp_path / "o", "--detector", "full", "--backend", "onnx") == 2
    one_error_line(capsys, 'pip install "awing[onnx]"', "onnxruntime")


def test_dlib_detector_without_dlib_names_the_extra(ckpt, tmp_path, photo, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "dlib", None)
    with pytest.raises(MissingExtra, match=r"awing\[dlib\]"):
        FaceAligner(ckpt, detector="dlib")
    assert predict(photo, "--model", ckpt, "--out", tmp_path / "o", "--detector", "dlib") == 2
    one_error_line(capsys, "awing[dlib]", "dlib")


def test_missing_extra_is_an_import_error():
    assert issubclass(MissingExtra, ImportError)


# ---------------------------------------------------------------------------------- 3. checkpoints
WRONG_FIELDS = {
    "spec-not-a-mapping": lambda c: {**c, "spec": [14, 1, 32]},
    "spec-num-points-str": lambda c: {**c, "spec": {**c["spec"], "num_points": "14"}},
    "spec-width-float": lambda c: {**c, "spec": {**c["spec"], "width": 32.0}},
    "spec-width-zero": lambda c: {**c, "spec": {**c["spec"], "width": 0}},
    "spec-boundary-int": lambda c: {**c, "spec": {**c["spec"], "boundary": 1}},
    "spec-stem-int": lambda c: {**c, "spec": {**c["spec"], "stem": 1}},
    "spec-stem-unknown": lambda c: {**c, "spec": {**c["spec"], "stem": "resnet"}},
    "schema-str": lambda c: {**c, "schema": "fdd14"},
    "schema-normalisers-list": lambda c: {**c, "schema": {**c["schema"], "normalisers": ["a", "b"]}},
    "codec-str": lambda c: {**c, "codec": "gaussian"},
    "model-list": lambda c: {**c, "model": list(c["model"].values())},
    "config-list": lambda c: {**c, "config": ["targets"]},
    "inference-list": lambda c: {**c, "inference": [0.1]},
    "inference-enlarge-str": lambda c: {**c, "inference": {"enlarge": {"full": "big"}}},
    "inference-enlarge-nan": lambda c: {**c, "inference": {"enlarge": {"full": float("nan")}}},
}


@pytest.fixture(params=sorted(WRONG_FIELDS))
def wrong_ckpt(request, ckpt, tmp_path) -> Path:
    base = {k: v for k, v in load_checkpoint(ckpt).items() if k != "format"}
    return save_checkpoint(tmp_path / f"{request.param}.pt", WRONG_FIELDS[request.param](base))


def test_wrong_typed_checkpoint_fields_are_clear_errors_everywhere(wrong_ckpt, tmp_path, photo, capsys):
    with pytest.raises(CheckpointError, match="checkpoint"):
        FaceAligner(wrong_ckpt, device="cpu", detector="full")
    commands = {
        "eval": ["eval", str(wrong_ckpt), "--device", "cpu", "--out", str(tmp_path / "eval")],
        "predict": ["predict", str(photo), "--model", str(wrong_ckpt), "--out", str(tmp_path / "p"), "--detector",
                    "full", "--device", "cpu"],
        "export weights": ["export", str(wrong_ckpt), "--format", "weights", "--out", str(tmp_path / "w.pt")],
        "export onnx": ["export", str(wrong_ckpt), "--format", "onnx", "--out", str(tmp_path / "m.onnx")],
    }
    if importlib.util.find_spec("onnx") is None:  # without it, export --format onnx names the extra first
        del commands["export onnx"]
    for name, argv in commands.items():
        assert main(argv) == 2, name
        one_error_line(capsys, "checkpoint")
    assert not (tmp_path / "w.pt").exists() and not (tmp_path / "m.onnx").exists()


def test_export_weights_validates_the_model_before_writing(ckpt, tmp_path, capsys):
    base = {k: v for k, v in load_checkpoint(ckpt).items() if k != "format"}
    mismatched = save_checkpoint(tmp_path / "wide.pt", {**base, "spec": {**base["spec"], "width": 48}})
    out = tmp_path / "small.pt"
    assert main(["export", str(mismatched), "--format", "weights", "--out", str(out)]) == 2
    one_error_line(capsys, "do not match")
    assert not out.exists()
    assert main(["export", str(ckpt), "--format", "weights", "--out", str(out)]) == 0
    model_from_checkpoint(load_checkpoint(out))


def test_random_bytes_are_not_an_awing_checkpoint(tmp_path, capsys):
    junk = tmp_path / "junk.pt"
    junk.write_bytes(np.random.default_rng(1).integers(0, 256, 4096, dtype=np.uint8).tobytes())
    with pytest.raises(CheckpointError, match="not a loadable awing checkpoint") as info:
        FaceAligner(junk)
    assert "weights_only=False" not in str(info.value) and "weights_only` set to `False" not in str(info.value)
    assert main(["export", str(junk), "--format", "weights", "--out", str(tmp_path / "w.pt")]) == 2
    line = one_error_line(capsys, "not a loadable awing checkpoint")
    assert "weights_only" not in line and len(line) < 300


def test_an_onnx_file_is_not_an_awing_checkpoint(ckpt, tmp_path):
    # a ModelProto starts with ir_version (field 1) then producer_name (field 2); named .bin so the
    # header, not the suffix, is what tells
    fake = tmp_path / "model.bin"
    fake.write_bytes(b"\x08\x08\x12\x07pytorch\x1a\x032.1" + bytes(200))
    with pytest.raises(CheckpointError, match="is an ONNX file") as info:
        load_checkpoint(fake)
    assert "weights_only" not in str(info.value)
    pytest.importorskip("onnx")
    from awing.app.export import export_onnx

    model, schema, _ = model_from_checkpoint(load_checkpoint(ckpt))
    real = export_onnx(model, schema, tmp_path / "m.onnx")
    with pytest.raises(CheckpointError, match="is an ONNX file"):
        FaceAligner(real)
    renamed = real.rename(tmp_path / "m.pt")
    with pytest.raises(CheckpointError, match="is an ONNX file"):
        FaceAligner(renamed)


def test_a_pickle_with_objects_says_so_without_torchs_advice(tmp_path):
    path = tmp_path / "objects.pt"
    torch.save({"format": "awing-checkpoint-v1", "extra": argparse.Namespace(a=1)}, path)
    with pytest.raises(CheckpointError, match=r"Python objects \(argparse.Namespace\)") as info:
        load_checkpoint(path)
    assert "weights_only=False" not in str(info.value) and "Re-running" not in str(info.value)


def test_a_full_disk_says_no_space_left_and_keeps_the_old_checkpoint(ckpt, tmp_path, monkeypatch, capsys):
    target = tmp_path / "best.pt"
    save_checkpoint(target, tiny_payload())
    before = target.read_bytes()

    def full_disk(obj, f, *args, **kwargs):
        Path(f).write_bytes(b"partial")
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(torch, "save", full_disk)
    with pytest.raises(OSError, match="no space left") as info:
        save_checkpoint(target, tiny_payload())
    assert info.value.errno == errno.ENOSPC and "unchanged" in str(info.value)
    assert target.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["best.pt"]  # no temporary file left behind
    assert main(["export", str(ckpt), "--format", "weights", "--out", str(target)]) == 2
    one_error_line(capsys, "no space left", str(target))
    assert target.read_bytes() == before


def test_other_save_errors_are_not_called_a_full_disk(tmp_path, monkeypatch):
    def denied(obj, f, *args, **kwargs):
        raise PermissionError(errno.EACCES, "Permission denied")

    monkeypatch.setattr(torch, "save", denied)
    with pytest.raises(PermissionError):
        save_checkpoint(tmp_path / "x.pt", {"model": {}})


# ---------------------------------------------------------------------------------- 4. CLI edges
def test_predict_out_naming_a_file_is_refused(ckpt, tmp_path, photo, capsys):
    taken = tmp_path / "taken.txt"
    taken.write_text("keep me")
    assert predict(photo, "--model", ckpt, "--out", taken, "--detector", "full") == 2
    one_error_line(capsys, str(taken), "is a file")
    assert taken.read_text() == "keep me"


def test_eval_out_naming_a_file_is_refused_up_front(ckpt, tmp_path, capsys):
    taken = tmp_path / "taken.txt"
    taken.write_text("keep me")
    assert main(["eval", str(ckpt), "synthetic:/nowhere:test", "--device", "cpu", "--out", str(taken)]) == 2
    one_error_line(capsys, str(taken), "is a file")
    assert taken.read_text() == "keep me"


def test_export_out_naming_a_folder_is_refused(ckpt, tmp_path, capsys):
    for fmt in ("weights", "onnx"):
        assert main(["export", str(ckpt), "--format", fmt, "--out", str(tmp_path)]) == 2
        one_error_line(capsys, "is a folder")


@pytest.mark.parametrize("opset", ["6", "10", "99"])
def test_export_opset_out_of_range_is_refused(ckpt, tmp_path, capsys, opset):
    assert main(["export", str(ckpt), "--format", "onnx", "--opset", opset, "--out", str(tmp_path / "m.onnx")]) == 2
    one_error_line(capsys, f"opset {opset}", "11")
    assert not (tmp_path / "m.onnx").exists()


def test_export_at_the_lowest_supported_opset_works(ckpt, tmp_path):
    pytest.importorskip("onnx")
    pytest.importorskip("onnxruntime")
    assert main(["export", str(ckpt), "--opset", "11", "--out", str(tmp_path / "m.onnx"), "--check"]) == 0


def test_predict_out_inside_the_input_folder_does_not_read_its_own_copies(ckpt, tmp_path, photo):
    album = tmp_path / "album"
    album.mkdir()
    photo.rename(album / "a.png")
    out = album / "predictions"
    for again in ([], ["--overwrite"]):  # the second run finds the first run's annotated copy inside the folder
        assert predict(album, "--model", ckpt, "--out", out, "--detector", "full", "--device", "cpu", *again) == 0
        files = [r["file"] for r in strict_json((out / "predictions.json").read_text())["files"]]
        assert files == ["album/a.png"]
    assert (out / "annotated" / "album" / "a.png").is_file()


def test_missing_inputs_are_listed_and_the_rest_processed(ckpt, tmp_path, photo):
    out = tmp_path / "out"
    gone = tmp_path / "gone.jpg"
    # a path that does not exist makes the exit code 1 (issue 25), and the rest is still processed and written
    assert predict(photo, gone, "--model", ckpt, "--out", out, "--detector", "full", "--device", "cpu") == 1
    data = strict_json((out / "predictions.json").read_text())
    assert data["missing"] == [str(gone)]
    assert [r["file"] for r in data["files"]] == [str(photo)] and data["files"][0]["error"] is None
    assert predict(gone, "--model", ckpt, "--out", tmp_path / "none", "--detector", "full") == 1  # nothing at all


# -------------------------------------------------------------------------------- 5. argument checks
@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"max_batch": 0}, "max_batch"),
        ({"max_batch": -3}, "max_batch"),
        ({"max_batch": 2.5}, "max_batch"),
        ({"max_batch": True}, "max_batch"),
        ({"enlarge": float("nan")}, "enlarge"),
        ({"enlarge": float("inf")}, "enlarge"),
        ({"enlarge": -0.95}, "enlarge"),
        ({"enlarge": "0.2"}, "enlarge"),
    ],
)
def test_face_aligner_rejects_bad_arguments_at_construction(ckpt, kwargs, match):
    with pytest.raises(ValueError, match=match):
        FaceAligner(ckpt, device="cpu", detector="full", **kwargs)


def test_face_aligner_takes_edge_values(ckpt):
    aligner = FaceAligner(ckpt, device="cpu", detector="full", max_batch=1, enlarge=-0.9)
    assert aligner.max_batch == 1 and aligner.enlarge == -0.9


def test_enlarge_nan_on_the_command_line_is_one_line(ckpt, tmp_path, photo, capsys):
    with pytest.raises(SystemExit) as stop:  # argparse's own error line (issue 25: --enlarge has a range)
        predict(photo, "--model", ckpt, "--out", tmp_path / "o", "--detector", "full", "--enlarge", "nan")
    assert stop.value.code == 2
    (line,) = [line for line in capsys.readouterr().err.splitlines() if "error:" in line]
    assert "argument --enlarge: must be a number in [-0.9, 10]" in line and line.endswith("got nan")


def test_predict_batch_wants_a_list(ckpt, photo):
    aligner = FaceAligner(ckpt, device="cpu", detector="full", fast=False)
    for single in (str(photo), photo, load_image(photo)):
        with pytest.raises(ValueError, match="predict_batch takes a list"):
            aligner.predict_batch(single)
    image = load_image(photo)
    assert [len(faces) for faces in aligner.predict_batch([image, str(photo)], color="RGB")] == [1, 1]
    assert [len(faces) for faces in aligner.predict_batch(np.stack([image, image, image]), color="RGB")] == [1, 1, 1]


@pytest.mark.parametrize(
    "array, advice",
    [
        (np.full((8, 8, 3), 40000, np.uint16), "(img // 257).astype(np.uint8)"),
        (np.full((8, 8, 3), 0.5, np.float32), "floats in [0, 1]: convert with (img * 255).round()"),
        (np.full((8, 8, 3), 200.0, np.float64), "floats in [0, 255]: convert with img.clip(0, 255)"),
        (np.ones((8, 8), bool), "a bool mask is not an image"),
    ],
    ids=["uint16", "float-0-1", "float-0-255", "bool"],
)
def test_load_image_dtype_advice_fits_the_dtype(array, advice):
    with pytest.raises(ValueError, match=f"got {array.dtype}") as info:
        load_image(array)
    assert advice in str(info.value)


def test_a_full_disk_while_writing_results_keeps_the_old_file(ckpt, tmp_path, photo, monkeypatch, capsys):
    """Issue 22: every result file is written atomically; a failed write names the file and leaves the old one."""
    import awing.app.outputs

    out = tmp_path / "out"
    args = [photo, "--model", ckpt, "--out", out, "--detector", "full", "--device", "cpu", "--no-draw"]
    assert predict(*args) == 0
    before = (out / "predictions.csv").read_bytes()

    class FullDisk:
        def __init__(self, f):
            f.write("file,fr")  # a part of the file, then the device is full

        def writerow(self, row):
            raise OSError(errno.ENOSPC, "No space left on device")

        writerows = writerow

    monkeypatch.setattr(awing.app.outputs.csv, "writer", FullDisk)
    assert predict(*args, "--overwrite") == 2
    one_error_line(capsys, "no space left", str(out / "predictions.csv"), "unchanged")
    assert (out / "predictions.csv").read_bytes() == before
    assert sorted(p.name for p in out.iterdir()) == [".lock", "faces.csv", "predictions.csv", "predictions.json"]
