"""Reports: results.json round trip, Markdown tables, CED plots, prediction grids, run comparison."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from awing.engine.metrics import evaluate_predictions
from awing.engine.reports import (
    RESULTS_VERSION,
    compare_runs,
    load_results,
    make_results,
    predictions_grid,
    results_markdown,
    upgrade_results,
    write_results,
)
from awing.schemas import Schema, load_schema


def fake_wflw_results(run: str, noise: float, seed: int) -> dict:
    schema = load_schema("wflw98")
    rng = np.random.default_rng(seed)
    b = 12
    gt = rng.uniform(0, 200, (b, 98, 2))
    gt[:, 60] = (50.0, 80.0)
    gt[:, 72] = (150.0, 80.0)
    pred = gt + rng.normal(0, noise, gt.shape) * rng.uniform(0.2, 3.0, (b, 1, 1))
    attributes = [{"pose": int(i % 3 == 0), "occlusion": int(i % 2 == 0)} for i in range(b)]
    test = evaluate_predictions(pred, gt, schema, attributes=attributes, thresholds=(0.08, 0.10))
    return make_results(run, schema, {"test": test}, config={"loss": {"name": "awing"}})


def test_write_results_round_trip(tmp_path):
    results = fake_wflw_results("awing-test", noise=4.0, seed=0)
    paths = write_results(results, tmp_path / "run", "results")
    assert set(paths) == {"json", "markdown", "ced"}
    assert paths["json"].name == "results.json"
    loaded = json.loads(paths["json"].read_text())
    assert loaded == results
    assert load_results(tmp_path / "run") == results  # from the run directory
    test = loaded["testsets"]["test"]
    assert len(test["per_image_nme"]) == 12 and set(test["subsets"]) == {"pose", "occlusion"}

    md = paths["markdown"].read_text()
    assert "awing-test" in md
    assert f"| test | 12 | {100 * test['nme']:.2f} |" in md
    assert f"{100 * test['fr']['0.1']:.2f}" in md and f"{test['auc']['0.1']:.4f}" in md
    assert "FR_8 %" in md and "AUC_10" in md and "NME inter_pupil %" in md
    pose = test["subsets"]["pose"]
    assert f"| test / pose | {pose['num_images']} | {100 * pose['nme']:.2f} |" in md
    assert "## test: by subset" in md  # Table 1 layout: subsets as columns
    assert f"pose ({pose['num_images']})" in md

    img = cv2.imread(str(paths["ced"]))
    assert img is not None and img.shape == (480, 640, 3)


def test_write_results_single_testset_and_pck_table(tmp_path):
    schema = Schema.from_dict(
        {
            "name": "lsp_like",
            "num_points": 4,
            "point_names": ["left_knee", "right_knee", "neck", "head_top"],
            "normalisers": {"torso": {"kind": "torso", "groups": [[2], [0]]}},
            "default_normaliser": "torso",
            "pck_threshold": 0.2,
        }
    )
    gt = np.array([[[0, 50], [20, 50], [0, 0], [0, -10]]] * 2, float)
    pred = gt.copy()
    pred[0, 1] += (20.0, 0.0)  # one knee wrong -> knee PCK 75 %
    res = evaluate_predictions(pred, gt, schema, thresholds=(0.1,))
    paths = write_results(res, tmp_path, "lsp")  # a bare test-set dict is stored as test set "test"
    data = load_results(paths["json"])
    assert data["run"] == "lsp" and data["testsets"]["test"]["pck"]["groups"]["knee"] == pytest.approx(0.75)
    md = paths["markdown"].read_text()
    assert "PCK@0.2" in md and "| Knee | Head | Mean |" not in md  # Table 8 order: head before knee
    assert "| Test set | Head | Knee | Mean |" in md and "| test | 100.00 | 75.00 | 87.50 |" in md
    assert cv2.imread(str(paths["ced"])) is not None


def test_results_markdown_handles_missing_values():
    res = {
        "run": "x",
        "testsets": {"t": {"num_images": 0, "nme": None, "fr": {"0.1": None}, "auc": {"0.1": None}}},
    }
    md = results_markdown(res)
    assert "| t | 0 | – | – | – |" in md


def test_predictions_grid(tmp_path):
    images = [np.full((64, 80, 3), 40, np.uint8) for _ in range(3)]
    gts = [np.array([[12.0, 50.0], [np.nan, np.nan]])] * 3  # below the label
    preds = [np.array([[50.0, 40.0], [30.0, 30.0]])] * 3
    path = predictions_grid(images, preds, gts, tmp_path / "grid.png", cols=2, labels=["a", "", "c"])
    grid = cv2.imread(str(path))  # BGR
    assert grid.shape == (128, 160, 3)
    assert tuple(grid[50, 12]) == (0, 255, 0)  # ground truth green
    assert tuple(grid[40, 50]) == (0, 0, 255)  # prediction red (BGR)
    assert tuple(grid[64 + 40, 50]) == (0, 0, 255)  # third image: row 1, column 0
    assert grid[64:, 80:].max() == 0  # no fourth image: that cell stays black
    assert tuple(grid[30, 80 + 30]) == (0, 0, 255) and tuple(grid[5, 80 + 60]) == (40, 40, 40)
    assert grid[:20, :40].max() > 150 and grid[:20, :40].min() == 0  # the label: white on black outline


def test_compare_runs(tmp_path):
    a = fake_wflw_results("run-a", noise=2.0, seed=1)
    b = fake_wflw_results("run-b", noise=6.0, seed=2)
    write_results(a, tmp_path / "a")
    write_results(b, tmp_path / "b")
    paths = compare_runs([tmp_path / "a", tmp_path / "b" / "results.json"], tmp_path / "cmp")
    md = paths["markdown"].read_text()
    for run in (a, b):
        t = run["testsets"]["test"]
        row = f"| {run['run']} | 12 | {100 * t['nme']:.2f} |"
        assert row in md
        assert f"{100 * t['subsets']['pose']['nme']:.2f}" in md
    assert "pose NME %" in md and "occlusion NME %" in md
    assert md.index("| run-a |") < md.index("| run-b |")
    assert "### test: by subset" in md
    img = cv2.imread(str(paths["ced"]))
    assert img is not None and img.shape == (480, 640, 3)


def test_compare_runs_dedupes_labels_and_rejects_missing(tmp_path):
    a = fake_wflw_results("same", noise=2.0, seed=1)
    write_results(a, tmp_path / "a")
    write_results(a, tmp_path / "b")
    md = compare_runs([tmp_path / "a", tmp_path / "b"], tmp_path / "cmp")["markdown"].read_text()
    assert "| same |" in md and "| same (2) |" in md
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError):
        compare_runs([tmp_path / "empty"], tmp_path / "cmp2")


def test_a_version_1_results_file_loads_with_the_new_names(tmp_path):
    """Version 1 used num_skipped for two things: the unreadable images where skipped_images is there
    (awing eval / training), else the images without a defined NME; nme_per_image was a scalar."""
    v1 = {
        "version": 1,
        "run": "old",
        "schema": "wflw98",
        "testsets": {
            "val": {  # written by awing.engine.evaluate: one unreadable image, one image without an NME
                "num_images": 2,
                "num_skipped": 1,
                "skipped_images": ["a.png"],
                "nme_per_image": 0.05,
                "nme_pooled": 0.051,
                "nme": 0.05,
                "fr": {"0.1": 0.0},
                "auc": {"0.1": 0.5},
                "thresholds": [0.1],
                "per_image_nme": [0.04, None, 0.06],
            },
            "test": {"num_images": 3, "num_skipped": 2, "nme": 0.04},  # evaluate_predictions' own count
        },
    }
    (tmp_path / "results.json").write_text(json.dumps(v1))
    data = load_results(tmp_path)
    assert data["version"] == RESULTS_VERSION == 2
    val, test = data["testsets"]["val"], data["testsets"]["test"]
    assert (val["num_unreadable"], val["unreadable_images"], val["num_unscored"]) == (1, ["a.png"], 1)
    assert val["nme_by_pooling"] == {"per_image": 0.05, "pooled": 0.051}
    assert test["num_unscored"] == 2 and "num_unreadable" not in test
    old_names = {"num_skipped", "skipped_images", "nme_per_image", "nme_pooled"}
    assert not old_names & (set(val) | set(test))
    assert v1["testsets"]["val"]["num_skipped"] == 1  # the input is not changed
    assert "| val | 2 | 5.00 |" in results_markdown(v1)  # tables of an old dict read it the same way
    (tmp_path / "cmp").mkdir()
    assert "| old | 2 |" in compare_runs([tmp_path], tmp_path / "cmp")["markdown"].read_text()
    (tmp_path / "new.json").write_text(json.dumps({**v1, "version": RESULTS_VERSION + 1}))
    with pytest.raises(ValueError, match="newer"):
        load_results(tmp_path / "new.json")


def test_current_results_name_each_count_once(tmp_path):
    res = fake_wflw_results("r", noise=4.0, seed=0)["testsets"]["test"]
    assert res["num_unscored"] == 0 and set(res["nme_by_pooling"]) == {"per_image", "pooled"}
    assert res["nme"] == res["nme_by_pooling"]["per_image"] and isinstance(res["per_image_nme"], list)
    assert not {"num_skipped", "nme_per_image", "nme_pooled"} & set(res)
    assert upgrade_results(fake_wflw_results("r", noise=4.0, seed=0)) == fake_wflw_results("r", noise=4.0, seed=0)


def test_a_failed_write_leaves_the_previous_results_file_whole(tmp_path, monkeypatch):
    results = fake_wflw_results("first", noise=4.0, seed=0)
    paths = write_results(results, tmp_path)
    before = paths["json"].read_bytes()
    real = Path.write_text

    def half_then_fail(self, text, *args, **kwargs):
        real(self, text[: len(text) // 2])
        raise OSError("disk trouble")

    monkeypatch.setattr(Path, "write_text", half_then_fail)
    with pytest.raises(OSError, match="disk trouble"):
        write_results(fake_wflw_results("second", noise=6.0, seed=1), tmp_path)
    monkeypatch.undo()
    assert paths["json"].read_bytes() == before and load_results(tmp_path)["run"] == "first"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["results.json", "results.md", "results_ced.png"]
