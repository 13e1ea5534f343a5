"""Images and frames to faces: one image, and the one frame loop that video files and live sources share.

A video or stream goes through three steps, each a generator over frames:

1. :func:`read_frames`: ``(index, bgr, used)`` from a ``cv2.VideoCapture`` (every ``stride``-th frame
   used; the frames in between decoded only for the annotated video);
2. :func:`tracked` (a :class:`~awing.app.tracking.FaceTracker`) or :func:`detected` (the detector or
   fixed boxes on every used frame, :data:`VIDEO_BATCH` frames per forward pass): adds each used frame's
   :class:`~awing.app.outputs.FrameResult`;
3. :func:`run_frames`: collects the results, draws each frame (:func:`awing.app.draw.draw_faces`) into
   the annotated video and / or a live window.

:func:`predict_video` (``awing predict`` on a video file) and :func:`awing.app.live.predict_stream`
(``--camera``) are these steps with their own sources and options. A file that does not open or decode
raises :class:`UnreadableFile`; an image file whose data is cut short or corrupt raises
:class:`awing.core.images.DamagedImageError` (it would decode, partly made up). Progress bars are drawn only
when standard error is a terminal (tqdm's ``disable=None``).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from awing.app.api import FaceAligner, FaceLandmarks
from awing.app.draw import DrawOptions, draw_faces
from awing.app.outputs import FrameResult, write_image
from awing.app.tracking import FaceTracker
from awing.core.checkpoint import atomic_file
from awing.core.images import read_image
from awing.detect.base import video_mode

__all__ = [
    "VIDEO_BATCH",
    "AnnotatedVideo",
    "UnreadableFile",
    "detected",
    "faces_of",
    "predict_image",
    "predict_video",
    "read_frames",
    "run_frames",
    "tracked",
]

VIDEO_BATCH = 8  # frames whose faces share one forward pass
WINDOW = "awing"

# (index, frame, its result): the result is None for a frame that is only drawn (skipped by the stride)
Analysed = tuple[int, np.ndarray, FrameResult | None]


class UnreadableFile(ValueError):
    """An input file that does not open or decode as an image or video."""


def faces_of(
    aligner: FaceAligner, bgrs: list[np.ndarray], boxes: np.ndarray | None, video: bool = False
) -> list[list[FaceLandmarks]]:
    """The faces of each BGR image: detected (one batched pass; ``video``: with the detector in its
    :func:`~awing.detect.base.video_mode`, as the tracker detects), or in the (K, 4) ``boxes`` when given."""
    if boxes is None:
        with video_mode(aligner.detector) if video else contextlib.nullcontext():
            return aligner.predict_batch(bgrs, color="BGR")
    return [aligner.predict_crops(bgr, boxes, color="BGR") for bgr in bgrs]


def predict_image(
    aligner: FaceAligner,
    file: Path,
    boxes: np.ndarray | None,
    draw_to: Path | None,
    options: DrawOptions | None = None,
) -> tuple[np.ndarray, FrameResult]:
    """One image file: ``(bgr, result)``, the (H, W, 3) uint8 image as read and its faces (frame 0).

    Args:
        boxes: (K, 4) face boxes (no detection), or None.
        draw_to: where to write the annotated copy (format by its extension), or None.
    Raises:
        UnreadableFile: the file cannot be read as an image.
        DamagedImageError: a JPEG file whose data is cut short or corrupt.
    """
    bgr = read_image(str(file), check_damage=True)
    if bgr is None:
        raise UnreadableFile("cannot read the file as an image")
    faces = faces_of(aligner, [bgr], boxes)[0]
    if draw_to is not None:
        write_image(draw_to, draw_faces(bgr, faces, options))
    return bgr, FrameResult(0, faces)


# ------------------------------------------------------------------------------------- the frame loop
def read_frames(
    cap: cv2.VideoCapture, stride: int = 1, every: bool = False, max_frames: int | None = None
) -> Iterator[tuple[int, np.ndarray, bool]]:
    """``(index, frame, used)`` for every ``stride``-th frame (``used`` True), and with ``every`` also the
    frames in between (``used`` False; decoded only then). Stops where the source ends or after
    ``max_frames`` frames; a frame that does not decode is skipped."""
    index = 0
    while max_frames is None or index < max_frames:
        if not cap.grab():
            return
        used = index % stride == 0
        if used or every:
            ok, frame = cap.retrieve()
            if ok:
                yield index, frame, used
        index += 1


def tracked(frames: Iterable[tuple[int, np.ndarray, bool]], tracker: FaceTracker, fps: float) -> Iterator[Analysed]:
    """Each used frame through ``tracker`` (its time ``index / fps`` seconds): faces with track ids."""
    for index, bgr, used in frames:
        if not used:
            yield index, bgr, None
            continue
        result = tracker.update(bgr, color="BGR", t=index / fps)
        faces = [f.face for f in result.faces]
        yield index, bgr, FrameResult(index, faces, result.detected, [f.track for f in result.faces])


def detected(
    frames: Iterable[tuple[int, np.ndarray, bool]], aligner: FaceAligner, boxes: np.ndarray | None
) -> Iterator[Analysed]:
    """The detector in its video mode (or the fixed (K, 4) ``boxes``: ``detected`` False) on every used
    frame, untracked; :data:`VIDEO_BATCH` used frames share one forward pass."""
    batch: list[tuple[int, np.ndarray, bool]] = []

    def flush() -> Iterator[Analysed]:
        images = [bgr for _, bgr, used in batch if used]
        found = iter(faces_of(aligner, images, boxes, video=True) if images else ())
        for index, bgr, used in batch:
            faces = next(found) if used else None
            yield index, bgr, None if faces is None else FrameResult(index, faces, boxes is None, [None] * len(faces))
        batch.clear()

    for item in frames:
        batch.append(item)
        if sum(used for *_, used in batch) == VIDEO_BATCH:
            yield from flush()
    yield from flush()  # the rest


class AnnotatedVideo(contextlib.AbstractContextManager):
    """An mp4v video written atomically: frames go to a temporary file beside ``path`` (opened at the first
    frame, at its size), which replaces ``path`` when the ``with`` block ends without an error. Without any
    frame nothing is written."""

    def __init__(self, path: Path, fps: float) -> None:
        self.path, self.fps = Path(path), float(fps)
        self._stack = contextlib.ExitStack()
        self._writer: cv2.VideoWriter | None = None

    def write(self, bgr: np.ndarray) -> None:
        """Append one (H, W, 3) uint8 BGR frame."""
        if self._writer is None:
            tmp = self._stack.enter_context(atomic_file(self.path, suffix=self.path.suffix or ".mp4"))
            h, w = bgr.shape[:2]
            self._writer = cv2.VideoWriter(tmp, cv2.VideoWriter_fourcc(*"mp4v"), self.fps, (w, h))
            self._stack.callback(self._writer.release)  # before the rename (last in, first out)
        self._writer.write(bgr)

    def __exit__(self, *exc) -> bool | None:
        return self._stack.__exit__(*exc)


def _stop_asked() -> bool:
    """Whether ``q`` or Esc was pressed in the live window."""
    return (cv2.waitKey(1) & 0xFF) in (ord("q"), 27)


def run_frames(
    analysed: Iterable[Analysed],
    draw_to: Path | None,
    fps: float,
    options: DrawOptions | None = None,
    show: bool = False,
    tick: Callable[[], None] | None = None,
) -> list[FrameResult]:
    """Collect the frames' results; draw every frame (a skipped one with the faces of the last used frame)
    into the annotated video ``draw_to`` (``fps`` frames a second; None: none) and / or a live window
    (``show``: until the frames end or ``q`` / Esc). ``tick`` is called after each frame."""
    results: list[FrameResult] = []
    shown: list[FaceLandmarks] = []
    video = AnnotatedVideo(draw_to, fps) if draw_to is not None else contextlib.nullcontext()
    try:
        with video:
            for _, bgr, result in analysed:
                if result is not None:
                    results.append(result)
                    shown = result.faces
                if draw_to is not None or show:
                    annotated = draw_faces(bgr, shown, options)
                    if draw_to is not None:
                        video.write(annotated)
                    if show:
                        cv2.imshow(WINDOW, annotated)
                        if _stop_asked():
                            break
                if tick is not None:
                    tick()
    finally:
        if show:
            cv2.destroyAllWindows()
    return results


def predict_video(
    aligner: FaceAligner,
    file: Path,
    boxes: np.ndarray | None,
    draw_to: Path | None,
    stride: int = 1,
    tracking: dict | None = None,
    options: DrawOptions | None = None,
) -> tuple[list[FrameResult], tuple[int | None, int | None]]:
    """The used frames of one video file and its ``(width, height)`` (None where the file does not say).

    Args:
        boxes: (K, 4) fixed boxes for every frame (``--boxes``: no detection, no tracking), or None.
        draw_to: the annotated copy's path (mp4v at the source's frame rate; the frames that ``stride``
            skips are written too, with the faces of the last used frame), or None.
        stride: use every ``stride``-th frame.
        tracking: :class:`~awing.app.tracking.FaceTracker` keyword arguments (``fps`` is filled in); None:
            the detector runs on every used frame (``--no-track``) and the track ids are None.
    Raises:
        UnreadableFile: the file does not open as a video, or no frame of it decodes.
    """
    cap = cv2.VideoCapture(str(file))
    if not cap.isOpened():
        raise UnreadableFile("cannot open the file as a video")
    try:
        fps = cap.get(cv2.CAP_PROP_FPS) or 25.0
        size = int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)) or None, int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT)) or None
        frames = read_frames(cap, stride, every=draw_to is not None)
        if tracking is not None and boxes is None:
            analysed = tracked(frames, FaceTracker(aligner, fps=fps / stride, **tracking), fps)
        else:
            analysed = detected(frames, aligner, boxes)
        total = int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) or None
        step = 1 if draw_to is not None else stride  # without drawing, the skipped frames are not seen
        with tqdm(total=total, desc=file.name, unit="frame", leave=False, disable=None) as progress:
            results = run_frames(analysed, draw_to, fps, options, tick=lambda: progress.update(step))
    finally:
        cap.release()
    if not results:
        raise UnreadableFile("no frame could be decoded")
    return results, size
