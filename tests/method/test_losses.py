import math

import pytest
import torch

from awing.method.losses import HeatmapLoss, adaptive_wing_loss, build_loss, l1_loss, mse_loss, wing_loss
from awing.method.weights import baseline_loss_map, build_loss_weights, loss_map_mask, weighted_loss_map

ALPHA, OMEGA, EPS, THETA = 2.1, 14.0, 1.0, 0.5


def awing_by_hand(y: float, y_hat: float) -> float:
    """Eq. 3 written out in plain Python floats."""
    d, p = abs(y - y_hat), ALPHA - y
    if d < THETA:
        return OMEGA * math.log(1 + (d / EPS) ** p)
    a = OMEGA * (1 / (1 + (THETA / EPS) ** p)) * p * ((THETA / EPS) ** (p - 1)) * (1 / EPS)
    c = THETA * a - OMEGA * math.log(1 + (THETA / EPS) ** p)
    return a * d - c


def aw(y, y_hat, **kw):
    return adaptive_wing_loss(
        torch.tensor([y_hat], dtype=torch.float64),
        torch.tensor([y], dtype=torch.float64),
        reduction="sum",
        **kw,
    ).item()


@pytest.mark.parametrize("y,y_hat", [(0.0, 0.1), (0.0, 0.7), (1.0, 0.9), (1.0, 0.2), (0.5, 0.5), (0.3, -2.0)])
def test_awing_matches_equation(y, y_hat):
    assert aw(y, y_hat) == pytest.approx(awing_by_hand(y, y_hat), rel=1e-5, abs=1e-6)


def test_awing_hand_value_at_foreground_pixel():
    # y=1, y_hat=0.9: 14 * ln(1 + 0.1 ** 1.1)
    assert aw(1.0, 0.9) == pytest.approx(14 * math.log(1 + 0.1**1.1), rel=1e-5)


@pytest.mark.parametrize("y", [0.0, 0.5, 1.0])
def test_awing_value_and_slope_continuous_at_theta(y):
    h = 1e-5
    at = aw(y, y - THETA)
    left, right = aw(y, y - (THETA - h)), aw(y, y - (THETA + h))
    assert left == pytest.approx(at, abs=1e-3) and right == pytest.approx(at, abs=1e-3)
    slope_left = (at - aw(y, y - (THETA - 2 * h))) / (2 * h)
    slope_right = (aw(y, y - (THETA + 2 * h)) - at) / (2 * h)
    assert slope_left == pytest.approx(slope_right, abs=1e-4 * max(1.0, abs(slope_left)))


def _grad(y: float, y_hat: float) -> float:
    pred = torch.tensor([y_hat], dtype=torch.float64, requires_grad=True)
    adaptive_wing_loss(pred, torch.tensor([y], dtype=torch.float64), reduction="sum").backward()
    return pred.grad.item()


def test_small_errors_pull_harder_on_foreground_than_background():
    # Fig. 4-5: Wing-like near y=1, MSE-like near y=0
    g_fg, g_bg = abs(_grad(1.0, 0.99)), abs(_grad(0.0, 0.01))
    assert g_fg > 10 * g_bg
    assert abs(_grad(0.0, 0.001)) < abs(_grad(0.0, 0.01))  # background influence fades to 0 like MSE


def test_awing_gradcheck_float64():
    torch.manual_seed(0)
    target = torch.rand(2, 3, 4, 4, dtype=torch.float64)
    pred = (target + 0.8 * torch.randn_like(target)).requires_grad_()
    weight = torch.rand_like(target) + 0.5
    assert torch.autograd.gradcheck(lambda p: adaptive_wing_loss(p, target, weight), (pred,))


@pytest.mark.parametrize("fn", [adaptive_wing_loss, wing_loss, mse_loss, l1_loss])
def test_finite_values_and_gradients_under_fuzzed_inputs(fn):
    torch.manual_seed(1)
    target = torch.rand(4096)
    target[:100] = 0.0
    target[100:200] = 1.0
    pred = torch.cat([torch.randn(3000) * 1e4, target[3000:]])  # includes huge errors and pred == y exactly
    pred = pred.clone().requires_grad_()
    loss = fn(pred, target)
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(pred.grad).all()


def test_awing_is_fp32_under_bf16_autocast():
    pred = torch.rand(2, 5, 8, 8).bfloat16()
    target = torch.rand(2, 5, 8, 8)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        loss = adaptive_wing_loss(pred, target)
    assert loss.dtype == torch.float32


@pytest.mark.parametrize("bad", [1.1, 1.2, 5.0])
def test_awing_rejects_targets_at_or_above_alpha_minus_one_with_their_range(bad):
    target = torch.zeros(4)
    target[0] = bad
    with pytest.raises(ValueError, match=rf"alpha - 1 = 1\.1.*\[0, {bad:g}\]"):
        adaptive_wing_loss(torch.zeros(4), target)


def test_awing_accepts_heatmaps_that_leave_the_unit_range_by_rounding():
    target = torch.tensor([1 + 1e-6, -1e-3, 0.5, 0.0])  # bicubic resampling overshoots a little
    loss = adaptive_wing_loss(target.clone(), target, reduction="none")
    assert torch.isfinite(loss).all() and loss.abs().max() < 1e-6


@pytest.mark.parametrize("name, params, named", [
    ("awing", {"epsilon": 0.0}, "epsilon"), ("awing", {"theta": -0.5}, "theta"), ("awing", {"omega": 0}, "omega"),
    ("awing", {"alpha": 2.0}, "alpha"), ("awing", {"omega": "abc"}, "omega"), ("wing", {"epsilon": 0}, "epsilon"),
    ("awing", {"theta": float("nan")}, "theta"),
])
def test_parameters_that_make_a_loss_undefined_are_errors(name, params, named):
    with pytest.raises(ValueError, match=named):
        build_loss(name, **params)


def test_empty_tensors_are_a_clear_error():
    with pytest.raises(ValueError, match="empty"):
        adaptive_wing_loss(torch.zeros(0, 3), torch.zeros(0, 3))


def test_wing_matches_equation_and_is_continuous_at_omega():
    c = 10 - 10 * math.log(1 + 10 / 2)
    pred = torch.tensor([0.0, 0.0], dtype=torch.float64)
    target = torch.tensor([3.0, 12.0], dtype=torch.float64)
    out = wing_loss(pred, target, reduction="none")
    assert out[0].item() == pytest.approx(10 * math.log(1 + 3 / 2))
    assert out[1].item() == pytest.approx(12 - c)
    near = wing_loss(torch.tensor([0.0, 0.0]), torch.tensor([10 - 1e-4, 10 + 1e-4]), reduction="none")
    assert near[0].item() == pytest.approx(near[1].item(), abs=1e-3)


def test_reductions_and_weights():
    pred, target = torch.zeros(2, 3), torch.full((2, 3), 0.5)
    w = torch.tensor([[1.0, 0.0, 2.0], [1.0, 1.0, 1.0]])
    assert mse_loss(pred, target, w, "sum").item() == pytest.approx(0.25 * 6)
    assert l1_loss(pred, target, reduction="mean").item() == pytest.approx(0.5)
    assert mse_loss(pred, target, reduction="none").shape == (2, 3)
    with pytest.raises(ValueError, match="reduction"):
        mse_loss(pred, target, reduction="avg")
    with pytest.raises(ValueError, match="shape"):
        mse_loss(pred, target[:, :2])


def test_build_loss_by_name_and_parameter_checks():
    loss = build_loss("awing", theta=0.3)
    assert isinstance(loss, HeatmapLoss) and loss.params["theta"] == 0.3 and loss.params["omega"] == 14.0
    pred, target = torch.rand(1, 2, 4, 4), torch.rand(1, 2, 4, 4)
    assert loss(pred, target).item() == pytest.approx(adaptive_wing_loss(pred, target, theta=0.3).item())
    with pytest.raises(ValueError, match="unknown loss"):
        build_loss("huber")
    with pytest.raises(ValueError, match="no parameter"):
        build_loss("mse", theta=0.5)


def test_weighted_loss_map_on_hand_made_target():
    target = torch.zeros(1, 1, 5, 5)
    target[0, 0, 2, 2] = 1.0
    target[0, 0, 0, 4] = 0.1  # too faint to count even after dilation
    mask = loss_map_mask(target)
    expected = torch.zeros(5, 5)
    expected[1:4, 1:4] = 1.0  # 3x3 dilation of the peak
    assert torch.equal(mask[0, 0], expected)
    weights = weighted_loss_map(target, weight=10)
    assert weights[0, 0, 2, 2] == 11 and weights[0, 0, 1, 1] == 11 and weights[0, 0, 0, 0] == 1
    assert baseline_loss_map(target, 10)[0, 0, 0, 4].item() == pytest.approx(2.0)
    assert build_loss_weights(target, "none") is None
    with pytest.raises(ValueError):
        build_loss_weights(target, "fancy")


def awing_slope_by_hand(y: float, y_hat: float) -> float:
    """d AWing / d y_hat of Eq. 3 in plain floats: sign(y_hat - y) * (the log branch's or A)."""
    d, p = abs(y - y_hat), ALPHA - y
    if d < THETA:
        g = OMEGA * p * (d / EPS) ** (p - 1) / (EPS * (1 + (d / EPS) ** p))
    else:
        g = OMEGA * (1 / (1 + (THETA / EPS) ** p)) * p * ((THETA / EPS) ** (p - 1)) * (1 / EPS)
    return math.copysign(g, y_hat - y) if d > 0 else 0.0


@pytest.mark.parametrize("y,y_hat", [(0.0, 0.1), (0.0, 0.7), (1.0, 0.9), (1.0, 0.2), (0.5, 0.5), (0.3, -2.0)])
def test_awing_gradient_is_the_equations_derivative(y, y_hat):
    """The closed-form gradient of the fast path against the derivative of Eq. 3 written by hand."""
    pred = torch.tensor([y_hat], dtype=torch.float64, requires_grad=True)
    adaptive_wing_loss(pred, torch.tensor([y], dtype=torch.float64), reduction="sum").backward()
    assert pred.grad.item() == pytest.approx(awing_slope_by_hand(y, y_hat), rel=1e-6, abs=1e-9)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_awing_fast_path_equals_autograd_through_the_equation(dtype):
    """Values and gradients of the closed-form path equal autograd through Eq. 3 on heatmap-like
    tensors (zero errors, both branches, a weight map), and a target that needs a gradient gets one."""
    from awing.method.losses import adaptive_wing_reference

    gen = torch.Generator().manual_seed(0)
    target = torch.rand(3, 4, 16, 16, generator=gen, dtype=dtype) ** 6
    pred = (target + 0.6 * torch.randn(target.shape, generator=gen, dtype=dtype))
    pred[0, 0] = target[0, 0]  # exact hits: zero error, zero gradient
    weight = weighted_loss_map(target)
    fast_pred = pred.clone().requires_grad_()
    ref_pred = pred.clone().requires_grad_()
    fast = adaptive_wing_loss(fast_pred, target, weight)
    ref = (adaptive_wing_reference(ref_pred, target, ALPHA, OMEGA, EPS, THETA) * weight).mean()
    fast.backward()
    ref.backward()
    tol = 1e-6 if dtype == torch.float32 else 1e-12
    assert fast.item() == pytest.approx(ref.item(), rel=tol)
    assert torch.allclose(fast_pred.grad, ref_pred.grad, rtol=tol * 10, atol=tol * 1e-3)
    assert (fast_pred.grad[0, 0] == 0).all()
    moving = target.clone().requires_grad_()
    adaptive_wing_loss(pred, moving).backward()
    assert moving.grad is not None and torch.isfinite(moving.grad).all()


@pytest.mark.parametrize("channels_last", [False, True])
def test_awing_on_heatmaps_that_are_zero_almost_everywhere_equals_the_equation(channels_last):
    """Real targets: Gaussians in a few 7x7 windows, exact zeros elsewhere (the fast path computes the zeros
    with one exponent and the rest per element), predictions in the model's channels_last layout or not."""
    from awing.method.losses import adaptive_wing_reference
    from awing.method.targets import landmark_heatmaps

    gen = torch.Generator().manual_seed(1)
    points = torch.rand(2, 5, 2, generator=gen) * 28 + 2
    target, _ = landmark_heatmaps(points, (32, 32))
    assert 0.9 < float((target == 0).float().mean()) < 1.0
    pred = target + 0.3 * torch.randn(target.shape, generator=gen)
    pred[:, :, :4] = 2.0  # errors above theta on the background too
    if channels_last:
        pred = pred.contiguous(memory_format=torch.channels_last)
    weight = weighted_loss_map(target)
    fast_pred, ref_pred = pred.clone().requires_grad_(), pred.clone().requires_grad_()
    fast = adaptive_wing_loss(fast_pred, target, weight, reduction="none")
    ref = adaptive_wing_reference(ref_pred, target, ALPHA, OMEGA, EPS, THETA) * weight
    assert torch.allclose(fast, ref, rtol=1e-5, atol=1e-6)
    fast.sum().backward()
    ref.sum().backward()
    assert torch.allclose(fast_pred.grad, ref_pred.grad, rtol=1e-5, atol=1e-6)


def test_grey_dilation_equals_max_pooling():
    from awing.method.weights import grey_dilation_3x3

    images = torch.randn(2, 3, 9, 7, generator=torch.Generator().manual_seed(0))
    assert torch.equal(grey_dilation_3x3(images), torch.nn.functional.max_pool2d(images, 3, 1, 1))
