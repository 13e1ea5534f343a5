"""Offline face detectors behind one small interface.

A detector is any object with ``detect(image) -> (boxes, scores)`` (:class:`FaceDetector`):

- ``image``: (H, W, 3) uint8 RGB; anything else is a ValueError.
- ``boxes``: (K, 4) float32 ``x0, y0, x1, y1`` in original pixels (pixel centres at integers, so a box
  covering pixel columns ``a..b`` spans ``a - 0.5 .. b + 0.5``), best first.
- ``scores``: (K,) float32, larger is more certain; only comparable within one detector.

Each detector also carries ``enlarge``, the fraction by which :class:`awing.app.api.FaceAligner` grows
its squared boxes to get the crop the model expects (detectors draw boxes of different tightness, so
each has its own default; a checkpoint or the caller can override it), and ``box_style`` (``opencv``,
``blazeface``, ``dlib``, ``full``), the key of a checkpoint's calibrated enlargement and offset
(``awing export --calibrate``, :mod:`awing.detect.calibrate`).

:data:`DETECTORS` maps every detector name to its factory; :func:`get_detector`, ``FaceAligner`` and
the CLI read it, so a new detector is one entry there:

- ``"opencv"``: OpenCV's Haar frontal-face cascade (ships inside ``opencv-python-headless`` 4.x);
  ``"opencv-profile"`` adds the profile cascade on the image and its mirror (side views). Scores are
  cascade level weights, not probabilities.
- ``"blazeface"`` (:mod:`awing.detect.blazeface`, the default): MediaPipe's BlazeFace, run by ONNX Runtime
  where it is installed (``awing[onnx]``; about 0.6x the time), else by ``cv2.dnn.readNetFromTFLite``
  (OpenCV >= 4.8); ``runtime=`` / ``threads=`` options choose (both names build
  :class:`BlazeFaceDetector`, so both take them). On still photos both its models as a cascade: the
  short-range one, then the back-camera one for the faces it missed (finds the small faces of ordinary
  photos; :class:`~awing.app.api.FaceAligner` runs the second stage only where the first found no real
  face or only small ones); on video frames
  (:func:`video_mode`, which :class:`~awing.app.tracking.FaceTracker` sets) the short-range model, then
  the back-camera one only on a frame where it finds no face. ``"blazeface-back"``: the back-camera
  model only (smaller faces). Scores are face probabilities.
- ``"dlib"`` (``pip install 'awing[dlib]'``): dlib's HOG frontal face detector.
- ``"full"``: the whole image is the face (images that are already face crops). :class:`FixedBoxes`
  passes your own boxes.

Measured recall, speed and box tightness of each: docs/RESULTS.md, "Face detectors".
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable

import cv2
import numpy as np

from awing.core.boxes import empty_detections, nms
from awing.core.extras import MissingExtra
from awing.detect.base import FaceDetector, check_detector_image, video_mode
from awing.detect.blazeface import BlazeFaceDetector

__all__ = [
    "FaceDetector",
    "OpenCVDetector",
    "DlibDetector",
    "BlazeFaceDetector",
    "FullImageDetector",
    "FixedBoxes",
    "DETECTORS",
    "detector_takes",
    "DEFAULT_DETECTOR",
    "get_detector",
    "calibration_detectors",
    "box_style",
    "detector_enlarge",
    "detector_offset",
    "nms",
    "video_mode",
]

# Default crop enlargement of each detector's boxes: frames its box like a model trained on whole FDD-14
# images (docs/RESULTS.md, "Face detectors").
HAAR_ENLARGE = 1.0
DLIB_ENLARGE = 1.35


class OpenCVDetector:
    """OpenCV's Haar cascades (frontal, plus optionally profile), bundled with opencv-python 4.x.

    Args:
        profile: also run the profile cascade on the image and its mirror (finds side views; about 3x
            slower).
        min_size: smallest face side as a fraction of the image's shorter side.
        max_side: images are shrunk so that their longer side is at most this many pixels before
            detection (speed; boxes are mapped back to original pixels).
        scale_factor, min_neighbors: ``cv2.CascadeClassifier.detectMultiScale`` settings.
        enlarge: crop enlargement for these boxes (see the module docstring).
    """

    box_style = "opencv"

    def __init__(
        self,
        profile: bool = False,
        min_size: float = 0.1,
        max_side: int = 640,
        scale_factor: float = 1.1,
        min_neighbors: int = 5,
        enlarge: float = HAAR_ENLARGE,
    ) -> None:
        if not hasattr(cv2, "CascadeClassifier") or not hasattr(cv2, "data"):
            raise RuntimeError(
                f"OpenCV {cv2.__version__} has no Haar cascades (opencv-python 5.x dropped them); "
                "install opencv-python-headless<5 or use detector='dlib'"
            )
        self.cascades = [self._load("haarcascade_frontalface_default.xml")]
        if profile:
            self.cascades.append(self._load("haarcascade_profileface.xml"))
        self.profile = profile
        self.min_size, self.max_side = float(min_size), int(max_side)
        self.scale_factor, self.min_neighbors = float(scale_factor), int(min_neighbors)
        self.enlarge = float(enlarge)

    @staticmethod
    def _load(name: str) -> cv2.CascadeClassifier:
        path = f"{cv2.data.haarcascades}{name}"
        cascade = cv2.CascadeClassifier(path)
        if cascade.empty():
            raise RuntimeError(f"cannot load the Haar cascade {path}")
        return cascade

    def _run(self, cascade: cv2.CascadeClassifier, gray: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        side = max(1, int(self.min_size * min(gray.shape)))
        rects, _, weights = cascade.detectMultiScale3(
            gray, self.scale_factor, self.min_neighbors, minSize=(side, side), outputRejectLevels=True
        )
        if len(rects) == 0:
            return empty_detections()
        r = np.asarray(rects, np.float64).reshape(-1, 4)
        boxes = np.stack([r[:, 0] - 0.5, r[:, 1] - 0.5, r[:, 0] + r[:, 2] - 0.5, r[:, 1] + r[:, 3] - 0.5], 1)
        return boxes, np.asarray(weights, np.float64).reshape(-1)

    def detect(self, image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        check_detector_image(image)
        h, w = image.shape[:2]
        k = min(1.0, self.max_side / max(h, w))
        gray = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)
        if k < 1.0:
            gray = cv2.resize(gray, (max(1, round(w * k)), max(1, round(h * k))), interpolation=cv2.INTER_AREA)
        gray = cv2.equalizeHist(gray)
        found = [self._run(self.cascades[0], gray)]
        if self.profile:  # the profile cascade finds faces turned one way only: run it on the mirror too
            found.append(self._run(self.cascades[1], gray))
            boxes, scores = self._run(self.cascades[1], gray[:, ::-1].copy())
            gw = gray.shape[1]
            found.append((np.stack([gw - 1 - boxes[:, 2], boxes[:, 1], gw - 1 - boxes[:, 0], boxes[:, 3]], 1), scores))
        boxes = np.concatenate([b for b, _ in found])
        scores = np.concatenate([s for _, s in found])
        if len(boxes) == 0:
            return empty_detections()
        keep = nms(boxes, scores)
        sx, sy = gray.shape[1] / w, gray.shape[0] / h  # back to original pixels (pixel-centre aware)
        boxes = (boxes[keep] + 0.5) / np.array([sx, sy, sx, sy]) - 0.5
        return boxes.astype(np.float32), scores[keep].astype(np.float32)


class DlibDetector:
    """dlib's HOG + linear SVM frontal face detector (``pip install 'awing[dlib]'``, the dlib-bin wheel).

    Args:
        upsample: times the image is upsampled before detection (1 finds faces down to ~40 px).
        max_side: images are shrunk so that their longer side is at most this many pixels first.
        enlarge: crop enlargement for these boxes (see the module docstring).
    """

    box_style = "dlib"

    def __init__(self, upsample: int = 1, max_side: int = 640, enlarge: float = DLIB_ENLARGE) -> None:
        try:
            import dlib
        except ImportError as err:
            raise MissingExtra(
                "detector 'dlib' needs the dlib package: pip install \"awing[dlib]\" (the prebuilt dlib-bin "
                "wheel), or use detector='opencv'"
            ) from err
        self._detector = dlib.get_frontal_face_detector()
        self.upsample, self.max_side, self.enlarge = int(upsample), int(max_side), float(enlarge)

    def detect(self, image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        check_detector_image(image)
        h, w = image.shape[:2]
        k = min(1.0, self.max_side / max(h, w))
        small = image
        if k < 1.0:
            small = cv2.resize(image, (max(1, round(w * k)), max(1, round(h * k))), interpolation=cv2.INTER_AREA)
        rects, scores, _ = self._detector.run(np.ascontiguousarray(small), self.upsample, 0.0)
        if len(rects) == 0:
            return empty_detections()
        # dlib rectangles are inclusive pixel ranges
        boxes = np.array([[r.left() - 0.5, r.top() - 0.5, r.right() + 0.5, r.bottom() + 0.5] for r in rects])
        sx, sy = small.shape[1] / w, small.shape[0] / h
        boxes = (boxes + 0.5) / np.array([sx, sy, sx, sy]) - 0.5
        order = np.argsort(-np.asarray(scores), kind="stable")
        return boxes[order].astype(np.float32), np.asarray(scores, np.float32)[order]


class FullImageDetector:
    """The whole image is one face: for images that are already face crops (e.g. FDD, MTFL)."""

    enlarge = 0.0
    box_style = "full"

    def detect(self, image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        h, w = image.shape[:2]
        return np.array([[-0.5, -0.5, w - 0.5, h - 0.5]], np.float32), np.ones(1, np.float32)


class FixedBoxes:
    """The same user-given boxes for every image (no detection).

    Args:
        boxes: (K, 4) ``x0, y0, x1, y1`` face boxes in pixels.
        enlarge: crop enlargement; the default takes the boxes to be face boxes as a Haar detector draws
            them (brows to chin); pass 0 for boxes that already are the wanted crop squares.
        box_style: the detector whose boxes these resemble, for a checkpoint's calibrated enlargement.
    """

    def __init__(self, boxes, enlarge: float = HAAR_ENLARGE, box_style: str = "opencv") -> None:
        self.box_style = box_style
        b = np.asarray(boxes, dtype=np.float32).reshape(-1, 4) if len(boxes) else np.zeros((0, 4), np.float32)
        if not np.isfinite(b).all() or ((b[:, 2] <= b[:, 0]) | (b[:, 3] <= b[:, 1])).any():
            raise ValueError(f"boxes must be finite x0, y0, x1, y1 with x1 > x0 and y1 > y0, got {b.tolist()}")
        self.boxes, self.enlarge = b, float(enlarge)

    def detect(self, image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return self.boxes.copy(), np.ones(len(self.boxes), np.float32)


DEFAULT_DETECTOR = "blazeface"

# Every detector name -> its factory (a detector class, or a functools.partial of one with other defaults):
# the one list of names get_detector, FaceAligner and the CLI read.
DETECTORS: dict[str, Callable[..., FaceDetector]] = {
    "opencv": OpenCVDetector,
    "opencv-profile": functools.partial(OpenCVDetector, profile=True),
    "blazeface": BlazeFaceDetector,
    "blazeface-back": functools.partial(BlazeFaceDetector, model="back"),
    "dlib": DlibDetector,
    "full": FullImageDetector,
}


def calibration_detectors() -> dict[str, str]:
    """``{box_style: name}``: one registered detector per box style (the first in :data:`DETECTORS`), the
    ones ``awing export --calibrate`` measures."""
    first: dict[str, str] = {}
    for name, factory in DETECTORS.items():
        style = getattr(getattr(factory, "func", factory), "box_style", "opencv")
        first.setdefault(style, name)
    return first


def box_style(detector: FaceDetector) -> str:
    """The kind of box a detector draws (its ``box_style``; ``opencv`` when it does not say): the key of
    a checkpoint's calibrated ``inference`` entries."""
    return getattr(detector, "box_style", "opencv")


def detector_enlarge(detector: FaceDetector, calibrated: dict | None = None, fallback: float | None = None) -> float:
    """The crop enlargement for a detector's boxes.

    Args:
        calibrated: a checkpoint's ``inference["enlarge"]`` (``{box_style: enlarge}``); its entry for the
            detector's ``box_style`` wins over the detector's own ``enlarge``.
        fallback: used instead of the detector's own ``enlarge`` when there is no calibrated entry, for a
            face-box detector (not ``full``): e.g. a landmark-box model's training enlargement, taking the
            detector box for the landmark box (the detectors' own factors frame FDD's whole 256 px crops).
    """
    style = box_style(detector)
    if calibrated and style in calibrated:
        return float(calibrated[style])
    if fallback is not None and style != "full":
        return float(fallback)
    value = getattr(detector, "enlarge", None)
    return float(value) if isinstance(value, (int, float)) else HAAR_ENLARGE


def detector_offset(detector: FaceDetector, calibrated: dict | None = None) -> tuple[float, float]:
    """The crop centre's offset from a detector box's centre, ``(dx, dy)`` in units of the box's longer
    side (x right, y down): a checkpoint's ``inference["offset"]`` entry for the detector's ``box_style``
    (``awing export --calibrate``), else ``(0, 0)``."""
    style = box_style(detector)
    if calibrated and style in calibrated:
        dx, dy = (float(v) for v in calibrated[style])
        return dx, dy
    return 0.0, 0.0


def detector_takes(name: str | None, option: str) -> bool:
    """Whether the detector registered as ``name`` (None: :data:`DEFAULT_DETECTOR`) takes keyword ``option``
    (e.g. ``threads``); False for an unknown name or a detector object."""
    factory = DETECTORS.get(DEFAULT_DETECTOR if name is None else name) if isinstance(name, (str, type(None))) else None
    if factory is None:
        return False
    cls = factory.func if isinstance(factory, functools.partial) else factory
    return option in inspect.signature(cls).parameters


def get_detector(name_or_obj: str | FaceDetector | None = DEFAULT_DETECTOR, **options) -> FaceDetector:
    """A detector by name (a key of :data:`DETECTORS`), or ``name_or_obj`` itself if it already has a
    ``detect`` method; None: :data:`DEFAULT_DETECTOR` (``FaceAligner``'s default).

    Args:
        options: keyword arguments of the detector's constructor.
    Raises:
        ValueError: an unknown name. TypeError: an object without ``detect``. MissingExtra (an ImportError):
        ``dlib`` without its extra.
    """
    if name_or_obj is None:
        name_or_obj = DEFAULT_DETECTOR
    if not isinstance(name_or_obj, str):
        if not callable(getattr(name_or_obj, "detect", None)):
            raise TypeError(f"a detector needs a detect(image) method; got {type(name_or_obj).__name__}")
        return name_or_obj
    if name_or_obj not in DETECTORS:
        raise ValueError(f"unknown detector {name_or_obj!r}; choose one of {', '.join(DETECTORS)}")
    return DETECTORS[name_or_obj](**options)
