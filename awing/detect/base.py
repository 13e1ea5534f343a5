"""What every face detector shares: the :class:`FaceDetector` protocol and its input check."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Protocol, runtime_checkable

import numpy as np

__all__ = ["FaceDetector", "check_detector_image", "video_mode"]


@runtime_checkable
class FaceDetector(Protocol):
    """What :class:`awing.app.api.FaceAligner` needs from a face detector.

    A detector may also have ``enlarge`` (float, its boxes' crop enlargement) and ``box_style`` (str,
    the key of a checkpoint's calibrated enlargement); one without them is treated like the Haar detector.
    One that works differently on video frames (faster, as BlazeFace's default) has a boolean ``video``
    attribute, which :func:`video_mode` sets. One that works in two stages on still photos (BlazeFace's
    default: ``mode == "cascade"``) also has ``first_stage(image)`` (the cheap stage, as ``detect``
    returns) and ``second_stage(image, known)`` (the faces a costlier look finds that are not among the
    (N, 4) ``known`` boxes); ``FaceAligner`` then runs the second only where the first's faces call for it
    (:func:`awing.app.api.needs_second_stage`), and ``detect`` runs both.
    """

    def detect(self, image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(H, W, 3) uint8 RGB -> boxes (K, 4) float32 ``x0, y0, x1, y1`` and scores (K,) float32."""
        ...


def check_detector_image(image) -> None:
    """Raises ValueError unless ``image`` is an (H, W, 3) uint8 array (what detectors take)."""
    if not (isinstance(image, np.ndarray) and image.dtype == np.uint8 and image.ndim == 3 and image.shape[2] == 3):
        got = f"{type(image).__name__} {getattr(image, 'dtype', '')} {getattr(image, 'shape', '')}"
        raise ValueError(f"detectors take (H, W, 3) uint8 RGB images, got {got}")


@contextlib.contextmanager
def video_mode(detector) -> Iterator[None]:
    """Within the block, ``detector`` takes its images for video frames: a detector with a boolean ``video``
    attribute (BlazeFace's default, ``model="auto"``: the fast short-range model, not both models) has it
    set to True, and back to its earlier value on leaving, also on an error; any other detector is left as
    it is. A detector is not shared between threads (OpenCV's networks are not either)::

        with video_mode(aligner.detector):
            faces = aligner.predict(frame, color="RGB")
    """
    if not isinstance(getattr(detector, "video", None), bool):
        yield
        return
    before = detector.video
    detector.video = True
    try:
        yield
    finally:
        detector.video = before
