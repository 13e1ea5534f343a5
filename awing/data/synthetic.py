"""Procedural faces: the embedded default dataset, generated on the fly with no download.

A parametric 3-D face (contour, brows, eyelids, irises, nose, lips) is posed, projected and drawn with
OpenCV into a cluttered scene. Every landmark of the 98-point WFLW layout is a sample of one of the
face's part curves, and the part is drawn as a filled region or a stroke through exactly those curves,
so each point sits on a visible image edge (eyelid/sclera, brow/skin, lip/skin, skin/background) unless
something hides it. The 68-point 300W layout is the 98 one through :data:`WFLW_TO_300W`.

Face units and frames
---------------------
The template lives in *face units*: 1 unit is half the distance between the outer eye corners in the
mean face (about 45 mm on a real head). Axes: ``x`` to the image right, ``y`` down, ``z`` towards the
camera; the origin is midway between the outer eye corners on the frontal face plane. Left/right are as
seen in the image (WFLW's convention: ``left_eye`` is the eye on the image left).

Pose angles are degrees: ``yaw > 0`` turns the nose towards the image right, ``pitch > 0`` tilts the
face up, ``roll > 0`` rotates it clockwise on screen. Projection is perspective from a camera
``cam_dist`` units in front of the head, then ``scale`` pixels per unit.

Pipeline (one image)
--------------------
:func:`sample_scene` draws every random decision of one image into a :class:`Scene` (plain data);
:func:`render_scene` turns a scene into pixels, points and visibility, deterministically. Tests edit a
scene with :func:`dataclasses.replace` (a frontal, unoccluded face, say) and render it again.
:func:`generate` writes a whole dataset; image ``i`` of split ``s`` uses the seed ``(seed, s, i)`` so any
image can be regenerated alone, in any order or process.

Visibility: a point is flagged not visible when an occluder covers it, it falls outside the image, a
contour point is no longer on the face silhouette (self-occlusion at large yaw), a point lies behind the
nose, or a pupil is hidden by a closed lid. Like WFLW, hidden points are still annotated.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
from pathlib import Path

import cv2
import numpy as np

GENERATOR_VERSION = 1
SPLITS = ("train", "val", "test")
SCHEMAS = ("wflw98", "w300_68")
ATTRIBUTE_KEYS = ("pose", "expression", "illumination", "make-up", "occlusion", "blur")

# The 300W 68-point layout as indices into the WFLW 98-point one (the usual WFLW->300W convention):
# every other contour point; the upper edge of each brow (tail tip + 4 upper points); the nose as is;
# the eye corners and the upper/lower lid points nearest a third of the way along; the mouth as is.
WFLW_TO_300W = np.array(
    [*range(0, 33, 2), *range(33, 38), *range(42, 47), *range(51, 60)]
    + [60, 61, 63, 64, 65, 67, 68, 69, 71, 72, 73, 75]
    + [*range(76, 96)],
    dtype=np.int64,
)

# Attribute thresholds (the flags are exactly these tests on the scene, see scene_attributes).
POSE_YAW, POSE_PITCH = 40.0, 25.0  # degrees
EXPR_MOUTH, EXPR_SMILE, EXPR_FROWN, EXPR_BROW, EXPR_EYE = 0.45, 0.6, -0.4, 0.6, 0.7
ILLUM_GRADIENT, ILLUM_DARK, ILLUM_BRIGHT = 0.5, 0.6, 1.45
BLUR_SIGMA, BLUR_MOTION = 1.5, 6.0  # pixels at 256x256 (scaled with the image size)
OCCLUSION_FRACTION = 0.1  # of the layout's points covered by occluders

_PIVOT = np.array([0.0, 0.6, -1.0])  # head rotation centre, face units
_Z_CURVE = 0.33  # the face surface recedes as z = -_Z_CURVE * x**2


def _zsurf(x: np.ndarray | float) -> np.ndarray | float:
    """Depth of the (cylinder-like) face surface at ``x``, face units."""
    return -_Z_CURVE * np.asarray(x) ** 2


# --------------------------------------------------------------------------------------------- scene


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


@dataclasses.dataclass(frozen=True)
class Occluder:
    """One object in front of the face, placed relative to a landmark group.

    ``anchor`` names a point group (see ``_ANCHORS``) whose mean is the occluder's centre before
    ``offset``; ``offset`` and ``size`` are face units in the image plane (``size`` is the two extents of
    a patch, bar, blob or hand, the lens axes of sunglasses, and for a face mask ``size[0]`` says how far
    up the nose it reaches); ``angle`` is degrees; ``seed`` shapes random outlines (blobs).
    """

    kind: str  # patch | hand | bar | sunglasses | mask | blob
    anchor: str
    offset: tuple[float, float]
    size: tuple[float, float]
    angle: float
    colour: tuple[float, float, float]
    seed: int = 0


@dataclasses.dataclass(frozen=True)
class Scene:
    """Every random decision behind one image; :func:`render_scene` is a pure function of it.

    Colours are BGR tuples in 0..255. ``scale`` is pixels per face unit; ``centre`` is where the middle
    of the landmark box lands, pixels.
    """

    size: int
    # pose and placement
    yaw: float
    pitch: float
    roll: float
    scale: float
    centre: tuple[float, float]
    cam_dist: float
    identity: Identity
    expression: Expression
    # appearance
    skin: tuple[float, float, float]
    hair: tuple[float, float, float]
    hair_style: str  # bald | short | long
    hair_volume: float
    brow_colour: tuple[float, float, float]
    iris: tuple[float, float, float]
    sclera: tuple[float, float, float]
    lips: tuple[float, float, float]
    clothes: tuple[float, float, float]
    makeup: bool
    eye_shadow: tuple[float, float, float] | None
    eyeliner: bool
    blush: bool
    # scene
    background: str  # gradient | noise | stripes | shapes
    bg_colours: tuple[tuple[float, float, float], tuple[float, float, float]]
    occluders: tuple[Occluder, ...]
    light_angle: float  # degrees: image-plane direction in which the scene gets brighter
    light_strength: float  # relative brightness change per face radius (1.8 face units), 0 .. 0.95
    gain: float  # overall exposure
    cast: tuple[float, float, float]  # per-channel white balance
    shadow: tuple[float, float, float] | None  # (angle deg, offset in face units, darkness) of a hard shadow
    blur_kind: str  # none | gauss | motion
    blur_amount: float  # sigma (gauss) or length (motion), pixels at 256x256
    blur_angle: float
    noise: float  # sensor noise sigma, grey levels
    grayscale: bool
    texture_seed: int


def _uniform(rng: np.random.Generator, lo: float, hi: float) -> float:
    return float(rng.uniform(lo, hi))


def _colour(rgb, jitter: float, rng: np.random.Generator) -> tuple[float, float, float]:
    """An RGB palette entry jittered and returned as a BGR tuple."""
    c = np.clip(np.asarray(rgb, dtype=np.float64) + rng.normal(0, jitter, 3), 0, 255)
    return (float(c[2]), float(c[1]), float(c[0]))


def _mix(a, b, t: float) -> tuple[float, float, float]:
    return tuple(float(x * (1 - t) + y * t) for x, y in zip(a, b))


_SKIN_RGB = [
    (255, 226, 200),
    (241, 194, 167),
    (224, 172, 138),
    (198, 134, 103),
    (161, 102, 75),
    (113, 72, 53),
    (78, 52, 40),
]
_HAIR_RGB = [
    (22, 18, 16),
    (55, 38, 28),
    (105, 72, 48),
    (200, 165, 110),
    (150, 62, 30),
    (150, 150, 150),
    (225, 222, 215),
]
_IRIS_RGB = [(88, 55, 30), (40, 28, 20), (70, 110, 165), (75, 115, 75), (110, 120, 130), (125, 95, 50)]
_LIPSTICK_RGB = [(180, 20, 40), (110, 12, 30), (220, 90, 130), (110, 40, 100), (190, 120, 110), (35, 20, 28)]
_ANCHORS = {  # anchor name -> WFLW indices whose mean places an occluder
    "left_eye": range(60, 68),
    "right_eye": range(68, 76),
    "eyes": range(60, 76),
    "nose": range(51, 60),
    "mouth": range(76, 96),
    "chin": range(12, 21),
    "left_cheek": (4, 5, 6, 55, 76),
    "right_cheek": (26, 27, 28, 59, 82),
    "brows": range(33, 51),
}


def _sample_identity(rng: np.random.Generator) -> Identity:
    u = lambda lo, hi: _uniform(rng, lo, hi)  # noqa: E731
    nose_tip = u(0.55, 0.75)
    nose_bottom = nose_tip + u(0.12, 0.2)
    return Identity(
        face_half_width=u(1.5, 1.8),
        temple_y=u(-0.15, 0.05),
        chin_y=u(1.85, 2.25),
        jaw_exponent=u(1.8, 2.9),
        forehead_height=u(1.35, 1.75),
        eye_outer_x=u(0.95, 1.05),
        eye_width=u(0.54, 0.68),
        eye_upper=u(0.075, 0.125),
        eye_lower=u(0.045, 0.075),
        eye_tilt=u(-0.03, 0.06),
        iris_radius=u(0.13, 0.165),
        brow_inner_x=u(0.24, 0.36),
        brow_tail_x=u(1.12, 1.32),
        brow_y=u(-0.34, -0.22),
        brow_arch=u(0.02, 0.13),
        brow_thickness=u(0.07, 0.16),
        nose_tip_y=nose_tip,
        nose_bottom_y=nose_bottom,
        nose_half_width=u(0.28, 0.42),
        nose_depth=u(0.65, 0.95),
        mouth_y=nose_bottom + u(0.28, 0.4),
        mouth_half_width=u(0.5, 0.7),
        upper_lip=u(0.08, 0.14),
        lower_lip=u(0.11, 0.19),
        cupid_dip=u(0.0, 0.02),
    )


def _sample_expression(rng: np.random.Generator) -> Expression:
    u = lambda lo, hi: _uniform(rng, lo, hi)  # noqa: E731
    mouth = u(0.0, 0.3) if rng.random() < 0.35 else 0.0
    smile = u(-0.25, 0.45)
    raise_ = u(-0.25, 0.4)
    brows = (raise_ + u(-0.1, 0.1), raise_ + u(-0.1, 0.1))
    blink = u(0.0, 0.45) if rng.random() < 0.3 else 0.0
    eyes = (blink, blink)
    if rng.random() < 0.3:  # an exaggerated expression: one or two strong components
        for part in rng.choice(
            ["mouth", "smile", "brows", "eyes", "wink"], size=int(rng.integers(1, 3)), replace=False
        ):
            if part == "mouth":
                mouth = u(0.5, 1.0)
            elif part == "smile":
                smile = u(0.65, 1.0) if rng.random() < 0.8 else u(-0.45, -0.42)
            elif part == "brows":
                r = u(0.65, 1.0)
                brows = (r, r) if rng.random() < 0.7 else (r, u(0.0, 0.3))
            elif part == "eyes":
                c = u(0.75, 1.0)
                eyes = (c, c)
            else:
                eyes = (u(0.75, 1.0), 0.0) if rng.random() < 0.5 else (0.0, u(0.75, 1.0))
    gaze = (u(-0.8, 0.8), u(-0.6, 0.6))
    clip = lambda v, lo, hi: tuple(float(np.clip(x, lo, hi)) for x in v)  # noqa: E731
    return Expression(mouth, smile, clip(brows, -0.3, 1.0), clip(eyes, 0.0, 1.0), gaze)


def _sample_occluder(rng: np.random.Generator) -> Occluder:
    kind = str(rng.choice(["patch", "hand", "bar", "sunglasses", "mask", "blob"], p=[0.2, 0.25, 0.15, 0.12, 0.1, 0.18]))
    u = lambda lo, hi: _uniform(rng, lo, hi)  # noqa: E731
    anchor = str(rng.choice(list(_ANCHORS)))
    colour = _colour(rng.integers(0, 256, 3), 0, rng)
    offset = (u(-0.5, 0.5), u(-0.5, 0.5))
    if kind == "patch":
        size = (u(0.8, 2.0), u(0.6, 1.6))
    elif kind == "hand":
        idx = int(rng.integers(len(_SKIN_RGB) - 1))
        colour = _colour(_SKIN_RGB[idx], 12, rng)
        anchor = str(rng.choice(["mouth", "chin", "left_cheek", "right_cheek", "left_eye", "right_eye", "nose"]))
        size = (u(1.0, 1.5), u(1.0, 1.5))
    elif kind == "bar":
        size = (u(3.0, 6.0), u(0.12, 0.5))
    elif kind == "sunglasses":
        anchor, offset = "eyes", (u(-0.05, 0.05), u(-0.05, 0.08))
        colour = _colour((rng.integers(0, 60), rng.integers(0, 60), rng.integers(0, 80)), 5, rng)
        size = (u(0.75, 1.0), u(0.45, 0.6))
    elif kind == "mask":
        anchor, offset = "mouth", (0.0, 0.0)
        colour = _colour(
            [(200, 225, 240), (240, 240, 240), (30, 30, 35), (120, 160, 210)][int(rng.integers(4))], 10, rng
        )
        size = (u(0.0, 0.3), 0.0)  # size[0]: how far up the nose the mask reaches (0 tip .. 0.3 above)
    else:  # blob
        size = (u(0.5, 1.3), u(0.5, 1.3))
    return Occluder(kind, anchor, offset, size, u(-180, 180), colour, int(rng.integers(2**31)))


def sample_scene(rng: np.random.Generator, size: int = 256) -> Scene:
    """Draw one random scene.

    Args:
        rng: the image's generator (see :func:`image_rng`).
        size: output image side, pixels.
    """
    u = lambda lo, hi: _uniform(rng, lo, hi)  # noqa: E731
    yaw = u(-60, 60) if rng.random() < 0.35 else float(np.clip(rng.normal(0, 15), -60, 60))
    pitch = u(-30, 30) if rng.random() < 0.25 else float(np.clip(rng.normal(0, 8), -30, 30))
    roll = u(-40, 40) if rng.random() < 0.25 else float(np.clip(rng.normal(0, 8), -40, 40))
    centre = tuple(float(size * (c + np.clip(rng.normal(0, 0.06), -0.14, 0.14))) for c in (0.5, 0.53))

    tone = u(0, len(_SKIN_RGB) - 1)  # a point on the light-to-dark skin palette, interpolated
    skin_rgb = [np.interp(tone, np.arange(len(_SKIN_RGB)), [c[k] for c in _SKIN_RGB]) for k in range(3)]
    skin = _colour(np.asarray(skin_rgb) * u(0.9, 1.1), 4, rng)
    hair = _colour(_HAIR_RGB[int(rng.integers(len(_HAIR_RGB)))], 10, rng)
    if rng.random() < 0.06:  # dyed
        hair = _colour(rng.integers(0, 256, 3), 0, rng)
    hair_style = str(rng.choice(["bald", "short", "long"], p=[0.1, 0.5, 0.4]))
    brow_colour = _mix(hair, (15, 15, 20), u(0.2, 0.7))
    lips = _mix(skin, (70, 60, 175), u(0.25, 0.45))
    makeup = rng.random() < 0.25
    eye_shadow, eyeliner, blush = None, False, False
    if makeup:
        kinds = rng.random(4) < (0.8, 0.6, 0.5, 0.4)
        if not kinds.any():
            kinds[0] = True
        if kinds[0]:
            lips = _colour(_LIPSTICK_RGB[int(rng.integers(len(_LIPSTICK_RGB)))], 10, rng)
        if kinds[1]:
            eye_shadow = _colour(rng.integers(0, 256, 3), 0, rng)
        eyeliner, blush = bool(kinds[2]), bool(kinds[3])

    c1 = _colour(rng.integers(0, 256, 3), 0, rng)
    c2 = _colour(rng.integers(0, 256, 3), 0, rng)
    n_occ = 0 if rng.random() >= 0.3 else (1 if rng.random() < 0.8 else 2)

    strong = rng.random() < 0.25
    gain = u(0.8, 1.2)
    if rng.random() < 0.1:
        gain = u(0.4, 0.58) if rng.random() < 0.5 else u(1.47, 1.7)
    shadow = (u(-180, 180), u(-0.8, 0.8), u(0.35, 0.6)) if rng.random() < 0.08 else None
    blur_kind, blur_amount = "none", 0.0
    if rng.random() < 0.3:
        blur_kind = "gauss" if rng.random() < 0.6 else "motion"
        blur_amount = u(0.4, 3.0) if blur_kind == "gauss" else u(2.0, 12.0)

    return Scene(
        size=int(size),
        yaw=yaw,
        pitch=pitch,
        roll=roll,
        scale=size * u(0.095, 0.15),
        centre=centre,
        cam_dist=u(6.0, 20.0),
        identity=_sample_identity(rng),
        expression=_sample_expression(rng),
        skin=skin,
        hair=hair,
        hair_style=hair_style,
        hair_volume=u(1.0, 1.2),
        brow_colour=brow_colour,
        iris=_colour(_IRIS_RGB[int(rng.integers(len(_IRIS_RGB)))], 10, rng),
        sclera=_colour((235, 230, 225), 5, rng),
        lips=lips,
        clothes=_colour(rng.integers(0, 256, 3), 0, rng),
        makeup=bool(makeup),
        eye_shadow=eye_shadow,
        eyeliner=eyeliner,
        blush=blush,
        background=str(rng.choice(["gradient", "noise", "stripes", "shapes"], p=[0.15, 0.3, 0.2, 0.35])),
        bg_colours=(c1, c2),
        occluders=tuple(_sample_occluder(rng) for _ in range(n_occ)),
        light_angle=u(-180, 180),
        light_strength=u(0.55, 0.95) if strong else u(0.0, 0.35),
        gain=gain,
        cast=(u(0.88, 1.12), u(0.92, 1.08), u(0.88, 1.12)),
        shadow=shadow,
        blur_kind=blur_kind,
        blur_amount=blur_amount,
        blur_angle=u(0, 180),
        noise=u(0, 6) if rng.random() < 0.9 else u(6, 14),
        grayscale=bool(rng.random() < 0.07),
        texture_seed=int(rng.integers(2**31)),
    )


def frontal(scene: Scene) -> Scene:
    """The same scene as a neutral, frontal, unoccluded, evenly lit, sharp face (for tests and figures)."""
    return dataclasses.replace(
        scene,
        yaw=0.0,
        pitch=0.0,
        roll=0.0,
        expression=Expression(),
        occluders=(),
        light_strength=0.0,
        gain=1.0,
        cast=(1.0, 1.0, 1.0),
        shadow=None,
        blur_kind="none",
        blur_amount=0.0,
        noise=0.0,
        grayscale=False,
        centre=(scene.size / 2, scene.size / 2),
    )


def scene_attributes(scene: Scene, occluded_fraction: float) -> dict[str, int]:
    """WFLW's six 0/1 attribute flags for a scene.

    Args:
        occluded_fraction: share of the layout's points covered by occluders (from :func:`render_scene`).
    """
    e = scene.expression
    return {
        "pose": int(abs(scene.yaw) > POSE_YAW or abs(scene.pitch) > POSE_PITCH),
        "expression": int(
            e.mouth_open >= EXPR_MOUTH
            or e.smile >= EXPR_SMILE
            or e.smile <= EXPR_FROWN
            or max(e.brow_raise) >= EXPR_BROW
            or max(e.eye_close) >= EXPR_EYE
        ),
        "illumination": int(
            scene.light_strength >= ILLUM_GRADIENT
            or scene.shadow is not None
            or scene.gain < ILLUM_DARK
            or scene.gain > ILLUM_BRIGHT
        ),
        "make-up": int(scene.makeup),
        "occlusion": int(occluded_fraction >= OCCLUSION_FRACTION),
        "blur": int(
            (scene.blur_kind == "gauss" and scene.blur_amount >= BLUR_SIGMA)
            or (scene.blur_kind == "motion" and scene.blur_amount >= BLUR_MOTION)
        ),
    }


# ------------------------------------------------------------------------------------------ geometry


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
    outline points whose hull is the nose (M, 3), nostrils (2 x (10, 3)) and the alar creases."""
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
    return _geometry(identity, expression)["landmarks"]


def _geometry(idn: Identity, ex: Expression) -> dict[str, np.ndarray]:
    """All 3-D geometry of a face: the 98 landmarks and the drawing-only parts, by name."""
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


def rotation(yaw: float, pitch: float, roll: float) -> np.ndarray:
    """(3, 3) head rotation R = R_roll @ R_pitch @ R_yaw for angles in degrees (conventions: module doc)."""
    y, p, r = np.radians([yaw, pitch, roll])
    ry = np.array([[math.cos(y), 0, math.sin(y)], [0, 1, 0], [-math.sin(y), 0, math.cos(y)]])
    rx = np.array([[1, 0, 0], [0, math.cos(p), -math.sin(p)], [0, math.sin(p), math.cos(p)]])
    rz = np.array([[math.cos(r), -math.sin(r), 0], [math.sin(r), math.cos(r), 0], [0, 0, 1]])
    return rz @ rx @ ry


def _project(points: np.ndarray, rot: np.ndarray, cam_dist: float) -> np.ndarray:
    """Rotate (M, 3) face-unit points about the head pivot and project them: (M, 2) face units."""
    p = (points - _PIVOT) @ rot.T
    f = cam_dist / np.maximum(cam_dist - p[:, 2], 1e-3)
    return (p[:, :2] + _PIVOT[:2]) * f[:, None]


# ----------------------------------------------------------------------------------------- rendering


def _fix(pts: np.ndarray) -> np.ndarray:
    """Pixel points as OpenCV fixed-point (4 fractional bits) int32."""
    return np.round(np.asarray(pts) * 16).astype(np.int32)


def _fill(img, pts, colour, aa: bool = True) -> None:
    cv2.fillPoly(img, [_fix(pts)], colour, cv2.LINE_AA if aa else cv2.LINE_8, shift=4)


def _stroke(img, pts, colour, thickness: int, closed: bool = False) -> None:
    cv2.polylines(img, [_fix(pts)], closed, colour, max(1, int(thickness)), cv2.LINE_AA, shift=4)


def _hull(pts: np.ndarray) -> np.ndarray:
    return cv2.convexHull(pts.astype(np.float32)).reshape(-1, 2)


def _scaled(c, f: float) -> tuple[float, float, float]:
    return tuple(float(min(255.0, v * f)) for v in c)


def _ramp(size: int, angle: float, origin=(0.0, 0.0), unit: float = 1.0) -> np.ndarray:
    """(S, S) float32 ((x - ox) cos a + (y - oy) sin a) / unit over the pixel grid; ``angle`` radians."""
    r = np.arange(size, dtype=np.float32)
    return (r[None, :] - origin[0]) * (math.cos(angle) / unit) + (r[:, None] - origin[1]) * (math.sin(angle) / unit)


def _background(scene: Scene, rng: np.random.Generator) -> np.ndarray:
    """(S, S, 3) uint8 background texture."""
    s = scene.size
    c1, c2 = (np.asarray(c, np.float32) for c in scene.bg_colours)
    a = rng.uniform(0, 2 * np.pi)
    if scene.background == "stripes":
        f = rng.uniform(3, 18) * 2 * np.pi / s
        wave = np.sin(_ramp(s, a + 1.0, unit=1 / f) + rng.uniform(0, 6.3))
        t = (wave > 0).astype(np.float32) if rng.random() < 0.5 else (wave + 1) / 2
    elif scene.background == "noise":
        k = int(rng.integers(3, 24))
        low = rng.random((k, k, 1)).astype(np.float32)
        t = cv2.resize(low, (s, s), interpolation=cv2.INTER_CUBIC)
    else:  # a linear ramp from c1 to c2 across the image
        corners = [0.0, math.cos(a), math.sin(a), math.cos(a) + math.sin(a)]
        t = (_ramp(s, a, unit=s) - min(corners)) / (max(corners) - min(corners))
    # colour c1 + (c2 - c1) t through a 256-entry lookup table
    t8 = (np.clip(t, 0, 1, out=t) * 255).astype(np.uint8)
    lut = (c1 + (c2 - c1) * np.linspace(0, 1, 256, dtype=np.float32)[:, None]).astype(np.uint8)
    img = cv2.LUT(cv2.merge([t8, t8, t8]), lut[:, None, :])
    if scene.background == "noise" and rng.random() < 0.5:  # coloured blotches on top
        k = int(rng.integers(2, 10))
        col = cv2.resize(rng.integers(0, 256, (k, k, 3), dtype=np.uint8), (s, s), interpolation=cv2.INTER_LINEAR)
        img = cv2.addWeighted(img, 0.6, col, 0.4, 0)
    if scene.background == "shapes" or rng.random() < 0.25:
        for _ in range(int(rng.integers(4, 22))):
            col = tuple(float(v) for v in rng.integers(0, 256, 3))
            kind = rng.integers(4)
            c = rng.uniform(-0.1, 1.1, 2) * s
            r = rng.uniform(0.03, 0.3) * s
            if kind == 0:
                cv2.circle(img, _fix(c), int(r * 16), col, -1, cv2.LINE_AA, shift=4)
            elif kind == 1:
                ang = rng.uniform(0, np.pi)
                d = np.array([math.cos(ang), math.sin(ang)]) * r
                _stroke(img, np.stack([c - d, c + d]), col, int(rng.integers(1, max(2, s // 20))))
            elif kind == 2:
                n = int(rng.integers(3, 7))
                ang = np.sort(rng.uniform(0, 2 * np.pi, n))
                pts = c + np.stack([np.cos(ang), np.sin(ang)], 1) * rng.uniform(0.3, 1.0, (n, 1)) * r
                _fill(img, pts, col)
            else:
                cv2.ellipse(
                    img,
                    (_fix(c)[0], _fix(c)[1]),
                    (int(r * 16), int(r * rng.uniform(0.2, 1) * 16)),
                    float(rng.uniform(0, 180)),
                    0,
                    360,
                    col,
                    -1,
                    cv2.LINE_AA,
                    shift=4,
                )
    return img


def _draw_eye(img, outline, iris, pupil, lid, scene: Scene, close: float, px: float) -> None:
    """Sclera, iris and pupil clipped to the eye opening, then the lid lines (all (M, 2) pixels)."""
    h, w = img.shape[:2]
    x0, y0 = np.floor(outline.min(0)).astype(int) - 2
    x1, y1 = np.ceil(outline.max(0)).astype(int) + 3
    x0, y0, x1, y1 = max(x0, 0), max(y0, 0), min(x1, w), min(y1, h)
    off = np.array([x0, y0], float)
    if close < 0.97 and x1 > x0 and y1 > y0:
        roi = img[y0:y1, x0:x1]
        layer = roi.copy()
        _fill(layer, outline - off, scene.sclera)
        _fill(layer, iris - off, scene.iris)
        _stroke(layer, iris - off, _scaled(scene.iris, 0.6), max(1, round(0.02 * px)), closed=True)
        _fill(layer, pupil - off, (12.0, 10.0, 10.0))
        mask = np.zeros(roi.shape[:2], np.uint8)
        _fill(mask, outline - off, 255)
        alpha = (mask.astype(np.float32) / 255.0)[..., None]
        roi[:] = (roi * (1 - alpha) + layer * alpha).astype(np.uint8)
    lash = _scaled(scene.brow_colour, 0.5)
    if scene.eyeliner:
        _stroke(img, lid, (20.0, 15.0, 15.0), round(0.07 * px))
    _stroke(img, lid, lash, round(0.04 * px))
    _stroke(img, outline, _scaled(scene.skin, 0.7), round(0.015 * px), closed=True)


def _occluder_shape(occ: Occluder, lm: np.ndarray, px: float) -> list[np.ndarray]:
    """Polygons (pixels) of one occluder, given the projected 98 landmarks and pixels per unit."""
    centre = lm[list(_ANCHORS[occ.anchor])].mean(axis=0) + np.asarray(occ.offset) * px
    ang = math.radians(occ.angle)
    rotm = np.array([[math.cos(ang), -math.sin(ang)], [math.sin(ang), math.cos(ang)]])
    rng = np.random.default_rng(occ.seed)
    if occ.kind == "patch":
        l, w = occ.size[0] * px / 2, occ.size[1] * px / 2
        return [centre + np.array([[-l, -w], [l, -w], [l, w], [-l, w]]) @ rotm.T]
    if occ.kind == "bar":
        l, w = occ.size[0] * px / 2, occ.size[1] * px / 2
        return [centre + np.array([[-l, -w], [l, -w], [l, w], [-l, w]]) @ rotm.T]
    if occ.kind == "blob":
        n = 9
        t = np.linspace(0, 2 * np.pi, n, endpoint=False)
        r = rng.uniform(0.55, 1.0, n)
        pts = np.stack([np.cos(t) * r * occ.size[0], np.sin(t) * r * occ.size[1]], 1) * px / 2
        return [centre + pts @ rotm.T]
    if occ.kind == "hand":
        palm_w, palm_h = 0.5 * occ.size[0] * px, 0.55 * occ.size[1] * px
        t = np.linspace(0, 2 * np.pi, 20, endpoint=False)
        shapes = [centre + np.stack([np.cos(t) * palm_w, np.sin(t) * palm_h], 1) @ rotm.T]
        for i, fl in enumerate((0.8, 1.0, 0.95, 0.75)):
            fx = (-0.75 + 0.5 * i) * palm_w
            fw = 0.2 * palm_w
            finger = np.array(
                [
                    [fx - fw, 0],
                    [fx + fw, 0],
                    [fx + fw, -palm_h - fl * palm_h],
                    [fx, -palm_h - fl * palm_h - fw],
                    [fx - fw, -palm_h - fl * palm_h],
                ]
            )
            shapes.append(centre + finger @ rotm.T)
        thumb = np.array(
            [
                [palm_w * 0.6, 0.2 * palm_h],
                [palm_w * 1.5, -0.4 * palm_h],
                [palm_w * 1.65, -0.2 * palm_h],
                [palm_w * 0.9, 0.5 * palm_h],
            ]
        )
        shapes.append(centre + thumb @ rotm.T)
        return shapes
    if occ.kind == "sunglasses":
        shapes = []
        a = math.atan2(lm[72, 1] - lm[60, 1], lm[72, 0] - lm[60, 0])
        t = np.linspace(0, 2 * np.pi, 20, endpoint=False)
        rot2 = np.array([[math.cos(a), -math.sin(a)], [math.sin(a), math.cos(a)]])
        for eye in (range(60, 68), range(68, 76)):
            c = lm[list(eye)].mean(axis=0) + np.asarray(occ.offset) * px
            lens = np.stack([np.cos(t) * occ.size[0] * 0.5, np.sin(t) * occ.size[1] * 0.5], 1) * px
            shapes.append(c + lens @ rot2.T)
        ends = [lm[60:68].mean(0), lm[68:76].mean(0)]
        d = (ends[1] - ends[0]) / max(np.linalg.norm(ends[1] - ends[0]), 1e-6)
        nrm = np.array([-d[1], d[0]]) * 0.04 * px
        shapes.append(np.array([ends[0] - nrm, ends[1] - nrm, ends[1] + nrm, ends[0] + nrm]))
        return shapes
    # mask: from the cheeks over the nose down round the chin
    top = lm[54] + (lm[51] - lm[54]) * occ.size[0]
    return [np.concatenate([lm[3:30], [lm[29] * 0.7 + top * 0.3, top, lm[3] * 0.7 + top * 0.3]])]


def _apply_light(img: np.ndarray, scene: Scene, centre: np.ndarray, px: float) -> np.ndarray:
    """Exposure, white balance, a brightness gradient and an optional hard shadow. float32 out."""
    s = scene.size
    field = _ramp(s, math.radians(scene.light_angle), centre, 1.8 * px / max(scene.light_strength, 1e-6))
    field += 1.0
    np.clip(field, 0.15, 1.9, out=field)
    if scene.shadow is not None:  # a soft-edged (3 px) half-plane, ``offset`` face units from the centre
        angle, offset, dark = scene.shadow
        d = _ramp(s, math.radians(angle), centre, 3.0) - offset * px / 3.0 + 0.5
        field *= 1 - dark * np.clip(d, 0, 1, out=d)
    gains = tuple(float(c * scene.gain) for c in scene.cast) + (0.0,)
    return cv2.multiply(cv2.multiply(img, cv2.merge([field, field, field]), dtype=cv2.CV_32F), gains)


def _apply_blur(img: np.ndarray, scene: Scene) -> np.ndarray:
    k = scene.size / 256.0
    if scene.blur_kind == "gauss" and scene.blur_amount > 0:
        return cv2.GaussianBlur(img, (0, 0), scene.blur_amount * k)
    if scene.blur_kind == "motion" and scene.blur_amount > 0:
        n = max(2, int(round(scene.blur_amount * k)))
        kern = np.zeros((n | 1, n | 1), np.float32)
        c = (n | 1) // 2
        a = math.radians(scene.blur_angle)
        d = np.array([math.cos(a), math.sin(a)]) * (n / 2)
        cv2.line(
            kern,
            (int(round(c - d[0])), int(round(c - d[1]))),
            (int(round(c + d[0])), int(round(c + d[1]))),
            1.0,
            1,
            cv2.LINE_AA,
        )
        return cv2.filter2D(img, -1, kern / kern.sum())
    return img


@dataclasses.dataclass
class Rendered:
    """One rendered scene.

    Attributes:
        image: (S, S, 3) uint8 BGR.
        landmarks: (98, 2) float32 WFLW points, pixels (pixel centres at integers).
        visible: (98,) bool, False where hidden (occluder, self-occlusion, outside the image, closed lid).
        occluded: (98,) bool, True where an occluder covers the point.
        background: (S, S, 3) uint8, the background before the person was drawn.
        face_mask: (S, S) uint8, 255 on the face skin region (face hull, nose, lips).
        scale: pixels per face unit.
    """

    image: np.ndarray
    landmarks: np.ndarray
    visible: np.ndarray
    occluded: np.ndarray
    background: np.ndarray
    face_mask: np.ndarray
    scale: float


def render_scene(scene: Scene) -> Rendered:
    """Draw a scene. Deterministic: the same scene gives the same pixels and points."""
    rng = np.random.default_rng(scene.texture_seed)
    size, px = scene.size, scene.scale
    idn, ex = scene.identity, scene.expression
    geo = _geometry(idn, ex)
    rot = rotation(scene.yaw, scene.pitch, scene.roll)
    names = list(geo)
    lengths = [len(geo[k]) for k in names]
    q = _project(np.concatenate([geo[k] for k in names]), rot, scene.cam_dist)
    lm_q = q[: lengths[0]]
    mid = (lm_q.min(0) + lm_q.max(0)) / 2
    shift = np.asarray(scene.centre) - px * mid
    p = q * px + shift
    parts = dict(zip(names, np.split(p, np.cumsum(lengths)[:-1])))
    lm = parts["landmarks"]

    # body: clothes rotate with a damped head pose
    body_rot = rotation(0.3 * scene.yaw, 0.2 * scene.pitch, 0.4 * scene.roll)
    clothes3d = np.array(
        [
            [-3.6, 7.0, -1.3],
            [-3.6, 3.9, -1.3],
            [-1.4, 3.3, -1.2],
            [0.0, 3.9, -1.0],
            [1.4, 3.3, -1.2],
            [3.6, 3.9, -1.3],
            [3.6, 7.0, -1.3],
        ]
    )
    clothes = _project(clothes3d, body_rot, scene.cam_dist) * px + shift

    background = _background(scene, rng)
    img = background.copy()
    skin = scene.skin
    hair = scene.hair if scene.hair_style != "bald" else _scaled(skin, 0.93)
    if scene.hair_style == "long":
        _fill(img, parts["long_hair"], _scaled(hair, 0.85))
    _fill(img, clothes, scene.clothes)
    _fill(img, parts["neck"], _scaled(skin, 0.72))
    skull = parts["skull"]
    if scene.hair_volume != 1.0:
        c = skull.mean(0)
        skull = c + (skull - c) * scene.hair_volume
    _fill(img, _hull(np.concatenate([skull, parts["face"]])), hair)
    for side in ("l", "r"):
        sd = -1 if side == "l" else 1
        nz = (rot @ np.array([0.87 * sd, 0.0, 0.5]))[2]
        if nz > -0.2 and scene.hair_style != "long":
            _fill(img, parts[f"ear_{side}"], _scaled(skin, 0.88))
            _stroke(img, parts[f"ear_{side}"], _scaled(skin, 0.7), round(0.03 * px), closed=True)

    # the face layer: skin, then features; blended into the image through the soft face mask
    under = img
    img = img.copy()
    face_hull = _hull(parts["face"])
    nose_hull = _hull(parts["nose_hull"])
    lips_outline = np.concatenate([parts["lip_ou"], parts["lip_ol"][::-1]])
    _fill(img, face_hull, skin)
    if scene.blush:
        layer = img.copy()
        for idx in ((4, 55), (28, 59)):
            c = lm[idx[0]] * 0.4 + lm[idx[1]] * 0.6
            cv2.ellipse(
                layer,
                tuple(int(v) for v in _fix(c)),
                (int(0.35 * px * 16), int(0.22 * px * 16)),
                0,
                0,
                360,
                (120.0, 90.0, 230.0),
                -1,
                cv2.LINE_AA,
                shift=4,
            )
        img = cv2.addWeighted(img, 0.75, layer, 0.25, 0)
    for side in ("l", "r"):
        if scene.eye_shadow is not None:
            # a band from the upper lid half-way up to the brow's lower edge (both sampled left to right)
            lid = parts[f"lid_{side}"]
            brow = parts[f"brow_{side}"]
            lower_brow = brow[len(brow) // 2 :]
            lower_brow = lower_brow[np.argsort(lower_brow[:, 0])]
            pick = np.linspace(0, len(lower_brow) - 1, len(lid)).round().astype(int)
            top = 0.45 * lid + 0.55 * lower_brow[pick]
            layer = img.copy()
            _fill(layer, np.concatenate([lid, top[::-1]]), scene.eye_shadow)
            img = cv2.addWeighted(img, 0.55, layer, 0.45, 0)
        _fill(img, parts[f"brow_{side}"], scene.brow_colour)
    for side, k in (("l", 0), ("r", 1)):
        _draw_eye(
            img,
            parts[f"eye_{side}"],
            parts[f"iris_{side}"],
            parts[f"pupil_{side}"],
            parts[f"lid_{side}"],
            scene,
            ex.eye_close[k],
            px,
        )

    # nose: a slightly lit hull, a dark line on the side it turns away from, nostrils and alar creases
    nose_col = _scaled(skin, 1.04)
    _fill(img, nose_hull, nose_col)
    shade = _scaled(skin, 0.72)
    thin = max(1, round(0.025 * px))
    if abs(scene.yaw) > 12:  # turned: the ridge is the nose's silhouette
        _stroke(img, lm[51:55], shade, thin)
    else:  # frontal: a highlight down the ridge and a soft shadow beside it
        far = 1 if scene.yaw > 0 else -1
        _stroke(img, lm[51:54] + [far * 0.09 * px, 0.0], _scaled(skin, 0.85), thin)
        _stroke(img, lm[51:54], _scaled(skin, 1.12), thin)
    for side in ("l", "r"):
        _fill(img, parts[f"nostril_{side}"], _scaled(skin, 0.3))
        _stroke(img, parts[f"crease_{side}"], shade, thin)
    _stroke(img, lm[55:60], shade, thin)

    # mouth: cavity and teeth, then lips over them
    cavity = np.concatenate([parts["lip_iu"], parts["lip_il"][::-1]])
    gap = float(np.max(parts["lip_il"][:, 1] - parts["lip_iu"][:, 1]))
    upper_lip = np.concatenate([parts["lip_ou"], parts["lip_iu"][::-1]])
    lower_lip = np.concatenate([parts["lip_il"], parts["lip_ol"][::-1]])
    if gap > 0.6:
        _fill(img, cavity, (35.0, 25.0, 60.0))
        teeth = np.concatenate([parts["lip_iu"], parts["lip_iu"][::-1] + [0.0, min(0.09 * px, 0.5 * gap)]])
        _fill(img, teeth, (215.0, 225.0, 230.0))
    _fill(img, upper_lip, _scaled(scene.lips, 0.92))
    _fill(img, lower_lip, scene.lips)
    _stroke(img, parts["lip_iu"], _scaled(scene.lips, 0.45), thin)

    mask = np.zeros((size, size), np.uint8)
    for poly in (face_hull, nose_hull, lips_outline):
        _fill(mask, poly, 255)
    x, y, w, h = cv2.boundingRect(mask)
    if w and h:  # blend only inside the face's bounding rectangle
        alpha = mask[y : y + h, x : x + w].astype(np.float32) * np.float32(1 / 255)
        roi = (slice(y, y + h), slice(x, x + w))
        under[roi] = cv2.blendLinear(img[roi], under[roi], alpha, 1 - alpha)
    img = under

    # occluders
    occ_mask = np.zeros((size, size), np.uint8)
    for occ in scene.occluders:
        shapes = _occluder_shape(occ, lm, px)
        for poly in shapes:
            _fill(img, poly, occ.colour)
            _fill(occ_mask, poly, 255, aa=False)
        if occ.kind in ("hand", "patch", "blob"):
            for poly in shapes:
                _stroke(img, poly, _scaled(occ.colour, 0.75), round(0.02 * px) + 1, closed=True)

    # visibility
    n = len(lm)
    inside = (lm[:, 0] >= 0) & (lm[:, 1] >= 0) & (lm[:, 0] <= size - 1) & (lm[:, 1] <= size - 1)
    ij = np.clip(np.round(lm).astype(int), 0, size - 1)
    occluded = inside & (occ_mask[ij[:, 1], ij[:, 0]] > 0)
    visible = inside & ~occluded
    tol = 0.04 * px + 0.5
    face32, nose32 = face_hull.astype(np.float32), nose_hull.astype(np.float32)
    for i in range(n):
        pt = (float(lm[i, 0]), float(lm[i, 1]))
        if i <= 32:  # contour: visible while it is on the face silhouette
            visible[i] &= cv2.pointPolygonTest(face32, pt, True) <= tol
        elif not 51 <= i <= 59 and cv2.pointPolygonTest(nose32, pt, False) > 0:
            visible[i] = False  # behind the nose
    for k, idx in ((0, 96), (1, 97)):  # pupils: hidden by a closed lid
        outline = parts["eye_l" if k == 0 else "eye_r"].astype(np.float32)
        if ex.eye_close[k] >= 0.97 or cv2.pointPolygonTest(outline, (float(lm[idx, 0]), float(lm[idx, 1])), False) < 0:
            visible[idx] = False
    nose_normals = np.array([[-0.7, 0.3, 0.65], [-0.3, 0.6, 0.75], [0.0, 0.6, 0.8], [0.3, 0.6, 0.75], [0.7, 0.3, 0.65]])
    visible[55:60] &= (nose_normals @ rot.T)[:, 2] > 0.0

    out = _apply_light(img, scene, np.asarray(scene.centre), px)
    out = _apply_blur(out, scene)
    if scene.noise > 0:
        out += rng.standard_normal((size, size, 1), dtype=np.float32) * np.float32(scene.noise)  # luminance
    out = np.clip(out, 0, 255, out=out).astype(np.uint8)
    if scene.grayscale:
        out = cv2.cvtColor(cv2.cvtColor(out, cv2.COLOR_BGR2GRAY), cv2.COLOR_GRAY2BGR)
    return Rendered(out, lm.astype(np.float32), visible, occluded, background, mask, px)


# ------------------------------------------------------------------------------------------- dataset


def image_rng(seed: int, split: str, index: int) -> np.random.Generator:
    """The generator of image ``index`` of ``split``: independent of every other image's."""
    return np.random.default_rng(np.random.SeedSequence([int(seed), SPLITS.index(split), int(index)]))


def to_layout(points: np.ndarray, schema: str) -> np.ndarray:
    """WFLW-98 per-point data (98, ...) in the ``schema`` layout (``wflw98`` or ``w300_68``)."""
    if schema == "wflw98":
        return points
    if schema == "w300_68":
        return points[WFLW_TO_300W]
    raise ValueError(f"the synthetic faces come in {', '.join(SCHEMAS)}, not {schema!r}")


def detector_box(landmarks: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """(4,) a detector-like face box: the landmark box grown by 8% of its longer side left/right/bottom
    and 20% at the top (the forehead), each side then moved by N(0, 3%) of that side."""
    x0, y0 = landmarks.min(0)
    x1, y1 = landmarks.max(0)
    m = max(x1 - x0, y1 - y0)
    box = np.array([x0 - 0.08 * m, y0 - 0.2 * m, x1 + 0.08 * m, y1 + 0.08 * m])
    return (box + rng.normal(0, 0.03 * m, 4)).astype(np.float32)


def make_example(seed: int, split: str, index: int, size: int = 256, schema: str = "wflw98"):
    """One image and its annotation.

    Returns:
        (image (S, S, 3) uint8 BGR, record dict with landmarks (N, 2) float32, visible (N,) bool,
        box (4,) float32, attributes, head_pose, scene).
    """
    rng = image_rng(seed, split, index)
    scene = sample_scene(rng, size)
    r = render_scene(scene)
    lm = to_layout(r.landmarks, schema)
    visible = to_layout(r.visible, schema)
    occluded = to_layout(r.occluded, schema)
    record = {
        "landmarks": lm,
        "visible": visible,
        "box": detector_box(lm, rng),
        "attributes": scene_attributes(scene, float(occluded.mean())),
        "head_pose": {"yaw": scene.yaw, "pitch": scene.pitch, "roll": scene.roll},
        "scene": scene,
    }
    return r.image, record


def _meta(schema: str, counts: dict[str, int], size: int, seed: int, image_format: str) -> dict:
    return {
        "generator": "awing.data.synthetic",
        "version": GENERATOR_VERSION,
        "schema": schema,
        "counts": counts,
        "size": int(size),
        "seed": int(seed),
        "image_format": image_format,
    }


def generate(
    root: str | Path,
    schema: str = "wflw98",
    n_train: int = 2000,
    n_val: int = 200,
    n_test: int = 200,
    size: int = 256,
    seed: int = 0,
    progress: bool = True,
    image_format: str = "jpg",
) -> Path:
    """Write a synthetic dataset under ``root`` (idempotent).

    Layout: ``root/images/{split}/{i:05d}.{jpg|png}`` (JPEG quality 95 or PNG),
    ``root/annotations_{split}.json`` (a list of ``{image, landmarks, visible, box, attributes,
    head_pose}``; ``image`` relative to root, points in pixels) and ``root/meta.json`` (schema, counts,
    size, seed, image format, generator version), written last. If ``meta.json`` already records these
    parameters nothing is done; otherwise the set is (re)written (the old images are removed first).
    Files are written atomically, so concurrent calls (several ranks on a fresh machine) are safe: they
    write identical bytes.

    Returns:
        ``root`` as a Path.
    """
    from tqdm import tqdm

    if schema not in SCHEMAS:
        raise ValueError(f"the synthetic faces come in {', '.join(SCHEMAS)}, not {schema!r}")
    if image_format not in ("jpg", "png"):
        raise ValueError(f"image_format must be jpg or png, not {image_format!r}")
    root = Path(root).expanduser()
    counts = {"train": int(n_train), "val": int(n_val), "test": int(n_test)}
    meta = _meta(schema, counts, size, seed, image_format)
    meta_path = root / "meta.json"
    if meta_path.is_file():
        try:
            if json.loads(meta_path.read_text()) == meta:
                return root
        except json.JSONDecodeError:
            pass
        meta_path.unlink(missing_ok=True)
        for old in (root / "images").glob("*/[0-9][0-9][0-9][0-9][0-9].*"):  # the previous set's images
            old.unlink(missing_ok=True)
    params = [cv2.IMWRITE_JPEG_QUALITY, 95] if image_format == "jpg" else [cv2.IMWRITE_PNG_COMPRESSION, 3]
    bar = tqdm(total=sum(counts.values()), desc=f"synthetic faces -> {root}", unit="img", disable=not progress)
    for split, count in counts.items():
        folder = root / "images" / split
        folder.mkdir(parents=True, exist_ok=True)
        records = []
        for i in range(count):
            image, rec = make_example(seed, split, i, size, schema)
            rel = f"images/{split}/{i:05d}.{image_format}"
            ok, buf = cv2.imencode(f".{image_format}", image, params)
            if not ok:
                raise OSError(f"could not encode {rel}")
            _write_atomic(root / rel, buf.tobytes())
            records.append(
                {
                    "image": rel,
                    "landmarks": np.round(rec["landmarks"].astype(np.float64), 3).tolist(),
                    "visible": [bool(v) for v in rec["visible"]],
                    "box": np.round(rec["box"].astype(np.float64), 3).tolist(),
                    "attributes": rec["attributes"],
                    "head_pose": {k: round(v, 3) for k, v in rec["head_pose"].items()},
                }
            )
            bar.update(1)
        _write_atomic(root / f"annotations_{split}.json", json.dumps(records).encode())
    bar.close()
    _write_atomic(meta_path, json.dumps(meta, indent=1).encode())
    return root


def _write_atomic(path: Path, data: bytes) -> None:
    """Write via a temporary file and a rename, so that a concurrent reader (another rank generating the
    same deterministic set) never sees a half-written file."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


__all__ = [
    "GENERATOR_VERSION",
    "WFLW_TO_300W",
    "ATTRIBUTE_KEYS",
    "Identity",
    "Expression",
    "Occluder",
    "Scene",
    "Rendered",
    "sample_scene",
    "frontal",
    "scene_attributes",
    "face_points",
    "rotation",
    "render_scene",
    "image_rng",
    "to_layout",
    "detector_box",
    "make_example",
    "generate",
]
