"""Mixed-source training (``data.sources``): points carried into the run's layout, the rest masked."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import synthetic_68_source

from awing.core.config import ConfigError, load_config
from awing.data.build import build_training_set, load_sources, load_training_splits
from awing.data.dataset import MixedLandmarks
from awing.data.readers import read_dataset
from awing.data.sample import landmark_box
from awing.method.targets import render_targets
from awing.schemas import lines_as_segments, load_schema, map_points, point_mapping, transfer_mapping


def test_fdd_points_carry_into_the_68_point_layout_at_the_landmarks_they_are_and_nowhere_else():
    weights = transfer_mapping("fdd14", "w300_68")
    fdd = np.random.default_rng(0).uniform(0, 100, (14, 2))
    mapped = map_points(fdd, weights)
    known = np.flatnonzero(~np.isnan(mapped).any(axis=1))
    # fdd14's declared rows that name one 68-point landmark each (the eye centres are means: not carried)
    assert known.tolist() == [17, 21, 22, 26, 30, 36, 39, 42, 45, 48, 54, 62]
    assert np.allclose(mapped[36], fdd[4]) and np.allclose(mapped[62], fdd[12]) and np.allclose(mapped[30], fdd[10])
    # and back again: the full declared mapping recovers every FDD point that is a single landmark
    back = map_points(mapped, point_mapping("w300_68", "fdd14"))
    single = [0, 1, 2, 3, 4, 6, 7, 9, 10, 11, 12, 13]
    assert np.allclose(back[single], fdd[single]) and np.isnan(back[[5, 8]]).all()


def test_a_full_mapping_is_used_when_one_exists_and_an_unrelated_layout_is_an_error():
    assert np.array_equal(transfer_mapping("w300_68", "mtfl5"), point_mapping("w300_68", "mtfl5"))
    assert np.flatnonzero(transfer_mapping("mtfl5", "w300_68").any(axis=1)).tolist() == [30, 48, 54]
    with pytest.raises(ValueError, match="no point of schema w300_68 can be had from lsp14"):
        transfer_mapping("lsp14", "w300_68")


def test_the_boundary_channel_is_masked_where_a_boundary_line_point_is_missing():
    schema = load_schema("w300_68")
    segments = torch.as_tensor(lines_as_segments(schema))
    points = torch.rand(2, 68, 2) * 40 + 10
    points[1, 40] = float("nan")  # a point on the left eye's line
    targets, mask = render_targets(points, (64, 64), segments, sigma=1.5, radius=3)
    assert mask[:, -1].tolist() == [True, False]
    assert mask[1, 40].item() is False and mask[1, :40].all()
    assert targets[1, -1].amax() > 0.9  # still drawn from the lines that are known, just not supervised


def test_sources_are_typed_in_the_config_and_a_bad_key_names_its_place(synthetic_root, tmp_path):
    cfg = load_config(None, [f"data.sources=[{{format: synthetic, root: {tmp_path}, limit: 3}}]"])
    assert cfg.data.sources[0].limit == 3 and cfg.data.sources[0].split == "train"
    assert cfg.to_dict()["data"]["sources"][0]["root"] == str(tmp_path)
    with pytest.raises(ConfigError, match=r"data\.sources\[0\]\.colour"):
        load_config(None, [f"data.sources=[{{format: synthetic, root: {tmp_path}, colour: 1}}]"])
    with pytest.raises(ConfigError, match=r"data\.sources\[0\]\.crop"):
        load_config(None, [f"data.sources=[{{format: synthetic, root: {tmp_path}, crop: head}}]"])


def test_a_mixed_run_trains_on_both_sources_with_the_missing_points_masked(make_config, tmp_path, caplog):
    caplog.set_level("INFO")
    source = synthetic_68_source(tmp_path / "s68", n_train=6, n_val=1, limit=4)
    cfg = make_config(f"data.sources=[{source}]")
    schema, train, _ = load_training_splits(cfg)
    ((src, mapped),) = load_sources(cfg, schema)
    assert len(mapped) == 4 and mapped[0].num_points == 98
    carried = ~np.isnan(mapped[0].landmarks).any(axis=1)
    assert carried.sum() == int(transfer_mapping("w300_68", "wflw98").any(axis=1).sum()) and not carried.all()
    # the crop box stays the source's own landmark box (all 68 points), not the box of the points it shares
    raw = read_dataset("synthetic", tmp_path / "s68", "train", schema="w300_68", n_train=6, n_val=1, n_test=1, size=96)
    assert np.allclose(mapped[0].box, landmark_box(raw[0].landmarks))

    train_set = build_training_set(cfg, train, schema, 64)
    assert isinstance(train_set, MixedLandmarks) and len(train_set) == len(train) + 4
    item = train_set[len(train)]  # the first sample of the source
    assert torch.isnan(item["points"][~torch.as_tensor(carried)]).all()

    from awing.engine.train import train as run_training

    results = run_training(cfg)
    assert np.isfinite(results["testsets"]["val"]["nme"])
    assert "data.sources[0]: 4 w300_68 faces from synthetic:train" in caplog.text and "12 train / 5 val" in caplog.text


def test_a_sources_shift_moves_its_crop_centre_by_a_fraction_of_its_box(synthetic_root, tmp_path):
    from awing.data.dataset import LandmarkDataset

    samples = read_dataset("synthetic", synthetic_root, "val", generate=False)[:2]
    plain = LandmarkDataset(samples, "wflw98", 64, crop="landmarks", enlarge=0.1)
    moved = LandmarkDataset(samples, "wflw98", 64, crop="landmarks", enlarge=0.1, shift=(0.0, 0.2))
    for i, s in enumerate(samples):
        box = landmark_box(s.landmarks)
        longer = float(max(box[2] - box[0], box[3] - box[1]))
        scale = 64 / (1.1 * longer)  # crop pixels per image pixel
        # the crop's centre 0.2 x the box's longer side lower: every point higher in the crop by that much
        delta = (moved[i]["points"] - plain[i]["points"]).numpy()
        assert np.allclose(delta[:, 0], 0, atol=1e-3) and np.allclose(delta[:, 1], -0.2 * longer * scale, atol=1e-3)
    with pytest.raises(ConfigError, match=r"data\.sources\[0\]\.shift"):
        load_config(None, [f"data.sources=[{{format: synthetic, root: {tmp_path}, shift: [0, 1.5]}}]"])


def test_an_unreadable_image_of_a_later_source_is_named_by_its_own_file(synthetic_root, tmp_path):
    """Items of a mixed set carry their index in the mixed set (not their part's), so the error for unreadable
    training images names the file that failed, whichever source it came from."""
    import dataclasses

    from awing.data.dataset import LandmarkDataset, collate_landmarks
    from awing.engine.train import EpochTotals, check_skipped

    samples = read_dataset("synthetic", synthetic_root, "val", generate=False)[:4]
    missing = str(tmp_path / "gone.png")
    first = LandmarkDataset(samples[:3], "wflw98", 64, crop="landmarks", enlarge=0.1)
    second = LandmarkDataset([samples[3], dataclasses.replace(samples[3], image=missing)], "wflw98", 64)
    mixed = MixedLandmarks([first, second])
    assert [mixed[i]["index"] for i in range(5)] == [0, 1, 2, 3, 4] and mixed[-1]["index"] == 4
    batch = collate_landmarks([mixed[i] for i in range(5)])
    assert batch["invalid_index"] == [4] and batch["index"].tolist() == [0, 1, 2, 3]
    assert mixed.samples[4].image == missing
    with pytest.raises(ValueError, match="gone.png"):
        check_skipped(EpochTotals(samples=4, skipped=1), batch["invalid_index"], mixed.samples, max_share=0.1)
