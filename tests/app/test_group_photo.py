"""Group photos (issue 15): a crowded grid photo's faces come back in one call (benchmarks/group_photo.py)."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from awing import FaceAligner  # noqa: E402
from benchmarks.group_photo import faces_per_second, group_photo  # noqa: E402


def test_grid_photo_all_faces_in_one_batched_call():
    image, boxes = group_photo(3, 128)
    assert image.shape == (384, 384, 3) and boxes.shape == (9, 4)
    aligner = FaceAligner("fdd14-1hg-tiny", device="cpu", max_batch=64)
    calls = []
    run = aligner.landmarks_in_crops
    aligner.landmarks_in_crops = lambda crops, m: calls.append(len(crops)) or run(crops, m)
    faces = aligner.predict_crops(image, boxes, color="BGR")
    assert len(faces) == 9 and calls == [9]  # one forward pass for the nine faces
    centres = np.array([f.landmarks.mean(0) for f in faces])
    tiles = (centres // 128).astype(int)
    assert len({tuple(t) for t in tiles}) == 9  # each face's points in its own tile
    found, seconds = faces_per_second(aligner, image, repeat=1)
    assert found >= 1 and seconds > 0
