"""Live input: ``awing predict --camera 0`` / ``--stream URL``: a camera or stream, tracked and smoothed.

Frames come from ``cv2.VideoCapture`` (a camera index, or anything it opens: an RTSP/HTTP URL, a video
file), go through :class:`awing.app.tracking.FaceTracker` (the detector every ``--redetect-every``
frames or when a face is lost; One-Euro smoothing) and are drawn with the points, contours and head pose.
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
from awing.app.tracking import FaceTracker

__all__ = ["can_show", "open_source", "predict_stream"]


def can_show() -> bool:
    """Whether a live window can be opened (a GUI build of OpenCV and a display)."""
    if sys.platform.startswith("linux") and not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
        return False
    try:
        cv2.namedWindow("awing")
        cv2.destroyWindow("awing")
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
    source: str | int,
    draw_to: Path | None,
    tracking: dict | None,
    max_frames: int | None = None,
    show: bool | None = None,
    draw=None,
) -> tuple[list[dict], dict]:
    """Run on a live source: ``(frames, info)``.

    Args:
        tracking: :class:`FaceTracker` options (``fps`` is filled in); None: the default tracker options.
        max_frames: stop after this many frames (None: until the source ends or ``q`` / Esc).
        show: open a live window; None: where :func:`can_show`.
        draw: ``draw(bgr, faces) -> bgr`` for the window and the video (``awing predict`` passes
            :func:`awing.app.predict.draw_faces`; None: the frames as they are).
    Returns:
        ``frames`` as :func:`awing.app.predict.predict_video` gives them (``{"frame", "detected", "faces":
        [{..., "track"}]}``) and ``info``: ``fps`` (the source's, used for the video), ``frames``,
        ``shown`` (whether a window was used) and ``seconds`` (wall time).
    """
    if draw is None:  # awing predict passes its draw_faces (this module does not import predict: no cycle)

        def draw(bgr, faces):
            return bgr

    cap = open_source(source)
    show = can_show() if show is None else bool(show)
    fps = float(cap.get(cv2.CAP_PROP_FPS) or 0.0)
    fps = fps if np.isfinite(fps) and 1.0 <= fps <= 240.0 else 25.0
    tracker = FaceTracker(aligner, fps=fps, **(tracking or {}))
    writer, frames, start = None, [], time.perf_counter()
    try:
        index = 0
        while max_frames is None or index < max_frames:
            ok, bgr = cap.read()
            if not ok:
                break
            result = tracker.update(bgr, color="BGR", t=index / fps)
            faces = [f.face for f in result.faces]
            frames.append({"frame": index, "detected": result.detected,
                           "faces": [{**f.face.to_dict(), "track": f.track} for f in result.faces]})  # fmt: skip
            if draw_to is not None or show:
                annotated = draw(bgr, faces)
                if draw_to is not None:
                    if writer is None:
                        draw_to.parent.mkdir(parents=True, exist_ok=True)
                        h, w = bgr.shape[:2]
                        writer = cv2.VideoWriter(str(draw_to), cv2.VideoWriter_fourcc(*"mp4v"), fps, (w, h))
                    writer.write(annotated)
                if show:
                    cv2.imshow("awing", annotated)
                    if cv2.waitKey(1) & 0xFF in (ord("q"), 27):
                        break
            index += 1
    finally:
        cap.release()
        if writer is not None:
            writer.release()
        if show:
            cv2.destroyAllWindows()
    return frames, {"fps": fps, "frames": len(frames), "shown": show, "seconds": time.perf_counter() - start}
