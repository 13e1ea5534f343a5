import pytest
import torch

from awing.method.losses import adaptive_wing_loss
from awing.method.model import available_architectures, create_model, model_spec
from awing.method.model.blocks import ConvBlock
from awing.method.model.coordconv import CoordConv, boundary_coordinate_channels, coordinate_channels
from awing.method.targets import render_targets
from awing.method.weights import weighted_loss_map


@pytest.mark.parametrize("stacks", [1, 2, 3, 4])
@pytest.mark.parametrize(
    "boundary,coordconv,bcoords",
    [(True, True, True), (False, False, False), (True, False, False), (False, True, False)],
)
def test_output_shapes(stacks, boundary, coordconv, bcoords):
    model = create_model(
        "awing-1hg-tiny",
        14,
        stacks=stacks,
        width=32,
        boundary=boundary,
        coordconv=coordconv,
        boundary_coords=bcoords,
    )
    out = model(torch.rand(2, 3, 128, 128))
    assert len(out) == stacks
    assert all(o.shape == (2, 14 + int(boundary), 32, 32) for o in out)


def test_256_to_64():
    model = create_model("awing-1hg", 5, width=32)
    assert model(torch.rand(1, 3, 256, 256))[0].shape == (1, 6, 64, 64)


def test_parameter_count_matches_fan_1_stack():
    n = sum(p.numel() for p in create_model("awing-1hg", 98).parameters())
    assert abs(n - 6.3e6) / 6.3e6 < 0.02


def test_invalid_specs_are_clear_errors():
    with pytest.raises(ValueError, match="unknown model"):
        create_model("resnet", 5)
    with pytest.raises(ValueError, match="boundary_coords"):
        model_spec("awing-1hg", 5, boundary=False)
    with pytest.raises(ValueError, match="multiple"):
        model_spec("awing-1hg", 5, input_size=100)
    assert "awing-4hg" in available_architectures()


def test_coordinate_channels_ranges_and_boundary_mask():
    c = coordinate_channels(1, 8, 8)
    assert (
        c[:, :2].min() == -1
        and c[:, :2].max() == 1
        and c[:, 2].min() >= 0
        and c[:, 2].max() == pytest.approx(1)
    )
    boundary = torch.zeros(1, 1, 8, 8)
    boundary[0, 0, 3, 5] = 0.2
    boundary[0, 0, 4, 5] = 0.01
    bc = boundary_coordinate_channels(c, boundary)
    assert bc[0, 0, 3, 5] == c[0, 0, 3, 5] and bc[0, 1, 3, 5] == c[0, 1, 3, 5]
    assert bc[0, :, 4, 5].abs().sum() == 0 and (bc != 0).sum() == 2


def test_second_stack_sees_the_first_stack_boundary():
    torch.manual_seed(0)
    model = create_model("awing-1hg-tiny", 3, stacks=2, width=32).eval()
    seen = {}
    model.coord_convs[1].register_forward_pre_hook(lambda m, args: seen.update(boundary=args[1]))
    out = model(torch.rand(1, 3, 128, 128))
    assert torch.equal(seen["boundary"], out[0][:, -1:])


def test_a_few_steps_reduce_the_loss_on_one_sample():
    torch.manual_seed(0)
    model = create_model("awing-1hg-tiny", 4, width=32, stacks=2)
    images = torch.rand(1, 3, 128, 128)
    pts = torch.tensor([[[8.0, 10.0], [20.0, 10.0], [14.0, 18.0], [14.0, 25.0]]])
    target, _ = render_targets(pts, (32, 32), torch.tensor([[0, 1], [2, 3]]))
    weights = weighted_loss_map(target)
    opt = torch.optim.RMSprop(model.parameters(), lr=1e-3)
    losses = []
    for _ in range(15):
        loss = sum(adaptive_wing_loss(o, target, weights) for o in model(images))
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0]


def test_boundary_coordinates_need_a_previous_stack():
    """CB feeds stack k the boundary map of stack k-1: with one stack it cannot change the model."""

    def build(stacks, bcoords):
        torch.manual_seed(0)
        return create_model("awing-1hg-tiny", 5, width=32, stacks=stacks, boundary_coords=bcoords).eval()

    x = torch.rand(1, 3, 128, 128)
    one_with, one_without = build(1, True), build(1, False)
    assert torch.equal(one_with(x)[-1], one_without(x)[-1])
    two_with, two_without = build(2, True), build(2, False)
    n_with = sum(p.numel() for p in two_with.parameters())
    assert n_with == sum(p.numel() for p in two_without.parameters()) + 2 * 32  # B_x, B_y into a 1x1 conv


@pytest.mark.parametrize("with_boundary,kernel", [(False, 7), (True, 1)])
def test_coordconv_equals_one_convolution_over_the_concatenated_channels(with_boundary, kernel):
    """CoordConv runs the coordinates' share of the convolution on a batch of one (it is the same for every
    image); the result must be the paper's conv(cat[x, x/y/r coords, boundary coords]) with the same weights."""
    torch.manual_seed(0)
    layer = CoordConv(4, 6, with_boundary=with_boundary, kernel_size=kernel, stride=2, padding=kernel // 2).double()
    x = torch.rand(3, 4, 16, 16, dtype=torch.float64)
    boundary = torch.rand(3, 1, 16, 16, dtype=torch.float64) * 0.1 if with_boundary else None
    coords = coordinate_channels(3, 16, 16, dtype=torch.float64)
    parts = [x, coords] + ([boundary_coordinate_channels(coords, boundary)] if with_boundary else [])
    expected = layer.conv(torch.cat(parts, dim=1))
    assert expected.shape == (3, 6, 8, 8)
    torch.testing.assert_close(layer(x, boundary), expected, rtol=0, atol=1e-12)


def test_coordconv_rejects_what_the_split_cannot_compute():
    with pytest.raises(ValueError, match="groups=1"):
        CoordConv(5, 4, kernel_size=3, groups=2)  # 5 + 3 coordinate channels: 2 groups of 4
    with pytest.raises(ValueError, match="zero padding"):
        CoordConv(4, 4, kernel_size=3, padding=1, padding_mode="reflect")


def test_light_stem_and_depth_3_give_quarter_resolution_heatmaps_without_a_half_resolution_block():
    model = create_model("awing-1hg-96", 68)
    assert (model.spec.input_size, model.spec.depth, model.spec.stem) == (96, 3, "light")
    assert model(torch.rand(2, 3, 96, 96))[0].shape == (2, 69, 24, 24)
    assert max(_block_resolutions(model, 96)) == 24
    assert max(_block_resolutions(create_model("awing-1hg-96", 68, stem="fan"), 96)) == 48  # its first block


def _block_resolutions(model, size: int) -> list[int]:
    """The input width of every ConvBlock call in one forward pass of a (1, 3, size, size) image."""
    seen: list[int] = []
    hooks = [m.register_forward_pre_hook(lambda m, args: seen.append(args[0].shape[-1]))
             for m in model.modules() if isinstance(m, ConvBlock)]
    model(torch.rand(1, 3, size, size))
    for hook in hooks:
        hook.remove()
    return seen


def test_stem_and_depth_are_checked():
    with pytest.raises(ValueError, match="stem must be one of fan, light"):
        model_spec("awing-1hg-tiny", 5, stem="resnet")
    with pytest.raises(ValueError, match="multiple of 32 for depth 3"):
        model_spec("awing-1hg-96", 5, input_size=80)


@pytest.mark.parametrize("stacks", [1, 2])
def test_heatmap_stride_2_gives_heatmaps_at_half_the_input_and_keeps_stride_4_unchanged(stacks):
    torch.manual_seed(0)
    model = create_model("awing-1hg-tiny", 5, width=32, stacks=stacks, heatmap_stride=2).eval()
    assert model.spec.heatmap_size == 64
    out = model(torch.rand(2, 3, 128, 128))
    assert [o.shape for o in out] == [(2, 6, 64, 64)] * stacks
    # the paper's stride adds nothing: the same weights, names and outputs as a model without the option
    torch.manual_seed(0)
    four = create_model("awing-1hg-tiny", 5, width=32, stacks=stacks, heatmap_stride=4).eval()
    torch.manual_seed(0)
    plain = create_model("awing-1hg-tiny", 5, width=32, stacks=stacks).eval()
    assert four.state_dict().keys() == plain.state_dict().keys()
    image = torch.rand(1, 3, 128, 128)
    assert torch.equal(four(image)[-1], plain(image)[-1])


def test_with_stride_2_the_second_stack_sees_the_first_stacks_boundary_pooled_to_its_grid():
    torch.manual_seed(0)
    model = create_model("awing-1hg-tiny", 3, stacks=2, width=32, heatmap_stride=2).eval()
    seen = {}
    model.coord_convs[1].register_forward_pre_hook(lambda m, args: seen.update(boundary=args[1]))
    out = model(torch.rand(1, 3, 128, 128))
    boundary = out[0][:, -1:]
    expected = (boundary[..., 0::2, 0::2] + boundary[..., 1::2, 0::2] + boundary[..., 0::2, 1::2]
                + boundary[..., 1::2, 1::2]) / 4
    assert seen["boundary"].shape == (1, 1, 32, 32)
    assert torch.allclose(seen["boundary"], expected, atol=1e-6)


def test_heatmap_stride_is_checked():
    with pytest.raises(ValueError, match=r"heatmap_stride must be one of \(4, 2\), got 8"):
        model_spec("awing-1hg-tiny", 5, heatmap_stride=8)
