import numpy as np
import pytest
import torch

from awing.method.codec import HeatmapCodec
from awing.method.decode import apply_affine, decode_heatmaps, invert_affine
from awing.method.targets import boundary_heatmap, landmark_heatmaps, render_targets
from awing.schemas import lines_as_segments, load_schema


def test_seven_by_seven_gaussian_is_1_2_percent_foreground():
    heat, mask = landmark_heatmaps(torch.tensor([[[31.3, 30.8]]]), (64, 64), sigma=1.5, radius=3)
    frac = (heat > 0).float().mean().item()
    assert frac == pytest.approx(49 / 4096) and round(100 * frac, 1) == 1.2
    assert mask.all() and heat.max() <= 1 and heat.min() >= 0


def test_gaussian_is_centred_at_the_sub_pixel_point():
    point = torch.tensor([[[20.3, 11.7]]])
    heat, _ = landmark_heatmaps(point, (32, 32), sigma=1.5)
    ys, xs = torch.meshgrid(torch.arange(32.0), torch.arange(32.0), indexing="ij")
    h = heat[0, 0]
    centre = torch.stack([(h * xs).sum() / h.sum(), (h * ys).sum() / h.sum()])
    assert torch.allclose(centre, point[0, 0], atol=0.05)  # truncation barely biases the centroid
    assert h[12, 20] == pytest.approx(float(np.exp(-(0.3**2 + 0.3**2) / (2 * 1.5**2))), rel=1e-5)


def test_missing_and_outside_points_give_empty_masked_channels():
    pts = torch.tensor([[[5.0, 5.0], [float("nan"), 3.0], [70.0, 10.0], [-3.0, 2.0]]])
    heat, mask = landmark_heatmaps(pts, (64, 64))
    assert mask.tolist() == [[True, False, False, False]]
    assert heat[0, 1:].abs().sum() == 0 and heat[0, 0].sum() > 0


def test_boundary_is_one_on_the_line_and_cut_at_three_sigma():
    pts = torch.tensor([[[10.0, 20.0], [40.0, 20.0]]])
    seg = torch.tensor([[0, 1]])
    b = boundary_heatmap(pts, seg, (64, 64), sigma=1.0)
    assert b.shape == (1, 1, 64, 64)
    assert b[0, 0, 20, 10:41].min().item() == pytest.approx(1.0)
    assert b[0, 0, 22, 25].item() == pytest.approx(float(np.exp(-2.0)), rel=1e-5)  # d = 2
    assert b[0, 0, 23, 25].item() == 0.0  # d = 3 is cut
    assert b[0, 0, 20, 45].item() == 0.0  # past the end point by 5


def test_boundary_merges_lines_by_max_and_ignores_missing_points():
    schema = load_schema("w300_68")
    segs = torch.as_tensor(lines_as_segments(schema))
    assert len(schema.boundary_lines) == 13
    pts = torch.rand(2, 68, 2) * 50 + 7
    full = boundary_heatmap(pts, segs, (64, 64))
    pts_missing = pts.clone()
    pts_missing[:, 36:48] = float("nan")  # the eyes
    partial = boundary_heatmap(pts_missing, segs, (64, 64))
    assert torch.isfinite(partial).all() and (partial <= full + 1e-6).all() and partial.sum() < full.sum()
    targets, mask = render_targets(pts, (64, 64), segs)
    assert targets.shape == (2, 69, 64, 64) and mask.shape == (2, 69) and torch.equal(targets[:, -1:], full)


def test_decoding_recovers_sub_pixel_points_within_quarter_pixel_scheme():
    torch.manual_seed(0)
    pts = torch.rand(4, 10, 2) * 50 + 7
    heat, _ = landmark_heatmaps(pts, (64, 64), sigma=1.5)
    decoded, conf = decode_heatmaps(heat)
    err = (decoded - pts).abs()
    assert err.max() <= 0.25 + 1e-5  # nearest pixel + quarter shift: at most 1/4 px per axis
    assert (err < (pts - pts.round()).abs() + 1e-6).float().mean() > 0.5  # the shift usually helps
    assert conf.shape == (4, 10) and (conf > 0.8).all()


def test_decode_no_shift_at_the_border():
    heat = torch.zeros(1, 1, 8, 8)
    heat[0, 0, 0, 7] = 1.0
    heat[0, 0, 1, 7] = 0.5
    pts, _ = decode_heatmaps(heat)
    assert pts.tolist() == [[[7.0, 0.0]]]


def test_crop_heatmap_round_trip_and_inverse_affine_exact():
    codec = HeatmapCodec(input_size=256, heatmap_size=64)
    pts = torch.rand(3, 5, 2, dtype=torch.float64) * 100
    assert codec.stride == 4.0
    assert torch.allclose(codec.heatmap_to_crop(codec.crop_to_heatmap(pts)), pts)
    assert codec.heatmap_to_crop(torch.tensor([0.0])).item() == 1.5  # heatmap pixel 0 covers crop 0..3
    angle = 0.3
    m = torch.tensor(
        [
            [
                [np.cos(angle) * 1.7, -np.sin(angle) * 1.7, 12.0],
                [np.sin(angle) * 1.7, np.cos(angle) * 1.7, -4.0],
            ]
        ]
        * 3,
        dtype=torch.float64,
    )
    back = apply_affine(apply_affine(pts, m), invert_affine(m))
    assert torch.allclose(back, pts, atol=1e-10)
    # heatmap -> image: forward through the crop and the stride lands on the same heatmap point
    crop_pts = apply_affine(pts, m)
    assert torch.allclose(codec.to_image(crop_pts, m), pts, atol=1e-9)


def test_decode_interior_rule_axis_vs_both():
    """A peak on the top row with a larger right neighbour: awing shifts x (x is interior), the authors'
    rule (interior on both axes) does not."""
    heat = torch.zeros(1, 1, 8, 8)
    heat[0, 0, 0, 3], heat[0, 0, 0, 4], heat[0, 0, 0, 2] = 1.0, 0.6, 0.2
    assert decode_heatmaps(heat)[0].tolist() == [[[3.25, 0.0]]]
    assert decode_heatmaps(heat, interior="both")[0].tolist() == [[[3.0, 0.0]]]
    with pytest.raises(ValueError, match="interior"):
        decode_heatmaps(heat, interior="edge")


def boundary_by_brute_force(points, segments, size, sigma=1.0, cutoff=3.0):
    """Every pixel against every segment in plain numpy: exp(-d^2 / 2 sigma^2) of the nearest, cut at
    cutoff * sigma; segments with a missing end point are left out."""
    h, w = size
    out = np.zeros((points.shape[0], h, w))
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float64)
    for b, pts in enumerate(points.astype(np.float64)):
        nearest = np.full((h, w), np.inf)
        for i, j in segments:
            a, e = pts[i], pts[j]
            if not (np.isfinite(a).all() and np.isfinite(e).all()):
                continue
            d = e - a
            t = np.clip(((xs - a[0]) * d[0] + (ys - a[1]) * d[1]) / max(d @ d, 1e-12), 0, 1)
            nearest = np.minimum(nearest, np.hypot(xs - a[0] - t * d[0], ys - a[1] - t * d[1]))
        out[b] = np.exp(-(nearest**2) / (2 * sigma**2)) * (nearest < cutoff * sigma)
    return out


@pytest.mark.parametrize("size, sigma", [((64, 64), 1.0), ((32, 48), 1.5)])
def test_windowed_boundary_equals_every_pixel_against_every_segment(size, sigma):
    """The windowed drawing against the definition, with lines that leave the grid and a missing point."""
    schema = load_schema("w300_68")
    segments = lines_as_segments(schema)
    gen = np.random.default_rng(0)
    points = gen.uniform(-8, max(size) + 8, (3, 68, 2))
    points[1, 40] = np.nan
    got = boundary_heatmap(torch.as_tensor(points), torch.as_tensor(segments), size, sigma)[:, 0].numpy()
    np.testing.assert_allclose(got, boundary_by_brute_force(points, segments, size, sigma), atol=1e-5)


def test_invert_affine_matches_the_general_inverse_and_round_trips():
    torch.manual_seed(0)
    m = torch.randn(4, 3, 2, 3, dtype=torch.float64)  # any batch shape
    full = torch.cat([m, torch.tensor([0.0, 0.0, 1.0], dtype=torch.float64).expand(4, 3, 1, 3)], dim=-2)
    torch.testing.assert_close(invert_affine(m), torch.linalg.inv(full)[..., :2, :], rtol=1e-12, atol=1e-12)
    pts = torch.randn(4 * 3, 7, 2, dtype=torch.float64)
    flat = m.reshape(-1, 2, 3)
    torch.testing.assert_close(apply_affine(apply_affine(pts, flat), invert_affine(flat)), pts)
