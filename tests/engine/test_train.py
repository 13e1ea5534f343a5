"""``awing train`` end to end on a tiny synthetic set: run files, exact resume, signals, bad images, errors."""

from __future__ import annotations

import csv
import json
import math
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

import awing
import awing.engine.train as train_module
from awing.app.cli import main
from awing.core.checkpoint import load_checkpoint, save_checkpoint
from awing.core.config import config_from_dict, load_config, save_config
from awing.data.hints import inference_hints, training_hints
from awing.engine.distributed import DistInfo
from awing.engine.runtime import rng_state, set_rng_state
from awing.engine.train import (
    TRAINING_FIELDS,
    EpochResult,
    StepContext,
    TrainingData,
    TrainState,
    train,
    train_one_epoch,
)
from awing.method.model import model_from_checkpoint, model_payload

ROOT = Path(__file__).resolve().parents[2]


def read_metrics(run_dir: Path) -> list[dict]:
    with (run_dir / "metrics.csv").open() as f:
        return list(csv.DictReader(f))


def run_dir_of(cfg) -> Path:
    return Path(cfg.train.out_dir) / cfg.train.name


def assert_same_weights(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key


# --------------------------------------------------------------------------------------- end to end
def test_a_run_writes_its_config_metrics_checkpoints_and_results(trained_run):
    names = {p.name for p in trained_run.iterdir()}
    expected = {"config.yaml", "metrics.csv", "last.pt", "best.pt", "results.json", "results.md",
                "results_ced.png", "predictions_val.png"}
    assert expected <= names
    assert not any(n.endswith(".tmp") for n in names)  # atomic checkpoint writes leave no temporaries

    rows = read_metrics(trained_run)
    assert [int(r["epoch"]) for r in rows] == [1, 2]
    for row in rows:
        for key in ("lr", "train_loss", "train_mse_all", "train_mse_fg", "images_per_s", "val_nme", "val_fr@0.1",
                    "val_auc@0.1"):
            assert math.isfinite(float(row[key])), key
        assert int(row["skipped_images"]) == 0
        assert float(row["train_mse_fg"]) > float(row["train_mse_all"]) > 0
    assert float(rows[1]["train_loss"]) < float(rows[0]["train_loss"])  # it learns something
    assert float(rows[0]["lr"]) == pytest.approx(5e-5)  # milestone [1]: x0.1 after the first epoch

    results = json.loads((trained_run / "results.json").read_text())
    val = results["testsets"]["val"]
    assert val["num_images"] == 5 and math.isfinite(val["nme"]) and val["nme"] > 0
    assert results["schema"] == "wflw98" and results["run"] == "tiny"
    # best.pt is the checkpoint of the lowest val NME, and the results are computed from it
    best_row = min(rows, key=lambda r: float(r["val_nme"]))
    best = load_checkpoint(trained_run / "best.pt")
    assert best["epoch"] == int(best_row["epoch"])
    assert best["metrics"]["val_nme"] == pytest.approx(float(best_row["val_nme"]), abs=1e-12)
    assert val["nme"] == pytest.approx(best["metrics"]["val_nme"], abs=1e-9)
    assert best["metrics"]["epoch"] == best["epoch"] and best["codec"]["heatmap_size"] == 16  # the codec is stored
    last = load_checkpoint(trained_run / "last.pt")
    assert last["epoch"] == 2 and last["step"] == 4  # 8 faces, batch 4, 2 epochs
    assert {"optimizer", "scheduler", "scaler", "rng", "config"} <= last.keys()
    assert load_config(trained_run / "config.yaml").optim.epochs == 2


def test_results_record_the_code_and_machine_that_produced_them(trained_run):
    env = json.loads((trained_run / "results.json").read_text())["environment"]
    assert env["awing"] == awing.__version__ and env["torch"] == torch.__version__ and env["device"] == "cpu"
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True)
    if (ROOT / ".git").exists() and head.returncode == 0:  # a checkout (CI, developers); None from an sdist
        assert env["git_commit"] == head.stdout.strip() and isinstance(env["git_dirty"], bool)
    else:
        assert env["git_commit"] is None


def test_results_record_the_environment_taken_when_training_started(synthetic_root, tmp_path, monkeypatch):
    """A run records the commit its code was loaded from: a checkout that moves on while it trains (the
    next commit of a session) must not be credited with its numbers."""
    from conftest import tiny_config

    calls = []

    def environment(device=None):
        calls.append(device)
        return {"git_commit": "at start" if len(calls) == 1 else "later", "device": str(device)}

    monkeypatch.setattr(train_module, "environment", environment)
    monkeypatch.setattr("awing.engine.evaluate.environment", environment)
    cfg = tiny_config(synthetic_root, tmp_path, "optim.epochs=1")
    train(cfg)
    recorded = json.loads((tmp_path / cfg.train.name / "results.json").read_text())["environment"]
    assert recorded["git_commit"] == "at start" and len(calls) == 1


def test_a_checkpoint_is_the_model_payload_plus_the_run_and_training_fields(trained_run):
    last = load_checkpoint(trained_run / "last.pt")
    payload = model_payload(*model_from_checkpoint(last))
    run_fields = {"format", "config", "epoch", "step", "best_metric", "metrics", "inference"}
    assert set(last) == set(payload) | run_fields | set(TRAINING_FIELDS)
    assert all(last[k] == payload[k] for k in ("spec", "schema", "codec"))
    # the crop rule the model was trained on travels in the file, read back by the one reader
    assert inference_hints(last) == training_hints(config_from_dict(last["config"]))


def test_train_one_epoch_runs_on_a_step_context_and_stops_at_a_step_boundary(make_config):
    """The loop's parts stand alone: 8 faces in batches of 4 are 2 steps; a stop request ends the epoch
    after the step it came in."""
    cfg = make_config()
    schema, train_samples, val_samples = train_module.load_training_splits(cfg)
    device, info = torch.device("cpu"), DistInfo()
    state = TrainState.build(cfg, schema, device, amp_dtype=None)
    data = TrainingData.build(cfg, schema, train_samples, val_samples, state.codec.input_size, info)
    ctx = StepContext.build(cfg, state, device, None, info)
    data.set_epoch(0)
    result = train_one_epoch(ctx, data.loader, epoch=0, step=5)
    assert isinstance(result, EpochResult) and (result.step, result.stopped, result.totals.samples) == (7, False, 8)
    assert math.isfinite(result.totals.loss) and result.invalid == []
    ctx.stop.requested = True
    result = train_one_epoch(ctx, data.loader, epoch=1, step=7)
    assert (result.step, result.stopped, result.totals.samples) == (8, True, 4)


# ------------------------------------------------------------------------------------------- resume
def test_rng_state_survives_a_checkpoint_round_trip(tmp_path):
    """torch, numpy (including its position in the key stream) and Python's RNGs continue exactly."""
    np.random.seed(1)
    np.random.random(3)  # move numpy off the start of its 624-word block
    np.random.normal()  # and leave a cached Gaussian
    random.random()
    path = save_checkpoint(tmp_path / "rng.pt", {"model": {}, "spec": {}, "schema": {}, "rng": rng_state()})
    expected = (np.random.random(4), np.random.normal(), random.random(), torch.rand(3))
    torch.manual_seed(123)
    np.random.seed(123)
    random.seed(123)
    set_rng_state(load_checkpoint(path)["rng"])
    got = (np.random.random(4), np.random.normal(), random.random(), torch.rand(3))
    np.testing.assert_array_equal(got[0], expected[0])
    assert got[1:3] == expected[1:3]
    assert torch.equal(got[3], expected[3])


def test_resume_continues_exactly_as_an_uninterrupted_run(make_config):
    """2 epochs straight == 1 epoch, then ``resume="auto"`` for the 2nd: same weights, same metrics.

    The learning-rate milestone falls between the two epochs, so the scheduler state has to travel too.
    """
    straight = make_config("optim.epochs=2", "train.name=straight")
    train(straight)
    train(make_config("optim.epochs=1", "train.name=split"))
    resumed = make_config("optim.epochs=2", "train.name=split")
    train(resumed, resume="auto")

    a, b = run_dir_of(straight), run_dir_of(resumed)
    for name in ("last.pt", "best.pt"):
        ca, cb = load_checkpoint(a / name), load_checkpoint(b / name)
        assert_same_weights(ca["model"], cb["model"])
        assert (ca["epoch"], ca["step"], ca["best_metric"]) == (cb["epoch"], cb["step"], cb["best_metric"])
    ca, cb = load_checkpoint(a / "last.pt"), load_checkpoint(b / "last.pt")
    assert ca["scheduler"] == cb["scheduler"]
    for sa, sb in zip(ca["optimizer"]["state"].values(), cb["optimizer"]["state"].values()):
        assert all(torch.equal(sa[k], sb[k]) for k in sa)

    rows_a, rows_b = read_metrics(a), read_metrics(b)
    assert len(rows_a) == len(rows_b) == 2
    for ra, rb in zip(rows_a, rows_b):
        ra.pop("images_per_s"), rb.pop("images_per_s")
        assert ra == rb
    ja, jb = (json.loads((d / "results.json").read_text())["testsets"]["val"] for d in (a, b))
    assert ja["nme"] == jb["nme"]


def test_metrics_rows_keep_their_columns_and_a_resume_from_an_earlier_checkpoint_redoes_its_rows(
    make_config, tmp_path, monkeypatch
):
    """val_every=2: epochs without validation have empty val_* cells, and later rows are not shifted."""
    real_save = train_module.save_checkpoint

    def save_and_keep_epoch1(path, payload):
        if Path(path).name == "last.pt" and payload["epoch"] == 1:
            real_save(tmp_path / "epoch1.pt", payload)
        return real_save(path, payload)

    monkeypatch.setattr(train_module, "save_checkpoint", save_and_keep_epoch1)
    cfg = make_config("optim.epochs=3", "train.val_every=2")
    train(cfg)
    run_dir = run_dir_of(cfg)
    rows = read_metrics(run_dir)
    assert [r["epoch"] for r in rows] == ["1", "2", "3"]
    assert all(None not in r for r in rows)  # no values beyond the header
    assert rows[0]["val_nme"] == "" and rows[1]["val_nme"] != "" and rows[2]["val_nme"] != ""  # + last epoch
    for r in rows:
        assert math.isfinite(float(r["val_nme"] or 0)) and int(r["skipped_images"]) == 0
        assert 0 < float(r["lr"]) <= 5e-4

    # resuming from the epoch-1 checkpoint redoes epochs 2 and 3: their old rows go, the new ones match
    train(cfg, resume=str(tmp_path / "epoch1.pt"))
    again = read_metrics(run_dir)
    assert [r["epoch"] for r in again] == ["1", "2", "3"]
    for a, b in zip(rows, again):
        a.pop("images_per_s"), b.pop("images_per_s")
        assert a == b


def test_sigint_mid_epoch_keeps_the_end_of_epoch_checkpoint_and_resume_is_exact(make_config, monkeypatch, tmp_path):
    """A SIGINT in the second epoch: that step finishes, nothing is written, exit 130; last.pt still holds
    the end of epoch 1, and the resumed run ends with exactly the weights of an uninterrupted run."""
    calls = {"n": 0}
    real = train_module.training_targets

    def step_then_interrupt(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 3:  # the first step of epoch 2 (2 steps per epoch)
            os.kill(os.getpid(), signal.SIGINT)
        return real(*args, **kwargs)

    straight = make_config("optim.epochs=3", "train.name=straight")
    train(straight)
    monkeypatch.setattr(train_module, "training_targets", step_then_interrupt)
    cfg = make_config("optim.epochs=3")
    handler = signal.getsignal(signal.SIGINT)
    with pytest.raises(SystemExit) as stopped:
        train(cfg)
    assert stopped.value.code == 130
    assert signal.getsignal(signal.SIGINT) is handler  # the loop's handlers are removed again
    run_dir = run_dir_of(cfg)
    ckpt = load_checkpoint(run_dir / "last.pt")
    assert ckpt["epoch"] == 1 and ckpt["step"] == 2  # the end of epoch 1, not a state from inside epoch 2
    assert [r["epoch"] for r in read_metrics(run_dir)] == ["1"]

    monkeypatch.setattr(train_module, "training_targets", real)
    results = train(cfg, resume="auto")
    assert [r["epoch"] for r in read_metrics(run_dir)] == ["1", "2", "3"]
    resumed, uninterrupted = load_checkpoint(run_dir / "last.pt"), load_checkpoint(run_dir_of(straight) / "last.pt")
    assert resumed["epoch"] == 3 and resumed["step"] == uninterrupted["step"] == 6
    for key, value in uninterrupted["model"].items():
        assert torch.equal(resumed["model"][key], value), key
    assert math.isfinite(results["testsets"]["val"]["nme"])


def test_sigterm_stops_the_cli_with_exit_143_and_resume_completes(make_config, tmp_path):
    cfg = make_config("optim.epochs=1000", "train.val_every=1000")
    config = tmp_path / "tiny.yaml"
    save_config(cfg, config)
    run_dir = run_dir_of(cfg)
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "awing", "train", str(config)], cwd=ROOT, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.time() + 60
        while not (run_dir / "metrics.csv").exists():  # the first epoch is done: the loop is running
            assert proc.poll() is None, proc.communicate()[1][-3000:]
            assert time.time() < deadline, "no epoch finished within 60 s"
            time.sleep(0.05)
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 143, err[-3000:]  # 128 + SIGTERM, as a shell reports it
    assert "resume" in err
    ckpt = load_checkpoint(run_dir / "last.pt")
    done = len(read_metrics(run_dir))
    assert 1 <= ckpt["epoch"] <= done < 1000  # the stopped epoch is redone on resume

    # resume (in process: cheaper) with fewer epochs, so it completes a moment later
    assert main(["train", str(config), f"optim.epochs={done + 1}", "train.val_every=1", "--resume"]) == 0
    rows = read_metrics(run_dir)
    assert [int(r["epoch"]) for r in rows] == list(range(1, done + 2))
    assert math.isfinite(float(rows[-1]["val_nme"]))
    assert load_checkpoint(run_dir / "last.pt")["epoch"] == done + 1
    assert (run_dir / "results.json").exists()


# --------------------------------------------------------------------------------------- robustness
def test_a_corrupt_image_mid_epoch_is_skipped_and_counted(make_config, synthetic_copy):
    (synthetic_copy / "images" / "train" / "00003.jpg").write_bytes(b"\xff\xd8 this is not a JPEG" * 20)
    (synthetic_copy / "images" / "train" / "00006.jpg").write_bytes(b"")
    cfg = make_config("optim.epochs=2", "augment.enabled=false", "train.max_skipped=0.3", root=synthetic_copy)
    results = train(cfg)
    rows = read_metrics(run_dir_of(cfg))
    assert [int(r["skipped_images"]) for r in rows] == [2, 2]
    assert all(math.isfinite(float(r["train_loss"])) for r in rows)
    assert math.isfinite(results["testsets"]["val"]["nme"])


@pytest.mark.parametrize("progress, terminal", [(True, True), (False, True), (True, False)])
def test_train_progress_switches_the_per_step_bar_but_not_the_epoch_log_line(
    make_config, capsys, caplog, monkeypatch, progress, terminal
):
    """Bars only on a terminal: redirected into a log they would make one line of tens of KB per epoch."""
    caplog.set_level("INFO", logger="awing.train")
    monkeypatch.setattr(sys.stderr, "isatty", lambda: terminal)
    train(make_config("optim.epochs=1", f"train.progress={str(progress).lower()}"))
    assert ("epoch 1/1:" in capsys.readouterr().err) == (progress and terminal)
    assert any("epoch=1 " in r.getMessage() for r in caplog.records)


# ----------------------------------------------------------------------- clear errors before any work
def cli(capsys, *args) -> tuple[int, str]:
    code = main(["train", *map(str, args)])
    return code, capsys.readouterr().err


def test_a_missing_data_root_is_a_one_line_error(make_config, tmp_path, capsys):
    cfg = make_config("data.format=fdd", f"data.root={tmp_path / 'no_such_fdd'}", "data.options={}")
    save_config(cfg, tmp_path / "c.yaml")
    code, err = cli(capsys, tmp_path / "c.yaml")
    assert code == 2
    assert err.startswith("awing: error:") and "no_such_fdd" in err and "Traceback" not in err
    assert not run_dir_of(cfg).exists()


def test_an_unknown_config_key_is_a_one_line_error(make_config, tmp_path, capsys):
    cfg = make_config()
    save_config(cfg, tmp_path / "c.yaml")
    code, err = cli(capsys, tmp_path / "c.yaml", "optim.epochz=3")
    assert code == 2 and err.startswith("awing: error:") and "optim.epochz" in err
    code, err = cli(capsys, tmp_path / "c.yaml", "optim.epochs=abc")
    assert code == 2 and "optim.epochs" in err
    assert not run_dir_of(cfg).exists()


def test_resuming_from_another_architecture_schema_or_a_weights_file_is_an_error(
    trained_run, make_config, tmp_path, capsys
):
    last = load_checkpoint(trained_run / "last.pt")
    other_schema = dict(last, schema={**last["schema"], "num_points": 68})
    save_checkpoint(tmp_path / "other_schema.pt", other_schema)
    weights_only = {k: last[k] for k in ("model", "spec", "schema")}
    save_checkpoint(tmp_path / "weights.pt", weights_only)
    cases = [
        (trained_run / "last.pt", ["model.width=16"], "architecture"),
        (tmp_path / "other_schema.pt", [], "schema"),
        (tmp_path / "weights.pt", [], "optimizer"),
        (tmp_path / "missing.pt", [], "missing.pt"),
    ]
    for i, (path, extra, message) in enumerate(cases):
        cfg = make_config(f"train.name=resume{i}", *extra)
        save_config(cfg, tmp_path / f"c{i}.yaml")
        code, err = cli(capsys, tmp_path / f"c{i}.yaml", "--resume", path)
        assert code == 2, (path, err)
        assert err.startswith("awing: error:") and message in err and "Traceback" not in err, err
        assert not run_dir_of(cfg).exists()  # nothing written
    # --resume without a path: the run's own last.pt, which does not exist yet
    code, err = cli(capsys, tmp_path / "c0.yaml", "--resume")
    assert code == 2 and "last.pt" in err


def test_a_checkpoint_written_before_a_spec_field_existed_resumes(make_config):
    """last.pt files written before ``stem`` joined the spec hold no such key: it means the default."""
    cfg = make_config("optim.epochs=1", "train.name=older")
    train(cfg)
    last = run_dir_of(cfg) / "last.pt"
    ckpt = load_checkpoint(last)
    assert ckpt["spec"].pop("stem") == "fan"
    save_checkpoint(last, {k: v for k, v in ckpt.items() if k != "format"})
    resumed = make_config("optim.epochs=2", "train.name=older")
    train(resumed, resume="auto")
    assert load_checkpoint(last)["epoch"] == 2
