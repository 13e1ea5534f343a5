"""``train.diagnose`` (issue 26): every validation also logs where the loss spends its gradient (foreground,
difficult background, background) and how tall the heatmaps are, as ``diag_*`` columns of metrics.csv."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from awing.core.config import ConfigError
from awing.engine.train import train


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
