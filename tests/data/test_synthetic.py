"""The procedural face set: determinism, geometry on drawn features, flags, layouts, reader, idempotency."""

from __future__ import annotations

import dataclasses
import inspect
import json

import cv2
import numpy as np
import pytest

from awing.data import synthetic as S
from awing.data.readers import read_dataset
from awing.data.readers import synthetic as reader
from awing.data.sample import AnnotationError, landmark_box
from awing.data.synthetic import files as synthetic_files
from awing.schemas import load_schema

SMALL = dict(n_train=4, n_val=2, n_test=2, size=128, progress=False)


@pytest.fixture(scope="module")
def small_set(tmp_path_factory):
    return S.generate(tmp_path_factory.mktemp("synthetic"), **SMALL)


def _frontal(index: int, size: int = 256) -> S.Scene:
    """A neutral frontal face with 0.14 * size pixels per face unit (a face about half the image wide)."""
    return dataclasses.replace(S.frontal(S.sample_scene(S.image_rng(0, "train", index), size)), scale=0.14 * size)


def _files(root):
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


# ----------------------------------------------------------------------------------------- determinism


def test_same_seed_gives_identical_files_and_another_seed_does_not(small_set, tmp_path):
    again = _files(S.generate(tmp_path / "again", **SMALL))
    assert again == _files(small_set)
    other = _files(S.generate(tmp_path / "other", **{**SMALL, "seed": 1}))
    assert other.keys() == again.keys()
    images = [k for k in again if k.startswith("images/")]
    assert len(images) == 8
    assert all(other[k] != again[k] for k in images)
    a = json.loads(again["annotations_train.json"])
    b = json.loads(other["annotations_train.json"])
    assert all(not np.allclose(x["landmarks"], y["landmarks"]) for x, y in zip(a, b))


def test_each_image_depends_only_on_seed_split_and_index(small_set):
    image, record = S.make_example(0, "train", 3, size=128)
    ok, encoded = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 95])
    assert ok and encoded.tobytes() == (small_set / "images/train/00003.jpg").read_bytes()
    stored = json.loads((small_set / "annotations_train.json").read_text())[3]
    np.testing.assert_allclose(stored["landmarks"], record["landmarks"], atol=1e-3)
    other, _ = S.make_example(0, "val", 3, size=128)
    assert not np.array_equal(image, other)


# -------------------------------------------------------------------------------- points on features


@pytest.mark.parametrize("index", range(5))
def test_frontal_points_sit_on_drawn_features(index):
    scene = _frontal(index)
    r = S.render_scene(scene)
    lm, img = r.landmarks, r.image.astype(np.float32)
    gray = cv2.cvtColor(r.image, cv2.COLOR_BGR2GRAY).astype(np.float32)
    assert r.visible.all(), "a frontal unoccluded face has every point visible"

    def at(p):
        return img[int(round(p[1])), int(round(p[0]))]

    skin = np.asarray(scene.skin, np.float32)
    # pupils: on the dark pupil, much darker than the skin
    for i in (96, 97):
        assert gray[int(round(lm[i, 1])), int(round(lm[i, 0]))] < min(60.0, 0.6 * skin.mean())
    # brows: half-way between the upper and lower edge points is brow-coloured
    for up, low in ((35, 40), (44, 48)):
        assert np.abs(at((lm[up] + lm[low]) / 2) - np.asarray(scene.brow_colour)).max() < 30
    # upper lip: half-way between the outer and inner upper-lip centres is lip-coloured
    lip = np.asarray(scene.lips, np.float32) * 0.92
    assert np.abs(at((lm[79] + lm[90]) / 2) - lip).max() < 30
    # face pixels differ from the background inside the contour
    inner = (lm[:33] - lm[:33].mean(0)) * 0.85 + lm[:33].mean(0)
    region = np.zeros(gray.shape, np.uint8)
    cv2.fillPoly(region, [np.round(inner).astype(np.int32)], 255)
    diff = np.abs(img - r.background.astype(np.float32)).max(axis=2)[region > 0]
    assert (diff > 12).mean() > 0.9
    # contour points lie on the skin/background edge of the face region
    for x, y in lm[:33]:
        patch = r.face_mask[int(y) - 2 : int(y) + 3, int(x) - 2 : int(x) + 3]
        assert patch.min() < 128 < patch.max()


def test_far_side_points_are_annotated_but_hidden_at_large_yaw():
    r = S.render_scene(dataclasses.replace(_frontal(1), yaw=55.0))
    assert np.isfinite(r.landmarks).all()
    assert not r.visible[20:33].all(), "part of the far (image-right) contour is behind the cheek"
    assert r.visible[:10].all(), "the near contour is the silhouette"


def test_occluders_hide_points_and_set_the_flag():
    scene = _frontal(2)
    glasses = S.Occluder("sunglasses", "eyes", (0.0, 0.0), (1.0, 0.6), 0.0, (20.0, 20.0, 20.0))
    r = S.render_scene(dataclasses.replace(scene, occluders=(glasses,)))
    assert r.occluded[60:76].all() and r.occluded[96:98].all()
    assert not r.visible[60:76].any()
    assert not r.occluded[76:96].any()
    assert S.scene_attributes(scene, float(r.occluded.mean()))["occlusion"] == 1


# ---------------------------------------------------------------------------------------- attributes


def test_attribute_flags_follow_the_sampled_parameters():
    rng = np.random.default_rng(0)
    scenes = [S.sample_scene(rng, 64) for _ in range(400)]
    flags = np.array([[S.scene_attributes(s, 0.0)[k] for k in S.ATTRIBUTE_KEYS] for s in scenes])
    pose = np.array([abs(s.yaw) > 40 or abs(s.pitch) > 25 for s in scenes])
    np.testing.assert_array_equal(flags[:, 0], pose)
    np.testing.assert_array_equal(flags[:, 3], [s.makeup for s in scenes])
    blur = [
        (s.blur_kind == "gauss" and s.blur_amount >= 1.5) or (s.blur_kind == "motion" and s.blur_amount >= 6)
        for s in scenes
    ]
    np.testing.assert_array_equal(flags[:, 5], blur)
    rates = flags.mean(axis=0)
    assert ((rates[[0, 1, 2, 3, 5]] > 0.05) & (rates[[0, 1, 2, 3, 5]] < 0.5)).all(), rates
    assert all(abs(s.yaw) <= 60 and abs(s.pitch) <= 30 and abs(s.roll) <= 40 for s in scenes)

    neutral = dataclasses.replace(_frontal(0), makeup=False)
    assert S.scene_attributes(neutral, 0.0) == dict.fromkeys(S.ATTRIBUTE_KEYS, 0)
    for expression in (S.Expression(mouth_open=0.9), S.Expression(smile=0.8), S.Expression(eye_close=(0.0, 1.0))):
        assert S.scene_attributes(dataclasses.replace(neutral, expression=expression), 0.0)["expression"] == 1
    assert S.scene_attributes(dataclasses.replace(neutral, yaw=45.0), 0.0)["pose"] == 1
    assert S.scene_attributes(dataclasses.replace(neutral, light_strength=0.8), 0.0)["illumination"] == 1


def test_written_flags_match_the_written_head_pose(small_set):
    for split in S.SPLITS:
        for rec in json.loads((small_set / f"annotations_{split}.json").read_text()):
            assert set(rec["attributes"]) == set(S.ATTRIBUTE_KEYS)
            hp = rec["head_pose"]
            assert rec["attributes"]["pose"] == int(abs(hp["yaw"]) > 40 or abs(hp["pitch"]) > 25)


# ------------------------------------------------------------------------------------ layouts, flips


@pytest.mark.parametrize("schema_name", ["wflw98", "w300_68"])
def test_mirrored_frontal_face_matches_under_the_schema_flip_pairs(schema_name):
    schema = load_schema(schema_name)
    perm = schema.flip_permutation
    # the 3-D template, for the mean and for a random identity
    for identity in (S.Identity(), S.sample_scene(S.image_rng(5, "val", 0)).identity):
        pts = S.to_layout(S.face_points(identity), schema_name)
        mirrored = pts * np.array([-1.0, 1.0, 1.0])
        np.testing.assert_allclose(mirrored[perm], pts, atol=1e-9)
    # the rendered image: mirror about the vertical through the face centre
    scene = _frontal(3)
    lm = S.to_layout(S.render_scene(scene).landmarks.astype(np.float64), schema_name)
    mirrored = lm.copy()
    mirrored[:, 0] = 2 * scene.centre[0] - mirrored[:, 0]
    np.testing.assert_allclose(mirrored[perm], lm, atol=1e-3)
    # left/right are as seen in the image
    for name, (x, _) in zip(schema.point_names, lm):
        if name.startswith("left_"):
            assert x < scene.centre[0] - 1, name
        if name.startswith("right_"):
            assert x > scene.centre[0] + 1, name


def test_300w_map_commutes_with_flipping():
    p98 = load_schema("wflw98").flip_permutation
    p68 = load_schema("w300_68").flip_permutation
    np.testing.assert_array_equal(p98[S.WFLW_TO_300W], S.WFLW_TO_300W[p68])
    assert len(S.WFLW_TO_300W) == 68 and len(set(S.WFLW_TO_300W.tolist())) == 68


@pytest.mark.parametrize("schema_name,n", [("wflw98", 98), ("w300_68", 68)])
def test_both_layouts_are_complete(schema_name, n):
    for i in range(3):
        image, rec = S.make_example(1, "test", i, size=96, schema=schema_name)
        assert image.shape == (96, 96, 3) and image.dtype == np.uint8
        assert rec["landmarks"].shape == (n, 2) and np.isfinite(rec["landmarks"]).all()
        assert rec["visible"].shape == (n,) and rec["visible"].dtype == bool
        assert np.isfinite(rec["box"]).all() and (rec["box"][2:] > rec["box"][:2]).all()


# ------------------------------------------------------------------------------------------- reader


def test_reader_round_trip(small_set):
    samples = read_dataset("synthetic", small_set, "train", **SMALL)
    records = json.loads((small_set / "annotations_train.json").read_text())
    assert len(samples) == len(records) == 4
    for sample, rec in zip(samples, records):
        np.testing.assert_allclose(sample.landmarks, rec["landmarks"], atol=1e-4)
        np.testing.assert_array_equal(sample.visible, rec["visible"])
        np.testing.assert_allclose(sample.box, rec["box"], atol=1e-4)
        assert sample.attributes == rec["attributes"]
        assert sample.split == "train" and cv2.imread(sample.image).shape == (128, 128, 3)
        # the box is detector-like: around the landmarks, a little larger
        box = landmark_box(sample.landmarks)
        lo, hi = box[:2], box[2:]
        size = (hi - lo).max()
        assert (np.abs(sample.box[:2] - lo) < 0.4 * size).all() and (np.abs(sample.box[2:] - hi) < 0.3 * size).all()
    assert len(reader.read(small_set, "test", generate=False)) == 2
    with pytest.raises(AnnotationError):
        reader.read(small_set, "test", schema="w300_68", generate=False)


def test_reader_generates_on_first_use_in_either_layout(tmp_path):
    samples = reader.read(
        tmp_path / "fresh", "val", schema="w300_68", n_train=1, n_val=2, n_test=1, size=64, progress=False
    )
    assert len(samples) == 2 and samples[0].landmarks.shape == (68, 2)
    meta = json.loads((tmp_path / "fresh" / "meta.json").read_text())
    assert meta["schema"] == "w300_68" and meta["counts"] == {"train": 1, "val": 2, "test": 1}
    with pytest.raises(FileNotFoundError):
        reader.read(tmp_path / "missing", "val", generate=False)


def test_generate_is_idempotent(tmp_path, monkeypatch):
    params = dict(n_train=2, n_val=1, n_test=1, size=64, progress=False)
    root = S.generate(tmp_path, **params)
    before = _files(root)

    def fail(*args, **kwargs):
        raise AssertionError("regenerated although meta.json matched")

    monkeypatch.setattr(synthetic_files, "make_example", fail)
    assert S.generate(tmp_path, **params) == root
    assert _files(root) == before
    monkeypatch.undo()
    S.generate(tmp_path, **{**params, "seed": 3})  # different parameters: rewritten
    assert json.loads((root / "meta.json").read_text())["seed"] == 3
    assert _files(root)["images/train/00000.jpg"] != before["images/train/00000.jpg"]


# ------------------------------------------------------------------------------------------ options


def test_reader_forwards_the_generation_options(tmp_path):
    options = S.GenerationOptions(schema="w300_68", n_train=1, n_val=1, n_test=1, size=48, seed=2, image_format="png")
    samples = reader.read(tmp_path, "test", progress=False, **dataclasses.asdict(options))
    assert len(samples) == 1 and samples[0].image.endswith(".png") and samples[0].landmarks.shape == (68, 2)
    assert json.loads((tmp_path / "meta.json").read_text()) == options.meta()
    assert S.generate(tmp_path, options, progress=False) == tmp_path  # the same set: nothing to do
    # config code hands data.schema to the readers whose signature names a schema
    assert "schema" in inspect.signature(reader.read).parameters


@pytest.mark.parametrize("call", ["reader", "generate"])
def test_an_unknown_option_raises_naming_it(tmp_path, call):
    with pytest.raises(TypeError, match="'n_trian'") as err:
        if call == "reader":
            read_dataset("synthetic", tmp_path, "train", n_trian=3, progress=False)
        else:
            S.generate(tmp_path, n_trian=3, progress=False)
    assert "n_train" in str(err.value)  # the message lists the real options
    assert not (tmp_path / "meta.json").exists()


def test_bad_option_values_raise_before_any_work(tmp_path):
    with pytest.raises(ValueError, match="w300_98"):
        S.GenerationOptions(schema="w300_98")
    with pytest.raises(ValueError, match="bmp"):
        reader.read(tmp_path, "train", image_format="bmp")
    with pytest.raises(TypeError, match="GenerationOptions"):
        S.generate(tmp_path, "w300_68")
    assert not any(tmp_path.iterdir())


def test_reading_an_existing_set_without_options_reads_it_as_it_is(tmp_path):
    """``awing eval MODEL synthetic:ROOT:val`` passes no options: the set there is read, never regenerated."""
    root = S.generate(tmp_path / "s68", progress=False, schema="w300_68", n_train=1, n_val=3, n_test=1, size=64)
    stamp = (root / "meta.json").stat().st_mtime_ns
    samples = read_dataset("synthetic", root, "val")
    assert len(samples) == 3 and samples[0].num_points == 68
    assert (root / "meta.json").stat().st_mtime_ns == stamp
