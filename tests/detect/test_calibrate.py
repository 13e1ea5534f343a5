"""Crop calibration (``awing export --calibrate``): per detector, the enlargement and the centre offset
that turn its boxes into the model's training crops, and FaceAligner using both."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from awing.app.api import FaceAligner
from awing.core.checkpoint import save_checkpoint
from awing.data.crop import square_box
from awing.data.sample import landmark_box
from awing.detect import FixedBoxes, detector_offset
from awing.detect.calibrate import calibrate_crops

from shared_data import SHARED, need, needs_haar

FDD = SHARED / "fdd14"


def test_calibration_recovers_the_training_crop_scale_and_centre_on_whole_image_boxes():
    """FDD images are 256 px crops: the 'full' detector's box is the image, so both figures are exact."""
    need(FDD)
    from awing.data.readers import read_dataset

    samples = read_dataset("fdd", FDD, "val")[:40]
    crops = calibrate_crops(samples, lambda s: landmark_box(s.landmarks), 0.5, ["full"], limit=20)
    used = samples[::2][:20]
    squares = np.array([square_box(landmark_box(s.landmarks), 0.5) for s in used])  # (cx, cy, side)
    length = 256.0  # the full box is the whole image, pixel edges -0.5 to 255.5 (centre 127.5)
    assert crops["enlarge"]["full"] == pytest.approx(np.median(squares[:, 2] / length - 1), abs=1e-3)
    expected = [np.median((squares[:, k] - 127.5) / length) for k in (0, 1)]
    assert crops["offset"]["full"] == pytest.approx(expected, abs=1e-3)


@needs_haar
def test_haar_boxes_need_less_than_the_landmark_enlargement():
    need(FDD)
    from awing.data.readers import read_dataset

    samples = read_dataset("fdd", FDD, "val")[:40]
    crops = calibrate_crops(samples, lambda s: landmark_box(s.landmarks), 0.5, ["opencv"], limit=20)
    assert -0.5 < crops["enlarge"]["opencv"] < 0.5 and all(abs(v) < 0.5 for v in crops["offset"]["opencv"])


def test_the_aligner_moves_its_crops_by_the_stored_offset(tiny_fdd_checkpoint, tmp_path):
    ckpt = torch.load(tiny_fdd_checkpoint, weights_only=True)
    hints = {"enlarge": {"opencv": 0.0}, "offset": {"opencv": [0.25, -0.5]}}
    path = save_checkpoint(tmp_path / "m.pt", {**ckpt, "inference": hints})
    box = np.float32([[40, 60, 140, 160]])  # side 100, centre (90, 110)
    image = np.random.default_rng(0).integers(0, 255, (240, 240, 3), dtype=np.uint8)
    moved = FaceAligner(path, device="cpu", detector=FixedBoxes(box))
    assert moved.offset == (0.25, -0.5) and detector_offset(FixedBoxes(box)) == (0.0, 0.0)
    plain = FaceAligner(path, device="cpu", detector=FixedBoxes(box), enlarge=0.0)  # own enlarge: no offset
    assert plain.offset == (0.0, 0.0)
    # The same crop: the plain aligner's box moved by (25, -50) px gives the moved aligner's points.
    shifted = plain.predict_crops(image, box + np.float32([25, -50, 25, -50]), color="RGB")[0].landmarks
    assert np.allclose(moved.predict(image, color="RGB")[0].landmarks, shifted, atol=1e-3)
    assert moved.predict(image, color="RGB")[0].box.tolist() == box[0].tolist()  # the face keeps the detector's box
