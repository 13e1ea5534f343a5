"""Group photos (issue 15): a crowded grid photo's faces come back in one call (benchmarks/group_photo.py)."""

from __future__ import annotations

import numpy as np
import pytest

from awing import FaceAligner
from awing.data.synthetic import make_example
from benchmarks.group_photo import faces_per_second, group_photo, main


def iou(a: np.ndarray, b: np.ndarray) -> float:
    """Intersection over union of two (x0, y0, x1, y1) boxes."""
    w = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    h = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - w * h
    return float(w * h / union)


@pytest.fixture(scope="module")
def grid():
    """The 3 x 3 photo of 128 px synthetic faces and their true boxes."""
    return group_photo(3, 128)


def test_the_photo_is_a_grid_of_distinct_synthetic_faces_with_their_boxes(grid):
    image, boxes = grid
    assert image.shape == (384, 384, 3) and image.dtype == np.uint8 and boxes.shape == (9, 4)
    for i, box in enumerate(boxes):
        row, col = divmod(i, 3)
        tile = image[row * 128 : (row + 1) * 128, col * 128 : (col + 1) * 128]
        face, record = make_example(0, "val", i, 128, "w300_68")
        assert np.array_equal(tile, face)  # row-major, tile i is the i-th val face of seed 0
        assert np.allclose(box, record["box"] + np.array([col, row, col, row]) * 128)  # its box, moved with it
        assert col * 128 <= box[0] < box[2] <= (col + 1) * 128 and row * 128 <= box[1] < box[3] <= (row + 1) * 128
    tiles = {image[r * 128 : (r + 1) * 128, c * 128 : (c + 1) * 128].tobytes() for r in range(3) for c in range(3)}
    assert len(tiles) == 9  # nine different faces


def test_grid_photo_all_faces_in_one_batched_call(grid):
    image, boxes = grid
    assert image.shape == (384, 384, 3) and boxes.shape == (9, 4)
    aligner = FaceAligner("fdd14-1hg-tiny", device="cpu", max_batch=64, refine="always")  # both passes batched
    calls = []
    run = aligner.landmarks_in_crops
    aligner.landmarks_in_crops = lambda crops, m: calls.append(len(crops)) or run(crops, m)
    faces = aligner.predict_crops(image, boxes, color="BGR")
    assert len(faces) == 9 and calls == [9]  # one forward pass for the nine faces
    centres = np.array([f.landmarks.mean(0) for f in faces])
    tiles = (centres // 128).astype(int)
    assert len({tuple(t) for t in tiles}) == 9  # each face's points in its own tile
    assert [tuple(t) for t in tiles] == [(c, r) for r in range(3) for c in range(3)]  # in the boxes' order
    for face, box, centre in zip(faces, boxes, centres):  # each face keeps its box, its points centred in it
        assert np.array_equal(face.box, box) and (box[:2] <= centre).all() and (centre <= box[2:]).all()

    calls.clear()
    found, seconds = faces_per_second(aligner, image, repeat=2)
    detected = aligner.predict(image, color="BGR")
    assert found == len(detected) and seconds > 0  # the faces `predict` finds, timed per call
    # warm-up + 2 timed calls + ours, each the same batched passes (no pass per face): the detector's first stage's
    # faces, the faces its second stage added (BlazeFace's back model, where it ran), then the second pass on all
    first = len(aligner.detector.first_stage(np.ascontiguousarray(image[..., ::-1]))[0])
    per_call = [n for n in (first, found - first, found) if n > 0]
    assert calls == per_call * 4
    # every detection is one of the nine faces, each found at most once, and most are found
    matches = [max(range(9), key=lambda i: iou(face.box, boxes[i])) for face in detected]
    assert all(iou(face.box, boxes[i]) > 0.4 for face, i in zip(detected, matches))
    assert len(set(matches)) == len(matches) >= 6


def test_the_command_reports_faces_found_and_faces_per_second(capsys):
    """``python benchmarks/group_photo.py --grid 2``: detector + landmarks, then the given boxes' one pass."""
    assert main(["--grid", "2", "--tile", "128", "--repeat", "1", "--model", "fdd14-1hg-tiny"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("256x256 photo, 4 faces, detector + landmarks: ")
    found = int(out[0].split("landmarks: ")[1].split(" found")[0])
    assert 1 <= found <= 4 and out[0].endswith(" faces/s")
    assert out[1].startswith("(1 thread(s), FaceAligner(") and "fdd14-1hg-tiny" in out[1]
    assert out[2].startswith("given boxes (landmarks only, one batched pass): 4 faces, ")
    assert out[2].endswith(" faces/s") and len(out) == 3
