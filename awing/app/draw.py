"""Drawing faces on images: boxes, the schema's boundary lines, points, indices, head pose.

A box whose landmark score says it holds no face (``is_face`` False) is drawn plainly as rejected: a thin
grey box and ``not a face <quality>``, without its points, lines or pose (which would be made up).

    from awing.app.draw import DrawOptions, draw_faces
    annotated = draw_faces(bgr, faces, DrawOptions(labels=True))

The options are passed with each call (``awing predict``'s ``--labels`` / ``--confidence-colours`` make
one :class:`DrawOptions`); nothing here keeps state between calls.
"""

from __future__ import annotations

import dataclasses

import cv2
import numpy as np

from awing.app.api import FaceLandmarks
from awing.schemas import load_schema

__all__ = ["DrawOptions", "draw_faces"]

_BOX, _OTHER_BOX, _LINE, _POINT, _TEXT = (0, 200, 0), (160, 160, 160), (0, 220, 255), (0, 0, 255), (255, 255, 255)


@dataclasses.dataclass(frozen=True)
class DrawOptions:
    """What :func:`draw_faces` draws besides boxes and points.

    Attributes:
        labels: each point's index beside it (``--labels``).
        confidence_colours: each point coloured by its confidence, red at 0 to green at 1
            (``--confidence-colours``); else all red.
        lines: the schema's boundary lines (contours), yellow.
        pose: the head pose, ``y<yaw> p<pitch> r<roll>`` degrees above the box, where the face has one.
    """

    labels: bool = False
    confidence_colours: bool = False
    lines: bool = True
    pose: bool = True


def _face_lines(schema_name: str) -> list[tuple[int, ...]]:
    try:
        return list(load_schema(schema_name).boundary_lines.values())
    except ValueError:  # a checkpoint's own layout: no built-in lines
        return []


def draw_faces(
    bgr: np.ndarray,
    faces: list[FaceLandmarks],
    options: DrawOptions | None = None,
    *,
    labels: bool | None = None,
    confidence_colours: bool | None = None,
    lines: bool | None = None,
    pose: bool | None = None,
) -> np.ndarray:
    """A copy of an (H, W, 3) uint8 BGR image with each face drawn: its box (green), the schema's boundary
    lines (yellow), its points (red, or by confidence), optional point indices and the head pose; a box with
    ``is_face`` False only as a thin grey box and ``not a face <quality>``. Dot, line and text sizes follow
    each face's box, not the image.

    Args:
        options: what to draw (None: :class:`DrawOptions`'s defaults).
        labels, confidence_colours, lines, pose: override that field of ``options`` where not None.
    """
    changes = {"labels": labels, "confidence_colours": confidence_colours, "lines": lines, "pose": pose}
    options = dataclasses.replace(options or DrawOptions(), **{k: v for k, v in changes.items() if v is not None})
    out = bgr.copy()
    for face in faces:
        _draw_face(out, face, options)
    return out


def _draw_face(out: np.ndarray, face: FaceLandmarks, options: DrawOptions) -> None:
    """Draw one face onto ``out`` in place."""
    side = float(max(face.box[2] - face.box[0], face.box[3] - face.box[1]))
    side = side if np.isfinite(side) and side > 0 else 100.0
    radius, thick, font = max(1, round(side / 70)), max(1, round(side / 150)), max(0.3, side / 400)
    x0, y0, x1, y1 = (int(round(v)) for v in face.box)
    if np.isfinite(face.quality) and not face.is_face:  # rejected: no points, lines or pose
        cv2.rectangle(out, (x0, y0), (x1, y1), _OTHER_BOX, 1)
        text = f"not a face {face.quality:.2f}"
        cv2.putText(out, text, (x0, max(0, y0 - 4)), cv2.FONT_HERSHEY_SIMPLEX, font, _OTHER_BOX, 1, cv2.LINE_AA)
        return
    cv2.rectangle(out, (x0, y0), (x1, y1), _BOX, thick)
    pts = np.asarray(face.landmarks, np.float64)
    ok = np.isfinite(pts).all(axis=1)
    ipts = np.round(np.where(ok[:, None], pts, 0)).astype(np.int32)
    if options.lines:
        for line in _face_lines(face.schema):
            line = [i for i in line if i < len(pts) and ok[i]]
            if len(line) >= 2:
                cv2.polylines(out, [ipts[line]], False, _LINE, thick, cv2.LINE_AA)
    for i, (x, y) in enumerate(ipts):
        if not ok[i]:
            continue
        colour = _POINT
        if options.confidence_colours:
            c = float(np.clip(face.confidence[i], 0, 1)) if np.isfinite(face.confidence[i]) else 0.0
            colour = (0, int(255 * c), int(255 * (1 - c)))
        cv2.circle(out, (int(x), int(y)), radius, colour, -1, cv2.LINE_AA)
        if options.labels:
            at = (int(x) + radius + 1, int(y) - radius - 1)
            cv2.putText(out, str(i), at, cv2.FONT_HERSHEY_SIMPLEX, font * 0.8, _TEXT, 1, cv2.LINE_AA)
    if options.pose and face.pose is not None:
        text = f"y{face.pose['yaw']:+.0f} p{face.pose['pitch']:+.0f} r{face.pose['roll']:+.0f}"
        cv2.putText(out, text, (x0, max(0, y0 - 4)), cv2.FONT_HERSHEY_SIMPLEX, font, _BOX, thick, cv2.LINE_AA)
