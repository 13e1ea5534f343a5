"""``FaceAligner``: landmarks on people's own images, in a few lines.

    from awing import FaceAligner
    aligner = FaceAligner()                      # the default shipped model, BlazeFace detector, CPU
    for face in aligner.predict("photo.jpg"):
        print(face.box, face.landmarks)          # (4,) and (N, 2) in the photo's pixels

Pipeline per image: detector boxes -> square crops (``square_box`` enlarged by the detector's factor,
``crop_matrix`` + ``warp_image`` at the model's input size) -> one batched forward pass for all faces ->
the last stack's landmark heatmaps -> the model's codec (``decode`` -> ``to_image``) back to original
pixels. Points follow docs/ARCHITECTURE.md: ``(x, y)``, pixel centres at integers.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import os
import sys
import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from awing.app.pose import pose_of_points
from awing.core.boxes import box_iou
from awing.core.checkpoint import checkpoint_metrics, load_checkpoint
from awing.core.device import inference_dtype, resolve_device
from awing.core.extras import require
from awing.core.images import UNSTATED_COLOR, load_image
from awing.data.crop import crop_matrix, face_square, landmark_crop_box, warp_image
from awing.data.hints import InferenceHints, inference_hints
from awing.detect import (
    DEFAULT_DETECTOR,
    FaceDetector,
    detector_enlarge,
    detector_offset,
    detector_takes,
    get_detector,
)
from awing.method.model import flip_average, model_from_checkpoint, predict_heatmaps
from awing.pretrained import resolve_model
from awing.schemas import load_schema, map_points, point_mapping

__all__ = [
    "ENLARGE_RANGE",
    "FACE_QUALITY_THRESHOLD",
    "SMALL_FACE_SHARE",
    "FaceAligner",
    "FaceLandmarks",
    "check_enlarge",
    "load_rgb",
    "needs_second_stage",
]

# The is_face cut on FaceLandmarks.quality (the mean point confidence) for models that store none of
# their own (``inference.face_quality``): fdd14-1hg-tiny's (docs/RESULTS.md, "Inference defaults").
FACE_QUALITY_THRESHOLD = 0.49


# The second pass (``FaceAligner(refine=...)``) is kept only if it moved the points by at most this fraction
# of the detector box's longer side (mean over points); a larger move means the first pass had failed
# (docs/RESULTS.md, "Inference defaults").
REFINE_MAX_SHIFT = 0.05

# ``refine="auto"`` runs the second pass on a face only where the crop it would take and the first pass's crop
# overlap less than this (IoU of the two square crops, :func:`second_pass_pays`): where they nearly coincide
# the second pass reads nearly the same pixels again (docs/RESULTS.md, "Second pass: where it pays").
REFINE_MIN_IOU = 0.9

# A two-stage detector's second stage (BlazeFace's default on still photos: the back-camera model after the
# short-range one) runs where the first found no face that passes the landmark quality check, or where the
# smallest one it found has a box side under this share of the image's longer side: in a photo of small
# faces, others may be too small for the first stage (BlazeFace's short-range model finds faces down to
# about 1/8 of the image; docs/RESULTS.md, "Face detectors").
SMALL_FACE_SHARE = 0.25

# ``FaceAligner(backend=...)``: "auto" is ONNX Runtime on the CPU where it is installed (resolve_backend).
BACKENDS = ("auto", "torch", "onnx")

# The ONNX exports FaceAligner made in this process (bytes, by model file), at most this many kept.
_ONNX_EXPORTS: dict[tuple, bytes] = {}
_ONNX_CACHE_SIZE = 8

# ``FaceAligner(refine=...)``: True is "always", False "never".
REFINE_MODES = ("auto", "always", "never")


# The crop enlargements (``enlarge``, a fraction of the squared box) that FaceAligner, predict_crops and
# FaceTracker accept, both ends included: at -0.9 the crop is a tenth of the box's side, at 10 it is 11 times
# the box (the face then fills under a tenth of the model's input). ``awing predict --enlarge`` takes the same.
ENLARGE_RANGE = (-0.9, 10.0)

# The awing package's folder: the unstated-colour warning names the first caller outside it.
_PACKAGE_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


class _LazyPose:
    """:attr:`FaceLandmarks.pose` as a dataclass field: a dict or None as given, or, given a callable with no
    arguments (what FaceAligner passes), its result on the first read, kept. The head-pose fit costs about
    0.5 ms a face (two ``cv2.solvePnP`` calls), spent only on faces whose pose is read."""

    def __set_name__(self, owner, name: str) -> None:
        self.slot = "_" + name

    def __get__(self, face, owner=None):
        if face is None:  # the class attribute: the field's default
            return None
        value = face.__dict__.get(self.slot)
        if callable(value):
            value = face.__dict__[self.slot] = value()
        return value

    def __set__(self, face, value) -> None:
        face.__dict__[self.slot] = value

    def stored(self, face):
        """What ``face`` holds without fitting it: the pose, or the callable that will fit it."""
        return face.__dict__.get(self.slot)


_POSE = _LazyPose()


@dataclasses.dataclass
class FaceLandmarks:
    """One face's prediction, in the original image's pixels.

    Point names follow the schema (``awing/schemas/*.yaml``), and ``left`` / ``right`` in them are as seen
    in the image: ``left_eye_*`` is the eye on the image's left, the subject's right eye.

    Attributes:
        box: (4,) float32 ``x0, y0, x1, y1``, the face box the crop was built from.
        landmarks: (N, 2) float32 ``x, y``.
        confidence: (N,) float32, each landmark heatmap's peak value (about 1 for a sure point, near 0
            for a guess; not a calibrated probability).
        point_names: N names, in the schema's order.
        schema: the landmark layout's name (e.g. ``fdd14``).
        score: the detector's score for the box (1 for given boxes).
        quality: the landmark score of the face: the mean of the model's point confidences (its own
            points, before any ``output_schema`` mapping). It separates faces from false detections better
            than ``score`` or any one confidence: ``quality_threshold`` (the model's, calibrated on real
            faces vs non-face boxes; :data:`FACE_QUALITY_THRESHOLD` for models without one) is the cut;
            ``is_face`` applies it.
        pose: ``{"yaw", "pitch", "roll"}`` head pose in degrees from the points (:mod:`awing.app.pose`: a
            3-D mean face fitted with PnP; signs: yaw > 0 nose to the image right, pitch > 0 face up,
            roll > 0 clockwise on screen), or None when the layout has no 3-D mean face or the fit fails.
            FaceAligner's faces fit it when it is first read.
    """

    box: np.ndarray
    landmarks: np.ndarray
    confidence: np.ndarray
    point_names: tuple[str, ...]
    schema: str
    score: float = 1.0
    quality: float = float("nan")
    pose: dict | None = _POSE  # type: ignore[assignment]  # computed when first read (see _LazyPose)
    quality_threshold: float = FACE_QUALITY_THRESHOLD

    @property
    def is_face(self) -> bool:
        """Whether :attr:`quality` reaches the model's calibrated cut (a face, not a false detection)."""
        return bool(self.quality >= self.quality_threshold)

    def to_dict(self) -> dict:
        """JSON-ready form: ``box``, ``score``, ``points`` ([[x, y], ...]) and ``confidence`` lists, then
        ``quality`` (the landmark score), ``is_face`` and ``pose`` (``{"yaw", "pitch", "roll"}`` or None)."""
        return {
            "box": [round(float(v), 2) for v in self.box],
            "score": round(float(self.score), 4),
            "points": [[round(float(x), 2), round(float(y), 2)] for x, y in self.landmarks],
            "confidence": [round(float(c), 4) for c in self.confidence],
            "quality": round(float(self.quality), 4),
            "is_face": self.is_face,
            "pose": None if self.pose is None else dict(self.pose),
        }


def _is_real(value) -> bool:
    """A real number (Python or NumPy int / float), not a bool."""
    return not isinstance(value, bool) and isinstance(value, (int, float, np.integer, np.floating))


def _caller_outside_awing() -> int:
    """The ``stacklevel`` of the innermost frame that is not awing's own code (the user's call)."""
    frame, level = sys._getframe(1), 1
    while frame is not None and frame.f_code.co_filename.startswith(_PACKAGE_DIR + os.sep):
        frame, level = frame.f_back, level + 1
    return level


def load_rgb(image, color: str | None = None) -> np.ndarray:
    """:func:`awing.core.images.load_image` for the inference entry points: (H, W, 3) uint8 RGB.

    A colour numpy array without ``color`` is taken as RGB with a UserWarning
    (:data:`awing.core.images.UNSTATED_COLOR`) attributed to the first caller outside awing, so that it
    points at the user's line; calls that state ``color``, paths, PIL and grey images warn nothing.

    Raises:
        IsADirectoryError: a folder instead of an image (the message says how to run over its files).
        The errors of :func:`~awing.core.images.load_image`.
    """
    if isinstance(image, (str, Path)) and Path(image).is_dir():
        raise IsADirectoryError(
            f"{image} is a folder, not an image: run `awing predict {image}` (it reads the folder's images), or "
            "FaceAligner.predict_batch(paths) over its image files"
        )
    if color is None and isinstance(image, np.ndarray) and image.ndim == 3 and image.shape[2] in (3, 4):
        rgb = load_image(image, "RGB")  # an unusable array raises before any warning
        warnings.warn(UNSTATED_COLOR, UserWarning, stacklevel=_caller_outside_awing())
        return rgb
    return load_image(image, color)


def check_enlarge(enlarge) -> None:
    """ValueError unless ``enlarge`` is a real number in :data:`ENLARGE_RANGE` (or None)."""
    if enlarge is None:
        return
    if not _is_real(enlarge):
        raise ValueError(f"enlarge must be a number or None, got {enlarge!r}")
    low, high = ENLARGE_RANGE
    if not (math.isfinite(enlarge) and low <= enlarge <= high):
        raise ValueError(
            f"enlarge must be a number from {low} to {high} (a fraction of the squared box; 0: the box itself), "
            f"got {enlarge!r}"
        )


def _crop_boxes(boxes) -> np.ndarray:
    """(K, 4) float32 boxes from a (K, 4) array-like or one (4,) box; ValueError naming the shape otherwise."""
    try:
        array = np.asarray(boxes, dtype=np.float32)
    except (TypeError, ValueError) as err:
        raise ValueError(f"boxes must be an (N, 4) array of x0, y0, x1, y1 numbers, got {boxes!r}") from err
    if array.size == 0:
        return array.reshape(0, 4)
    if array.shape == (4,):
        return array[None]
    if array.ndim != 2 or array.shape[1] != 4:
        raise ValueError(f"boxes must be an (N, 4) array of x0, y0, x1, y1 per face, got shape {array.shape}")
    return array


def square_to_box(square: tuple[float, float, float]) -> np.ndarray:
    """(4,) float64 ``x0, y0, x1, y1`` of a crop square ``(cx, cy, side)``."""
    cx, cy, side = (float(v) for v in square)
    return np.array([cx - side / 2, cy - side / 2, cx + side / 2, cy + side / 2])


def second_pass_pays(first_crop, second_crop, min_iou: float = REFINE_MIN_IOU) -> bool:
    """Whether ``refine="auto"`` runs a face's second pass: the crop the second pass would take and the first
    pass's crop (each (4,) ``x0, y0, x1, y1``) overlap less than ``min_iou`` (intersection over union; for
    two squares about one centre that is the square of their side ratio, so it catches a crop too large or
    too small as well as one off centre). A second crop that is missing or not finite never pays."""
    second = None if second_crop is None else np.asarray(second_crop, np.float64)
    if second is None or not np.isfinite(second).all():
        return False
    return bool(box_iou(np.asarray(first_crop, np.float64), second)[0, 0] < min_iou)


def needs_second_stage(faces: Sequence[FaceLandmarks], image_shape, small: float = SMALL_FACE_SHARE) -> bool:
    """Whether a two-stage detector's second stage should look for more faces in an image: none of its
    first stage's ``faces`` passes the quality check (:attr:`FaceLandmarks.is_face`: nothing found, or only
    false boxes, such as a sign), or the smallest that does has a box side (its longer one) under ``small`` x
    the image's longer side (``image_shape``: ``(H, W, ...)``)."""
    real = [f for f in faces if f.is_face]
    if not real:
        return True
    side = min(float(max(f.box[2] - f.box[0], f.box[3] - f.box[1])) for f in real)
    return side < small * max(image_shape[0], image_shape[1])


def refine_shift(first: FaceLandmarks, second: FaceLandmarks) -> float:
    """Mean distance between two passes' points, over the longer side of ``first``'s box (NaN points are
    skipped; inf when no point is finite in both)."""
    moved = np.linalg.norm(np.asarray(second.landmarks, np.float64) - first.landmarks, axis=1)
    moved = moved[np.isfinite(moved)]
    side = float(max(first.box[2] - first.box[0], first.box[3] - first.box[1]))
    return float(moved.mean() / side) if moved.size and side > 0 else float("inf")


class FaceAligner:
    """Detect faces and localise their landmarks.

    Args:
        model: None (the default shipped model, :func:`awing.pretrained.default_model`), a shipped model's
            name (``awing models``), or the path of a checkpoint (``awing train``'s, or a weights file
            from ``awing export``). Loaded with ``weights_only=True``.
        device: ``"cpu"``, ``"cuda"``, ``"cuda:1"`` or ``"auto"``.
        detector: a name of :data:`awing.detect.DETECTORS` (default ``"blazeface"``; ``"full"``: each
            image is already a face crop), or any object with ``detect(image_rgb) -> (boxes, scores)``
            (see :mod:`awing.detect`).
        enlarge: fraction by which the squared detector box grows to make the crop, in
            :data:`ENLARGE_RANGE`. None: the model's calibrated factor for this detector's box style
            (``awing export --calibrate``) if any; else, for a model trained on landmark-box crops, its
            training enlargement (the detector box taken for the landmark box); else the detector's own
            (:func:`awing.detect.detector_enlarge`).
        fast: on the torch backend, bf16 autocast + channels_last where the device has native bf16
            (:func:`awing.core.device.inference_dtype`). Off by default: it is faster (on one CPU thread about
            1.4x at one face per pass, 2.3x at eight) but moves points against fp32's (on 300-W val 4.5 % of
            them by more than 0.5 px, 1 % by more than 5 px); the default paths give fp32's points.
        backend: ``"auto"`` (default): ``"onnx"`` on the CPU where ONNX Runtime and onnx are installed
            (:func:`resolve_backend`), else ``"torch"``. ``"onnx"``: the model exported to ONNX at
            start-up (once per model file and process: the export is kept in memory) and run by ONNX
            Runtime on the CPU, in fp32 (``pip install "awing[onnx]"``). ``"torch"``: PyTorch on ``device``.
        threads: ONNX Runtime's intra-op threads (``intra_op_num_threads``); None: its default (one per
            physical core). The torch backend uses torch's own setting (``torch.set_num_threads``). A
            detector given by name that has a thread setting (BlazeFace on ONNX Runtime) gets the same.
        schema: the landmark layout you expect (e.g. ``"fdd14"``); a model with another one is an error.
        max_batch: at most this many faces per forward pass (faces beyond it go to further passes).
        output_schema: return the points in this layout instead of the model's, through the schemas'
            declared mappings (e.g. ``"mtfl5"``: five alignment points from a 68- or 14-point model); each
            point's confidence is the mean over the points it is made from.
        refine: a second pass on detected faces: the face is cropped again around the first pass's landmarks
            (:meth:`refine_box`) and takes the second crop's points (the box and score stay the detector's).
            A model trained on landmark-box crops gets its training crop (its landmark box, enlarged by its
            training enlargement); any other model a square of the detector box's side about the landmark
            box's centre, enlarged as the first crop was (the rule video tracking follows too). A face keeps
            its first pass when the second moved its points by more than ``refine_max_shift``.
            ``"always"`` (or True): every face; ``"never"`` (or False): one pass; ``"auto"`` (default): for
            models trained on landmark-box crops, only the faces whose second crop overlaps their first
            less than ``refine_min_iou`` (:func:`second_pass_pays`), for other models never, nor for a
            model whose file says ``refine: never`` (``awing export --refine never``: the shipped 68-point
            models, whose second pass costs 60-90 % more time for about 0.1 point of NME or less).
            Only :meth:`predict` / :meth:`predict_batch` refine; :meth:`predict_crops` is one pass.
        decoder: the sub-pixel decoder, ``"quarter"`` (the paper's argmax + quarter-pixel shift) or
            ``"dark"`` (a Taylor step on the smoothed log heatmap); None: the one stored in the model file.
        flip_test: also run the mirrored crop and average the heatmaps (twice the model time); None
            (default): what the model file says (``awing export --flip-test``), else no.
        refine_max_shift: a face's second pass is dropped when it moved the points by more than this
            fraction of the box's longer side, mean over points (:func:`refine_shift`); default
            :data:`REFINE_MAX_SHIFT`, ``math.inf``: always keep the second pass.
        refine_min_iou: ``refine="auto"``'s cut, in (0, 1]: the second pass runs where the two crops'
            IoU is below it; default :data:`REFINE_MIN_IOU`.
    Raises:
        FileNotFoundError: no such model file / no shipped model. CheckpointError: not an awing
        checkpoint. ValueError: wrong schema, device, detector, ``max_batch`` (< 1), ``enlarge`` (outside
        :data:`ENLARGE_RANGE`), ``refine`` (not in :data:`REFINE_MODES`, True or False), ``refine_max_shift``
        (not a number > 0) or ``refine_min_iou`` (not in (0, 1]). MissingExtra (an
        ImportError): ``backend="onnx"`` or ``detector="dlib"`` without their extra installed.

    Attributes:
        face_quality: the model's own is_face cut on :attr:`FaceLandmarks.quality` (``inference.face_quality``
            in its file, else :data:`FACE_QUALITY_THRESHOLD`); :class:`~awing.app.tracking.FaceTracker`
            loses a track below it by default.
        enlarge, offset: the crop enlargement and centre offset of detector boxes in use.

    Example (a shipped 68-point model on an image that is one face crop):

        >>> import numpy as np
        >>> from awing import FaceAligner
        >>> aligner = FaceAligner("w300-1hg-tiny", device="cpu", detector="full")
        >>> faces = aligner.predict(np.zeros((128, 128, 3), np.uint8), color="RGB")
        >>> len(faces), faces[0].landmarks.shape, faces[0].point_names[36]
        (1, (68, 2), 'left_eye_0')
    """

    def __init__(
        self,
        model: str | Path | None = None,
        device: str | torch.device = "auto",
        detector: str | FaceDetector = DEFAULT_DETECTOR,
        enlarge: float | None = None,
        fast: bool = False,
        schema: str | None = None,
        max_batch: int = 64,
        backend: str = "auto",
        output_schema: str | None = None,
        refine: bool | str = "auto",
        decoder: str | None = None,
        flip_test: bool | None = None,
        refine_max_shift: float = REFINE_MAX_SHIFT,
        refine_min_iou: float = REFINE_MIN_IOU,
        threads: int | None = None,
    ) -> None:
        _check_arguments(backend, max_batch, enlarge, refine, refine_max_shift, refine_min_iou, threads)
        self.device = torch.device("cpu") if backend == "onnx" else resolve_device(device)
        self.backend = resolve_backend(backend, self.device)
        self.model_path = resolve_model(model)
        ckpt = load_checkpoint(self.model_path)
        self.model, self.schema, self.codec = model_from_checkpoint(ckpt, device=self.device)
        if decoder is not None:  # the codec checks the name (ValueError)
            self.codec = dataclasses.replace(self.codec, decoder=decoder)
        if schema is not None and load_schema(schema).name != self.schema.name:
            raise ValueError(
                f"{self.model_path} predicts the {self.schema.name!r} layout "
                f"({self.schema.num_points} points), not {load_schema(schema).name!r}"
            )
        self.output_schema = self.schema if output_schema is None else load_schema(output_schema)
        self._to_output = point_mapping(self.schema, self.output_schema)
        if self._to_output is None:
            raise ValueError(
                f"{self.model_path} predicts the {self.schema.name!r} layout, and the schemas declare no mapping from "
                f"it to {self.output_schema.name!r} (from_schemas in the schema YAML)"
            )
        self.metrics = checkpoint_metrics(ckpt)
        same_threads = {"threads": threads} if threads is not None and detector_takes(detector, "threads") else {}
        self.detector = get_detector(detector, **same_threads)  # a named detector runs on the model's threads
        self._use_hints(inference_hints(ckpt), enlarge)
        self.flip_test: bool = bool(self.hints.flip_test) if flip_test is None else bool(flip_test)
        self.flip_permutation = self.schema.flip_permutation if self.flip_test else None
        self.dtype = inference_dtype(self.device) if fast and self.backend == "torch" else None
        if self.dtype is not None:
            self.model = self.model.to(memory_format=torch.channels_last)
        self.max_batch = int(max_batch)
        self.session = None
        if self.backend == "onnx":
            self.session = _onnx_session(self.model, self.schema, self.model_path, threads)
        mode = {True: "always", False: "never"}.get(refine, refine)
        if mode == "auto" and (self.landmark_crop_enlarge is None or self.hints.refine == "never"):
            mode = "never"  # no training crop to re-crop with, or a model whose second pass does not pay
        self.refine: str = mode  # "always", "never" or "auto" (the rule of second_pass_pays)
        self.refine_max_shift, self.refine_min_iou = float(refine_max_shift), float(refine_min_iou)

    def _use_hints(self, hints: InferenceHints, enlarge: float | None) -> None:
        """The crop settings from the model file's hints and the caller's ``enlarge``."""
        self.hints = hints
        self.crop_rule = hints.crop  # e.g. the authors' crop (awing.app.official)
        self.face_quality = FACE_QUALITY_THRESHOLD if hints.face_quality is None else hints.face_quality
        if enlarge is None:  # the calibrated factor and centre offset, else the landmark-box crop's factor
            self.enlarge = detector_enlarge(self.detector, hints.enlarge, hints.landmark_enlarge)
            self.offset = detector_offset(self.detector, hints.offset)
        else:  # a caller's own enlargement frames its own crop: no offset
            self.enlarge, self.offset = float(enlarge), (0.0, 0.0)
        # The second pass and video tracking re-crop with the landmark-box training crop; None: a square of
        # the detector box's side instead (points in another layout cover less of the face).
        same_layout = self.output_schema.name == self.schema.name
        self.landmark_crop_enlarge = hints.landmark_enlarge if same_layout else None

    # ------------------------------------------------------------------------------------------ info
    @property
    def input_size(self) -> int:
        """S: the side of the model's square input, pixels."""
        return self.codec.input_size

    @property
    def point_names(self) -> tuple[str, ...]:
        """The names of the points each face comes back with (the output schema's)."""
        return self.output_schema.point_names

    def __repr__(self) -> str:
        precision = "fp32" if self.dtype is None else str(self.dtype).replace("torch.", "")
        precision += ", onnxruntime" if self.session is not None else ""
        precision += ", flip test" if self.flip_test else ""
        return (
            f"FaceAligner(model={str(self.model_path)!r}, schema={self.schema.name!r}, device={self.device}, "
            f"{precision}, detector={type(self.detector).__name__}, enlarge={self.enlarge})"
        )

    # --------------------------------------------------------------------------------------- predict
    def predict(self, image, color: str | None = None) -> list[FaceLandmarks]:
        """All faces of one image (one forward pass for all of them), best detector score first.

        Args:
            image: a path, a numpy array or a PIL image (see :func:`load_image`).
            color: ``"RGB"`` or ``"BGR"``, the channel order of a numpy array (``"BGR"`` for OpenCV's);
                left out for a colour array, RGB is assumed and a UserWarning says so (:func:`load_rgb`).
        Returns:
            A list of :class:`FaceLandmarks` (empty when no face is found).
        Raises:
            ValueError: a list of images or a (B, H, W, C) array (:meth:`predict_batch` takes those), or an
            unusable image. IsADirectoryError: a folder. FileNotFoundError: no such file.
        """
        if isinstance(image, (list, tuple)):
            raise ValueError(
                f"predict takes one image, got a {type(image).__name__} of {len(image)}: use predict_batch(images) "
                "for several (or predict(images[0]) for one)"
            )
        if isinstance(image, np.ndarray) and image.ndim == 4:
            raise ValueError(
                f"predict takes one image, got an array of shape {image.shape}: use predict_batch(array) for a "
                "(B, H, W, C) batch"
            )
        return self.predict_batch([image], color=color)[0]

    def predict_crops(
        self, image, boxes, color: str | None = None, enlarge: float | None = None
    ) -> list[FaceLandmarks]:
        """Landmarks for given face boxes, skipping detection (one forward pass for all boxes).

        Args:
            image, color: as :meth:`predict` takes them.
            boxes: (K, 4) ``x0, y0, x1, y1`` face boxes in the image's pixels (one (4,) box is K = 1).
            enlarge: crop enlargement for these boxes, in :data:`ENLARGE_RANGE`; None uses the aligner's
                (which suits boxes drawn like the detector's). 0 takes each squared box as the crop itself.
        Raises:
            ValueError: ``boxes`` of another shape, ``enlarge`` out of range, an unusable image.
        """
        check_enlarge(enlarge)
        boxes = _crop_boxes(boxes)
        rgb = load_rgb(image, color)
        scores = np.ones(len(boxes), np.float32)
        if enlarge is None:
            return self._align([rgb], [boxes], [scores], self.enlarge, self.offset)[0]
        return self._align([rgb], [boxes], [scores], float(enlarge))[0]

    def predict_batch(self, images: Sequence, color: str | None = None) -> list[list[FaceLandmarks]]:
        """:meth:`predict` for several images; the faces of all of them share forward passes.

        Args:
            images: a list (or other sequence) of images, each as :meth:`predict` takes them; a (B, H, W, C)
                array is B images. One image on its own (a path, an (H, W[, C]) array) is a ValueError.
            color: the channel order of the numpy arrays among them, as :meth:`predict`'s.
        """
        if isinstance(images, (str, bytes, Path)) or type(images).__module__.startswith("PIL."):
            raise ValueError(
                f"predict_batch takes a list of images, got one {type(images).__name__}: "
                "use predict(image) or predict_batch([image])"
            )
        if isinstance(images, np.ndarray) and images.ndim != 4:
            raise ValueError(
                f"predict_batch takes a list of images or a (B, H, W, C) array, got an array of shape "
                f"{images.shape}: use predict(image) for one image"
            )
        rgbs = [load_rgb(im, color) for im in images]
        staged = getattr(self.detector, "mode", None) == "cascade"  # a two-stage detector: see needs_second_stage
        detect = self.detector.first_stage if staged else self.detector.detect
        found = [detect(rgb) for rgb in rgbs]
        boxes = [np.asarray(b, np.float32).reshape(-1, 4) for b, _ in found]
        scores = [np.asarray(s, np.float32).reshape(-1) for _, s in found]
        results = self._align(rgbs, boxes, scores, self.enlarge, self.offset)
        if staged:
            results = [self._second_stage(rgb, faces) for rgb, faces in zip(rgbs, results)]
        if self.refine == "never":
            return results
        return [self.refine_faces(rgb, faces) for rgb, faces in zip(rgbs, results)]

    def _second_stage(self, rgb: np.ndarray, faces: list[FaceLandmarks]) -> list[FaceLandmarks]:
        """The faces of a two-stage detector's first stage, with the second stage's new ones where
        :func:`needs_second_stage` says so, all best detector score first."""
        if not needs_second_stage(faces, rgb.shape):
            return faces
        boxes, scores = self.detector.second_stage(rgb, np.asarray([f.box for f in faces], np.float32).reshape(-1, 4))
        if not len(boxes):
            return faces
        more = self._align([rgb], [boxes], [scores], self.enlarge, self.offset)[0]
        return sorted(faces + more, key=lambda f: -f.score)

    def refine_box(self, face: FaceLandmarks) -> np.ndarray | None:
        """The box of ``face``'s second-pass crop (see ``refine``; :func:`awing.data.crop.landmark_crop_box`),
        (4,) float64 ``x0, y0, x1, y1``, or None (no finite point, empty box)."""
        if self.landmark_crop_enlarge is not None:  # the landmark box: the model's training crop
            return landmark_crop_box(face.landmarks)
        box = np.asarray(face.box, np.float64)  # the detector box's side, about the landmarks' box centre
        return landmark_crop_box(face.landmarks, max(box[2] - box[0], box[3] - box[1]))

    def crop_squares(self, face: FaceLandmarks) -> tuple[np.ndarray, np.ndarray | None]:
        """``face``'s first-pass crop (from its detector box) and the crop its second pass would take (None
        when :meth:`refine_box` has none), each (4,) float64 ``x0, y0, x1, y1``: what :func:`second_pass_pays`
        compares."""
        first = square_to_box(self._square(face.box, self.enlarge, self.offset))
        box = self.refine_box(face)
        return first, None if box is None else square_to_box(self._square(box, self._refine_enlarge))

    @property
    def _refine_enlarge(self) -> float:
        """The second crop's enlargement: the training crop's, else the first crop's."""
        return self.enlarge if self.landmark_crop_enlarge is None else self.landmark_crop_enlarge

    def refine_faces(self, rgb: np.ndarray, faces: list[FaceLandmarks]) -> list[FaceLandmarks]:
        """The second pass on one RGB image's first-pass faces, as ``refine`` says (``"auto"``: only where
        :func:`second_pass_pays`): one :meth:`predict_crops` call for all of them; the other faces as given."""
        boxes = [self.refine_box(f) for f in faces] if self.refine != "never" else [None] * len(faces)
        if self.refine == "auto":
            pays = [second_pass_pays(*self.crop_squares(f), self.refine_min_iou) for f in faces]
            boxes = [b if run else None for b, run in zip(boxes, pays)]
        todo = [k for k, b in enumerate(boxes) if b is not None]
        if not todo:
            return faces
        boxes = np.stack([boxes[k] for k in todo])
        second = self.predict_crops(rgb, boxes, color="RGB", enlarge=self._refine_enlarge)
        out = list(faces)
        for k, face in zip(todo, second):  # the second pass's points (and what is computed from them)
            if refine_shift(faces[k], face) > self.refine_max_shift:
                continue  # the first pass failed: a crop around its points is worse (see REFINE_MAX_SHIFT)
            kept = {"box", "score"}  # the detector's
            fields = {f.name: getattr(face, f.name) for f in dataclasses.fields(face) if f.name not in kept | {"pose"}}
            fields["pose"] = _POSE.stored(face)  # still unread: the second pass's pose stays lazy
            out[k] = dataclasses.replace(faces[k], **fields)
        return out

    # ------------------------------------------------------------------------------------- internals
    def _align(
        self,
        rgbs: list[np.ndarray],
        boxes: list[np.ndarray],
        scores: list[np.ndarray],
        enlarge: float,
        offset: tuple[float, float] = (0.0, 0.0),
    ) -> list[list[FaceLandmarks]]:
        """Crop every box of every image (its square enlarged by ``enlarge``, its centre moved by ``offset``
        x the box's longer side), run the model, map the points back."""
        s = self.input_size
        crops, matrices, owners = [], [], []
        for i, (rgb, image_boxes) in enumerate(zip(rgbs, boxes)):
            for box in image_boxes:
                cx, cy, side = self._square(box, enlarge, offset)
                m = crop_matrix((cx, cy), side, s)
                crops.append(warp_image(rgb, m, s))
                matrices.append(m)
                owners.append(i)
        results: list[list[FaceLandmarks]] = [[] for _ in rgbs]
        if not crops:
            return results
        points, confidence = [], []
        for start in range(0, len(crops), self.max_batch):
            p, c = self.landmarks_in_crops(
                np.stack(crops[start : start + self.max_batch]),
                np.stack(matrices[start : start + self.max_batch]),
            )
            points.append(p)
            confidence.append(c)
        points, confidence = np.concatenate(points), np.concatenate(confidence)
        finite = np.isfinite(confidence)  # quality: the mean over the model's own points
        quality = np.where(finite.any(1), np.where(finite, confidence, 0).sum(1) / np.maximum(finite.sum(1), 1), np.nan)
        if self.output_schema.name != self.schema.name:  # e.g. the 5 alignment points of a 68-point model
            points = map_points(points, self._to_output).astype(np.float32)
            confidence = (confidence @ self._to_output.T).astype(np.float32)  # the mean over the source points
        index_in_image = [0] * len(rgbs)
        for k, owner in enumerate(owners):
            j = index_in_image[owner]
            index_in_image[owner] += 1
            results[owner].append(
                FaceLandmarks(
                    box=boxes[owner][j].astype(np.float32),
                    landmarks=points[k],
                    confidence=confidence[k],
                    point_names=self.output_schema.point_names,
                    schema=self.output_schema.name,
                    score=float(scores[owner][j]),
                    quality=float(quality[k]),
                    pose=functools.partial(pose_of_points, points[k], self.output_schema, rgbs[owner].shape[1::-1]),
                    quality_threshold=self.face_quality,
                )
            )
        return results

    def _square(self, box, enlarge: float, offset: tuple[float, float] = (0.0, 0.0)) -> tuple[float, float, float]:
        """The crop square ``(cx, cy, side)`` of a box: a model's stored crop rule (the authors' crop; then
        ``enlarge`` is not used) or awing's square enlarged by ``enlarge``, its centre moved by ``offset`` x
        the box's longer side."""
        cx, cy, side = face_square(box, enlarge, self.crop_rule)
        if self.crop_rule is None and offset != (0.0, 0.0):
            length = float(max(box[2] - box[0], box[3] - box[1]))
            cx, cy = cx + offset[0] * length, cy + offset[1] * length
        return cx, cy, side

    @torch.inference_mode()
    def landmarks_in_crops(self, crops: np.ndarray, matrices: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """One forward pass on ready-made crops.

        Args:
            crops: (K, S, S, 3) uint8 RGB crops at the model's input size.
            matrices: (K, 2, 3) original -> crop affines the crops were made with.
        Returns:
            ``points`` (K, N, 2) float32 in original pixels and ``confidence`` (K, N) float32.
        """
        x = torch.from_numpy(np.ascontiguousarray(crops)).to(self.device).permute(0, 3, 1, 2).float().div_(255)
        if self.session is not None:
            if self.flip_permutation is None:
                return self._to_image(self._onnx_heatmaps(x), matrices)
            both = self._onnx_heatmaps(torch.cat([x, x.flip(-1)]))  # one call for the crops and their mirrors
            return self._to_image(flip_average(both[: len(x)], both[len(x):], self.flip_permutation), matrices)
        x = x.contiguous(memory_format=torch.channels_last if self.dtype is not None else torch.contiguous_format)
        return self._to_image(predict_heatmaps(self.model, x, self.dtype, self.flip_permutation), matrices)

    def _onnx_heatmaps(self, x: torch.Tensor) -> torch.Tensor:
        """(K, 3, S, S) float crops -> (K, N, H, W) heatmaps from the ONNX Runtime session."""
        return torch.from_numpy(self.session.run(None, {"image": x.contiguous().numpy()})[0])

    def _to_image(self, heatmaps: torch.Tensor, matrices: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Decode (K, N, H, W) heatmaps and map the points through the inverse crop affines."""
        points, confidence = self.codec.decode(heatmaps)
        m = torch.from_numpy(np.asarray(matrices, np.float64)).to(points.device)
        image_points = self.codec.to_image(points, m)
        return image_points.cpu().numpy().astype(np.float32), confidence.cpu().numpy().astype(np.float32)


def onnx_available() -> bool:
    """Whether ONNX Runtime and onnx (the exporter's) import: what ``backend="onnx"`` needs."""
    try:
        import onnx  # noqa: F401
        import onnxruntime  # noqa: F401
    except ImportError:
        return False
    return True


def resolve_backend(backend: str, device: torch.device) -> str:
    """``"auto"`` -> ``"onnx"`` on a CPU where :func:`onnx_available`, else ``"torch"``; any other name as given.

    Why ONNX Runtime first: on the CPU it ran the shipped models faster than PyTorch in fp32 and in bf16, and
    gives fp32's points (docs/RESULTS.md, "Speed (CPU)": "Precision and backend").
    """
    if backend != "auto":
        return backend
    return "onnx" if device.type == "cpu" and onnx_available() else "torch"


def _check_arguments(backend: str, max_batch, enlarge, refine, refine_max_shift, refine_min_iou, threads) -> None:
    """ValueError for a bad :class:`FaceAligner` argument, MissingExtra for ONNX without its extra (before
    anything is loaded)."""
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {', '.join(BACKENDS)}, not {backend!r}")
    if threads is not None and (isinstance(threads, bool) or not isinstance(threads, (int, np.integer)) or threads < 1):
        raise ValueError(f"threads must be a whole number >= 1 or None, got {threads!r}")
    if isinstance(max_batch, bool) or not isinstance(max_batch, (int, np.integer)) or max_batch < 1:
        raise ValueError(f"max_batch must be a whole number of faces >= 1, got {max_batch!r}")
    check_enlarge(enlarge)
    if not (_is_real(refine_max_shift) and refine_max_shift > 0):
        raise ValueError(f"refine_max_shift must be a number > 0 (inf: always keep), got {refine_max_shift!r}")
    if not (isinstance(refine, bool) or (isinstance(refine, str) and refine in REFINE_MODES)):
        raise ValueError(f"refine must be 'auto', 'always', 'never', True or False, not {refine!r}")
    if not (_is_real(refine_min_iou) and 0 < refine_min_iou <= 1):
        raise ValueError(f"refine_min_iou must be a number in (0, 1], got {refine_min_iou!r}")
    if backend == "onnx":
        require("onnxruntime", "onnx", 'backend="onnx"')
        require("onnx", "onnx", 'backend="onnx"')


def _onnx_session(model: torch.nn.Module, schema, model_path: Path, threads: int | None = None):
    """An ONNX Runtime session of ``model``'s last-stack landmark heatmaps, with ``threads`` intra-op threads.

    The export (about 0.4 s for the shipped 68-point model, 7x the rest of the start-up) is done once per
    model file (its path, size and modification time) and process, and kept in memory (never on disk)."""
    import onnxruntime as ort

    stat = Path(model_path).stat()
    key = (str(Path(model_path).resolve()), stat.st_size, stat.st_mtime_ns, schema.name)
    if key not in _ONNX_EXPORTS:
        import tempfile

        from awing.app.export import export_onnx

        with tempfile.TemporaryDirectory() as tmp:
            _ONNX_EXPORTS[key] = export_onnx(model, schema, Path(tmp) / "model.onnx").read_bytes()
        while len(_ONNX_EXPORTS) > _ONNX_CACHE_SIZE:  # the oldest export goes first
            _ONNX_EXPORTS.pop(next(iter(_ONNX_EXPORTS)))
    options = ort.SessionOptions()
    if threads is not None:
        options.intra_op_num_threads = int(threads)
    return ort.InferenceSession(_ONNX_EXPORTS[key], options, providers=["CPUExecutionProvider"])
