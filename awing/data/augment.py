"""Training augmentation (Sec. 7.3): one random affine warp plus photometric noise.

Geometry: rotation (+-50 deg), translation (+-25 px at 256 px input, scaled with the input size),
rescaling (+-15 %) and a horizontal flip (50 %) are drawn by :func:`random_affine_params` and composed
with the face crop into ONE matrix (:func:`awing.data.crop.crop_matrix`), so the image is interpolated
once. A flip also permutes landmark indices with ``schema.flip_permutation``: after mirroring, point
``i`` takes the coordinates of its partner, so "left eye" remains the eye on the left of the image.

Photometric ops (:func:`photometric`) act on the uint8 crop: occlusion patches, brightness/contrast
jitter, Gaussian blur and Gaussian noise, each applied with its probability from
:class:`~awing.core.config.AugmentConfig`. Every random draw comes from the ``numpy.random.Generator``
passed in, so results are reproducible and worker-safe.
"""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

from awing.core.config import AugmentConfig
from awing.data.crop import crop_matrix, transform_points, warp_image

__all__ = [
    "random_affine_params",
    "jitter_square",
    "flip_indices",
    "warp_sample",
    "gaussian_blur",
    "gaussian_noise",
    "random_occlusion",
    "colour_jitter",
    "photometric",
]


def random_affine_params(rng: np.random.Generator, cfg: AugmentConfig, input_size: int) -> dict:
    """Random geometric augmentation, as keyword arguments of :func:`~awing.data.crop.crop_matrix`.

    Returns:
        ``{"rotation_deg": U(-r, r), "scale": U(1 - s, 1 + s), "shift": (tx, ty) each
        U(-t, t) * input_size / 256 output pixels, "flip": bernoulli(cfg.flip)}``.
    """
    t = float(cfg.translation) * float(input_size) / 256.0
    rotation = float(rng.uniform(-cfg.rotation, cfg.rotation))
    scale = float(rng.uniform(1.0 - cfg.scale, 1.0 + cfg.scale))
    tx, ty = (float(v) for v in rng.uniform(-t, t, size=2))
    flip = bool(rng.random() < cfg.flip)
    return {"rotation_deg": rotation, "scale": scale, "shift": (tx, ty), "flip": flip}


def jitter_square(
    rng: np.random.Generator, cfg: AugmentConfig, center: Sequence[float], side: float, box_side: float
) -> tuple[tuple[float, float], float]:
    """The crop square moved and resized the way detector boxes frame faces (``cfg.box_scale``,
    ``cfg.box_shift``; GitHub issue 13, ``benchmarks/framing.py``).

    Args:
        center, side: the crop square (:func:`~awing.data.crop.face_square`).
        box_side: the face box's longer side before enlarging, the unit of ``box_shift``.
    Returns:
        ``((cx, cy), side)``: ``side x exp(U(log lo, log hi))`` and the centre shifted by
        ``U(-s, s) x box_side`` per axis. With both options off: the inputs unchanged, and nothing is drawn
        from ``rng`` (so the other augmentation draws stay as they were).
    """
    cx, cy = float(center[0]), float(center[1])
    side = float(side)
    if cfg.box_scale is not None:
        lo, hi = (float(v) for v in cfg.box_scale)
        if hi > lo:
            side *= float(np.exp(rng.uniform(np.log(lo), np.log(hi))))
        else:
            side *= lo
    if cfg.box_shift:
        dx, dy = (float(v) for v in rng.uniform(-cfg.box_shift, cfg.box_shift, size=2))
        cx, cy = cx + dx * float(box_side), cy + dy * float(box_side)
    return (cx, cy), side


def flip_indices(arr: np.ndarray, flip_permutation: np.ndarray) -> np.ndarray:
    """Reorder per-point rows after a mirror: row ``i`` takes row ``flip_permutation[i]`` (its partner)."""
    return np.asarray(arr)[np.asarray(flip_permutation)]


def warp_sample(
    image: np.ndarray,
    landmarks: np.ndarray,
    visible: np.ndarray,
    center: Sequence[float],
    side: float,
    out_size: int,
    flip_permutation: np.ndarray,
    params: dict | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Crop (and geometrically augment) one face with a single warp.

    Args:
        image: (H, W[, C]) original image.
        landmarks: (N, 2) original-image points, NaN for missing.
        visible: (N,) bool.
        center, side: the crop square (:func:`~awing.data.crop.square_box`).
        out_size: S.
        flip_permutation: (N,) ``schema.flip_permutation``, used if ``params["flip"]``.
        params: :func:`random_affine_params` output; None for a plain crop.
    Returns:
        ``(crop (S, S[, C]), points (N, 2) float64 crop pixels, visible (N,) bool, M (2, 3))``; points
        and visibility are index-permuted if the crop was flipped. ``M`` itself maps original point
        ``j`` to where the mirrored image shows it; ``points[i] = M @ landmarks[flip_permutation[i]]``.
    """
    params = params or {}
    m = crop_matrix(center, side, out_size, **params)
    crop = warp_image(image, m, out_size)
    points = transform_points(landmarks, m)
    visible = np.asarray(visible, dtype=bool)
    if params.get("flip", False):
        points = flip_indices(points, flip_permutation)
        visible = flip_indices(visible, flip_permutation)
    return crop, points, visible, m


# --------------------------------------------------------------------------------------------------
# Photometric ops: uint8 (H, W[, C]) in, same shape and dtype out.


def gaussian_blur(image: np.ndarray, rng: np.random.Generator, sigma: tuple[float, float] = (0.5, 2.0)) -> np.ndarray:
    """Gaussian blur, sigma ~ U(sigma) pixels at 256 px, scaled with the image size."""
    factor = max(image.shape[:2]) / 256.0
    s = max(float(rng.uniform(*sigma)) * factor, 0.3)
    return cv2.GaussianBlur(image, (0, 0), s).reshape(image.shape)


def gaussian_noise(image: np.ndarray, rng: np.random.Generator, sigma: tuple[float, float] = (3.0, 15.0)) -> np.ndarray:
    """Additive per-pixel, per-channel Gaussian noise of std ~ U(sigma) grey levels."""
    s = np.float32(rng.uniform(*sigma))
    noise = rng.standard_normal(image.shape, dtype=np.float32)
    noise *= s
    noise += image
    return np.clip(noise, 0, 255, out=noise).astype(np.uint8)


def random_occlusion(
    image: np.ndarray, rng: np.random.Generator, size: tuple[float, float] = (0.1, 0.4), max_patches: int = 2
) -> np.ndarray:
    """1..max_patches rectangles of sides ~ U(size) x image size, filled with a random colour or noise."""
    out = image.copy()
    h, w = image.shape[:2]
    channels = image.shape[2:]
    for _ in range(int(rng.integers(1, max_patches + 1))):
        ph = max(1, int(round(rng.uniform(*size) * h)))
        pw = max(1, int(round(rng.uniform(*size) * w)))
        y0 = int(rng.integers(0, h - ph + 1))
        x0 = int(rng.integers(0, w - pw + 1))
        if rng.random() < 0.5:
            fill = rng.integers(0, 256, size=channels, dtype=np.uint8)
        else:
            fill = rng.integers(0, 256, size=(ph, pw) + channels, dtype=np.uint8)
        out[y0 : y0 + ph, x0 : x0 + pw] = fill
    return out


def colour_jitter(
    image: np.ndarray,
    rng: np.random.Generator,
    brightness: float = 32.0,
    contrast: float = 0.3,
    channel_gain: float = 0.1,
) -> np.ndarray:
    """Brightness (+-brightness grey levels), contrast (x U(1 -+ contrast)) and per-channel gain jitter.

    One lookup table per channel: ``clip(gain_c * (contrast * (v - 128) + 128 + brightness))``.
    """
    a = float(rng.uniform(1.0 - contrast, 1.0 + contrast))
    b = float(rng.uniform(-brightness, brightness))
    channels = image.shape[2] if image.ndim == 3 else 1
    gains = rng.uniform(1.0 - channel_gain, 1.0 + channel_gain, size=channels)
    v = np.arange(256, dtype=np.float64)
    tables = np.clip(gains[None, :] * (a * (v[:, None] - 128.0) + 128.0 + b), 0, 255)
    tables = np.rint(tables).astype(np.uint8)
    if channels == 1:
        return cv2.LUT(image, tables[:, 0]).reshape(image.shape)
    if channels <= 4:
        return cv2.LUT(image, tables.reshape(1, 256, channels))
    return tables[image, np.arange(channels)]


def photometric(image: np.ndarray, rng: np.random.Generator, cfg: AugmentConfig) -> np.ndarray:
    """Occlusion, colour jitter, blur and noise, each with its probability from ``cfg``, in that order.

    The occluder is part of the scene (so it is blurred and noised too); blur and noise model the camera.
    """
    if rng.random() < cfg.occlusion:
        image = random_occlusion(image, rng)
    if rng.random() < cfg.colour:
        image = colour_jitter(image, rng)
    if rng.random() < cfg.blur:
        image = gaussian_blur(image, rng)
    if rng.random() < cfg.noise:
        image = gaussian_noise(image, rng)
    return image
