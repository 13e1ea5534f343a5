"""Live input: ``awing predict --camera SOURCE`` (a camera index such as ``0``, or a stream URL), tracked and
smoothed.

Frames come from ``cv2.VideoCapture`` (a camera index, or anything it opens: an RTSP/HTTP URL, a video
file), go through :class:`awing.app.tracking.FaceTracker` (the detector every ``--redetect-every``
frames or when a face is lost; One-Euro smoothing) and are drawn with the points, contours and head pose,
in the frame loop video files use (:mod:`awing.app.frames`).
Where a display exists (OpenCV built with a GUI and, on Linux, ``$DISPLAY`` / ``$WAYLAND_DISPLAY`` set)
they are shown in a window (``q`` or Esc stops); otherwise (e.g. ``opencv-python-headless``) nothing is
shown and the files are the output. The annotated video (``annotated/<name>.mp4``, mp4v) keeps the
source's frame rate (``CAP_PROP_FPS``; 25 when the source reports none, as many cameras do); audio is
dropped (OpenCV does not read it). ``--max-frames N`` stops after N frames.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import cv2
import numpy as np

from awing.app.api import FaceAligner
from awing.app.draw import DrawOptions
from awing.app.frames import WINDOW, read_frames, run_frames, tracked
from awing.app.outputs import FrameResult
from awing.app.tracking import FaceTracker

__all__ = ["can_show", "open_source", "predict_stream"]


def can_show() -> bool:
    """Whether a live window can be opened (a GUI build of OpenCV and a display)."""
    if sys.platform.startswith("linux") and not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
        return False
    try:
        cv2.namedWindow(WINDOW)
        cv2.destroyWindow(WINDOW)
    except cv2.error:
        return False
    return True


def open_source(source: str | int) -> cv2.VideoCapture:
    """A capture for a camera index (an int or a string of digits) or a URL / path.

    Raises:
        ValueError: OpenCV cannot open it.
    """
    target = int(source) if isinstance(source, int) or str(source).isdigit() else str(source)
    cap = cv2.VideoCapture(target)
    if not cap.isOpened():
        raise ValueError(f"cannot open the camera or stream {source!r}")
    return cap


def predict_stream(
    aligner: FaceAligner,
    source: str | int | cv2.VideoCapture,
    draw_to: Path | None,
    tracking: dict | None,
    max_frames: int | None = None,
    show: bool | None = None,
    options: DrawOptions | None = None,
) -> tuple[list[FrameResult], dict]:
    """Run on a live source: ``(frames, info)``, through the frame loop video files use
    (:mod:`awing.app.frames`).

    Args:
        source: a camera index, a URL / path (:func:`open_source`), or a capture already opened (released
            here, as one opened here is).
        draw_to: the annotated video's path (mp4v at the source's frame rate), or None.
        tracking: :class:`FaceTracker` options (``fps`` is filled in); None: the default tracker options.
        max_frames: stop after this many frames (None: until the source ends or ``q`` / Esc).
        show: open a live window; None: where :func:`can_show`.
        options: what the window and the video draw (:class:`awing.app.draw.DrawOptions`; None: defaults).
    Returns:
        ``frames``, one :class:`~awing.app.outputs.FrameResult` per frame read (with ``detected`` and track
        ids), and ``info``: ``fps`` (the source's, used for the video; 25 where it reports none or a value
        outside 1-240), ``frames``, ``shown`` (whether a window was used) and ``seconds`` (wall time).
    Raises:
        ValueError: the source does not open.
    """
    cap = source if isinstance(source, cv2.VideoCapture) else open_source(source)
    show = can_show() if show is None else bool(show)
    fps = float(cap.get(cv2.CAP_PROP_FPS) or 0.0)
    fps = fps if np.isfinite(fps) and 1.0 <= fps <= 240.0 else 25.0
    tracker = FaceTracker(aligner, fps=fps, **(tracking or {}))
    start = time.perf_counter()
    try:
        analysed = tracked(read_frames(cap, max_frames=max_frames), tracker, fps)
        frames = run_frames(analysed, draw_to, fps, options, show=show)
    finally:
        cap.release()
    return frames, {"fps": fps, "frames": len(frames), "shown": show, "seconds": time.perf_counter() - start}
