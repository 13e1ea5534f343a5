import cv2
import numpy as np
import pytest

from awing.data.crop import (
    crop_matrix,
    square_box,
    transform_points,
    warp_image,
)
from awing.data.sample import landmark_box


def test_square_box_by_hand():
    # w = 100, h = 50 -> the longer side, centred on the box centre
    assert square_box([10, 20, 110, 70]) == (60.0, 45.0, 100.0)
    cx, cy, side = square_box([10, 20, 110, 70], enlarge=0.1)  # WFLW: +10% on both dimensions
    assert (cx, cy) == (60.0, 45.0)
    assert side == pytest.approx(110.0)
    # taller than wide
    assert square_box(np.array([0, 0, 30, 80], np.float32), enlarge=0.25) == (15.0, 40.0, 100.0)
    with pytest.raises(ValueError):
        square_box([5, 5, 5, 5])
    with pytest.raises(ValueError):
        square_box([0, 0, np.nan, 4])


def test_landmark_box_ignores_missing():
    pts = np.array([[3, 4], [np.nan, np.nan], [10, 1], [7, 9]], np.float32)
    np.testing.assert_array_equal(landmark_box(pts), [3, 1, 10, 9])
    with pytest.raises(ValueError):
        landmark_box(np.full((3, 2), np.nan))


def test_crop_matrix_maps_square_edges_to_pixel_edges():
    s, side, c = 64, 200.0, (120.0, 80.0)
    m = crop_matrix(c, side, s)
    src = np.array([[c[0], c[1]], [c[0] - side / 2, c[1] - side / 2], [c[0] + side / 2, c[1] + side / 2]])
    np.testing.assert_allclose(transform_points(src, m), [[31.5, 31.5], [-0.5, -0.5], [63.5, 63.5]], atol=1e-12)


def test_crop_matrix_components():
    s = 100
    ctr = ((s - 1) / 2, (s - 1) / 2)
    # rotation has cv2.getRotationMatrix2D's sign (positive: counter-clockwise on screen)
    np.testing.assert_allclose(
        crop_matrix(ctr, s, s, rotation_deg=30, scale=1.2), cv2.getRotationMatrix2D(ctr, 30, 1.2), atol=1e-12
    )
    # a point right of the centre moves up (smaller y) under a positive rotation
    p = transform_points(np.array([[ctr[0] + 10, ctr[1]]]), crop_matrix(ctr, s, s, rotation_deg=90))
    np.testing.assert_allclose(p, [[ctr[0], ctr[1] - 10]], atol=1e-12)
    # shift is in output pixels, applied after scaling
    m = crop_matrix((10.0, 10.0), 50, s, scale=2.0, shift=(3, -4))
    np.testing.assert_allclose(transform_points(np.array([[10.0, 10.0]]), m), [[ctr[0] + 3, ctr[1] - 4]])
    # flip mirrors about the crop's vertical centre line
    m = crop_matrix((10.0, 10.0), 50, s, flip=True)
    np.testing.assert_allclose(transform_points(np.array([[15.0, 12.0]]), m), [[ctr[0] - 10, ctr[1] + 4]])


@pytest.mark.parametrize("seed", range(5))
def test_round_trip_is_exact(seed):
    rng = np.random.default_rng(seed)
    m = crop_matrix(
        rng.uniform(0, 500, 2),
        rng.uniform(50, 400),
        int(rng.choice([64, 128, 256])),
        rotation_deg=rng.uniform(-50, 50),
        scale=rng.uniform(0.85, 1.15),
        flip=bool(seed % 2),
        shift=rng.uniform(-25, 25, 2),
    )
    pts = rng.uniform(-100, 600, (3, 7, 2))
    pts[0, 2] = np.nan
    back = transform_points(transform_points(pts, m), cv2.invertAffineTransform(m))
    assert np.isnan(back[0, 2]).all() and np.isnan(transform_points(pts, m)[0, 2]).all()
    pts[0, 2] = back[0, 2] = 0
    np.testing.assert_allclose(back, pts, rtol=0, atol=1e-9)


def test_transform_points_batched_matrices():
    rng = np.random.default_rng(0)
    ms = np.stack([crop_matrix((50, 50), 100, 64, rotation_deg=a) for a in (0, 20)])
    pts = rng.uniform(0, 100, (2, 5, 2))
    out = transform_points(pts, ms)
    for b in range(2):
        np.testing.assert_allclose(out[b], transform_points(pts[b], ms[b]))


def test_identity_crop_and_mirror_are_exact():
    rng = np.random.default_rng(1)
    img = rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)
    ctr = (15.5, 15.5)
    np.testing.assert_array_equal(warp_image(img, crop_matrix(ctr, 32, 32), 32), img)
    np.testing.assert_array_equal(warp_image(img, crop_matrix(ctr, 32, 32, flip=True), 32), img[:, ::-1])
    gray = img[:, :, :1]
    assert warp_image(gray, crop_matrix(ctr, 32, 32), 32).shape == (32, 32, 1)
    assert warp_image(img[:, :, 0], crop_matrix(ctr, 32, 32), 32).shape == (32, 32)


def _blob(shape, x, y, sigma):
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    return (255 * np.exp(-((xx - x) ** 2 + (yy - y) ** 2) / (2 * sigma**2))).astype(np.uint8)


@pytest.mark.parametrize("antialias", [True, False])
def test_strong_downscale_keeps_points(antialias):
    # a face box 6x larger than the crop: the pyramid path must keep the geometry exact
    src = (437.3, 291.8)
    img = _blob((600, 800), *src, sigma=6.0)
    m = crop_matrix((400, 300), 384, 64, rotation_deg=20)
    out = warp_image(img, m, 64, antialias=antialias)
    assert out.shape == (64, 64) and out.dtype == np.uint8
    y, x = np.unravel_index(np.argmax(out), out.shape)
    expected = transform_points(np.array([src]), m)[0]
    assert abs(x - expected[0]) <= 1 and abs(y - expected[1]) <= 1


def test_antialias_matches_plain_warp_on_a_ramp_and_handles_outside():
    # Gaussian filtering and bilinear interpolation both reproduce a linear ramp exactly, so the
    # pyramid path must agree with the plain warp to float precision away from the image border.
    yy, xx = np.mgrid[:300, :400].astype(np.float32)
    img = np.stack([0.6 * xx + 0.3 * yy, 0.2 * xx - 0.5 * yy + 200, 0.1 * yy + 0.4 * xx], -1)
    m = crop_matrix((190, 140), 200, 40, rotation_deg=17, shift=(1.3, -0.7))
    a = warp_image(img, m, 40, antialias=True)
    b = warp_image(img, m, 40, antialias=False)
    assert np.abs(a - b).max() < 0.15  # warpAffine resolves 1/32 pixel
    far = warp_image(img, crop_matrix((5000, 5000), 400, 48), 48)
    assert far.shape == (48, 48, 3) and not far.any()
