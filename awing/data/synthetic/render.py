"""Rasterisation: a :class:`~.scene.Scene` to pixels, points and visibility, deterministically.

:func:`render_scene` poses and projects the face parts of :func:`~.geometry.face_parts`, then draws
with OpenCV (anti-aliased, 1/16-pixel fixed point) in this order: background texture, long hair,
clothes, neck, hair silhouette, ears; then the face layer (skin, blush, eye shadow, brows, eyes, nose,
mouth), blended in through the face mask; then occluders; then lighting, blur, sensor noise and the
grey-scale conversion. Every landmark is a sample of one of the part curves, and each part is drawn as
a filled region or a stroke through exactly those curves, so each point sits on a visible image edge
(eyelid/sclera, brow/skin, lip/skin, skin/background) unless something hides it.

Visibility: a point is flagged not visible when an occluder covers it, it falls outside the image, a
contour point is no longer on the face silhouette (self-occlusion at large yaw), a point lies behind the
nose, or a pupil is hidden by a closed lid. Like WFLW, hidden points are still annotated.

Units: pixels, with pixel centres at integer coordinates; images are (S, S, 3) uint8 BGR.
"""

from __future__ import annotations

import dataclasses
import math

import cv2
import numpy as np

from awing.data.synthetic.geometry import face_parts, project, rotation
from awing.data.synthetic.scene import ANCHORS, Occluder, Scene

# ------------------------------------------------------------------------------------------ drawing


def _fix(pts: np.ndarray) -> np.ndarray:
    """Pixel points as OpenCV fixed-point (4 fractional bits) int32."""
    return np.round(np.asarray(pts) * 16).astype(np.int32)


def _fill(img, pts, colour, aa: bool = True) -> None:
    """Fill the polygon ``pts`` (M, 2) pixels in ``img`` (H, W[, C]) in place; anti-aliased unless ``aa`` is False."""
    cv2.fillPoly(img, [_fix(pts)], colour, cv2.LINE_AA if aa else cv2.LINE_8, shift=4)


def _stroke(img, pts, colour, thickness: int, closed: bool = False) -> None:
    """Draw the polyline ``pts`` (M, 2) pixels, ``thickness`` pixels (at least 1), anti-aliased, in place."""
    cv2.polylines(img, [_fix(pts)], closed, colour, max(1, int(thickness)), cv2.LINE_AA, shift=4)


def _hull(pts: np.ndarray) -> np.ndarray:
    """(K, 2) float32 convex hull of (M, 2) points."""
    return cv2.convexHull(pts.astype(np.float32)).reshape(-1, 2)


def _scaled(c, f: float) -> tuple[float, float, float]:
    """Colour ``c`` (0..255 per channel) times ``f``, capped at 255."""
    return tuple(float(min(255.0, v * f)) for v in c)


def _ramp(size: int, angle: float, origin=(0.0, 0.0), unit: float = 1.0) -> np.ndarray:
    """(S, S) float32 ((x - ox) cos a + (y - oy) sin a) / unit over the pixel grid; ``angle`` radians."""
    r = np.arange(size, dtype=np.float32)
    return (r[None, :] - origin[0]) * (math.cos(angle) / unit) + (r[:, None] - origin[1]) * (math.sin(angle) / unit)


def _background(scene: Scene, rng: np.random.Generator) -> np.ndarray:
    """(S, S, 3) uint8 background texture of ``scene.background``, drawn from ``rng`` (the texture seed)."""
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
    """Polygons of one occluder, each (M, 2) pixels, given the projected WFLW points ``lm`` (98, 2)
    pixels and ``px`` pixels per face unit."""
    centre = lm[list(ANCHORS[occ.anchor])].mean(axis=0) + np.asarray(occ.offset) * px
    ang = math.radians(occ.angle)
    rotm = np.array([[math.cos(ang), -math.sin(ang)], [math.sin(ang), math.cos(ang)]])
    if occ.kind in ("patch", "bar"):
        l, w = occ.size[0] * px / 2, occ.size[1] * px / 2
        return [centre + np.array([[-l, -w], [l, -w], [l, w], [-l, w]]) @ rotm.T]
    if occ.kind == "blob":
        rng = np.random.default_rng(occ.seed)
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
    """Exposure, white balance, a brightness gradient and an optional hard shadow.

    ``img`` (S, S, 3) uint8 in, (S, S, 3) float32 out (not clipped); ``centre`` (2,) pixels, where the
    gradient is 1; ``px`` pixels per face unit.
    """
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
    """The scene's Gaussian or motion blur of (S, S, 3) float32 ``img`` (amounts scaled by S / 256)."""
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
    """Draw a scene. Deterministic: the same scene gives the same pixels and points (the background
    texture and the sensor noise come from ``scene.texture_seed``)."""
    rng = np.random.default_rng(scene.texture_seed)
    size, px = scene.size, scene.scale
    idn, ex = scene.identity, scene.expression
    geo = face_parts(idn, ex)
    rot = rotation(scene.yaw, scene.pitch, scene.roll)
    names = list(geo)
    lengths = [len(geo[k]) for k in names]
    q = project(np.concatenate([geo[k] for k in names]), rot, scene.cam_dist)
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
    clothes = project(clothes3d, body_rot, scene.cam_dist) * px + shift

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
