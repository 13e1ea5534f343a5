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
- ``faces.csv``: one row per face: ``file, frame, face, score, quality, is_face, yaw, pitch, roll`` (the
  landmark score and the head pose of :class:`awing.app.api.FaceLandmarks`; empty where there is none).
- with ``--format pts``: ``pts/<name>_<face>.pts`` (videos ``<name>_<frame>_<face>.pts``), iBUG files;
  with ``--format coco``: ``predictions_coco.json``, COCO keypoints (:mod:`awing.app.formats`);
  with ``--crops DIR``: ``DIR/<name>_<face>.png``, aligned face crops (:mod:`awing.app.align`, images only).
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

from awing.app.align import aligned_crop
from awing.app.api import FaceAligner, FaceLandmarks
from awing.app.formats import coco_keypoints, write_pts
from awing.app.live import predict_stream
from awing.app.tracking import FaceTracker
from awing.core.images import read_image
from awing.detect import FixedBoxes
from awing.engine.metrics import to_jsonable
from awing.method.decode import DECODERS
from awing.schemas import load_schema, map_points, point_mapping

log = logging.getLogger(__name__)

IMAGE_EXTENSIONS = {".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp", ".ppm", ".pgm"}
VIDEO_EXTENSIONS = {".mp4", ".avi", ".mov", ".mkv"}
VIDEO_BATCH = 8  # frames whose faces share one forward pass


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("paths", nargs="*", help="images, folders (searched recursively) and videos")
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
    parser.add_argument("--refine", action=argparse.BooleanOptionalAction, default="auto",
                        help="a second pass cropped around each face's first-pass landmarks (default: for models "
                             "trained on landmark-box crops, as FaceAligner)")  # fmt: skip
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
    # issue 15: live input, extra formats, aligned crops, drawing options (awing.app.live/formats/align)
    # fmt: off
    parser.add_argument("--camera", metavar="SOURCE", default=None,
                        help="live input instead of PATHs: a camera index (0) or a stream URL / video OpenCV opens; "
                             "tracked and smoothed, shown in a window where a display exists, written to --out")
    parser.add_argument("--max-frames", type=_count, default=None, metavar="N",
                        help="--camera: stop after N frames (default: until the source ends, or q / Esc)")
    parser.add_argument("--show", action=argparse.BooleanOptionalAction, default=None,
                        help="--camera: live window (default: where a display and a GUI build of OpenCV exist)")
    parser.add_argument("--format", dest="formats", action="append", choices=["pts", "coco"], default=[],
                        help="also write iBUG .pts files (pts/) or COCO-keypoints JSON (predictions_coco.json); "
                             "repeatable")
    parser.add_argument("--crops", metavar="DIR", default=None,
                        help="write aligned face crops (ArcFace 5-point template) of every image face into DIR")
    parser.add_argument("--crop-size", type=_count, default=112, metavar="PX", help="aligned crop side (112)")
    parser.add_argument("--crop-padding", type=_non_negative, default=0.0, metavar="F",
                        help="aligned crop margin around the template, fraction of the face region (0)")
    parser.add_argument("--labels", action="store_true", help="drawings: write each point's index")
    parser.add_argument("--confidence-colours", action="store_true",
                        help="drawings: colour each point by its confidence (red 0 .. green 1)")
    # fmt: on
    parser.add_argument("--no-draw", action="store_true", help="do not write annotated images or videos")
    parser.add_argument("--device", default="auto", help="cpu, cuda or auto (default)")
    parser.add_argument("--fp32", action="store_true", help="no bf16/fp16 fast path")
    parser.add_argument("--output-schema", metavar="SCHEMA",
                        help="return the points in this layout (e.g. mtfl5: five alignment points), via the schemas' "
                             "declared mappings")  # fmt: skip
    parser.add_argument("--backend", choices=["torch", "onnx"], default="torch",
                        help="onnx: run the model with ONNX Runtime (pip install 'awing[onnx]')")
    parser.add_argument("--decoder", choices=DECODERS, default=None,
                        help="sub-pixel decoder: quarter (the paper's) or dark; default: the model file's")
    parser.add_argument("--flip-test", action="store_true",
                        help="also run each face mirrored and average (more accurate, twice the model time)")


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
DRAW_OPTIONS = {"labels": False, "confidence_colours": False}  # the CLI's --labels / --confidence-colours


def _face_lines(schema_name: str) -> list[tuple[int, ...]]:
    try:
        return list(load_schema(schema_name).boundary_lines.values())
    except ValueError:  # a checkpoint's own layout: no built-in lines
        return []


def draw_faces(
    bgr: np.ndarray,
    faces: list[FaceLandmarks],
    labels: bool | None = None,
    confidence_colours: bool | None = None,
    lines: bool = True,
    pose: bool = True,
) -> np.ndarray:
    """A copy of a BGR image with each face drawn: its box (green; grey when ``is_face`` is False), the
    schema's boundary lines (yellow), its points (red, or by confidence: red at 0 to green at 1), optional
    point indices, and the head pose (``yaw/pitch/roll`` degrees above the box). Dot, line and text sizes
    follow each face's box, not the image. ``labels`` / ``confidence_colours`` None: :data:`DRAW_OPTIONS`."""
    labels = DRAW_OPTIONS["labels"] if labels is None else labels
    confidence_colours = DRAW_OPTIONS["confidence_colours"] if confidence_colours is None else confidence_colours
    out = bgr.copy()
    for face in faces:
        side = float(max(face.box[2] - face.box[0], face.box[3] - face.box[1]))
        side = side if np.isfinite(side) and side > 0 else 100.0
        radius, thick = max(1, round(side / 70)), max(1, round(side / 150))
        x0, y0, x1, y1 = (int(round(v)) for v in face.box)
        real = not np.isfinite(face.quality) or face.is_face
        cv2.rectangle(out, (x0, y0), (x1, y1), (0, 200, 0) if real else (160, 160, 160), thick)
        pts = np.asarray(face.landmarks, np.float64)
        ok = np.isfinite(pts).all(axis=1)
        ipts = np.round(np.where(ok[:, None], pts, 0)).astype(np.int32)
        if lines:
            for line in _face_lines(face.schema):
                line = [i for i in line if i < len(pts) and ok[i]]
                if len(line) >= 2:
                    cv2.polylines(out, [ipts[line]], False, (0, 220, 255), thick, cv2.LINE_AA)
        font = max(0.3, side / 400)
        for i, (x, y) in enumerate(ipts):
            if not ok[i]:
                continue
            colour = (0, 0, 255)
            if confidence_colours:
                c = float(np.clip(face.confidence[i], 0, 1)) if np.isfinite(face.confidence[i]) else 0.0
                colour = (0, int(255 * c), int(255 * (1 - c)))
            cv2.circle(out, (int(x), int(y)), radius, colour, -1, cv2.LINE_AA)
            if labels:
                cv2.putText(out, str(i), (int(x) + radius + 1, int(y) - radius - 1), cv2.FONT_HERSHEY_SIMPLEX,
                            font * 0.8, (255, 255, 255), 1, cv2.LINE_AA)  # fmt: skip
        if pose and face.pose is not None:
            text = f"y{face.pose['yaw']:+.0f} p{face.pose['pitch']:+.0f} r{face.pose['roll']:+.0f}"
            at = (x0, max(0, y0 - 4))
            cv2.putText(out, text, at, cv2.FONT_HERSHEY_SIMPLEX, font, (0, 200, 0), thick, cv2.LINE_AA)
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


FACES_CSV = ["file", "frame", "face", "score", "quality", "is_face", "yaw", "pitch", "roll"]


def write_faces_csv(out: Path, records: list[dict]) -> None:
    """``faces.csv``: per face its detector score, landmark score (``quality``, ``is_face``) and head pose."""
    with open(out / "faces.csv", "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(FACES_CSV)
        for rec in records:
            for frame in rec["frames"]:
                for k, face in enumerate(frame["faces"]):
                    pose = [(face.get("pose") or {}).get(a, "") for a in ("yaw", "pitch", "roll")]
                    is_face = int(bool(face.get("is_face")))
                    row = [rec["file"], frame["frame"], k, face["score"], face.get("quality"), is_face, *pose]
                    writer.writerow(row)


def _media_size(file: Path, is_video: bool) -> tuple[int | None, int | None]:
    if is_video:
        cap = cv2.VideoCapture(str(file))
        size = int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)) or None, int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT)) or None
        cap.release()
        return size
    bgr = read_image(str(file))
    return (None, None) if bgr is None else (bgr.shape[1], bgr.shape[0])


def write_extra_outputs(out: Path, records: list[dict], names: dict[str, Path], sizes: dict, schema: str,
                        formats: list[str]) -> None:  # fmt: skip
    """``--format pts`` (``pts/``) and ``--format coco`` (``predictions_coco.json``) files; ``names`` maps a
    record's file key to its annotated name (the pts names), ``sizes`` to its ``(width, height)``."""
    if "pts" in formats:
        for rec in records:
            stem = names[rec["file"]].with_suffix("")
            for frame in rec["frames"]:
                for k, face in enumerate(frame["faces"]):
                    tag = f"_{frame['frame']:06d}" if rec["kind"] != "image" else ""
                    points = np.array([[np.nan if v is None else v for v in p] for p in face["points"]], np.float64)
                    write_pts(out / "pts" / f"{stem}{tag}_{k}.pts", points)
    if "coco" in formats:
        items = []
        for rec in records:
            w, h = sizes.get(rec["file"], (None, None))
            for frame in rec["frames"]:
                item = {"file_name": rec["file"], "width": w, "height": h, "faces": frame["faces"]}
                if rec["kind"] != "image":
                    item["frame"] = frame["frame"]
                items.append(item)
        data = to_jsonable(coco_keypoints(items, schema))
        (out / "predictions_coco.json").write_text(json.dumps(data, allow_nan=False))


def write_crops(crops: Path, bgr: np.ndarray, faces: list[dict], schema: str, name: Path, size: int,
                padding: float) -> int:  # fmt: skip
    """Aligned crops (:func:`awing.app.align.aligned_crop`) of one image's faces as ``crops/<name>_<k>.png``;
    the number written (a face whose points do not map to mtfl5 or give no transform is skipped)."""
    weights = point_mapping(load_schema(schema), "mtfl5")
    if weights is None:
        raise ValueError(f"--crops: the schemas declare no mapping from {schema!r} to mtfl5")
    written = 0
    for k, face in enumerate(faces):
        points = np.array([[np.nan if v is None else v for v in p] for p in face["points"]], np.float64)
        try:
            crop = aligned_crop(bgr, map_points(points, weights), size=size, padding=padding)
        except ValueError:
            continue
        target = crops / f"{name.with_suffix('')}_{k}.png"
        target.parent.mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(target), crop)
        written += 1
    return written


def run_camera(args: argparse.Namespace) -> int:
    """``--camera SOURCE``: :func:`awing.app.live.predict_stream`, then the usual output files."""
    out = Path(args.out)
    aligner = FaceAligner(args.model, device=args.device, detector=args.detector, enlarge=args.enlarge,
                          fast=not args.fp32, backend=args.backend, output_schema=args.output_schema,
                          decoder=args.decoder, flip_test=args.flip_test)  # fmt: skip
    out.mkdir(parents=True, exist_ok=True)
    source = str(args.camera)
    name = Path(f"camera{source}.mp4") if source.isdigit() else Path(Path(source).stem or "stream").with_suffix(".mp4")
    draw_to = None if args.no_draw else out / "annotated" / name
    tracking = _tracking(args) or {"redetect_every": 1}
    record = {"file": source, "kind": "stream", "frames": [], "error": None}
    try:
        record["frames"], info = predict_stream(
            aligner, source, draw_to, tracking, args.max_frames, args.show, draw=draw_faces
        )
        log.info("%s: %d frame(s) at %.1f fps (source), window %s", source, info["frames"], info["fps"],
                 "shown" if info["shown"] else "not shown")  # fmt: skip
    except (ValueError, cv2.error) as err:
        record["error"] = str(err)
        log.error("%s: %s", source, err)
    header = {"model": {"path": str(aligner.model_path), "schema": aligner.schema.name,
                        "output_schema": aligner.output_schema.name, "point_names": list(aligner.point_names)},
              "detector": args.detector, "enlarge": aligner.enlarge, "missing": []}  # fmt: skip
    write_outputs(out, header, [record], list(aligner.point_names))
    write_faces_csv(out, [record])
    write_extra_outputs(out, [record], {source: name}, {}, aligner.output_schema.name, args.formats)
    return 0 if record["error"] is None and record["frames"] else 1


def run(args: argparse.Namespace) -> int:
    DRAW_OPTIONS.update(labels=bool(getattr(args, "labels", False)),
                        confidence_colours=bool(getattr(args, "confidence_colours", False)))  # fmt: skip
    if getattr(args, "camera", None) is not None:
        return run_camera(args)
    if not args.paths:
        log.error("give images, folders or videos, or --camera SOURCE")
        return 2
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
                          backend=args.backend, output_schema=args.output_schema, refine=args.refine,
                          decoder=args.decoder, flip_test=args.flip_test)  # fmt: skip
    log.info("%r", aligner)
    out.mkdir(parents=True, exist_ok=True)
    records, processed, faces = [], 0, 0
    names: dict[str, Path] = {}
    sizes: dict[str, tuple] = {}
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
                    if getattr(args, "crops", None) and record["frames"][0]["faces"]:
                        write_crops(Path(args.crops), read_image(str(file)), record["frames"][0]["faces"],
                                    aligner.output_schema.name, name, args.crop_size, args.crop_padding)  # fmt: skip
                if getattr(args, "formats", None):
                    names[key], sizes[key] = name, _media_size(file, is_video)
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
    write_faces_csv(out, records)
    write_extra_outputs(out, [r for r in records if r["file"] in names], names, sizes, aligner.output_schema.name,
                        getattr(args, "formats", []))  # fmt: skip
    failed = sum(1 for r in records if r["error"])
    log.info(
        "%d file(s), %d face(s), %d with problems -> %s",
        len(records),
        faces,
        failed,
        out / "predictions.json",
    )
    return 0 if processed else 1
