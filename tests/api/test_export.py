"""``awing export``: ONNX equal to PyTorch within 1e-4 (dynamic batch), fp16 weights files, calibration."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from awing.app.api import FaceAligner
from awing.app.cli import main
from awing.app.export import LastStackHeatmaps, check_onnx, export_onnx
from awing.core.checkpoint import load_checkpoint, save_checkpoint
from awing.method.model import create_model, model_from_checkpoint, model_payload
from awing.schemas import load_schema

from shared_data import SHARED

onnx = pytest.importorskip("onnx", reason="ONNX export needs pip install 'awing[onnx]'")
ort = pytest.importorskip("onnxruntime", reason="ONNX export needs pip install 'awing[onnx]'")


FDD = SHARED / "fdd14"


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory) -> Path:
    """Two stacks, so the boundary-coordinate path between stacks is exported too."""
    torch.manual_seed(0)
    model = create_model("awing-2hg-tiny", 14, width=32)
    with torch.no_grad():  # non-trivial BatchNorm statistics, so eval vs train mode would show
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.uniform_(-0.2, 0.2)
                m.running_var.uniform_(0.5, 2.0)
    payload = model_payload(model, load_schema("fdd14"))
    return save_checkpoint(tmp_path_factory.mktemp("model") / "tiny2.pt", {**payload, "metrics": {"nme": 0.1}})


def test_onnx_matches_pytorch_with_a_dynamic_batch(ckpt, tmp_path):
    model, schema, _ = model_from_checkpoint(load_checkpoint(ckpt))
    path = export_onnx(model, schema, tmp_path / "m.onnx")
    assert not model.training  # exporting must not leave the model in training mode
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    meta = onnx.load(str(path)).metadata_props
    props = {p.key: p.value for p in meta}
    assert props["awing_schema"] == "fdd14" and len(json.loads(props["awing_point_names"])) == 14
    for batch in (1, 4):
        x = torch.rand(batch, 3, 128, 128)
        with torch.inference_mode():
            expected = model(x)[-1][:, :14].numpy()
        got = session.run(None, {"image": x.numpy()})[0]
        assert got.shape == (batch, 14, 32, 32)
        np.testing.assert_allclose(got, expected, atol=1e-4, rtol=0)
    assert check_onnx(model, path) <= 1e-4


def test_check_onnx_catches_a_mismatch(ckpt, tmp_path):
    model, schema, _ = model_from_checkpoint(load_checkpoint(ckpt))
    path = export_onnx(model, schema, tmp_path / "m.onnx")
    with torch.no_grad():
        model.outputs[-1].bias += 0.01
    with pytest.raises(ValueError, match="differ"):
        check_onnx(model, path)


def test_export_command_onnx_and_weights(ckpt, tmp_path):
    assert main(["export", str(ckpt), "--format", "onnx", "--out", str(tmp_path / "m.onnx"), "--check"]) == 0
    assert (tmp_path / "m.onnx").stat().st_size > 0
    small = tmp_path / "small.pt"
    assert main(["export", str(ckpt), "--format", "weights", "--out", str(small)]) == 0
    assert small.stat().st_size < 0.6 * ckpt.stat().st_size
    exported = load_checkpoint(small)
    assert all(v.dtype == torch.float16 for v in exported["model"].values() if v.is_floating_point())
    assert exported["metrics"] == {"nme": 0.1}
    full = model_from_checkpoint(load_checkpoint(ckpt)).model
    half = model_from_checkpoint(exported).model
    x = torch.rand(2, 3, 128, 128)
    with torch.inference_mode():
        a, b = LastStackHeatmaps(full, 14)(x), LastStackHeatmaps(half, 14)(x)
    assert (a - b).abs().max() < 2e-2 * a.abs().max()
    assert FaceAligner(small, device="cpu", detector="full").schema.name == "fdd14"


def test_export_errors(tmp_path, capsys):
    assert main(["export", str(tmp_path / "missing.pt"), "--out", str(tmp_path / "x.onnx")]) == 2
    assert "neither a file nor a shipped model" in capsys.readouterr().err  # a message, not a traceback
    path = tmp_path / "ckpt.pt"
    torch.manual_seed(0)
    model = create_model("awing-1hg-tiny", 14, width=32)
    save_checkpoint(path, model_payload(model, load_schema("fdd14")))
    assert main(["export", str(path), "--format", "weights", "--out", str(tmp_path / "w.pt"), "--calibrate"]) == 2
    assert "run config" in capsys.readouterr().err


def test_weights_carry_the_typed_inference_hints(tmp_path):
    """A run checkpoint without hints gets its landmark crop recorded; stored hints survive ``--face-quality``."""
    torch.manual_seed(0)
    payload = model_payload(create_model("awing-1hg-tiny", 14, width=32), load_schema("fdd14"))
    config = {"data": {"format": "fdd", "crop": "box", "enlarge": 1.0}}
    stored = {"enlarge": {"opencv": 0.3}, "offset": {"opencv": [0.1, -0.2]}, "calibrated_on": "fdd:val"}
    path = save_checkpoint(tmp_path / "run.pt", {**payload, "config": config, "inference": stored})
    out = tmp_path / "w.pt"
    assert main(["export", str(path), "--format", "weights", "--out", str(out), "--face-quality", "0.4"]) == 0
    written = load_checkpoint(out)["inference"]
    assert written == {**stored, "landmark_enlarge": 1.0, "face_quality": 0.4}
    aligner = FaceAligner(out, device="cpu", detector="full")
    assert aligner.landmark_crop_enlarge == 1.0 and aligner.face_quality == 0.4


def test_a_stride_2_model_exports_and_its_onnx_points_equal_torchs(tmp_path):
    torch.manual_seed(1)
    model = create_model("awing-2hg-tiny", 14, width=32, heatmap_stride=2).eval()
    path = export_onnx(model, load_schema("fdd14"), tmp_path / "s2.onnx")
    got = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(
        None, {"image": np.random.default_rng(0).random((2, 3, 128, 128), dtype=np.float32)}
    )[0]
    assert got.shape == (2, 14, 64, 64) and check_onnx(model, path) <= 1e-4

    ckpt = save_checkpoint(tmp_path / "s2.pt", model_payload(model, load_schema("fdd14")))
    image = np.random.default_rng(3).integers(0, 256, (150, 170, 3), dtype=np.uint8)
    boxes = [[10, 5, 120, 130]]
    by_torch, by_onnx = (
        FaceAligner(ckpt, device="cpu", detector="full", backend=backend).predict_crops(image, boxes, color="RGB")[0]
        for backend in ("torch", "onnx")
    )
    np.testing.assert_allclose(by_onnx.landmarks, by_torch.landmarks, atol=1e-3)
