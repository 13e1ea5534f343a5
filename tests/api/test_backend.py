"""``FaceAligner(backend=...)``: ``"auto"`` picks ONNX Runtime on the CPU where it imports, ``threads`` reaches
its session, the export is made once per model file, and ONNX Runtime's points are torch fp32's."""

from __future__ import annotations

import sys

import numpy as np
import pytest
import torch

import awing.app.api as api
from awing.app.api import FaceAligner, resolve_backend


@pytest.fixture
def ckpt(tiny_fdd_checkpoint):
    return tiny_fdd_checkpoint


@pytest.fixture
def image() -> np.ndarray:
    rng = np.random.default_rng(3)
    return rng.integers(0, 256, (150, 170, 3), dtype=np.uint8)


def _hide_onnxruntime(monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # `import onnxruntime` now raises ImportError


def test_auto_picks_torch_without_onnxruntime(monkeypatch, ckpt):
    _hide_onnxruntime(monkeypatch)
    assert api.onnx_available() is False
    assert resolve_backend("auto", torch.device("cpu")) == "torch"
    aligner = FaceAligner(ckpt, device="cpu", detector="full")
    assert aligner.backend == "torch" and aligner.session is None and aligner.dtype is None  # fp32


def test_auto_picks_onnx_where_it_imports(ckpt):
    pytest.importorskip("onnxruntime")
    pytest.importorskip("onnx")
    assert resolve_backend("auto", torch.device("cpu")) == "onnx"
    assert resolve_backend("auto", torch.device("cuda")) == "torch"  # ONNX Runtime runs on the CPU here
    assert resolve_backend("torch", torch.device("cpu")) == "torch"
    aligner = FaceAligner(ckpt, device="cpu", detector="full")
    assert aligner.backend == "onnx" and aligner.session is not None and "onnxruntime" in repr(aligner)


def test_onnx_points_equal_torch_fp32(ckpt, image):
    pytest.importorskip("onnxruntime")
    torch_aligner = FaceAligner(ckpt, device="cpu", detector="full", backend="torch")
    onnx_aligner = FaceAligner(ckpt, device="cpu", detector="full", backend="onnx", threads=1)
    boxes = [[10, 5, 120, 130], [40, 30, 160, 140]]
    a = torch_aligner.predict_crops(image, boxes, color="RGB")
    b = onnx_aligner.predict_crops(image, boxes, color="RGB")
    for x, y in zip(a, b):
        np.testing.assert_allclose(y.landmarks, x.landmarks, atol=1e-3)
        np.testing.assert_allclose(y.confidence, x.confidence, atol=1e-5)


def test_threads_reach_the_session_and_the_export_is_made_once(ckpt, monkeypatch):
    pytest.importorskip("onnxruntime")
    import awing.app.export as export

    exports = []
    original = export.export_onnx
    monkeypatch.setattr(export, "export_onnx", lambda *a, **k: exports.append(1) or original(*a, **k))
    monkeypatch.setattr(api, "_ONNX_EXPORTS", {})
    one = FaceAligner(ckpt, device="cpu", detector="full", backend="onnx", threads=1)
    two = FaceAligner(ckpt, device="cpu", detector="full", backend="onnx", threads=2)
    assert len(exports) == 1  # the second aligner reuses the in-memory export
    assert one.session.get_session_options().intra_op_num_threads == 1
    assert two.session.get_session_options().intra_op_num_threads == 2


@pytest.mark.parametrize("bad", [0, -1, 1.5, True, "2"])
def test_threads_must_be_a_positive_whole_number(ckpt, bad):
    with pytest.raises(ValueError, match="threads"):
        FaceAligner(ckpt, device="cpu", detector="full", threads=bad)


def test_unknown_backend_is_refused(ckpt):
    with pytest.raises(ValueError, match="backend must be one of auto, torch, onnx"):
        FaceAligner(ckpt, backend="tensorrt")


def test_onnx_flip_test_runs_crops_and_mirrors_in_one_call_and_equals_torchs(ckpt, image, monkeypatch):
    pytest.importorskip("onnxruntime")
    torch_aligner = FaceAligner(ckpt, device="cpu", detector="full", backend="torch", flip_test=True)
    onnx_aligner = FaceAligner(ckpt, device="cpu", detector="full", backend="onnx", threads=1, flip_test=True)
    plain = FaceAligner(ckpt, device="cpu", detector="full", backend="onnx", threads=1)
    batches, run = [], onnx_aligner.session.run

    def counted_run(out, feed):
        batches.append(len(feed["image"]))
        return run(out, feed)

    monkeypatch.setattr(onnx_aligner.session, "run", counted_run)
    boxes = [[10, 5, 120, 130], [40, 30, 160, 140]]
    a = torch_aligner.predict_crops(image, boxes, color="RGB")
    b = onnx_aligner.predict_crops(image, boxes, color="RGB")
    assert batches == [4]  # two crops and their two mirrors, one session call
    for x, y, one_pass in zip(a, b, plain.predict_crops(image, boxes, color="RGB")):
        np.testing.assert_allclose(y.landmarks, x.landmarks, atol=1e-3)
        np.testing.assert_allclose(y.confidence, x.confidence, atol=1e-5)
        assert not np.allclose(one_pass.landmarks, y.landmarks, atol=1e-3)  # the mirrors changed the points
