"""Offline face detectors behind one interface (:mod:`awing.detect.base`, :mod:`awing.detect.detectors`:
the detectors and their registry ``DETECTORS``) and the crop calibration that fits each detector's boxes
to a model's training crops (:mod:`awing.detect.calibrate`). Box geometry (IoU, NMS) is
:mod:`awing.core.boxes`."""

from awing.detect import detectors
from awing.detect.detectors import *  # noqa: F403 (the detectors' public names, listed once there)

__all__ = list(detectors.__all__)
