import logging

import cv2
import numpy as np
import pytest
import torch

from awing.core.config import AugmentConfig, Config, DataConfig
from awing.data.build import build_dataset
from awing.data.crop import transform_points
from awing.data.dataset import LandmarkDataset, build_loader, collate_landmarks
from awing.data.sample import Sample
from awing.schemas import load_schema

SCHEMA = load_schema("fdd14")
FACE = np.array(
    [
        [60, 50], [85, 48], [115, 48], [140, 50], [62, 65], [72, 64], [82, 65], [118, 65], [128, 64],
        [138, 65], [100, 90], [78, 115], [100, 112], [122, 115],
    ],
    dtype=np.float32,
)
S = 64


def _write_face(path, shift=(0, 0), colour=(255, 0, 0)):
    """A 160 x 200 BGR image: dark grey, a coloured patch between eyes and nose, white landmark dots."""
    img = np.full((160, 200, 3), 30, np.uint8)
    img[72 + shift[1] : 83 + shift[1], 92 + shift[0] : 109 + shift[0]] = colour
    pts = FACE + np.asarray(shift, np.float32)
    for x, y in pts:
        cv2.circle(img, (int(round(x)), int(round(y))), 2, (255, 255, 255), -1)
    cv2.imwrite(str(path), img)
    return pts


@pytest.fixture
def samples(tmp_path):
    out = []
    for i in range(4):
        pts = _write_face(tmp_path / f"face{i}.png", shift=(i * 3, -i * 2))
        vis = np.ones(14, bool)
        vis[i] = False
        pts = pts.copy()
        if i == 1:
            pts[12] = np.nan
        box = np.array([50, 35, 150, 125], np.float32) + [i * 3, -i * 2, i * 3, -i * 2]
        out.append(Sample(str(tmp_path / f"face{i}.png"), pts, vis, box, source=f"list.txt:{i + 1}"))
    return out


def test_item_shapes_dtypes_and_geometry(samples):
    ds = LandmarkDataset(samples, "fdd14", S, crop="box", enlarge=0.1)
    assert len(ds) == 4
    item = ds[1]
    assert item["image"].shape == (3, S, S) and item["image"].dtype == torch.uint8
    assert item["points"].shape == (14, 2) and item["points"].dtype == torch.float32
    assert item["visible"].shape == (14,) and item["visible"].dtype == torch.bool
    assert item["affine"].shape == (2, 3) and item["affine"].dtype == torch.float64
    assert item["landmarks"].dtype == torch.float32 and item["box"].shape == (4,)
    assert item["index"] == 1 and bool(item["valid"])
    # points are the landmarks through the affine; missing stays NaN and invisible
    expected = transform_points(samples[1].landmarks, item["affine"].numpy())
    np.testing.assert_allclose(item["points"].numpy(), expected, rtol=0, atol=1e-4)
    assert torch.isnan(item["points"][12]).all() and not item["visible"][12] and not item["visible"][1]
    assert item["visible"].sum() == 12
    np.testing.assert_array_equal(item["box"].numpy(), samples[1].box)
    # box 100 x 90 -> square side 110, centre (100 + 3, 80 - 2) -> crop centre (S - 1) / 2
    centre = transform_points(np.array([[103.0, 78.0]]), item["affine"].numpy())
    np.testing.assert_allclose(centre, [[(S - 1) / 2, (S - 1) / 2]], atol=1e-9)
    np.testing.assert_allclose(item["affine"].numpy()[0, 0], S / 110.0)
    # RGB: the BGR (255, 0, 0) patch is blue
    img = item["image"].numpy()
    (x, y), *_ = np.rint(transform_points(np.array([[103.0, 75.0]]), item["affine"].numpy())).astype(int)
    assert img[2, y, x] > 200 and img[0, y, x] < 60
    # white dots under the visible points
    for x, y in item["points"].numpy()[~np.isnan(item["points"].numpy()).any(1)]:
        assert img[:, int(round(y)), int(round(x))].min() > 150


def test_landmark_crop_mode(samples):
    ds = LandmarkDataset(samples, SCHEMA, S, crop="landmarks")
    item = ds[0]
    np.testing.assert_array_equal(item["box"].numpy(), [60, 48, 140, 115])  # tight around the points
    pts = item["points"].numpy()
    assert pts[:, 0].min() == pytest.approx(-0.5) and pts[:, 0].max() == pytest.approx(S - 0.5)
    no_box = [Sample(samples[0].image, samples[0].landmarks)]
    np.testing.assert_array_equal(LandmarkDataset(no_box, SCHEMA, S)[0]["box"].numpy(), [60, 48, 140, 115])
    with pytest.raises(ValueError):
        LandmarkDataset(samples, SCHEMA, S, crop="detector")
    with pytest.raises(ValueError):
        LandmarkDataset(samples, "wflw98", S)


def test_augmented_items_keep_dots_under_points(samples):
    cfg = AugmentConfig(blur=0, noise=0, occlusion=0, colour=0, flip=1.0)
    ds = LandmarkDataset(samples, SCHEMA, S, augment=cfg, train=True, seed=3)
    for i in range(len(ds)):
        item = ds[i]
        pts, img = item["points"].numpy(), item["image"].numpy()
        ok = ~np.isnan(pts).any(1) & ((pts > 1) & (pts < S - 2)).all(1)
        assert ok.sum() >= 8
        for x, y in pts[ok]:
            assert img[:, int(round(y)), int(round(x))].min() > 100
        # flipped: the left eye's outer corner stays left of the right eye's
        assert pts[4, 0] < pts[9, 0]
        np.testing.assert_array_equal(item["landmarks"].numpy(), samples[i].landmarks)  # un-augmented


def test_corrupt_and_missing_images_are_dropped(samples, tmp_path, caplog):
    bad = tmp_path / "broken.jpg"
    bad.write_bytes(b"\xff\xd8 this is not a jpeg at all" * 10)
    broken = Sample(str(bad), FACE, None, np.array([50, 35, 150, 125], np.float32), source="list.txt:9")
    missing = Sample(str(tmp_path / "nope.png"), FACE, None, None)
    ds = LandmarkDataset([samples[0], broken, samples[1], missing], SCHEMA, S, augment=AugmentConfig(), train=True)
    with caplog.at_level(logging.WARNING, logger="awing.data"):
        items = [ds[i] for i in range(4)] + [ds[1]]
    assert [bool(it["valid"]) for it in items] == [True, False, True, False, False]
    assert items[1]["image"].shape == (3, S, S) and not items[1]["image"].any()
    warnings = [r for r in caplog.records if r.name == "awing.data"]
    assert len(warnings) == 2 and "broken.jpg" in warnings[0].getMessage()  # once per file
    assert len(ds.invalid_files) == 2
    batch = collate_landmarks(items[:4])
    assert batch["n_invalid"] == 2 and batch["invalid_index"] == [1, 3]
    assert batch["image"].shape == (2, 3, S, S) and batch["points"].shape == (2, 14, 2)
    assert batch["index"].tolist() == [0, 2] and batch["valid"].all()
    empty = collate_landmarks([items[1], items[3]])
    assert empty["image"].shape == (0, 3, S, S) and empty["n_invalid"] == 2


def test_determinism_and_seed(samples):
    cfg = AugmentConfig()

    def run(seed):
        ds = LandmarkDataset(samples, SCHEMA, S, augment=cfg, train=True, seed=seed)
        return [ds[i] for i in (0, 1, 2, 3, 0)]

    a, b, c = run(5), run(5), run(6)
    for x, y in zip(a, b):
        assert torch.equal(x["image"], y["image"]) and torch.equal(x["affine"], y["affine"])
    assert not all(torch.equal(x["affine"], y["affine"]) for x, y in zip(a, c))
    assert torch.equal(a[0]["affine"], a[4]["affine"])  # one draw per (seed, epoch, index): resumable
    ds = LandmarkDataset(samples, SCHEMA, S, augment=cfg, train=True, seed=5)
    ds.set_epoch(1)
    assert not torch.equal(a[0]["affine"], ds[0]["affine"])  # a new draw each epoch
    ds.set_epoch(0)
    assert torch.equal(a[0]["affine"], ds[0]["affine"])
    # evaluation mode does not augment even with an augment config
    ev = LandmarkDataset(samples, SCHEMA, S, augment=cfg, train=False)
    assert torch.equal(ev[0]["image"], ev[0]["image"])


def test_cache_keeps_decoded_images(samples, tmp_path):
    cfg = Config(data=DataConfig(crop="box", enlarge=0.1, cache=True))
    ds = build_dataset(cfg, samples[:1], load_schema("fdd14"), input_size=S)
    first = ds[0]
    (tmp_path / "face0.png").unlink()
    again = ds[0]
    assert bool(again["valid"]) and torch.equal(first["image"], again["image"])
    nocache = LandmarkDataset(samples[:1], "fdd14", S)
    assert not bool(nocache[0]["valid"])


def test_loader_workers_are_seeded_and_reproducible(samples):
    cfg = AugmentConfig()
    many = samples[:1] * 16  # one face 16 times: only the augmentation differs between items

    def epoch(seed, workers):
        ds = LandmarkDataset(many, SCHEMA, 32, augment=cfg, train=True, seed=1)
        loader = build_loader(ds, batch_size=4, shuffle=True, workers=workers, seed=seed)
        return [b for b in loader], [b for b in loader]  # two epochs

    (e1, e2), (f1, _) = epoch(0, 2), epoch(0, 2)
    for x, y in zip(e1, f1):
        assert torch.equal(x["index"], y["index"]) and torch.equal(x["affine"], y["affine"])
    idx = torch.cat([b["index"] for b in e1])
    assert sorted(idx.tolist()) == list(range(16)) and idx.tolist() != list(range(16))  # shuffled
    aff = torch.cat([b["affine"] for b in e1])
    # each worker (and epoch) draws its own augmentations
    assert len({tuple(a.flatten().tolist()) for a in aff}) == 16
    assert not torch.equal(torch.cat([b["affine"] for b in e2]), aff)
