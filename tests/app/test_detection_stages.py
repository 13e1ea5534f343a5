"""FaceAligner with a two-stage detector (BlazeFace's default on still photos): the back-camera model runs only
where the short-range one found no real face, or only small ones (issue 23: awing.app.api.needs_second_stage)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from awing import FaceAligner
from awing.app.api import SMALL_FACE_SHARE, FaceLandmarks, needs_second_stage
from awing.core.images import load_image
from awing.detect import BlazeFaceDetector, video_mode

from shared_data import SHARED, need

MPII = SHARED / "fixtures" / "mmpose_samples" / "mpii"
EXAMPLE = Path(__file__).resolve().parents[2] / "docs" / "assets" / "example.jpg"


def _face(box, quality: float, cut: float = 0.5) -> FaceLandmarks:
    return FaceLandmarks(
        box=np.asarray(box, np.float32),
        landmarks=np.zeros((1, 2), np.float32),
        confidence=np.ones(1, np.float32),
        point_names=("p",),
        schema="s",
        quality=quality,
        quality_threshold=cut,
    )


def test_the_second_stage_runs_without_a_real_face_or_where_the_real_faces_are_small():
    image = (400, 800, 3)  # the longer side, 800 px, sets the scale
    big, small = 0.3 * 800, 0.2 * 800
    assert needs_second_stage([], image)  # nothing found
    assert needs_second_stage([_face([0, 0, big, big], quality=0.3)], image)  # only a false box (e.g. a sign)
    assert not needs_second_stage([_face([0, 0, big, big], quality=0.7)], image)
    assert needs_second_stage([_face([0, 0, big, big], 0.7), _face([0, 0, small, 10], 0.7)], image)
    assert not needs_second_stage([_face([0, 0, big, big], 0.7), _face([0, 0, small, 10], 0.2)], image)
    edge = SMALL_FACE_SHARE * 800
    assert not needs_second_stage([_face([0, 0, 10, edge], 0.7)], image)  # the longer side of the box counts
    assert needs_second_stage([_face([0, 0, 10, edge - 1], 0.7)], image)
    assert not needs_second_stage([_face([0, 0, 10, edge - 1], 0.7)], image, small=0.1)


def _count_second_stages(aligner: FaceAligner) -> list:
    calls = []
    run = aligner.detector.second_stage
    aligner.detector.second_stage = lambda image, known: calls.append(len(known)) or run(image, known)
    return calls


@pytest.fixture(scope="module")
def aligner():
    return FaceAligner(device="cpu", backend="torch", refine="never", threads=1)


@pytest.mark.parametrize("name", ["060754485.jpg", "005808361.jpg"])
def test_a_photo_where_the_short_model_boxes_only_false_faces_gets_the_back_model(aligner, name):
    """The MPII photos of issue 23: the short-range model boxes a sign / a jersey's back, which fail the landmark
    quality check; the back model's second stage then finds the small face, which passes it."""
    for person in json.loads((need(MPII) / "test_mpii.json").read_text()):
        if person["image"] == name:
            neck, top = (np.asarray(person["joints"][j], np.float64) for j in (8, 9))
    centre = (neck + top) / 2
    rgb = load_image(MPII / name)
    calls = _count_second_stages(aligner)
    faces = aligner.predict(rgb, color="RGB")
    assert aligner.detector.mode == "cascade" and calls == [len(aligner.detector.first_stage(rgb)[0])]
    holds = [bool((f.box[:2] <= centre).all() and (centre <= f.box[2:]).all()) for f in faces]
    assert sum(holds) == 1 and faces[holds.index(True)].is_face
    assert [f.score for f in faces] == sorted((f.score for f in faces), reverse=True)


def test_a_portrait_needs_one_stage_and_video_frames_never_stage(aligner):
    """docs/assets/example.jpg: one face filling much of the photo, found by the short-range model alone."""
    rgb = load_image(EXAMPLE)
    calls = _count_second_stages(aligner)
    faces = aligner.predict(rgb, color="RGB")
    assert len(faces) == 1 and faces[0].is_face and calls == []
    before, aligner.face_quality = aligner.face_quality, 1.1  # no face passes the check: the second stage looks
    try:
        assert len(aligner.predict(rgb, color="RGB")) == 1 and calls == [1]  # the back model found no new face
        with video_mode(aligner.detector):
            aligner.predict(rgb, color="RGB")
        assert calls == [1]  # video frames take the detector's fallback mode, never the staged path
    finally:
        aligner.face_quality = before


def test_a_one_model_detector_is_never_staged():
    aligner = FaceAligner(device="cpu", backend="torch", detector=BlazeFaceDetector("merged"), refine="never")
    aligner.detector.second_stage = lambda *a: pytest.fail("merged is one detect() call")
    calls = []
    run = aligner.detector.detect
    aligner.detector.detect = lambda image: calls.append(1) or run(image)
    assert len(aligner.predict(load_image(EXAMPLE), color="RGB")) == 1 and calls == [1]
