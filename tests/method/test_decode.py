"""Sub-pixel decoding: the quarter-pixel shift (Sec. 7.3) and the Taylor step on the log heatmap (DARK),
against exactly known Gaussian centres; the decoder stored in the codec; the flip test's average; the
decoder registry; the window DARK decoder against the full-map reference, also on the shipped model's
heatmaps of real 300-W faces (skipped where ../shared/data is absent)."""

import dataclasses

import numpy as np
import pytest
import torch

from awing.method import decode
from awing.method.codec import HeatmapCodec, codec_from_dict
from awing.method.decode import (
    DECODERS,
    dark_refine,
    dark_refine_full,
    decode_heatmaps,
    describe_decoders,
    gaussian_blur,
    get_decoder,
    register_decoder,
)
from awing.method.model import flip_average
from awing.method.targets import landmark_heatmaps

from shared_data import SHARED, need


@pytest.mark.parametrize("size, sigma, radius, bound", [(64, 1.5, 3, 0.02), (32, 1.0, 2, 0.06)])
def test_dark_recovers_gaussian_centres_that_the_quarter_shift_misses(size, sigma, radius, bound):
    """A Gaussian is a paraboloid in log space, so one Newton step finds its centre; the quarter shift is
    off by up to a quarter pixel per axis."""
    points = 4 + (size - 8) * torch.rand(3, 40, 2, generator=torch.Generator().manual_seed(0))
    heat, _ = landmark_heatmaps(points, (size, size), sigma, radius)
    quarter, _ = decode_heatmaps(heat)
    dark, confidence = dark_refine(heat, sigma)
    assert (dark - points).abs().max() < bound
    assert (quarter - points).abs().max() > 0.2
    assert (dark - points).norm(dim=-1).mean() < 0.2 * (quarter - points).norm(dim=-1).mean()
    assert torch.equal(confidence, heat.flatten(2).amax(-1))  # the raw peak, as the quarter decoder's


def test_dark_keeps_the_quarter_point_where_it_cannot_step():
    """At the border (no two pixels on each side) and on a flat map there is no Taylor step."""
    heat, _ = landmark_heatmaps(torch.tensor([[[1.2, 20.0], [30.0, 30.0]]]), (32, 32), 1.0, 2)
    heat[0, 1] = 0.0  # flat: every Hessian entry is zero
    dark, _ = dark_refine(heat, 1.0)
    quarter, _ = decode_heatmaps(heat)
    assert torch.isfinite(dark).all()
    assert torch.equal(dark, quarter)


def test_gaussian_blur_keeps_mass_and_a_centred_peak():
    heat = torch.zeros(1, 1, 21, 21)
    heat[0, 0, 10, 10] = 1.0
    blurred = gaussian_blur(heat, 1.5)
    assert blurred.sum().item() == pytest.approx(1.0, abs=1e-5)
    assert blurred[0, 0].argmax().item() == 10 * 21 + 10
    assert torch.allclose(blurred, blurred.flip(-1)) and torch.allclose(blurred, blurred.transpose(-1, -2))


def test_the_codec_stores_its_decoder_and_older_codecs_read_as_quarter():
    codec = HeatmapCodec(input_size=256, heatmap_size=64, decoder="dark")
    assert codec_from_dict(codec.to_dict()).decoder == "dark"
    old = {k: v for k, v in codec.to_dict().items() if k != "decoder"}  # a checkpoint from before decoders
    assert codec_from_dict(old).decoder == "quarter"
    with pytest.raises(ValueError, match="decoder must be one of quarter, dark"):
        HeatmapCodec(input_size=256, heatmap_size=64, decoder="soft-argmax")


def test_the_dark_codec_decodes_crop_points_more_exactly_than_the_quarter_codec():
    quarter = HeatmapCodec(input_size=256, heatmap_size=64)
    dark = dataclasses.replace(quarter, decoder="dark")
    points = 30 + 190 * torch.rand(2, 20, 2, generator=torch.Generator().manual_seed(1))
    targets, _ = quarter.encode(points)
    error_q = (quarter.decode(targets)[0] - points).norm(dim=-1).mean()
    error_d = (dark.decode(targets)[0] - points).norm(dim=-1).mean()
    assert error_d < 0.1 < error_q  # crop pixels: a quarter heatmap pixel is one crop pixel at stride 4


def test_flip_average_of_an_equivariant_prediction_is_the_prediction():
    """If the mirrored image's heatmaps are the mirror of the image's with left and right channels
    swapped, the flip test changes nothing; a one-sided error is halved."""
    permutation = np.array([1, 0, 2])
    heat = torch.rand(2, 3, 8, 8, generator=torch.Generator().manual_seed(2))
    mirrored = heat.flip(-1)[:, torch.as_tensor(permutation)]
    assert torch.allclose(flip_average(heat, mirrored, permutation), heat)
    noisy = heat.clone()
    noisy[:, 0] += 1.0
    assert torch.allclose(flip_average(noisy, mirrored, permutation)[:, 0], heat[:, 0] + 0.5)


# ------------------------------------------------------------------- the decoder registry (#22)
def test_the_registry_names_the_decoders_and_the_codec_reads_it():
    assert list(DECODERS) == ["quarter", "dark"]
    assert get_decoder("dark") is DECODERS["dark"] and callable(DECODERS["quarter"])
    with pytest.raises(ValueError, match="decoder must be one of quarter, dark, got 'nope'"):
        get_decoder("nope")
    assert describe_decoders().startswith("quarter (") and " or dark (" in describe_decoders()


def test_a_registered_decoder_is_one_function_and_the_codec_uses_it():
    calls = []

    @register_decoder("test-centre", "the map's centre")
    def centre(heatmaps, *, sigma, shift, interior):
        calls.append((sigma, shift, interior))
        b, n, h, w = heatmaps.shape
        return torch.full((b, n, 2), (w - 1) / 2), heatmaps.flatten(2).amax(-1)

    try:
        codec = HeatmapCodec(input_size=64, heatmap_size=16, sigma=1.25, decoder="test-centre")
        points, _ = codec.decode(torch.rand(2, 3, 16, 16))
        assert torch.allclose(points, torch.full((2, 3, 2), 31.5))  # heatmap 7.5 -> crop (7.5 + 0.5) * 4 - 0.5
        assert calls == [(1.25, 0.25, "axis")]
        assert codec_from_dict(codec.to_dict()).decoder == "test-centre"
        assert "test-centre (the map's centre)" in describe_decoders()
        with pytest.raises(ValueError, match="already registered"):
            register_decoder("test-centre", "another")(lambda heatmaps, **fields: None)
    finally:
        DECODERS.pop("test-centre")
    with pytest.raises(ValueError, match="decoder must be one of"):
        HeatmapCodec(input_size=64, heatmap_size=16, decoder="test-centre")


def test_the_registry_decoders_are_the_functions_with_the_codec_fields():
    heat = torch.rand(2, 5, 16, 16, generator=torch.Generator().manual_seed(3))
    for interior in ("axis", "both"):
        got = DECODERS["quarter"](heat, sigma=1.0, shift=0.3, interior=interior)
        assert all(torch.equal(a, b) for a, b in zip(got, decode_heatmaps(heat, 0.3, interior), strict=True))
    got = DECODERS["dark"](heat, sigma=1.0, shift=0.3, interior="both")
    assert all(torch.equal(a, b) for a, b in zip(got, dark_refine(heat, 1.0, 0.3), strict=True))


# ------------------------------------------------- the argmax (first maximum, as torch.max)
@pytest.mark.parametrize("seed", [0, 1])
def test_the_argmax_is_torch_max_first_maximum_also_with_ties_and_nan(seed):
    rng = torch.Generator().manual_seed(seed)
    heat = torch.randint(0, 3, (3, 20, 9, 11), generator=rng).float()  # many ties
    heat[0, 0] = 0.0
    heat[1, 2, 4, 5] = heat[1, 2, 7, 1] = float("nan")
    b, n, h, w = heat.shape
    value, index = heat.reshape(b, n, h * w).max(-1)
    points, confidence = decode_heatmaps(heat, shift=0.0)
    assert torch.equal(points[..., 0], (index % w).float()) and torch.equal(points[..., 1], (index // w).float())
    assert torch.equal(confidence.nan_to_num(-1), value.nan_to_num(-1))


# ------------------------------------------- the window DARK decoder against the full-map one (#23)
def _assert_like_the_reference(heat: torch.Tensor, sigma: float, bound: float = 0.01) -> float:
    fast, confidence = dark_refine(heat, sigma)
    full, full_confidence = dark_refine_full(heat, sigma)
    assert fast.shape == full.shape and fast.dtype == full.dtype == torch.float32
    assert torch.isfinite(fast).all() and torch.equal(confidence, full_confidence)
    gap = (fast - full).norm(dim=-1).max().item()
    assert gap <= bound, gap
    return gap


@pytest.mark.parametrize("sigma", [1.0, 1.5, 2.0])
def test_window_dark_matches_the_full_map_one_at_borders_corners_and_on_flat_maps(sigma):
    size = 64
    edge = [0.0, 0.4, 1.0, 1.6, 2.0, 2.3, 3.0, 5.5]
    coords = edge + [size - 1 - v for v in edge] + [31.2]
    points = torch.tensor([[x, y] for x in coords for y in coords])[None]  # all corner and border mixes
    heat, _ = landmark_heatmaps(points, (size, size), sigma, 3)
    noisy = heat + 0.03 * torch.randn(heat.shape, generator=torch.Generator().manual_seed(4))
    flat = torch.zeros(2, 4, size, size)
    flat[1] = 0.5  # constant maps: argmax at (0, 0), no step
    flat[1, 3] = -1.0
    for maps in (heat, noisy, flat, noisy.clamp_min(0) * 1e-12):  # the last: values below the log's floor
        _assert_like_the_reference(maps, sigma)
    assert torch.equal(dark_refine(flat, sigma)[0], decode_heatmaps(flat)[0])


def test_window_dark_at_a_border_peak_or_on_an_empty_channel_is_the_quarter_point():
    centres = torch.tensor([[[0.4, 20.0], [63.0, 63.0], [20.0, 1.0], [30.0, 30.0]]])
    heat, _ = landmark_heatmaps(centres, (64, 64), 1.5, 3)
    heat[0, 3] = 0.0  # all zero
    dark, confidence = dark_refine(heat, 1.5)
    quarter, _ = decode_heatmaps(heat)
    assert torch.isfinite(dark).all() and torch.equal(dark, quarter)
    assert confidence[0, 3] == 0 and confidence[0, :3].min() > 0.5


def test_window_dark_leaves_a_channel_with_values_below_the_floor_to_the_full_map(monkeypatch):
    """Around a peak with negative neighbours the smoothed 3 x 3 dips below the log's floor, where the
    full map's rescale decides the step: that channel (only) is decoded by the reference."""
    heat, _ = landmark_heatmaps(torch.tensor([[[20.3, 30.6], [40.2, 12.7]]]), (64, 64), 1.5, 3)
    heat[0, 0, 29:33, 22:25] = -2.0  # negative right of the first peak: its smoothed 3 x 3 dips below 0
    expected = dark_refine_full(heat, 1.5)
    seen = []
    original = decode.dark_refine_full

    def spy(maps, sigma, shift):
        seen.append(maps.shape)
        return original(maps, sigma, shift)

    monkeypatch.setattr(decode, "dark_refine_full", spy)
    points, confidence = dark_refine(heat, 1.5)
    assert seen == [(1, 1, 64, 64)]
    assert torch.equal(points[0, 0], expected[0][0, 0]) and torch.equal(confidence, expected[1])
    assert torch.allclose(points, expected[0], atol=1e-4) and torch.isfinite(points).all()


def _real_heatmaps(faces: int = 6) -> tuple[torch.Tensor, torch.Tensor]:
    """The shipped 68-point model's heatmaps on real 300-W faces: one pass and the flip test's average,
    each (faces, 68, 64, 64)."""
    from benchmarks.decode import real_heatmaps

    need(SHARED / "w300" / "afw")
    return real_heatmaps(SHARED, faces), real_heatmaps(SHARED, faces, flip=True)


@pytest.fixture(scope="module")
def real_heatmaps() -> tuple[torch.Tensor, torch.Tensor]:
    return _real_heatmaps()


def test_window_dark_matches_the_full_map_one_on_the_shipped_models_real_heatmaps(real_heatmaps):
    for heat in real_heatmaps:  # one pass, and the flip test's average
        assert heat.shape[1:] == (68, 64, 64)
        assert _assert_like_the_reference(heat, 1.5, bound=1e-3) <= 1e-3
        assert (dark_refine(heat, 1.5)[0] != decode_heatmaps(heat)[0]).any()  # it does step
    codec = HeatmapCodec(input_size=256, heatmap_size=64, decoder="dark")
    points, _ = codec.decode(real_heatmaps[0])
    reference = codec.heatmap_to_crop(dark_refine_full(real_heatmaps[0], codec.sigma)[0])
    assert (points - reference).norm(dim=-1).max() < 0.01 * codec.stride
