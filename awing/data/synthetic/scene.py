"""Scene sampling: every random decision behind one image, as plain data.

:func:`image_rng` gives image ``index`` of ``split`` its own generator, seeded ``(seed, split, index)``;
:func:`sample_scene` draws from it, in a fixed order, the person (:class:`~.geometry.Identity`), the
:class:`~.geometry.Expression`, the pose and placement, the colours and make-up, the background,
:class:`Occluder` objects, the lighting, blur and noise, and returns a frozen :class:`Scene`. Nothing
here draws pixels (that is :mod:`.render`); :func:`scene_attributes` reads WFLW's six flags off a scene.

Units: angles in degrees, ``scale`` in pixels per face unit, occluder offsets and sizes in face units,
colours BGR in 0..255.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from awing.data.synthetic.geometry import Expression, Identity

SPLITS = ("train", "val", "test")
ATTRIBUTE_KEYS = ("pose", "expression", "illumination", "make-up", "occlusion", "blur")

# Attribute thresholds (the flags are exactly these tests on the scene, see scene_attributes).
POSE_YAW, POSE_PITCH = 40.0, 25.0  # degrees
EXPR_MOUTH, EXPR_SMILE, EXPR_FROWN, EXPR_BROW, EXPR_EYE = 0.45, 0.6, -0.4, 0.6, 0.7  # Expression values
ILLUM_GRADIENT, ILLUM_DARK, ILLUM_BRIGHT = 0.5, 0.6, 1.45  # light_strength; gain below / above
BLUR_SIGMA, BLUR_MOTION = 1.5, 6.0  # pixels at 256x256 (scaled with the image size)
OCCLUSION_FRACTION = 0.1  # of the layout's points covered by occluders


def image_rng(seed: int, split: str, index: int) -> np.random.Generator:
    """The generator of image ``index`` of ``split`` (one of :data:`SPLITS`): independent of every other
    image's, so any image can be regenerated alone, in any order or process."""
    return np.random.default_rng(np.random.SeedSequence([int(seed), SPLITS.index(split), int(index)]))


# ------------------------------------------------------------------------------------------ the data


#: Occluder anchors: name -> indices of the WFLW-98 points whose mean places an occluder.
ANCHORS = {
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


@dataclasses.dataclass(frozen=True)
class Occluder:
    """One object in front of the face, placed relative to a landmark group.

    ``anchor`` names a point group (see :data:`ANCHORS`) whose mean is the occluder's centre before
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


# -------------------------------------------------------------------------------------------- sampling


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
    anchor = str(rng.choice(list(ANCHORS)))
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

    The draws happen in a fixed order, and :func:`~.example.make_example` goes on drawing the box
    jitter from the same ``rng``: reordering anything here changes every image of every set.

    Args:
        rng: the image's generator (see :func:`image_rng`).
        size: output image side, pixels.
    Returns:
        The scene; ``scale`` is pixels per face unit (0.095 .. 0.15 of ``size``), ``centre`` pixels.
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
    """The same scene as a neutral, frontal, unoccluded, evenly lit, sharp face centred in the image
    (for tests and figures); identity, colours, scale and background are kept."""
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
    """WFLW's six 0/1 attribute flags for a scene: ``{key: 0 or 1}`` for each of :data:`ATTRIBUTE_KEYS`.

    Args:
        occluded_fraction: share (0 .. 1) of the layout's points covered by occluders (the mean of
            :attr:`~.render.Rendered.occluded` in that layout).
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
