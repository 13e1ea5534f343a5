"""``awing export --format weights --decoder``: the decoder stored in the file, and the file's validation
figures re-measured with it (no ONNX needed)."""

from __future__ import annotations

import json

import pytest

from awing.app.api import FaceAligner
from awing.app.cli import main
from awing.core.checkpoint import load_checkpoint
from awing.method.model import model_from_checkpoint


@pytest.fixture
def ckpt(tiny_fdd_checkpoint):
    return tiny_fdd_checkpoint


def test_export_weights_stores_the_chosen_decoder(ckpt, tmp_path):
    out = tmp_path / "dark.pt"
    assert main(["export", str(ckpt), "--format", "weights", "--decoder", "dark", "--out", str(out)]) == 0
    assert load_checkpoint(out)["codec"]["decoder"] == "dark"
    assert FaceAligner(out, device="cpu", detector="full").codec.decoder == "dark"
    assert model_from_checkpoint(load_checkpoint(ckpt)).codec.decoder == "quarter"  # the source is untouched
    assert load_checkpoint(out).get("metrics") == load_checkpoint(ckpt).get("metrics")  # no run config: not measured


def test_export_with_a_decoder_records_what_the_file_itself_scores(trained_run, tmp_path):
    """The val figures of a file exported with another decoder are measured on that file, so that
    ``awing eval`` of the file gives exactly what it records."""
    out = tmp_path / "dark.pt"
    command = ["export", str(trained_run / "best.pt"), "--format", "weights", "--decoder", "dark", "--out", str(out)]
    assert main(command) == 0
    recorded = load_checkpoint(out)["metrics"]
    assert recorded["val_measured"] == "awing export: float16 weights, decoder dark"
    assert main(["eval", str(out), "--out", str(tmp_path / "eval")]) == 0
    measured = json.loads((tmp_path / "eval" / "results.json").read_text())["testsets"]["val"]["nme"]
    assert measured == pytest.approx(recorded["val_nme"], abs=1e-9)
    assert recorded["epoch"] == load_checkpoint(trained_run / "best.pt")["metrics"]["epoch"]


def test_a_run_validated_with_the_flip_test_is_recorded_single_pass(trained_run, tmp_path):
    """FaceAligner runs one pass by default, so the file records (and ``awing eval`` repeats) that."""
    from awing.core.checkpoint import save_checkpoint

    ckpt = load_checkpoint(trained_run / "best.pt")
    ckpt["config"]["eval"]["flip_test"] = True
    save_checkpoint(tmp_path / "flip.pt", ckpt)
    out = tmp_path / "dark.pt"
    assert main(["export", str(tmp_path / "flip.pt"), "--format=weights", "--decoder", "dark", "--out", str(out)]) == 0
    exported = load_checkpoint(out)
    assert exported["config"]["eval"]["flip_test"] is False
    assert main(["eval", str(out), "--out", str(tmp_path / "eval")]) == 0
    measured = json.loads((tmp_path / "eval" / "results.json").read_text())["testsets"]["val"]["nme"]
    assert measured == pytest.approx(exported["metrics"]["val_nme"], abs=1e-9)


def test_a_file_that_turns_the_flip_test_on_records_its_flip_test_figures(trained_run, tmp_path):
    """``--flip-test``: FaceAligner runs the mirrored crop too by default, so the file records (and ``awing eval``
    repeats) the flip test's figures, which differ from one pass's."""
    one, flip = tmp_path / "one.pt", tmp_path / "flip.pt"
    export = ["export", str(trained_run / "best.pt"), "--format", "weights", "--decoder", "dark"]
    assert main([*export, "--out", str(one)]) == 0
    assert main([*export, "--flip-test", "--out", str(flip)]) == 0
    exported = load_checkpoint(flip)
    assert exported["config"]["eval"]["flip_test"] is True
    assert exported["metrics"]["val_measured"] == "awing export: float16 weights, decoder dark, flip test"
    assert exported["metrics"]["val_nme"] != load_checkpoint(one)["metrics"]["val_nme"]
    assert main(["eval", str(flip), "--out", str(tmp_path / "eval")]) == 0
    measured = json.loads((tmp_path / "eval" / "results.json").read_text())["testsets"]["val"]["nme"]
    assert measured == pytest.approx(exported["metrics"]["val_nme"], abs=1e-9)
