"""No lost work and no silent failures: run folders, locks, resumes with other configs, partial metrics
files, diverged runs and unreadable images (issue 11); out-of-range values, full disks and runs that
ended before their first epoch (issue 25)."""

from __future__ import annotations

import csv
import errno
import fcntl
import math
import shutil
from pathlib import Path

import pytest
import torch

import awing.engine.train as train_module
from awing.app.cli import main
from awing.core.checkpoint import load_checkpoint
from awing.core.config import ConfigError, save_config
from awing.engine.runtime import MetricsLog, RunFolderError
from awing.engine.train import TrainingDiverged, train


def run_dir_of(cfg) -> Path:
    return Path(cfg.train.out_dir) / cfg.train.name


def test_training_into_an_existing_run_without_resume_is_refused_and_leaves_it_intact(make_config, capsys):
    cfg = make_config()
    train(cfg)
    run_dir = run_dir_of(cfg)
    before = {p.name: p.read_bytes() for p in run_dir.iterdir() if p.is_file()}
    with pytest.raises(RunFolderError, match="--resume.*train.name.*train.overwrite"):
        train(cfg)
    assert {p.name: p.read_bytes() for p in run_dir.iterdir() if p.is_file()} == before
    save_config(cfg, run_dir.parent / "again.yaml")
    assert main(["train", str(run_dir.parent / "again.yaml"), f"train.name={cfg.train.name}"]) == 2
    assert "already holds a run" in capsys.readouterr().err
    train(make_config("train.overwrite=true", "optim.epochs=2"))  # an explicit overwrite replaces it
    assert load_checkpoint(run_dir / "last.pt")["epoch"] == 2


def test_a_second_run_on_a_folder_that_another_run_holds_is_refused(make_config):
    cfg = make_config()
    run_dir = run_dir_of(cfg)
    run_dir.mkdir(parents=True)
    with open(run_dir / ".lock", "a+") as held:  # what a running `awing train` holds
        fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)
        with pytest.raises(RunFolderError, match="in use by another awing run"):
            train(cfg)
    assert not (run_dir / "metrics.csv").exists()
    train(cfg)  # the lock is gone with its holder
    assert (run_dir / "last.pt").exists()


def test_resume_with_a_changed_experiment_is_refused_and_allowed_changes_are_recorded(make_config, caplog):
    cfg = make_config("optim.epochs=1")
    train(cfg)
    for change in ("optim.lr=1e-2", "optim.milestones=[5]", "loss.name=mse", "targets.sigma=2.0"):
        with pytest.raises(ConfigError, match=change.split("=")[0].replace(".", r"\.")):
            train(make_config("optim.epochs=2", change), resume="auto")
    caplog.set_level("INFO", logger="awing.train")
    longer = make_config("optim.epochs=2")
    train(longer, resume="auto")
    assert "optim.epochs changed from 1 to 2" in caplog.text
    ckpt = load_checkpoint(run_dir_of(longer) / "last.pt")
    assert ckpt["epoch"] == 2 and ckpt["config"]["optim"]["epochs"] == 2  # the record says what ran


def test_resume_after_an_override_is_understood(make_config, capsys):
    cfg = make_config("optim.epochs=1")
    train(cfg)
    config = run_dir_of(cfg).parent / "c.yaml"
    save_config(cfg, config)
    assert main(["train", str(config), "--resume", "optim.epochs=2"]) == 0  # the override is not a path
    assert load_checkpoint(run_dir_of(cfg) / "last.pt")["epoch"] == 2


def test_resume_with_nothing_to_resume_fails_at_once_saying_to_start_without_it(make_config, monkeypatch, capsys):
    def no_data(*args):
        raise AssertionError("the data was read before the resume was checked")

    monkeypatch.setattr(train_module, "load_training_splits", no_data)
    cfg = make_config()
    with pytest.raises(RunFolderError, match=r"last\.pt does not exist: nothing to continue.*without --resume"):
        train(cfg, resume="auto")
    with pytest.raises(RunFolderError, match=r"elsewhere\.pt does not exist$"):
        train(cfg, resume=str(run_dir_of(cfg).parent / "elsewhere.pt"))
    assert not run_dir_of(cfg).exists()  # nothing written
    config = run_dir_of(cfg).parent.parent / "c.yaml"
    save_config(cfg, config)
    assert main(["train", str(config), "--resume"]) == 2
    assert "start the run without --resume" in capsys.readouterr().err


def test_a_metrics_file_cut_short_does_not_merge_into_the_next_row(tmp_path):
    log = MetricsLog(tmp_path, tensorboard=False)
    log.write({"epoch": 1, "train_loss": 0.5})
    with (tmp_path / "metrics.csv").open("a") as f:
        f.write("2,0.4")  # killed while writing the row of epoch 2
    log.write({"epoch": 2, "train_loss": 0.25})
    rows = list(csv.DictReader((tmp_path / "metrics.csv").open()))
    assert rows == [{"epoch": "1", "train_loss": "0.5"}, {"epoch": "2", "train_loss": "0.25"}]
    (tmp_path / "metrics.csv").write_text("epoch,train_loss\n1,0.5\ngarbage,x\n")
    with pytest.raises(ValueError, match=r"metrics\.csv, line 3"):
        log.write({"epoch": 2, "train_loss": 0.25})


def test_a_non_finite_loss_stops_the_run_naming_epoch_and_step_and_keeps_the_checkpoint(make_config, monkeypatch):
    cfg = make_config("optim.epochs=3")
    real = train_module.build_loss
    calls = {"n": 0}

    def diverging(name, **params):
        loss = real(name, **params)

        def forward(pred, target, weight=None):
            calls["n"] += 1
            value = loss(pred, target, weight)
            return value * float("nan") if calls["n"] > 2 else value  # epoch 2 diverges

        return forward

    monkeypatch.setattr(train_module, "build_loss", diverging)
    with pytest.raises(TrainingDiverged, match="epoch 2, step 3"):
        train(cfg)
    run_dir = run_dir_of(cfg)
    last = load_checkpoint(run_dir / "last.pt")
    assert last["epoch"] == 1 and all(torch.isfinite(v).all() for v in last["model"].values() if v.is_floating_point())
    best = load_checkpoint(run_dir / "best.pt")
    assert math.isfinite(best["metrics"]["val_nme"])
    monkeypatch.setattr(train_module, "build_loss", real)
    train(cfg, resume="auto")  # resumable from there
    assert load_checkpoint(run_dir / "last.pt")["epoch"] == 3


def test_a_diverging_config_is_refused_before_training(make_config, capsys):
    cfg = make_config()
    config = Path(cfg.train.out_dir) / "c.yaml"
    config.parent.mkdir(parents=True, exist_ok=True)
    save_config(cfg, config)
    for bad in ("optim.lr=.inf", "loss.params={theta: -0.5}"):
        assert main(["train", str(config), bad]) == 2
        err = capsys.readouterr().err
        assert err.startswith("awing: error:") and "Traceback" not in err
    assert not run_dir_of(cfg).exists()


def test_every_training_image_unreadable_is_an_error_naming_some_of_them(make_config, synthetic_copy):
    for image in (synthetic_copy / "images" / "train").iterdir():
        image.write_bytes(b"not an image")
    with pytest.raises(ValueError, match=r"8 of 8 training images could not be read.*images/train/0000"):
        train(make_config(root=synthetic_copy))


def test_evaluation_reports_the_images_it_could_not_score(trained_run, synthetic_copy, tmp_path):
    broken = sorted((synthetic_copy / "images" / "val").iterdir())[1]
    broken.write_bytes(b"")
    out = tmp_path / "eval"
    spec = f"synthetic:{synthetic_copy}:val"
    assert main(["eval", str(trained_run / "best.pt"), spec, "--out", str(out), "--device", "cpu"]) == 0
    from awing.engine.reports import load_results

    val = load_results(out)["testsets"]["val"]  # another root than the run's: results_synthetic_val_HASH.json
    assert val["num_images"] == 4 and val["num_unreadable"] == 1 and val["unreadable_images"] == [str(broken)]
    assert val["num_unscored"] == 0


def test_eval_batch_size_does_not_rewrite_the_training_batch_size(trained_run, tmp_path):
    out = tmp_path / "eval"
    assert main(["eval", str(trained_run / "best.pt"), "--out", str(out), "--batch-size", "2", "--device", "cpu"]) == 0
    import json

    import yaml

    config = json.loads((out / "results.json").read_text())["config"]
    assert config["eval"]["batch_size"] == 2 and config["optim"]["batch_size"] == 4
    assert yaml.safe_load((trained_run / "config.yaml").read_text())["optim"]["batch_size"] == 4


# ------------------------------------------------------------------------------------------ issue 25
def one_error_line(err: str) -> str:
    lines = [line for line in err.splitlines() if line.startswith("awing: error:")]
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


@pytest.mark.parametrize(
    "override, message",
    [
        ("augment.rotation=-30", "augment.rotation: must be in [0, 180] (degrees), got -30"),
        ("augment.scale=5", "augment.scale: must be a fraction in [0, 1), got 5"),
        ("augment.translation=-6", "augment.translation: must be >= 0"),
        ("model.input_size=16384", "model.input_size: must be a multiple of 32 in [64, 2048], got 16384"),
        ("model.input_size=100", "model.input_size: must be a multiple of 32 in [64, 2048], got 100"),
        ("train.threads=1000", "train.threads: must be in [1, 256], got 1000"),
    ],
)
def test_an_out_of_range_value_is_one_line_naming_the_key_and_range_before_any_data_is_read(
    make_config, tmp_path, monkeypatch, capsys, override, message
):
    cfg = make_config()
    save_config(cfg, tmp_path / "c.yaml")
    read = []
    monkeypatch.setattr(train_module, "load_training_splits", lambda cfg: read.append(cfg))
    assert main(["train", str(tmp_path / "c.yaml"), override]) == 2
    assert message in one_error_line(capsys.readouterr().err)
    assert read == [] and not run_dir_of(cfg).exists()


def failing_save(monkeypatch, error: Exception):
    """``torch.save`` that writes part of the epoch-1 ``last.pt`` and fails as a full disk does."""
    real = torch.save

    def save(obj, f, *args, **kwargs):
        if ".last.pt." in Path(f).name and obj.get("epoch") == 1:
            Path(f).write_bytes(b"partial")
            raise error
        return real(obj, f, *args, **kwargs)

    monkeypatch.setattr(torch, "save", save)


@pytest.mark.parametrize(
    "error, free",
    [
        (OSError(errno.ENOSPC, "No space left on device"), 10**9),
        # what torch's zip writer raises on a full device: no errno, no "No space left"
        (RuntimeError("[enforce fail at inline_container.cc:672] . unexpected pos 428992 vs 428888"), 0),
    ],
)
def test_a_full_disk_while_saving_a_checkpoint_is_one_line_naming_the_file_and_keeps_the_previous_one(
    make_config, tmp_path, monkeypatch, capsys, error, free
):
    cfg = make_config("optim.epochs=2")
    save_config(cfg, tmp_path / "c.yaml")
    failing_save(monkeypatch, error)
    usage = shutil.disk_usage(tmp_path)
    monkeypatch.setattr(shutil, "disk_usage", lambda path: usage._replace(free=free))
    assert main(["train", str(tmp_path / "c.yaml")]) == 2
    line = one_error_line(capsys.readouterr().err)
    last = run_dir_of(cfg) / "last.pt"
    assert "no space left" in line and str(last) in line and "unchanged" in line
    monkeypatch.undo()
    assert load_checkpoint(last)["epoch"] == 0  # the checkpoint written before epoch 1
    assert not [p.name for p in run_dir_of(cfg).iterdir() if p.name.endswith(".tmp")]


def test_a_run_that_ended_before_its_first_epoch_can_be_run_again_into_its_folder(make_config, monkeypatch):
    """Its epoch-0 last.pt holds no work: the retry (with a fixed config) needs neither --resume nor
    train.overwrite, while a folder with a finished epoch is still protected."""
    cfg = make_config("optim.lr=1e-1")

    def broken(*args, **kwargs):
        raise ValueError("broken in the first step")

    monkeypatch.setattr(train_module, "training_targets", broken)
    with pytest.raises(ValueError, match="first step"):
        train(cfg)
    run_dir = run_dir_of(cfg)
    assert load_checkpoint(run_dir / "last.pt")["epoch"] == 0
    monkeypatch.undo()
    fixed = make_config("optim.lr=5e-4")
    train(fixed)
    assert load_checkpoint(run_dir / "last.pt")["epoch"] == 1
    assert load_checkpoint(run_dir / "last.pt")["config"]["optim"]["lr"] == 5e-4
    with pytest.raises(RunFolderError, match="already holds a run"):
        train(fixed)
