"""Named evaluation conventions (paper / authors / hrnet / mmpose): normalisers, pooling, labels, crop rules.

Real data: mmpose's two AFLW fixture faces (../shared/data/fixtures/mmpose_samples/aflw/test_aflw.json,
with mmpose's ``center`` / ``scale`` / ``box_size``), every point displaced by (3, 4) px, i.e. 5 px.
"""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from awing.data.crop import crop_matrix, crop_square
from awing.data.dataset import LandmarkDataset
from awing.data.readers import coco
from awing.data.sample import Sample
from awing.engine.metrics import CONVENTION_NAMES, CONVENTIONS, evaluate_predictions, resolve_convention
from awing.engine.reports import make_results, results_markdown
from awing.schemas import load_schema

from shared_data import SHARED, need

AFLW = SHARED / "fixtures" / "mmpose_samples" / "aflw"


@pytest.fixture(scope="module")
def aflw_faces():
    return coco.read(need(AFLW), "test", ann_file="test_aflw.json")


def test_coco_reader_keeps_mmpose_center_scale_and_box_size(aflw_faces):
    assert [s.attributes for s in aflw_faces] == [
        {"center": [449.0, 321.0], "scale": 1.81, "box_size": 362.0},
        {"center": [166.0, 185.0], "scale": 0.64, "box_size": 128.0},
    ]


def test_aflw_nme_of_mmposes_two_faces_under_each_convention(aflw_faces):
    gt = np.stack([s.landmarks for s in aflw_faces]).astype(np.float64)
    boxes = np.stack([s.box for s in aflw_faces])
    attributes = [s.attributes for s in aflw_faces]
    pred = gt + np.array([3.0, 4.0])  # 5 px at every point
    w, h = boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]
    sqrt_area = np.sqrt(w * h)  # 289.70, 103.75 px: the authors' (and the paper's) AFLW normaliser
    box_size = np.array([362.0, 128.0])  # 200 x scale: HRNet's and mmpose's
    expected = {
        "paper": ("box", "per_image", np.mean(5 / sqrt_area)),
        "authors": ("box", "per_image", np.mean(5 / sqrt_area)),
        "hrnet": ("box_size", "per_image", np.mean(5 / box_size)),
        "mmpose": ("box_size", "pooled", np.mean(5 / box_size)),  # 19 points each: pooled = per-image mean
    }
    got = {}
    for name in CONVENTION_NAMES:
        m = evaluate_predictions(pred, gt, "aflw19", boxes=boxes, attributes=attributes, convention=name)
        normaliser, pooling, nme = expected[name]
        assert (m["convention"], m["normaliser"], m["pooling"]) == (name, normaliser, pooling)
        assert m["nme"] == pytest.approx(nme, rel=1e-9)
        assert m["nme_by_pooling"]["pooled"] == pytest.approx(m["nme_by_pooling"]["per_image"], rel=1e-12)
        got[name] = round(100 * m["nme"], 3)
    assert got == {"paper": 3.273, "authors": 3.273, "hrnet": 2.644, "mmpose": 2.644}
    # default: unchanged (the schema's box normaliser, per-image mean), now labelled as the paper's
    default = evaluate_predictions(pred, gt, "aflw19", boxes=boxes, attributes=attributes)
    assert default["convention"] == "paper" and default["normaliser"] == "box"
    assert default["nme"] == pytest.approx(np.mean(5 / sqrt_area), rel=1e-9)
    assert default["nme_by_normaliser"]["box_size"] == pytest.approx(np.mean(5 / box_size), rel=1e-9)


def test_box_size_needs_the_annotated_scale():
    gt = np.zeros((1, 19, 2)) + np.arange(19)[None, :, None]
    with pytest.raises(ValueError, match="box_size"):
        evaluate_predictions(gt + 1, gt, "aflw19", boxes=np.array([[0, 0, 20, 20]]), convention="hrnet")
    plain = evaluate_predictions(gt + 1, gt, "aflw19", boxes=np.array([[0, 0, 20, 20]]))  # others: skipped
    assert "box_size" not in plain["nme_by_normaliser"]


def test_pooled_nme_weights_images_by_their_scored_points():
    """mmpose averages over all scored points; the paper averages per-image NMEs first."""
    gt = np.zeros((2, 98, 2))
    gt[:, 60], gt[:, 72] = (0.0, 0.0), (100.0, 0.0)  # inter-ocular 100 px
    pred = gt.copy()
    pred[0, :, 0] += 10.0  # image 0: 10 px everywhere (0.1); image 1: 2 px (0.02), but only 49 points scored
    pred[1, :, 0] += 2.0
    gt[1, 49:] = np.nan
    gt[1, 60], gt[1, 72] = (0.0, 0.0), (100.0, 0.0)  # the normaliser's points stay annotated
    per_image = evaluate_predictions(pred, gt, "wflw98")
    pooled = evaluate_predictions(pred, gt, "wflw98", convention="mmpose")
    assert per_image["nme"] == pytest.approx((0.1 + 0.02) / 2)
    scored = 98 + 51
    assert pooled["nme"] == pytest.approx((98 * 0.1 + 51 * 0.02) / scored)
    assert pooled["pooling"] == "pooled" and per_image["pooling"] == "per_image"
    assert pooled["fr"] == per_image["fr"]  # FR and AUC are per image under every convention
    assert pooled["nme_by_pooling"] == per_image["nme_by_pooling"]  # both ways, whichever is the headline
    assert pooled["nme_by_pooling"]["pooled"] == pooled["nme"]
    custom = evaluate_predictions(pred, gt, "wflw98", pooling="pooled", normaliser="inter_pupil")
    assert custom["convention"] == "custom"


@pytest.mark.parametrize(
    ("schema", "convention", "normaliser"),
    [
        ("w300_68", "paper", "inter_ocular"),
        ("w300_68", "authors", "inter_pupil"),
        ("w300_68", "mmpose", "inter_ocular"),
        ("cofw29", "paper", "inter_pupil"),
        ("cofw29", "hrnet", "inter_ocular"),
        ("cofw29", "mmpose", "inter_ocular"),
        ("aflw19", "hrnet", "box_size"),
        ("wflw98", "authors", "inter_ocular"),
    ],
)
def test_conventions_pick_the_normalisers_in_use(schema, convention, normaliser):
    assert resolve_convention(schema, convention)[0] == normaliser
    with pytest.raises(ValueError, match="unknown evaluation convention"):
        resolve_convention(schema, "nope")


def test_conventions_are_a_table_and_a_schema_they_do_not_name_keeps_its_default_normaliser():
    assert CONVENTION_NAMES == ("paper", "authors", "hrnet", "mmpose")
    assert {c.name: c.pooling for c in CONVENTIONS.values()} == {
        "paper": "per_image",
        "authors": "per_image",
        "hrnet": "per_image",
        "mmpose": "pooled",
    }
    fdd = load_schema("fdd14")
    for name in CONVENTION_NAMES:
        assert resolve_convention(fdd, name) == (fdd.default_normaliser, CONVENTIONS[name].pooling)
    assert resolve_convention("w300_68") == resolve_convention("w300_68", "paper")  # None: the paper's


def test_cofw_and_300w_normalisers_differ_as_expected():
    """COFW: inter-pupil (16-17) vs inter-ocular (outer corners 8-9); the latter is larger, NMEs smaller."""
    schema = load_schema("cofw29")
    rng = np.random.default_rng(0)
    gt = rng.uniform(0, 100, size=(3, 29, 2))
    gt[:, 8], gt[:, 9], gt[:, 16], gt[:, 17] = (10, 50), (90, 50), (25, 50), (75, 50)
    pred = gt + 1.0
    paper = evaluate_predictions(pred, gt, schema, convention="paper")
    hrnet = evaluate_predictions(pred, gt, schema, convention="hrnet")
    assert paper["nme"] == pytest.approx(np.sqrt(2) / 50) and hrnet["nme"] == pytest.approx(np.sqrt(2) / 80)


def test_results_markdown_names_the_convention(aflw_faces):
    gt = np.stack([s.landmarks for s in aflw_faces]).astype(np.float64)
    boxes = np.stack([s.box for s in aflw_faces])
    m = evaluate_predictions(
        gt + 1, gt, "aflw19", boxes=boxes, attributes=[s.attributes for s in aflw_faces], convention="mmpose"
    )
    text = results_markdown(make_results("run", load_schema("aflw19"), {"test": m}))
    assert "Evaluation convention: mmpose (box_size, NME pooled over all scored points)." in text
    paper = evaluate_predictions(gt + 1, gt, "aflw19", boxes=boxes)
    text = results_markdown(make_results("run", load_schema("aflw19"), {"test": paper}))
    assert "Evaluation convention: paper (box, NME = mean of per-image NMEs)." in text


def test_a_crop_rule_crops_with_the_stored_rule_and_scores_with_the_annotated_box(tmp_path):
    rule = {"kind": "authors", "pad": 0.05, "factor": 0.64, "integer": True, "clamp": True}
    image = np.full((300, 400, 3), 128, np.uint8)
    cv2.imwrite(str(tmp_path / "face.png"), image)
    points = np.random.default_rng(1).uniform(120, 220, size=(98, 2)).astype(np.float32)
    box = np.array([100.0, 90.0, 260.0, 250.0], np.float32)
    sample = Sample(image=str(tmp_path / "face.png"), landmarks=points, box=box)
    base = LandmarkDataset([sample], "wflw98", 256, enlarge=0.1)
    dataset = LandmarkDataset([sample], "wflw98", 256, enlarge=0.1, crop_rule=rule)
    item = dataset[0]
    cx, cy, side = crop_square(box, rule)  # (180, 170), 0.64 * (168 + 168)
    assert (cx, cy, side) == (180.0, 170.0, pytest.approx(0.64 * 336))
    np.testing.assert_allclose(item["affine"].numpy(), crop_matrix((cx, cy), side, 256), atol=1e-9)
    np.testing.assert_array_equal(dataset.face_box(sample), box)  # the annotated box stays the normaliser's
    assert base[0]["affine"][0, 0].item() == pytest.approx(256 / (160 * 1.1))  # the base dataset: unchanged
