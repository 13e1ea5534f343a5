"""DETECTORS is the one list of detector names: get_detector, FaceAligner and calibration read it."""

from __future__ import annotations

import numpy as np
import pytest

from awing.core.extras import MissingExtra
from awing.detect import DEFAULT_DETECTOR, DETECTORS, box_style, calibration_detectors, get_detector

PUBLIC = ["opencv", "opencv-profile", "blazeface", "blazeface-back", "dlib", "full"]


def _build(name: str):
    try:
        return get_detector(name)
    except (MissingExtra, RuntimeError) as err:  # dlib not installed, an OpenCV without Haar cascades
        pytest.skip(f"{name}: {err}")


def test_every_public_name_is_registered():
    assert set(PUBLIC) <= set(DETECTORS) and DEFAULT_DETECTOR in DETECTORS
    with pytest.raises(ValueError, match="unknown detector 'yolo'; choose one of " + ", ".join(DETECTORS)):
        get_detector("yolo")


@pytest.mark.parametrize("name", PUBLIC)
def test_each_name_builds_a_detector_with_its_box_style(name):
    detector = _build(name)
    style = calibration_detectors()
    assert box_style(detector) in style and callable(detector.detect)
    boxes, scores = detector.detect(np.zeros((64, 64, 3), np.uint8))
    assert boxes.shape[1:] == (4,) and scores.shape == (len(boxes),)


def test_the_variants_keep_their_settings():
    assert _build("opencv-profile").profile is True and _build("opencv").profile is False
    assert _build("blazeface-back").spec.size == 256 and _build("blazeface").fallback is not None
    assert get_detector(None).__class__ is DETECTORS[DEFAULT_DETECTOR]


def test_calibration_measures_one_detector_per_box_style():
    """The names ``awing export --calibrate`` measures, keyed by the box style a checkpoint stores."""
    assert calibration_detectors() == {"opencv": "opencv", "blazeface": "blazeface", "dlib": "dlib", "full": "full"}
