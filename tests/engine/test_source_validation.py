"""Mixed-source training (GitHub issue 24): each source's validation split scored at every validation
(``val_nme_<format>`` in metrics.csv and the log), ``train.select`` picking best.pt, and balanced epochs
through the trainer's loader on one rank and split over two."""

from __future__ import annotations

import csv
import math
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from conftest import synthetic_source

from awing.core.checkpoint import load_checkpoint
from awing.core.config import ConfigError, load_config
from awing.data import synthetic
from awing.data.build import build_source_val_sets, load_training_splits, source_names
from awing.engine.distributed import DistInfo
from awing.engine.train import TrainingData, selection_metric, train
from awing.schemas import transfer_mapping

OPTIONS = dict(schema="w300_68", n_train=4, n_val=3, n_test=1, size=96)


@pytest.fixture(scope="module")
def root68(tmp_path_factory) -> Path:
    """A tiny 68-point synthetic set: a second source, in another layout than the tiny run's 98 points."""
    return synthetic.generate(tmp_path_factory.mktemp("s68"), progress=False, **OPTIONS)


def source(root: Path, **extra) -> str:
    return synthetic_source(root, OPTIONS, **extra)


def rows_of(cfg) -> list[dict]:
    with (Path(cfg.train.out_dir) / cfg.train.name / "metrics.csv").open() as f:
        return list(csv.DictReader(f))


def test_each_sources_val_split_is_scored_on_the_points_it_gives(make_config, root68, caplog):
    caplog.set_level("INFO")
    cfg = make_config(f"data.sources=[{source(root68, val_split='val')}]", "data.balance=sources",
                      "data.epoch_size=8")
    schema, _, _ = load_training_splits(cfg)
    (name, val_set), = build_source_val_sets(cfg, schema, 64).items()
    assert name == "synthetic" and len(val_set) == 3 and val_set.schema.name == "wflw98"
    known = transfer_mapping("w300_68", "wflw98").any(axis=1)
    assert np.array_equal(val_set.known_points, known) and 0 < known.sum() < 98
    assert all(np.isnan(s.landmarks[~known]).all() for s in val_set.samples)

    results = train(cfg)
    (row,) = rows_of(cfg)
    assert math.isfinite(float(row["val_nme"])) and math.isfinite(float(row["val_nme_synthetic"]))
    assert "val_nme_synthetic=" in caplog.text and "data.balance=sources: 8 faces per epoch" in caplog.text
    best = load_checkpoint(Path(cfg.train.out_dir) / cfg.train.name / "best.pt")
    assert best["best_metric"] == pytest.approx(float(row["val_nme"]))  # train.select: main, the default
    assert best["metrics"]["val_nme_synthetic"] == pytest.approx(float(row["val_nme_synthetic"]))
    assert set(results["testsets"]) == {"val", "test"}  # the final evaluation stays the run's own splits


def test_a_sources_val_normaliser_scores_its_validation(make_config, root68):
    cfg = make_config(f"data.sources=[{source(root68, val_split='val')}]", "train.name=own")
    box = make_config(f"data.sources=[{source(root68, val_split='val', val_normaliser='box')}]", "train.name=box")
    train(cfg)
    train(box)
    (own_row,), (box_row,) = rows_of(cfg), rows_of(box)
    assert float(own_row["val_nme"]) == pytest.approx(float(box_row["val_nme"]))  # the run's own split: unchanged
    own, by_box = float(own_row["val_nme_synthetic"]), float(box_row["val_nme_synthetic"])
    assert math.isfinite(by_box) and by_box < own  # the face box is larger than the eye-corner distance

    wrong = make_config(f"data.sources=[{source(root68, val_split='val', val_normaliser='torso')}]")
    schema, _, _ = load_training_splits(wrong)
    with pytest.raises(ValueError, match=r"data.sources\[0\].val_normaliser='torso' is not a normaliser of wflw98"):
        build_source_val_sets(wrong, schema, 64)


def test_select_mean_picks_best_by_the_mean_over_the_run_and_its_sources(make_config, root68):
    cfg = make_config(f"data.sources=[{source(root68, val_split='val')}]", "train.select=mean", "train.name=mean")
    train(cfg)
    (row,) = rows_of(cfg)
    best = load_checkpoint(Path(cfg.train.out_dir) / cfg.train.name / "best.pt")
    assert best["best_metric"] == pytest.approx((float(row["val_nme"]) + float(row["val_nme_synthetic"])) / 2)


def test_selection_metric_and_its_config_key():
    cfg = load_config(None, [])
    row = {"epoch": 1, "val_nme": 0.04, "val_fr@0.1": 0.0, "val_nme_fgnet": 0.08, "val_nme_scut": 0.06}
    assert cfg.train.select == "main" and selection_metric(cfg, row) == 0.04
    assert selection_metric(cfg, {"val_nme_fgnet": 0.08, "val_nme_scut": 0.06}) == pytest.approx(0.07)  # no main
    cfg.train.select = "mean"
    assert selection_metric(cfg, row) == pytest.approx(0.06)
    assert math.isnan(selection_metric(cfg, {**row, "val_nme_scut": math.nan}))
    with pytest.raises(ConfigError, match="train.select"):
        load_config(None, ["train.select=best"])
    sources = "[{format: fgnet, root: a}, {format: scut, root: b}, {format: fgnet, root: c}]"
    two = load_config(None, [f"data.sources={sources}"])
    assert source_names(two) == ["fgnet", "scut", "fgnet_2"]
    assert two.data.sources[0].val_split is None


def test_a_balanced_epoch_is_split_over_ranks_by_the_trainers_loader(make_config, root68):
    cfg = make_config(f"data.sources=[{source(root68, limit=2)}]", "data.balance=sources", "data.epoch_size=12",
                      "optim.batch_size=3")
    schema, train_samples, _ = load_training_splits(cfg)
    shares = []
    for rank in (0, 1):
        data = TrainingData.build(cfg, schema, train_samples, [], 64, DistInfo(rank=rank, world_size=2))
        data.set_epoch(1)
        # a face of the source has the points its 68-point layout cannot give missing; the run's own, none
        shares.append([bool(p.isnan().any()) for batch in data.loader for p in batch["points"]])
    assert [len(s) for s in shares] == [6, 6] and data.source_vals == {}
    counts = Counter(from_source for share in shares for from_source in share)
    assert counts == {False: 6, True: 6}  # 6 from each part: the source's 2 faces three times each
