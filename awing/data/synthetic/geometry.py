"""The parametric 3-D face: its parameters, its parts, its pose and projection, and the point layouts.

Face units and frames
---------------------
The template lives in *face units*: 1 unit is half the distance between the outer eye corners in the
mean face (about 45 mm on a real head). Axes: ``x`` to the image right, ``y`` down, ``z`` towards the
camera; the origin is midway between the outer eye corners on the frontal face plane. Left/right are as
seen in the image (WFLW's convention: ``left_eye`` is the eye on the image left).
Every point array in this module is in face units.

Pose angles are degrees: ``yaw > 0`` turns the nose towards the image right, ``pitch > 0`` tilts the
face up, ``roll > 0`` rotates it clockwise on screen (:func:`rotation`). :func:`project` is perspective
from a camera ``cam_dist`` units in front of the head; the renderer then applies ``scale`` pixels per
unit.

Layouts
-------
Every part is built in the 98-point WFLW order (:func:`face_points`); the 68-point 300W layout is the
98 one through :data:`WFLW_TO_300W` (:func:`to_layout`). The part builders sample mirrored curves in
the order that makes each schema's ``flip_pairs`` (``awing/schemas/*.yaml``) map the face onto its
mirror image.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np

from awing.schemas import load_schema

SCHEMAS = ("wflw98", "w300_68")

# The 300W 68-point layout as indices into the WFLW 98-point one (the usual WFLW->300W convention):
# every other contour point; the upper edge of each brow (tail tip + 4 upper points); the nose as is;
# the eye corners and the upper/lower lid points nearest a third of the way along; the mouth as is.
# 98 -> 68 point indices: the schema's declared mapping (awing/schemas/w300_68.yaml, one point each).
WFLW_TO_300W = np.array([row[0] for row in load_schema("w300_68").from_schemas["wflw98"]], dtype=np.int64)

_PIVOT = np.array([0.0, 0.6, -1.0])  # (3,) head rotation centre, face units
_Z_CURVE = 0.33  # the face surface recedes as z = -_Z_CURVE * x**2


def _zsurf(x: np.ndarray | float) -> np.ndarray | float:
    """Depth of the (cylinder-like) face surface at ``x``, face units."""
    return -_Z_CURVE * np.asarray(x) ** 2


def to_layout(points: np.ndarray, schema: str) -> np.ndarray:
    """WFLW-98 per-point data (98, ...) in the ``schema`` layout (``wflw98``: as is; ``w300_68``: (68, ...)).

    Raises:
        ValueError: ``schema`` is not one of :data:`SCHEMAS`.
    """
    if schema == "wflw98":
        return points
    if schema == "w300_68":
        return points[WFLW_TO_300W]
    raise ValueError(f"the synthetic faces come in {', '.join(SCHEMAS)}, not {schema!r}")


# ---------------------------------------------------------------------------------------- parameters


@dataclasses.dataclass(frozen=True)
class Identity:
    """Shape of one synthetic person, face units. Defaults are the WFLW mean face (symmetrised)."""

    face_half_width: float = 1.65  # contour |x| at the temples
    temple_y: float = -0.05  # contour y at its two ends (about eye level)
    chin_y: float = 2.02  # contour y at the chin
    jaw_exponent: float = 2.2  # superellipse exponent of the jaw: 2 round .. 3 square
    forehead_height: float = 1.55  # hairline height above the temple line
    eye_outer_x: float = 1.0  # |x| of the outer eye corners
    eye_width: float = 0.61
    eye_upper: float = 0.10  # open upper-lid height above the corner line
    eye_lower: float = 0.06  # lower-lid depth below it
    eye_tilt: float = 0.015  # outer corner raised by this much
    iris_radius: float = 0.15
    brow_inner_x: float = 0.31
    brow_tail_x: float = 1.23
    brow_y: float = -0.265  # brow centre-line y at the inner end
    brow_arch: float = 0.08
    brow_thickness: float = 0.11
    nose_tip_y: float = 0.66
    nose_bottom_y: float = 0.82
    nose_half_width: float = 0.36  # |x| of the alar base points (55/59)
    nose_depth: float = 0.75  # tip protrusion (z)
    mouth_y: float = 1.15  # y of the lip line at the centre
    mouth_half_width: float = 0.63
    upper_lip: float = 0.10
    lower_lip: float = 0.15
    cupid_dip: float = 0.015


@dataclasses.dataclass(frozen=True)
class Expression:
    """Expression controls, unitless. Per-side pairs are (image-left, image-right)."""

    mouth_open: float = 0.0  # 0 closed .. 1 jaw fully dropped (0.45 units)
    smile: float = 0.0  # -0.4 frown .. 1 broad smile (mouth corners up and out)
    brow_raise: tuple[float, float] = (0.0, 0.0)  # -0.3 frown .. 1 raised
    eye_close: tuple[float, float] = (0.0, 0.0)  # 0 open .. 1 closed
    gaze: tuple[float, float] = (0.0, 0.0)  # pupil offset, -1 .. 1 of its range, (x, y)


# ------------------------------------------------------------------------------------------ the parts


def _bump(u: np.ndarray, p: float) -> np.ndarray:
    """(1 - u^2)^p for u in [-1, 1]: 1 at the centre, 0 at the ends."""
    return np.clip(1.0 - np.asarray(u, float) ** 2, 0.0, None) ** p


def _cross(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Cross product of two 3-vectors (np.cross is slow for single vectors)."""
    return np.array([a[1] * b[2] - a[2] * b[1], a[2] * b[0] - a[0] * b[2], a[0] * b[1] - a[1] * b[0]])


def _circle3d(
    centre: np.ndarray,
    normal: np.ndarray,
    radius: float | tuple[float, float],
    n: int = 16,
    up: np.ndarray | None = None,
) -> np.ndarray:
    """(n, 3) points of a circle/ellipse in 3-D: radius (r) or semi-axes (ra along ``up`` x normal, rb)."""
    normal = normal / np.linalg.norm(normal)
    up = np.array([0.0, 1.0, 0.0]) if up is None else up
    a = _cross(up, normal)
    if np.linalg.norm(a) < 1e-6:
        a = np.array([1.0, 0.0, 0.0])
    a /= np.linalg.norm(a)
    b = _cross(normal, a)
    ra, rb = (radius, radius) if np.isscalar(radius) else radius
    t = np.linspace(0, 2 * np.pi, n, endpoint=False)
    return centre + np.outer(ra * np.cos(t), a) + np.outer(rb * np.sin(t), b)


def _eye(idn: Identity, ex: Expression, side: int, k: int = 12):
    """One eye. side -1 is the image-left eye, +1 the image-right one.

    Returns:
        landmarks (8, 3) in layout order (image-left corner, upper lid at 1/4, 1/2, 3/4, image-right
        corner, lower lid at 3/4, 1/2, 1/4), the eye-opening outline (2k, 3), the upper lid (k, 3),
        the iris (16, 3) and pupil (12, 3) discs and the pupil centre (3,).
    """
    close = ex.eye_close[(side + 1) // 2]
    outer = np.array([side * idn.eye_outer_x, -idn.eye_tilt])
    inner = np.array([side * (idn.eye_outer_x - idn.eye_width), 0.0])
    left, right = (outer, inner) if side < 0 else (inner, outer)

    def lid(t: np.ndarray, upper: bool) -> np.ndarray:
        base = left[None] + (right - left)[None] * t[:, None]
        b = _bump(2 * t - 1, 0.45 if upper else 0.55)
        h = (-idn.eye_upper * (1 - close) + 0.6 * idn.eye_lower * close) if upper else idn.eye_lower * (1 - 0.4 * close)
        y = base[:, 1] + h * b
        return np.stack([base[:, 0], y, _zsurf(base[:, 0]) + 0.06 * b], axis=1)

    q = np.array([0.25, 0.5, 0.75])
    up = lid(np.concatenate([[0.0], q, [1.0]]), True)
    lo = lid(q[::-1], False)
    landmarks = np.concatenate([up, lo])
    td = np.linspace(0, 1, k)
    upper, lower = lid(td, True), lid(td, False)
    outline = np.concatenate([upper, lower[::-1]])

    mid = (left + right) / 2
    gx, gy = ex.gaze
    open_ = 1 - close
    pupil = np.array(
        [
            mid[0] + gx * 0.28 * idn.eye_width / 2 * open_,
            mid[1] - (idn.eye_upper - idn.eye_lower) * 0.35 + gy * 0.025 * open_,
            0.0,
        ]
    )
    pupil[2] = _zsurf(pupil[0]) + 0.1
    normal = np.array([gx * 0.45 * open_, gy * 0.3 * open_, 1.0])
    iris = _circle3d(pupil, normal, idn.iris_radius, 16)
    pupil_disc = _circle3d(pupil, normal, idn.iris_radius * 0.38, 12)
    return landmarks, outline, upper, iris, pupil_disc, pupil


def _brow(idn: Identity, ex: Expression, side: int, k: int = 10):
    """One brow: landmarks (9, 3) in layout order and the closed outline (2k, 3).

    The brow is a band around a centre line from the tail (u=0) to the inner end (u=1); the tail is a
    point. Image-left brow order: tail, upper u=.25..1, lower u=1..0.25. Image-right brow order: upper
    u=1..0.25, tail, lower u=.25..1 (so that mirrored points pair as in the schema).
    """
    r = ex.brow_raise[(side + 1) // 2]

    def band(u: np.ndarray, sign: float) -> np.ndarray:
        x = side * (idn.brow_tail_x + (idn.brow_inner_x - idn.brow_tail_x) * u)
        y = idn.brow_y + 0.05 * (1 - u) - idn.brow_arch * np.sin(np.pi * u) ** 0.8 - r * (0.16 + 0.07 * u)
        th = idn.brow_thickness * np.minimum(1.0, u / 0.3) ** 0.6
        return np.stack([x, y + sign * th / 2, _zsurf(x) + 0.12], axis=1)

    q = np.array([0.25, 0.5, 0.75, 1.0])
    tail = band(np.array([0.0]), 0.0)
    if side < 0:
        landmarks = np.concatenate([tail, band(q, -1), band(q[::-1], 1)])
    else:
        landmarks = np.concatenate([band(q[::-1], -1), tail, band(q, 1)])
    ud = np.linspace(0, 1, k)
    outline = np.concatenate([band(ud, -1), band(ud[::-1], 1)])
    return landmarks, outline


def _mouth(idn: Identity, ex: Expression, k: int = 16):
    """Lips. Returns landmarks (20, 3) = outer (12: left corner, upper to right corner, lower back) and
    inner (8: same order), plus dense curves (k, 3) outer-upper, inner-upper, inner-lower, outer-lower,
    each from image left to image right."""
    jaw = 0.45 * ex.mouth_open
    mw = idn.mouth_half_width * (1 + 0.1 * ex.smile) * (1 - 0.12 * ex.mouth_open)
    wi = 0.92 * mw
    lift = -0.12 * ex.smile  # corner rise (negative y is up)

    def base(x):
        return idn.mouth_y + lift * (x / mw) ** 2

    def z(x, bulge):
        return _zsurf(x) + bulge * _bump(x / mw, 0.5) + 0.03

    def outer_upper(u):
        x = u * mw
        dip = idn.cupid_dip * np.exp(-((u / 0.22) ** 2))  # the notch between the two peaks of the bow
        y = base(x) - idn.upper_lip * _bump(u, 0.5) + dip - 0.1 * jaw * _bump(x / wi, 0.7)
        return np.stack([x, y, z(x, 0.25)], axis=1)

    def inner_upper(u):
        x = u * wi
        return np.stack([x, base(x) - 0.1 * jaw * _bump(u, 0.7), z(x, 0.22)], axis=1)

    def inner_lower(u):
        x = u * wi
        return np.stack([x, base(x) + 0.9 * jaw * _bump(u, 0.7), z(x, 0.2)], axis=1)

    def outer_lower(u):
        x = u * mw
        y = base(x) + idn.lower_lip * _bump(u, 0.6) + 0.9 * jaw * _bump(x / wi, 0.7)
        return np.stack([x, y, z(x, 0.2)], axis=1)

    landmarks = np.concatenate(
        [
            outer_upper(np.array([-1.0, -0.6, -0.2, 0.0, 0.2, 0.6, 1.0])),
            outer_lower(np.array([0.75, 0.4, 0.0, -0.4, -0.75])),
            inner_upper(np.array([-1.0, -0.5, 0.0, 0.5, 1.0])),
            inner_lower(np.array([0.5, 0.0, -0.5])),
        ]
    )
    ud = np.linspace(-1, 1, k)
    return landmarks, (outer_upper(ud), inner_upper(ud), inner_lower(ud), outer_lower(ud))


def _nose(idn: Identity):
    """Nose: landmarks (9, 3) = bridge (4, nasion to tip) and bottom (5, image left to right), the
    outline points whose hull is the nose (19, 3), nostrils (2 x (10, 3)) and the alar creases
    (2 x (4, 3)), face units."""
    d, hw, yb, yt = idn.nose_depth, idn.nose_half_width, idn.nose_bottom_y, idn.nose_tip_y
    s = np.linspace(0, 1, 4)
    bridge = np.stack([np.zeros(4), s * yt, 0.15 + (d - 0.15) * s**1.4], axis=1)
    bottom = np.array(
        [
            [-hw, yb - 0.05, 0.12],
            [-0.46 * hw, yb - 0.025, 0.55 * d],
            [0, yb, 0.6 * d],
            [0.46 * hw, yb - 0.025, 0.55 * d],
            [hw, yb - 0.05, 0.12],
        ]
    )
    sides = []
    for sd in (-1, 1):
        sides += [
            [sd * 0.07, 0.05, 0.12],
            [sd * 0.1, 0.45 * yt, 0.3],
            [sd * 0.13, yt - 0.02, d - 0.12],
            [sd * (hw + 0.04), yb - 0.15, 0.12],
            [sd * (hw - 0.02), yb - 0.28, 0.2],
        ]
    hull = np.concatenate([bridge, bottom, np.array(sides)])
    nostrils, creases = [], []
    for sd in (-1, 1):
        c = np.array([sd * 0.55 * hw, yb - 0.055, 0.35 * d])
        nostrils.append(
            _circle3d(c, np.array([0.0, 0.85, 0.5]), (0.085 * hw / 0.36, 0.035), 10, up=np.array([0.0, 0.0, 1.0]))
        )
        creases.append(
            np.array(
                [
                    [sd * hw, yb - 0.05, 0.12],
                    [sd * (hw + 0.04), yb - 0.15, 0.12],
                    [sd * (hw - 0.01), yb - 0.27, 0.2],
                    [sd * (hw - 0.09), yb - 0.31, 0.28],
                ]
            )
        )
    return np.concatenate([bridge, bottom]), hull, nostrils, creases


def _contour(idn: Identity, ex: Expression, n_half: int = 17):
    """Jaw contour (2 n_half - 1, 3), image-left temple to chin to image-right temple, evenly spaced.

    A superellipse quadrant from the temple (-a, temple_y) to the chin (0, chin_y), resampled by arc
    length (WFLW's points are about evenly spaced); the chin drops with the open mouth."""
    a, yt, yc, n = idn.face_half_width, idn.temple_y, idn.chin_y, idn.jaw_exponent
    th = np.linspace(0, np.pi / 2, 200)
    x = -a * np.cos(th) ** (2 / n)
    y = yt + (yc - yt) * np.sin(th) ** (2 / n)
    arc = np.concatenate([[0], np.cumsum(np.hypot(np.diff(x), np.diff(y)))])
    ts = np.interp(np.linspace(0, arc[-1], n_half), arc, th)
    x = -a * np.cos(ts) ** (2 / n)
    x[-1] = 0.0
    y = yt + (yc - yt) * np.sin(ts) ** (2 / n) + 0.45 * ex.mouth_open * np.sin(ts) ** 2
    z = _zsurf(x) + 0.05 * np.sin(ts) ** 4
    half = np.stack([x, y, z], axis=1)
    right = half[-2::-1] * np.array([-1.0, 1.0, 1.0])
    contour = np.concatenate([half, right])
    return contour


def _forehead(idn: Identity, k: int = 9) -> np.ndarray:
    """Hairline arc (2k - 1, 3) from the image-left temple over the top to the image-right one."""
    th = np.linspace(0, np.pi, 2 * k - 1)
    c, s = np.cos(th), np.sin(th)
    x = -idn.face_half_width * 0.98 * np.sign(c) * np.abs(c) ** (2 / 2.4)
    y = idn.temple_y - idn.forehead_height * s ** (2 / 2.4)
    return np.stack([x, y, _zsurf(x) - 0.15 * s**2], axis=1)


def face_points(identity: Identity = Identity(), expression: Expression = Expression()) -> np.ndarray:
    """(98, 3) the WFLW landmarks of a face in face units (frontal, before pose)."""
    return face_parts(identity, expression)["landmarks"]


def face_parts(idn: Identity, ex: Expression) -> dict[str, np.ndarray]:
    """All 3-D geometry of a face, frontal and before pose: name -> (M, 3) points, face units.

    ``landmarks`` is (98, 3), the WFLW points. The rest are drawn but not annotated (``_l`` / ``_r``:
    image left / right): ``face`` (the skin outline: contour, cheekbones, hairline), ``skull`` (hair
    silhouette), ``ear_*`` (12), ``neck`` (4), ``long_hair`` (4), ``brow_*`` (20, closed outlines),
    ``nose_hull`` (19, the nose is their convex hull), ``nostril_*`` (10), ``crease_*`` (4, alar
    creases), ``eye_*`` (24, the eye openings), ``lid_*`` (12, upper lids), ``iris_*`` (16),
    ``pupil_*`` (12), and the lip curves ``lip_ou``, ``lip_iu``, ``lip_il``, ``lip_ol`` (16 each: outer
    upper, inner upper, inner lower, outer lower, image left to right).
    """
    contour = _contour(idn, ex)
    brow_l, brow_l_out = _brow(idn, ex, -1)
    brow_r, brow_r_out = _brow(idn, ex, 1)
    nose_lm, nose_hull, nostrils, creases = _nose(idn)
    eye_l = _eye(idn, ex, -1)
    eye_r = _eye(idn, ex, 1)
    mouth_lm, lips = _mouth(idn, ex)
    landmarks = np.concatenate(
        [contour, brow_l, brow_r, nose_lm, eye_l[0], eye_r[0], mouth_lm, eye_l[5][None], eye_r[5][None]]
    )
    forehead = _forehead(idn)
    # cheekbones and temples: the outline's sides pulled in and forward; they, not the contour, make
    # the far silhouette once the face turns
    rim = np.concatenate([contour[contour[:, 1] < idn.temple_y + 0.55 * (idn.chin_y - idn.temple_y)], forehead])
    rim = rim[np.abs(rim[:, 0]) > 0.6 * idn.face_half_width]
    cheeks = np.stack([0.86 * rim[:, 0], rim[:, 1], rim[:, 2] - _zsurf(rim[:, 0]) + _zsurf(0.86 * rim[:, 0]) + 0.27], 1)
    a, top = idn.face_half_width, idn.temple_y - idn.forehead_height
    # skull, for the hair silhouette: rings over the upper 62% of an ellipsoid centred 0.55 units under
    # the hairline and 1.2 behind the face, radii (1.1 a, 1.35, 1.55)
    lat, lon = np.meshgrid(np.linspace(0.0, 0.62 * np.pi, 6), np.linspace(0, 2 * np.pi, 14, endpoint=False))
    skull = np.stack(
        [
            1.1 * a * np.sin(lat) * np.cos(lon),
            (top + 0.55) - 1.35 * np.cos(lat),
            -1.2 + 1.55 * np.sin(lat) * np.sin(lon),
        ],
        axis=-1,
    ).reshape(-1, 3)
    ear_normal = np.array([0.87, 0.0, 0.5])
    ears = [
        _circle3d(np.array([sd * (a + 0.02), 0.3, -1.15]), ear_normal * [sd, 1, 1], (0.32, 0.17), 12) for sd in (-1, 1)
    ]
    neck = np.array([[-0.75, 0.8, -1.0], [0.75, 0.8, -1.0], [0.85, 4.5, -1.2], [-0.85, 4.5, -1.2]])
    long_hair = np.array(
        [[-1.1 * a, top + 0.6, -1.5], [1.1 * a, top + 0.6, -1.5], [1.3 * a, 3.6, -1.6], [-1.3 * a, 3.6, -1.6]]
    )
    return {
        "landmarks": landmarks,
        "face": np.concatenate([contour, cheeks, forehead]),
        "skull": np.concatenate([skull, forehead]),
        "ear_l": ears[0],
        "ear_r": ears[1],
        "neck": neck,
        "long_hair": long_hair,
        "brow_l": brow_l_out,
        "brow_r": brow_r_out,
        "nose_hull": nose_hull,
        "nostril_l": nostrils[0],
        "nostril_r": nostrils[1],
        "crease_l": creases[0],
        "crease_r": creases[1],
        "eye_l": eye_l[1],
        "eye_r": eye_r[1],
        "lid_l": eye_l[2],
        "lid_r": eye_r[2],
        "iris_l": eye_l[3],
        "iris_r": eye_r[3],
        "pupil_l": eye_l[4],
        "pupil_r": eye_r[4],
        "lip_ou": lips[0],
        "lip_iu": lips[1],
        "lip_il": lips[2],
        "lip_ol": lips[3],
    }


# -------------------------------------------------------------------------------- pose and projection


def rotation(yaw: float, pitch: float, roll: float) -> np.ndarray:
    """(3, 3) head rotation R = R_roll @ R_pitch @ R_yaw for angles in degrees (conventions: module doc)."""
    y, p, r = np.radians([yaw, pitch, roll])
    ry = np.array([[math.cos(y), 0, math.sin(y)], [0, 1, 0], [-math.sin(y), 0, math.cos(y)]])
    rx = np.array([[1, 0, 0], [0, math.cos(p), -math.sin(p)], [0, math.sin(p), math.cos(p)]])
    rz = np.array([[math.cos(r), -math.sin(r), 0], [math.sin(r), math.cos(r), 0], [0, 0, 1]])
    return rz @ rx @ ry


def project(points: np.ndarray, rot: np.ndarray, cam_dist: float) -> np.ndarray:
    """Rotate (M, 3) face-unit points by ``rot`` (3, 3) about the head pivot and project them
    perspectively from a camera ``cam_dist`` face units in front: (M, 2) face units (``scale`` them to
    pixels)."""
    p = (points - _PIVOT) @ rot.T
    f = cam_dist / np.maximum(cam_dist - p[:, 2], 1e-3)
    return (p[:, :2] + _PIVOT[:2]) * f[:, None]
