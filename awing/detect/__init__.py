"""Offline face detectors behind one interface (:mod:`awing.detect.detectors`) and the crop calibration
that fits each detector's boxes to a model's training crops (:mod:`awing.detect.calibrate`)."""

from awing.detect import detectors
from awing.detect.detectors import *  # noqa: F403 (the detectors' public names, listed once there)

__all__ = list(detectors.__all__)
