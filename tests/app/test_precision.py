"""Issue 23: the default path gives fp32's points on real faces (300-W val, from ../shared/data), whatever
backend ``backend="auto"`` picks: ONNX Runtime where it imports, else PyTorch (fp32 unless ``fast=True``)."""

from __future__ import annotations

import sys

import numpy as np
import pytest

from awing.app.api import FaceAligner, load_rgb

from shared_data import SHARED, need

FACES = 24  # 300-W val photos, evenly spaced (the val split has 145)


@pytest.fixture(scope="module")
def photos() -> list[np.ndarray]:
    from awing.data.readers import read_dataset

    samples = read_dataset("w300", need(SHARED / "w300"), "val")
    return [load_rgb(s.image) for s in samples[:: max(1, len(samples) // FACES)][:FACES]]


def _distances(default: FaceAligner, fp32: FaceAligner, photos: list[np.ndarray]) -> np.ndarray:
    moved = []
    for rgb in photos:
        a, b = default.predict(rgb, color="RGB"), fp32.predict(rgb, color="RGB")
        assert len(a) == len(b)  # the same detector boxes
        moved += [np.linalg.norm(x.landmarks - y.landmarks, axis=1) for x, y in zip(a, b)]
    return np.concatenate(moved)


@pytest.mark.parametrize("onnx", [True, False], ids=["onnxruntime-installed", "torch-only"])
def test_the_default_path_gives_fp32_points_on_real_faces(photos, onnx, monkeypatch):
    if onnx:
        pytest.importorskip("onnxruntime")
    else:
        monkeypatch.setitem(sys.modules, "onnxruntime", None)  # as without awing[onnx]
    default = FaceAligner("w300-1hg-tiny", device="cpu")
    assert default.backend == ("onnx" if onnx else "torch")
    fp32 = FaceAligner("w300-1hg-tiny", device="cpu", backend="torch", fast=False)
    moved = _distances(default, fp32, photos)
    assert moved.size >= 68 * FACES
    assert (moved <= 0.5).mean() >= 0.95, np.percentile(moved, [50, 95, 99])
