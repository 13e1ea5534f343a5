"""MediaPipe's BlazeFace face detector, run by OpenCV's own DNN module (no new dependency).

The models are Google's MediaPipe face detection models (Apache-2.0), shipped unmodified under
``awing/detect/models/`` with their ``LICENSE`` and ``NOTICE``:

- ``"short"``: ``face_detection_short_range.tflite`` (229 KB, 128x128 input), for faces that fill a good
  part of the image (selfies, face crops, portraits; MediaPipe: "within 2 m of the camera").
- ``"back"``: ``face_detection_back.tflite`` (315 KB, 256x256 input), MediaPipe's back-camera model for
  smaller faces further away.

How small a face each model finds, and how tight its boxes are: docs/RESULTS.md, "Face detectors".

Pipeline (as MediaPipe's face detection graph does it): the RGB image is letterboxed (aspect kept,
black borders) to the model's square input and scaled to [-1, 1]; the network gives, for each of 896
SSD anchors, a logit and 16 numbers (box centre offset, box size and 6 keypoints, in input pixels
relative to the anchor); scores are sigmoids of the logits (clipped to +-100 first); boxes above
``score_threshold`` are merged by weighted non-maximum suppression (each cluster of boxes overlapping
the best one by IoU > 0.3 becomes their score-weighted mean, with the best one's score) and mapped back
to original pixels.

Anchors follow MediaPipe's ``SsdAnchorsCalculator`` options for each model: 4 layers with strides
8, 16, 16, 16 (short range, on 128 px) or 16, 32, 32, 32 (back, on 256 px), anchor offset 0.5, aspect
ratio 1 plus one interpolated scale per layer (2 anchors per cell and layer; the layers sharing a stride
share one grid: 16x16x2 + 8x8x6 = 896), fixed anchor size (every anchor is 1 x 1 in normalised units,
so the regressed sizes are absolute).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import cv2
import numpy as np

from awing.core.boxes import box_iou, empty_detections
from awing.detect.base import check_detector_image

__all__ = [
    "BlazeFaceDetector",
    "BLAZEFACE_MODELS",
    "BLAZEFACE_ENLARGE",
    "MODEL_DIR",
    "STRATEGIES",
    "merge_detections",
    "ssd_anchors",
    "weighted_nms",
]

MODEL_DIR = Path(__file__).resolve().parent / "models"

# Default crop enlargement of BlazeFace boxes, as HAAR_ENLARGE (docs/RESULTS.md, "Face detectors").
BLAZEFACE_ENLARGE = 1.43


@dataclasses.dataclass(frozen=True)
class BlazeFaceModel:
    """One BlazeFace model file and its MediaPipe anchor / decoding options."""

    file: str
    size: int  # square input side, pixels
    strides: tuple[int, ...]
    score_threshold: float = 0.5  # MediaPipe's min_score_thresh
    anchor_offset: float = 0.5
    anchors_per_layer: int = 2  # aspect ratio 1.0 + the interpolated scale (interpolated_scale_aspect_ratio=1)


BLAZEFACE_MODELS = {
    "short": BlazeFaceModel("face_detection_short_range.tflite", 128, (8, 16, 16, 16)),
    "back": BlazeFaceModel("face_detection_back.tflite", 256, (16, 32, 32, 32)),
}


def ssd_anchors(size: int, strides, offset: float = 0.5, per_layer: int = 2) -> np.ndarray:
    """(N, 2) float32 anchor centres ``x, y`` in [0, 1] of a square input (fixed-size anchors, 1 x 1).

    Consecutive layers with the same stride share one feature map: each cell of it gets
    ``per_layer`` anchors per layer, cells in row-major order (y, then x), as MediaPipe lays them out.
    """
    centres = []
    strides = list(strides)
    i = 0
    while i < len(strides):
        j = i
        while j < len(strides) and strides[j] == strides[i]:
            j += 1
        cells = int(np.ceil(size / strides[i]))
        per_cell = per_layer * (j - i)
        grid = (np.arange(cells, dtype=np.float64) + offset) / cells
        yy, xx = np.meshgrid(grid, grid, indexing="ij")
        xy = np.stack([xx.reshape(-1), yy.reshape(-1)], 1)
        centres.append(np.repeat(xy, per_cell, axis=0))
        i = j
    return np.concatenate(centres).astype(np.float32)


def weighted_nms(boxes: np.ndarray, scores: np.ndarray, iou: float = 0.3) -> tuple[np.ndarray, np.ndarray]:
    """MediaPipe's weighted non-maximum suppression: best score first, the best remaining box and all
    boxes overlapping it by IoU > ``iou`` become one box, their score-weighted mean, with the best score.

    Returns ``(boxes (K, 4), scores (K,))``, best first.
    """
    order = np.argsort(-scores, kind="stable")
    boxes, scores = boxes[order].astype(np.float64), scores[order].astype(np.float64)
    out_boxes, out_scores = [], []
    while len(boxes):
        near = box_iou(boxes[0], boxes)[0] > iou
        near[0] = True
        w = scores[near]
        out_boxes.append((boxes[near] * w[:, None]).sum(0) / w.sum())
        out_scores.append(scores[0])
        boxes, scores = boxes[~near], scores[~near]
    if not out_boxes:
        return empty_detections()
    return np.asarray(out_boxes, np.float32), np.asarray(out_scores, np.float32)


# How BlazeFaceDetector(model=...) combines the two models (any other model value: that one model alone).
STRATEGIES = ("auto", "fallback", "merged")
STILLS_STRATEGY = "merged"  # model="auto" on still photos: both models (docs/RESULTS.md, "Face detectors")
VIDEO_STRATEGY = "fallback"  # model="auto" on video frames: the short-range model, the back one only on a miss


def merge_detections(found, iou: float = 0.3) -> tuple[np.ndarray, np.ndarray]:
    """Several detectors' ``(boxes, scores)`` on one image as one set: :func:`weighted_nms` over all of them,
    so a face found by several becomes one box (their score-weighted mean, with the best score).

    Returns ``(boxes (K, 4) float32, scores (K,) float32)``, best first (empty when all are).
    """
    boxes = np.concatenate([np.asarray(b, np.float64).reshape(-1, 4) for b, _ in found] + [np.zeros((0, 4))])
    scores = np.concatenate([np.asarray(s, np.float64).reshape(-1) for _, s in found] + [np.zeros(0)])
    return weighted_nms(boxes, scores, iou)


class BlazeFaceDetector:
    """MediaPipe BlazeFace (short-range or back-camera model, or both) through ``cv2.dnn.readNetFromTFLite``.

    Args:
        model: ``"auto"`` (default): on still photos ``"merged"``, on video frames (``video=True``, or
            inside :func:`awing.detect.video_mode`, as :class:`~awing.app.tracking.FaceTracker` runs it)
            ``"fallback"``, which costs about the short model's time; ``"merged"``: both models, their
            boxes merged by weighted NMS (:func:`merge_detections`; finds the small faces of ordinary
            photos, about 5x the short model's time); ``"fallback"``: the short-range model, then the
            back-camera one on an image where it finds no face (the default before: fast, but a photo where
            the short model finds a false box never gets the back model); ``"short"`` (128 px input, faces
            that fill much of the image) or ``"back"`` (256 px, smaller faces) alone; or the path of a
            ``.tflite`` file with one of those models' layouts (then ``input_size`` picks the layout: 128
            short, 256 back).
        score_threshold: smallest face probability kept (MediaPipe's default 0.5).
        min_size: smallest face box side kept, original pixels (0: all).
        max_faces: keep only the ``max_faces`` largest faces (None: all); returned best score first.
        iou: overlap above which boxes are merged by the weighted NMS (within a model and across models).
        enlarge: crop enlargement for these boxes (see :mod:`awing.detect.detectors`).
        video: the frames are video frames (see ``model="auto"``); an attribute, which
            :func:`awing.detect.video_mode` sets for a while.
    Raises:
        FileNotFoundError: the model file is missing. RuntimeError: this OpenCV cannot read TFLite models
        (``cv2.dnn.readNetFromTFLite`` appeared in OpenCV 4.8).
    """

    box_style = "blazeface"

    def __init__(
        self,
        model: str | Path = "auto",
        score_threshold: float = 0.5,
        min_size: float = 0.0,
        max_faces: int | None = None,
        iou: float = 0.3,
        enlarge: float = BLAZEFACE_ENLARGE,
        input_size: int | None = None,
        video: bool = False,
    ) -> None:
        self.strategy = model if isinstance(model, str) and model in STRATEGIES else None
        self.fallback = None  # the back-camera model of a two-model strategy
        model = "short" if self.strategy else model
        if isinstance(model, str) and model in BLAZEFACE_MODELS:
            spec = BLAZEFACE_MODELS[model]
            path = MODEL_DIR / spec.file
        else:
            path = Path(model)
            layouts = {m.size: m for m in BLAZEFACE_MODELS.values()}
            size = input_size or (256 if "back" in path.name else 128)
            if size not in layouts:
                raise ValueError(f"input_size must be one of {sorted(layouts)} (the BlazeFace layouts), got {size}")
            spec = layouts[size]
        if not path.is_file():
            raise FileNotFoundError(
                f"BlazeFace model file not found: {path} (it ships inside awing under awing/detect/models/; "
                f"reinstall awing, or pass model= a path to {spec.file}, or use detector='opencv')"
            )
        if not hasattr(cv2, "dnn") or not hasattr(cv2.dnn, "readNetFromTFLite"):
            raise RuntimeError(
                f"OpenCV {cv2.__version__} cannot read TFLite models (needs OpenCV >= 4.8); use detector='opencv'"
            )
        if not 0.0 <= float(score_threshold) <= 1.0:
            raise ValueError(f"score_threshold must be in [0, 1], got {score_threshold!r}")
        if max_faces is not None and int(max_faces) < 1:
            raise ValueError(f"max_faces must be >= 1 or None, got {max_faces!r}")
        # OpenCV 5's default DNN engine drops the "classificators" output; its classic engine gives both
        # outputs as 4.x does (same values). 4.x has no engine argument.
        engine = getattr(cv2.dnn, "ENGINE_CLASSIC", None)
        self.net = cv2.dnn.readNetFromTFLite(str(path), *(() if engine is None else (engine,)))
        self._outputs = list(self.net.getUnconnectedOutLayersNames())
        self.spec, self.path = spec, path
        self.anchors = ssd_anchors(spec.size, spec.strides, spec.anchor_offset, spec.anchors_per_layer)
        self.score_threshold, self.min_size = float(score_threshold), float(min_size)
        self.max_faces = None if max_faces is None else int(max_faces)
        self.iou, self.enlarge, self.video = float(iou), float(enlarge), bool(video)
        if self.strategy:
            options = dict(score_threshold=score_threshold, min_size=min_size, max_faces=max_faces, iou=iou)
            self.fallback = BlazeFaceDetector("back", enlarge=enlarge, **options)

    @property
    def mode(self) -> str:
        """What :meth:`detect` runs now: ``"fallback"`` or ``"merged"`` (two models), or ``"single"``."""
        if self.strategy == "auto":
            return VIDEO_STRATEGY if self.video else STILLS_STRATEGY
        return self.strategy or "single"

    def _forward(self, blob: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        self.net.setInput(blob)
        outs = dict(zip(self._outputs, self.net.forward(self._outputs)))
        scores = outs.get("classificators")
        raw = outs.get("regressors")
        if scores is None or raw is None:  # unnamed outputs: tell them apart by width
            a, b = (o.reshape(len(self.anchors), -1) for o in outs.values())
            scores, raw = (a, b) if a.shape[1] == 1 else (b, a)
        return scores.reshape(-1), raw.reshape(len(self.anchors), -1)

    def _run(self, image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """This object's own model on an RGB image: all boxes above ``score_threshold`` after the weighted
        NMS, in original pixels (float64), best first; no ``min_size`` / ``max_faces`` selection."""
        h, w = image.shape[:2]
        s = self.spec.size
        k = s / max(h, w)
        nw, nh = max(1, round(w * k)), max(1, round(h * k))
        small = cv2.resize(image, (nw, nh), interpolation=cv2.INTER_AREA if k < 1 else cv2.INTER_LINEAR)
        ox, oy = (s - nw) // 2, (s - nh) // 2
        square = np.zeros((s, s, 3), np.uint8)  # letterbox: black borders (-1 after scaling)
        square[oy : oy + nh, ox : ox + nw] = small
        blob = cv2.dnn.blobFromImage(square, 1.0 / 127.5, (s, s), (127.5, 127.5, 127.5), swapRB=False)
        logits, raw = self._forward(blob)
        scores = 1.0 / (1.0 + np.exp(-np.clip(logits.astype(np.float64), -100.0, 100.0)))
        keep = scores >= self.score_threshold
        if not keep.any():
            return empty_detections()
        raw, scores, anchors = raw[keep].astype(np.float64), scores[keep], self.anchors[keep]
        cx = raw[:, 0] / s + anchors[:, 0]  # normalised to the square input (fixed 1 x 1 anchors)
        cy = raw[:, 1] / s + anchors[:, 1]
        bw, bh = raw[:, 2] / s, raw[:, 3] / s
        boxes = np.stack([cx - bw / 2, cy - bh / 2, cx + bw / 2, cy + bh / 2], 1) * s  # input pixels (edges)
        boxes, scores = weighted_nms(boxes, scores, self.iou)
        # input pixel edges -> original pixel coordinates (pixel centres at integers)
        kx, ky = nw / w, nh / h
        boxes = (boxes.astype(np.float64) - [ox, oy, ox, oy]) / [kx, ky, kx, ky] - 0.5
        return boxes, scores.astype(np.float64)

    def _select(self, boxes: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The boxes of at least ``min_size`` (non-empty ones), then the ``max_faces`` largest, best first."""
        boxes, scores = np.asarray(boxes, np.float64).reshape(-1, 4), np.asarray(scores, np.float64).reshape(-1)
        sides = np.maximum(boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1])
        ok = (sides >= self.min_size) & (boxes[:, 2] > boxes[:, 0]) & (boxes[:, 3] > boxes[:, 1])
        boxes, scores, sides = boxes[ok], scores[ok], sides[ok]
        if self.max_faces is not None and len(boxes) > self.max_faces:
            largest = np.sort(np.argsort(-sides, kind="stable")[: self.max_faces])  # still best score first
            boxes, scores = boxes[largest], scores[largest]
        return boxes.astype(np.float32), scores.astype(np.float32)

    def detect(self, image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(H, W, 3) uint8 RGB -> boxes (K, 4) float32 and face probabilities (K,) float32, best first, by
        :attr:`mode`: one model; ``"fallback"``: the back model's only when the short one keeps no box;
        ``"merged"``: both models' boxes merged (:func:`merge_detections`) before the selection."""
        check_detector_image(image)
        mode = self.mode
        if mode == "merged":
            return self._select(*merge_detections([self._run(image), self.fallback._run(image)], self.iou))
        boxes, scores = self._select(*self._run(image))
        if len(boxes) == 0 and mode == "fallback":
            return self.fallback.detect(image)
        return boxes, scores

    def __repr__(self) -> str:
        return (
            f"BlazeFaceDetector(model={self.path.name!r}{f' + the back model ({self.mode})' * bool(self.fallback)}, "
            f"score_threshold={self.score_threshold}, "
            f"min_size={self.min_size}, max_faces={self.max_faces}, enlarge={self.enlarge})"
        )
