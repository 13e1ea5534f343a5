import numpy as np
import pytest

from awing.core.config import AugmentConfig
from awing.data.augment import (
    colour_jitter,
    flip_indices,
    gaussian_blur,
    gaussian_noise,
    photometric,
    random_affine_params,
    random_occlusion,
    warp_sample,
)
from awing.data.crop import square_box, transform_points, warp_image
from awing.schemas import load_schema

SCHEMA = load_schema("fdd14")

# a frontal fdd14 face in a 200 x 160 image: left/right as seen in the image
FACE = np.array(
    [
        [60, 50],
        [85, 48],
        [115, 48],
        [140, 50],  # brows: left outer, left inner, right inner, right outer
        [62, 65],
        [72, 64],
        [82, 65],
        [118, 65],
        [128, 64],
        [138, 65],  # eyes
        [100, 90],  # nose tip
        [78, 115],
        [100, 112],
        [122, 115],  # mouth: left corner, upper lip centre, right corner
    ],
    dtype=np.float64,
)


def _blob_image(point, shape=(160, 200), sigma=1.6):
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    g = 255 * np.exp(-((xx - point[0]) ** 2 + (yy - point[1]) ** 2) / (2 * sigma**2))
    img = np.zeros(shape + (3,), np.uint8)
    img[..., 1] = g.astype(np.uint8)  # green dot on black
    return img


def test_random_affine_params_ranges():
    rng = np.random.default_rng(0)
    cfg = AugmentConfig()
    draws = [random_affine_params(rng, cfg, 128) for _ in range(2000)]
    rot = np.array([d["rotation_deg"] for d in draws])
    scale = np.array([d["scale"] for d in draws])
    shift = np.array([d["shift"] for d in draws])
    flips = np.array([d["flip"] for d in draws])
    assert -50 <= rot.min() < -45 and 45 < rot.max() <= 50
    assert 0.85 <= scale.min() < 0.87 and 1.13 < scale.max() <= 1.15
    # +-25 px at 256 input -> +-12.5 px at 128, each axis independently
    assert np.abs(shift).max() <= 12.5 and np.abs(shift).max() > 12.0
    assert abs(np.corrcoef(shift[:, 0], shift[:, 1])[0, 1]) < 0.1
    assert 0.45 < flips.mean() < 0.55
    none = AugmentConfig(rotation=0, translation=0, scale=0, flip=0)
    d = random_affine_params(rng, none, 256)
    assert d == {"rotation_deg": 0.0, "scale": 1.0, "shift": (0.0, 0.0), "flip": False}


def test_flip_permutation_keeps_left_on_the_left():
    cx, cy, side = square_box([50, 40, 150, 125])
    vis = np.ones(14, bool)
    vis[3] = False  # right brow outer occluded
    _, pts, v, _ = warp_sample(
        np.zeros((160, 200, 3), np.uint8), FACE, vis, (cx, cy), side, 64, SCHEMA.flip_permutation
    )
    _, fpts, fv, _ = warp_sample(
        np.zeros((160, 200, 3), np.uint8),
        FACE,
        vis,
        (cx, cy),
        side,
        64,
        SCHEMA.flip_permutation,
        {"flip": True},
    )
    names = SCHEMA.point_names
    left, right = names.index("left_eye_outer"), names.index("right_eye_outer")
    assert fpts[left, 0] < fpts[right, 0]  # still on the left after mirroring
    assert pts[left, 0] < pts[right, 0]
    # flipped point i = mirror of its partner
    np.testing.assert_allclose(fpts[left], [63 - pts[right, 0], pts[right, 1]], atol=1e-9)
    np.testing.assert_allclose(fpts[10], [63 - pts[10, 0], pts[10, 1]], atol=1e-9)  # nose: no partner
    assert not fv[0] and fv[3]  # the visibility flag travels with the point


def test_flip_twice_is_identity():
    rng = np.random.default_rng(3)
    img = rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)
    pts = rng.uniform(0, 63, (14, 2))
    pts[5] = np.nan
    vis = rng.random(14) < 0.7
    perm = SCHEMA.flip_permutation
    ctr, side = (31.5, 31.5), 64
    a_img, a_pts, a_vis, _ = warp_sample(img, pts, vis, ctr, side, 64, perm, {"flip": True})
    np.testing.assert_array_equal(a_img, img[:, ::-1])  # a single flip is a mirror ...
    assert not np.allclose(np.nan_to_num(a_pts), np.nan_to_num(pts))  # ... that moves and reorders points
    b_img, b_pts, b_vis, _ = warp_sample(a_img, a_pts, a_vis, ctr, side, 64, perm, {"flip": True})
    np.testing.assert_array_equal(b_img, img)
    np.testing.assert_allclose(b_pts, pts, atol=1e-9)  # NaN where NaN (index 5 -> 8 -> 5)
    np.testing.assert_array_equal(b_vis, vis)
    np.testing.assert_array_equal(flip_indices(flip_indices(np.arange(14), perm), perm), np.arange(14))


@pytest.mark.parametrize("seed", range(4))
def test_dots_land_on_transformed_landmarks(seed):
    """A dot drawn at each original landmark ends where the augmented crop says the landmark is."""
    rng = np.random.default_rng(seed)
    cfg = AugmentConfig()
    size = 96
    params = random_affine_params(rng, cfg, size)
    params["flip"] = seed % 2 == 0  # both branches, with rotation
    params["rotation_deg"] = float(rng.choice([-1, 1]) * rng.uniform(20, 50))
    cx, cy, side = square_box([55, 40, 145, 125], enlarge=0.1)
    vis = np.ones(14, bool)
    _, pts, _, m = warp_sample(
        np.zeros((160, 200, 3), np.uint8), FACE, vis, (cx, cy), side, size, SCHEMA.flip_permutation, params
    )
    perm = SCHEMA.flip_permutation if params["flip"] else np.arange(14)
    inside = ((pts >= 2) & (pts <= size - 3)).all(axis=1)
    assert inside.sum() >= 10
    for i in np.flatnonzero(inside):
        src = FACE[perm[i]]  # the original landmark whose coordinates point i now holds
        crop = warp_image(_blob_image(src), m, size)
        y, x = np.unravel_index(np.argmax(crop[..., 1]), crop.shape[:2])
        assert abs(x - pts[i, 0]) <= 1 and abs(y - pts[i, 1]) <= 1, (i, (x, y), pts[i])
    # same answer through warp_sample's own image path (the image is warped by warp_sample itself)
    j = int(np.flatnonzero(inside)[0])
    crop, pts2, _, _ = warp_sample(
        _blob_image(FACE[perm[j]]), FACE, vis, (cx, cy), side, size, SCHEMA.flip_permutation, params
    )
    y, x = np.unravel_index(np.argmax(crop[..., 1]), crop.shape[:2])
    assert abs(x - pts2[j, 0]) <= 1 and abs(y - pts2[j, 1]) <= 1
    np.testing.assert_allclose(pts2, pts)
    np.testing.assert_allclose(transform_points(FACE[perm], m), pts, atol=1e-9)


@pytest.mark.parametrize("op", [gaussian_blur, gaussian_noise, random_occlusion, colour_jitter])
def test_photometric_ops_keep_shape_and_dtype_and_change_pixels(op):
    rng = np.random.default_rng(0)
    img = np.zeros((64, 64, 3), np.uint8)
    img[16:48, 16:48] = 200
    img[24:40, 24:40] = 60
    out = op(img.copy(), rng)
    assert out.shape == img.shape and out.dtype == np.uint8
    assert (out != img).mean() > 0.01
    gray = op(img[..., 0].copy(), rng)
    assert gray.shape == (64, 64) and gray.dtype == np.uint8


def test_photometric_probabilities():
    rng = np.random.default_rng(0)
    img = np.random.default_rng(1).integers(0, 256, (48, 48, 3), dtype=np.uint8)
    off = AugmentConfig(blur=0, noise=0, occlusion=0, colour=0)
    np.testing.assert_array_equal(photometric(img, rng, off), img)
    on = AugmentConfig(blur=1, noise=1, occlusion=1, colour=1)
    out = photometric(img, rng, on)
    assert out.shape == img.shape and out.dtype == np.uint8 and (out != img).mean() > 0.5
    # reproducible from the generator's seed
    a = photometric(img, np.random.default_rng(7), on)
    b = photometric(img, np.random.default_rng(7), on)
    np.testing.assert_array_equal(a, b)


def test_blur_noise_and_occlusion_change_the_crop_but_never_the_points(synthetic_root):
    """Photometric augmentation (the paper's blur, noise and occlusion patches, and colour) is drawn after
    the geometry from the item's generator: on the same item it changes pixels only, so the points, and the
    heatmap targets made from them, match the geometric augmentation alone."""
    from awing.data.dataset import LandmarkDataset
    from awing.data.readers import read_dataset

    samples = read_dataset("synthetic", synthetic_root, "train")[:3]
    geometric = AugmentConfig(rotation=50, blur=0, noise=0, occlusion=0, colour=0)
    everything = AugmentConfig(rotation=50, blur=1, noise=1, occlusion=1, colour=1)
    plain, full = (
        LandmarkDataset(samples, "wflw98", 64, augment=a, train=True, seed=3) for a in (geometric, everything)
    )
    for i in range(len(samples)):
        a, b = plain[i], full[i]
        np.testing.assert_array_equal(np.asarray(a["points"]), np.asarray(b["points"]))
        assert (np.asarray(a["image"]) != np.asarray(b["image"])).mean() > 0.3
