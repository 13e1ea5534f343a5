"""Face detectors side by side: recall, false detections and speed on real faces, one CPU thread.

    python benchmarks/detectors.py [--detectors opencv blazeface] [--sets fdd mtfl w300] [--limit N]
                                   [--runtime auto|onnx|opencv] [--runtime-images N] [--shared ../shared/data]
    python benchmarks/detectors.py --detectors short back fallback merged --sets all
    python benchmarks/detectors.py --detectors short merged aligner aligner:w300-1hg-tiny-128 --sets all
    python benchmarks/detectors.py --detectors short short@area aligner aligner@area --sets all

A face counts as found when one of the detector's boxes holds the landmarks' centre at a plausible
size: box side (``max(w, h)``) between 0.5x and 3x the landmark extent (``max`` of the landmarks'
width and height). ms/image is the mean wall time of ``detect()`` alone (images decoded beforehand),
with ``cv2.setNumThreads(1)``; the detectors take turns on each image, so a busy machine slows them
alike (the ``x short`` column: time over the short-range model's, when it is among them). ``enlarge``
is the crop enlargement a model trained on FDD-14 crops needs for that detector's boxes (the
``*_ENLARGE`` figures of :mod:`awing.detect.detectors`): the median over found faces of 3.2 x landmark
extent / side of the box nearest the landmarks' centre, minus 1; it is printed for the FDD set only.

Sets (``--sets``; ``all``: every one): FDD-14 val (400 images, 256 px), MTFL val (its first 300 faces,
80 px), 300-W val (145 faces, about 450 px), and, in the second table only, AFLW2000-3D (1,680 faces,
450 px, large poses; the rule above on the box of ``pt3d_68``, centre = that box's centre), FG-NET
(1,002 photos, children; found: a box holds the landmark box's centre), SCUT-FBP5500 (1,375 frontal
faces, 350 px; the rule above, landmark-box centre) and the multi-face fixtures of
``fixtures/mmpose_samples``: ``wflw`` (2 photos, 4 annotated faces of many), ``w300-private`` (2
photos, 2 faces) and ``mpii`` (5 photos, one annotated person each: the face box is a square about the
mid-point of the head-top and upper-neck joints, side 0.8x their distance; the person may face away);
there a face is found when a box overlaps its box by IoU >= 0.3 or holds its centre. False detections
per image: boxes that match no annotated face by the set's rule; where a photo shows faces nobody
annotated (the fixtures' crowds, bystanders in FG-NET or MPII), those count as false. The second table
has one row per set and detector: faces found / annotated, recall %, false detections per image, ms per
image. ``--limit`` takes at most that many faces (images) per set, evenly spaced. Data: ``../shared/data``
(or ``--shared`` / $AWING_SHARED_DATA).

Detector names: any of :data:`awing.detect.DETECTORS`, the BlazeFace strategies ``short``, ``back``,
``fallback`` (short, then back on an image where short keeps no box), ``merged`` (both, weighted NMS
across them) and ``cascade`` (short, then back's boxes of the faces short missed: both always) of
:class:`awing.detect.BlazeFaceDetector`, or ``aligner`` / ``aligner:MODEL``: the boxes of the faces
``FaceAligner(MODEL).predict`` returns, whose default detection of still photos runs the cascade's second
stage only where the first found no face passing the landmark quality check or only small ones
(:func:`awing.app.api.needs_second_stage`); its ms include the landmark model, and the column ``2nd stage %``
gives the share of images where the back model ran. A BlazeFace name (an aligner's too) may end in ``@RESIZE``
(``short@area``): how BlazeFace shrinks the photo to its input (``linear``, the default, or ``area``).
``--runtime`` is what runs every BlazeFace detector of the tables (``auto``, the default: ONNX Runtime where
installed, else OpenCV's DNN).

Last, a third table (where onnxruntime is installed; ``--runtime-images 0`` leaves it out) times BlazeFace's
two runtimes side by side: each model's forward pass alone (``BlazeFaceDetector._forward`` on the
letterboxed input; letterbox and decoding are shared, so they are left out), one thread (OpenCV's
``cv2.setNumThreads(1)``, ONNX Runtime's ``threads=1``), the two runtimes taking turns on each input (which
goes first alternates), ``--runtime-rounds`` passes over at most ``--runtime-images`` images spread over
the sets read. It prints the median and mean ms per forward pass of each, ONNX Runtime's median over
OpenCV's, and the largest differences between their outputs over all 896 anchors: face probabilities
(the sigmoids of the logits) and box regressors (input pixels).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from pathlib import Path

import cv2
import numpy as np

if __package__:  # python -m benchmarks.detectors, or imported
    from benchmarks._common import add_shared_argument, read_samples, subsample
else:  # python benchmarks/detectors.py
    from _common import add_shared_argument, read_samples, subsample

from awing.core.boxes import box_iou
from awing.core.images import load_image
from awing.detect import DETECTORS, BlazeFaceDetector, get_detector
from awing.detect.blazeface import BLAZEFACE_MODELS, RUNTIMES, onnxruntime_available

SETS = {  # name: (data set, split, at most this many faces: the first ones)
    "fdd": ("fdd14", "val", 400),
    "mtfl": ("mtfl5", "val", 300),
    "w300": ("w300", "val", 145),
}
PHOTO_SETS = ("aflw2000", "fgnet", "scut", "wflw", "w300-private", "mpii")  # read here (module docstring)
BLAZEFACE_VARIANTS = ("short", "back", "fallback", "merged", "cascade")
FDD_CROP = 3.2  # FDD-14 images are squares of 3.2x the landmark extent
MPII_FACE = 0.8  # an MPII face box's side, x the head-top to upper-neck distance
FIXTURES = "fixtures/mmpose_samples"


@dataclasses.dataclass(frozen=True)
class Face:
    """One annotated face and how a box matches it: ``rule`` ``"landmarks"`` (holds ``centre``, side 0.5-3x
    ``extent``), ``"centre"`` (holds ``centre``) or ``"bbox"`` (IoU >= 0.3 with ``bbox``, or holds its centre)."""

    centre: tuple[float, float]
    rule: str = "landmarks"
    extent: float = 0.0
    bbox: tuple[float, float, float, float] | None = None


@dataclasses.dataclass(frozen=True)
class Photo:
    image: Path
    faces: tuple[Face, ...]


def matches(boxes: np.ndarray, face: Face) -> np.ndarray:
    """(K,) bool: which of ``boxes`` (K, 4) match ``face`` by its rule (see :class:`Face`)."""
    boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
    centre = np.asarray(face.centre, np.float64)
    inside = ((boxes[:, :2] <= centre) & (centre <= boxes[:, 2:])).all(1)
    if face.rule == "centre":
        return inside
    if face.rule == "bbox":
        return inside | (box_iou(np.asarray(face.bbox, np.float64), boxes)[0] >= 0.3)
    sides = np.maximum(boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1])
    return inside & (sides >= 0.5 * face.extent) & (sides <= 3.0 * face.extent)


def landmark_face(points: np.ndarray, rule: str = "landmarks", mean_centre: bool = False) -> Face:
    """A face from its landmarks: centre of their box (or their mean), extent the box's longer side."""
    pts = np.asarray(points, np.float64)
    pts = pts[np.isfinite(pts).all(1)]
    lo, hi = pts.min(0), pts.max(0)
    centre = pts.mean(0) if mean_centre else (lo + hi) / 2
    return Face((float(centre[0]), float(centre[1])), rule, float((hi - lo).max()))


def read_pts(path: Path) -> np.ndarray:
    """An iBUG-style text ``.pts`` (``{``, one ``x y`` a line, ``}``): (N, 2) float64."""
    lines = path.read_text().splitlines()
    body = lines[lines.index("{") + 1 : lines.index("}")]
    return np.array([[float(v) for v in line.split()[:2]] for line in body])


def read_binary_pts(path: Path) -> np.ndarray:
    """SCUT-FBP5500's binary ``.pts``: int32 count, then float32 ``x, y`` pairs (little-endian)."""
    raw = path.read_bytes()
    count = int(np.frombuffer(raw[:4], "<i4")[0])
    return np.frombuffer(raw[4 : 4 + 8 * count], "<f4").reshape(count, 2).astype(np.float64)


def coco_photos(folder: Path, annotations: str) -> list[Photo]:
    """An mmpose COCO-style sample folder: every image with its faces' ``bbox`` (x, y, w, h)."""
    data = json.loads((folder / annotations).read_text())
    photos = []
    for im in data["images"]:
        faces = []
        for a in data["annotations"]:
            if a["image_id"] == im["id"]:
                x, y, w, h = (float(v) for v in a["bbox"])
                faces.append(Face((x + w / 2, y + h / 2), "bbox", bbox=(x, y, x + w, y + h)))
        photos.append(Photo(folder / im["file_name"], tuple(faces)))
    return photos


def mpii_photos(folder: Path) -> list[Photo]:
    """MPII's samples: one person per photo, the face box from its head-top (9) and upper-neck (8) joints."""
    photos = []
    for person in json.loads((folder / "test_mpii.json").read_text()):
        neck, top = (np.asarray(person["joints"][j], np.float64) for j in (8, 9))
        (cx, cy), half = (neck + top) / 2, MPII_FACE * float(np.linalg.norm(top - neck)) / 2
        face = Face((cx, cy), "bbox", bbox=(cx - half, cy - half, cx + half, cy + half))
        photos.append(Photo(folder / person["image"], (face,)))
    return photos


def read_photos(name: str, shared: Path) -> list[Photo]:
    """The photos and annotated faces of one set (its name in :data:`SETS` or :data:`PHOTO_SETS`)."""
    if name in SETS:
        dataset, split, limit = SETS[name]
        samples = read_samples(dataset, split, shared)[:limit]
        return [Photo(Path(s.image), (landmark_face(s.landmarks, mean_centre=True),)) for s in samples]
    if name == "aflw2000":
        from scipy.io import loadmat

        mats = sorted((shared / "aflw2000_3d" / "AFLW2000").glob("*.mat"))
        return [Photo(m.with_suffix(".jpg"), (landmark_face(loadmat(m)["pt3d_68"][:2].T),)) for m in mats]
    if name == "fgnet":
        root = shared / "fgnet" / "FGNET"
        images = {p.stem.lower(): p for p in (root / "images").iterdir()}
        pts = sorted((root / "points").glob("*.pts"))
        return [Photo(images[p.stem.lower()], (landmark_face(read_pts(p), "centre"),)) for p in pts]
    if name == "scut":
        root = shared / "scut_fbp5500" / "SCUT-FBP5500_v2"
        pts = sorted((root / "facial landmark").glob("*.pts"))
        return [Photo(root / "Images" / f"{p.stem}.jpg", (landmark_face(read_binary_pts(p)),)) for p in pts]
    if name == "mpii":
        return mpii_photos(shared / FIXTURES / "mpii")
    folder, annotations = {"wflw": ("wflw", "test_wflw.json"), "w300-private": ("300w", "test_300w.json")}[name]
    return coco_photos(shared / FIXTURES / folder, annotations)


class AlignerDetection:
    """What :class:`~awing.app.api.FaceAligner` finds on a still photo, as a detector: :meth:`detect` gives the
    boxes and scores of the faces ``predict`` returns (one pass, no second pass), so with BlazeFace's default
    cascade the back model ran only where :func:`~awing.app.api.needs_second_stage` said; :attr:`second` counts
    the images where it did. Its time includes the landmark model's pass(es), which the rule needs. ``options``:
    the keyword arguments of its :class:`BlazeFaceDetector`."""

    def __init__(self, model: str | None, options: dict) -> None:
        from awing import FaceAligner

        detector = BlazeFaceDetector(**options)
        self.aligner = FaceAligner(model, detector=detector, refine="never", threads=1)
        self.second = 0
        run = detector.second_stage

        def counted(image, known):
            self.second += 1
            return run(image, known)

        detector.second_stage = counted

    def detect(self, image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        faces = self.aligner.predict(image, color="RGB")
        boxes = np.asarray([f.box for f in faces], np.float32).reshape(-1, 4)
        return boxes, np.asarray([f.score for f in faces], np.float32)


def build_detector(name: str, runtime: str = "auto"):
    """A detector by registry name, one of :data:`BLAZEFACE_VARIANTS` (a :class:`BlazeFaceDetector` model), or
    ``aligner`` / ``aligner:MODEL`` (:class:`AlignerDetection` with the default or that landmark model); a
    BlazeFace one on ``runtime`` (one thread for ONNX Runtime, as OpenCV is given here). A BlazeFace name
    (aligners included) may end in ``@RESIZE``, one of :data:`awing.detect.blazeface.RESIZES` (``short@area``):
    how the photo is shrunk to its input."""
    name, _, resize = name.partition("@")
    options = dict(runtime=runtime, threads=1, **({"resize": resize} if resize else {}))
    if name == "aligner" or name.startswith("aligner:"):
        return AlignerDetection(name.partition(":")[2] or None, options)
    if name in BLAZEFACE_VARIANTS:
        return BlazeFaceDetector(name, **options)
    factory = DETECTORS.get(name)
    if getattr(factory, "func", factory) is BlazeFaceDetector:
        return get_detector(name, **options)
    if resize:
        raise SystemExit(f"--detectors {name}@{resize}: only BlazeFace detectors take @RESIZE")
    return get_detector(name)


def time_runtimes(images: list, rounds: int = 3) -> dict[str, dict]:
    """BlazeFace's forward pass on ONNX Runtime and on OpenCV's DNN, per model, one thread, taking turns
    (see the module docstring): ``{model: {"size", "n", "opencv": [s, ...], "onnx": [s, ...], "diff"}}``."""
    out = {}
    for model, spec in BLAZEFACE_MODELS.items():
        nets = {
            "opencv": BlazeFaceDetector(model, runtime="opencv"),
            "onnx": BlazeFaceDetector(model, runtime="onnx", threads=1),
        }
        blobs = [nets["opencv"]._letterbox(rgb)[0] for rgb in images]
        times: dict[str, list[float]] = {name: [] for name in nets}
        diff = {"score": 0.0, "box": 0.0}
        for net in nets.values():
            net._forward(blobs[0])  # warm up (first-call allocations)
        turn = 0
        for _ in range(rounds):
            for blob in blobs:
                order = list(nets) if turn % 2 == 0 else list(nets)[::-1]
                turn += 1
                outs = {}
                for name in order:
                    t = time.perf_counter()
                    outs[name] = nets[name]._forward(blob)
                    times[name].append(time.perf_counter() - t)
                (logits_a, raw_a), (logits_b, raw_b) = outs["opencv"], outs["onnx"]
                scores_a, scores_b = (
                    1 / (1 + np.exp(-np.clip(x.astype(np.float64), -100, 100))) for x in (logits_a, logits_b)
                )
                diff["score"] = max(diff["score"], float(np.abs(scores_a - scores_b).max()))
                diff["box"] = max(diff["box"], float(np.abs(raw_a[:, :4].astype(np.float64) - raw_b[:, :4]).max()))
        out[model] = {"size": spec.size, "n": len(blobs), **times, "diff": diff}
    return out


def print_runtimes(timings: dict[str, dict], rounds: int) -> None:
    """The third table: ms per forward pass of each runtime, per model (see :func:`time_runtimes`)."""
    n = next(iter(timings.values()))["n"] if timings else 0
    print(f"\nBlazeFace runtimes: ms per forward pass, one thread, taking turns ({n} images x {rounds} rounds)")
    print(
        f"{'model':<8}{'input':>7}{'opencv med':>12}{'onnx med':>10}{'opencv mean':>13}{'onnx mean':>11}"
        f"{'onnx/opencv':>13}{'score diff':>12}{'box diff px':>13}"
    )
    for model, t in timings.items():
        cv_med, ort_med = (1000.0 * float(np.median(t[k])) for k in ("opencv", "onnx"))
        cv_mean, ort_mean = (1000.0 * float(np.mean(t[k])) for k in ("opencv", "onnx"))
        print(
            f"{model:<8}{t['size']:>7}{cv_med:>12.2f}{ort_med:>10.2f}{cv_mean:>13.2f}{ort_mean:>11.2f}"
            f"{ort_med / cv_med:>13.2f}{t['diff']['score']:>12.1e}{t['diff']['box']:>13.1e}"
        )


def run(detectors: dict, images: list, photos: list[Photo], fdd: bool = False) -> dict[str, dict]:
    """Each detector on each image (taking turns per image): per detector, faces found / annotated, recall %,
    false detections (boxes matching no face), mean ms per image, and for FDD the enlargement figures."""
    stats = {name: {"found": 0, "false": 0, "times": [], "ratios": []} for name in detectors}
    for detector in detectors.values():
        if hasattr(detector, "second"):
            detector.second = 0
    for rgb, photo in zip(images, photos):
        for name, detector in detectors.items():
            t = time.perf_counter()
            boxes, _ = detector.detect(rgb)
            stats[name]["times"].append(time.perf_counter() - t)
            hits = np.array([matches(boxes, f) for f in photo.faces]).reshape(len(photo.faces), len(boxes))
            stats[name]["found"] += int(hits.any(1).sum())
            stats[name]["false"] += int((~hits.any(0)).sum())
            if fdd and hits.any():
                face = photo.faces[0]
                b = boxes[int(np.argmin(np.linalg.norm((boxes[:, :2] + boxes[:, 2:]) / 2 - face.centre, axis=1)))]
                stats[name]["ratios"].append(FDD_CROP * face.extent / max(b[2] - b[0], b[3] - b[1]) - 1.0)
    faces = sum(len(p.faces) for p in photos)
    out = {}
    for name, st in stats.items():
        ratios = st["ratios"]
        out[name] = {
            "found": st["found"],
            "faces": faces,
            "recall": 100.0 * st["found"] / max(faces, 1),
            "false": st["false"] / max(len(photos), 1),
            "ms": 1000.0 * float(np.mean(st["times"])),
            "enlarge": float(np.median(ratios)) if ratios else float("nan"),
            "enlarge_q": np.percentile(ratios, [25, 75]) if ratios else None,
            "second": 100.0 * detectors[name].second / len(photos) if hasattr(detectors[name], "second") else None,
        }
    return out


def print_tables(rows: dict[str, dict[str, dict]], sets: list[str]) -> None:
    """The first table (recall and ms of the FDD / MTFL / 300-W sets, enlarge on FDD), then one row per set
    and detector with faces found, recall, false detections per image and ms (x the short model's)."""
    first = [s for s in sets if s in SETS]
    if first:
        head = f"{'detector':<16}" + "".join(f"{s + ' recall %':>15}{s + ' ms/img':>13}" for s in first)
        if "fdd" in first:
            head += f"{'enlarge (FDD)':>16}"
        print(head)
        for name, by_set in rows.items():
            line = f"{name:<16}" + "".join(f"{by_set[s]['recall']:>15.1f}{by_set[s]['ms']:>13.1f}" for s in first)
            if "fdd" in first:
                q = by_set["fdd"]["enlarge_q"]
                spread = f" ({q[0]:.2f}-{q[1]:.2f})" if q is not None else ""
                line += f"{by_set['fdd']['enlarge']:>7.3f}{spread}"
            print(line)
        print()
    head = f"{'set':<14}{'detector':<28}{'found':>11}{'recall %':>10}{'false/img':>11}{'ms/img':>9}{'x short':>9}"
    print(head + f"{'2nd stage %':>13}")
    for s in sets:
        for name, by_set in rows.items():
            r = by_set[s]
            ratio = f"{r['ms'] / rows['short'][s]['ms']:.2f}" if "short" in rows else "-"
            found = f"{r['found']}/{r['faces']}"
            second = "-" if r.get("second") is None else f"{r['second']:.1f}"
            line = f"{s:<14}{name:<28}{found:>11}{r['recall']:>10.1f}{r['false']:>11.2f}{r['ms']:>9.1f}{ratio:>9}"
            print(line + f"{second:>13}")


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--detectors", nargs="+", default=["opencv", "blazeface"])
    choices = [*SETS, *PHOTO_SETS, "all"]
    p.add_argument("--sets", nargs="+", default=list(SETS), choices=choices, help="all: every set")
    p.add_argument("--limit", type=int, default=None, help="at most this many faces per set")
    p.add_argument("--runtime", default="auto", choices=RUNTIMES, help="what runs the BlazeFace detectors")
    p.add_argument("--runtime-images", type=int, default=100, help="images for the runtimes table (0: no such table)")
    p.add_argument("--runtime-rounds", type=int, default=3, help="passes over them in the runtimes table")
    add_shared_argument(p)
    args = p.parse_args(argv)
    sets = [*SETS, *PHOTO_SETS] if "all" in args.sets else list(dict.fromkeys(args.sets))
    cv2.setNumThreads(1)
    detectors = {name: build_detector(name, args.runtime) for name in args.detectors}
    rows: dict[str, dict[str, dict]] = {name: {} for name in detectors}
    per_set = -(-args.runtime_images // len(sets)) if args.runtime_images > 0 and onnxruntime_available() else 0
    runtime_images = []  # a few images of each set, for the runtimes table
    for set_name in sets:
        photos = read_photos(set_name, args.shared)
        photos = photos[: args.limit] if set_name in SETS else subsample(photos, args.limit)
        images = [load_image(ph.image) for ph in photos]
        runtime_images += subsample(images, per_set) if per_set else []
        for detector in detectors.values():
            detector.detect(images[0])  # warm up (first-call allocations)
        for name, result in run(detectors, images, photos, fdd=set_name == "fdd").items():
            rows[name][set_name] = result
        shape = np.median([im.shape[:2] for im in images], axis=0).astype(int)
        faces = sum(len(ph.faces) for ph in photos)
        print(f"# {set_name}: {len(photos)} images, {faces} faces, median image {shape[1]}x{shape[0]}", file=sys.stderr)
    print_tables(rows, sets)
    if per_set:
        print_runtimes(time_runtimes(runtime_images[: args.runtime_images], args.runtime_rounds), args.runtime_rounds)
    elif args.runtime_images > 0:
        print('\n(no BlazeFace runtimes table: onnxruntime is not installed; pip install "awing[onnx]")')


if __name__ == "__main__":
    main()
