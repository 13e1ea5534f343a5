"""MediaPipe's BlazeFace face detector, run by ONNX Runtime where it is installed, else by OpenCV's DNN module.

The models are Google's MediaPipe face detection models (Apache-2.0), shipped unmodified under
``awing/detect/models/`` with their ``LICENSE`` and ``NOTICE``, each also as an ONNX file converted from
it (``tools/convert_blazeface.py``: tflite2onnx, the same weights, float16 widened to float32):

- ``"short"``: ``face_detection_short_range.tflite`` / ``.onnx`` (229 / 426 KB, 128x128 input), for faces
  that fill a good part of the image (selfies, face crops, portraits; MediaPipe: "within 2 m of the
  camera").
- ``"back"``: ``face_detection_back.tflite`` / ``.onnx`` (315 / 574 KB, 256x256 input), MediaPipe's
  back-camera model for smaller faces further away.

By default (``model="auto"``) still photos run the two models as a cascade (``"cascade"``): the short-range
model first, then the back one for the faces it did not find. :meth:`BlazeFaceDetector.detect` on its own
always runs both stages; :class:`awing.app.api.FaceAligner`, which can tell a face from a false box by its
landmarks, runs the second stage only where the first found no real face or only small ones
(:func:`awing.app.api.needs_second_stage`). Video frames (:func:`awing.detect.video_mode`) run the
short-range model, and the back one only on a frame where it finds no face (``"fallback"``).

Runtimes (``runtime=``, decided in one place, :func:`resolve_runtime`): ``"onnx"``, ONNX Runtime on the
``.onnx`` files (``pip install "awing[onnx]"``); ``"opencv"``, ``cv2.dnn.readNetFromTFLite`` on the
``.tflite`` files (the base install, OpenCV >= 4.8); ``"auto"`` (default), ONNX Runtime where it imports.
Both give the same boxes (within 0.05 px) and scores (within 1e-4); ONNX Runtime ran the forward passes
in about 0.6x OpenCV's time on one thread (1.4 against 2.2 ms short-range, 7.2 against 12.0 ms back:
``python benchmarks/detectors.py``, its runtimes table; docs/inference.md). ONNX Runtime's session takes
``threads`` intra-op threads. Everything else below (letterbox, anchors, decoding, NMS, the two-model
strategies) is shared.

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
from awing.core.extras import require
from awing.detect.base import check_detector_image

__all__ = [
    "BlazeFaceDetector",
    "BLAZEFACE_MODELS",
    "BLAZEFACE_ENLARGE",
    "MODEL_DIR",
    "RUNTIMES",
    "STRATEGIES",
    "merge_detections",
    "onnxruntime_available",
    "resolve_runtime",
    "ssd_anchors",
    "weighted_nms",
]

MODEL_DIR = Path(__file__).resolve().parent / "models"

# Default crop enlargement of BlazeFace boxes, as HAAR_ENLARGE (docs/RESULTS.md, "Face detectors").
BLAZEFACE_ENLARGE = 1.43


@dataclasses.dataclass(frozen=True)
class BlazeFaceModel:
    """One BlazeFace model file (MediaPipe's ``.tflite``; its ONNX conversion beside it) and its MediaPipe
    anchor / decoding options."""

    file: str
    size: int  # square input side, pixels
    strides: tuple[int, ...]
    score_threshold: float = 0.5  # MediaPipe's min_score_thresh
    anchor_offset: float = 0.5
    anchors_per_layer: int = 2  # aspect ratio 1.0 + the interpolated scale (interpolated_scale_aspect_ratio=1)

    @property
    def onnx_file(self) -> str:
        """The ONNX conversion of :attr:`file` (``tools/convert_blazeface.py``), in the same folder."""
        return str(Path(self.file).with_suffix(".onnx"))

    def model_file(self, runtime: str) -> str:
        """The file a resolved runtime reads: the ``.onnx`` one for ``"onnx"``, the ``.tflite`` one for ``"opencv"``."""
        return self.onnx_file if runtime == "onnx" else self.file


BLAZEFACE_MODELS = {
    "short": BlazeFaceModel("face_detection_short_range.tflite", 128, (8, 16, 16, 16)),
    "back": BlazeFaceModel("face_detection_back.tflite", 256, (16, 32, 32, 32)),
}


# What runs the network (BlazeFaceDetector(runtime=...)); "auto": ONNX Runtime where it imports, else OpenCV.
RUNTIMES = ("auto", "onnx", "opencv")


def onnxruntime_available() -> bool:
    """Whether ONNX Runtime imports (the ``onnx`` extra): what ``runtime="auto"`` looks for."""
    try:
        import onnxruntime  # noqa: F401
    except ImportError:
        return False
    return True


def resolve_runtime(runtime: str = "auto", onnx_file: bool = True) -> str:
    """The one place that decides what runs BlazeFace: ``"onnx"`` (ONNX Runtime) or ``"opencv"`` (``cv2.dnn``).

    Args:
        runtime: ``"auto"``: ``"onnx"`` where ONNX Runtime imports and the model has an ONNX file, else
            ``"opencv"``; ``"onnx"`` or ``"opencv"``: that one.
        onnx_file: whether the model can be read by ONNX Runtime (False for a ``.tflite`` file given by path;
            the shipped models have both files).
    Raises:
        ValueError: an unknown runtime, or ``"onnx"`` for a ``.tflite`` file. MissingExtra (an ImportError):
        ``"onnx"`` without onnxruntime installed.
    """
    if not isinstance(runtime, str) or runtime not in RUNTIMES:
        raise ValueError(f"runtime must be one of {', '.join(map(repr, RUNTIMES))}, not {runtime!r}")
    if runtime == "auto":
        return "onnx" if onnx_file and onnxruntime_available() else "opencv"
    if runtime == "onnx":
        require("onnxruntime", "onnx", "BlazeFaceDetector(runtime='onnx')")
        if not onnx_file:
            raise ValueError(
                "ONNX Runtime cannot read a .tflite file: pass the .onnx one (tools/convert_blazeface.py makes it) "
                "or runtime='opencv'"
            )
    return runtime


def default_threads() -> int:
    """The ONNX session's intra-op threads when the detector is told none: OpenCV's thread count now
    (``cv2.getNumThreads()``, what ``cv2.dnn`` runs the same model with; ``cv2.setNumThreads`` sets it)."""
    return max(1, int(cv2.getNumThreads()))


class _OpenCVNet:
    """``cv2.dnn`` on a ``.tflite`` file (or an ``.onnx`` one): blob -> ``{output name: array}``."""

    def __init__(self, path: Path) -> None:
        if path.suffix.lower() == ".onnx":
            self.net = cv2.dnn.readNetFromONNX(str(path))
        else:
            if not hasattr(cv2, "dnn") or not hasattr(cv2.dnn, "readNetFromTFLite"):
                raise RuntimeError(
                    f"OpenCV {cv2.__version__} cannot read TFLite models (needs OpenCV >= 4.8); "
                    "install onnxruntime (pip install \"awing[onnx]\") or use detector='opencv'"
                )
            # OpenCV 5's default DNN engine drops the "classificators" output; its classic engine gives both
            # outputs as 4.x does (same values). 4.x has no engine argument.
            engine = getattr(cv2.dnn, "ENGINE_CLASSIC", None)
            self.net = cv2.dnn.readNetFromTFLite(str(path), *(() if engine is None else (engine,)))
        self.outputs = list(self.net.getUnconnectedOutLayersNames())

    def __call__(self, blob: np.ndarray) -> dict[str, np.ndarray]:
        self.net.setInput(blob)
        return dict(zip(self.outputs, self.net.forward(self.outputs)))


class _OnnxNet:
    """An ONNX Runtime CPU session of an ``.onnx`` file with ``threads`` intra-op threads (as
    :class:`awing.app.api.FaceAligner` configures its landmark model's): blob -> ``{output name: array}``."""

    def __init__(self, path: Path, threads: int) -> None:
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = int(threads)
        self.session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        self.input = self.session.get_inputs()[0].name
        self.outputs = [o.name for o in self.session.get_outputs()]

    def __call__(self, blob: np.ndarray) -> dict[str, np.ndarray]:
        return dict(zip(self.outputs, self.session.run(self.outputs, {self.input: blob})))


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
STRATEGIES = ("auto", "cascade", "fallback", "merged")
# model="auto" on still photos: the short model, then the back one for the faces it missed (both always in
# detect(); FaceAligner runs the second stage only where it is needed: docs/RESULTS.md, "Face detectors")
STILLS_STRATEGY = "cascade"
VIDEO_STRATEGY = "fallback"  # model="auto" on video frames: the short-range model, the back one only on a miss
# How the image is shrunk to the model's input: "linear" (MediaPipe's own resampling, cv2.INTER_LINEAR) or
# "area" (cv2.INTER_AREA, the default before: the short model's whole detection took 1.5x as long on 300-W's
# 450-px photos, for the same faces found by FaceAligner; docs/RESULTS.md, "Face detectors"). An image smaller
# than the input is always enlarged bilinearly.
RESIZES = {"linear": cv2.INTER_LINEAR, "area": cv2.INTER_AREA}


def merge_detections(found, iou: float = 0.3) -> tuple[np.ndarray, np.ndarray]:
    """Several detectors' ``(boxes, scores)`` on one image as one set: :func:`weighted_nms` over all of them,
    so a face found by several becomes one box (their score-weighted mean, with the best score).

    Returns ``(boxes (K, 4) float32, scores (K,) float32)``, best first (empty when all are).
    """
    boxes = np.concatenate([np.asarray(b, np.float64).reshape(-1, 4) for b, _ in found] + [np.zeros((0, 4))])
    scores = np.concatenate([np.asarray(s, np.float64).reshape(-1) for _, s in found] + [np.zeros(0)])
    return weighted_nms(boxes, scores, iou)


class BlazeFaceDetector:
    """MediaPipe BlazeFace (short-range or back-camera model, or both), run by ONNX Runtime or ``cv2.dnn``.

    Args:
        model: ``"auto"`` (default): on still photos ``"cascade"``, on video frames (``video=True``, or
            inside :func:`awing.detect.video_mode`, as :class:`~awing.app.tracking.FaceTracker` runs it)
            ``"fallback"``, which costs about the short model's time; ``"cascade"``: two stages,
            :meth:`first_stage` (the short-range model) and :meth:`second_stage` (the back model's boxes
            of faces the first missed); :meth:`detect` runs both (the boxes of ``"merged"`` but for faces
            both find, which keep the short model's box), a caller that can judge the first stage's faces
            (:class:`~awing.app.api.FaceAligner`) runs the second only where needed; ``"merged"``: both
            models, their boxes merged by weighted NMS (:func:`merge_detections`; finds the small faces of
            ordinary photos, about 5x the short model's time); ``"fallback"``: the short-range model, then the
            back-camera one on an image where it finds no face (the default before: fast, but a photo where
            the short model finds a false box never gets the back model); ``"short"`` (128 px input, faces
            that fill much of the image) or ``"back"`` (256 px, smaller faces) alone; or the path of a
            ``.tflite`` or ``.onnx`` file with one of those models' layouts (then ``input_size`` picks the
            layout: 128 short, 256 back; ONNX Runtime reads ``.onnx`` files only, ``cv2.dnn`` both).
        score_threshold: smallest face probability kept (MediaPipe's default 0.5).
        min_size: smallest face box side kept, original pixels (0: all).
        max_faces: keep only the ``max_faces`` largest faces (None: all); returned best score first.
        iou: overlap above which boxes are merged by the weighted NMS (within a model and across models).
        enlarge: crop enlargement for these boxes (see :mod:`awing.detect.detectors`).
        video: the frames are video frames (see ``model="auto"``); an attribute, which
            :func:`awing.detect.video_mode` sets for a while.
        runtime: what runs the network (:func:`resolve_runtime`, for both models of a two-model strategy):
            ``"auto"`` (default): ONNX Runtime where it imports, else OpenCV; ``"onnx"``: ONNX Runtime on the
            shipped ``.onnx`` files (``pip install "awing[onnx]"``); ``"opencv"``: ``cv2.dnn`` on the
            ``.tflite`` files. They give the same boxes (within 0.05 px) and scores (within 1e-4).
            :attr:`runtime` holds the one chosen.
        threads: ONNX Runtime's intra-op threads (``intra_op_num_threads``, as ``FaceAligner(threads=)``
            sets its landmark model's). None: ``cv2.getNumThreads()`` at construction, the threads
            ``cv2.dnn`` runs the model with (``cv2.setNumThreads`` sets it). The OpenCV runtime uses OpenCV's
            own, process-wide setting and ignores this.
        resize: how a photo is shrunk to the model's input (:data:`RESIZES`): ``"linear"`` (default, as
            MediaPipe does) or ``"area"`` (an area average, the default before; slower on large photos).
    Raises:
        FileNotFoundError: the model file is missing. ValueError: an unknown ``runtime``, a bad option.
        MissingExtra (an ImportError): ``runtime="onnx"`` without onnxruntime. RuntimeError: the OpenCV
        runtime on an OpenCV that cannot read TFLite models (``cv2.dnn.readNetFromTFLite`` appeared in 4.8).
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
        runtime: str = "auto",
        threads: int | None = None,
        resize: str = "linear",
    ) -> None:
        if resize not in RESIZES:
            raise ValueError(f"resize must be one of {', '.join(RESIZES)}, got {resize!r}")
        self.resize = resize
        self.strategy = model if isinstance(model, str) and model in STRATEGIES else None
        self.fallback = None  # the back-camera model of a two-model strategy
        model = "short" if self.strategy else model
        named = isinstance(model, str) and model in BLAZEFACE_MODELS
        path = None if named else Path(model)
        self.runtime = resolve_runtime(runtime, named or path.suffix.lower() == ".onnx")
        if named:
            spec = BLAZEFACE_MODELS[model]
            path = MODEL_DIR / spec.model_file(self.runtime)
        else:
            layouts = {m.size: m for m in BLAZEFACE_MODELS.values()}
            size = input_size or (256 if "back" in path.name else 128)
            if size not in layouts:
                raise ValueError(f"input_size must be one of {sorted(layouts)} (the BlazeFace layouts), got {size}")
            spec = layouts[size]
        if not path.is_file():
            other = "runtime='opencv'" if self.runtime == "onnx" else "detector='opencv'"
            raise FileNotFoundError(
                f"BlazeFace model file not found: {path} (it ships inside awing under awing/detect/models/; "
                f"reinstall awing, or pass model= a path to {spec.model_file(self.runtime)}, or use {other})"
            )
        if not 0.0 <= float(score_threshold) <= 1.0:
            raise ValueError(f"score_threshold must be in [0, 1], got {score_threshold!r}")
        if max_faces is not None and int(max_faces) < 1:
            raise ValueError(f"max_faces must be >= 1 or None, got {max_faces!r}")
        whole = isinstance(threads, (int, np.integer)) and not isinstance(threads, bool)
        if threads is not None and not (whole and threads >= 1):
            raise ValueError(f"threads must be a whole number >= 1 or None, got {threads!r}")
        self.threads = (default_threads() if threads is None else int(threads)) if self.runtime == "onnx" else None
        self._net = _OnnxNet(path, self.threads) if self.runtime == "onnx" else _OpenCVNet(path)
        self.spec, self.path = spec, path
        self.anchors = ssd_anchors(spec.size, spec.strides, spec.anchor_offset, spec.anchors_per_layer)
        self.score_threshold, self.min_size = float(score_threshold), float(min_size)
        self.max_faces = None if max_faces is None else int(max_faces)
        self.iou, self.enlarge, self.video = float(iou), float(enlarge), bool(video)
        if self.strategy:
            options = dict(score_threshold=score_threshold, min_size=min_size, max_faces=max_faces, iou=iou)
            options.update(enlarge=enlarge, runtime=self.runtime, threads=self.threads, resize=resize)
            self.fallback = BlazeFaceDetector("back", **options)

    @property
    def mode(self) -> str:
        """What :meth:`detect` runs now: ``"cascade"``, ``"fallback"`` or ``"merged"`` (two models), or
        ``"single"``."""
        if self.strategy == "auto":
            return VIDEO_STRATEGY if self.video else STILLS_STRATEGY
        return self.strategy or "single"

    def _forward(self, blob: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The network on a (1, 3, S, S) float32 blob in [-1, 1]: logits (896,) and raw regressors (896, 16)."""
        outs = self._net(blob)
        scores = outs.get("classificators")
        raw = outs.get("regressors")
        if scores is None or raw is None:  # unnamed outputs: tell them apart by width
            a, b = (o.reshape(len(self.anchors), -1) for o in outs.values())
            scores, raw = (a, b) if a.shape[1] == 1 else (b, a)
        return scores.reshape(-1), raw.reshape(len(self.anchors), -1)

    def _letterbox(self, image: np.ndarray) -> tuple[np.ndarray, tuple[int, int, int, int]]:
        """An RGB image as the model's input blob (1, 3, S, S) float32 in [-1, 1], letterboxed, and the
        placement ``(ox, oy, nw, nh)`` of the resized image in the square."""
        h, w = image.shape[:2]
        s = self.spec.size
        k = s / max(h, w)
        nw, nh = max(1, round(w * k)), max(1, round(h * k))
        small = cv2.resize(image, (nw, nh), interpolation=RESIZES[self.resize] if k < 1 else cv2.INTER_LINEAR)
        ox, oy = (s - nw) // 2, (s - nh) // 2
        square = np.zeros((s, s, 3), np.uint8)  # letterbox: black borders (-1 after scaling)
        square[oy : oy + nh, ox : ox + nw] = small
        blob = cv2.dnn.blobFromImage(square, 1.0 / 127.5, (s, s), (127.5, 127.5, 127.5), swapRB=False)
        return blob, (ox, oy, nw, nh)

    def _run(self, image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """This object's own model on an RGB image: all boxes above ``score_threshold`` after the weighted
        NMS, in original pixels (float64), best first; no ``min_size`` / ``max_faces`` selection."""
        h, w = image.shape[:2]
        s = self.spec.size
        blob, (ox, oy, nw, nh) = self._letterbox(image)
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

    def _select(self, boxes: np.ndarray, scores: np.ndarray, known: int = 0) -> tuple[np.ndarray, np.ndarray]:
        """The boxes of at least ``min_size`` (non-empty ones), then the ``max_faces - known`` largest, best
        first (``known``: faces already found, by a cascade's first stage)."""
        boxes, scores = np.asarray(boxes, np.float64).reshape(-1, 4), np.asarray(scores, np.float64).reshape(-1)
        sides = np.maximum(boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1])
        ok = (sides >= self.min_size) & (boxes[:, 2] > boxes[:, 0]) & (boxes[:, 3] > boxes[:, 1])
        boxes, scores, sides = boxes[ok], scores[ok], sides[ok]
        keep = None if self.max_faces is None else max(0, self.max_faces - known)
        if keep is not None and len(boxes) > keep:
            largest = np.sort(np.argsort(-sides, kind="stable")[:keep])  # still best score first
            boxes, scores = boxes[largest], scores[largest]
        return boxes.astype(np.float32), scores.astype(np.float32)

    def detect(self, image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(H, W, 3) uint8 RGB -> boxes (K, 4) float32 and face probabilities (K,) float32, best first, by
        :attr:`mode`: one model; ``"fallback"``: the back model's only when the short one keeps no box;
        ``"merged"``: both models' boxes merged (:func:`merge_detections`) before the selection;
        ``"cascade"``: :meth:`first_stage`, then :meth:`second_stage` for the faces it missed."""
        check_detector_image(image)
        mode = self.mode
        if mode == "merged":
            return self._select(*merge_detections([self._run(image), self.fallback._run(image)], self.iou))
        boxes, scores = self._select(*self._run(image))
        if len(boxes) == 0 and mode == "fallback":
            return self.fallback.detect(image)
        if mode == "cascade":
            more, more_scores = self.second_stage(image, boxes)
            order = np.argsort(-np.concatenate([scores, more_scores]), kind="stable")
            return np.concatenate([boxes, more])[order], np.concatenate([scores, more_scores])[order]
        return boxes, scores

    def first_stage(self, image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The cascade's first stage: this detector's own (short-range) model alone, as :meth:`detect` returns
        boxes (K, 4) and scores (K,) float32, best first. Any mode: it never runs the back model."""
        check_detector_image(image)
        return self._select(*self._run(image))

    def second_stage(self, image: np.ndarray, known) -> tuple[np.ndarray, np.ndarray]:
        """The cascade's second stage: the back-camera model's boxes of faces not among ``known`` ((N, 4) boxes,
        e.g. the first stage's), i.e. those overlapping none of them by IoU > ``iou``; boxes (M, 4) and scores
        (M,) float32, best first, at most ``max_faces - N`` of them.

        Raises:
            ValueError: a detector of one model (no back model to run: ``model`` was ``"short"``, ``"back"`` or
            a file).
        """
        if self.fallback is None:
            raise ValueError(f"second_stage needs a two-model BlazeFaceDetector (model 'auto' or 'cascade'): {self!r}")
        check_detector_image(image)
        known = np.asarray(known, np.float64).reshape(-1, 4)
        boxes, scores = self.fallback._run(image)
        if len(known) and len(boxes):
            new = ~(box_iou(np.asarray(boxes, np.float64), known) > self.iou).any(1)
            boxes, scores = boxes[new], scores[new]
        return self._select(boxes, scores, known=len(known))

    def __repr__(self) -> str:
        threads = f", threads={self.threads}" if self.runtime == "onnx" else ""
        return (
            f"BlazeFaceDetector(model={self.path.name!r}{f' + the back model ({self.mode})' * bool(self.fallback)}, "
            f"runtime={self.runtime!r}{threads}, score_threshold={self.score_threshold}, "
            f"min_size={self.min_size}, max_faces={self.max_faces}, enlarge={self.enlarge}, resize={self.resize!r})"
        )
