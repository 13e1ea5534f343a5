"""benchmarks/gradients.py: the gradient shares on hand-made tensors, and a dry run on the synthetic set."""

from __future__ import annotations

import json
import math

import pytest
import torch
from conftest import tiny_overrides

from awing.engine.diagnostics import CLASSES, gradient_shares, loss_gradient, pixel_classes
from awing.method.targets import landmark_heatmaps
from benchmarks.gradients import QUANTITIES, main


def one_gaussian(size: int = 16) -> torch.Tensor:
    heat, _ = landmark_heatmaps(torch.tensor([[[7.0, 8.0]]]), (size, size), sigma=1.5, radius=3)
    return heat  # (1, 1, 16, 16)


def test_classes_partition_the_pixels():
    target = one_gaussian()
    masks = pixel_classes(target)
    total = sum(m.long() for m in masks.values())
    assert bool((total == 1).all())
    assert bool((target[masks["foreground"]] >= 0.2).all())
    assert bool((target[masks["difficult"]] < 0.2).all()) and int(masks["difficult"].sum()) > 0
    assert float(target[masks["background"]].max()) < 0.2  # the mask ring reaches past the Gaussian's edge


def test_shares_sum_to_one_and_follow_the_error():
    target = one_gaussian()
    masks = pixel_classes(target)
    torch.manual_seed(0)
    shares = gradient_shares(torch.randn_like(target), target)
    assert set(shares) == set(CLASSES)
    assert sum(shares.values()) == pytest.approx(1.0)
    # an error on background pixels alone: all of the gradient there
    grad = torch.where(masks["background"], torch.randn_like(target), torch.zeros_like(target))
    assert gradient_shares(grad, target) == {"foreground": 0.0, "difficult": 0.0, "background": 1.0}
    # one unit of |gradient| on a foreground pixel, three on a difficult one: 1/4 and 3/4
    grad = torch.zeros_like(target)
    grad[masks["foreground"].nonzero()[0].unbind()] = -1.0
    grad[masks["difficult"].nonzero()[0].unbind()] = 3.0
    assert gradient_shares(grad, target) == pytest.approx({"foreground": 0.25, "difficult": 0.75, "background": 0})
    assert all(math.isnan(v) for v in gradient_shares(torch.zeros_like(target), target).values())


def test_loss_gradient_of_mse_is_twice_the_error_over_n():
    from awing.method.losses import build_loss

    target = one_gaussian()
    pred = torch.full_like(target, 0.1).bfloat16()
    grad = loss_gradient(build_loss("mse"), pred, target, torch.ones_like(target))
    assert grad.dtype == torch.bfloat16  # the gradient reaches a bf16 output as bf16, as in training
    expected = 2 * (pred.float() - target) / target.numel()
    torch.testing.assert_close(grad.float(), expected, rtol=2**-8, atol=0)


def test_dry_run_on_the_synthetic_set(synthetic_root, tmp_path):
    overrides = tiny_overrides(synthetic_root, tmp_path / "runs", "data.train_split=train", "data.val_split=val")
    out, fig = tmp_path / "gradients", tmp_path / "gradients.png"
    argv = ["--epochs", "2", "--limit", "6", "--faces", "3", "--out", str(out), "--figure", str(fig), *overrides]
    assert main(argv) == 0
    assert fig.stat().st_size > 10_000
    for method in ("AW", "MSE"):
        result = json.loads((out / f"{method}_s0.json").read_text())
        assert [r["epoch"] for r in result["rows"]] == [0, 1, 2]
        for row in result["rows"]:
            assert set(QUANTITIES) <= set(row)
            assert sum(row[f"share_{c}"] for c in CLASSES) == pytest.approx(1.0)
        assert result["settings"]["loss"] == {"AW": "awing", "MSE": "mse"}[method]
    mtime = (out / "AW_s0.json").stat().st_mtime
    assert main(argv) == 0  # a finished file with the same settings is read, not trained again
    assert (out / "AW_s0.json").stat().st_mtime == mtime
