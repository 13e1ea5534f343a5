"""benchmarks/loss_speed.py: times the losses on encoded training targets, after checking that the closed-form
AWing loss and Eq. 3 by autograd agree on them."""

from __future__ import annotations

import pytest
import torch

from benchmarks import loss_speed
from benchmarks.loss_speed import check_same_loss


def test_prints_every_loss_with_its_ratio_to_the_autograd_awing(tmp_path, capsys):
    root = tmp_path / "synthetic"
    overrides = [f"data.root={root}", "data.options.n_train=20", "data.options.n_val=4", "data.options.n_test=4"]
    medians = loss_speed.main(["--data", "synthetic", "--batch", "4", "--rounds", "1", *overrides])
    assert set(medians) == {"awing (closed form)", "awing (Eq. 3 by autograd)", "wing", "mse"}
    assert all(seconds > 0 for seconds in medians.values())
    out = capsys.readouterr().out
    assert "targets=(4, 99, 32, 32)" in out and "closed form = autograd Eq. 3" in out
    assert out.count("x the autograd AWing") == 4


def test_the_check_fails_when_the_two_losses_differ(monkeypatch):
    targets = torch.zeros(1, 2, 8, 8)
    targets[0, 0, 4, 4] = 1.0
    pred = (targets + 0.2 * torch.randn(1, 2, 8, 8, generator=torch.Generator().manual_seed(0))).requires_grad_()
    assert check_same_loss(pred, targets, None) < 1e-4
    equation = loss_speed.reference_awing
    monkeypatch.setattr(loss_speed, "reference_awing", lambda p, t, w: 1.01 * equation(p, t, w))
    with pytest.raises(AssertionError):
        check_same_loss(pred, targets, None)
