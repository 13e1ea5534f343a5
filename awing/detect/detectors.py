"""Offline face detectors behind one small interface.

A detector is any object with ``detect(image) -> (boxes, scores)`` (:class:`FaceDetector`):

- ``image``: (H, W, 3) uint8 RGB.
- ``boxes``: (K, 4) float32 ``x0, y0, x1, y1`` in original pixels (pixel centres at integers, so a box
  covering pixel columns ``a..b`` spans ``a - 0.5 .. b + 0.5``), best first.
- ``scores``: (K,) float32, larger is more certain; only comparable within one detector.

Each detector also carries ``enlarge``: the fraction by which :class:`awing.app.api.FaceAligner` grows its
(squared) boxes to get the crop the model expects. Detectors draw boxes of different tightness: a Haar
box spans roughly brows-to-chin, about 1.6x the extent of the FDD-14 landmarks, while dlib's HOG box is
tighter (about 1.36x) and BlazeFace's tighter still (about 1.32x), so each needs its own factor. The
defaults are measured on FDD-14 validation images so that the crop matches a model trained on whole FDD
images (crop side = 3.2x the landmark extent): the median over the images of 3.2 * landmark extent /
``max(box w, box h)`` minus 1, with the box nearest the landmarks' centre (``benchmarks/detectors.py``
prints it: Haar 0.99 on the 346 of 400 val images it finds, BlazeFace 1.43 on all 400, quartiles
1.33-1.55). A checkpoint or
the caller can override them. ``box_style`` names the kind of box a detector draws (``opencv``,
``blazeface``, ``dlib``, ``full``): a checkpoint calibrated by ``awing export --calibrate`` stores one
enlargement per box style (a checkpoint calibrated before BlazeFace existed has no ``blazeface`` entry
and gets the FDD figure above, which suits only models trained on whole FDD images: recalibrate it).

The detectors:

- ``"opencv"``: OpenCV's Haar cascade. It ships inside ``opencv-python-headless`` 4.x, which awing
  already depends on, so it works offline in the base install with nothing downloaded. Its limits: it
  finds upright, roughly frontal faces only (the optional profile cascade, ``"opencv-profile"``, adds side
  views of about 45-90 degrees but not tilted heads); it misses strongly occluded or disguised faces,
  faces smaller than ``min_size`` and faces in poor light; its boxes jitter by a few percent from frame
  to frame; its scores are cascade level weights, not probabilities.
- ``"blazeface"`` (:mod:`awing.detect.blazeface`): MediaPipe's BlazeFace short-range model (Apache-2.0,
  229 KB, shipped in ``awing/detect/models/`` with its licence and notice), run by OpenCV's own
  ``cv2.dnn.readNetFromTFLite`` (OpenCV >= 4.8): no new dependency, nothing downloaded. Scores are face
  probabilities. It finds faces whose landmarks span at least about 1/7 of the image's longer side;
  ``"blazeface-back"`` (MediaPipe's 256 px back-camera model, 315 KB, about 4x slower) finds faces down
  to about 1/20.
- ``"dlib"`` (``pip install 'awing[dlib]'``): the HOG detector dlib's shape predictors were trained
  with: tighter, steadier boxes and fewer false detections than Haar, but on FDD's disguised faces it
  missed more (24% of 200 validation images vs 8% for Haar) and took longer (16 vs 12 ms per 256 px
  image).
- ``"full"`` for images that are already face crops, or pass your own boxes (:class:`FixedBoxes`).

``"blazeface"`` runs the short-range model and, on an image where it finds no face, the back-camera one
(group photos, small faces). It is the default of :class:`~awing.app.api.FaceAligner` and
``awing predict``: it finds
more faces, faster (table below), and the shipped checkpoints carry a calibrated enlargement for its
boxes (``awing export --calibrate``: fdd14-1hg-tiny 0.519, mtfl5-1hg-tiny 1.194). With it, the shipped
FDD model scored NME 4.72 % on 100 FDD val images (all found) against 5.45 % with Haar on the 94 Haar
found.

Recall (a box holds the landmarks' centre, side 0.5-3x the landmark extent) and ms per image on one
CPU core (``benchmarks/detectors.py``, a busy 2-core machine; times are relative):

=============== ============= =============== ==============
detector        FDD-14 val    MTFL val (300)  300-W val
=============== ============= =============== ==============
opencv          86.5% 31 ms   78.0% 3.5 ms    86.2% 67 ms
blazeface       100% 3.5 ms   100% 2.7 ms     100% 3.9 ms
blazeface-back  100% 16 ms    100% 13 ms      100% 16 ms
=============== ============= =============== ==============
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import cv2
import numpy as np

from awing.core.extras import MissingExtra
from awing.detect.blazeface import BlazeFaceDetector

__all__ = [
    "FaceDetector",
    "OpenCVDetector",
    "DlibDetector",
    "BlazeFaceDetector",
    "FullImageDetector",
    "FixedBoxes",
    "DETECTORS",
    "get_detector",
    "box_style",
    "detector_enlarge",
    "detector_offset",
    "nms",
]

# Crop enlargement for each detector's boxes (see the module docstring): median over FDD-14 val of
# 3.2 * landmark extent / detector box side, minus 1.
HAAR_ENLARGE = 1.0
DLIB_ENLARGE = 1.35


@runtime_checkable
class FaceDetector(Protocol):
    """What :class:`awing.app.api.FaceAligner` needs from a face detector.

    A detector may also have ``enlarge`` (float, its boxes' crop enlargement) and ``box_style`` (str,
    the key of a checkpoint's calibrated enlargement); one without them is treated like the Haar detector.
    """

    def detect(self, image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(H, W, 3) uint8 RGB -> boxes (K, 4) float32 ``x0, y0, x1, y1`` and scores (K,) float32."""
        ...


def _empty() -> tuple[np.ndarray, np.ndarray]:
    return np.zeros((0, 4), np.float32), np.zeros((0,), np.float32)


def _check_image(image: np.ndarray) -> None:
    if not (isinstance(image, np.ndarray) and image.dtype == np.uint8 and image.ndim == 3 and image.shape[2] == 3):
        got = f"{type(image).__name__} {getattr(image, 'dtype', '')} {getattr(image, 'shape', '')}"
        raise ValueError(f"detectors take (H, W, 3) uint8 RGB images, got {got}")


def nms(boxes: np.ndarray, scores: np.ndarray, iou: float = 0.3) -> np.ndarray:
    """Indices of the boxes kept by greedy non-maximum suppression, best score first.

    Args:
        boxes: (K, 4) ``x0, y0, x1, y1``; scores: (K,).
        iou: a box overlapping a kept one by more than this intersection-over-union is dropped.
    """
    order = np.argsort(-np.asarray(scores, dtype=np.float64), kind="stable")
    boxes = np.asarray(boxes, dtype=np.float64)
    area = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    keep: list[int] = []
    while len(order):
        i, rest = order[0], order[1:]
        keep.append(int(i))
        lo = np.maximum(boxes[i, :2], boxes[rest, :2])
        hi = np.minimum(boxes[i, 2:], boxes[rest, 2:])
        inter = np.prod(np.clip(hi - lo, 0, None), axis=1)
        order = rest[inter / (area[i] + area[rest] - inter + 1e-12) <= iou]
    return np.asarray(keep, dtype=np.int64)


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
        self.box_style = "opencv"
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
            return _empty()
        r = np.asarray(rects, np.float64).reshape(-1, 4)
        boxes = np.stack([r[:, 0] - 0.5, r[:, 1] - 0.5, r[:, 0] + r[:, 2] - 0.5, r[:, 1] + r[:, 3] - 0.5], 1)
        return boxes, np.asarray(weights, np.float64).reshape(-1)

    def detect(self, image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        _check_image(image)
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
            return _empty()
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
        self.box_style = "dlib"

    def detect(self, image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        _check_image(image)
        h, w = image.shape[:2]
        k = min(1.0, self.max_side / max(h, w))
        small = image
        if k < 1.0:
            small = cv2.resize(image, (max(1, round(w * k)), max(1, round(h * k))), interpolation=cv2.INTER_AREA)
        rects, scores, _ = self._detector.run(np.ascontiguousarray(small), self.upsample, 0.0)
        if len(rects) == 0:
            return _empty()
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


DETECTORS = {
    "opencv": OpenCVDetector,
    "blazeface": BlazeFaceDetector,
    "dlib": DlibDetector,
    "full": FullImageDetector,
}


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


def get_detector(name_or_obj: str | FaceDetector | None = "blazeface", **options) -> FaceDetector:
    """A detector by name (``opencv``, ``opencv-profile``, ``blazeface``, ``blazeface-back``, ``dlib``,
    ``full``), or ``name_or_obj`` itself if it already has a ``detect`` method; None: the default,
    ``blazeface`` (as ``FaceAligner``'s). ``options`` go to the detector's constructor."""
    if name_or_obj is None:
        name_or_obj = "blazeface"
    if not isinstance(name_or_obj, str):
        if not callable(getattr(name_or_obj, "detect", None)):
            raise TypeError(f"a detector needs a detect(image) method; got {type(name_or_obj).__name__}")
        return name_or_obj
    if name_or_obj == "opencv-profile":
        return OpenCVDetector(profile=True, **options)
    if name_or_obj == "blazeface-back":
        return BlazeFaceDetector(model="back", **options)
    if name_or_obj not in DETECTORS:
        raise ValueError(
            f"unknown detector {name_or_obj!r}; choose one of opencv, opencv-profile, blazeface, blazeface-back, "
            "dlib, full"
        )
    return DETECTORS[name_or_obj](**options)
