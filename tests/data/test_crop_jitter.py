"""Issue 13: detector-like framing of training crops (``augment.box_scale`` / ``augment.box_shift``)."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch

from awing.core.config import AugmentConfig, ConfigError, load_config
from awing.data.augment import photometric, random_affine_params, warp_sample
from awing.data.crop import face_square
from awing.data.dataset import LandmarkDataset
from awing.data.sample import Sample, landmark_box

S = 64
FACE = np.array(
    [
        [60, 50], [85, 48], [115, 48], [140, 50], [62, 65], [72, 64], [82, 65], [118, 65], [128, 64],
        [138, 65], [100, 90], [78, 115], [100, 112], [122, 115],
    ],
    dtype=np.float32,
)
GEOMETRY_OFF = dict(rotation=0, translation=0, scale=0, flip=0, blur=0, noise=0, occlusion=0, colour=0)


@pytest.fixture
def sample(tmp_path):
    rng = np.random.default_rng(0)
    img = rng.integers(0, 255, (180, 220, 3), dtype=np.uint8)
    cv2.imwrite(str(tmp_path / "face.png"), img)
    return Sample(str(tmp_path / "face.png"), FACE.copy(), np.ones(14, bool), None)


def _square_from_affine(m: np.ndarray) -> tuple[np.ndarray, float]:
    """Centre and side (original pixels) of an unrotated, unflipped crop's square, from its affine."""
    k = m[0, 0]
    assert abs(m[0, 1]) < 1e-12 and abs(m[1, 0]) < 1e-12 and abs(m[1, 1] - k) < 1e-12
    centre = ((S - 1) / 2 - m[:, 2]) / k
    return centre, S / k


def test_jitter_varies_scale_and_centre_within_the_configured_range(sample):
    lo, hi, shift, enlarge = 0.8, 1.25, 0.1, 0.5
    cfg = AugmentConfig(**GEOMETRY_OFF, box_scale=[lo, hi], box_shift=shift)
    ds = LandmarkDataset([sample], "fdd14", S, crop="landmarks", enlarge=enlarge, augment=cfg, train=True, seed=3)
    lb = landmark_box(FACE)
    l_side = float(max(lb[2] - lb[0], lb[3] - lb[1]))
    cx, cy, side = face_square(lb, enlarge)
    ratios, offsets = [], []
    for epoch in range(300):
        ds.set_epoch(epoch)
        centre, s = _square_from_affine(ds[0]["affine"].numpy())
        ratios.append(s / side)
        offsets.append((centre - (cx, cy)) / l_side)
    ratios, offsets = np.array(ratios), np.array(offsets)
    assert ratios.min() >= lo - 1e-9 and ratios.max() <= hi + 1e-9
    assert ratios.min() < lo * 1.03 and ratios.max() > hi / 1.03  # the whole range is used
    assert abs(np.log(ratios).mean()) < 0.03  # log-uniform about 1 (log 0.8 = -log 1.25)
    assert np.abs(offsets).max() <= shift + 1e-9
    assert (offsets.min(axis=0) < -0.9 * shift).all() and (offsets.max(axis=0) > 0.9 * shift).all()
    assert abs(np.corrcoef(offsets[:, 0], offsets[:, 1])[0, 1]) < 0.2  # independent axes
    # one draw per (seed, epoch, index): a resumed run repeats it
    ds.set_epoch(7)
    assert torch.equal(ds[0]["affine"], ds[0]["affine"])
    # evaluation crops are never jittered
    ev = LandmarkDataset([sample], "fdd14", S, crop="landmarks", enlarge=enlarge, augment=cfg, train=False)
    centre, s = _square_from_affine(ev[0]["affine"].numpy())
    assert np.allclose(centre, (cx, cy)) and np.isclose(s, side)


@pytest.mark.parametrize("off", [AugmentConfig(), AugmentConfig(box_scale=None, box_shift=0.0)])
def test_jitter_off_is_the_old_augmentation_bit_for_bit(sample, off):
    ds = LandmarkDataset([sample], "fdd14", S, crop="landmarks", enlarge=0.5, augment=off, train=True, seed=1)
    image = cv2.imread(sample.image)
    cx, cy, side = face_square(landmark_box(FACE), 0.5)
    for epoch in range(5):
        ds.set_epoch(epoch)
        item = ds[0]
        # the augmentation as it was before the option: affine draws, one warp, photometric draws
        rng = ds.item_rng(0)
        params = random_affine_params(rng, off, S)
        crop, points, _, m = warp_sample(image, FACE, np.ones(14, bool), (cx, cy), side, S, ds.flip_permutation, params)
        crop = photometric(cv2.cvtColor(crop, cv2.COLOR_BGR2RGB), rng, off)
        assert np.array_equal(item["affine"].numpy(), m)
        assert np.array_equal(item["image"].numpy(), crop.transpose(2, 0, 1))
        assert np.array_equal(item["points"].numpy(), points.astype(np.float32))


def test_jitter_config_keys_and_checks():
    cfg = load_config(overrides=["augment.box_scale=[0.85, 1.2]", "augment.box_shift=0.15"])
    assert cfg.augment.box_scale == [0.85, 1.2] and cfg.augment.box_shift == 0.15
    assert load_config().augment.box_scale is None and load_config().augment.box_shift == 0.0
    for bad in ("augment.box_scale=[1.2, 0.85]", "augment.box_scale=[0, 1]", "augment.box_scale=[1]",
                "augment.box_shift=-0.1", "augment.box_shift=1.5"):
        with pytest.raises(ConfigError, match="augment.box_s"):
            load_config(overrides=[bad])
