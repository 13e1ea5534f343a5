"""What every face detector shares: the :class:`FaceDetector` protocol and its input check."""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import numpy as np

__all__ = ["FaceDetector", "check_detector_image"]


@runtime_checkable
class FaceDetector(Protocol):
    """What :class:`awing.app.api.FaceAligner` needs from a face detector.

    A detector may also have ``enlarge`` (float, its boxes' crop enlargement) and ``box_style`` (str,
    the key of a checkpoint's calibrated enlargement); one without them is treated like the Haar detector.
    """

    def detect(self, image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(H, W, 3) uint8 RGB -> boxes (K, 4) float32 ``x0, y0, x1, y1`` and scores (K,) float32."""
        ...


def check_detector_image(image) -> None:
    """Raises ValueError unless ``image`` is an (H, W, 3) uint8 array (what detectors take)."""
    if not (isinstance(image, np.ndarray) and image.dtype == np.uint8 and image.ndim == 3 and image.shape[2] == 3):
        got = f"{type(image).__name__} {getattr(image, 'dtype', '')} {getattr(image, 'shape', '')}"
        raise ValueError(f"detectors take (H, W, 3) uint8 RGB images, got {got}")
