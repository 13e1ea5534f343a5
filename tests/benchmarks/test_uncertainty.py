"""benchmarks/uncertainty.py: the fitted heatmap of each loss, checked where the answer is known."""

from __future__ import annotations

import torch

from benchmarks.uncertainty import best_gain, describe, fit_heatmap, jittered_targets, main


def test_mse_fits_the_mean_target_and_every_loss_fits_an_unjittered_target():
    targets = jittered_targets(2.0, 64, 15, sigma=1.5, radius=3)
    mse = fit_heatmap(targets, "mse", "none", steps=300, lr=0.05)
    torch.testing.assert_close(mse, targets.mean(0)[0], atol=0.01, rtol=0)  # MSE's minimiser: the mean
    exact = jittered_targets(0.0, 4, 15, sigma=1.5, radius=3)
    for loss, weight_map in (("awing", "none"), ("awing", "paper"), ("mse", "none")):
        fitted = fit_heatmap(exact, loss, weight_map, steps=300, lr=0.05)
        assert (fitted - exact[0, 0]).abs().max() < 0.03, loss
        assert describe(fitted)["half_area"] == 9  # sigma 1.5: the 3x3 pixels above half the peak


def test_the_command_prints_a_row_per_jitter_and_draws_the_figure(tmp_path, capsys):
    path = tmp_path / "u.png"
    argv = ["--jitter", "0", "2", "--draws", "16", "--size", "11", "--steps", "20", "--offsets", "0", "3"]
    assert main([*argv, "--figure", str(path)]) == 0
    out = capsys.readouterr().out
    assert "| 0 | " in out and "| 2 | " in out and "| 3 | " in out and path.stat().st_size > 0


def test_a_guess_on_the_target_keeps_its_gain_and_a_far_one_is_blanked_by_mse():
    for loss, weight_map in (("mse", "none"), ("awing", "none"), ("awing", "paper")):
        assert best_gain(0.0, loss, weight_map, 21, 1.5, 3) == 1.0
    assert best_gain(7.0, "mse", "none", 21, 1.5, 3) == 0.0  # no overlap with the 7x7 target: blank is best
