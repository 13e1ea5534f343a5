"""benchmarks/_common.py: where the real data is and how each data set in it is found; both ways to run a
benchmark (``python -m benchmarks.NAME`` and ``python benchmarks/NAME.py``) find it."""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from awing.data.readers import read_dataset
from benchmarks._common import (
    DATASETS,
    REPO,
    add_shared_argument,
    dataset_root,
    read_samples,
    shared_data,
    subsample,
)
from benchmarks.group_photo import fdd_val


def test_the_shared_data_is_the_environments_folder_else_the_one_beside_the_repository(monkeypatch, tmp_path):
    assert (REPO / "benchmarks" / "_common.py").is_file()
    monkeypatch.delenv("AWING_SHARED_DATA", raising=False)
    assert shared_data() == REPO.parent / "shared" / "data"
    monkeypatch.setenv("AWING_SHARED_DATA", "")  # empty: unset
    assert shared_data() == REPO.parent / "shared" / "data"
    monkeypatch.setenv("AWING_SHARED_DATA", str(tmp_path))
    assert shared_data() == tmp_path
    assert dataset_root("w300") == tmp_path / "w300"
    assert dataset_root("fdd14", "/elsewhere") == Path("/elsewhere/fdd14")
    parser = argparse.ArgumentParser()
    add_shared_argument(parser)
    assert parser.parse_args([]).shared == tmp_path
    assert parser.parse_args(["--shared", "/data"]).shared == Path("/data")


def test_each_data_set_names_an_existing_reader_and_schema():
    from awing.data.readers import get_reader
    from awing.schemas import load_schema

    for name, data_set in DATASETS.items():
        assert get_reader(data_set.reader).schema == data_set.schema, name
        assert load_schema(data_set.schema).name == data_set.schema


def test_the_aflw2000_fgnet_and_scut_sets_are_read_from_their_shared_folders(tmp_path):
    from fixtures.new_layouts import write_aflw2000, write_fgnet, write_scut

    from awing.schemas import load_schema

    assert {k: (v.reader, v.folder) for k, v in DATASETS.items() if k in ("aflw2000", "fgnet", "scut")} == {
        "aflw2000": ("aflw2000", "aflw2000_3d"), "fgnet": ("fgnet", "fgnet"), "scut": ("scut", "scut_fbp5500")}
    write_aflw2000(tmp_path / "aflw2000_3d")
    write_fgnet(tmp_path / "fgnet")
    write_scut(tmp_path / "scut_fbp5500")
    for name, faces in (("aflw2000", 3), ("fgnet", 5), ("scut", 4)):
        samples = read_samples(name, "all", tmp_path)
        assert len(samples) == faces and samples[0].num_points == load_schema(DATASETS[name].schema).num_points
        assert {s.split for s in read_samples(name, "val", tmp_path)} == {"val"}


@pytest.mark.parametrize(
    ("limit", "expected"),
    [(None, list(range(10))), (0, list(range(10))), (3, [0, 3, 6]), (4, [0, 2, 4, 6]), (20, list(range(10)))],
)
def test_subsample_is_evenly_spaced_from_the_first(limit, expected):
    assert subsample(list(range(10)), limit) == expected


def fake_fdd(root, faces: int = 5):
    """A tiny FDD-14 folder: ``faces`` val images (and one train image) with their landmarks.csv."""
    rng = np.random.default_rng(0)
    (root / "images").mkdir(parents=True)
    head = ["image", "split", "background", "frame"] + [f"{a}{i}" for i in range(14) for a in "xy"]
    lines = [",".join(head)]
    for frame in range(faces + 1):
        name = f"simple_{frame + 1:04d}.jpg"
        cv2.imwrite(str(root / "images" / name), np.full((64, 64, 3), 128, np.uint8))
        points = rng.uniform(10, 54, (14, 2))
        split = "train" if frame == 0 else "val"
        lines.append(",".join([name, split, "simple", str(frame + 1), *(f"{v:.2f}" for v in points.ravel())]))
    (root / "landmarks.csv").write_text("\n".join(lines) + "\n")


def test_a_data_set_is_read_from_its_folder_under_the_shared_data(tmp_path):
    fake_fdd(tmp_path / "fdd14")
    samples = read_samples("fdd14", "val", tmp_path)
    assert len(samples) == 5
    assert [s.image for s in samples] == [s.image for s in read_dataset("fdd", tmp_path / "fdd14", "val")]
    assert [s.image for s in read_samples("fdd14", "val", tmp_path, limit=2)] == [samples[0].image, samples[2].image]
    # group_photo reads FDD's CSV itself: the same faces, images and points as the reader
    faces = fdd_val(tmp_path)
    assert [str(path) for path, _ in faces] == [str(s.image) for s in samples]
    for (_, points), sample in zip(faces, samples):
        np.testing.assert_allclose(points, sample.landmarks, atol=1e-4)


@pytest.mark.parametrize("how", ["script", "module"])
def test_a_benchmark_runs_as_a_script_from_anywhere_and_as_a_module(how, tmp_path):
    """``python benchmarks/reproduce.py`` (this folder on sys.path, not the repository) and ``python -m
    benchmarks.reproduce`` (from the repository) both import the shared helper."""
    if how == "script":
        cmd, cwd = [sys.executable, str(REPO / "benchmarks" / "reproduce.py"), "--help"], tmp_path
    else:
        cmd, cwd = [sys.executable, "-m", "benchmarks.reproduce", "--help"], REPO
    proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "Check the paper's claims on real data" in proc.stdout and "sharpness" in proc.stdout
