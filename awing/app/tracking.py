"""Landmarks on video: follow faces from frame to frame, and smooth their points.

:class:`FaceTracker` runs the detector only on frame 0, every ``redetect_every`` frames and when a
track is lost; on the other frames each face's crop is built from its previous frame's raw (unsmoothed)
landmarks and :meth:`FaceAligner.predict_crops <awing.app.api.FaceAligner.predict_crops>` gives its new
points. :class:`OneEuroFilter` (Casiez, Roussel & Vogel, CHI 2012) smooths each track's points: a
low-pass filter whose cutoff rises with the signal's speed. ``beta`` is per pixel: for faces k times
larger (in pixels), divide it by k for the same behaviour. How the defaults were chosen, and the speed
and jitter they give: docs/RESULTS.md, "Video tracking".

The crop of a tracked face is the one rule of the second pass (:func:`awing.data.crop.landmark_crop_box`),
in this order:

1. ``enlarge`` given to the tracker: the previous points' landmark box
   (:func:`awing.data.sample.landmark_box`), squared and grown by ``enlarge``.
2. A model trained on landmark-box crops (:attr:`FaceAligner.landmark_crop_enlarge
   <awing.app.api.FaceAligner.landmark_crop_enlarge>`, from the model file's
   :class:`~awing.data.hints.InferenceHints`), with the points returned in the model's own schema: rule 1
   with the training enlargement, i.e. the crop the model was trained on (before augmentation).
3. Otherwise: the relation is measured when the detector finds the face, ``k`` = the detector box's
   longer side / its landmark box's longer side; later frames crop the square of side ``k * max(w, h)``
   about the landmark box's centre with the aligner's own enlargement (its calibrated factor or crop
   rule), i.e. they reproduce the detector's crop scale.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable, Iterator

import numpy as np

from awing.app.api import FACE_QUALITY_THRESHOLD, FaceAligner, FaceLandmarks, check_enlarge, load_rgb
from awing.core.boxes import box_area, box_intersection, box_iou
from awing.data.crop import landmark_crop_box
from awing.data.sample import landmark_box
from awing.detect import video_mode

__all__ = ["OneEuroFilter", "FaceTracker", "TrackedFace", "TrackedFrame", "tracking_enlarge", "box_iou"]


# --------------------------------------------------------------------------------------- smoothing
class OneEuroFilter:
    """The One-Euro filter (Casiez et al. 2012), element-wise over an array of coordinates.

    For each coordinate ``x`` at time ``t`` (seconds): the speed ``dx = (x - x_prev) / dt`` is low-passed
    at ``d_cutoff``; the signal is low-passed at ``cutoff = min_cutoff + beta * |dx_smoothed|`` with an
    exponential filter of ``alpha = 1 / (1 + 1 / (2 pi cutoff dt))``.

    Args:
        fps: frames per second of the samples: ``dt = 1 / fps`` when :meth:`__call__` gets no time.
        min_cutoff: the cutoff at rest, Hz. Lower: less jitter on a still face, more lag when it starts
            moving.
        beta: cutoff increase per unit of speed, Hz per (px / s) for points in pixels. Higher: less lag
            on a moving face, more jitter left.
        d_cutoff: the cutoff of the speed estimate, Hz (1 Hz, as in the paper).
    """

    def __init__(self, fps: float = 30.0, min_cutoff: float = 1.0, beta: float = 0.2, d_cutoff: float = 1.0) -> None:
        for name, value in (("fps", fps), ("min_cutoff", min_cutoff), ("d_cutoff", d_cutoff)):
            if not (math.isfinite(value) and value > 0):
                raise ValueError(f"{name} must be a positive number, got {value!r}")
        if not (math.isfinite(beta) and beta >= 0):
            raise ValueError(f"beta must be a number >= 0, got {beta!r}")
        self.fps, self.min_cutoff, self.beta, self.d_cutoff = (
            float(fps),
            float(min_cutoff),
            float(beta),
            float(d_cutoff),
        )
        self.reset()

    def reset(self) -> None:
        """Forget the past: the next sample passes unchanged."""
        self._x: np.ndarray | None = None  # the last output
        self._dx: np.ndarray | None = None  # the last smoothed speed, units / s
        self._t: float | None = None

    @staticmethod
    def _alpha(cutoff, dt: float):
        tau = 1.0 / (2.0 * math.pi * cutoff)
        return 1.0 / (1.0 + tau / dt)

    def __call__(self, x: np.ndarray, t: float | None = None) -> np.ndarray:
        """Filter one sample.

        Args:
            x: any shape, e.g. (N, 2) points in pixels; the shape must stay the same between calls.
                Non-finite values pass through and restart those coordinates' filters.
            t: the sample's time in seconds; None: the previous time + ``1 / fps``.
        Returns:
            The filtered sample, float64, ``x``'s shape.
        """
        x = np.asarray(x, dtype=np.float64)
        if t is None:
            t = 0.0 if self._t is None else self._t + 1.0 / self.fps
        if self._x is None or self._x.shape != x.shape:
            self._x, self._dx, self._t = x.copy(), np.zeros_like(x), float(t)
            return x.copy()
        dt = float(t) - self._t
        if not dt > 0:  # a repeated or out-of-order time: assume one frame
            dt = 1.0 / self.fps
        restart = ~np.isfinite(self._x)
        dx = (x - self._x) / dt
        dx = np.where(restart, 0.0, dx)
        dx_hat = self._dx + self._alpha(self.d_cutoff, dt) * (dx - self._dx)
        cutoff = self.min_cutoff + self.beta * np.abs(dx_hat)
        out = self._x + self._alpha(cutoff, dt) * (x - self._x)
        bad = restart | ~np.isfinite(x)
        out = np.where(bad, x, out)
        self._x, self._dx, self._t = out, np.where(bad, 0.0, dx_hat), self._t + dt
        return out.copy()


# ---------------------------------------------------------------------------------------- tracking
@dataclasses.dataclass
class TrackedFace:
    """One face in one frame.

    Attributes:
        track: the track id (0, 1, ... in order of appearance; kept while the face is followed, and when a
            detection overlaps the track's last points: a re-detection, or the next frame's detection of a
            face reported below ``min_confidence``).
        face: its :class:`FaceLandmarks` (original pixels; the points smoothed when smoothing is on).
            ``box`` is the detector's box on a detection, else the box the tracking crop was built from.
        detected: its box came from the detector in this frame.
    """

    track: int
    face: FaceLandmarks
    detected: bool


@dataclasses.dataclass
class TrackedFrame:
    """The faces of one frame.

    Attributes:
        index: the frame's number (0, 1, ... over the frames the tracker was given).
        detected: the detector ran on this frame.
        faces: its faces, by track id.
    """

    index: int
    detected: bool
    faces: list[TrackedFace]


@dataclasses.dataclass
class _Track:
    id: int
    points: np.ndarray  # (N, 2) float32, the last raw (unsmoothed) points, original pixels
    scale: float  # rule 3's k: detector box side / landmark box side (1 under rules 1-2)
    filter: OneEuroFilter | None


def tracking_enlarge(aligner: FaceAligner) -> float | None:
    """The training crop's ``enlarge`` of a landmark box (module docstring, rule 2), or None when the
    model's crops were not landmark-box crops (rule 3: measure at each detection): the aligner's
    :attr:`~awing.app.api.FaceAligner.landmark_crop_enlarge`."""
    return getattr(aligner, "landmark_crop_enlarge", None)


def _landmark_box(points: np.ndarray) -> np.ndarray | None:
    """:func:`awing.data.sample.landmark_box` as float64, or None when no point is annotated."""
    try:
        return landmark_box(points).astype(np.float64)
    except ValueError:
        return None


class FaceTracker:
    """Follow the faces of successive video frames (see the module docstring).

    Args:
        aligner: the :class:`FaceAligner` (its detector and model).
        redetect_every: run the detector every this many frames (counted from its last run) even when no
            track is lost, to pick up new faces and reset drift. 1: every frame.
        min_confidence: a track is lost when its face's quality (the mean of its point confidences,
            :attr:`FaceLandmarks.quality`) drops below this. None: the model's own is_face cut
            (:attr:`FaceAligner.face_quality <awing.app.api.FaceAligner.face_quality>`), so a face the
            model takes for a face is followed.
        min_inside: a track is lost when less than this fraction of its landmark box lies inside the frame.
        match_iou: a detection continues a track when their landmark boxes overlap by at least this IoU.
        smooth: smooth each track's points with a :class:`OneEuroFilter`.
        fps: the frames' rate (frames per second), the filter's time base.
        min_cutoff, beta, d_cutoff: the filter's parameters (Hz, Hz per px/s, Hz).
        enlarge: the tracking crop's enlargement of the landmark box; None: from the model (module
            docstring).

    A lost track (its face below ``min_confidence``, or outside the frame) triggers a detection on the
    same frame: a detection that overlaps it continues it; without one the track ends there, unreported
    (after a scene cut no face of the previous scene is shown). On a scheduled re-detection, a face the
    detector misses keeps being tracked while it is not lost. A detection whose face is below
    ``min_confidence`` is reported but not followed; when the next frame's detection finds a face in its
    place, that face keeps its track id (and its smoothing).

    Attributes:
        detections: how many times the detector ran.
    """

    def __init__(
        self,
        aligner: FaceAligner,
        redetect_every: int = 30,
        min_confidence: float | None = None,
        min_inside: float = 0.5,
        match_iou: float = 0.3,
        smooth: bool = True,
        fps: float = 30.0,
        min_cutoff: float = 1.0,
        beta: float = 0.2,
        d_cutoff: float = 1.0,
        enlarge: float | None = None,
    ) -> None:
        if isinstance(redetect_every, bool) or not isinstance(redetect_every, (int, np.integer)) or redetect_every < 1:
            raise ValueError(f"redetect_every must be a whole number >= 1, got {redetect_every!r}")
        OneEuroFilter(fps, min_cutoff, beta, d_cutoff)  # checks the parameters
        check_enlarge(enlarge)
        self.aligner = aligner
        self.redetect_every = int(redetect_every)
        if min_confidence is None:  # the model's own cut (an aligner-like object without one: the library's)
            min_confidence = getattr(aligner, "face_quality", FACE_QUALITY_THRESHOLD)
        self.min_confidence, self.min_inside, self.match_iou = (
            float(min_confidence),
            float(min_inside),
            float(match_iou),
        )
        self.smooth = bool(smooth)
        self.fps, self.min_cutoff, self.beta, self.d_cutoff = (
            float(fps),
            float(min_cutoff),
            float(beta),
            float(d_cutoff),
        )
        self.enlarge = tracking_enlarge(aligner) if enlarge is None else float(enlarge)
        self.reset()

    def reset(self) -> None:
        """Start over (a new video): no tracks, the next frame runs the detector."""
        self._tracks: list[_Track] = []  # followed on the next frame
        self._dormant: list[_Track] = []  # reported on the last frame below min_confidence: matched, not followed
        self._next_id = 0
        self._frame = 0
        self._last_detection: int | None = None
        self.detections = 0

    # ----------------------------------------------------------------------------------------- api
    def track(self, frames: Iterable, color: str | None = None) -> Iterator[TrackedFrame]:
        """:meth:`update` for each image of ``frames`` (e.g. decoded video frames, ``color="BGR"``)."""
        for image in frames:
            yield self.update(image, color=color)

    def update(self, image, color: str | None = None, t: float | None = None) -> TrackedFrame:
        """The faces of the next frame.

        Args:
            image: the frame, as :meth:`FaceAligner.predict` takes it ((H, W, 3) uint8 array, a path, a PIL
                image).
            color: ``"RGB"`` or ``"BGR"`` (OpenCV's frames), the channel order of an array; left out for a
                colour array, RGB is assumed and a UserWarning says so (:func:`awing.app.api.load_rgb`).
            t: its time in seconds (for the filter); None: ``index / fps``.
        """
        rgb = load_rgb(image, color)
        index = self._frame
        self._frame += 1
        t = index / self.fps if t is None else float(t)
        h, w = rgb.shape[:2]
        detect = not self._tracks or self._last_detection is None or index - self._last_detection >= self.redetect_every
        followed: dict[int, FaceLandmarks] = {}
        if not detect:
            followed = self._follow(rgb, self._tracks)
            # a lost track: re-detect this very frame (the tracks that hold are not followed again)
            detect = len(followed) < len(self._tracks) or any(self._lost(f, w, h) for f in followed.values())
            if not detect:
                by_id = {tr.id: tr for tr in self._tracks}
                return self._report(index, False, [(by_id[k], f, False) for k, f in followed.items()], t, w, h)
        self.detections += 1
        self._last_detection = index
        return self._report(index, True, self._detect(rgb, followed), t, w, h)

    def _detect(self, rgb: np.ndarray, followed: dict[int, FaceLandmarks]) -> list[tuple]:
        """A detection frame's ``(track or None, face, from_detector)``: every detection (continuing the track
        it overlaps, a followed or a dormant one), then the followed tracks it missed whose faces hold
        (``followed``: this frame's points of the tracks already followed; the others are followed here)."""
        h, w = rgb.shape[:2]
        with video_mode(self.aligner.detector):  # video frames: the fast short-range detector
            found = self.aligner.predict(rgb, color="RGB")
        candidates = self._tracks + self._dormant
        matched = self._match(found, candidates)
        by_id = {tr.id: tr for tr in candidates}
        results: list[tuple] = [(by_id.get(matched.get(k)), face, True) for k, face in enumerate(found)]
        rest = [tr for tr in self._tracks if tr.id not in matched.values()]
        missing = [tr for tr in rest if tr.id not in followed]
        if missing:  # a scheduled detection: follow the tracks it missed
            followed = {**followed, **self._follow(rgb, missing)}
        # a track no detection overlaps ends here unless its own face holds (no face left over from a scene cut)
        results.extend(
            (tr, followed[tr.id], False) for tr in rest if tr.id in followed and not self._lost(followed[tr.id], w, h)
        )
        return results

    def _report(self, index: int, detected: bool, results: list[tuple], t: float, w: int, h: int) -> TrackedFrame:
        """The frame's :class:`TrackedFrame` from ``(track or None, face, from_detector)``; updates the tracks
        (new ids, raw points, scales, filters): a face that holds is followed next frame, one below
        ``min_confidence`` (or outside the frame) stays matchable by the next frame's detection only."""
        tracks, dormant, faces = [], [], []
        for track, face, from_detector in results:
            if track is None:
                track = _Track(self._next_id, face.landmarks, 1.0, self._new_filter())
                self._next_id += 1
            track.points = face.landmarks
            if from_detector:
                track.scale = self._measured_scale(face)
            shown = face
            if track.filter is not None:
                shown = dataclasses.replace(face, landmarks=track.filter(face.landmarks, t).astype(np.float32))
            faces.append(TrackedFace(track.id, shown, from_detector))
            (dormant if self._lost(face, w, h) else tracks).append(track)
        faces.sort(key=lambda f: f.track)
        self._tracks, self._dormant = self._dedupe(tracks), dormant
        return TrackedFrame(index, detected, faces)

    # ------------------------------------------------------------------------------------ internals
    def _new_filter(self) -> OneEuroFilter | None:
        if not self.smooth:
            return None
        return OneEuroFilter(self.fps, self.min_cutoff, self.beta, self.d_cutoff)

    def _measured_scale(self, face: FaceLandmarks) -> float:
        """Rule 3's k for a detected face: detector box longer side / landmark box longer side."""
        if self.enlarge is not None:
            return 1.0
        lb = _landmark_box(face.landmarks)
        box = np.asarray(face.box, np.float64)
        side = max(box[2] - box[0], box[3] - box[1])
        lside = None if lb is None else max(lb[2] - lb[0], lb[3] - lb[1])
        return float(side / lside) if lside and lside > 0 and np.isfinite(side) and side > 0 else 1.0

    def crop_box(self, points: np.ndarray, scale: float = 1.0) -> np.ndarray | None:
        """The box a tracked face's next crop is built from (module docstring; the second pass's rule,
        :func:`awing.data.crop.landmark_crop_box`), (4,) float64 ``x0, y0, x1, y1``: the landmark box of
        ``points`` (N, 2) (rules 1-2), or the square of ``scale`` x its longer side about its centre
        (rule 3). None when no point is finite or the box is empty."""
        if self.enlarge is not None:
            return landmark_crop_box(points)
        lb = _landmark_box(points)
        side = None if lb is None else scale * max(lb[2] - lb[0], lb[3] - lb[1])
        return None if side is None else landmark_crop_box(points, side)

    def _follow(self, rgb: np.ndarray, tracks: list[_Track]) -> dict[int, FaceLandmarks]:
        """New points of ``tracks`` from crops around their previous points (one forward pass)."""
        boxes, ids = [], []
        for tr in tracks:
            box = self.crop_box(tr.points, tr.scale)
            if box is not None:
                boxes.append(box)
                ids.append(tr.id)
        if not boxes:
            return {}
        faces = self.aligner.predict_crops(rgb, np.stack(boxes), color="RGB", enlarge=self.enlarge)
        return dict(zip(ids, faces))

    def _lost(self, face: FaceLandmarks, w: int, h: int) -> bool:
        conf = np.asarray(face.confidence, np.float64)
        if not (np.isfinite(conf).all() and conf.size and conf.mean() >= self.min_confidence):
            return True
        lb = _landmark_box(face.landmarks)
        if lb is None:
            return True
        frame = np.array([-0.5, -0.5, w - 0.5, h - 0.5])
        area = box_area(lb)
        if area <= 0:  # a degenerate box: inside when its centre is
            cx, cy = (lb[0] + lb[2]) / 2, (lb[1] + lb[3]) / 2
            return not (frame[0] <= cx <= frame[2] and frame[1] <= cy <= frame[3])
        return box_intersection(lb, frame)[0, 0] / area < self.min_inside

    def _dedupe(self, tracks: list[_Track]) -> list[_Track]:
        """Drop a track whose landmark box overlaps an older track's by IoU > 0.6 (two tracks that drifted
        onto one face); the older one keeps following it."""
        kept: list[_Track] = []
        for tr in sorted(tracks, key=lambda tr: tr.id):
            box = _landmark_box(tr.points)
            if box is not None and kept:
                older = np.stack([_landmark_box(k.points) for k in kept])
                if box_iou(box[None], older).max() > 0.6:
                    continue
            kept.append(tr)
        return kept

    def _match(self, found: list[FaceLandmarks], tracks: list[_Track]) -> dict[int, int]:
        """``{detection index: track id}``: greedy by the IoU of the detections' and the tracks' landmark
        boxes (the tracks' from their previous frame), at least ``match_iou``."""
        if not found or not tracks:
            return {}
        det_boxes = [_landmark_box(f.landmarks) for f in found]
        tr_boxes = [_landmark_box(tr.points) for tr in tracks]
        nan = np.full(4, np.nan)
        iou = box_iou(
            np.stack([nan if b is None else b for b in det_boxes]),
            np.stack([nan if b is None else b for b in tr_boxes]),
        )
        iou = np.nan_to_num(iou, nan=0.0)
        out: dict[int, int] = {}
        used_d, used_t = set(), set()
        for flat in np.argsort(-iou, axis=None):
            d, k = np.unravel_index(flat, iou.shape)
            if iou[d, k] < self.match_iou:
                break
            if d in used_d or k in used_t:
                continue
            used_d.add(d)
            used_t.add(k)
            out[int(d)] = tracks[k].id
        return out
