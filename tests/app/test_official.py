"""``awing import-official``: the authors' checkpoint layout reproduces their heatmaps and decoded points.

Fixture (../shared/data/fixtures/official_awing): their ``FAN(2 stacks, 98 points)`` with seeded random
weights (fp16), a 256x256 input image, and what their own code computed from it (both stacks' (99, 64, 64)
outputs and ``get_preds_fromhm`` of the last stack).
"""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest
import torch

from awing.app.api import FaceAligner
from awing.app.cli import main
from awing.app.official import AUTHORS_CROP, import_official
from awing.core.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from awing.data.crop import crop_matrix, crop_square, warp_image
from awing.method.codec import AuthorsCodec, HeatmapCodec, codec_from_dict
from awing.method.model import create_model, model_from_checkpoint, model_payload
from awing.schemas import load_schema

from shared_data import SHARED, need

FIXTURE = SHARED / "fixtures" / "official_awing"


@pytest.fixture(scope="module")
def fixture_dir():
    return need(FIXTURE)


@pytest.fixture(scope="module")
def expected(fixture_dir):
    return dict(np.load(fixture_dir / "expected.npz"))


@pytest.fixture(scope="module")
def image(fixture_dir) -> np.ndarray:
    """(256, 256, 3) uint8 RGB."""
    return cv2.cvtColor(cv2.imread(str(fixture_dir / "input.png"), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)


@pytest.fixture(scope="module")
def imported(fixture_dir, tmp_path_factory):
    """The fixture converted by the CLI: (path, LoadedModel)."""
    out = tmp_path_factory.mktemp("official") / "fan2hg.pt"
    assert main(["import-official", str(fixture_dir / "fan2hg_wflw98_random.pth"), "--out", str(out)]) == 0
    return out, model_from_checkpoint(load_checkpoint(out))


def _forward(model, image: np.ndarray) -> list[torch.Tensor]:
    x = torch.from_numpy(image).permute(2, 0, 1)[None].float() / 255  # their loader: RGB / 255, no mean/std
    with torch.no_grad():
        return model(x)


def test_imported_model_reproduces_both_stacks_and_their_decoded_points(imported, image, expected):
    _, (model, schema, codec) = imported
    assert schema.name == "wflw98" and model.spec.stacks == 2 and model.spec.num_points == 98
    assert isinstance(codec, AuthorsCodec)
    outputs = _forward(model, image)
    diffs = [float(np.abs(outputs[i][0].numpy() - expected[f"stack{i}"]).max()) for i in range(2)]
    assert max(diffs) <= 1e-4, diffs  # measured: 4.8e-7 and 7.2e-7
    points, confidence = codec.decode(outputs[-1][:, :98])
    assert points.shape == (1, 98, 2) and confidence.shape == (1, 98)
    # their frame: get_preds_fromhm x 4 in crop pixels, so / 4 is their heatmap frame; exactly equal
    np.testing.assert_array_equal(points[0].numpy() / 4, expected["preds_official"])
    # and from their own heatmaps too (the decoder alone)
    theirs = torch.from_numpy(expected["stack1"][None, :98])
    np.testing.assert_array_equal(codec.decode_heatmap_frame(theirs)[0][0].numpy(), expected["preds_official"])


def test_authors_decoder_shifts_only_where_the_peak_is_interior_on_both_axes(expected):
    """An edge peak on one axis gets no shift on the other axis either (theirs), unlike awing's decoder."""
    heat = torch.zeros(1, 2, 64, 64)
    heat[0, 0, 20, 63], heat[0, 0, 21, 63] = 1.0, 0.5  # x on the right edge, y interior: larger below
    heat[0, 1, 30, 10], heat[0, 1, 30, 11], heat[0, 1, 31, 10] = 1.0, 0.5, 0.5  # interior both ways
    authors = AuthorsCodec(input_size=256, heatmap_size=64)
    awing = HeatmapCodec(input_size=256, heatmap_size=64)
    theirs = authors.decode_heatmap_frame(heat)[0][0].tolist()
    assert theirs == [[63.5, 20.5], [10.75, 30.75]]
    assert authors.decode(heat)[0][0].tolist() == [[254.0, 82.0], [43.0, 123.0]]
    assert awing.decode(heat)[0][0, 0].tolist() == [63 * 4 + 1.5, 20.25 * 4 + 1.5]  # awing shifts y here
    # the authors' frame is 0.5 crop pixel from awing's: the same interior peak, 0.5 apart in crop pixels
    assert authors.decode(heat)[0][0, 1].tolist() == [v + 0.5 for v in awing.decode(heat)[0][0, 1].tolist()]
    # to_image takes the 0.5 off: with the identity crop, their crop point c lands on image point c - 0.5
    identity = torch.from_numpy(crop_matrix((127.5, 127.5), 256.0, 256))[None]
    mapped = authors.to_image(authors.decode(heat)[0].double(), identity)
    np.testing.assert_allclose(mapped[0].numpy(), np.array([[253.5, 81.5], [42.5, 122.5]]), atol=1e-9)
    assert codec_from_dict(authors.to_dict()) == authors


def test_fp32_and_bare_state_dict_files_import_to_the_same_model(fixture_dir, tmp_path, image, expected):
    raw = torch.load(fixture_dir / "fan2hg_wflw98_random.pth", weights_only=True)
    fp32 = {k: v.float() if v.is_floating_point() else v for k, v in raw["state_dict"].items()}
    torch.save(fp32, tmp_path / "bare_fp32.pth")  # the bare dict, in fp32 (the released file's dtype)
    torch.save({"state_dict": {f"module.{k}": v for k, v in fp32.items()}}, tmp_path / "dp.pth")  # DataParallel
    for name in ("bare_fp32.pth", "dp.pth"):
        payload = import_official(tmp_path / name)
        assert payload["model"]["stem_conv.conv.weight"].dtype == torch.float32
        assert payload["inference"]["crop"] == AUTHORS_CROP and payload["codec"]["name"] == "authors"
        model, _, _ = model_from_checkpoint(payload)
        assert np.abs(_forward(model, image)[1][0].numpy() - expected["stack1"]).max() <= 1e-4


def test_coordinate_channels_are_swapped_at_import(fixture_dir):
    """Their (row, col, r[, B_row, B_col]) input channels become awing's (x, y, r[, B_x, B_y])."""
    state = torch.load(fixture_dir / "fan2hg_wflw98_random.pth", weights_only=True)["state_dict"]
    model = import_official(fixture_dir / "fan2hg_wflw98_random.pth")["model"]
    stem, theirs = model["stem_conv.conv.weight"], state["conv1.conv.weight"]
    assert torch.equal(stem[:, :3], theirs[:, :3]) and torch.equal(stem[:, 5], theirs[:, 5])
    assert torch.equal(stem[:, 3], theirs[:, 4]) and torch.equal(stem[:, 4], theirs[:, 3])
    hg1, theirs1 = model["coord_convs.1.conv.weight"], state["m1.coordconv.conv.weight"]
    assert hg1.shape[1] == 256 + 5
    for a, b in ((256, 257), (257, 256), (258, 258), (259, 260), (260, 259)):
        assert torch.equal(hg1[:, a], theirs1[:, b])


def test_authors_crop_rule():
    """Box padded by int(5 % / 2) per side (left/top clamped at 0), square of 0.64 (w' + h') about its centre."""
    cx, cy, side = crop_square((100.7, 50.2, 300.9, 290.0), AUTHORS_CROP)  # int() -> (100, 50, 300, 290)
    assert (cx, cy) == (200.0, 170.0) and side == pytest.approx(0.64 * (210 + 252))
    cx, cy, side = crop_square((10, 5, 410, 405), AUTHORS_CROP)  # pads 10: left/top clamp at 0
    assert (cx, cy, side) == (210.0, 207.5, pytest.approx(0.64 * (420 + 415)))
    with pytest.raises(ValueError, match="unknown crop rule"):
        crop_square((0, 0, 10, 10), {"kind": "nope"})


def test_imported_file_runs_in_face_aligner_with_its_crop_rule(imported, image):
    path, (model, _, codec) = imported
    aligner = FaceAligner(path, device="cpu", detector="full", fast=False)
    assert aligner.crop_rule == AUTHORS_CROP and isinstance(aligner.codec, AuthorsCodec)
    box = np.array([60.0, 50.0, 200.0, 210.0])
    (face,) = aligner.predict_crops(image, [box], color="RGB")
    # the same chain by hand: their crop square, awing's warp, the model, their decoder and frame
    cx, cy, side = crop_square(box, AUTHORS_CROP)
    m = crop_matrix((cx, cy), side, 256)
    crop = warp_image(image, m, 256)
    points, _ = codec.decode(_forward(model, crop)[-1][:, :98])
    expected = codec.to_image(points.double(), torch.from_numpy(m)[None])[0].numpy()
    np.testing.assert_allclose(face.landmarks, expected, atol=1e-3)
    assert face.landmarks.shape == (98, 2)


def test_imported_file_exports_to_onnx(imported, tmp_path):
    onnx = pytest.importorskip("onnx", reason="ONNX export needs pip install 'awing[onnx]'")
    path, _ = imported
    out = tmp_path / "fan2hg.onnx"
    assert main(["export", str(path), "--format", "onnx", "--out", str(out)]) == 0
    props = {p.key: p.value for p in onnx.load(str(out)).metadata_props}
    assert json.loads(props["awing_codec"])["name"] == "authors" and props["awing_schema"] == "wflw98"


def test_a_file_that_is_not_the_authors_gives_a_clear_error(tmp_path, capsys):
    model = create_model("awing-1hg-tiny", 14, width=32)
    ours = save_checkpoint(tmp_path / "ours.pt", model_payload(model, load_schema("fdd14")))
    with pytest.raises(CheckpointError, match="already an awing checkpoint"):
        import_official(ours)
    torch.save({"state_dict": model.state_dict()}, tmp_path / "other.pth")
    with pytest.raises(CheckpointError, match="not the authors' AWing checkpoint"):
        import_official(tmp_path / "other.pth")
    (tmp_path / "notes.txt").write_text("not a checkpoint")
    with pytest.raises(CheckpointError, match="not a loadable PyTorch checkpoint"):
        import_official(tmp_path / "notes.txt")
    assert main(["import-official", str(tmp_path / "other.pth"), "--out", str(tmp_path / "x.pt")]) == 2
    assert "not the authors' AWing checkpoint" in capsys.readouterr().err
    assert not (tmp_path / "x.pt").exists()


def test_awing_eval_crops_an_imported_model_with_its_rule_and_names_the_convention(imported, tmp_path, monkeypatch):
    """``awing eval`` on the imported file: its crop rule makes the crops (checked on the squares), and the
    results name the convention asked for. Test set: mmpose's WFLW fixture (4 faces in 2 images, COCO JSON)."""
    import awing.engine.evaluate as evaluate

    path, _ = imported
    wflw = need(SHARED / "fixtures" / "mmpose_samples" / "wflw")
    made = []
    original = evaluate.build_dataset

    def spy(*args, **kwargs):
        made.append(original(*args, **kwargs))
        return made[-1]

    monkeypatch.setattr(evaluate, "build_dataset", spy)
    out = tmp_path / "eval"
    assert main(["eval", str(path), f"coco:{wflw}:test", "--out", str(out), "--convention", "mmpose",
                 "--batch-size", "2"]) == 0
    (dataset,) = made
    assert dataset.crop_rule == AUTHORS_CROP
    sample = dataset.samples[0]
    cx, cy, side = crop_square(dataset.face_box(sample), AUTHORS_CROP)
    np.testing.assert_allclose(dataset[0]["affine"].numpy(), crop_matrix((cx, cy), side, 256), atol=1e-6)
    name = evaluate.DataSpec.parse(f"coco:{wflw}:test").results_name  # not the model's own data
    results = json.loads((out / f"{name}.json").read_text())
    test = results["testsets"]["test"]
    assert (test["convention"], test["pooling"], test["normaliser"]) == ("mmpose", "pooled", "inter_ocular")
    assert test["num_images"] == 4 and test["nme"] == pytest.approx(test["nme_by_pooling"]["pooled"])
    assert "Evaluation convention: mmpose" in (out / f"{name}.md").read_text()


def test_a_four_stack_file_in_their_layout_imports_with_the_released_models_size(tmp_path):
    """The released model's shape (4 stacks, 98 points): 24,153,036 parameters; keys written in their names."""
    from awing.app.official import official_key_map

    torch.manual_seed(0)
    model = create_model("awing-4hg", 98)
    assert sum(p.numel() for p in model.parameters()) == 24_153_036
    ours = model.state_dict()
    theirs_of = {v: k for k, v in official_key_map(4).items()}
    state = {}
    for key, value in ours.items():
        prefix = max((p for p in theirs_of if key.startswith(p + ".")), key=len)
        state[theirs_of[prefix] + key[len(prefix) :]] = value.clone()
    for key, f in (("conv1.conv.weight", 3), *((f"m{i}.coordconv.conv.weight", 256) for i in range(4))):
        w = state[key]  # awing (x, y, r, B_x, B_y) -> their (row, col, r, B_row, B_col): the same swaps
        order = list(range(w.shape[1]))
        order[f], order[f + 1] = f + 1, f
        if w.shape[1] == f + 5:
            order[f + 3], order[f + 4] = f + 4, f + 3
        state[key] = w[:, order]
    torch.save({"state_dict": state, "epoch": 3}, tmp_path / "WFLW_4HG.pth")
    payload = import_official(tmp_path / "WFLW_4HG.pth")
    assert payload["spec"]["stacks"] == 4 and payload["source"]["epoch"] == 3
    assert list(payload["model"]) == list(ours) and all(torch.equal(payload["model"][k], v) for k, v in ours.items())
