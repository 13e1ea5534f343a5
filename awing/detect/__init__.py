"""Offline face detectors behind one interface (:mod:`awing.detect.detectors`) and the crop calibration
that fits each detector's boxes to a model's training crops (:mod:`awing.detect.calibrate`)."""

from awing.detect.detectors import (
    DETECTORS,
    DlibDetector,
    FaceDetector,
    FixedBoxes,
    FullImageDetector,
    OpenCVDetector,
    detector_enlarge,
    get_detector,
    nms,
)

__all__ = [
    "FaceDetector",
    "OpenCVDetector",
    "DlibDetector",
    "FullImageDetector",
    "FixedBoxes",
    "DETECTORS",
    "get_detector",
    "detector_enlarge",
    "nms",
]
