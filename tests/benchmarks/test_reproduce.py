"""benchmarks/reproduce.py: the table cells come from the runs' results.json, and the FPS column's labels."""

from __future__ import annotations

import json
import re
import shutil

import pytest
import torch

from awing.core.config import load_config
from awing.core.device import inference_dtype
from benchmarks.reproduce import (
    CONFIGS,
    ROOT,
    ced_figure,
    dark_nme,
    fps_at_batch1,
    fps_label,
    metric_table,
    metrics_of,
    provenance,
    row_key,
    stacks_figure,
    table_rows,
    training_loss_table,
    validation_curves_figure,
)


def copy_with_nme(run, dest, nme: float):
    shutil.copytree(run, dest)
    path = dest / "results.json"
    res = json.loads(path.read_text())
    next(iter(res["testsets"].values()))["nme"] = nme
    path.write_text(json.dumps(res))
    return dest


def test_seeded_rows_are_mean_and_sample_std_and_single_runs_are_plain(trained_run, tmp_path):
    seeds = [copy_with_nme(trained_run, tmp_path / f"s{i}", nme) for i, nme in enumerate([0.05, 0.07])]
    text, data = metric_table("T", {"seeded": seeds, "single": [trained_run], "missing": []})
    rows = {line.split(" | ")[0].strip("| "): line for line in text.splitlines() if line.startswith("| ")}
    assert "| seeded | 2 | 6.00 ± 1.41 |" in rows["seeded"]  # sample std of 5 and 7 is sqrt(2)
    own = metrics_of(trained_run)
    assert f"| single | 1 | {100 * own['nme']:.2f} | {100 * own['fr']:.2f} | {own['auc']:.4f} |" in rows["single"]
    assert "not run yet" in rows["missing"] and rows["missing"].count("|") == rows["single"].count("|")
    assert [m["nme"] for m in data["seeded"]] == [0.05, 0.07] and "missing" not in data
    assert "NME % (inter-pupil) | train min" in text


def test_rows_show_the_inter_pupil_nme_and_the_training_minutes_of_their_runs(trained_run, tmp_path):
    runs = [copy_with_nme(trained_run, tmp_path / f"s{i}", 0.05) for i in range(2)]
    for run, seconds in zip(runs, (60.0, 180.0)):
        (run / "wall_seconds.txt").write_text(str(seconds))
        path = run / "results.json"
        res = json.loads(path.read_text())
        next(iter(res["testsets"].values()))["nme_by_normaliser"]["inter_pupil"] = 0.08
        path.write_text(json.dumps(res))
    text, _ = metric_table("T", {"two": runs})
    row = next(line for line in text.splitlines() if line.startswith("| two "))
    assert "| 8.00 ± 0.00 | 2 ± 1 | cpu |" in row  # minutes: mean 2, sample std sqrt(2) -> "2 ± 1"


def test_the_dark_column_rescores_the_runs_best_checkpoint_and_is_written_once(trained_run, tmp_path):
    """``dark_nme`` is ``awing eval best.pt --decoder dark`` on the run's val split, cached in the run."""
    run = shutil.copytree(trained_run, tmp_path / "run")
    nme = dark_nme(run)
    recorded = json.loads((run / "eval_dark" / "results.json").read_text())
    assert recorded["config"]["eval"]["decoder"] == "dark" and nme == recorded["testsets"]["val"]["nme"]
    assert nme != metrics_of(run)["nme"]  # the same checkpoint, read with another decoder
    (run / "best.pt").unlink()  # cached: no second evaluation
    assert dark_nme(run) == nme
    text, _ = metric_table("T", {"row": [run]}, {"row": "1.23"}, "NME % (dark decoder)")
    assert "| trained on | NME % (dark decoder) |" in text and text.rstrip().endswith("| 1.23 |")


def test_fps_is_measured_per_row_and_labelled_relative_to_the_first_row(trained_run):
    fps = fps_at_batch1({"first": trained_run, "second": trained_run}, repeats=3)
    assert fps.keys() == {"first", "second"} and all(f > 0 for f in fps.values())
    label = fps_label(150.0, 200.0)
    fp32 = "" if inference_dtype(torch.device("cpu")) is not None else ", fp32"  # the path FaceAligner would take
    assert re.fullmatch(rf"150\.0 FPS \(0\.75x; CPU, batch 1, \d+ threads?{fp32}\)", label), label


def test_the_figures_are_written_from_the_runs(trained_run, tmp_path):
    seeds = [copy_with_nme(trained_run, tmp_path / f"s{i}", nme) for i, nme in enumerate([0.05, 0.07])]
    _, data = metric_table("T", {"1 stack": seeds, "2 stacks": [trained_run]})
    paths = [
        ced_figure({"a": seeds[0], "b": trained_run}, tmp_path / "ced.png", "t"),
        stacks_figure(data, {"1 stack": 200.0, "2 stacks": 120.0}, tmp_path / "stacks.png", "t"),
        validation_curves_figure({"a": seeds, "b": [trained_run]}, tmp_path / "val.png", "t"),
    ]
    for path in paths:
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize("table", ["table5", "table6", "table7", "table10", "table11", "table12", "schedule"])
@pytest.mark.parametrize("dataset", sorted(CONFIGS))
def test_every_row_of_every_table_is_a_valid_config(table, dataset):
    rows = table_rows(table, dataset)
    assert rows
    for label, overrides in rows.items():
        cfg = load_config(ROOT / CONFIGS[dataset], overrides)
        assert cfg.optim.milestones[-1] < cfg.optim.epochs, label
    keys = [row_key(label, overrides) for label, overrides in rows.items()]
    assert len(set(keys)) == len(keys)  # distinct rows never share a run folder


@pytest.mark.parametrize("dataset", ["w300", "w300-32"])
def test_300w_table7_ends_with_the_full_method_on_two_stacks_so_boundary_coordinates_act(dataset):
    rows = table_rows("table7", dataset)
    assert list(rows)[:3] == ["MSE", "AW", "AW+WM"] and len(rows) == 4
    full = load_config(ROOT / CONFIGS[dataset], rows[list(rows)[-1]])
    assert full.model.stacks == 2 and full.model.boundary and full.model.coordconv and full.model.boundary_coords
    assert full.loss.name == "awing" and full.loss.weight_map == "paper"
    mse = load_config(ROOT / CONFIGS[dataset], rows["MSE"])
    assert mse.model.stacks in (None, 1)  # None: the named model's own (awing-1hg-tiny: one stack)
    assert not mse.model.boundary and mse.loss.name == "mse"


def test_training_loss_table_gives_each_epoch_relative_to_the_first_run(tmp_path):
    for name, (mse_all, mse_fg) in {"ref": ("0.0100", "0.2000"), "other": ("0.0080", "0.2500")}.items():
        (tmp_path / name).mkdir()
        (tmp_path / name / "metrics.csv").write_text(
            f"epoch,train_mse_all,train_mse_fg\n1,{mse_all},{mse_fg}\n2,{mse_all},{mse_fg}\n"
        )
    text = training_loss_table({"MSE": tmp_path / "ref", "AW": tmp_path / "other"}, "T")
    assert text.startswith("### T (last stack, per epoch)")
    assert "| AW_all | 0.0080 (-20%) | 0.0080 (-20%) |" in text and "| AW_fg | 0.2500 (+25%) |" in text
    assert "| MSE_all | 0.0100 | 0.0100 |" in text


def test_provenance_names_the_commits_the_runs_were_trained_at(trained_run, tmp_path):
    old = copy_with_nme(trained_run, tmp_path / "old", 0.05)
    res = json.loads((old / "results.json").read_text())
    del res["environment"]  # results.json from before the environment was recorded
    (old / "results.json").write_text(json.dumps(res))
    env = json.loads((trained_run / "results.json").read_text())["environment"]
    line = provenance([trained_run, trained_run, old])
    assert "unrecorded (1 run)" in line
    if env["git_commit"]:
        assert f"{env['git_commit'][:7]}" in line and "(2 runs)" in line
