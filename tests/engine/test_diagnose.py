"""``train.diagnose`` (issue 26): every validation also logs where the loss spends its gradient (foreground,
difficult background, background) and how tall the heatmaps are, as ``diag_*`` columns of metrics.csv."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
import torch

from awing.core.config import ConfigError
from awing.engine.diagnostics import channel_gradient
from awing.engine.train import train
from awing.method.losses import build_loss
from awing.method.targets import landmark_heatmaps


def test_each_validation_logs_the_gradient_shares_and_heatmap_figures(make_config):
    cfg = make_config("train.diagnose=4", "optim.epochs=2", "train.val_every=1")
    train(cfg)
    with (Path(cfg.train.out_dir) / cfg.train.name / "metrics.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 2
    for row in rows:
        shares = [float(row[f"diag_share_{c}"]) for c in ("foreground", "difficult", "background")]
        assert sum(shares) == pytest.approx(1.0) and all(0 <= s <= 1 for s in shares)
        assert 0 < float(row["diag_pixels_foreground"]) < 0.5 and 0 < float(row["diag_pixels_difficult"]) < 0.5
        assert float(row["diag_error_px"]) >= 0 and float(row["diag_peak"]) >= float(row["diag_value_at_gt"]) - 1e-6


def test_without_it_no_diag_column_and_a_negative_count_is_refused(make_config):
    cfg = make_config("optim.epochs=1")
    train(cfg)
    header = (Path(cfg.train.out_dir) / cfg.train.name / "metrics.csv").read_text().splitlines()[0]
    assert "diag_" not in header
    with pytest.raises(ConfigError, match="train.diagnose"):
        make_config("train.diagnose=-1")


def _two_channels(peaks: tuple[float, float]) -> torch.Tensor:
    """(1, 2, 16, 16): a Gaussian (sigma 1.5, untruncated) at the centre of each channel, scaled to ``peaks``."""
    heat, _ = landmark_heatmaps(torch.full((1, 2, 2), 8.0), (16, 16), 1.5, radius=16)
    return heat * torch.tensor(peaks).view(1, 2, 1, 1)


def test_channel_gradient_is_the_equations_gradient_summed_per_channel():
    target, pred = _two_channels((1.0, 1.0)), _two_channels((0.2, 0.8))
    n = target.numel()
    mse = channel_gradient(build_loss("mse"), pred, target)
    assert mse.shape == (1, 2)
    assert mse[0].tolist() == pytest.approx((2 * (pred - target).abs() / n).sum((-1, -2))[0].tolist(), rel=1e-5)
    # AW: d/dy_hat of omega ln(1 + (|e| / eps)^p) is omega p |e|^(p-1) / (eps^p (1 + (|e| / eps)^p)) below theta,
    # A above it (Eq. 3 with eps = 1, p = alpha - y)
    e, p = (pred - target).abs().double(), 2.1 - target.double()
    below = 14 * p * e ** (p - 1) / (1 + e**p)
    theta = 0.5
    a = 14 / (1 + theta**p) * p * theta ** (p - 1)
    expected = (torch.where(e < theta, below, a) / n).sum((-1, -2))
    aw = channel_gradient(build_loss("awing"), pred, target)
    assert aw[0].tolist() == pytest.approx(expected[0].tolist(), rel=1e-4)


def test_aw_spreads_its_gradient_evenly_where_mse_chases_the_worst_channel():
    """A candidate mechanism for AW's flat contour maps (issue 26; over whole maps the background dominates
    and the per-part shares come out alike, docs/RESULTS.md): on a poorly fit channel (peak 0.2 of 1) and a well
    fit one (0.8), MSE's gradient is proportional to the error, so it goes 4:1 to the poor channel; AW's
    foreground gradient hardly depends on the error (p = alpha - y near 1.1 makes Eq. 3 nearly L1 there), only
    the blobs' tails (y near 0, p near 2.1) still scale with it: about 1.9:1 here."""
    target, pred = _two_channels((1.0, 1.0)), _two_channels((0.2, 0.8))
    mse = channel_gradient(build_loss("mse"), pred, target)[0]
    aw = channel_gradient(build_loss("awing"), pred, target)[0]
    assert mse[0] / mse[1] == pytest.approx(4.0, rel=1e-4)  # errors 0.8 vs 0.2, in proportion everywhere
    assert 1.5 < aw[0] / aw[1] < 2.3
