"""FaceAligner, the detectors and the shipped-model registry, on a tiny random-weight checkpoint (and on
real FDD images from ../shared/data where present)."""

from __future__ import annotations

import argparse
import csv
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

import awing.app.models
import awing.pretrained
from awing.app.api import FaceAligner, FaceLandmarks
from awing.app.cli import main
from awing.core.checkpoint import CheckpointError, save_checkpoint
from awing.core.images import load_image
from awing.data.crop import crop_matrix, square_box, transform_points
from awing.detect import FixedBoxes, FullImageDetector, get_detector, nms
from awing.detect.blazeface import BLAZEFACE_ENLARGE
from awing.detect.detectors import HAAR_ENLARGE
from awing.method.model import create_model, model_payload
from awing.schemas import load_schema

from shared_data import SHARED, need, needs_haar

FDD = SHARED / "fdd14"


def tiny_checkpoint(path: Path, schema: str = "fdd14", metrics: dict | None = None) -> Path:
    torch.manual_seed(0)
    sch = load_schema(schema)
    model = create_model("awing-1hg-tiny", sch.num_points, width=32)
    payload = model_payload(model, sch)
    return save_checkpoint(path, {**payload, "metrics": metrics or {}})


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory) -> Path:
    return tiny_checkpoint(tmp_path_factory.mktemp("model") / "tiny.pt")


@pytest.fixture(scope="module")
def aligner(ckpt) -> FaceAligner:
    return FaceAligner(ckpt, device="cpu", detector="full", backend="torch")  # tests patch the torch model


@pytest.fixture
def image() -> np.ndarray:
    rng = np.random.default_rng(0)
    img = cv2.GaussianBlur(rng.integers(0, 256, (160, 160, 3), dtype=np.uint8), (7, 7), 0)
    cv2.circle(img, (80, 80), 50, (200, 170, 150), -1)
    return img


def count_forwards(aligner: FaceAligner, monkeypatch) -> list[int]:
    """Patch the model's forward to record each call's batch size."""
    calls: list[int] = []
    original = aligner.model.forward

    def forward(x):
        calls.append(x.shape[0])
        return original(x)

    monkeypatch.setattr(aligner.model, "forward", forward)
    return calls


# ------------------------------------------------------------------------------------------ FaceAligner
def test_full_image_detector_gives_one_face_inside_the_image(aligner, image):
    faces = aligner.predict(image, color="RGB")
    assert len(faces) == 1
    face = faces[0]
    assert isinstance(face, FaceLandmarks)
    assert face.landmarks.shape == (14, 2) and face.confidence.shape == (14,)
    assert face.schema == "fdd14" and face.point_names == load_schema("fdd14").point_names
    assert np.isfinite(face.landmarks).all()
    assert (face.landmarks >= -0.5).all() and (face.landmarks <= 159.5).all()
    np.testing.assert_allclose(face.box, [-0.5, -0.5, 159.5, 159.5])
    d = face.to_dict()
    assert len(d["points"]) == 14 and len(d["confidence"]) == 14 and len(d["box"]) == 4


def test_predict_crops_runs_all_boxes_in_one_forward_pass(aligner, image, monkeypatch):
    calls = count_forwards(aligner, monkeypatch)
    boxes = [[10, 10, 70, 80], [80, 60, 150, 150]]
    faces = aligner.predict_crops(image, boxes, color="RGB")
    assert calls == [2]
    assert len(faces) == 2
    np.testing.assert_allclose(faces[1].box, boxes[1])
    # each face's points lie in its own crop square
    for face, box in zip(faces, boxes):
        cx, cy, side = square_box(box, aligner.enlarge)
        assert (np.abs(face.landmarks - [cx, cy]) <= side / 2 + 0.5).all()


def test_predict_batch_shares_the_forward_pass(aligner, image, monkeypatch):
    calls = count_forwards(aligner, monkeypatch)
    results = aligner.predict_batch([image, image[:100], image], color="RGB")
    assert calls == [3]
    assert [len(r) for r in results] == [1, 1, 1]
    np.testing.assert_allclose(results[0][0].landmarks, results[2][0].landmarks)


def test_no_box_no_forward_pass(aligner, image, monkeypatch):
    calls = count_forwards(aligner, monkeypatch)
    assert aligner.predict_crops(image, np.zeros((0, 4)), color="RGB") == []
    assert calls == []


def test_points_map_back_through_the_crop(aligner, image, monkeypatch):
    """A heatmap peak at a known pixel must come back as the original point the crop maps it from."""
    box, peaks = [30.0, 20.0, 130.0, 140.0], [(5, 9), (20, 3)]
    s = aligner.input_size
    heat = torch.zeros(1, 15, s // 4, s // 4)
    for k, (x, y) in enumerate(peaks):
        heat[0, k, y, x] = 1.0  # isolated peak: no quarter-pixel shift
    monkeypatch.setattr(aligner.model, "forward", lambda x: [heat.expand(x.shape[0], -1, -1, -1)])
    face = aligner.predict_crops(image, [box], color="RGB", enlarge=0.25)[0]
    cx, cy, side = square_box(box, 0.25)
    m = crop_matrix((cx, cy), side, s)
    crop_points = (np.array(peaks, float) + 0.5) * 4 - 0.5
    expected = transform_points(crop_points, cv2.invertAffineTransform(m))
    np.testing.assert_allclose(face.landmarks[:2], expected, atol=1e-3)
    np.testing.assert_allclose(face.confidence[:2], 1.0)


def test_flip_test_runs_the_mirrored_crop_and_averages_its_mirrored_heatmaps(ckpt, image, monkeypatch):
    """With ``flip_test`` the model sees the crop and its mirror image; a model whose heatmaps do not
    depend on the image gives, for the mirrored pass, the mirror of the same map, so each point's
    channel is the mean of its own peak and its flip partner's mirrored peak."""
    flipper = FaceAligner(ckpt, device="cpu", detector="full", backend="torch", flip_test=True)
    s = flipper.input_size // 4
    heat = torch.zeros(1, 15, s, s)
    heat[0, 0, 10, 6] = 1.0  # point 0 at (6, 10); its flip partner (point 3) has no peak
    calls = []

    def forward(x):
        calls.append(x.shape[0])
        return [heat.expand(x.shape[0], -1, -1, -1)]

    monkeypatch.setattr(flipper.model, "forward", forward)
    face = flipper.predict_crops(image, [[30, 20, 130, 140]], color="RGB")[0]
    assert calls == [1, 1]
    partner = int(flipper.schema.flip_permutation[0])
    assert partner == 3
    np.testing.assert_allclose(face.confidence[[0, partner]], 0.5)  # each peak averaged with an empty map
    # point 3 is read where point 0's peak lands once mirrored: x = S - 1 - 6
    plain = FaceAligner(ckpt, device="cpu", detector="full", backend="torch")
    mirrored_heat = torch.zeros_like(heat)
    mirrored_heat[0, partner, 10, s - 1 - 6] = 1.0
    monkeypatch.setattr(plain.model, "forward", lambda x: [mirrored_heat.expand(x.shape[0], -1, -1, -1)])
    expected = plain.predict_crops(image, [[30, 20, 130, 140]], color="RGB")[0].landmarks[partner]
    np.testing.assert_allclose(face.landmarks[partner], expected, atol=1e-4)


def test_decoder_option_replaces_the_model_files_decoder(ckpt):
    assert FaceAligner(ckpt, device="cpu", detector="full", fast=False).codec.decoder == "quarter"
    assert FaceAligner(ckpt, device="cpu", detector="full", fast=False, decoder="dark").codec.decoder == "dark"
    with pytest.raises(ValueError, match="decoder must be one of quarter, dark"):
        FaceAligner(ckpt, device="cpu", detector="full", decoder="centroid")


def test_colour_order_and_input_kinds_agree(aligner, image, tmp_path):
    path = tmp_path / "face.png"
    cv2.imwrite(str(path), cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
    expected = aligner.predict(image, color="RGB")[0].landmarks
    np.testing.assert_allclose(aligner.predict(image[..., ::-1].copy(), color="BGR")[0].landmarks, expected)
    np.testing.assert_allclose(aligner.predict(path)[0].landmarks, expected)
    np.testing.assert_allclose(aligner.predict(str(path))[0].landmarks, expected)
    gray = load_image(image[..., 0])
    assert gray.shape == (160, 160, 3) and (gray[..., 0] == gray[..., 2]).all()
    assert load_image(np.dstack([image, np.full((160, 160), 255, np.uint8)]), color="RGB").shape == (160, 160, 3)
    pil = pytest.importorskip("PIL.Image")
    np.testing.assert_allclose(aligner.predict(pil.fromarray(image))[0].landmarks, expected)


def test_fast_path_runs_and_reports_its_precision(ckpt, image):
    fast = FaceAligner(ckpt, device="cpu", detector="full", backend="torch", fast=True)
    slow = FaceAligner(ckpt, device="cpu", detector="full", backend="torch")
    assert slow.dtype is None and "fp32" in repr(slow)  # fp32 unless fast=True is asked for
    faces = fast.predict(image, color="RGB")
    assert len(faces) == 1 and np.isfinite(faces[0].landmarks).all()


def test_onnx_backend_matches_torch_fp32(ckpt, image):
    pytest.importorskip("onnxruntime")
    torch_faces = FaceAligner(ckpt, device="cpu", detector="full", backend="torch").predict(image, color="RGB")
    onnx_aligner = FaceAligner(ckpt, detector="full", backend="onnx")
    onnx_faces = onnx_aligner.predict(image, color="RGB")
    assert "onnxruntime" in repr(onnx_aligner) and len(onnx_faces) == len(torch_faces) == 1
    np.testing.assert_allclose(onnx_faces[0].landmarks, torch_faces[0].landmarks, atol=1e-3)
    np.testing.assert_allclose(onnx_faces[0].confidence, torch_faces[0].confidence, atol=1e-4)
    with pytest.raises(ValueError, match="backend"):
        FaceAligner(ckpt, backend="tensorrt")


def test_checkpoint_inference_hints_set_the_enlargement(tmp_path):
    path = tiny_checkpoint(tmp_path / "m.pt")
    ckpt = torch.load(path, weights_only=True)
    save_checkpoint(path, {**ckpt, "inference": {"enlarge": {"full": -0.25, "opencv": 0.3}}})
    assert FaceAligner(path, device="cpu", detector="full").enlarge == -0.25
    assert FaceAligner(path, device="cpu", detector="full", enlarge=0.1).enlarge == 0.1
    assert FaceAligner(path, device="cpu", detector=FixedBoxes([[0, 0, 9, 9]])).enlarge == 0.3  # Haar-like boxes
    assert FaceAligner(path, device="cpu", detector=FixedBoxes([], box_style="own")).enlarge == HAAR_ENLARGE


def test_an_uncalibrated_landmark_box_model_takes_the_detector_box_for_its_landmark_box(tmp_path):
    """A run's best.pt (no calibration) trained on landmark box + 10 %: BlazeFace's factor (tuned for FDD's
    whole-image crops, x2.4) would frame it twice too loose; the model's own 0.1 is used instead."""
    path = tiny_checkpoint(tmp_path / "m.pt", "w300_68")
    ckpt = torch.load(path, weights_only=True)
    config = {"data": {"format": "w300", "crop": "landmarks", "enlarge": 0.1}}
    save_checkpoint(path, {**ckpt, "config": config})
    assert FaceAligner(path, device="cpu", detector="blazeface").enlarge == pytest.approx(0.1)
    assert FaceAligner(path, device="cpu", detector="blazeface", enlarge=0.4).enlarge == 0.4
    assert FaceAligner(path, device="cpu", detector="full").enlarge != pytest.approx(0.1)  # a whole-image crop
    save_checkpoint(path, {**ckpt, "config": config, "inference": {"enlarge": {"blazeface": 0.07}}})
    assert FaceAligner(path, device="cpu", detector="blazeface").enlarge == pytest.approx(0.07)  # calibrated
    fdd_box = tiny_checkpoint(tmp_path / "b.pt")  # no run config: not known to be a landmark-box model
    assert FaceAligner(fdd_box, device="cpu", detector="blazeface").enlarge == pytest.approx(BLAZEFACE_ENLARGE)


@needs_haar
def test_the_haar_detector_takes_its_stored_enlargement(tmp_path):
    path = tiny_checkpoint(tmp_path / "m.pt")
    ckpt = torch.load(path, weights_only=True)
    save_checkpoint(path, {**ckpt, "inference": {"enlarge": {"full": -0.25, "opencv": 0.3}}})
    assert FaceAligner(path, device="cpu", detector="opencv").enlarge == 0.3


# ------------------------------------------------------------------------------------------------ errors
def test_bad_model_path(tmp_path):
    with pytest.raises(FileNotFoundError, match="neither a file nor a shipped model"):
        FaceAligner(tmp_path / "missing.pt")


def test_non_checkpoint_file(tmp_path):
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="not a loadable awing checkpoint"):
        FaceAligner(junk)
    torch.save({"weights": torch.zeros(3)}, tmp_path / "other.pt")
    with pytest.raises(CheckpointError, match="not an awing checkpoint"):
        FaceAligner(tmp_path / "other.pt")


def test_mismatched_schema(ckpt):
    with pytest.raises(ValueError, match="predicts the 'fdd14' layout .* not 'mtfl5'"):
        FaceAligner(ckpt, schema="mtfl5")


def test_bad_images(aligner, tmp_path):
    with pytest.raises(FileNotFoundError, match="image not found"):
        aligner.predict(tmp_path / "nope.jpg")
    bad = tmp_path / "bad.jpg"
    bad.write_text("not an image")
    with pytest.raises(ValueError, match="cannot read"):
        aligner.predict(bad)
    with pytest.raises(ValueError, match="uint8"):
        aligner.predict(np.zeros((10, 10, 3), np.float32))
    with pytest.raises(ValueError, match="color"):
        aligner.predict(np.zeros((10, 10, 3), np.uint8), color="HSV")
    with pytest.raises(ValueError, match="shape"):
        aligner.predict(np.zeros((10, 10, 5), np.uint8))


def test_no_shipped_model_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setattr(awing.pretrained, "PRETRAINED_DIR", tmp_path)
    with pytest.raises(FileNotFoundError, match="no shipped model"):
        FaceAligner()


# --------------------------------------------------------------------------------------------- detectors
@needs_haar
def test_opencv_detector_finds_nothing_on_a_blank_image(ckpt):
    aligner = FaceAligner(ckpt, device="cpu", detector="opencv")
    assert aligner.predict(np.full((240, 320, 3), 128, np.uint8), color="RGB") == []


@needs_haar
def test_opencv_detector_finds_a_real_face():
    path = need(FDD / "images" / "simple_0001.jpg")
    rgb = load_image(path)
    boxes, scores = get_detector("opencv").detect(rgb)
    assert len(boxes) >= 1 and scores.shape == (len(boxes),)
    nose = _fdd_points("simple_0001.jpg")[10]
    x0, y0, x1, y1 = boxes[0]
    assert x0 < nose[0] < x1 and y0 < nose[1] < y1


def test_the_face_aligner_example_runs():
    """FaceAligner's docstring example, run as a doctest."""
    import doctest

    from awing.app import api

    finder = doctest.DocTestFinder()
    (test,) = [t for t in finder.find(api.FaceAligner, "FaceAligner", globs={}) if t.examples]
    result = doctest.DocTestRunner(optionflags=doctest.NORMALIZE_WHITESPACE).run(test)
    assert result.attempted >= 4 and result.failed == 0


def test_detector_interface_and_helpers():
    image = np.zeros((50, 80, 3), np.uint8)
    boxes, scores = FullImageDetector().detect(image)
    np.testing.assert_allclose(boxes, [[-0.5, -0.5, 79.5, 49.5]])
    fixed = FixedBoxes([[1, 2, 30, 40]], enlarge=0.0)
    assert get_detector(fixed) is fixed and fixed.detect(image)[0].shape == (1, 4)
    with pytest.raises(ValueError, match="unknown detector"):
        get_detector("yolo")
    with pytest.raises(TypeError, match="detect"):
        get_detector(42)
    with pytest.raises(ValueError, match="x1 > x0"):
        FixedBoxes([[10, 10, 5, 20]])
    keep = nms(np.array([[0, 0, 10, 10], [1, 1, 11, 11], [20, 20, 30, 30]], float), np.array([0.5, 0.9, 0.1]))
    assert keep.tolist() == [1, 2]


def test_dlib_detector_missing_or_working():
    try:
        import dlib  # noqa: F401
    except ImportError:
        with pytest.raises(ImportError, match=r"awing\[dlib\]"):
            get_detector("dlib")
        return
    path = need(FDD / "images" / "simple_0001.jpg")
    boxes, _ = get_detector("dlib").detect(load_image(path))
    assert len(boxes) >= 1


# ------------------------------------------------------------------------------------------------ models
def test_model_registry(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(awing.pretrained, "PRETRAINED_DIR", tmp_path)
    assert awing.pretrained.list_pretrained() == []
    tiny_checkpoint(tmp_path / "zzz-other.pt", metrics={"epoch": 4, "val_nme": 0.2})  # the metrics.csv row
    tiny_checkpoint(tmp_path / "zzz-legacy.pt", metrics={"nme": 0.25})  # older best.pt files
    tiny_checkpoint(tmp_path / "mtfl5-1hg-tiny.pt", schema="mtfl5", metrics={"val": {"nme": 0.031}})
    (tmp_path / "mtfl5-1hg-tiny.md").write_text("# card")
    infos = {m["name"]: m for m in awing.pretrained.list_pretrained()}
    assert infos["mtfl5-1hg-tiny"]["schema"] == "mtfl5" and infos["mtfl5-1hg-tiny"]["points"] == 5
    assert infos["mtfl5-1hg-tiny"]["val_nme"] == pytest.approx(0.031) and infos["mtfl5-1hg-tiny"]["card"]
    assert infos["zzz-other"]["card"] is None and infos["zzz-other"]["size_mb"] > 0
    assert infos["zzz-other"]["val_nme"] == 0.2 and infos["zzz-legacy"]["val_nme"] == 0.25
    assert awing.pretrained.default_model().name == "mtfl5-1hg-tiny.pt"  # preferred over alphabetical order
    assert awing.pretrained.resolve_model("zzz-other") == tmp_path / "zzz-other.pt"
    assert FaceAligner("mtfl5-1hg-tiny", device="cpu", detector="full").schema.name == "mtfl5"
    assert awing.app.models.run(argparse.Namespace(json=False)) == 0
    out = capsys.readouterr().out
    assert "mtfl5-1hg-tiny (default)" in out and "3.10%" in out and "mtfl5-1hg-tiny.md" in out


# -------------------------------------------------------------------------------------- shipped accuracy
def _fdd_rows(split: str | None = None) -> list[dict]:
    with open(need(FDD / "landmarks.csv")) as f:
        return [r for r in csv.DictReader(f) if split is None or r["split"] == split]


def _row_points(row: dict) -> np.ndarray:
    return np.array([[float(row[f"x{i}"]), float(row[f"y{i}"])] for i in range(14)])


def _fdd_points(name: str) -> np.ndarray:
    return _row_points(next(r for r in _fdd_rows() if r["image"] == name))


@pytest.mark.parametrize(
    "name, data",
    [
        ("fdd14-1hg-tiny", "fdd14"),
        ("mtfl5-1hg-tiny", "mtfl5"),
        ("w300-1hg-tiny", "w300"),
        ("w300-1hg-tiny-300w", "w300"),
        ("w300-1hg-tiny-128", "w300"),
        ("w300-1hg-96", "w300"),
    ],
)
def test_shipped_model_reproduces_its_recorded_validation_nme(name, data, tmp_path):
    """``awing eval`` of the shipped fp16 file on its validation split gives the NME its file (and model
    card) records, within 0.3 points: a regression in crops, decoding or metrics shows here."""
    infos = {m["name"]: m for m in awing.pretrained.list_pretrained()}
    if name not in infos:
        pytest.skip(f"{name} is not shipped in this install")
    root = need(SHARED / data)
    fmt = {"fdd14": "fdd", "mtfl5": "mtfl", "w300": "w300"}[data]
    assert main(["eval", infos[name]["path"], f"{fmt}:{root}:val", "--out", str(tmp_path), "--device", "cpu"]) == 0
    from awing.engine.reports import load_results  # results.json, or the set's own file if not the run's data

    measured = load_results(tmp_path)["testsets"]["val"]["nme"]
    assert measured == pytest.approx(infos[name]["val_nme"], abs=0.003), (measured, infos[name]["val_nme"])


@pytest.mark.parametrize(
    "name, size, depth, flip", [("w300-1hg-tiny-128", 128, 4, True), ("w300-1hg-96", 96, 3, False)]
)
def test_the_fast_68_point_models_are_chosen_by_name(name, size, depth, flip):
    infos = {m["name"]: m for m in awing.pretrained.list_pretrained()}
    if name not in infos:
        pytest.skip(f"{name} is not shipped in this install")
    fast = FaceAligner(name, device="cpu", detector="full")
    assert fast.schema.name == "w300_68" and fast.input_size == size and infos[name]["card"]
    assert fast.model.spec.depth == depth and fast.model.spec.stem == "light"
    assert fast.refine == "never" and fast.flip_test is flip  # one pass, or one with the mirrored crop: the file says


def test_the_default_model_is_the_128_px_one_with_the_flip_test():
    """Issue 23's bar: FaceAligner() within 2x FaceMesh's time per photo at <= 4.0 % NME (docs/RESULTS.md)."""
    if "w300-1hg-tiny-128" not in {m["name"] for m in awing.pretrained.list_pretrained()}:
        pytest.skip("w300-1hg-tiny-128 is not shipped in this install")
    assert awing.pretrained.default_model().stem == "w300-1hg-tiny-128"
    default = FaceAligner(device="cpu", detector="full")
    assert default.flip_test and default.input_size == 128
    accurate = FaceAligner("w300-1hg-tiny", device="cpu", detector="full")  # the 256-px one, chosen by name
    assert accurate.flip_test and accurate.input_size == 256


def test_output_schema_maps_the_models_points_to_another_layout(tmp_path):
    """``output_schema="mtfl5"`` from a 14-point model: FDD's eye centres, nose tip and mouth corners."""
    path = tiny_checkpoint(tmp_path / "fdd.pt")
    image = np.random.default_rng(0).integers(0, 255, (120, 140, 3), dtype=np.uint8)
    box = [[20, 15, 110, 105]]
    full = FaceAligner(path, device="cpu", detector="full", fast=False).predict_crops(image, box, color="RGB")[0]
    five = FaceAligner(path, device="cpu", detector="full", fast=False, output_schema="mtfl5")
    face = five.predict_crops(image, box, color="RGB")[0]
    assert face.schema == "mtfl5" and face.point_names == load_schema("mtfl5").point_names == five.point_names
    np.testing.assert_allclose(face.landmarks, full.landmarks[[5, 8, 10, 11, 13]], atol=1e-5)
    np.testing.assert_allclose(face.confidence, full.confidence[[5, 8, 10, 11, 13]], atol=1e-6)
    with pytest.raises(ValueError, match="no mapping"):
        FaceAligner(path, device="cpu", detector="full", output_schema="wflw98")


# -------------------------------------------------------------------------------- issue 25: messages
def test_predict_given_several_images_points_to_predict_batch(aligner, image, tmp_path):
    path = tmp_path / "face.png"
    cv2.imwrite(str(path), image)
    for several in ([path], (str(path), str(path)), [image]):
        with pytest.raises(ValueError, match=r"predict_batch\(images\)"):
            aligner.predict(several, color="RGB")
    with pytest.raises(ValueError, match=r"shape \(2, 160, 160, 3\): use predict_batch"):
        aligner.predict(np.stack([image, image]), color="RGB")
    assert len(aligner.predict_batch([path])) == 1  # what the message advises works


def test_predict_on_a_folder_says_it_is_a_folder(aligner, tmp_path):
    for folder in (tmp_path, str(tmp_path)):
        with pytest.raises(IsADirectoryError, match=r"is a folder, not an image: run `awing predict .*predict_batch"):
            aligner.predict(folder)
    with pytest.raises(IsADirectoryError, match="is a folder"):
        aligner.predict_batch([tmp_path])


def test_aligned_crop_takes_a_path_as_load_image_does(tmp_path, image):
    from awing.app.align import aligned_crop

    path = tmp_path / "face.png"
    cv2.imwrite(str(path), cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
    five = np.array([[60, 70], [100, 70], [80, 90], [65, 110], [95, 110]], np.float64)
    expected = aligned_crop(image, five, size=64)
    np.testing.assert_array_equal(aligned_crop(path, five, size=64), expected)  # read as RGB
    np.testing.assert_array_equal(aligned_crop(str(path), five, size=64), expected)
    with pytest.raises(FileNotFoundError, match="image not found"):
        aligned_crop(tmp_path / "missing.png", five)
    with pytest.raises(ValueError, match="expected a path, a numpy array or a PIL image"):
        aligned_crop([[1, 2, 3]], five)


@pytest.mark.parametrize("boxes", [[10, 10, 90], [[10, 10, 90]], [[10, 10, 90, 90, 1]], [[[10, 10, 90, 90]]], "box"])
def test_predict_crops_names_the_box_shape_it_takes(aligner, image, boxes):
    with pytest.raises(ValueError, match=r"boxes must be an \(N, 4\) array of x0, y0, x1, y1"):
        aligner.predict_crops(image, boxes, color="RGB")


def test_predict_crops_takes_one_box_many_boxes_or_none(aligner, image):
    one = aligner.predict_crops(image, [20, 20, 140, 140], color="RGB")
    two = aligner.predict_crops(image, np.array([[20, 20, 140, 140], [0, 0, 80, 80]]), color="RGB")
    assert len(one) == 1 and len(two) == 2 and aligner.predict_crops(image, [], color="RGB") == []
    np.testing.assert_allclose(one[0].landmarks, two[0].landmarks, atol=1e-5)


# ------------------------------------------------------------------------- issue 25: channel order
def _no_warning(call):
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        return call()


def test_a_colour_array_without_color_warns_at_the_callers_line(aligner, image, tmp_path):
    """cv2.imread's output without ``color=``: taken as RGB, with a warning that names the caller's line
    (not awing's); every entry point passes ``color`` down."""
    from awing.app.tracking import FaceTracker

    bgr = image[..., ::-1].copy()  # what cv2.imread gives
    tracker = FaceTracker(aligner, smooth=False)
    calls = {
        "predict": lambda: aligner.predict(bgr),
        "predict_batch": lambda: aligner.predict_batch([bgr, bgr]),
        "predict_crops": lambda: aligner.predict_crops(bgr, [[20, 20, 140, 140]]),
        "FaceTracker.update": lambda: tracker.update(bgr),
        "FaceTracker.track": lambda: list(tracker.track([bgr])),
    }
    for name, call in calls.items():
        with pytest.warns(UserWarning, match="color='BGR'") as record:
            call()
        assert {Path(w.filename).name for w in record} == {Path(__file__).name}, name
    expected = aligner.predict(image, color="RGB")[0].landmarks
    with pytest.warns(UserWarning):  # taken as RGB: the channels of a BGR array come out swapped
        assert not np.allclose(aligner.predict(bgr)[0].landmarks, expected)
    np.testing.assert_allclose(_no_warning(lambda: aligner.predict(bgr, color="BGR"))[0].landmarks, expected)


def test_no_colour_warning_when_the_order_is_known(aligner, image, tmp_path):
    from awing.app.tracking import FaceTracker

    path = tmp_path / "face.png"
    cv2.imwrite(str(path), cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
    bgr = image[..., ::-1].copy()
    tracker = FaceTracker(aligner)
    _no_warning(lambda: aligner.predict(bgr, color="BGR"))
    _no_warning(lambda: aligner.predict(image, color="RGB"))
    _no_warning(lambda: aligner.predict(path))
    _no_warning(lambda: aligner.predict(image[..., 0]))  # grey: no order to state
    _no_warning(lambda: aligner.predict_batch([path, bgr], color="BGR"))
    _no_warning(lambda: aligner.predict_crops(bgr, [[20, 20, 140, 140]], color="BGR"))
    _no_warning(lambda: list(tracker.track([bgr, bgr, bgr], color="BGR")))
    _no_warning(lambda: tracker.update(path))
    pil = pytest.importorskip("PIL.Image")
    _no_warning(lambda: aligner.predict(pil.fromarray(image)))


# ---------------------------------------------------------------------------------- issue 25: enlarge
@pytest.mark.parametrize("bad", [1e9, 10.5, -1.0, -0.95, float("inf"), float("nan")])
def test_enlarge_outside_its_range_is_refused(ckpt, image, bad):
    from awing.app.api import ENLARGE_RANGE
    from awing.app.tracking import FaceTracker

    assert ENLARGE_RANGE == (-0.9, 10.0)
    message = r"enlarge must be a number from -0\.9 to 10\.0"
    with pytest.raises(ValueError, match=message):
        FaceAligner(ckpt, device="cpu", detector="full", enlarge=bad)
    aligner = FaceAligner(ckpt, device="cpu", detector="full", fast=False)
    with pytest.raises(ValueError, match=message):
        aligner.predict_crops(image, [[20, 20, 140, 140]], color="RGB", enlarge=bad)
    with pytest.raises(ValueError, match=message):
        FaceTracker(aligner, enlarge=bad)


def test_enlarge_at_the_ends_of_its_range_is_taken(ckpt, image):
    for ok in (-0.9, 0, 10):
        aligner = FaceAligner(ckpt, device="cpu", detector="full", fast=False, enlarge=ok)
        (face,) = aligner.predict(image, color="RGB")
        assert aligner.enlarge == ok and np.isfinite(face.landmarks).all()


def test_threads_reach_a_named_detector_that_has_a_thread_setting(tmp_path):
    """``FaceAligner(threads=N)``: BlazeFace (which takes ``threads``) runs on N threads too; a detector
    without the setting is built as before."""
    from awing.detect import detector_takes

    pytest.importorskip("onnxruntime")  # BlazeFace's thread setting is ONNX Runtime's
    path = tiny_checkpoint(tmp_path / "m.pt")
    assert detector_takes("blazeface", "threads") and detector_takes(None, "threads")
    assert detector_takes("blazeface-back", "threads") and not detector_takes("full", "threads")
    assert not detector_takes("no-such-detector", "threads")
    one = FaceAligner(path, device="cpu", threads=1)
    assert one.detector.threads == 1 and one.detector.fallback.threads == 1
    assert (
        FaceAligner(path, device="cpu", detector="full", threads=1).detector.__class__.__name__ == "FullImageDetector"
    )
