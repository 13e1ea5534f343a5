"""BlazeFace's runtimes: ONNX Runtime on the shipped .onnx conversions and OpenCV's DNN on the .tflite files
give the same boxes and scores on real photos; ``runtime=`` picks one in one place, with clear errors."""

from __future__ import annotations

import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

import awing.detect.blazeface as blazeface
from awing.core.extras import MissingExtra
from awing.core.images import load_image
from awing.detect import DETECTORS, BlazeFaceDetector, get_detector
from awing.detect.blazeface import BLAZEFACE_MODELS, MODEL_DIR, RUNTIMES, resolve_runtime

from shared_data import SHARED, need

EXAMPLE = Path(__file__).resolve().parents[2] / "docs" / "assets" / "example.jpg"
FIXTURES = SHARED / "fixtures" / "mmpose_samples"
# Real photos of the blazeface tests: FDD-14 face crops, a crowd (18 faces for the back model, none for the
# short one), two MPII photos with small faces, two 300-W photos; and the synthetic example face.
PHOTOS = [
    SHARED / "fdd14" / "images" / "simple_0001.jpg",
    SHARED / "fdd14" / "images" / "simple_1601.jpg",
    SHARED / "fdd14" / "images" / "complex_1700.jpg",
    FIXTURES / "wflw" / "7_Cheering_Cheering_7_16.jpg",
    FIXTURES / "mpii" / "060754485.jpg",
    FIXTURES / "mpii" / "005808361.jpg",
    FIXTURES / "300w" / "indoor_020.png",
    FIXTURES / "300w" / "indoor_029.png",
]
BOX_ATOL, SCORE_ATOL = 0.05, 1e-4  # pixels, probability

needs_ort = pytest.mark.skipif(not blazeface.onnxruntime_available(), reason="onnxruntime is not installed")


def _hide_onnxruntime(monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # `import onnxruntime` now raises ImportError


def _photos() -> list[np.ndarray]:
    found = [load_image(p) for p in PHOTOS if p.is_file()]
    if not found:
        need(PHOTOS[0])  # skips, naming the missing shared data
    return [load_image(EXAMPLE), *found]


def _same(a: tuple[np.ndarray, np.ndarray], b: tuple[np.ndarray, np.ndarray]) -> None:
    (boxes_a, scores_a), (boxes_b, scores_b) = a, b
    assert boxes_a.shape == boxes_b.shape and scores_a.shape == scores_b.shape
    np.testing.assert_allclose(boxes_a, boxes_b, rtol=0, atol=BOX_ATOL)
    np.testing.assert_allclose(scores_a, scores_b, rtol=0, atol=SCORE_ATOL)


# ---------------------------------------------------------------------------------------------- same results
@needs_ort
@pytest.mark.parametrize("model", list(BLAZEFACE_MODELS))
def test_onnx_and_opencv_give_the_same_boxes_and_scores(model):
    onnx = BlazeFaceDetector(model, runtime="onnx", threads=1)
    opencv = BlazeFaceDetector(model, runtime="opencv")
    assert onnx.path.suffix == ".onnx" and opencv.path.suffix == ".tflite"
    faces = 0
    for rgb in _photos():
        a, b = onnx._run(rgb), opencv._run(rgb)  # each model's own boxes, before any selection
        _same(a, b)
        faces += len(a[0])
    assert faces >= 6  # it saw faces (the short model: the example, 3 FDD, 2 300-W; the back model 18 in the crowd)
    size = BLAZEFACE_MODELS[model].size
    blob = cv2.dnn.blobFromImage(np.random.default_rng(0).integers(0, 256, (size, size, 3), np.uint8), 1 / 127.5)
    for x, y in zip(onnx._forward(blob - 1.0), opencv._forward(blob - 1.0)):  # raw outputs, on noise
        assert x.shape == y.shape
        np.testing.assert_allclose(x, y, rtol=0, atol=2e-4)


@needs_ort
def test_the_default_strategies_agree_across_runtimes():
    onnx, opencv = BlazeFaceDetector(runtime="onnx", threads=1), BlazeFaceDetector(runtime="opencv")
    assert onnx.fallback.runtime == "onnx" and opencv.fallback.runtime == "opencv"  # both models, one runtime
    assert onnx.mode == opencv.mode == "cascade"
    for rgb in _photos():
        _same(onnx.detect(rgb), opencv.detect(rgb))
    onnx.video = opencv.video = True
    for rgb in _photos()[:3]:
        _same(onnx.detect(rgb), opencv.detect(rgb))


# ---------------------------------------------------------------------------------------------- choosing
@needs_ort
def test_auto_picks_onnx_where_it_imports():
    assert resolve_runtime("auto") == "onnx"
    det = BlazeFaceDetector()
    assert det.runtime == det.fallback.runtime == "onnx" and det.path == MODEL_DIR / "face_detection_short_range.onnx"
    assert "runtime='onnx'" in repr(det) and "threads=" in repr(det)
    # every registered BlazeFace name goes through the same constructor
    assert get_detector("blazeface").runtime == get_detector("blazeface-back").runtime == "onnx"
    assert get_detector("blazeface-back", runtime="opencv").path.name == "face_detection_back.tflite"
    assert resolve_runtime("auto", onnx_file=False) == "opencv"  # a .tflite file given by path


def test_auto_picks_opencv_without_onnxruntime(monkeypatch):
    _hide_onnxruntime(monkeypatch)
    assert blazeface.onnxruntime_available() is False and resolve_runtime("auto") == "opencv"
    det = get_detector("blazeface")
    assert det.runtime == det.fallback.runtime == "opencv" and det.path.suffix == ".tflite"
    assert "runtime='opencv'" in repr(det) and len(det.detect(load_image(EXAMPLE))[0]) == 1


def test_onnx_without_onnxruntime_is_a_clear_error(monkeypatch):
    _hide_onnxruntime(monkeypatch)
    with pytest.raises(MissingExtra, match=r"runtime='onnx'.*onnxruntime.*pip install \"awing\[onnx\]\""):
        BlazeFaceDetector(runtime="onnx")
    with pytest.raises(ImportError, match="onnxruntime"):  # MissingExtra is an ImportError
        get_detector("blazeface-back", runtime="onnx")


@pytest.mark.parametrize("runtime", ["tflite", "ONNX", "", None, 1])
def test_an_unknown_runtime_names_the_choices(runtime):
    with pytest.raises(ValueError, match="runtime must be one of 'auto', 'onnx', 'opencv'"):
        BlazeFaceDetector(runtime=runtime)
    assert RUNTIMES == ("auto", "onnx", "opencv")


@pytest.mark.parametrize("threads", [0, -1, 1.5, True, "2"])
def test_threads_must_be_a_whole_number(threads):
    with pytest.raises(ValueError, match="threads"):
        BlazeFaceDetector("short", threads=threads)


@needs_ort
def test_threads_reach_the_onnx_session(monkeypatch):
    assert BlazeFaceDetector("short", runtime="onnx", threads=3).threads == 3
    det = BlazeFaceDetector(runtime="onnx", threads=1)
    assert det.threads == det.fallback.threads == 1 and "threads=1" in repr(det)
    for d in (det, det.fallback):
        assert d._net.session.get_session_options().intra_op_num_threads == 1
    monkeypatch.setattr(cv2, "getNumThreads", lambda: 5)  # None: OpenCV's thread count at construction
    assert BlazeFaceDetector("short", runtime="onnx").threads == 5
    assert BlazeFaceDetector("short", runtime="opencv").threads is None  # cv2.dnn: OpenCV's own setting


@needs_ort
def test_model_files_by_path_follow_their_format(tmp_path):
    """A .onnx path: either runtime (cv2.dnn reads ONNX too); a .tflite path: OpenCV only."""
    tflite = MODEL_DIR / BLAZEFACE_MODELS["short"].file
    onnx_file = MODEL_DIR / BLAZEFACE_MODELS["short"].onnx_file
    assert BlazeFaceDetector(tflite).runtime == "opencv"  # auto: ONNX Runtime cannot read it
    with pytest.raises(ValueError, match="cannot read a .tflite file"):
        BlazeFaceDetector(tflite, runtime="onnx")
    image = load_image(EXAMPLE)
    reference = BlazeFaceDetector("short", runtime="opencv").detect(image)
    for runtime in ("auto", "onnx", "opencv"):
        det = BlazeFaceDetector(onnx_file, runtime=runtime, threads=1)
        assert det.path == onnx_file and det.runtime == ("opencv" if runtime == "opencv" else "onnx")
        _same(det.detect(image), reference)
    with pytest.raises(FileNotFoundError, match="nope.onnx"):
        BlazeFaceDetector(tmp_path / "nope.onnx")


def test_registry_names_build_through_the_one_constructor():
    assert DETECTORS["blazeface"] is BlazeFaceDetector
    assert getattr(DETECTORS["blazeface-back"], "func", None) is BlazeFaceDetector
    assert get_detector("blazeface", runtime="opencv").runtime == "opencv"


# ---------------------------------------------------------------------------------------------- files
def test_the_onnx_conversions_ship_beside_the_tflite_files():
    notice = (MODEL_DIR / "NOTICE").read_text()
    for spec in BLAZEFACE_MODELS.values():
        assert (MODEL_DIR / spec.onnx_file).stat().st_size > 100_000 and spec.onnx_file in notice
    assert "tflite2onnx" in notice and "tools/convert_blazeface.py" in notice
    assert (Path(__file__).resolve().parents[2] / "tools" / "convert_blazeface.py").is_file()


@needs_ort
def test_missing_onnx_file_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setattr(blazeface, "MODEL_DIR", tmp_path)
    with pytest.raises(FileNotFoundError, match="face_detection_short_range.onnx.*runtime='opencv'"):
        BlazeFaceDetector(runtime="onnx")
