"""awing.data.hints: the typed ``checkpoint["inference"]`` record, its one reader and the upgrade of old files."""

from __future__ import annotations

import logging

import pytest

import awing.pretrained
from awing.core.checkpoint import load_checkpoint
from awing.core.config import Config
from awing.data.hints import InferenceHints, inference_hints, training_hints

CALIBRATED = {
    "enlarge": {"opencv": 0.26, "blazeface": 0.52},
    "offset": {"opencv": [-0.01, 0.03], "blazeface": [0.0, -0.03]},
    "calibrated_on": "fdd:val (crop=box, enlarge=1.0)",
    "face_quality": 0.48,
}


def test_round_trip():
    hints = InferenceHints(
        crop={"kind": "authors", "pad": 0.05},
        enlarge={"opencv": 0.3},
        offset={"opencv": (0.1, -0.2)},
        face_quality=0.4,
        calibrated_on="x",
        refine="never",
        flip_test=True,
    )
    assert InferenceHints.from_dict(hints.to_dict()) == hints
    assert InferenceHints().to_dict() == {"landmark_enlarge": None}  # unset fields are left out
    assert InferenceHints.from_dict({**CALIBRATED, "landmark_enlarge": 1.0}).offset["opencv"] == (-0.01, 0.03)


BAD = [
    {"enlarge": {"opencv": "big"}},
    {"enlarge": [0.1]},
    {"offset": {"opencv": [1.0]}},
    {"face_quality": True},
    {"landmark_enlarge": float("nan")},
    {"crop": "authors"},
    {"flip_test": 1},
]


@pytest.mark.parametrize("bad", BAD)
def test_malformed_fields_are_an_error(bad):
    with pytest.raises(ValueError, match="inference"):
        InferenceHints.from_dict(bad)


@pytest.mark.parametrize(
    "data, expected",
    [
        ({"format": "w300", "crop": "landmarks", "enlarge": 0.1}, 0.1),
        ({"format": "fdd", "crop": "box", "enlarge": 1.0}, 1.0),  # FDD's boxes are landmark boxes
        ({"format": "mtfl", "crop": "box", "enlarge": 0.0}, None),
        ({}, None),
    ],
)
def test_old_files_get_their_landmark_crop_from_the_run_config(data, expected):
    ckpt = {"config": {"data": data}, "inference": CALIBRATED}
    hints = inference_hints(ckpt)
    assert hints.landmark_enlarge == expected and hints.enlarge == CALIBRATED["enlarge"]
    assert inference_hints({"config": {"data": data}}).landmark_enlarge == expected  # no hints at all
    assert inference_hints({"config": {"data": data}, "inference": {"landmark_enlarge": None}}).landmark_enlarge is None


def test_a_crop_rule_has_no_landmark_crop():
    ckpt = {"config": {"data": {"crop": "landmarks", "enlarge": 0.1}}, "inference": {"crop": {"kind": "authors"}}}
    assert inference_hints(ckpt).landmark_enlarge is None and inference_hints(ckpt).crop == {"kind": "authors"}


def test_an_unknown_training_format_is_logged(caplog):
    with caplog.at_level(logging.WARNING, logger="awing.data.hints"):
        hints = inference_hints({"config": {"data": {"format": "no-such-reader", "crop": "box"}}})
    assert hints.landmark_enlarge is None and "no-such-reader" in caplog.text


def test_training_hints_match_the_upgrade_of_the_same_config():
    cfg = Config()
    cfg.data.format, cfg.data.crop, cfg.data.enlarge = "fdd", "box", 1.0
    written = training_hints(cfg).to_dict()
    assert written == {"landmark_enlarge": 1.0}
    assert inference_hints({"inference": written}) == inference_hints({"config": {"data": cfg.data.__dict__}})


@pytest.mark.parametrize(
    "name, landmark_enlarge",
    [
        ("fdd14-1hg-tiny", 1.0),
        ("w300-1hg-tiny", 0.1),
        ("w300-1hg-tiny-128", 0.1),
        ("w300-1hg-96", 0.1),
        ("mtfl5-1hg-tiny", None),
    ],
)
def test_the_shipped_files_read_as_before(name, landmark_enlarge):
    infos = {m["name"]: m for m in awing.pretrained.list_pretrained()}
    if name not in infos:
        pytest.skip(f"{name} is not shipped in this install")
    ckpt = load_checkpoint(infos[name]["path"])
    hints = inference_hints(ckpt)
    assert hints.landmark_enlarge == landmark_enlarge
    assert hints.enlarge == ckpt["inference"]["enlarge"] and hints.face_quality == ckpt["inference"]["face_quality"]
    assert {k: list(v) for k, v in hints.offset.items()} == ckpt["inference"]["offset"]
