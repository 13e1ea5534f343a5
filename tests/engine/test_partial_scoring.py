"""Scoring a model on a data set whose layout maps only partly onto the model's (GitHub issue 24): only the
corresponding points are scored, with the data set's normaliser when its points are among them, else the
ground truth's landmark-box size; the results say how many points were scored."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from fixtures.new_layouts import write_fgnet

from awing.core.checkpoint import load_checkpoint
from awing.core.config import Config, config_from_dict
from awing.engine.evaluate import (
    FALLBACK_NORMALISER,
    EvalSettings,
    common_layout,
    evaluate_splits,
    score_predictions,
    scoring_layout,
    write_evaluation,
)
from awing.pretrained import resolve_model
from awing.schemas import Schema, load_schema, point_mapping


def tiny_layout(normaliser_groups, rows, name: str = "tiny4") -> Schema:
    """A 4-point layout made partly from 300-W's points (``rows``: its ``from_schemas: w300_68``)."""
    return Schema.from_dict({
        "name": name,
        "num_points": 4,
        "normalisers": {"inter_ocular": {"kind": "points", "groups": normaliser_groups}},
        "default_normaliser": "inter_ocular",
        "from_schemas": {"w300_68": rows},
    })


# The ground truth of one face in the 4-point layout, and a 68-point prediction whose points 36 and 45 (the
# outer eye corners, which the layout's points 0 and 1 correspond to) are off by (3, 4) and (0, 0) pixels.
GT = np.array([[[10.0, 10.0], [60.0, 10.0], [10.0, 40.0], [60.0, 50.0]]])
PRED = np.zeros((1, 68, 2))
PRED[0, :, 0], PRED[0, :, 1] = np.arange(68), 100.0  # the other points: far off, and not scored
PRED[0, 36], PRED[0, 45] = GT[0, 0] + [3.0, 4.0], GT[0, 1]


def test_a_partial_mapping_is_scored_on_the_shared_points_with_the_datas_normaliser():
    data = tiny_layout([[0], [1]], [[36], [45], [], []])
    m = score_predictions(PRED, GT, load_schema("w300_68"), data, EvalSettings())
    # errors 5 px and 0 px over the inter-ocular distance |(10, 10) - (60, 10)| = 50 px; points 2, 3 unscored
    assert m["nme"] == pytest.approx((5 / 50 + 0 / 50) / 2)
    assert m["normaliser"] == "inter_ocular" and "normaliser_fallback" not in m
    assert m["num_points_scored"] == 2 and m["num_points_in_layout"] == 4 and m["scored_points"] == [0, 1]
    assert m["per_point_nme"][2] is None and m["per_point_nme"][3] is None
    assert m["scored_in"] == "tiny4 (model w300_68, data tiny4)"


def test_without_the_normalisers_points_the_ground_truths_box_size_normalises():
    data = tiny_layout([[2], [3]], [[36], [45], [], []])  # the normaliser's points have no 300-W counterpart
    m = score_predictions(PRED, GT, load_schema("w300_68"), data, EvalSettings())
    box = math.sqrt((60 - 10) * (50 - 10))  # every annotated ground-truth point's box, not only the shared ones
    assert m["normaliser"] == FALLBACK_NORMALISER == "gt_box"
    assert m["nme"] == pytest.approx((5 / box + 0) / 2)
    assert "needs points [2, 3]" in m["normaliser_fallback"]
    assert m["nme_by_normaliser"]["gt_box"] == pytest.approx(m["nme"])
    with pytest.raises(ValueError, match="leave the normaliser unset"):  # asked for by name: no silent swap
        score_predictions(PRED, GT, load_schema("w300_68"), data, EvalSettings(normaliser="inter_ocular"))


def test_a_mapping_that_shares_no_point_is_a_clear_error():
    # made from FG-NET's brow points, which FG-NET's declared mapping from 300-W leaves out ([])
    brows = Schema.from_dict({
        "name": "brows2", "num_points": 2, "default_normaliser": "width",
        "normalisers": {"width": {"kind": "points", "groups": [[0], [1]]}},
        "from_schemas": {"fgnet68": [[15], [16]]},
    })
    assert not point_mapping("w300_68", brows, partial=True).any()
    with pytest.raises(ValueError, match="shares no point"):
        scoring_layout(load_schema("w300_68"), brows)
    with pytest.raises(ValueError, match="no point mapping"):
        scoring_layout(load_schema("w300_68"), load_schema("lsp14"))


def test_full_mappings_score_as_before_and_common_layout_masks_the_unshared_points():
    full = scoring_layout(load_schema("wflw98"), load_schema("w300_68"))
    assert full.shared is None and full.scored() is None and full.layout.name == "w300_68"
    m = score_predictions(np.zeros((1, 68, 2)) + 1, np.zeros((1, 68, 2)), load_schema("w300_68"),
                          load_schema("w300_68"), EvalSettings())
    assert "num_points_scored" not in m and "scored_in" not in m
    fgnet = scoring_layout(load_schema("w300_68"), load_schema("fgnet68"))
    assert fgnet.layout.name == "fgnet68" and int(fgnet.shared.sum()) == 29
    ones = np.ones((1, 68, 2))
    _, pred, gt = common_layout(load_schema("w300_68"), load_schema("fgnet68"), ones, ones)
    assert np.isnan(gt[0, ~fgnet.shared]).all() and np.isfinite(gt[0, fgnet.shared]).all()
    assert np.isfinite(pred[0, fgnet.shared]).all()


def test_the_shipped_68_point_model_is_scored_on_fgnet_data(tmp_path):
    """``awing eval w300-1hg-tiny fgnet:ROOT:all`` end to end on an FG-NET layout written at test time."""
    write_fgnet(tmp_path / "fgnet")
    ckpt = load_checkpoint(resolve_model("w300-1hg-tiny"))
    from awing.method.model import model_from_checkpoint

    model, schema, codec = model_from_checkpoint(ckpt)
    cfg = config_from_dict(ckpt["config"]) if "config" in ckpt else Config()
    cfg.optim.batch_size = 5
    evaluations = evaluate_splits(
        model, codec, schema, cfg, [("fgnet", str(tmp_path / "fgnet"), "all")], torch.device("cpu")
    )
    m = evaluations["all"].metrics
    assert m["num_images"] == 5 and math.isfinite(m["nme"])
    assert m["num_points_scored"] == 29 and m["normaliser"] == "inter_ocular"
    assert m["scored_in"] == "fgnet68 (model w300_68, data fgnet68)"
    results = write_evaluation(evaluations, tmp_path / "out", cfg, schema, name="results_fgnet")
    saved = json.loads((tmp_path / "out" / "results_fgnet.json").read_text())
    assert saved["testsets"]["all"]["num_points_scored"] == 29 == results["testsets"]["all"]["num_points_scored"]
    assert "29 of 68" in (tmp_path / "out" / "results_fgnet.md").read_text()
