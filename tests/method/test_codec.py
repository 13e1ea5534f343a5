"""The heatmap codec: encode -> decode recovers crop points, frames, storage in checkpoints."""

import pytest
import torch

from awing.method.codec import CODECS, HeatmapCodec, build_codec, codec_from_dict
from awing.method.model import create_model
from awing.schemas import lines_as_segments, load_schema


@pytest.mark.parametrize("input_size, heatmap_size", [(256, 64), (128, 32)])
def test_encode_then_decode_recovers_crop_points_within_a_quarter_heatmap_pixel(input_size, heatmap_size):
    codec = HeatmapCodec(input_size=input_size, heatmap_size=heatmap_size, sigma=1.5, radius=3)
    torch.manual_seed(0)
    points = torch.rand(3, 9, 2) * (input_size - 40) + 20  # crop pixels
    targets, mask = codec.encode(points)
    assert targets.shape == (3, 9, heatmap_size, heatmap_size) and mask.all()
    decoded, confidence = codec.decode(targets)
    # nearest heatmap pixel + the quarter shift: at most a quarter heatmap pixel per axis, in crop pixels
    assert (decoded - points).abs().max() <= 0.25 * codec.stride + 1e-4
    assert confidence.shape == (3, 9) and (confidence > 0.7).all()


def test_a_missing_point_gives_an_unsupervised_zero_channel_and_the_boundary_channel_is_last_and_masked_with_it():
    schema = load_schema("w300_68")
    codec = HeatmapCodec(input_size=256, heatmap_size=64)
    points = torch.rand(2, 68, 2) * 150 + 50
    points[1, 5] = float("nan")
    targets, mask = codec.encode(points, torch.as_tensor(lines_as_segments(schema)))
    assert targets.shape == (2, 69, 64, 64) and mask.shape == (2, 69)
    assert not mask[1, 5] and targets[1, 5].abs().sum() == 0
    assert mask[:, -1].tolist() == [True, False]  # point 5 is on the contour line: face 1's boundary is incomplete
    assert targets[:, -1].amax() > 0.9  # the boundary channel is drawn


def test_codec_round_trips_through_its_dict_and_is_built_from_the_model_spec():
    model = create_model("awing-1hg-small", 14)
    codec = build_codec(model.spec)
    assert (codec.input_size, codec.heatmap_size, codec.stride) == (128, 32, 4.0)
    assert codec_from_dict(codec.to_dict()) == codec
    assert "gaussian" in CODECS


@pytest.mark.parametrize(
    "data, message",
    [({"name": "nope", "input_size": 64, "heatmap_size": 16}, "unknown heatmap codec"),
     ({"input_size": 64, "heatmap_size": 16, "sigmaa": 1}, "sigmaa"),
     ({"input_size": 64, "heatmap_size": 16, "sigma": 0}, "sigma")],
)
def test_bad_codec_dicts_are_clear_errors(data, message):
    with pytest.raises(ValueError, match=message):
        codec_from_dict(data)
