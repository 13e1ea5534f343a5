"""The per-face landmark score (issue 15): ``quality`` separates faces from non-face boxes."""

from __future__ import annotations

import csv

import cv2
import numpy as np
import pytest

from awing import FaceAligner
from awing.app.api import FACE_QUALITY_THRESHOLD

from shared_data import SHARED, need


@pytest.fixture(scope="module")
def aligner():
    return FaceAligner("fdd14-1hg-tiny", device="cpu")  # the model FACE_QUALITY_THRESHOLD is calibrated for


def _non_faces(rng) -> list[np.ndarray]:
    blank = [np.full((128, 128, 3), c, np.uint8) for c in (0, 90, 200, 255)]
    noise = [cv2.GaussianBlur(rng.integers(0, 256, (128, 128, 3)).astype(np.uint8), (0, 0), s) for s in (0.7, 2, 4)]
    x = np.arange(128)[None, :] * 0.3 + np.arange(128)[:, None] * 0.1
    stripes = [np.repeat(((np.sin(x * k) + 1) * 127).astype(np.uint8)[..., None], 3, axis=2) for k in (0.5, 1, 2)]
    return blank + noise + stripes


def test_blank_and_texture_crops_are_not_faces(aligner):
    rng = np.random.default_rng(0)
    faces = [aligner.predict_crops(img, [[16, 16, 112, 112]], color="RGB")[0] for img in _non_faces(rng)]
    assert all(0 <= f.quality < FACE_QUALITY_THRESHOLD for f in faces), [round(f.quality, 3) for f in faces]
    assert not any(f.is_face for f in faces) and all(f.to_dict()["is_face"] is False for f in faces)
    # the quality is the mean of the point confidences
    np.testing.assert_allclose(faces[0].quality, faces[0].confidence.mean(), rtol=1e-5)


def test_real_faces_score_above_and_random_boxes_below(aligner):
    root = need(SHARED / "fdd14")
    with open(root / "landmarks.csv") as f:
        rows = [r for r in csv.DictReader(f) if r["split"] == "val"][::20]
    real, fake = [], []
    for r in rows:
        bgr = cv2.imread(str(root / "images" / r["image"]))
        faces = aligner.predict(bgr, color="BGR")
        real.append(max(f.quality for f in faces))
        # a box in a corner, away from the face in the middle of these 256x256 crops
        fake += [f.quality for f in aligner.predict_crops(bgr, [[0, 0, 60, 60], [196, 196, 256, 256]], color="BGR")]
    real, fake = np.array(real), np.array(fake)
    assert np.mean(real >= FACE_QUALITY_THRESHOLD) >= 0.9, real
    assert np.mean(fake < FACE_QUALITY_THRESHOLD) >= 0.9, fake
    assert real.mean() - fake.mean() > 0.2


def test_export_records_a_face_quality_cut_that_the_aligner_uses(tiny_fdd_checkpoint, tmp_path, capsys):
    from awing.app.cli import main

    out = tmp_path / "m.pt"
    export = ["export", str(tiny_fdd_checkpoint), "--format", "weights", "--out", str(out), "--face-quality"]
    assert main([*export, "0.42"]) == 0
    assert FaceAligner(str(out), device="cpu", detector="full").face_quality == pytest.approx(0.42)
    assert FaceAligner(str(tiny_fdd_checkpoint), device="cpu", detector="full").face_quality == FACE_QUALITY_THRESHOLD
    assert main([*export, "3"]) == 2
    assert "--face-quality must be in [0, 1]" in capsys.readouterr().err
