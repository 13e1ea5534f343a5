"""``awing predict PATH...``: landmarks on photos, folders and videos.

Writes into ``--out`` (each file's layout: :mod:`awing.app.outputs`, which writes them atomically):

- ``predictions.json``: every file (``kind``, ``error``), frame and face (box, score, points, confidence,
  quality, is_face, pose; for videos ``detected`` and ``track``), and the ``missing`` inputs; strict JSON.
- ``predictions.csv``: one row per face: ``file, frame, face, box_x0, box_y0, box_x1, box_y1, score,
  quality, is_face``, then ``<point>_x, <point>_y`` for each point, then ``<point>_conf`` for each.
- ``faces.csv``: one row per face: ``file, frame, face, score, quality, is_face, yaw, pitch, roll``.
- with ``--format pts``: ``pts/`` (iBUG ``.pts``); with ``--format coco``: ``predictions_coco.json``; with
  ``--crops DIR``: aligned face crops of the images' faces in ``DIR``.
- ``annotated/``: each image and video with the faces drawn (:mod:`awing.app.draw`), unless ``--no-draw``.

A folder holding an earlier run's results is refused unless ``--overwrite``, and one run at a time writes
into a folder (:class:`awing.app.outputs.OutputFolder`). Out-of-range options are refused before any work.

Videos and ``--camera`` sources (:mod:`awing.app.frames`, :mod:`awing.app.live`) are tracked: the detector
runs on frame 0, every ``--redetect-every`` frames and when a face is lost, the other frames crop each face
around its previous landmarks, and ``--smooth`` (default) filters the points (One-Euro:
``--smooth-min-cutoff``, ``--smooth-beta``); ``--no-track`` runs the detector on every frame.

An input that cannot be used (missing, unreadable, damaged, no ``--boxes`` entry) is reported (log, JSON
``error``, the summary line) and skipped; so is a file without a face, which counts as processed. Nothing
is written when no input could be processed. Exit 0 when every input was processed, 1 when any was not
(the others are still written), 2 for bad arguments or a refused ``--out``. Files
inside ``--out`` are not read when it lies in an input folder. Progress bars only on a terminal.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

import cv2
from tqdm import tqdm

from awing.app import inputs  # the option values' checks (argparse types)
from awing.app.api import FaceAligner
from awing.app.draw import DrawOptions, draw_faces  # noqa: F401 (draw_faces: its old home, still importable)
from awing.app.frames import UnreadableFile, predict_image, predict_video
from awing.app.inputs import VIDEO_EXTENSIONS, boxes_for, collect_inputs, load_boxes
from awing.app.live import open_source, predict_stream
from awing.app.outputs import FileResult, OutputFolder, predictions_header, write_crops, write_predictions
from awing.core.images import DamagedImageError
from awing.detect import DEFAULT_DETECTOR, DETECTORS, FixedBoxes
from awing.method.decode import DECODERS, describe_decoders

log = logging.getLogger(__name__)


# ---------------------------------------------------------------------------------------- arguments
def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The ``awing predict`` options: inputs and detection, videos and live input, outputs, the model."""
    add = parser.add_argument
    add("paths", nargs="*", help="images, folders (searched recursively) and videos")
    add("--model", default=None, help="shipped model name or checkpoint path (default: the default model)")
    add("--out", default="predictions", help="output folder (default: ./predictions)")
    overwrite = (
        "replace the results of an earlier run in --out (only the files awing predict writes there: predictions.json, "
        ".csv, faces.csv, predictions_coco.json, annotated/, pts/); without it such a folder is refused"
    )
    add("--overwrite", action="store_true", help=overwrite)
    detector = (
        "face detector: blazeface (MediaPipe BlazeFace, shipped; the default), blazeface-back (smaller faces), "
        "opencv (Haar), opencv-profile (+ side views), dlib (pip install 'awing[dlib]'), full (each image is "
        "already a face crop)"
    )
    add("--detector", default=DEFAULT_DETECTOR, choices=sorted(DETECTORS), help=detector)
    boxes = (
        "JSON {filename: [[x0, y0, x1, y1], ...]} of face boxes; skips detection (keys match the path as given, "
        "the path relative to its folder argument, or the file name)"
    )
    add("--boxes", default=None, metavar="FILE", help=boxes)
    enlarge = "crop enlargement of the boxes, -0.9 to 10 (0: the squared box; default: the detector's)"
    add("--enlarge", type=inputs.enlarge_arg, default=None, metavar="F", help=enlarge)
    refine = (
        "a second pass cropped around each face's first-pass landmarks (default: for models trained on "
        "landmark-box crops, as FaceAligner)"
    )
    add("--refine", action=argparse.BooleanOptionalAction, default="auto", help=refine)
    _video_arguments(parser)
    _output_arguments(parser)
    add("--device", default="auto", help="cpu, cuda or auto (default)")
    add("--fp32", action="store_true", help="fp32 on the torch backend (the default; overrides --bf16)")
    add("--bf16", action="store_true", help="torch backend: bf16 + channels_last where the CPU has it (faster, points "
        "up to a few px off fp32's)")
    schema = "return the points in this layout (e.g. mtfl5: five alignment points), via the schemas' declared mappings"
    add("--output-schema", metavar="SCHEMA", help=schema)
    onnx = "onnx: the model run by ONNX Runtime (pip install 'awing[onnx]'); auto (default): onnx where installed"
    add("--backend", choices=["auto", "torch", "onnx"], default="auto", help=onnx)
    decoder = f"sub-pixel decoder: {describe_decoders()}; default: the model file's"
    add("--decoder", choices=DECODERS, default=None, help=decoder)
    flip = "also run each face mirrored and average (more accurate, twice the model time); default: the model file's"
    add("--flip-test", action=argparse.BooleanOptionalAction, default=None, help=flip)


def _video_arguments(parser: argparse.ArgumentParser) -> None:
    """Videos: tracking and smoothing (awing.app.tracking, docs/inference.md#video); live input (awing.app.live)."""
    add = parser.add_argument
    add("--video-stride", type=inputs.count_arg, default=1, metavar="N", help="use every N-th video frame")
    add("--no-track", action="store_true", help="videos: run the detector on every frame instead of tracking the faces")
    redetect = "tracking: also run the detector every N frames (default 30)"
    add("--redetect-every", type=inputs.count_arg, default=30, metavar="N", help=redetect)
    lost = "tracking: a face is lost (and re-detected) below this mean point confidence, 0 to 1 (the model's face cut)"
    add("--track-min-confidence", type=inputs.fraction_arg, default=None, metavar="C", help=lost)
    smooth = "tracking: One-Euro smoothing of each face's points (default on)"
    add("--smooth", action=argparse.BooleanOptionalAction, default=True, help=smooth)
    cutoff = "One-Euro cutoff at rest, Hz: lower = less jitter, more lag (default 1.0)"
    add("--smooth-min-cutoff", type=inputs.positive_arg, default=1.0, metavar="HZ", help=cutoff)
    beta = "One-Euro cutoff rise per px/s of motion: higher = less lag (default 0.2)"
    add("--smooth-beta", type=inputs.non_negative_arg, default=0.2, metavar="B", help=beta)
    camera = (
        "live input instead of PATHs: a camera index (0) or a stream URL / video OpenCV opens; tracked and "
        "smoothed, shown in a window where a display exists, written to --out"
    )
    add("--camera", metavar="SOURCE", default=None, help=camera)
    frames = "--camera: stop after N frames (default: until the source ends, or q / Esc)"
    add("--max-frames", type=inputs.count_arg, default=None, metavar="N", help=frames)
    show = "--camera: live window (default: where a display and a GUI build of OpenCV exist)"
    add("--show", action=argparse.BooleanOptionalAction, default=None, help=show)


def _output_arguments(parser: argparse.ArgumentParser) -> None:
    """Extra formats, aligned crops and drawing options (awing.app.formats, awing.app.align, awing.app.draw)."""
    add = parser.add_argument
    formats = "also write iBUG .pts files (pts/) or COCO-keypoints JSON (predictions_coco.json); repeatable"
    add("--format", dest="formats", action="append", choices=["pts", "coco"], default=[], help=formats)
    crops = "write aligned face crops (ArcFace 5-point template) of every image face into DIR"
    add("--crops", metavar="DIR", default=None, help=crops)
    size = "aligned crop side, 16 to 4096 pixels (112)"
    add("--crop-size", type=inputs.crop_size_arg, default=112, metavar="PX", help=size)
    padding = "aligned crop margin around the template, fraction of the face region (0)"
    add("--crop-padding", type=inputs.non_negative_arg, default=0.0, metavar="F", help=padding)
    add("--labels", action="store_true", help="drawings: write each point's index")
    colours = "drawings: colour each point by its confidence (red 0 .. green 1)"
    add("--confidence-colours", action="store_true", help=colours)
    add("--no-draw", action="store_true", help="do not write annotated images or videos")


def _tracking(args: argparse.Namespace) -> dict | None:
    """:class:`awing.app.tracking.FaceTracker` options from the video arguments; None for ``--no-track``."""
    if args.no_track:
        return None
    return {
        "redetect_every": args.redetect_every,
        "min_confidence": args.track_min_confidence,
        "smooth": args.smooth,
        "min_cutoff": args.smooth_min_cutoff,
        "beta": args.smooth_beta,
    }


def _aligner(args: argparse.Namespace, detector, refine="auto") -> FaceAligner:
    """The :class:`FaceAligner` of the model options (``--camera`` keeps ``refine="auto"``, as it always has)."""
    same = {k: getattr(args, k) for k in ("device", "enlarge", "backend", "output_schema", "decoder", "flip_test")}
    return FaceAligner(args.model, detector=detector, fast=args.bf16 and not args.fp32, refine=refine, **same)


def _draw_options(args: argparse.Namespace) -> DrawOptions:
    return DrawOptions(labels=args.labels, confidence_colours=args.confidence_colours)


# ------------------------------------------------------------------------------------------------ run
# A file's problem (predict_file): "no face" (processed), or why it was not: these make the exit code 1.
NOT_PROCESSED = ("no boxes", "unreadable", "damaged", "failed")


def predict_file(
    aligner: FaceAligner, args: argparse.Namespace, file: Path, key: str, name: Path, table: dict | None
) -> tuple[FileResult, str | None]:
    """One input file (``table``: the ``--boxes`` table or None): its result, and its problem: None or
    ``"no face"`` (processed), else one of :data:`NOT_PROCESSED` (its ``error`` says more)."""
    is_video = file.suffix.lower() in VIDEO_EXTENSIONS
    result = FileResult(key, "video" if is_video else "image", name=name)
    boxes = None if table is None else boxes_for(table, file, key)
    if table is not None and boxes is None:
        result.error = "no boxes for this file in --boxes"
        return result, "no boxes"
    draw_to = None if args.no_draw else Path(args.out) / "annotated" / name
    options = _draw_options(args)
    try:
        if is_video:
            result.frames, result.size = predict_video(
                aligner, file, boxes, draw_to, args.video_stride, _tracking(args), options
            )
        else:
            bgr, frame = predict_image(aligner, file, boxes, draw_to, options)
            result.frames, result.size = [frame], (bgr.shape[1], bgr.shape[0])
            if args.crops and frame.faces:
                write_crops(Path(args.crops), bgr, frame.faces, name, args.crop_size, args.crop_padding)
    except DamagedImageError as err:
        result.error = str(err).removeprefix(f"{file}: ")  # "damaged image data (Premature end of JPEG file)"
        return result, "damaged"
    except (ValueError, cv2.error) as err:
        result.error = str(err)
        return result, "unreadable" if isinstance(err, UnreadableFile) else "failed"
    if result.num_faces == 0:
        result.error = "no face found"
        return result, "no face"
    return result, None


def _stream(args: argparse.Namespace, aligner: FaceAligner, cap, source: str, draw_to: Path | None) -> list:
    """The frames of an opened live source (:func:`awing.app.live.predict_stream`); none where it fails."""
    tracking = _tracking(args) or {"redetect_every": 1}
    try:
        frames, info = predict_stream(aligner, cap, draw_to, tracking, args.max_frames, args.show, _draw_options(args))
    except (ValueError, cv2.error) as err:
        log.error("%s: %s", source, err)
        return []
    window = "shown" if info["shown"] else "not shown"
    log.info("%s: %d frame(s) at %.1f fps (source), window %s", source, info["frames"], info["fps"], window)
    return frames


def run_camera(args: argparse.Namespace) -> int:
    """``--camera SOURCE``: :func:`_stream`, then the usual output files. The source is opened before
    anything is written: one that does not open, or gives no frame, writes nothing."""
    folder = OutputFolder(Path(args.out), args.overwrite)
    folder.check()
    aligner = _aligner(args, args.detector)
    source = str(args.camera)
    try:
        cap = open_source(source)
    except ValueError as err:
        log.error("%s; nothing written", err)
        return 1
    name = Path(f"camera{source}.mp4") if source.isdigit() else Path(Path(source).stem or "stream").with_suffix(".mp4")
    result = FileResult(source, "stream", name=name)
    try:
        folder.claim()
        result.frames = _stream(args, aligner, cap, source, None if args.no_draw else folder.path / "annotated" / name)
        if not result.frames:
            log.error("%s: no frame was read; nothing written", source)
            return 1
        write_predictions(folder.path, predictions_header(aligner, args.detector, []), [result], args.formats)
        folder.prune()
    finally:
        cap.release()
        folder.release()
    return 0


def _summary(results: list[FileResult], problems: list[str | None], missing: list[str]) -> str:
    """``"4 file(s), 3 face(s); 1 damaged, 1 missing"``: the count of each problem, where any."""
    counts = {p: problems.count(p) for p in ("damaged", "unreadable", "failed", "no boxes") if p in problems}
    said = [f"{n} {'without boxes' if p == 'no boxes' else p}" for p, n in counts.items()]
    said += [f"{problems.count('no face')} without a face"] if "no face" in problems else []
    said += [f"{len(missing)} missing"] if missing else []
    faces = sum(r.num_faces for r in results)
    return f"{len(results)} file(s), {faces} face(s)" + (f"; {', '.join(said)}" if said else "")


def run(args: argparse.Namespace) -> int:
    """``awing predict``: 0 when every input was processed, 1 when any could not be (missing, unreadable,
    damaged, no boxes) or none could, 2 for bad arguments or a refused ``--out``."""
    if args.camera is not None:
        return run_camera(args)
    if not args.paths:
        log.error("give images, folders or videos, or --camera SOURCE")
        return 2
    folder = OutputFolder(Path(args.out), args.overwrite)
    folder.check()  # before any work: earlier results are not replaced without --overwrite
    files, missing = collect_inputs(args.paths, skip=folder.path)
    for text in missing:
        log.error("%s: no such file or folder", text)
    if not files:
        log.error("nothing to process")
        return 1
    table = load_boxes(args.boxes) if args.boxes else None
    detector = args.detector if table is None else FixedBoxes([])  # given boxes: its enlarge, no detection
    aligner = _aligner(args, detector, args.refine)
    log.info("%r", aligner)
    folder.claim()
    try:
        results, problems = [], []
        for file, key, name in tqdm(files, desc="files", unit="file", disable=None):  # no bars into a log file
            result, problem = predict_file(aligner, args, file, key, name, table)
            if result.error:
                log.warning("%s: %s", key, result.error)
            results.append(result)
            problems.append(problem)
        if all(p in NOT_PROCESSED for p in problems):  # nothing to write: earlier results stay as they are
            log.error("%s; nothing written", _summary(results, problems, missing))
            return 1
        header = predictions_header(aligner, "boxes" if table is not None else args.detector, missing)
        write_predictions(folder.path, header, results, args.formats)
        folder.prune()
    finally:
        folder.release()
    log.info("%s -> %s", _summary(results, problems, missing), folder.path / "predictions.json")
    return 1 if missing or any(p in NOT_PROCESSED for p in problems) else 0
