"""Sub-pixel decoding: the quarter-pixel shift (Sec. 7.3) and the Taylor step on the log heatmap (DARK),
against exactly known Gaussian centres; the decoder stored in the codec; the flip test's average."""

import dataclasses

import numpy as np
import pytest
import torch

from awing.method.codec import HeatmapCodec, codec_from_dict
from awing.method.decode import dark_refine, decode_heatmaps, gaussian_blur
from awing.method.model import flip_average
from awing.method.targets import landmark_heatmaps


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
