"""300W iBUG reader: partial copies, explicit subset lists (``helen_train+afw``) and the fixed
``fit`` / ``val`` hold-out of ``train`` by photo. Fixture trees in the iBUG layout are written into
tmp_path at test time; the real AFW + HELEN-train copy in ../shared/data/w300 where present."""

from __future__ import annotations

import logging
import re
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from test_readers import rng_points, touch, write_pts  # the 300W fixture helpers of test_readers.py

from awing.data.readers import READERS, get_reader, read_dataset, w300
from awing.data.sample import landmark_box

from shared_data import SHARED, need

LOGGER = "awing.data.readers.w300"

# AFW: 40 photos, 1 to 3 faces each (<photo>_<k>); HELEN train: 30 photos, every 4th with two faces.
AFW_FACES = {str(1000 + i): i % 3 + 1 for i in range(40)}
HELEN_FACES = {str(5000 + i): 2 if i % 4 == 0 else 1 for i in range(30)}
# held_out() of the AFW photo ids above: pinned, so a change of the hold-out rule fails here.
AFW_HELD_OUT = ["1003", "1008", "1016", "1024", "1038"]


def add_faces(root: Path, folder: str, faces: dict[str, int], seed: int = 0, reverse: bool = False) -> list[str]:
    """``<photo>_<k>.pts`` + ``.jpg`` for each photo and face in ``folder``; their ``.pts`` paths."""
    names = [f"{photo}_{k}" for photo, n in faces.items() for k in range(1, n + 1)]
    order = list(enumerate(names))
    for i, name in reversed(order) if reverse else order:  # creation order must not matter
        write_pts(root / folder / f"{name}.pts", rng_points(68, seed + i))
        touch(root / folder / f"{name}.jpg")
    return sorted(str(root / folder / f"{name}.pts") for name in names)


@pytest.fixture
def partial_root(tmp_path):
    """HELEN train and AFW only (like ../shared/data/w300): no LFPW, no test sets."""
    root = tmp_path / "w300"
    helen = add_faces(root, "helen/trainset", HELEN_FACES, seed=100)
    afw = add_faces(root, "afw", AFW_FACES, seed=200)
    return root, helen, afw


def photo(sample) -> tuple[str, str]:
    return sample.attributes["subset"], w300.photo_id(sample.attributes["subset"], Path(sample.source).stem)


def w300_records(caplog) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == LOGGER]


# ---------------------------------------------------------------------------------------- partial copies


def test_train_reads_the_present_subsets_and_logs_the_missing_one_once(partial_root, caplog):
    root, helen, afw = partial_root
    with caplog.at_level(logging.INFO, logger=LOGGER):
        samples = read_dataset("w300", root, "train")
    assert [s.source for s in samples] == helen + afw  # official order: lfpw_train, helen_train, afw
    assert [s.attributes["subset"] for s in samples] == ["helen_train"] * len(helen) + ["afw"] * len(afw)
    assert {s.split for s in samples} == {"train"}
    [record] = w300_records(caplog)
    assert record.levelno == logging.WARNING
    message = record.getMessage()
    assert "missing subsets: lfpw_train" in message and "lfpw/trainset" in message
    assert f"read {len(helen) + len(afw)} faces (helen_train {len(helen)}, afw {len(afw)})" in message
    assert "helen_train" not in message.split("missing")[1] and "afw" not in message.split("missing")[1]


def test_complete_split_logs_nothing(partial_root, caplog):
    root, helen, afw = partial_root
    with caplog.at_level(logging.INFO, logger=LOGGER):
        assert [s.source for s in w300.read(root, "afw")] == afw
        assert len(w300.read(root, "helen_train+afw")) == len(helen) + len(afw)
    assert not w300_records(caplog)


def test_split_with_one_subset_present_of_three(tmp_path, caplog):
    afw = add_faces(tmp_path, "afw", {"42": 2})
    with caplog.at_level(logging.INFO, logger=LOGGER):
        samples = w300.read(tmp_path, "train")
    assert [s.source for s in samples] == afw
    [record] = w300_records(caplog)
    assert "read 2 faces (afw 2)" in record.getMessage()
    assert "missing subsets: lfpw_train, helen_train" in record.getMessage()


@pytest.mark.parametrize("split", ["train", "fit", "val", "common", "challenge", "full", "private"])
def test_no_subset_of_the_split_present_is_an_error_naming_the_folders(partial_root, split):
    root, _, _ = partial_root
    empty = root.parent / "empty"
    empty.mkdir()
    with pytest.raises(FileNotFoundError, match=f"w300 split '{split}': none of its subsets") as err:
        read_dataset("w300", empty, split)
    message = str(err.value)
    for subset in w300.SPLIT_SUBSETS[split]:
        assert f"300W {subset} folder" in message
        assert str(empty / w300.SUBSET_DIRS[subset][0]) in message
    if split in ("common", "full"):  # the partial root has neither test set either
        with pytest.raises(FileNotFoundError, match="300W helen_test folder"):
            w300.read(root, split)


def test_present_folder_without_pts_files_is_an_error(tmp_path):
    add_faces(tmp_path, "afw", {"42": 1})
    (tmp_path / "helen" / "trainset").mkdir(parents=True)
    with pytest.raises(ValueError, match=re.escape(f"{tmp_path / 'helen' / 'trainset'} (no .pts file)")):
        w300.read(tmp_path, "train")


# ------------------------------------------------------------------------------------ explicit subsets


def test_explicit_subset_list_reads_in_the_given_order(partial_root):
    root, helen, afw = partial_root
    samples = read_dataset("w300", root, "afw+helen_train")  # through the registry's split check
    assert [s.source for s in samples] == afw + helen
    assert {s.split for s in samples} == {"afw+helen_train"}
    first = w300.read(root, "helen_train+afw", one_based=False)[0]
    np.testing.assert_allclose(samples[len(afw)].landmarks, first.landmarks - 1.0, atol=1e-5)
    np.testing.assert_array_equal(samples[0].box, landmark_box(samples[0].landmarks))


def test_explicit_missing_subset_is_an_error(partial_root):
    root, _, _ = partial_root
    for split in ("lfpw_test+helen_test", "helen_train+afw+lfpw_train", "ibug"):
        with pytest.raises(FileNotFoundError, match=re.escape(f"w300 split {split!r}: not found under {root}")) as err:
            read_dataset("w300", root, split)
        assert "helen_train folder" not in str(err.value) and "afw folder" not in str(err.value)
    assert "300W lfpw_train folder" in str(pytest.raises(FileNotFoundError, w300.read, root, "afw+lfpw_train").value)


@pytest.mark.parametrize("split", ["helen_train+afv", "afw+", "Helen_train+afw", "train+afw"])
def test_unknown_subset_name_lists_the_known_ones(partial_root, split):
    root, _, _ = partial_root
    with pytest.raises(ValueError, match="unknown subset") as err:
        read_dataset("w300", root, split)
    assert "known subsets: " + ", ".join(w300.SUBSET_DIRS) in str(err.value)


def test_unknown_split_and_repeated_subset(partial_root):
    root, _, _ = partial_root
    with pytest.raises(ValueError, match="unknown split 'dev' for 'w300'; known: train, fit, val, .*helen_train"):
        read_dataset("w300", root, "dev")
    with pytest.raises(ValueError, match="names subset 'afw' more than once"):
        w300.read(root, "afw+helen_train+afw")


def test_registry_lists_the_new_splits():
    info = get_reader("w300")
    assert info.schema == "w300_68"
    assert tuple(info.splits) == ("train", "fit", "val", "common", "challenge", "full", "private")
    assert READERS["w300"] is info


# --------------------------------------------------------------------------------------------- fit / val


def test_val_holds_out_whole_photos_and_fit_is_the_rest(partial_root):
    root, _, _ = partial_root
    train = w300.read(root, "train")
    fit, val = w300.read(root, "fit"), w300.read(root, "val")
    assert {s.split for s in fit} == {"fit"} and {s.split for s in val} == {"val"}
    fit_sources, val_sources = [s.source for s in fit], [s.source for s in val]
    assert not set(fit_sources) & set(val_sources)
    assert sorted(fit_sources + val_sources) == sorted(s.source for s in train)
    assert [s for s in (s.source for s in train) if s in set(val_sources)] == val_sources  # train's order
    fit_photos, val_photos = {photo(s) for s in fit}, {photo(s) for s in val}
    assert not fit_photos & val_photos
    assert sorted(p for subset, p in val_photos if subset == "afw") == AFW_HELD_OUT
    # every face of a held-out AFW photo is in val (photos have 1 to 3 faces)
    afw_val = Counter(p for subset, p in map(photo, val) if subset == "afw")
    assert afw_val == {p: AFW_FACES[p] for p in AFW_HELD_OUT}
    helen_val = Counter(p for subset, p in map(photo, val) if subset == "helen_train")
    assert helen_val == {"5001": 1, "5024": 2, "5027": 1}  # HELEN too numbers the faces of one photo


def test_val_is_stable_across_other_subsets_and_file_order(partial_root, tmp_path):
    root, _, _ = partial_root
    val = w300.read(root, "val")
    afw_only = tmp_path / "afw_only"
    add_faces(afw_only, "afw", AFW_FACES, seed=200, reverse=True)  # other subsets absent, files made in reverse
    add_faces(afw_only, "ibug", {"7": 1})  # a non-train subset changes nothing
    other = w300.read(afw_only, "val")
    assert [Path(s.source).name for s in other] == [Path(s.source).name for s in val if s.attributes["subset"] == "afw"]
    np.testing.assert_array_equal(other[0].landmarks, next(s for s in val if s.attributes["subset"] == "afw").landmarks)
    # a partial AFW copy: the photos present keep their side
    fewer = tmp_path / "fewer"
    add_faces(fewer, "afw", {p: n for p, n in AFW_FACES.items() if int(p) % 2 == 0})
    assert sorted({photo(s)[1] for s in w300.read(fewer, "val")}) == [p for p in AFW_HELD_OUT if int(p) % 2 == 0]


def test_empty_val_is_an_error_not_an_empty_list(tmp_path):
    add_faces(tmp_path, "afw", {"1000": 1})  # not held out
    assert len(w300.read(tmp_path, "fit")) == 1
    with pytest.raises(ValueError, match="no sample of split 'val'"):
        w300.read(tmp_path, "val")


def test_photo_id():
    assert w300.photo_id("afw", "134212_2") == "134212"
    assert w300.photo_id("helen_train", "100040721_1") == "100040721"
    assert w300.photo_id("lfpw_train", "image_0001") == "image_0001"  # one face per LFPW image


# ------------------------------------------------------------------------------------------- real data

REAL_COUNTS = {  # split -> faces per subset on ../shared/data/w300 (AFW 337 + HELEN train 870)
    "train": {"helen_train": 870, "afw": 337},
    "fit": {"helen_train": 759, "afw": 303},
    "val": {"helen_train": 111, "afw": 34},
}


def test_real_w300_fit_val_counts_and_photo_separation(caplog):
    root = need(SHARED / "w300")
    with caplog.at_level(logging.INFO, logger=LOGGER):
        splits = {split: w300.read(root, split) for split in REAL_COUNTS}
    for split, samples in splits.items():
        assert Counter(s.attributes["subset"] for s in samples) == REAL_COUNTS[split]
    assert [r.getMessage().split(":")[0] for r in w300_records(caplog)] == [
        "w300 split 'train'", "w300 split 'fit'", "w300 split 'val'"
    ]
    assert all("missing subsets: lfpw_train" in r.getMessage() for r in w300_records(caplog))
    fit, val = ({s.source for s in splits[k]} for k in ("fit", "val"))
    assert not fit & val and fit | val == {s.source for s in splits["train"]}
    fit_photos, val_photos = ({photo(s) for s in splits[k]} for k in ("fit", "val"))
    assert not fit_photos & val_photos
    assert Counter(subset for subset, _ in val_photos) == {"afw": 21, "helen_train": 99}
    assert Counter(subset for subset, _ in fit_photos | val_photos) == {"afw": 185, "helen_train": 783}
    assert 0.10 <= len(val) / (len(fit) + len(val)) <= 0.15
