"""Head pose (yaw, pitch, roll) from 2-D landmarks: a rigid 3-D mean face fitted with OpenCV's PnP.

The 3-D mean faces are data: ``mean_face_3d`` in ``awing/schemas/w300_68.yaml`` and ``wflw98.yaml``,
the synthetic generator's neutral face (:func:`awing.data.synthetic.geometry.face_points` with the
default identity and expression; ``python -m awing.app.pose`` prints them). Layouts without their own
(``fdd14``, ``mtfl5``) get theirs through the schemas' point mappings (each point the mean of the 3-D
points it is made from), see :func:`mean_face_3d`.

Frames and signs (those of the synthetic generator, :mod:`awing.data.synthetic.geometry`):
the face frame has ``x`` to the image right, ``y`` down, ``z`` towards the camera, in face units (half
the outer-eye-corner distance). Angles are degrees with ``R = R_roll @ R_pitch @ R_yaw``:

- ``yaw > 0``: the nose turns towards the image right;
- ``pitch > 0``: the face tilts up;
- ``roll > 0``: the face rotates clockwise on screen.

The camera is a pinhole with focal length ``max(width, height)`` pixels and its principal point at the
image centre (no distortion); the angles hardly depend on the focal length for faces that are not
very close to the camera.
"""

from __future__ import annotations

import math
from functools import cache

import cv2
import numpy as np
import yaml

from awing.schemas import SCHEMA_DIR, Schema, available_schemas, load_schema, point_mapping

__all__ = ["head_pose", "mean_face_3d", "pose_of_points", "rotation_angles"]

_OWN = ("w300_68", "wflw98")  # the layouts whose YAML stores a mean_face_3d
_FLIP_Z = np.diag([1.0, 1.0, -1.0])  # face frame (z towards the camera) <-> OpenCV's object frame
_FLIP_Z.setflags(write=False)


@cache
def _stored(name: str) -> np.ndarray | None:
    """A layout's stored 3-D mean face, read once; read-only, since every caller shares the array."""
    if name not in available_schemas():
        return None
    data = yaml.safe_load((SCHEMA_DIR / f"{name}.yaml").read_text())
    face = data.get("mean_face_3d")
    if face is None:
        return None
    face = np.asarray(face, dtype=np.float64).reshape(-1, 3)
    face.setflags(write=False)
    return face


def mean_face_3d(schema: Schema | str) -> np.ndarray | None:
    """(N, 3) float64 the 3-D mean face of a layout, face units (frame: module doc); None if neither the
    layout nor any layout it can be mapped from stores one. A layout's own stored face is shared: read-only."""
    schema = load_schema(schema)
    own = _stored(schema.name)
    if own is not None and len(own) == schema.num_points:
        return own
    for source in _OWN:
        weights = point_mapping(source, schema)
        face = _stored(source)
        if weights is not None and face is not None:
            return weights @ face
    return None


def rotation_angles(rot: np.ndarray) -> tuple[float, float, float]:
    """``(yaw, pitch, roll)`` degrees of a (3, 3) rotation ``R = R_roll @ R_pitch @ R_yaw`` (the inverse of
    :func:`awing.data.synthetic.geometry.rotation`)."""
    pitch = math.degrees(math.asin(float(np.clip(rot[2, 1], -1.0, 1.0))))
    yaw = math.degrees(math.atan2(-rot[2, 0], rot[2, 2]))
    roll = math.degrees(math.atan2(-rot[0, 1], rot[1, 1]))
    return yaw, pitch, roll


def head_pose(
    points_2d: np.ndarray, mean_face: np.ndarray, image_size: tuple[int, int]
) -> tuple[float, float, float] | None:
    """Yaw, pitch and roll (degrees; signs in the module doc) of a face from its landmarks.

    Args:
        points_2d: (N, 2) landmarks ``x, y`` in pixels (NaN: missing, left out of the fit).
        mean_face: (N, 3) the layout's 3-D mean face (:func:`mean_face_3d`).
        image_size: ``(width, height)`` of the image, pixels (the camera's principal point and focal length).
    Returns:
        ``(yaw, pitch, roll)``, or None when fewer than 4 points are usable or PnP fails.
    """
    pts = np.asarray(points_2d, dtype=np.float64).reshape(-1, 2)
    obj = np.asarray(mean_face, dtype=np.float64).reshape(-1, 3) @ _FLIP_Z
    if len(pts) != len(obj):
        raise ValueError(f"{len(pts)} points for a {len(obj)}-point mean face")
    ok = np.isfinite(pts).all(axis=1) & np.isfinite(obj).all(axis=1)
    if ok.sum() < 4:
        return None
    pts, obj = np.ascontiguousarray(pts[ok]), np.ascontiguousarray(obj[ok])
    w, h = image_size
    f = float(max(w, h))
    camera = np.array([[f, 0, (w - 1) / 2], [0, f, (h - 1) / 2], [0, 0, 1]], dtype=np.float64)
    try:
        found, rvec, tvec = cv2.solvePnP(obj, pts, camera, None, flags=cv2.SOLVEPNP_SQPNP)
        if not found:
            return None
        found, rvec, tvec = cv2.solvePnP(
            obj, pts, camera, None, rvec, tvec, useExtrinsicGuess=True, flags=cv2.SOLVEPNP_ITERATIVE
        )
    except cv2.error:
        return None
    if not found or float(tvec[2, 0]) <= 0:
        return None
    rot_cv, _ = cv2.Rodrigues(rvec)
    return rotation_angles(_FLIP_Z @ rot_cv @ _FLIP_Z)


def pose_of_points(points_2d: np.ndarray, schema: Schema | str, image_size: tuple[int, int]) -> dict | None:
    """``{"yaw", "pitch", "roll"}`` degrees (rounded to 0.01) for one face in ``schema``'s layout, or None
    (no mean face for the layout, or no fit)."""
    face = mean_face_3d(schema)
    if face is None:
        return None
    angles = head_pose(points_2d, face, image_size)
    if angles is None:
        return None
    return {k: round(float(v), 2) for k, v in zip(("yaw", "pitch", "roll"), angles)}


def _generate() -> dict[str, list[list[float]]]:
    """The synthetic generator's neutral face in the layouts that store one (what the YAMLs hold)."""
    from awing.data.synthetic.geometry import face_points, to_layout

    face = face_points()
    return {name: np.round(to_layout(face, name), 4).tolist() for name in _OWN}


if __name__ == "__main__":  # print the mean_face_3d blocks for the schema YAMLs
    for name, rows in _generate().items():
        print(f"# {name}.yaml")
        print("mean_face_3d:", "[" + ", ".join(f"[{x:g}, {y:g}, {z:g}]" for x, y, z in rows) + "]")
