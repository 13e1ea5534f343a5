"""AWing's closed-form gradient against autograd on Eq. 3, on realistic 64x64 targets (issue #26, item 1).

``awing.method.losses`` computes AWing's derivative in closed form in the forward pass (``_AdaptiveWing``).
Here it is checked against autograd through Eq. 3 written out below from the paper, on what training
sees at the paper's heatmap size: 68 Gaussians (sigma 1.5 on 7x7) plus the boundary channel of four
synthetic faces in several poses, rendered by the codec (256 px -> 64x64), times the Weighted Loss Map
(Eq. 4-5), for predictions near the targets, far from them (most errors beyond theta: the linear branch)
and blank (a fresh model's output).

- fp32: elementwise, relative tolerance 1e-5 (measured: at most about 2e-6; float64 agrees as closely).
- bf16 training path: the prediction comes out of a 1x1 convolution under CPU bf16 autocast (the model's
  output head is a 1x1 convolution, so the prediction is bf16) and the loss is taken as ``train_step``
  takes it (``sum(loss_fn(out, targets, weights) for out in outputs)``, outside autocast). Two things
  differ from fp32: the prediction is a bf16 number (rounded to 8 significant bits), and the gradient
  that flows back into the bf16 output is rounded to bf16. Hence:
  (a) against fp32 autograd on Eq. 3 *at the prediction the network emitted*, elementwise, relative
      tolerance 2^-8 (bf16's unit roundoff) + 1e-5 (measured 0.39 %);
  (b) against fp32 autograd *at the unrounded prediction*, elementwise where the error |y_hat - y| is
      at least 8 bf16 rounding steps r: |dg| <= |g| (2^-8 + 1.5 (alpha - 1 - y) r / |y_hat - y|), since
      d ln g / d ln|y_hat - y| lies in about [-0.4, alpha - 1 - y] below theta and g is constant above
      it. Below that resolution bf16 cannot express the error and the gradient's sign there is noise
      (near case: 103 of 1.13 M pixels flip sign, nearly all foreground pixels with errors of a few 1e-4;
      they carry most of the L2 difference, 12 %; far: 0.25 %, blank: 0.14 %). The gradient mass per
      pixel class (foreground, difficult background, background: what ``benchmarks/gradients.py``
      measures) agrees to 6e-4 or better (asserted: 2e-3).
  (c) a perfect prediction: fp32's gradient is 0; bf16 cannot hold most foreground values, and AWing's
      foreground gradient decays only as |error|^(alpha - 1 - y) (exponent about 0.1 at a peak), so the
      rounding alone leaves foreground pixels 0.41x the mean pull of the near case.

Run with ``-s`` to print the measured errors.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from awing.data.synthetic.geometry import face_points, project, rotation, to_layout
from awing.method.codec import HeatmapCodec
from awing.method.losses import build_loss
from awing.method.weights import loss_map_mask, weighted_loss_map
from awing.schemas import lines_as_segments, load_schema

ALPHA, OMEGA, EPSILON, THETA = 2.1, 14.0, 1.0, 0.5  # the paper's (Sec. 4.2), the loss's defaults
BF16_UNIT = 2.0**-8  # bf16's unit roundoff (8 significant bits, round to nearest)
CASES = ["near", "far", "blank", "exact"]
POSES = [(0, 0, 0), (35, 0, 0), (-20, 15, 10), (10, -10, -25)]  # yaw, pitch, roll (degrees)


def awing_eq3(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Eq. 3 of the paper, per element, as printed (A and C as in Sec. 4.2)."""
    delta = (target - pred).abs()
    p = ALPHA - target
    a = OMEGA * (1 / (1 + (THETA / EPSILON) ** p)) * p * ((THETA / EPSILON) ** (p - 1)) * (1 / EPSILON)
    c = THETA * a - OMEGA * torch.log(1 + (THETA / EPSILON) ** p)
    # realistic errors (|delta| < 3) keep the branch not taken finite, so its zero gradient stays zero
    return torch.where(delta < THETA, OMEGA * torch.log(1 + (delta / EPSILON) ** p), a * delta - c)


def eq3_gradient(pred: torch.Tensor, target: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """d mean(Eq. 3 * weight) / d pred by autograd, in the dtype of ``pred``."""
    leaf = pred.detach().clone().requires_grad_()
    (awing_eq3(leaf, target.to(leaf.dtype)) * weight.to(leaf.dtype)).mean().backward()
    return leaf.grad


@pytest.fixture(scope="module")
def targets() -> tuple[torch.Tensor, torch.Tensor]:
    """(4, 69, 64, 64) targets (68 landmarks + boundary) of synthetic faces cropped to their landmark box
    + 10 % at 256 px, and the Weighted Loss Map times the channel mask, as ``training_targets`` makes."""
    faces = []
    for yaw, pitch, roll in POSES:
        points = project(to_layout(face_points(), "w300_68"), rotation(yaw, pitch, roll), 8.0)
        low, high = points.min(0), points.max(0)
        faces.append((points - (low + high) / 2) / (1.1 * (high - low).max()) * 256 + 127.5)
    codec = HeatmapCodec(input_size=256, heatmap_size=64, sigma=1.5, radius=3)
    segments = torch.as_tensor(lines_as_segments(load_schema("w300_68")))
    target, mask = codec.encode(torch.tensor(np.stack(faces), dtype=torch.float32), segments)
    assert target.shape == (4, 69, 64, 64) and bool(mask.all())
    return target, weighted_loss_map(target) * mask[..., None, None]


def prediction(target: torch.Tensor, case: str) -> torch.Tensor:
    g = torch.Generator().manual_seed(26)
    if case == "near":  # a converging model: small errors everywhere
        return target + 0.03 * torch.randn(target.shape, generator=g)
    if case == "exact":  # converged: no error at all
        return target.clone()
    if case == "far":  # a poor one: most errors beyond theta (the linear branch)
        return 0.3 * target + 0.4 * torch.randn(target.shape, generator=g)
    return 0.01 * torch.randn(target.shape, generator=g)  # blank: a fresh model's output


def relative_errors(grad: torch.Tensor, reference: torch.Tensor) -> tuple[float, float]:
    """(largest elementwise relative error over non-zero reference elements, max |error| / max |reference|)."""
    err = (grad.double() - reference.double()).abs()
    nonzero = reference != 0
    if not bool(nonzero.any()):
        return 0.0, 0.0
    return float((err[nonzero] / reference.double().abs()[nonzero]).max()), float(err.max() / reference.abs().max())


def class_masses(grad: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """sum |grad| over foreground (target >= 0.2), difficult background (in Eq. 4's mask, target < 0.2)
    and background pixels."""
    fg = target >= 0.2
    hard = loss_map_mask(target).bool() & ~fg
    mag = grad.double().abs()
    return torch.stack([mag[fg].sum(), mag[hard].sum(), mag[~fg & ~hard].sum()])


@pytest.mark.parametrize("case", CASES)
def test_closed_form_gradient_equals_eq3_autograd_fp32(targets, case):
    target, weight = targets
    pred = prediction(target, case)
    leaf = pred.clone().requires_grad_()
    build_loss("awing")(leaf, target, weight).backward()  # the training loss module: closed form
    reference = eq3_gradient(pred, target, weight)
    exact = eq3_gradient(pred.double(), target, weight)
    rel, scaled = relative_errors(leaf.grad, reference)
    rel64, _ = relative_errors(leaf.grad, exact)
    print(
        f"\nfp32 {case}: closed form vs Eq. 3 autograd: max rel {rel:.2e}, max abs / max |g| {scaled:.2e}; "
        f"vs float64 Eq. 3: max rel {rel64:.2e}"
    )
    torch.testing.assert_close(leaf.grad, reference, rtol=1e-5, atol=0)
    torch.testing.assert_close(leaf.grad.double(), exact, rtol=1e-5, atol=0)
    assert bool((leaf.grad[pred == target] == 0).all())  # no pull where the prediction is exact


def bf16_training_gradient(pred: torch.Tensor, target: torch.Tensor, weight: torch.Tensor):
    """(gradient at the fp32 input, the bf16 prediction) through a 1x1 identity convolution under CPU bf16
    autocast and the loss taken as ``awing.engine.train.train_step`` takes it."""
    channels = pred.shape[1]
    head = torch.nn.Conv2d(channels, channels, 1, bias=False)  # exact identity in bf16 (weights 0 and 1)
    with torch.no_grad():
        head.weight.copy_(torch.eye(channels)[..., None, None])
    leaf = pred.clone().requires_grad_()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        outputs = [head(leaf)]
    assert outputs[0].dtype == torch.bfloat16
    loss_fn = build_loss("awing")
    loss = sum(loss_fn(out, target, weight) for out in outputs)  # train_step's line, outside autocast
    loss.backward()
    return leaf.grad, outputs[0].detach().float()


@pytest.mark.parametrize("case", CASES)
def test_bf16_training_path_gradient(targets, case):
    target, weight = targets
    pred = prediction(target, case)
    grad, emitted = bf16_training_gradient(pred, target, weight)
    # (a) at the prediction the network emitted: only the gradient's own bf16 rounding
    at_emitted = eq3_gradient(emitted, target, weight)
    rel_a, _ = relative_errors(grad, at_emitted)
    torch.testing.assert_close(grad, at_emitted, rtol=BF16_UNIT + 1e-5, atol=0)
    fp32 = eq3_gradient(pred, target, weight)
    if case == "exact":
        exact_case_report(grad, fp32, target, weight, rel_a)
        return
    # (b) at the unrounded fp32 prediction, where bf16 resolves the error
    rounding = (emitted - pred).abs()
    error = (pred - target).abs()
    resolved = error >= 8 * rounding
    bound = fp32.abs() * (BF16_UNIT + 1e-5 + 1.5 * (ALPHA - 1 - target) * rounding / error.clamp_min(1e-30))
    assert bool(((grad - fp32).abs() <= bound)[resolved].all())
    l2 = float((grad - fp32).double().norm() / fp32.double().norm())
    masses, masses32 = class_masses(grad, target), class_masses(fp32, target)
    mass_rel = float(((masses - masses32).abs() / masses32).max())
    flips = int((grad.sign() != fp32.sign()).sum())
    print(
        f"\nbf16 {case}: vs fp32 Eq. 3 at the emitted bf16 prediction: max rel {rel_a:.2e}; vs fp32 at the "
        f"unrounded prediction: L2 rel {l2:.2e}, sign flips {flips} of {fp32.numel()} ({int((~resolved).sum())} "
        f"pixels below 8 bf16 steps), per-class |g| mass max rel {mass_rel:.1e}"
    )
    assert mass_rel < 2e-3


def exact_case_report(grad, fp32, target, weight, rel_a) -> None:
    """A perfect prediction: fp32's gradient is zero everywhere; bf16 cannot hold a foreground value exactly,
    and AWing's foreground gradient decays only as |error|^(alpha - 1 - y) (exponent about 0.1 at the
    peak), so the rounding alone leaves a pull on foreground pixels comparable to a real error's."""
    assert bool((fp32 == 0).all())
    fg = target >= 0.2
    near = eq3_gradient(prediction(target, "near"), target, weight)
    ratio = float(grad[fg].abs().mean() / near[fg].abs().mean())
    print(
        f"\nbf16 exact: vs fp32 Eq. 3 at the emitted bf16 prediction: max rel {rel_a:.2e}; fp32's gradient is 0, "
        f"bf16's mean |g| on foreground pixels is {ratio:.2f}x that of the near case in fp32"
    )
    assert bool((grad[~fg & (target == 0)] == 0).all())  # zero targets are exact in bf16: no pull there
