"""benchmarks/peers.py: the declared 478 -> 68 table, the NME / common-face bookkeeping on hand-made inputs, the
MediaPipe worker's protocol (against a stand-in ``mediapipe`` module: no network, no virtualenv) and a dry run on
two fixture images."""

from __future__ import annotations

import json
import math
import os
import sys
import textwrap
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
import yaml

from benchmarks.peers import (
    MESH_POINTS,
    NUM_POINTS,
    TABLE,
    MediapipePipeline,
    MediapipeWorker,
    Photo,
    Pipeline,
    fit_table,
    load_table,
    main,
    match_face,
    nme_per_face,
    read_photos,
    run_photos,
    score,
)

from shared_data import SHARED, need


@pytest.fixture(autouse=True)
def keep_threads():
    """main() sets torch's and OpenCV's threads (the tests pass --no-pin, so no CPU affinity changes)."""
    torch_threads, cv2_threads = torch.get_num_threads(), cv2.getNumThreads()
    yield
    torch.set_num_threads(torch_threads)
    cv2.setNumThreads(cv2_threads)


def test_declared_table_has_68_distinct_valid_indices():
    data = yaml.safe_load(TABLE.read_text())
    indices = data["indices"]
    assert len(indices) == NUM_POINTS
    assert all(isinstance(k, int) and 0 <= k < MESH_POINTS for k in indices)
    assert len(set(indices)) == NUM_POINTS
    assert load_table(TABLE).tolist() == indices
    text = TABLE.read_text()
    assert "--fit-mediapipe-table" in text and "fit" in text and "FLATTERS" in text  # how it was derived


def test_load_table_rejects_bad_tables(tmp_path):
    bad = tmp_path / "t.yaml"
    bad.write_text("indices: [" + ", ".join(["1"] * NUM_POINTS) + "]\n")
    with pytest.raises(ValueError, match="distinct"):
        load_table(bad)
    bad.write_text("indices: [" + ", ".join(str(k) for k in range(420, 420 + NUM_POINTS)) + "]\n")
    with pytest.raises(ValueError, match="478"):
        load_table(bad)


def faces_gt(n=3):
    """n faces of 68 points with the outer eye corners 10 px apart."""
    gt = np.zeros((n, NUM_POINTS, 2))
    gt[:, :, 0] = np.linspace(0, 20, NUM_POINTS)
    gt[:, :, 1] = np.linspace(0, 30, NUM_POINTS)[::-1]
    gt[:, 36] = [0.0, 0.0]
    gt[:, 45] = [10.0, 0.0]
    return gt + np.arange(n)[:, None, None] * 100


def test_nme_per_face_is_mean_distance_over_outer_eye_corners():
    gt = faces_gt(2)
    pred = gt.copy()
    pred[0] += [3.0, 4.0]  # every point 5 px off, inter-ocular 10: 0.5
    pred[1, :34] += [0.0, 2.0]  # half of the points 2 px off: 1 px mean, 0.1
    assert nme_per_face(pred, gt) == pytest.approx([0.5, 0.1])
    pred[1, 7] = np.nan
    assert math.isnan(nme_per_face(pred, gt)[1])


def test_nme_per_face_takes_a_normaliser_and_skips_points_the_truth_lacks():
    gt = faces_gt(2)
    pred = gt.copy()
    pred[:, :34] += [0.0, 4.0]  # the first 34 points 4 px off
    eyes = gt[1, [36, 45]]
    gt[1, 34:] = np.nan  # face 1 without most points past 33 (as FG-NET in 300-W's layout): 36 points left
    gt[1, [36, 45]] = eyes
    face_1 = 34 * 4 / 36 / 40
    assert nme_per_face(pred, gt, np.array([20.0, 40.0])) == pytest.approx([2 / 20, face_1])
    rows = score({"a": pred}, gt, np.array([20.0, 40.0]))
    assert rows["a"]["nme_own"] == pytest.approx(100 * (0.1 + face_1) / 2)


def test_source_sets_carry_their_points_into_300w_and_their_normaliser():
    """The val splits of AFLW2000-3D (68 points, box size), FG-NET (22 of 300-W's points) and SCUT (15)."""
    data = need(SHARED)
    photos = read_photos(data, ("aflw2000-val", "fgnet-val", "scut-val"), limit=3)
    by_set = {s: [ph for ph in photos if ph.set == s] for s in ("AFLW2000-3D val", "FG-NET val", "SCUT val")}
    assert all(len(v) == 3 for v in by_set.values()), {k: len(v) for k, v in by_set.items()}
    annotated = {s: {int(np.isfinite(ph.gt).all(-1).sum()) for ph in v} for s, v in by_set.items()}
    assert annotated == {"AFLW2000-3D val": {68}, "FG-NET val": {22}, "SCUT val": {15}}
    for ph in by_set["AFLW2000-3D val"]:
        (x0, y0), (x1, y1) = ph.gt.min(0), ph.gt.max(0)
        assert ph.norm == pytest.approx(np.sqrt((x1 - x0) * (y1 - y0)))
    for ph in by_set["FG-NET val"] + by_set["SCUT val"]:  # by the outer eye corners, which both layouts give
        assert ph.norm == pytest.approx(np.linalg.norm(ph.gt[36] - ph.gt[45])) and ph.norm > 20
    assert {g for ph in by_set["SCUT val"] for g in ph.groups} == set()
    ages = {int(Path(ph.image).stem[4:6]): ph.groups for ph in by_set["FG-NET val"]}  # NNNAxx: xx the age
    assert all(groups == (("FG-NET val, under 18",) if age < 18 else ()) for age, groups in ages.items())


def test_score_counts_found_and_common_faces():
    gt = faces_gt(3)
    a = gt + [1.0, 0.0]  # 10 % on every face
    b = gt + [0.0, 2.0]  # 20 %, misses face 1
    b[1] = np.nan
    c = gt.copy()  # 0 %, misses face 2
    c[2] = np.nan
    rows = score({"a": a, "b": b, "c": c}, gt)
    assert {k: r["found"] for k, r in rows.items()} == {"a": 3, "b": 2, "c": 2}
    assert all(r["faces"] == 3 and r["common"] == 1 for r in rows.values())  # face 0 only
    assert rows["a"]["nme_own"] == pytest.approx(10) and rows["a"]["nme_common"] == pytest.approx(10)
    assert rows["b"]["nme_own"] == pytest.approx(20) and rows["b"]["nme_common"] == pytest.approx(20)
    assert rows["c"]["nme_own"] == pytest.approx(0) and rows["c"]["nme_common"] == pytest.approx(0)
    c[0] = np.nan  # c finds face 1 only, b faces 0 and 2: none is common
    rows = score({"b": b, "c": c}, gt)
    assert rows["b"]["common"] == 0 and math.isnan(rows["b"]["nme_common"])
    assert rows["c"]["found"] == 1 and rows["b"]["nme_own"] == pytest.approx(20)
    assert math.isnan(score({"d": np.full_like(gt, np.nan)}, gt)["d"]["nme_own"])


def test_match_face_takes_the_face_holding_the_truth_centre():
    gt = faces_gt(1)[0]  # landmark box (0, 0)-(20, 30): centre (10, 15)
    far = gt + 100
    near = gt + [3.0, 0.0]
    nearer = gt + [1.0, 1.0]
    assert match_face([far, near, nearer], gt) == 2
    assert match_face([far, near], gt) == 1
    assert match_face([far], gt) is None
    assert match_face([], gt) is None


def test_fit_table_takes_distinct_nearest_vertices():
    rng = np.random.default_rng(0)
    gts = faces_gt(4) + rng.normal(0, 0.1, (4, NUM_POINTS, 2))
    meshes = rng.uniform(500, 600, (4, MESH_POINTS, 2))  # far-away vertices
    truth = rng.permutation(MESH_POINTS)[:NUM_POINTS]
    meshes[:, truth] = gts  # vertex truth[j] sits on point j
    # points 5 and 6 0.2 px apart, their own vertices 0.3 px off and a decoy vertex between them, nearer to
    # both: only one of them may take it
    gts[:, 6] = gts[:, 5] + [0.2, 0.0]
    meshes[:, truth[5]] = gts[:, 5] - [0.3, 0.0]
    meshes[:, truth[6]] = gts[:, 6] + [0.3, 0.0]
    decoy = next(k for k in range(MESH_POINTS) if k not in set(truth))
    meshes[:, decoy] = gts[:, 5] + [0.1, 0.0]
    indices, costs, moved = fit_table(meshes, gts)
    assert len(set(indices.tolist())) == NUM_POINTS
    assert moved == 1
    assert all(indices[j] == truth[j] for j in range(NUM_POINTS) if j not in (5, 6))
    assert {int(indices[5]), int(indices[6])} <= {int(truth[5]), int(truth[6]), decoy}
    assert costs.shape == (NUM_POINTS,) and (costs >= 0).all()


FAKE_MEDIAPIPE = {
    "mediapipe/__init__.py": "__version__ = 'fake'\nfrom . import solutions\n",
    "mediapipe/solutions/__init__.py": "from . import face_mesh\n",
    "mediapipe/solutions/face_mesh.py": textwrap.dedent(
        """
        import types

        class FaceMesh:
            # vertex k at pixel (k, 1) (normalised coordinates of pixel centres)
            def __init__(self, static_image_mode, max_num_faces, refine_landmarks):
                assert refine_landmarks
                self.static = static_image_mode

            def process(self, rgb):
                h, w = rgb.shape[:2]
                points = [types.SimpleNamespace(x=(k + 0.5) / w, y=1.5 / h) for k in range(478)]
                return types.SimpleNamespace(multi_face_landmarks=[types.SimpleNamespace(landmark=points)])

            def close(self):
                pass
        """
    ),
}


def write_fake_mediapipe(folder: Path, dying: bool = False) -> None:
    for name, text in FAKE_MEDIAPIPE.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        if dying:  # the worker process dies in process(), as a crash in mediapipe's C++ would end it
            text = text.replace("h, w = rgb.shape[:2]", "import os; os._exit(3)")
        (folder / name).write_text(text)


def fake_env(folder: Path) -> dict:
    return {**os.environ, "PYTHONPATH": str(folder)}


def test_worker_protocol_with_a_stand_in_mediapipe(tmp_path):
    write_fake_mediapipe(tmp_path)
    image = tmp_path / "a.png"
    cv2.imwrite(str(image), np.zeros((20, 600, 3), np.uint8))
    video = tmp_path / "v.mp4"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"mp4v"), 30, (600, 32))
    for _ in range(2):
        writer.write(np.zeros((32, 600, 3), np.uint8))
    writer.release()
    worker = MediapipeWorker(Path(sys.executable), 2, None, tmp_path / "worker.log", env=fake_env(tmp_path))
    try:
        assert worker.info["mediapipe"] == "fake"
        reply = worker.ask(op="image", path=str(image))
        face = np.asarray(reply["faces"][0])
        assert face.shape == (MESH_POINTS, 2) and reply["ms"] >= 0
        assert face[:, 0] == pytest.approx(np.arange(MESH_POINTS), abs=1e-3)  # pixel centres at integers
        assert face[:, 1] == pytest.approx(1.0, abs=1e-3)
        table = load_table(TABLE)
        _, faces = MediapipePipeline(worker, table).run(None, str(image))
        assert faces[0][:, 0] == pytest.approx(table, abs=1e-3)
        with pytest.raises(RuntimeError, match="cannot read"):
            worker.ask(op="image", path=str(tmp_path / "missing.png"))
        assert worker.ask(op="video_open", path=str(video))["ok"]
        assert [worker.ask(op="video_next").get("index") for _ in range(2)] == [0, 1]
        assert worker.ask(op="video_next").get("end")
    finally:
        worker.close()
    assert worker.proc.returncode == 0


class Oracle(Pipeline):
    """Returns the ground truth of the photo it is told about, 1 px to the right."""

    name = "oracle"

    def __init__(self, photos):
        self.truth = {ph.image: ph.gt for ph in photos}

    def run(self, rgb, path):
        return 1.0, [self.truth[path] + [1.0, 0.0]]


def test_a_failing_worker_drops_the_mediapipe_column_only(tmp_path):
    write_fake_mediapipe(tmp_path, dying=True)
    photos = []
    for k in range(3):
        image = tmp_path / f"{k}.png"
        cv2.imwrite(str(image), np.zeros((40, 40, 3), np.uint8))
        photos.append(Photo(str(image), faces_gt(1)[0], "test"))
    worker = MediapipeWorker(Path(sys.executable), 1, None, tmp_path / "worker.log", env=fake_env(tmp_path))
    try:
        pipelines = [Oracle(photos), MediapipePipeline(worker, load_table(TABLE))]
        notes = []
        preds, ms = run_photos(pipelines, photos, notes)
    finally:
        worker.close()
    assert [p.name for p in pipelines] == ["oracle"] and list(preds) == list(ms) == ["oracle"]
    assert len(notes) == 1 and notes[0].startswith("MediaPipe column dropped")
    assert ms["oracle"] == [1.0] * 3
    assert nme_per_face(preds["oracle"], np.stack([ph.gt for ph in photos])) == pytest.approx([0.1] * 3)


def dry_run_args(tmp_path, *extra):
    return [
        "--sets",
        "fixtures",
        "--limit",
        "2",
        "--no-dlib",
        "--no-pin",
        "--models",
        "w300-1hg-tiny",
        "--backends",
        "torch",
        "--shared",
        str(SHARED),
        "--out",
        str(tmp_path / "peers.md"),
        *extra,
    ]


def test_a_models_flip_test_row_beside_its_one_pass_row(tmp_path):
    need(SHARED / "fixtures" / "lfpw_trainset_samples")
    args = dry_run_args(tmp_path, "--no-mediapipe", "--video-frames", "0")
    models = args.index("--models") + 1
    args[models: models + 1] = ["w300-1hg-96", "w300-1hg-96+flip"]
    assert main(args) == 0
    summary = json.loads((tmp_path / "peers.json").read_text())["summary"]
    assert list(summary) == ["awing w300-1hg-96 (torch fp32)", "awing w300-1hg-96, flip test (torch fp32)"]
    one, flip = summary.values()
    assert one["found"] == flip["found"] == 2 and one["nme_common"] != flip["nme_common"]


def test_dry_run_on_two_fixture_images(tmp_path, capsys):
    need(SHARED / "fixtures" / "lfpw_trainset_samples")
    assert main(dry_run_args(tmp_path, "--no-mediapipe", "--video-frames", "3")) == 0
    text = (tmp_path / "peers.md").read_text()
    assert text.strip() in capsys.readouterr().out
    assert "| pipeline" in text and "| faces found | ms per image (median, mean) | NME % common faces" in text
    row = next(line for line in text.splitlines() if line.startswith("| awing w300-1hg-tiny"))
    assert "2/2" in row and "(n=2)" in row
    assert not any(line.startswith(("| MediaPipe", "| dlib")) for line in text.splitlines())
    report = json.loads((tmp_path / "peers.json").read_text())
    (summary,) = report["summary"].values()
    assert summary["found"] == 2 and summary["faces"] == 2 and 0 < summary["nme_common"] < 20
    assert len(report["per_photo"]) == 2
    if report["video"]:  # the 300-VW fixture frames are there: the tracking row
        (video_row,) = report["video"].values()
        assert video_row["frames"] == 3


def test_mediapipe_skipped_in_one_line_when_its_venv_cannot_be_made(tmp_path):
    need(SHARED / "fixtures" / "lfpw_trainset_samples")
    blocker = tmp_path / "a-file"
    blocker.write_text("")  # a venv cannot be made under a file: fails at once, no network
    args = dry_run_args(tmp_path, "--mediapipe-venv", str(blocker / "venv"), "--video-frames", "0")
    args[args.index("--limit") + 1] = "1"
    assert main(args) == 0
    text = (tmp_path / "peers.md").read_text()
    skips = [line for line in text.splitlines() if line.startswith("- MediaPipe column skipped")]
    assert len(skips) == 1
    assert not (blocker / "venv").exists()
