"""benchmarks/reproduce.py: the table cells come from the runs' results.json, and the FPS column's labels;
the table registry drives the command, and each table's files are written from finished runs."""

from __future__ import annotations

import json
import re
import shutil

import cv2
import numpy as np
import pytest
import torch

import benchmarks.reproduce as reproduce_module
from awing.core.config import load_config
from awing.core.device import inference_dtype
from benchmarks.reproduce import (
    CONFIGS,
    ROOT,
    TABLES,
    ced_figure,
    dark_nme,
    fps_at_batch1,
    fps_label,
    main,
    metric_table,
    metrics_of,
    provenance,
    row_key,
    stacks_figure,
    table_rows,
    training_loss_table,
    validation_curves_figure,
)

# matplotlib's default colour cycle: the first, second and third series of a plot
C0, C1, C2 = (31, 119, 180), (255, 127, 14), (44, 160, 44)


def copy_with_nme(run, dest, nme: float, per_image: list[float] | None = None):
    """A copy of ``run`` whose test set's NME is ``nme`` (and its per-image NMEs ``per_image``, if given)."""
    shutil.copytree(run, dest)
    path = dest / "results.json"
    res = json.loads(path.read_text())
    test = next(iter(res["testsets"].values()))
    test["nme"] = nme
    if per_image is not None:
        test["per_image_nme"] = per_image
    path.write_text(json.dumps(res))
    return dest


def write_val_curve(run, val_nme: list[float]):
    """Replace the run's metrics.csv with one row per epoch holding these validation NMEs."""
    rows = "".join(f"{epoch},{nme}\n" for epoch, nme in enumerate(val_nme, start=1))
    (run / "metrics.csv").write_text("epoch,val_nme\n" + rows)


def png_rgb(path) -> np.ndarray:
    """The PNG's pixels, (H, W, 3) uint8 RGB."""
    bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
    assert bgr is not None, f"{path} is not a readable image"
    return bgr[..., ::-1]


def pixels_of(image: np.ndarray, colour: tuple[int, int, int], tolerance: int = 10) -> tuple[np.ndarray, np.ndarray]:
    """Rows and columns of the pixels within ``tolerance`` of ``colour`` in every channel."""
    return np.nonzero((np.abs(image.astype(int) - colour) <= tolerance).all(-1))


def assert_drawn(image: np.ndarray, size: tuple[int, int]):
    """The figure has the expected (height, width) and is not blank: a white page with something on it."""
    assert image.shape == (*size, 3)
    white = (image >= 250).all(-1).mean()
    assert 0.5 < white < 0.99, white  # mostly background, but axes, text and curves take a share


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
    """Each figure is a PNG of its size with one curve (or marker) per row, where the rows' figures put it."""
    rising = [float(v) for v in np.linspace(0.005, 0.06, 20)]  # per-image NMEs: CED curves across the plot
    seeds = [
        copy_with_nme(trained_run, tmp_path / f"s{i}", nme, per_image=[v + 0.03 * i for v in rising])
        for i, nme in enumerate([0.05, 0.07])
    ]
    single = copy_with_nme(trained_run, tmp_path / "single", 0.055)
    for run, curve in ((seeds[0], [0.13, 0.12, 0.11, 0.10]), (seeds[1], [0.14, 0.13, 0.12, 0.11])):
        write_val_curve(run, curve)
    write_val_curve(single, [0.135, 0.13, 0.125, 0.12])
    _, data = metric_table("T", {"1 stack": seeds, "2 stacks": [single]})
    paths = [
        ced_figure({"a": seeds[0], "b": seeds[1]}, tmp_path / "ced.png", "t"),
        stacks_figure(data, {"1 stack": 200.0, "2 stacks": 120.0}, tmp_path / "stacks.png", "t"),
        validation_curves_figure({"a": seeds, "b": [single]}, tmp_path / "val.png", "t"),
    ]
    for path in paths:
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    ced, stacks, val = (png_rgb(path) for path in paths)

    # CED (640 x 480): each row a curve rising from 0 to 1 (far taller than its legend handle), "a" (lower
    # per-image NMEs) left of "b"; validation curves (640 x 400): each row a curve across the epochs
    assert_drawn(ced, (480, 640))
    assert_drawn(val, (400, 640))
    (rows_a, cols_a), (rows_b, cols_b) = pixels_of(ced, C0), pixels_of(ced, C1)
    assert np.ptp(rows_a) > 0.5 * 480 and np.ptp(rows_b) > 0.5 * 480
    assert cols_a.mean() < cols_b.mean()
    for colour in (C0, C1):
        _, cols = pixels_of(val, colour)
        assert cols.size and np.ptp(cols) > 0.5 * 640, colour
    assert pixels_of(ced, C2)[0].size == 0 and pixels_of(val, C2)[0].size == 0  # two rows, two series

    # Table 12's trade-off (640 x 400): one marker per row at its speed, the seeded row with an error bar
    assert_drawn(stacks, (400, 640))
    (rows_1, cols_1), (rows_2, cols_2) = pixels_of(stacks, C0), pixels_of(stacks, C1)
    assert rows_1.size > 20 and rows_2.size > 20 and pixels_of(stacks, C2)[0].size == 0
    assert cols_1.mean() > cols_2.mean()  # 200 FPS right of 120 FPS
    assert np.ptp(rows_1) > 3 * np.ptp(rows_2)  # 6.00 +- 1.41 % spans far more than the single run's marker


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


@pytest.mark.parametrize("dataset", ["w300", "w300-32", "w300-sigma2", "w300-init"])
def test_300w_table7_ends_with_the_full_method_on_two_stacks_so_boundary_coordinates_act(dataset):
    rows = table_rows("table7", dataset)
    assert list(rows)[:4] == ["MSE", "AW", "AW+WM", "AW+WM+B+C+CB, 2 stacks"]
    full = load_config(ROOT / CONFIGS[dataset], rows["AW+WM+B+C+CB, 2 stacks"])
    assert full.model.stacks == 2 and full.model.boundary and full.model.coordconv and full.model.boundary_coords
    assert full.loss.name == "awing" and full.loss.weight_map == "paper"
    # 300-W at 64x64 also splits the full method's gain between the second stack and CB (issue 26)
    split = ["AW+WM, 2 stacks", "AW+WM+B+C, 2 stacks"] if dataset == "w300" else []
    assert list(rows)[4:] == split
    for label in split:
        cfg = load_config(ROOT / CONFIGS[dataset], rows[label])
        assert cfg.model.stacks == 2 and not cfg.model.boundary_coords and cfg.loss.weight_map == "paper"
        assert cfg.model.boundary == cfg.model.coordconv == ("B+C" in label)
    mse = load_config(ROOT / CONFIGS[dataset], rows["MSE"])
    assert mse.model.stacks in (None, 1)  # None: the named model's own (awing-1hg-tiny: one stack)
    assert not mse.model.boundary and mse.loss.name == "mse"


@pytest.mark.parametrize("dataset, section, changed", [("w300-sigma2", "targets", {"sigma": 2.0, "radius": 6}),
                                                       ("w300-init", "model", {"output_init": "small"})])
def test_the_issue26_table7_variants_differ_from_the_64x64_one_only_in_their_recipe_change(dataset, section, changed):
    """Every Table 7 row with one recipe row's change (as the ``recipe`` table's row of that name), nothing else."""
    import dataclasses

    for label, overrides in table_rows("table7", dataset).items():
        variant = load_config(ROOT / CONFIGS[dataset], overrides)
        base = load_config(ROOT / CONFIGS["w300"], overrides)
        assert {k: getattr(getattr(variant, section), k) for k in changed} == changed, label
        same = dataclasses.replace(
            variant, **{section: getattr(base, section)}, train=dataclasses.replace(variant.train, name=base.train.name)
        )
        assert same == base, label  # (the run name defaults to the config file's)


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
    def trained_at(name: str, environment: dict | None):
        """A copy of the run whose results.json records ``environment`` (None: none recorded)."""
        run = copy_with_nme(trained_run, tmp_path / name, 0.05)
        res = json.loads((run / "results.json").read_text())
        del res["environment"]  # results.json from before the environment was recorded
        if environment is not None:
            res["environment"] = environment
        (run / "results.json").write_text(json.dumps(res))
        return run

    old = trained_at("old", None)
    env = json.loads((trained_run / "results.json").read_text())["environment"]
    assert {"git_commit", "git_dirty"} <= env.keys()  # what training records and provenance reads
    line = provenance([trained_run, trained_run, old])
    assert "unrecorded (1 run)" in line
    if env["git_commit"]:
        assert f"{env['git_commit'][:7]}" in line and "(2 runs)" in line
    else:  # trained outside a git checkout: no commit to name
        assert line == "Trained at: unrecorded (3 runs).\n"

    clean = {"git_commit": "0123456789abcdef0123", "git_dirty": False}
    runs = [
        trained_at("a", clean),
        trained_at("b", clean),
        trained_at("dirty", {"git_commit": "fedcba9876543210fedc", "git_dirty": True}),
        trained_at("no_git", {"git_commit": None, "git_dirty": None}),
        old,
    ]
    assert provenance(runs) == (
        "Trained at: 0123456 (2 runs), fedcba9 (uncommitted changes) (1 run), unrecorded (2 runs).\n"
    )
    assert provenance([runs[2]]) == "Trained at: fedcba9 (uncommitted changes) (1 run).\n"
    assert provenance([]) == ""


# ------------------------------------------------------------------------------------ the registry
def test_the_registry_is_the_commands_tables_and_the_docstrings_list(capsys):
    assert list(TABLES) == [
        "table5",
        "table6",
        "table7",
        "table10",
        "table11",
        "table12",
        "sharpness",
        "recipe",
        "schedule",
    ]
    for name, table in TABLES.items():
        assert f"\n    {name:<9} {table.summary[:40]}" in reproduce_module.__doc__
    with pytest.raises(SystemExit):
        main(["table99"])
    err = capsys.readouterr().err
    assert "invalid choice: 'table99'" in err and all(f"'{name}'" in err for name in TABLES)


@pytest.mark.parametrize("dataset", sorted(CONFIGS))
@pytest.mark.parametrize("table", list(TABLES))
def test_every_table_trains_valid_rows_and_seeds_only_its_own_rows(table, dataset):
    rows = TABLES[table].rows(dataset)
    assert rows and rows == table_rows(table, dataset)
    for overrides in rows.values():
        load_config(ROOT / CONFIGS[dataset], overrides)
    assert set(TABLES[table].every_seed(dataset)) <= set(rows)


@pytest.mark.parametrize("dataset", sorted(CONFIGS))
def test_the_seeded_rows_are_table7s_core_rows_and_every_row_of_table12_and_schedule(dataset):
    seeded = {name: set(table.every_seed(dataset)) for name, table in TABLES.items()}
    assert seeded.pop("table12") == set(TABLES["table12"].rows(dataset))
    assert seeded.pop("schedule") == set(TABLES["schedule"].rows(dataset))
    core = seeded.pop("table7")
    assert {"MSE", "AW", "AW+WM"} < core and len(core) == 4
    # issue 26's recipe: the change that matters (the small output init) over every seed, each loss
    recipe = seeded.pop("recipe")
    assert recipe == {"AW, output init N(0, 1e-3)", "MSE, output init N(0, 1e-3)"}
    assert recipe < set(TABLES["recipe"].rows(dataset))
    assert not any(seeded.values())  # the other tables train one seed per row


# Files each table writes under OUT/DATASET besides TABLE.md, and the title its Markdown starts with.
OUTPUTS = {
    "table5": (["table5.json"], "### Table 5: AWing omega / epsilon"),
    "table6": (["table6.json"], "### Table 6: AWing theta"),
    "table7": (["table7.json", "table7_ced.png"], "### Table 7: ablation"),
    "table10": ([], "### Table 10: training loss measured in MSE (last stack, per epoch)"),
    "table11": (["table11.json"], "### Table 11: annotation noise"),
    "table12": (["table12.json", "table12_stacks.png"], "### Table 12: stacks"),
    "sharpness": (["sharpness.json", "sharpness.png"], "### Heatmap sharpness (Fig. 2)"),
    "schedule": (["schedule.json", "schedule_val.png"], "### MSE, AW and AW+WM at 12 and 24 epochs"),
    "recipe": (["recipe.json", "recipe_val.png"], "### AW and MSE, one recipe change at a time"),
}


@pytest.mark.parametrize("table", list(TABLES))
def test_each_table_is_written_from_its_finished_runs_without_training_again(table, trained_run, tmp_path, monkeypatch):
    """Every row's run folder already holds a results.json (so nothing trains): the command writes the table's
    Markdown, with its rows, and the table's own files."""
    assert set(OUTPUTS) == set(TABLES)
    dataset, out = "mtfl5", tmp_path / "out"
    rows = table_rows(table, dataset)
    (out / dataset).mkdir(parents=True)
    for label, overrides in rows.items():
        (out / dataset / f"{row_key(label, overrides)}_s0").symlink_to(trained_run, target_is_directory=True)
    run_one = reproduce_module.run_one

    def finished_only(dataset, label, overrides, seed, args):
        assert (reproduce_module.run_dir_of(dataset, label, overrides, seed, args) / "results.json").exists()
        return run_one(dataset, label, overrides, seed, args)

    monkeypatch.setattr(reproduce_module, "run_one", finished_only)
    monkeypatch.setattr(reproduce_module, "dark_nme", lambda run_dir: 0.0123)  # not an `awing eval` per run
    assert main([table, "--dataset", dataset, "--seeds", "0", "--out", str(out)]) == 0
    files, title = OUTPUTS[table]
    written = {path.name for path in (out / dataset).iterdir() if not path.is_symlink()}
    assert written == {f"{table}.md", *files}  # and nothing else besides the runs
    for name in files:
        assert (out / dataset / name).stat().st_size > 0, name
    text = (out / dataset / f"{table}.md").read_text()
    first, _, body = text.partition("\n")
    assert first == f"<!-- python -m benchmarks.reproduce {table} --dataset {dataset} --seeds 0 --device cpu -->"
    assert f"config {CONFIGS[dataset]}" in body and title in body
    assert "min of training in total" in body
    lines = {
        "table10": ["| MSE_all |", "| AW_all |", "| MSE_fg |", "| AW_fg |"],
        "sharpness": ["| MSE | 1 |", "| AW | 1 |"],
    }.get(table, [f"| {label} | 1 |" for label in rows])  # one seed per row
    assert all(line in body for line in lines), lines
    if table not in ("table10", "sharpness"):  # a metric table: its data, one entry per row
        assert set(json.loads((out / dataset / f"{table}.json").read_text())) == set(rows)
    if table == "table7":
        assert body.count(" 1.23 |\n") == len(rows)  # the dark decoder's column, one cell per row
    if table == "schedule":
        assert "### Table 10 at 24 epochs: training loss measured in MSE" in body


def test_the_recipe_rows_change_one_thing_each_for_aw_and_mse():
    """Issue 26's screening: every change row is the AW or MSE row plus that change's overrides only."""
    from benchmarks.reproduce import ABLATION, RECIPE, RECIPE_CHANGES

    rows = table_rows("recipe", "w300")
    assert rows["AW"] == ABLATION["AW"] and rows["MSE"] == ABLATION["MSE"]
    assert len(rows) == 2 + 2 * len(RECIPE_CHANGES) and rows == RECIPE
    for change, extra in RECIPE_CHANGES.items():
        for method in ("AW", "MSE"):
            assert rows[f"{method}, {change}"] == ABLATION[method] + extra
            load_config(ROOT / CONFIGS["w300"], rows[f"{method}, {change}"])  # every override is a real key
    adam = load_config(ROOT / CONFIGS["w300"], rows["AW, Adam 2e-3"])
    assert (adam.optim.name, adam.optim.lr, adam.loss.name, adam.loss.weight_map) == ("adam", 2e-3, "awing", "none")


def test_the_recipe_diagnosis_is_read_from_the_runs_diag_columns(tmp_path):
    from benchmarks.reproduce import diagnosis_rows, diagnosis_table

    diag = ["share_foreground", "share_difficult", "share_background", "value_at_gt", "peak", "error_px"]
    header = "epoch,val_nme," + ",".join(f"diag_{k}" for k in diag)
    (tmp_path / "aw").mkdir()
    (tmp_path / "aw" / "metrics.csv").write_text(f"{header}\n1,,,,,,,\n5,0.5,0.2,0.05,0.75,0.01,0.04,30.5\n")
    (tmp_path / "old").mkdir()
    (tmp_path / "old" / "metrics.csv").write_text("epoch,val_nme\n5,0.4\n")  # trained before train.diagnose
    rows = diagnosis_rows({"AW": tmp_path / "aw", "old": tmp_path / "old"})
    assert [r["method"] for r in rows] == ["AW"] and len(rows[0]["rows"]) == 1
    assert rows[0]["rows"][0] == pytest.approx(
        {
            "epoch": 5,
            "share_foreground": 0.2,
            "share_difficult": 0.05,
            "share_background": 0.75,
            "value_at_gt": 0.01,
            "peak": 0.04,
            "error_px": 30.5,
        }
    )
    assert "| AW | 5 | 20.0 | 5.0 | 75.0 | 0.010 | 0.040 | 30.50 |" in diagnosis_table(rows)
