"""Heatmap regression losses: Adaptive Wing (Eq. 3), Wing (Eq. 2), MSE and L1.

Every loss is a pure function ``loss(pred, target, weight=None, reduction="mean", **params)`` on
tensors of any shape (typically ``(B, C, H, W)`` heatmaps with pixel values in [0, 1]); ``weight``
broadcasts against them (a Weighted Loss Map, a channel mask, or both multiplied). Losses are always
computed in float32 (float64 inputs stay float64), also under bf16/fp16 autocast.
:func:`build_loss` makes an ``nn.Module`` by name.
"""

from __future__ import annotations

import functools
import inspect
import math
from collections.abc import Callable

import torch
import torch.nn as nn

Reduction = str  # "mean" | "sum" | "none"


def _reduce(loss: torch.Tensor, weight: torch.Tensor | None, reduction: Reduction) -> torch.Tensor:
    if weight is not None:
        loss = loss * weight.to(loss.dtype)
    if reduction == "mean":
        return loss.mean()
    if reduction == "sum":
        return loss.sum()
    if reduction == "none":
        return loss
    raise ValueError(f"reduction must be 'mean', 'sum' or 'none', got {reduction!r}")


def _fp32(pred: torch.Tensor, target: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    if pred.numel() == 0:
        raise ValueError(f"empty prediction (shape {tuple(pred.shape)}): a loss needs at least one element")
    if pred.shape != target.shape:
        raise ValueError(
            f"prediction shape {tuple(pred.shape)} does not match target shape {tuple(target.shape)}"
        )
    dtype = torch.promote_types(torch.promote_types(pred.dtype, target.dtype), torch.float32)
    return pred.to(dtype), target.to(dtype)  # fp16/bf16 -> fp32; float64 stays (gradcheck)


def elementwise_loss(fn: Callable[..., torch.Tensor]) -> Callable[..., torch.Tensor]:
    """Turn ``fn(pred, target, **params) -> per-element loss`` into a loss with the common signature
    ``loss(pred, target, weight=None, reduction="mean", **params)``, computed in fp32 outside autocast."""

    @functools.wraps(fn)
    def loss(
        pred: torch.Tensor,
        target: torch.Tensor,
        weight: torch.Tensor | None = None,
        reduction: Reduction = "mean",
        **params,
    ) -> torch.Tensor:
        with torch.autocast(device_type=pred.device.type, enabled=False):
            pred, target = _fp32(pred, target)
            return _reduce(fn(pred, target, **params), weight, reduction)

    return loss


@elementwise_loss
def adaptive_wing_loss(
    pred: torch.Tensor,
    target: torch.Tensor,
    alpha: float = 2.1,
    omega: float = 14.0,
    epsilon: float = 1.0,
    theta: float = 0.5,
    check_target: bool = True,
) -> torch.Tensor:
    """Adaptive Wing loss, Eq. 3 of Wang et al. (ICCV 2019).

    With ``delta = |y - y_hat|`` and ``p = alpha - y``::

        AWing = omega * ln(1 + (delta / epsilon) ** p)        if delta < theta
                A * delta - C                                 otherwise
        A = omega / (1 + (theta/epsilon) ** p) * p * (theta/epsilon) ** (p - 1) / epsilon
        C = theta * A - omega * ln(1 + (theta/epsilon) ** p)

    A and C make the loss continuous and smooth at ``delta = theta``.

    Args:
        pred: predicted heatmaps, any shape.
        target: ground-truth heatmaps, same shape, values below ``alpha - 1`` (heatmaps in [0, 1], also a
            little above 1 after resampling).
        weight: optional per-element weight broadcast against ``pred``.
        reduction: ``mean``, ``sum`` or ``none``.
        check_target: raise ValueError for a target at or above ``alpha - 1`` (one device sync per call).
    Returns:
        The reduced loss (float32 scalar) or, with ``reduction="none"``, per-element losses.
    """
    _check_params("awing", alpha=alpha, omega=omega, epsilon=epsilon, theta=theta)
    if check_target and bool(target.max() >= alpha - 1):
        raise ValueError(
            f"Adaptive Wing loss needs targets below alpha - 1 = {alpha - 1:.4g} (alpha - y must stay > 1); got "
            f"values in [{target.min().item():.4g}, {target.max().item():.4g}]"
        )
    if target.requires_grad and torch.is_grad_enabled():  # a gradient for the target too: autograd's graph
        return adaptive_wing_reference(pred, target, alpha, omega, epsilon, theta)
    return _AdaptiveWing.apply(pred, target, alpha, omega, epsilon, theta)


def adaptive_wing_reference(
    pred: torch.Tensor, target: torch.Tensor, alpha: float, omega: float, epsilon: float, theta: float
) -> torch.Tensor:
    """Eq. 3 per element, written as the equation and differentiated by autograd (the check on
    :class:`_AdaptiveWing`, and the path when the target needs a gradient)."""
    delta = (target - pred).abs()
    power = alpha - target
    ratio = theta / epsilon
    a = omega / (1 + ratio**power) * power * ratio ** (power - 1) / epsilon
    c = theta * a - omega * torch.log1p(ratio**power)
    # torch.where evaluates both branches (and their gradients): clamp delta in the log branch so a
    # huge error cannot overflow there and leak NaN through the masked-out gradient.
    small = omega * torch.log1p((delta.clamp(max=theta) / epsilon) ** power)
    return torch.where(delta < theta, small, a * delta - c)


def _awing_with_slope(
    delta: torch.Tensor, power: torch.Tensor, omega: float, epsilon: float, theta: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """Eq. 3 per element and ``|d AWing / d y_hat|``, for errors ``delta = |y - y_hat|`` and exponents
    ``power = alpha - y``: a tensor of delta's shape, or a 0-dim one where every target is the same."""
    # A and C depend on the target only: A = omega / (1 + r^p) * p * r^p / theta with r = theta / epsilon
    # (r^(p - 1) / epsilon is r^p / theta), C = theta * A - omega * ln(1 + r^p)
    ratio_p = power.mul(math.log(theta / epsilon)).exp_()
    a = ratio_p.add(1).reciprocal_().mul_(ratio_p).mul_(power).mul_(omega / theta)
    c = torch.log1p(ratio_p).mul_(-omega).add_(a, alpha=theta)
    u = delta.clamp(max=theta).div_(epsilon)
    u_p1 = u.pow(power - 1)  # 0 at u = 0 (p - 1 > 1), so no NaN anywhere
    u_p = u_p1.mul(u)
    # selections by lerp with a 0/1 weight (exact: lerp returns its end point at weight 1), several times
    # faster than torch.where on a CPU
    large = (delta >= theta).to(delta.dtype)
    loss = torch.lerp(torch.log1p(u_p).mul_(omega), delta.mul(a).sub_(c), large)
    slope = u_p1.mul_(power).mul_(omega / epsilon).div_(u_p.add_(1))
    return loss, torch.lerp(slope, a.expand_as(slope), large)


class _AdaptiveWing(torch.autograd.Function):
    """Eq. 3 per element with its derivative in closed form, computed in the forward pass.

    ``d AWing / d y_hat = sign(y_hat - y) * g`` with ``g = omega p u^(p-1) / (epsilon (1 + u^p))``,
    ``u = delta / epsilon``, below theta and ``g = A`` above. Autograd through the equation keeps about
    twenty full-size intermediates (powers with a per-pixel exponent, logs, a select) and replays them
    backwards; this keeps one tensor, the gradient (with the cheaper weight map and boundary channel, a
    training step at 256 px is 1.16x faster on a CPU: ``benchmarks/throughput.py``, docs/RESULTS.md).
    Heatmap targets are zero almost everywhere (about 99 % of a 68-point map at 64x64), where the
    exponent ``alpha - y`` is the number ``alpha`` and A and C are numbers: the whole tensor is computed
    that way and only the non-zero targets' elements with per-element exponents.
    Values and gradients equal the equation's (``adaptive_wing_reference``) to float rounding
    (tests/method/test_losses.py).
    """

    @staticmethod
    def forward(ctx, pred, target, alpha, omega, epsilon, theta):  # noqa: D102
        diff = pred - target
        delta = diff.abs()
        loss, slope = _awing_with_slope(delta, delta.new_tensor(alpha), omega, epsilon, theta)  # as if every y were 0
        where = target.nonzero(as_tuple=True)  # the elements whose target is not 0, any memory layout
        if where[0].numel():
            power = target[where].neg_().add_(alpha)
            loss[where], slope[where] = _awing_with_slope(delta[where], power, omega, epsilon, theta)
        if ctx.needs_input_grad[0]:
            ctx.save_for_backward(slope.mul_(diff.sign_()))
        return loss

    @staticmethod
    def backward(ctx, grad_output):  # noqa: D102
        (grad,) = ctx.saved_tensors
        return grad_output * grad, None, None, None, None, None


@elementwise_loss
def wing_loss(pred: torch.Tensor, target: torch.Tensor, omega: float = 10.0, epsilon: float = 2.0) -> torch.Tensor:
    """Wing loss, Eq. 2 (Feng et al., CVPR 2018): ``omega ln(1 + |x|/epsilon)`` if ``|x| < omega``
    else ``|x| - C`` with ``C = omega - omega ln(1 + omega/epsilon)``."""
    _check_params("wing", omega=omega, epsilon=epsilon)
    delta = (target - pred).abs()
    c = omega - omega * math.log1p(omega / epsilon)
    small = omega * torch.log1p(delta.clamp(max=omega) / epsilon)
    return torch.where(delta < omega, small, delta - c)


@elementwise_loss
def mse_loss(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Squared error ``(y - y_hat)^2`` per element."""
    return (target - pred) ** 2


@elementwise_loss
def l1_loss(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Absolute error ``|y - y_hat|`` per element."""
    return (target - pred).abs()


# Where each parameter keeps its loss defined: the log needs epsilon > 0, the wing omega > 0, AWing's
# switch point theta > 0 and alpha > 2 (so that alpha - y > 1 on [0, 1] heatmaps).
PARAMETER_BOUNDS = {"alpha": 2.0, "omega": 0.0, "epsilon": 0.0, "theta": 0.0}


def _check_params(loss: str, **params) -> None:
    for name, value in params.items():
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise ValueError(f"loss {loss!r}: {name} must be a finite number, got {value!r}")
        low = PARAMETER_BOUNDS.get(name)
        if low is not None and not value > low:
            raise ValueError(f"loss {loss!r}: {name} must be > {low:g}, got {value!r}")


LOSSES: dict[str, Callable[..., torch.Tensor]] = {
    "awing": adaptive_wing_loss,
    "wing": wing_loss,
    "mse": mse_loss,
    "l1": l1_loss,
}


def loss_parameters(name: str) -> dict[str, float]:
    """The tunable parameters of a loss and their defaults, e.g. ``{"alpha": 2.1, ...}`` for awing."""
    fn = _lookup(name)
    skip = {"pred", "target", "weight", "reduction", "check_target"}
    return {k: p.default for k, p in inspect.signature(fn).parameters.items() if k not in skip}


def _lookup(name: str) -> Callable[..., torch.Tensor]:
    if name not in LOSSES:
        raise ValueError(f"unknown loss {name!r}; choose from {', '.join(LOSSES)}")
    return LOSSES[name]


class HeatmapLoss(nn.Module):
    """A loss from :data:`LOSSES` with its parameters bound: ``HeatmapLoss("awing", theta=0.4)``."""

    def __init__(self, name: str = "awing", reduction: Reduction = "mean", **params: float) -> None:
        super().__init__()
        self.fn = _lookup(name)
        known = loss_parameters(name)
        unknown = sorted(set(params) - set(known))
        if unknown:
            raise ValueError(f"loss {name!r} has no parameter(s) {unknown}; it takes {sorted(known)}")
        self.name, self.reduction, self.params = name, reduction, {**known, **params}
        _check_params(name, **self.params)

    def forward(
        self, pred: torch.Tensor, target: torch.Tensor, weight: torch.Tensor | None = None
    ) -> torch.Tensor:
        return self.fn(pred, target, weight, self.reduction, **self.params)

    def extra_repr(self) -> str:
        return f"{self.name}, " + ", ".join(f"{k}={v}" for k, v in self.params.items())


def build_loss(name: str, **params: float) -> HeatmapLoss:
    """Loss module by name; ``params`` override its defaults and are checked against its signature."""
    return HeatmapLoss(name, **params)
