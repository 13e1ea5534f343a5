"""The AFLW2000-3D, FG-NET and SCUT-FBP5500 readers and the fgnet68 / scut86 schemas: each layout written
into tmp_path at test time (tests/fixtures/new_layouts.py), values checked exactly, malformed files named;
the real copies in ../shared/data where present (skipped with a message otherwise)."""

from __future__ import annotations

import math
import re
import struct

import numpy as np
import pytest
import scipy.io
from fixtures.new_layouts import write_aflw2000, write_binary_pts, write_fgnet, write_scut, write_text_pts

from awing.data.readers import READERS, _import_all, aflw2000_3d, fgnet, read_dataset, scut
from awing.data.readers.cli import run as list_datasets
from awing.data.readers.w300 import held_out
from awing.data.sample import AnnotationError
from awing.schemas import Schema, load_schema, map_points, point_mapping, transfer_mapping

from shared_data import SHARED, need


def raises_at(where, error=AnnotationError):
    return pytest.raises(error, match=re.escape(str(where)))


# ------------------------------------------------------------------------------------------- registry


def test_the_three_readers_are_registered_and_listed(capsys):
    _import_all()
    for name, schema in (("aflw2000", "w300_68"), ("fgnet", "fgnet68"), ("scut", "scut86")):
        info = READERS[name]
        assert info.schema == schema and info.landmark_boxes and {"train", "val", "all"} <= set(info.splits)
        assert load_schema(schema).num_points in (68, 86)
    assert list_datasets(None) == 0
    listing = capsys.readouterr().out
    assert all(re.search(rf"^{name}\s", listing, re.M) for name in ("aflw2000", "fgnet", "scut"))


@pytest.mark.parametrize("module", [aflw2000_3d, fgnet, scut])
def test_unknown_split_is_refused(tmp_path, module):
    with pytest.raises(ValueError, match="unknown split 'test'"):
        module.read(tmp_path, "test")


# ------------------------------------------------------------------------------------------ AFLW2000-3D


def test_aflw2000_points_pose_and_splits(tmp_path):
    faces = write_aflw2000(tmp_path)
    every = read_dataset("aflw2000", tmp_path, "all")
    assert [s.attributes["image_id"] for s in every] == sorted(faces)
    for s in every:
        points, pose = faces[s.attributes["image_id"]]
        np.testing.assert_array_equal(s.landmarks, points.astype(np.float32))
        np.testing.assert_array_equal(s.box, np.r_[points.min(0), points.max(0)].astype(np.float32))
        assert s.attributes["yaw"] == pytest.approx(math.degrees(pose[1]))
        assert s.attributes["pitch"] == pytest.approx(math.degrees(pose[0]))
        assert s.attributes["roll"] == pytest.approx(math.degrees(pose[2]))
        assert s.attributes["large_pose"] == int(abs(math.degrees(pose[1])) >= 30)
        assert s.image.endswith(s.attributes["image_id"] + ".jpg")
    val = {s.attributes["image_id"] for s in aflw2000_3d.read(tmp_path, "val")}
    train = {s.attributes["image_id"] for s in aflw2000_3d.read(tmp_path, "train")}
    assert val == {k for k in faces if held_out(k)} and len(val) == 1
    assert train == set(faces) - val
    assert [s.attributes["yaw"] > 30 or s.attributes["yaw"] < -30 for s in aflw2000_3d.read(tmp_path, "large_pose")]
    assert len(aflw2000_3d.read(tmp_path, "large_pose")) == 2 and len(aflw2000_3d.read(tmp_path, "frontal")) == 1
    shifted = aflw2000_3d.read(tmp_path / "AFLW2000", "all", one_based=True)  # the folder itself as root
    np.testing.assert_allclose(shifted[0].landmarks, every[0].landmarks - 1)


def test_aflw2000_malformed_files_name_file_and_variable(tmp_path):
    faces = write_aflw2000(tmp_path)
    stem = sorted(faces)[0]
    mat = tmp_path / "AFLW2000" / f"{stem}.mat"
    good = scipy.io.loadmat(mat)
    cases = [
        ({k: v for k, v in good.items() if k not in ("pt3d_68",) and not k.startswith("__")}, "'pt3d_68'"),
        ({**good, "pt3d_68": good["pt3d_68"][:, :60]}, "'pt3d_68' has shape (3, 60)"),
        ({**good, "pt3d_68": np.where(np.arange(68) == 5, np.nan, good["pt3d_68"])}, "non-finite"),
        ({**good, "Pose_Para": good["Pose_Para"][:, :2]}, "'Pose_Para'"),
    ]
    for variables, message in cases:
        scipy.io.savemat(mat, {k: v for k, v in variables.items() if not k.startswith("__")})
        with raises_at(mat) as err:
            aflw2000_3d.read(tmp_path, "all")
        assert message in str(err.value)
    mat.write_bytes(b"not a mat file")
    with raises_at(mat):
        aflw2000_3d.read(tmp_path, "all")
    scipy.io.savemat(mat, {k: v for k, v in good.items() if not k.startswith("__")})
    (tmp_path / "AFLW2000" / f"{stem}.jpg").unlink()
    with raises_at(mat) as err:
        aflw2000_3d.read(tmp_path, "all")
    assert "image not found" in str(err.value)
    assert len(aflw2000_3d.read(tmp_path, "all", check_images=False)) == 3
    with pytest.raises(FileNotFoundError, match="no image\\*.mat"):
        aflw2000_3d.read(tmp_path / "empty", "all")


# ----------------------------------------------------------------------------------------------- FG-NET


def test_fgnet_points_ages_and_person_splits(tmp_path):
    faces = write_fgnet(tmp_path)
    every = fgnet.read(tmp_path, "all")
    assert [s.source for s in every] == [str(tmp_path / "FGNET/points" / f"{k}.pts") for k in sorted(faces)]
    for s in every:
        stem = s.source.rsplit("/", 1)[1][:-4]
        np.testing.assert_array_equal(s.landmarks, faces[stem].astype(np.float32))
        assert s.image == str(tmp_path / "FGNET/images" / (stem[:3] + "A" + stem[4:] + ".JPG"))
        assert s.attributes == {"person": int(stem[:3]), "age": int(stem[4:6]), "child": int(int(stem[4:6]) < 18)}
    val, train = fgnet.read(tmp_path, "val"), fgnet.read(tmp_path, "train")
    val_people = {s.attributes["person"] for s in val}
    assert len(val_people) == 1 and all(held_out(f"{p:03d}") for p in val_people)
    assert val_people.isdisjoint({s.attributes["person"] for s in train})
    assert len(val) + len(train) == len(every) == 5
    np.testing.assert_allclose(fgnet.read(tmp_path / "FGNET", "all", one_based=True)[0].landmarks,
                               every[0].landmarks - 1)


def test_fgnet_malformed_files_name_file_and_line(tmp_path):
    faces = write_fgnet(tmp_path)
    stem = sorted(faces)[0]
    pts = tmp_path / "FGNET/points" / f"{stem}.pts"
    lines = pts.read_text().splitlines()
    pts.write_text("\n".join(lines[:5] + ["12.5 oops"] + lines[6:]) + "\n")
    with raises_at(f"{pts}:6") as err:
        fgnet.read(tmp_path, "all")
    assert "not a number" in str(err.value)
    write_text_pts(pts, faces[stem][:60])
    with raises_at(f"{pts}:2") as err:
        fgnet.read(tmp_path, "all")
    assert "n_points is 60, expected 68" in str(err.value)
    write_text_pts(pts, faces[stem])
    image = tmp_path / "FGNET/images" / (stem[:3] + "A" + stem[4:] + ".JPG")
    image.unlink()
    with raises_at(pts) as err:
        fgnet.read(tmp_path, "all")
    assert "image not found" in str(err.value)
    bad = write_text_pts(tmp_path / "FGNET/points" / "person7.pts", faces[stem])
    with raises_at(bad) as err:
        fgnet.read(tmp_path, "all", check_images=False)
    assert "nnnaxx" in str(err.value)


# ------------------------------------------------------------------------------------------------- SCUT


def test_scut_binary_points_groups_and_splits(tmp_path):
    faces = write_scut(tmp_path)
    every = scut.read(tmp_path, "all")
    assert sorted(s.source.rsplit("/", 1)[1][:-4] for s in every) == sorted(faces)
    for s in every:
        face = s.source.rsplit("/", 1)[1][:-4]
        np.testing.assert_array_equal(s.landmarks, faces[face].astype(np.float32))
        assert s.image == str(tmp_path / "SCUT-FBP5500_v2/Images" / f"{face}.jpg")
        ethnicity = "asian" if face[0] == "A" else "caucasian"
        assert s.attributes == {
            "group": face[:2], "ethnicity": ethnicity, "sex": "female" if face[1] == "F" else "male",
            "asian": int(ethnicity == "asian"), "caucasian": int(ethnicity == "caucasian"),
        }
    val = [s.attributes["group"] for s in scut.read(tmp_path, "val")]
    assert val == ["AF"] and len(scut.read(tmp_path, "train")) == 3
    np.testing.assert_allclose(scut.read(tmp_path / "SCUT-FBP5500_v2", "all", one_based=True)[0].landmarks,
                               every[0].landmarks - 1)


def test_scut_malformed_binary_files_are_named(tmp_path):
    faces = write_scut(tmp_path)
    face = sorted(faces)[0]
    pts = tmp_path / "SCUT-FBP5500_v2/facial landmark" / f"{face}.pts"
    good = pts.read_bytes()
    cases = [
        (b"\x56\x00", "too short"),
        (good[:-8], "684 bytes, expected 4 + 8 x 86 = 692"),
        (good + b"\x00\x00\x00\x00", "696 bytes"),
        (struct.pack("<i", 68) + good[4:], "point count is 68, expected 86"),
        (good[:12] + struct.pack("<f", float("nan")) + good[16:], "point 1 is not a finite number"),
    ]
    for data, message in cases:
        pts.write_bytes(data)
        with raises_at(pts) as err:
            scut.read(tmp_path, "all")
        assert message in str(err.value)
    pts.write_bytes(good)
    (tmp_path / "SCUT-FBP5500_v2/Images" / f"{face}.jpg").unlink()
    with raises_at(pts) as err:
        scut.read(tmp_path, "all")
    assert "image not found" in str(err.value)
    bad = write_binary_pts(tmp_path / "SCUT-FBP5500_v2/facial landmark" / "XX1.pts", faces[face])
    with raises_at(bad) as err:
        scut.read(tmp_path, "all", check_images=False)
    assert "SCUT-FBP5500 ID" in str(err.value)


# ---------------------------------------------------------------------------------------------- schemas


@pytest.mark.parametrize("name", ["fgnet68", "scut86"])
def test_partial_mappings_from_300w(name):
    schema = load_schema(name)
    assert point_mapping("w300_68", schema) is None  # not a full mapping: evaluation refuses it
    weights = point_mapping("w300_68", schema, partial=True)
    rows = weights.any(axis=1)
    assert rows.sum() == sum(bool(r) for r in schema.from_schemas["w300_68"])
    np.testing.assert_allclose(weights[rows].sum(axis=1), 1.0)
    mapped = map_points(np.random.default_rng(0).uniform(0, 100, (68, 2)), weights)
    assert np.isnan(mapped[~rows]).all() and np.isfinite(mapped[rows]).all()
    back = transfer_mapping(schema, "w300_68")  # a source for 68-point training: its single points
    assert 0 < back.any(axis=1).sum() <= rows.sum()
    forward = transfer_mapping("w300_68", schema)
    np.testing.assert_array_equal(forward, weights)
    wflw = point_mapping("wflw98", schema, partial=True)  # composed through w300_68
    assert wflw.any(axis=1).sum() == rows.sum()


def test_the_declared_correspondences_are_the_checked_ones():
    """The points benchmarks/correspondence.py kept (docs/datasets.md); any change must be re-measured."""
    fg = load_schema("fgnet68").from_schemas["w300_68"]
    assert [i for i, r in enumerate(fg) if r] == [0, 7, 14, *range(27, 37), 40, 41, 42, *range(48, 56), 57, 59,
                                                  61, 64, 66]
    assert fg[7] == (8,) and fg[28] == (37, 38) and fg[31] == (36, 37, 38, 39, 40, 41) and fg[66] == (62, 66)
    sc = load_schema("scut86").from_schemas["w300_68"]
    assert [i for i, r in enumerate(sc) if r] == [11, 24, 34, 42, 44, 46, 48, 50, 52, 54, 56, 58, 59, 66,
                                                  *range(73, 80)]
    assert sc[11] == (8,) and sc[24] == (19,) and sc[73] == (54,) and sc[79] == (48,)


def test_a_mapping_with_only_empty_rows_is_refused():
    data = load_schema("fdd14").to_dict()
    data["from_schemas"] = {"w300_68": [[] for _ in range(14)]}
    with pytest.raises(ValueError, match="not all empty"):
        Schema.from_dict(data)


@pytest.mark.parametrize("name", ["fgnet68", "scut86"])
def test_flip_pairs_mirror_each_other_and_the_map_keeps_sides(name):
    schema = load_schema(name)
    perm = schema.flip_permutation
    assert np.array_equal(perm[perm], np.arange(schema.num_points))
    names = schema.point_names
    for a, b in schema.flip_pairs:  # left <-> right names, or contour / lip indices
        if "left" in names[a] or "right" in names[a]:
            assert names[a].replace("left", "#").replace("right", "left").replace("#", "right") == names[b]
    w300 = load_schema("w300_68").flip_permutation
    rows = point_mapping("w300_68", schema, partial=True)
    flipped = rows[perm][:, w300]  # mapping a mirrored face = mirroring the mapped face
    np.testing.assert_array_equal(flipped, rows)


# ------------------------------------------------------------------------------------------- real data


@pytest.mark.parametrize(
    "reader, folder, counts",
    [("aflw2000", "aflw2000_3d", (1680, 1465, 215)), ("fgnet", "fgnet", (1002, 871, 131)),
     ("scut", "scut_fbp5500", (1375, 1191, 184))],
)
def test_real_copies_read_with_fixed_splits(reader, folder, counts):
    root = need(SHARED / folder)
    sizes = tuple(len(read_dataset(reader, root, split)) for split in ("all", "train", "val"))
    assert sizes == counts


def test_real_mean_shapes_are_mirror_symmetric_under_the_flip_pairs():
    """Each layout's mean shape (eye-corner frame) mirrored and permuted by its flip pairs is itself."""
    for reader, folder, corners in (("fgnet", "fgnet", (27, 32)), ("scut", "scut_fbp5500", (46, 50))):
        samples = read_dataset(reader, need(SHARED / folder), "val")
        schema = load_schema(READERS[reader].schema)
        shapes = []
        for s in samples:
            p = s.landmarks.astype(np.float64)
            a, b = p[corners[0]], p[corners[1]]
            d = b - a
            rot = np.array([[d[0], d[1]], [-d[1], d[0]]]) / (d @ d)
            shapes.append((p - (a + b) / 2) @ rot.T)
        mean = np.mean(shapes, axis=0)
        mirrored = mean[schema.flip_permutation] * [-1, 1]
        assert np.abs(mirrored - mean).max() < 0.08  # in inter-ocular units


@pytest.mark.parametrize(
    ("jaw", "masked_yaws"), [("keep", []), ("mask_turned", [45.0, -70.0]), ("mask", [10.0, 45.0, -70.0])]
)
def test_aflw2000_jaw_option_makes_the_jaw_points_missing_on_the_faces_it_names(tmp_path, jaw, masked_yaws):
    faces = write_aflw2000(tmp_path)  # yaws 10, 45 and -70 degrees
    samples = read_dataset("aflw2000", tmp_path, "all", jaw=jaw)
    for s in samples:
        points, _ = faces[s.attributes["image_id"]]
        masked = round(s.attributes["yaw"], 3) in masked_yaws
        assert np.isnan(s.landmarks[:17]).all() == masked
        np.testing.assert_array_equal(s.landmarks[17:], points[17:].astype(np.float32))  # the rest as stored
        assert (s.visible is not None and not s.visible[:17].any() and s.visible[17:].all()) == masked
        if not masked:
            np.testing.assert_array_equal(s.landmarks, points.astype(np.float32))
        # the box stays the tight box of all 68 points, so a face is cropped alike whatever is masked
        np.testing.assert_array_equal(s.box, np.r_[points.min(0), points.max(0)].astype(np.float32))
    with pytest.raises(ValueError, match="jaw must be one of keep, mask_turned, mask"):
        read_dataset("aflw2000", tmp_path, "all", jaw="hide")


def test_aflw2000_jaw_option_reaches_the_reader_from_a_sources_options(tmp_path):
    from awing.core.config import load_config
    from awing.data.build import load_sources

    write_aflw2000(tmp_path / "aflw")
    source = (f"{{format: aflw2000, root: {tmp_path / 'aflw'}, split: all, options: {{jaw: mask_turned}}, crop: box, "
              "enlarge: 0.1}")
    cfg = load_config(None, ["data.format=w300", f"data.sources=[{source}]"])
    ((_, samples),) = load_sources(cfg, load_schema("w300_68"))
    masked = [bool(np.isnan(s.landmarks[:17]).all()) for s in samples]
    assert masked == [bool(s.attributes["large_pose"]) for s in samples]
    assert [s.attributes["large_pose"] for s in samples].count(1) == 2 and len(samples) == 3
