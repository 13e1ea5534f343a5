"""Evaluation: exact mapping back to image pixels (an oracle model), the flip test, rank gathering, the CLI."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch

import awing.engine.evaluate as evaluate_module
from awing.app.cli import main
from awing.core.checkpoint import load_checkpoint, save_checkpoint
from awing.core.config import Config
from awing.data.dataset import LandmarkDataset
from awing.data.readers import read_dataset
from awing.engine.distributed import DistInfo
from awing.engine.evaluate import DataSpec, EvalSettings, evaluate_model, results_files
from awing.engine.reports import load_results
from awing.method.codec import HeatmapCodec
from awing.method.model import model_from_checkpoint
from awing.method.targets import landmark_heatmaps
from awing.schemas import load_schema

PNG = b"\x89PNG\r\n\x1a\n"
CODEC = HeatmapCodec(input_size=128, heatmap_size=32)


class Oracle(torch.nn.Module):
    """Outputs the ground-truth heatmaps of every image it was shown (and of its mirror image)."""

    def __init__(self, dataset: LandmarkDataset) -> None:
        super().__init__()
        s, h = dataset.input_size, CODEC.heatmap_size
        self.spec = SimpleNamespace(input_size=s, heatmap_size=h, num_points=dataset.schema.num_points)
        perm = torch.as_tensor(dataset.flip_permutation)
        self.table = {}
        for i in range(len(dataset)):
            item = dataset[i]
            points = item["points"]
            mirrored = points[perm].clone()  # channel k of the mirror image shows landmark perm[k]
            mirrored[:, 0] = s - 1 - mirrored[:, 0]
            for image, pts in ((item["image"], points), (item["image"].flip(-1), mirrored)):
                heat, _ = landmark_heatmaps(CODEC.crop_to_heatmap(pts[None]), (h, h), sigma=1.0, radius=3)
                self.table[image.numpy().tobytes()] = heat[0]
        self.seen = 0

    def forward(self, images: torch.Tensor) -> list[torch.Tensor]:
        keys = (images * 255).round().to(torch.uint8).cpu().numpy()
        self.seen += len(keys)
        return [torch.stack([self.table[k.tobytes()] for k in keys])]


@pytest.fixture(scope="module")
def val_set(synthetic_root) -> LandmarkDataset:
    samples = read_dataset("synthetic", synthetic_root, "val", generate=False)
    return LandmarkDataset(samples, "wflw98", 128, crop="box", enlarge=0.1)


def config(flip: bool = False) -> Config:
    cfg = Config()
    cfg.optim.batch_size = 2
    cfg.eval.flip_test = flip
    return cfg


def settings(flip: bool = False) -> EvalSettings:
    return EvalSettings.from_config(config(flip))


@pytest.mark.parametrize("flip", [False, True])
def test_an_oracle_model_scores_near_zero_in_original_image_pixels(val_set, flip):
    oracle = Oracle(val_set)
    ev = evaluate_model(oracle, CODEC, val_set, val_set.schema, settings(flip), torch.device("cpu"))
    assert oracle.seen == len(val_set) * (2 if flip else 1)
    assert [s.image for s in ev.samples] == [s.image for s in val_set.samples]
    np.testing.assert_array_equal(ev.gt, np.stack([s.landmarks for s in val_set.samples]))
    err = np.linalg.norm(ev.pred - ev.gt, axis=-1)
    # the quarter-pixel decode of exact Gaussians at stride 4 is off by well under an image pixel
    # (0.6 here); a wrong affine, face order or flip permutation by tens of pixels
    assert np.nanmax(err) < 1.0, np.nanmax(err)
    assert ev.nme < 0.02 and ev.summary()["val_fr@0.1"] == 0
    assert ev.pred.shape == (5, 98, 2) and ev.confidence.shape == (5, 98)


def test_predictions_gathered_from_ranks_come_back_in_dataset_order(val_set, monkeypatch):
    """Two ranks with uneven shares (3 + 2 faces): the gathered result equals one process's."""
    oracle = Oracle(val_set)
    device = torch.device("cpu")
    single = evaluate_model(oracle, CODEC, val_set, val_set.schema, settings(), device)
    parts = {}

    def keep(obj, info):
        parts[info.rank] = obj
        return [obj]

    monkeypatch.setattr(evaluate_module.distributed, "all_gather_objects", keep)
    for rank in (0, 1):
        evaluate_model(oracle, CODEC, val_set, val_set.schema, settings(), device, DistInfo(rank, 2))
    assert sum(len(i) for p in parts.values() for i, _, _ in p) == 5
    monkeypatch.setattr(evaluate_module.distributed, "all_gather_objects", lambda obj, info: [parts[0], parts[1]])
    gathered = evaluate_model(oracle, CODEC, val_set, val_set.schema, settings(), device, DistInfo(0, 2))
    np.testing.assert_array_equal(gathered.pred, single.pred)
    assert [s.image for s in gathered.samples] == [s.image for s in single.samples]
    assert gathered.nme == single.nme


def test_evaluating_restores_training_mode(trained_run, val_set):
    model, schema, codec = model_from_checkpoint(load_checkpoint(trained_run / "best.pt"))
    ds = LandmarkDataset(val_set.samples, schema, codec.input_size)
    model.train()
    evaluate_model(model, codec, ds, schema, settings(), torch.device("cpu"))
    assert model.training


# ---------------------------------------------------------------------------------------------- CLI
def results(folder: Path) -> dict:
    return json.loads((folder / "results.json").read_text())


def test_eval_cli_defaults_to_the_runs_val_and_test_splits_and_the_checkpoints_folder(trained_run, tmp_path, capsys):
    out = tmp_path / "eval"
    out.mkdir()
    shutil.copy(trained_run / "best.pt", out / "model.pt")
    assert main(["eval", str(out / "model.pt")]) == 0
    assert "synthetic:val: 5 faces" in capsys.readouterr().out
    for name in ("results.json", "results.md", "results_ced.png", "predictions_val.png", "predictions_test.png"):
        assert (out / name).is_file(), name
    assert (out / "results_ced.png").read_bytes().startswith(PNG)
    got = results(out)["testsets"]
    assert got["val"]["num_images"] == 5 and got["test"]["num_images"] == 4
    # the same model on the same faces: the training run's final (best.pt) validation numbers
    assert got["val"]["nme"] == pytest.approx(results(trained_run)["testsets"]["val"]["nme"], abs=1e-6)
    assert "val" in (out / "results.md").read_text()


def test_eval_cli_takes_format_root_split_test_sets(trained_run, synthetic_root, tmp_path):
    default, named = tmp_path / "default", tmp_path / "named"
    assert main(["eval", str(trained_run / "best.pt"), "--out", str(default)]) == 0
    assert (
        main(
            [
                "eval",
                str(trained_run / "best.pt"),
                f"synthetic:{synthetic_root}:test",
                "--out",
                str(named),
                "--batch-size",
                "3",
            ]
        )
        == 0
    )
    got = results(named)["testsets"]
    assert list(got) == ["test"] and got["test"]["num_images"] == 4
    assert got["test"]["nme"] == pytest.approx(results(default)["testsets"]["test"]["nme"], abs=1e-6)
    assert math.isfinite(got["test"]["auc"]["0.1"])


def test_eval_cli_flip_test_runs(trained_run, tmp_path):
    assert main(["eval", str(trained_run / "last.pt"), "--flip-test", "--out", str(tmp_path)]) == 0
    assert results(tmp_path)["config"]["eval"]["flip_test"] is True
    assert math.isfinite(results(tmp_path)["testsets"]["val"]["nme"])


def test_eval_cli_no_flip_test_overrides_a_run_validated_with_it(trained_run, tmp_path):
    """A run trained with eval.flip_test=true is evaluated as it was validated, unless --no-flip-test."""
    ckpt = load_checkpoint(trained_run / "best.pt")
    ckpt["config"]["eval"]["flip_test"] = True
    save_checkpoint(tmp_path / "flip.pt", ckpt)
    assert main(["eval", str(tmp_path / "flip.pt"), "--out", str(tmp_path / "a")]) == 0
    assert main(["eval", str(tmp_path / "flip.pt"), "--no-flip-test", "--out", str(tmp_path / "b")]) == 0
    flipped, plain = results(tmp_path / "a"), results(tmp_path / "b")
    assert flipped["config"]["eval"]["flip_test"] is True and plain["config"]["eval"]["flip_test"] is False
    assert flipped["testsets"]["val"]["nme"] != plain["testsets"]["val"]["nme"]


def test_eval_cli_decoder_replaces_the_checkpoints_and_is_recorded(trained_run, tmp_path):
    assert main(["eval", str(trained_run / "best.pt"), "--decoder", "dark", "--out", str(tmp_path / "d")]) == 0
    assert main(["eval", str(trained_run / "best.pt"), "--out", str(tmp_path / "q")]) == 0
    dark, quarter = results(tmp_path / "d"), results(tmp_path / "q")
    assert dark["config"]["eval"]["decoder"] == "dark" and quarter["config"]["eval"]["decoder"] == "quarter"
    assert dark["testsets"]["val"]["nme"] != quarter["testsets"]["val"]["nme"]  # the points moved


def test_eval_of_a_shipped_model_never_writes_into_the_package(monkeypatch, tmp_path):
    import awing.engine.evaluate as evaluate

    monkeypatch.setattr(evaluate, "PRETRAINED_DIR", tmp_path)
    assert evaluate.default_out(tmp_path / "w300-1hg-tiny.pt") == Path("runs/eval/w300-1hg-tiny")
    assert evaluate.default_out(Path("runs/a/best.pt")) == Path("runs/a")


@pytest.mark.parametrize(
    "args, message",
    [
        (["{tmp}/none.pt"], "none.pt"),
        (["{run}/best.pt", "nonsense"], "FORMAT:ROOT:SPLIT"),
        (["{run}/best.pt", "nosuchformat:{tmp}:test"], "nosuchformat"),
        (["{run}/best.pt", "fdd:{tmp}/missing:test"], "missing"),
        (["{run}/metrics.csv"], "metrics.csv"),
    ],
)
def test_eval_cli_errors_are_one_line(trained_run, tmp_path, capsys, args, message):
    argv = ["eval", *(a.format(tmp=tmp_path, run=trained_run) for a in args), "--out", str(tmp_path / "o")]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("awing: error:") and message in err and "Traceback" not in err
    assert not (tmp_path / "o").exists()


def test_compare_cli_writes_a_table_and_ced_curves(trained_run, tmp_path):
    other = tmp_path / "flipped"
    assert main(["eval", str(trained_run / "best.pt"), "--flip-test", "--out", str(other)]) == 0
    out = tmp_path / "cmp"
    assert main(["compare", str(trained_run), str(other / "results.json"), "--out", str(out)]) == 0
    table = (out / "comparison.md").read_text()
    assert table.count("\n|") >= 3  # header, rule, one row per run at least
    assert (out / "comparison_ced.png").read_bytes().startswith(PNG)


def test_evaluation_schema_comes_from_the_checkpoint(trained_run):
    schema = model_from_checkpoint(load_checkpoint(trained_run / "best.pt")).schema
    assert schema.to_dict() == load_schema("wflw98").to_dict()


def test_a_model_is_scored_on_data_of_another_layout_over_the_points_they_share(trained_run, tmp_path):
    """The 98-point tiny model on 68-point faces: its predictions are mapped 98 -> 68 by the schemas'
    declared mapping and scored with the 68-point protocol; a layout with no mapping is a clear error."""
    from awing.data import synthetic
    from awing.engine.evaluate import common_layout
    from awing.engine.metrics import per_image_nme
    from awing.schemas import map_points, normaliser_distance, point_mapping

    root68 = synthetic.generate(
        tmp_path / "faces68", progress=False, schema="w300_68", n_train=1, n_val=3, n_test=1, size=96
    )
    schema68 = load_schema("w300_68")
    model, _, codec = model_from_checkpoint(load_checkpoint(trained_run / "best.pt"))
    samples = read_dataset("synthetic", root68, "val", schema="w300_68", generate=False)
    ev = evaluate_model(
        model,
        codec,
        LandmarkDataset(samples, schema68, codec.input_size, enlarge=0.1),
        load_schema("wflw98"),
        settings(),
        torch.device("cpu"),
    )
    assert ev.pred.shape == (3, 98, 2) and ev.gt.shape == (3, 68, 2)
    mapped = map_points(ev.pred, point_mapping("wflw98", "w300_68"))
    expected = per_image_nme(mapped, ev.gt, normaliser_distance(schema68, ev.gt)).mean()
    assert ev.nme == pytest.approx(expected, rel=1e-9) and "w300_68" in ev.metrics["scored_in"]
    with pytest.raises(ValueError, match="no point mapping"):
        common_layout(load_schema("wflw98"), load_schema("lsp14"), ev.pred, np.zeros((3, 14, 2)))


def test_awing_eval_takes_a_test_set_of_another_layout(trained_run, tmp_path):
    """``awing eval MODEL coco:ROOT:SPLIT`` with mmpose's two real 300-W faces (68 points, COCO JSON)."""
    from shared_data import SHARED, need

    root = need(SHARED / "fixtures" / "mmpose_samples" / "300w")
    out = tmp_path / "eval"
    spec = f"coco:{root}:test"
    assert main(["eval", str(trained_run / "best.pt"), spec, "--out", str(out)]) == 0
    name = DataSpec.parse(spec).results_name
    assert name.startswith("results_coco_test_") and not (out / "results.json").exists()
    test = json.loads((out / f"{name}.json").read_text())["testsets"]["test"]
    assert test["num_images"] == 2 and test["scored_in"] == "w300_68 (model wflw98, data w300_68)"
    assert math.isfinite(test["nme"])


# ------------------------------------------------------------------------------ settings and results files
def test_eval_settings_come_from_the_config_with_the_flags_replacing_its_values():
    cfg = config(flip=True)
    cfg.eval.normaliser, cfg.eval.thresholds, cfg.data.workers, cfg.train.seed = "inter_pupil", [0.05], 1, 7
    s = EvalSettings.from_config(cfg)
    assert (s.batch_size, s.workers, s.seed, s.flip_test, s.normaliser, s.thresholds) == (
        2,
        1,
        7,
        True,
        "inter_pupil",
        (0.05,),
    )
    assert s.decoder is None and s.convention is None and s.pooling is None  # None: the codec's, the paper's
    cfg.eval.batch_size = 3
    assert EvalSettings.from_config(cfg).batch_size == 3
    flags = EvalSettings.from_config(cfg, batch_size=5, flip_test=False, decoder="dark", convention="mmpose")
    assert (flags.batch_size, flags.flip_test, flags.decoder, flags.convention) == (5, False, "dark", "mmpose")
    assert flags.recorded_config(cfg)["eval"] == {
        "batch_size": 5,
        "normaliser": "inter_pupil",
        "thresholds": [0.05],
        "flip_test": False,
        "decoder": "dark",
    }
    assert cfg.eval.flip_test is True and cfg.eval.batch_size == 3  # the config is left as it was
    with pytest.raises(ValueError, match="batch size"):
        EvalSettings.from_config(cfg, batch_size=0)
    with pytest.raises(ValueError, match="decoder"):
        EvalSettings(decoder="nope")


def test_a_data_spec_names_its_results_file_by_format_split_and_root(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "data").mkdir()
    spec = DataSpec.parse("mtfl:data:val")
    assert spec == ("mtfl", "data", "val") and str(spec) == "mtfl:data:val"
    assert DataSpec.parse("coco:C:/x:y:test").root == "C:/x:y"  # a root may hold colons
    name = spec.results_name
    assert name.startswith("results_mtfl_val_") and len(name) == len("results_mtfl_val_") + 8
    assert DataSpec("mtfl", str(tmp_path / "data"), "val").results_name == name  # the same folder, spelt apart
    assert DataSpec("mtfl", "other", "val").results_name != name
    assert DataSpec("mtfl", "data", "test").results_name != name
    with pytest.raises(ValueError, match="FORMAT:ROOT:SPLIT"):
        DataSpec.parse("mtfl:val")
    cfg = Config()
    cfg.data.format, cfg.data.root = "fdd", "data"
    own, other = DataSpec("fdd", "data", "val"), DataSpec("mtfl", "data", "val")
    assert own.is_run_data(cfg.data) and not other.is_run_data(cfg.data)
    evs = {"val": SimpleNamespace(spec=own), "test": SimpleNamespace(spec=None)}
    evs["mtfl:val"] = SimpleNamespace(spec=other)
    files = results_files(evs, cfg.data)
    assert {k: list(v) for k, v in files.items()} == {"results": ["val", "test"], name: ["mtfl:val"]}


def test_evaluating_other_sets_never_replaces_the_runs_results_or_each_others(trained_run, synthetic_copy, tmp_path):
    """``awing eval runs/NAME/best.pt FORMAT:ROOT:SPLIT`` on data other than the run's writes files named by
    the set; the run's results.json (its own val / test) and the first set's files stay as they were."""
    run = Path(shutil.copytree(trained_run, tmp_path / "run"))
    own = (run / "results.json").read_bytes()
    first, second = f"synthetic:{synthetic_copy}:val", f"synthetic:{synthetic_copy}:test"
    assert main(["eval", str(run / "best.pt"), first, "--flip-test"]) == 0  # default --out: the run's folder
    name = DataSpec.parse(first).results_name
    assert (run / "results.json").read_bytes() == own
    for file in (f"{name}.json", f"{name}.md", f"{name}_ced.png", f"predictions{name[len('results') :]}_val.png"):
        assert (run / file).is_file(), file
    written = (run / f"{name}.json").read_bytes()
    assert main(["eval", str(run / "best.pt"), second]) == 0
    assert (run / "results.json").read_bytes() == own and (run / f"{name}.json").read_bytes() == written
    other = load_results(run / f"{DataSpec.parse(second).results_name}.json")
    assert list(other["testsets"]) == ["test"] and other["testsets"]["test"]["num_images"] == 4
    assert load_results(run)["testsets"]["val"]["num_unreadable"] == 0  # a folder still loads the run's own
    assert not list(run.glob(".results*")) and not list(run.glob(".predictions*"))  # no temporary files left


def test_same_layout_scores_with_the_data_sets_schema_so_new_subsets_reach_old_checkpoints():
    """A checkpoint keeps a copy of its schema from training time; evaluation on data of the same layout uses
    today's YAML (e.g. the ``large_pose`` subset added for AFLW2000-3D), with the same points."""
    import dataclasses

    from awing.engine.evaluate import scoring_layout
    from awing.schemas import load_schema

    today = load_schema("w300_68")
    stored = dataclasses.replace(today, subsets={"common": "common"})  # as an older checkpoint has it
    layout = scoring_layout(stored, today).layout
    assert layout is today and layout.subsets["large_pose"] == "large_pose"
