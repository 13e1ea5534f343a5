"""``awing predict PATH...``: landmarks on photos, folders and videos.

Writes into ``--out``:

- ``predictions.json``: ``{"model": {...}, "detector": ..., "files": [{"file", "kind", "frames":
  [{"frame", "faces": [{"box", "score", "points", "confidence"}]}], "error"}]}``; ``frame`` is 0 for an
  image and the video frame index for a video. ``error`` is null or why the file gave no landmarks.
  ``missing`` lists the paths given that are neither a file nor a folder. Strict JSON: a value that is
  not a finite number (a model that outputs NaN) is null. A video's frames also carry ``detected``
  (whether the face detector ran on that frame) and each face a ``track`` id (kept while
  :class:`awing.app.tracking.FaceTracker` follows the face; null with ``--no-track`` or ``--boxes``).
- ``predictions.csv``: one row per face: ``file, frame, face, box_x0, box_y0, box_x1, box_y1, score,
  x0, y0, ..., x{N-1}, y{N-1}, c0, ..., c{N-1}`` (points in original pixels, c = confidence).
- ``annotated/``: each image with its boxes and points drawn, each video re-encoded (mp4v, at the source's
  frame rate) with them, unless ``--no-draw``.

Videos are tracked by default: the detector runs on frame 0, every ``--redetect-every`` frames and when
a face is lost; the other frames crop each face around its previous landmarks; ``--smooth`` (default)
filters the points with a One-Euro filter (``--smooth-min-cutoff``, ``--smooth-beta``). ``--no-track``
runs the detector on every frame.

A file that cannot be read, or in which no face is found, is reported (log and JSON) and skipped; the
exit code is 1 only when no file at all could be processed. Files inside ``--out`` are not read when
``--out`` lies in an input folder.
"""

from __future__ import annotations

import argparse
import csv
import json
import logging
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from awing.app.api import FaceAligner, FaceLandmarks
from awing.app.tracking import FaceTracker
from awing.core.images import read_image
from awing.detect import FixedBoxes
from awing.engine.metrics import to_jsonable

log = logging.getLogger(__name__)

IMAGE_EXTENSIONS = {".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp", ".ppm", ".pgm"}
VIDEO_EXTENSIONS = {".mp4", ".avi", ".mov", ".mkv"}
VIDEO_BATCH = 8  # frames whose faces share one forward pass


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("paths", nargs="+", help="images, folders (searched recursively) and videos")
    parser.add_argument(
        "--model", default=None, help="shipped model name or checkpoint path (default: the default model)"
    )
    parser.add_argument("--out", default="predictions", help="output folder (default: ./predictions)")
    parser.add_argument(
        "--detector",
        default="blazeface",
        choices=["blazeface", "blazeface-back", "opencv", "opencv-profile", "dlib", "full"],
        help="face detector: blazeface (MediaPipe BlazeFace, shipped; the default), blazeface-back (smaller "
        "faces), opencv (Haar), opencv-profile (+ side views), dlib (pip install 'awing[dlib]'), full (each "
        "image is already a face crop)",
    )
    parser.add_argument(
        "--boxes",
        default=None,
        metavar="FILE",
        help="JSON {filename: [[x0, y0, x1, y1], ...]} of face boxes; skips detection (keys match the path "
        "as given, the path relative to its folder argument, or the file name)",
    )
    parser.add_argument(
        "--enlarge", type=float, default=None, help="crop enlargement of the boxes (default: the detector's)"
    )
    parser.add_argument("--video-stride", type=int, default=1, metavar="N", help="use every N-th video frame")
    # videos: tracking and smoothing (awing.app.tracking, docs/inference.md#video)
    # fmt: off
    parser.add_argument("--no-track", action="store_true",
                        help="videos: run the detector on every frame instead of tracking the faces")
    parser.add_argument("--redetect-every", type=_count, default=30, metavar="N",
                        help="tracking: also run the detector every N frames (default 30)")
    parser.add_argument("--track-min-confidence", type=float, default=0.5, metavar="C",
                        help="tracking: a face is lost (and re-detected) below this mean point confidence (0.5)")
    parser.add_argument("--smooth", action=argparse.BooleanOptionalAction, default=True,
                        help="tracking: One-Euro smoothing of each face's points (default on)")
    parser.add_argument("--smooth-min-cutoff", type=_positive, default=1.0, metavar="HZ",
                        help="One-Euro cutoff at rest, Hz: lower = less jitter, more lag (default 1.0)")
    parser.add_argument("--smooth-beta", type=_non_negative, default=0.2, metavar="B",
                        help="One-Euro cutoff rise per px/s of motion: higher = less lag (default 0.2)")
    # fmt: on
    parser.add_argument("--no-draw", action="store_true", help="do not write annotated images or videos")
    parser.add_argument("--device", default="auto", help="cpu, cuda or auto (default)")
    parser.add_argument("--fp32", action="store_true", help="no bf16/fp16 fast path")
    parser.add_argument("--output-schema", metavar="SCHEMA",
                        help="return the points in this layout (e.g. mtfl5: five alignment points), via the schemas' "
                             "declared mappings")  # fmt: skip
    parser.add_argument("--backend", choices=["torch", "onnx"], default="torch",
                        help="onnx: run the model with ONNX Runtime (pip install 'awing[onnx]')")


def _count(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def _positive(text: str) -> float:
    value = float(text)
    if not (np.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"must be a positive number, got {text}")
    return value


def _non_negative(text: str) -> float:
    value = float(text)
    if not (np.isfinite(value) and value >= 0):
        raise argparse.ArgumentTypeError(f"must be a number >= 0, got {text}")
    return value


def _tracking(args: argparse.Namespace) -> dict | None:
    """:class:`awing.app.tracking.FaceTracker` options from the video arguments; None for ``--no-track``."""
    if getattr(args, "no_track", False):
        return None
    return {
        "redetect_every": getattr(args, "redetect_every", 30),
        "min_confidence": getattr(args, "track_min_confidence", 0.5),
        "smooth": getattr(args, "smooth", True),
        "min_cutoff": getattr(args, "smooth_min_cutoff", 1.0),
        "beta": getattr(args, "smooth_beta", 0.2),
    }


# ------------------------------------------------------------------------------------------- inputs
def collect_inputs(paths: list[str], skip: Path | None = None) -> tuple[list[tuple[Path, str, Path]], list[str]]:
    """Expand folders: ``([(file, key, name)], missing)``.

    Files inside ``skip`` (the output folder, when it lies inside an input folder) are left out of the
    folders' files, so that a run does not read its own annotated copies.

    ``key`` names the file in predictions.json/.csv: the path as given, or ``folder/relative/path`` for a
    file found in a folder. ``name`` is the relative path of its annotated copy: that relative path, or
    the file name of a file given directly; videos get ``.mp4``; clashes get ``-2``, ``-3``, ...
    """
    found, missing, used = [], [], set()
    skip = skip.resolve() if skip is not None else None
    for text in paths:
        path = Path(text)
        if path.is_dir():
            for f in sorted(path.rglob("*")):
                if skip is not None and f.resolve().is_relative_to(skip):
                    continue
                if f.is_file() and f.suffix.lower() in IMAGE_EXTENSIONS | VIDEO_EXTENSIONS:
                    rel = Path(path.resolve().name) / f.relative_to(path)
                    found.append((f, rel.as_posix(), rel))
        elif path.is_file():
            found.append((path, text, Path(path.name)))
        else:
            missing.append(text)
    out = []
    for file, key, name in found:
        if file.suffix.lower() in VIDEO_EXTENSIONS:
            name = name.with_suffix(".mp4")
        candidate, n = name, 1
        while candidate in used:
            n += 1
            candidate = name.with_name(f"{name.stem}-{n}{name.suffix}")
        used.add(candidate)
        out.append((file, key, candidate))
    return out, missing


def load_boxes(path: str) -> dict[str, np.ndarray]:
    """The ``--boxes`` JSON as ``{key: (K, 4) float32}``."""
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, json.JSONDecodeError) as err:
        raise ValueError(f"--boxes {path}: cannot read a JSON object: {err}") from err
    if not isinstance(data, dict):
        raise ValueError(f"--boxes {path}: expected {{filename: [[x0, y0, x1, y1], ...]}}")
    out = {}
    for key, boxes in data.items():
        arr = np.asarray(boxes, dtype=np.float32)
        if arr.size and (arr.ndim != 2 or arr.shape[1] != 4):
            raise ValueError(f"--boxes {path}: {key!r} needs a list of [x0, y0, x1, y1] boxes")
        out[key] = arr.reshape(-1, 4)
    return out


def boxes_for(table: dict[str, np.ndarray], file: Path, key: str) -> np.ndarray | None:
    for k in (key, str(file), key.split("/", 1)[-1], file.name):
        if k in table:
            return table[k]
    return None


# ------------------------------------------------------------------------------------------- drawing
def draw_faces(bgr: np.ndarray, faces: list[FaceLandmarks]) -> np.ndarray:
    """A copy of a BGR image with each face's box (green) and points (red) drawn."""
    out = bgr.copy()
    scale = max(1, round(max(out.shape[:2]) / 400))
    for face in faces:
        x0, y0, x1, y1 = (int(round(v)) for v in face.box)
        cv2.rectangle(out, (x0, y0), (x1, y1), (0, 200, 0), scale)
        for x, y in face.landmarks:
            if np.isfinite(x) and np.isfinite(y):
                cv2.circle(out, (int(round(x)), int(round(y))), 2 * scale, (0, 0, 255), -1, cv2.LINE_AA)
    return out


# ----------------------------------------------------------------------------------------- predicting
def _faces(aligner: FaceAligner, bgrs: list[np.ndarray], boxes: np.ndarray | None) -> list[list[FaceLandmarks]]:
    if boxes is None:
        return aligner.predict_batch(bgrs, color="BGR")
    return [aligner.predict_crops(bgr, boxes, color="BGR") for bgr in bgrs]


def _video_frames(cap: cv2.VideoCapture, stride: int, every: bool = False) -> Iterator[tuple[int, np.ndarray, bool]]:
    """``(index, frame, used)`` for every ``stride``-th frame (``used`` True), and with ``every`` also the
    frames in between (``used`` False; decoded only then, for the annotated video)."""
    index = 0
    while True:
        ok = cap.grab()
        if not ok:
            return
        used = index % stride == 0
        if used or every:
            ok, frame = cap.retrieve()
            if ok:
                yield index, frame, used
        index += 1


def predict_image(aligner, file: Path, boxes, draw_to: Path | None) -> list[dict]:
    bgr = read_image(str(file))
    if bgr is None:
        raise ValueError("cannot read the file as an image")
    faces = _faces(aligner, [bgr], boxes)[0]
    if draw_to is not None:
        draw_to.parent.mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(draw_to), draw_faces(bgr, faces))
    return [{"frame": 0, "faces": [f.to_dict() for f in faces]}]


def predict_video(
    aligner, file: Path, boxes, draw_to: Path | None, stride: int, tracking: dict | None = None
) -> list[dict]:
    """The frames of one video: ``[{"frame", "detected", "faces": [{..., "track"}]}]``.

    Args:
        boxes: (K, 4) fixed boxes for every frame (``--boxes``: no detection, no tracking), or None.
        draw_to: the annotated copy's path (mp4v, the source's frame rate: frames that ``stride`` skips are
            written too, with the faces of the last used frame), or None.
        tracking: :class:`awing.app.tracking.FaceTracker` keyword arguments (``fps`` is filled in); None:
            the detector runs on every used frame (``--no-track``) and ``track`` is null.
    """
    cap = cv2.VideoCapture(str(file))
    if not cap.isOpened():
        raise ValueError("cannot open the file as a video")
    writer = None
    frames: list[dict] = []
    try:
        fps = cap.get(cv2.CAP_PROP_FPS) or 25.0
        total = int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) or None
        progress = tqdm(total=total, desc=file.name, unit="frame", leave=False)
        shown: list[FaceLandmarks] = []  # drawn on the frames that stride skips

        def write(bgr: np.ndarray, faces: list[FaceLandmarks]) -> None:
            nonlocal writer
            if draw_to is None:
                return
            if writer is None:
                draw_to.parent.mkdir(parents=True, exist_ok=True)
                h, w = bgr.shape[:2]
                writer = cv2.VideoWriter(str(draw_to), cv2.VideoWriter_fourcc(*"mp4v"), fps, (w, h))
            writer.write(draw_faces(bgr, faces))

        def emit(index: int, bgr: np.ndarray, used: bool, faces, detected: bool, tracks) -> None:
            nonlocal shown
            if used:
                shown = faces
                frames.append({"frame": index, "detected": detected,
                               "faces": [{**f.to_dict(), "track": t} for f, t in zip(faces, tracks)]})  # fmt: skip
            write(bgr, shown)
            progress.update(1 if draw_to is not None else stride)  # without drawing, skipped frames are not seen

        items = _video_frames(cap, stride, every=draw_to is not None)
        if tracking is not None and boxes is None:
            tracker = FaceTracker(aligner, fps=fps / stride, **tracking)
            for index, bgr, used in items:
                if not used:
                    emit(index, bgr, False, None, False, None)
                    continue
                result = tracker.update(bgr, color="BGR", t=index / fps)
                faces = [f.face for f in result.faces]
                emit(index, bgr, True, faces, result.detected, [f.track for f in result.faces])
        else:  # per-frame detection (or the given boxes), VIDEO_BATCH frames per forward pass
            batch: list[tuple[int, np.ndarray, bool]] = []

            def flush() -> None:
                used = [b for _, b, u in batch if u]
                found = iter(_faces(aligner, used, boxes)) if used else iter(())
                for index, bgr, u in batch:
                    faces = next(found) if u else None
                    emit(index, bgr, u, faces, boxes is None, [None] * len(faces or ()))
                batch.clear()

            for item in items:
                batch.append(item)
                if sum(u for *_, u in batch) == VIDEO_BATCH:
                    flush()
            if batch:
                flush()
        progress.close()
    finally:
        cap.release()
        if writer is not None:
            writer.release()
    if not frames:
        raise ValueError("no frame could be decoded")
    return frames


def _csv_header(point_names: list[str]) -> list[str]:
    """One row per face: its file, frame and box, then ``<point>_x, <point>_y`` by the schema's point
    names, then ``<point>_conf``."""
    points = [f"{name}_{axis}" for name in point_names for axis in "xy"]
    return ["file", "frame", "face", "box_x0", "box_y0", "box_x1", "box_y1", "score", *points] + [
        f"{name}_conf" for name in point_names
    ]


def write_outputs(out: Path, header: dict, records: list[dict], point_names: list[str]) -> None:
    data = to_jsonable({**header, "files": records})  # NaN/inf (a model gone wrong) -> null: strict JSON
    (out / "predictions.json").write_text(json.dumps(data, allow_nan=False))
    with open(out / "predictions.csv", "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(_csv_header(point_names))
        for rec in records:
            for frame in rec["frames"]:
                for k, face in enumerate(frame["faces"]):
                    coords = [v for p in face["points"] for v in p]
                    writer.writerow(
                        [
                            rec["file"],
                            frame["frame"],
                            k,
                            *face["box"],
                            face["score"],
                            *coords,
                            *face["confidence"],
                        ]
                    )


def run(args: argparse.Namespace) -> int:
    if args.video_stride < 1:
        log.error("--video-stride must be at least 1")
        return 2
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise ValueError(f"--out {out} is a file; give a folder for predictions.json, .csv and annotated/")
    files, missing = collect_inputs(args.paths, skip=out)
    for text in missing:
        log.error("%s: no such file or folder", text)
    if not files:
        log.error("nothing to process")
        return 1
    table = load_boxes(args.boxes) if args.boxes else None
    detector = args.detector if table is None else FixedBoxes([])  # given boxes: its enlarge, no detection
    aligner = FaceAligner(args.model, device=args.device, detector=detector, enlarge=args.enlarge, fast=not args.fp32,
                          backend=args.backend, output_schema=args.output_schema)  # fmt: skip
    log.info("%r", aligner)
    out.mkdir(parents=True, exist_ok=True)
    records, processed, faces = [], 0, 0
    for file, key, name in tqdm(files, desc="files", unit="file"):
        is_video = file.suffix.lower() in VIDEO_EXTENSIONS
        record = {"file": key, "kind": "video" if is_video else "image", "frames": [], "error": None}
        boxes = None
        if table is not None:
            boxes = boxes_for(table, file, key)
            if boxes is None:
                record["error"] = "no boxes for this file in --boxes"
        draw_to = None
        if not args.no_draw:
            draw_to = out / "annotated" / name
        if record["error"] is None:
            try:
                if is_video:
                    record["frames"] = predict_video(aligner, file, boxes, draw_to, args.video_stride, _tracking(args))
                else:
                    record["frames"] = predict_image(aligner, file, boxes, draw_to)
                processed += 1
                n = sum(len(fr["faces"]) for fr in record["frames"])
                faces += n
                if n == 0:
                    record["error"] = "no face found"
            except (ValueError, cv2.error) as err:
                record["error"] = str(err)
        if record["error"]:
            log.warning("%s: %s", key, record["error"])
        records.append(record)
    header = {
        "model": {
            "path": str(aligner.model_path),
            "schema": aligner.schema.name,
            "output_schema": aligner.output_schema.name,
            "point_names": list(aligner.point_names),
        },
        "detector": "boxes" if table is not None else args.detector,
        "enlarge": aligner.enlarge,
        "missing": missing,
    }
    write_outputs(out, header, records, list(aligner.point_names))
    failed = sum(1 for r in records if r["error"])
    log.info(
        "%d file(s), %d face(s), %d with problems -> %s",
        len(records),
        faces,
        failed,
        out / "predictions.json",
    )
    return 0 if processed else 1
