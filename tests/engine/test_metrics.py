"""Metrics against hand-computed values (Sec. 7.2: NME, FR, CED, AUC; Table 8: PCK)."""

from __future__ import annotations

import json
import math
import warnings

import numpy as np
import pytest

from awing.engine.metrics import (
    auc,
    auc_numerical,
    ced_curve,
    evaluate_predictions,
    failure_rate,
    joint_group,
    nanmean,
    normalised_point_errors,
    pck,
    pck_by_group,
    per_image_nme,
    subset_indices,
    threshold_key,
)
from awing.schemas import Schema, load_schema, normaliser_distance

LSP_NAMES = [
    "right_ankle",
    "right_knee",
    "right_hip",
    "left_hip",
    "left_knee",
    "left_ankle",
    "right_wrist",
    "right_elbow",
    "right_shoulder",
    "left_shoulder",
    "left_elbow",
    "left_wrist",
    "neck",
    "head_top",
]


def lsp_schema() -> Schema:
    return Schema.from_dict(
        {
            "name": "lsp_test",
            "num_points": 14,
            "point_names": LSP_NAMES,
            "normalisers": {"torso": {"kind": "torso", "groups": [[9], [2]]}},  # left shoulder - right hip
            "default_normaliser": "torso",
            "pck_threshold": 0.2,
        }
    )


def fdd_three_point_example():
    """fdd14 with only points 4, 9 (outer eye corners) and 12 annotated; inter-ocular distance 40 px."""
    gt = np.full((1, 14, 2), np.nan)
    gt[0, 4] = (10.0, 20.0)
    gt[0, 9] = (50.0, 20.0)
    gt[0, 12] = (30.0, 50.0)
    pred = np.full((1, 14, 2), 1000.0)  # wild values at missing points must not count
    pred[0, 4] = gt[0, 4] + (3.0, 4.0)  # error 5
    pred[0, 9] = gt[0, 9] + (0.0, -2.0)  # error 2
    pred[0, 12] = gt[0, 12] + (-6.0, 8.0)  # error 10
    return pred, gt


# ----------------------------------------------------------------------------------------------- NME
def test_nme_three_points_inter_ocular_fdd14():
    schema = load_schema("fdd14")
    pred, gt = fdd_three_point_example()
    d = normaliser_distance(schema, gt)
    assert d == pytest.approx([40.0])
    nme = per_image_nme(pred, gt, d)
    assert nme.shape == (1,)
    assert nme[0] == pytest.approx((5 + 2 + 10) / 3 / 40)  # 0.141666...


def test_nme_mask_and_missing_points_excluded():
    pred, gt = fdd_three_point_example()
    mask = np.zeros((1, 14), bool)
    mask[0, [4, 9]] = True
    assert per_image_nme(pred, gt, [40.0], mask)[0] == pytest.approx((5 + 2) / 2 / 40)
    # masking in a missing point does not score it either
    mask[0, 0] = True
    assert per_image_nme(pred, gt, [40.0], mask)[0] == pytest.approx((5 + 2) / 2 / 40)
    err = normalised_point_errors(pred, gt, [40.0])
    assert np.isnan(err[0, 0]) and err[0, 12] == pytest.approx(10 / 40)


def test_nme_box_normaliser_sqrt_area():
    schema = load_schema("w300_68")
    rng = np.random.default_rng(1)
    gt = rng.uniform(0, 40, (2, 68, 2))
    pred = gt + (3.0, 4.0)  # every point off by 5 px
    boxes = np.array([[0, 0, 40, 90], [10, 10, 30, 30]], float)  # sqrt(40*90) = 60, sqrt(20*20) = 20
    d = normaliser_distance(schema, gt, boxes, "box")
    assert d == pytest.approx([60.0, 20.0])
    assert per_image_nme(pred, gt, d) == pytest.approx([5 / 60, 5 / 20])
    res = evaluate_predictions(pred, gt, schema, boxes=boxes, normaliser="box")
    assert res["normaliser"] == "box"
    assert res["nme"] == pytest.approx((5 / 60 + 5 / 20) / 2)
    assert set(res["nme_by_normaliser"]) == {"box", "inter_ocular", "inter_pupil"}


def test_nme_undefined_images_are_nan_and_skipped():
    schema = load_schema("fdd14")
    pred, gt = fdd_three_point_example()
    gt2 = np.concatenate([gt, np.full_like(gt, np.nan)])  # second image: nothing annotated
    pred2 = np.concatenate([pred, pred])
    nme = per_image_nme(pred2, gt2, [40.0, 40.0])
    assert nme[0] == pytest.approx(17 / 120) and math.isnan(nme[1])
    assert math.isnan(per_image_nme(pred, gt, [0.0])[0])  # zero normaliser
    res = evaluate_predictions(pred2, gt2, schema)
    assert res["num_images"] == 1 and res["num_unscored"] == 1
    assert res["per_image_nme"][1] is None
    assert res["nme"] == pytest.approx(17 / 120)


def test_nme_rejects_nan_prediction_at_scored_point_and_bad_shapes():
    pred, gt = fdd_three_point_example()
    pred[0, 9] = np.nan
    with pytest.raises(ValueError, match="non-finite prediction"):
        per_image_nme(pred, gt, [40.0])
    with pytest.raises(ValueError):
        per_image_nme(pred[:, :5], gt, [40.0])


def test_nanmean_leaves_out_nan_and_none_without_warnings():
    assert nanmean([1.0, None, 3.0, np.nan]) == 2.0
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert math.isnan(nanmean([])) and math.isnan(nanmean([np.nan, None]))
        rows = nanmean([[1.0, np.nan], [np.nan, np.nan]], axis=-1)
    assert rows[0] == 1.0 and math.isnan(rows[1])
    assert nanmean([[1.0, 2.0], [3.0, np.nan]], axis=0) == pytest.approx([2.0, 2.0])


# ----------------------------------------------------------------------------------- FR / CED / AUC
def test_failure_rate_by_hand():
    nme = [0.05, 0.08, 0.081, 0.2, np.nan]
    assert failure_rate(nme, 0.08) == pytest.approx(2 / 4)  # strictly larger fails; NaN left out
    assert failure_rate(nme, 0.10) == pytest.approx(1 / 4)
    assert math.isnan(failure_rate([], 0.1))


def test_ced_curve_steps():
    t, f = ced_curve([0.02, 0.05, 0.2, 0.05], 0.1, steps=11)
    assert t == pytest.approx(np.linspace(0, 0.1, 11))
    assert f[0] == 0 and f[2] == pytest.approx(0.25) and f[5] == pytest.approx(0.75) and f[10] == pytest.approx(0.75)
    assert np.all(np.diff(f) >= 0)


def test_auc_hand_value():
    assert auc([0.0, 0.05, 0.2], 0.1) == pytest.approx((1 + 0.5 + 0) / 3)
    assert auc([0.1], 0.1) == pytest.approx(0.0)
    assert auc([0.0, 0.0], 0.08) == pytest.approx(1.0)


def test_auc_exact_matches_numerical_integration_of_explicit_ced():
    rng = np.random.default_rng(0)
    nme = np.abs(rng.normal(0.05, 0.03, 300))
    threshold = 0.1
    exact = auc(nme, threshold)
    # an explicit CED on a fine grid, integrated with the trapezoid rule, independently of the module
    t = np.linspace(0.0, threshold, 20001)
    ced = (nme[:, None] <= t[None, :]).mean(axis=0)
    trapz = float(np.sum((ced[1:] + ced[:-1]) * np.diff(t)) / 2 / threshold)
    assert exact == pytest.approx(trapz, abs=1e-3)
    assert exact == pytest.approx(auc_numerical(nme, threshold), abs=1e-3)
    assert 0.0 < exact < 1.0


# ----------------------------------------------------------------------------------------------- PCK
def test_pck_by_hand():
    gt = np.zeros((2, 3, 2))
    pred = gt.copy()
    norm = np.array([10.0, 10.0])  # alpha 0.2 -> correct within 2 px
    pred[0, 0] = (1.0, 0.0)  # correct
    pred[1, 0] = (3.0, 0.0)  # wrong
    pred[0, 1] = (0.0, 2.0)  # exactly at the threshold: correct
    pred[1, 1] = (1.5, 1.5)  # 2.12: wrong
    gt[1, 2] = np.nan  # joint 2 only scored on image 0, where it is exact
    per_joint, mean = pck(pred, gt, norm, alpha=0.2)
    assert per_joint == pytest.approx([0.5, 0.5, 1.0])
    assert mean == pytest.approx(2.0 / 3.0)


def test_pck_groups_and_evaluate_lsp():
    assert joint_group("left_knee") == "knee" and joint_group("r_knee") == "knee"
    assert joint_group("head_top") == "head" and joint_group("neck") == "head"
    schema = lsp_schema()
    per_joint = np.arange(14) / 14.0
    groups = pck_by_group(per_joint, schema)
    assert list(groups) == ["head", "shoulder", "elbow", "wrist", "hip", "knee", "ankle"]
    assert groups["ankle"] == pytest.approx((0 + 5) / 2 / 14)
    assert groups["head"] == pytest.approx((12 + 13) / 2 / 14)
    explicit = pck_by_group(per_joint, LSP_NAMES, {"legs": ["left_ankle", 0]})
    assert explicit == {"legs": pytest.approx((5 + 0) / 2 / 14)}

    gt = np.zeros((2, 14, 2))
    gt[:, 9] = (0.0, 0.0)  # left shoulder
    gt[:, 2] = (0.0, 50.0)  # right hip: torso 50 px, PCK radius 10 px
    pred = gt.copy()
    pred[0, 0] += (11.0, 0.0)  # right ankle wrong on image 0
    pred[1, 13] += (0.0, 10.0)  # head top at the limit on image 1: correct
    res = evaluate_predictions(pred, gt, schema, thresholds=(0.1,))
    p = res["pck"]
    assert p["alpha"] == 0.2
    assert p["per_point"][0] == pytest.approx(0.5) and p["per_point"][13] == pytest.approx(1.0)
    assert p["groups"]["ankle"] == pytest.approx(0.75) and p["groups"]["head"] == pytest.approx(1.0)
    assert p["mean"] == pytest.approx(1 - 0.5 / 14)


# ------------------------------------------------------------------------------------------- evaluate
def test_subsets_from_attributes_and_explicit():
    schema = load_schema("wflw98")
    rng = np.random.default_rng(3)
    gt = rng.uniform(0, 100, (4, 98, 2))
    gt[:, 60] = (20.0, 50.0)
    gt[:, 72] = (70.0, 50.0)  # inter-ocular 50 px
    offsets = np.array([1.0, 2.0, 4.0, 8.0])  # image i: every point off by offsets[i] px in x
    pred = gt.copy()
    pred[..., 0] += offsets[:, None]
    attributes = [{"pose": 1, "blur": 0}, {"pose": 0, "blur": "1"}, {"pose": 1, "blur": "0"}, {}]
    assert subset_indices(schema, attributes) == {"pose": [0, 2], "blur": [1]}  # no image has "expression"
    res = evaluate_predictions(
        pred, gt, schema, attributes=attributes, thresholds=(0.08, 0.10), subsets={"common": [0, 1, 3]}
    )
    json.dumps(res, allow_nan=False)  # strict JSON
    assert res["num_images"] == 4
    assert res["per_image_nme"] == pytest.approx(list(offsets / 50))
    assert res["nme"] == pytest.approx(offsets.mean() / 50)
    assert set(res["subsets"]) == {"pose", "blur", "common"}
    assert res["subsets"]["pose"]["nme"] == pytest.approx((1 + 4) / 2 / 50)
    assert res["subsets"]["pose"]["indices"] == [0, 2]
    assert res["subsets"]["blur"]["num_images"] == 1
    assert res["subsets"]["common"]["nme"] == pytest.approx((1 + 2 + 8) / 3 / 50)
    # FR / AUC keyed by threshold: NMEs 0.02, 0.04, 0.08, 0.16
    k8, k10 = threshold_key(0.08), threshold_key(0.10)
    assert (k8, k10) == ("0.08", "0.1")
    assert res["fr"][k8] == pytest.approx(0.25) and res["fr"][k10] == pytest.approx(0.25)
    assert res["auc"][k10] == pytest.approx((0.8 + 0.6 + 0.2 + 0) / 4)
    assert res["subsets"]["common"]["fr"][k10] == pytest.approx(1 / 3)
    assert len(res["per_point_nme"]) == 98
    assert res["per_point_nme"][5] == pytest.approx(offsets.mean() / 50)
    assert "pck" not in res
    # inter-pupil (points 96, 97) is reported beside the protocol's inter-ocular
    assert set(res["nme_by_normaliser"]) == {"inter_ocular", "inter_pupil"}  # no boxes: box skipped


def test_evaluate_needs_boxes_for_box_normaliser():
    gt = np.zeros((1, 68, 2))
    with pytest.raises(ValueError, match="boxes"):
        evaluate_predictions(gt, gt, "w300_68", normaliser="box")
