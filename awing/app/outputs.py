"""The result files of ``awing predict``, written from :class:`FileResult` s (faces as
:class:`~awing.app.api.FaceLandmarks`, never parsed back from JSON). Every file is written atomically
(a temporary file in the same folder, then a rename: :func:`awing.core.checkpoint.atomic_file`), so an
interrupted run leaves the old file or the new one, never a part.

:func:`write_predictions` writes into the output folder:

- ``predictions.json``: ``{"model": {"path", "schema", "output_schema", "point_names"}, "detector",
  "enlarge", "missing", "files": [{"file", "kind", "frames": [{"frame", "faces": [{"box", "score",
  "points", "confidence", "quality", "is_face", "pose"}]}], "error"}]}``; ``frame`` is 0 for an image and
  the frame index for a video; ``error`` is null or why the file gave no landmarks; ``missing`` lists the
  paths given that are neither a file nor a folder. Strict JSON: a value that is not a finite number (a
  model that outputs NaN) is null. A video's frames also carry ``detected`` (whether the face detector ran
  on that frame) and each face a ``track`` id (kept while :class:`awing.app.tracking.FaceTracker` follows
  the face; null with ``--no-track`` or ``--boxes``). Values as
  :meth:`~awing.app.api.FaceLandmarks.to_dict` rounds them.
- ``predictions.csv``: one row per face: ``file, frame, face, box_x0, box_y0, box_x1, box_y1, score, quality,
  is_face``, then ``<point>_x, <point>_y`` for each point and ``<point>_conf`` for each, by the layout's point
  names (:func:`csv_header`; points in original pixels, conf: the point's confidence; ``quality`` the
  landmark score, ``is_face`` 1 or 0, as in ``faces.csv``).
- ``faces.csv``: one row per face: ``file, frame, face, score, quality, is_face, yaw, pitch, roll`` (the
  landmark score and the head pose of :class:`~awing.app.api.FaceLandmarks`; empty where there is none).
- ``formats`` ``pts``: ``pts/<name>_<face>.pts`` (videos ``<name>_<frame:06d>_<face>.pts``), iBUG files
  of the full-precision points; ``coco``: ``predictions_coco.json``, COCO keypoints
  (:mod:`awing.app.formats`).

:func:`write_crops` writes ``<DIR>/<name>_<face>.png``, aligned face crops (:mod:`awing.app.align`) of one
image already in memory; :func:`write_image` an image file (the annotated copies).

:class:`OutputFolder` keeps earlier results: it refuses an output folder that holds an earlier run's files
(:func:`earlier_outputs`) unless told to overwrite them, holds the folder with the run-folder lock of
``awing train`` (:class:`awing.engine.runtime.RunFolder`) while a run writes, and, once a run's results are
written, removes the earlier run's files that this run did not write again (:meth:`OutputFolder.prune`).
"""

from __future__ import annotations

import csv
import dataclasses
import json
from collections.abc import Iterable, Sequence
from pathlib import Path

import cv2
import numpy as np

from awing.app.align import aligned_crop
from awing.app.api import FaceAligner, FaceLandmarks
from awing.app.formats import coco_keypoints, write_pts
from awing.app.inputs import IMAGE_EXTENSIONS
from awing.core.checkpoint import atomic_file
from awing.engine.metrics import to_jsonable
from awing.engine.runtime import RunFolder, RunFolderError
from awing.schemas import load_schema, map_points, point_mapping

__all__ = [
    "FACES_CSV",
    "FileResult",
    "FrameResult",
    "OutputFolder",
    "RESULT_FILES",
    "csv_header",
    "earlier_outputs",
    "predictions_header",
    "write_crops",
    "write_image",
    "write_json",
    "write_predictions",
]

FACES_CSV = ("file", "frame", "face", "score", "quality", "is_face", "yaw", "pitch", "roll")
# What awing predict writes into its output folder: these files, and the folders below with the files of
# their suffixes (annotated copies: images in their own format, videos as .mp4; iBUG .pts files).
RESULT_FILES = ("predictions.json", "predictions.csv", "faces.csv", "predictions_coco.json")
RESULT_FOLDERS = (("annotated", IMAGE_EXTENSIONS | {".mp4"}), ("pts", frozenset({".pts"})))


@dataclasses.dataclass
class FrameResult:
    """The faces of one image or video frame.

    Attributes:
        frame: 0 for an image, the frame index for a video or stream.
        faces: its faces, in the original pixels.
        detected: videos and streams: whether the face detector ran on this frame; None for an image.
        tracks: videos and streams: each face's track id (None where not tracked); None for an image.
    """

    frame: int
    faces: list[FaceLandmarks]
    detected: bool | None = None
    tracks: list[int | None] | None = None

    def to_dict(self) -> dict:
        """``{"frame", "faces"}`` for an image, ``{"frame", "detected", "faces": [{..., "track"}]}`` for a
        video frame; each face as :meth:`~awing.app.api.FaceLandmarks.to_dict`."""
        faces = [face.to_dict() for face in self.faces]
        if self.tracks is None:
            return {"frame": self.frame, "faces": faces}
        return {
            "frame": self.frame,
            "detected": self.detected,
            "faces": [{**face, "track": track} for face, track in zip(faces, self.tracks)],
        }


@dataclasses.dataclass
class FileResult:
    """One input of ``awing predict``.

    Attributes:
        file: its key in the result files (the path as given, or ``folder/relative/path``).
        kind: ``"image"``, ``"video"`` or ``"stream"``.
        frames: its frames (one for an image); empty when it gave none.
        error: why it gave no landmarks (a file that cannot be read, no face found, ...), or None.
        name: the relative path of its annotated copy; names its ``.pts`` files.
        size: ``(width, height)`` pixels where known (COCO's ``images``), else ``(None, None)``.
    """

    file: str
    kind: str
    frames: list[FrameResult] = dataclasses.field(default_factory=list)
    error: str | None = None
    name: Path | None = None
    size: tuple[int | None, int | None] = (None, None)

    @property
    def num_faces(self) -> int:
        return sum(len(frame.faces) for frame in self.frames)

    def to_dict(self) -> dict:
        """``{"file", "kind", "frames", "error"}``, the entry of ``predictions.json``'s ``files``."""
        return {"file": self.file, "kind": self.kind, "frames": [f.to_dict() for f in self.frames], "error": self.error}


def predictions_header(aligner: FaceAligner, detector: str, missing: Sequence[str]) -> dict:
    """``predictions.json``'s fields before ``files``: ``model`` (path, schema, output_schema, point_names),
    ``detector`` (its name, or ``"boxes"``), ``enlarge`` and ``missing``."""
    model = {
        "path": str(aligner.model_path),
        "schema": aligner.schema.name,
        "output_schema": aligner.output_schema.name,
        "point_names": list(aligner.point_names),
    }
    return {"model": model, "detector": detector, "enlarge": aligner.enlarge, "missing": list(missing)}


def csv_header(point_names: Sequence[str]) -> list[str]:
    """``predictions.csv``'s header: ``file, frame, face, box_x0, box_y0, box_x1, box_y1, score, quality,
    is_face``, then ``<point>_x, <point>_y`` for each point name, then ``<point>_conf`` for each."""
    points = [f"{name}_{axis}" for name in point_names for axis in "xy"]
    first = ["file", "frame", "face", "box_x0", "box_y0", "box_x1", "box_y1", "score", "quality", "is_face"]
    return [*first, *points] + [f"{name}_conf" for name in point_names]


# ------------------------------------------------------------------------------------------ writers
def write_json(path: Path, data) -> None:
    """Strict JSON, atomically: NaN and infinities (a model gone wrong) are written as null."""
    text = json.dumps(to_jsonable(data), allow_nan=False)
    with atomic_file(path) as tmp:
        Path(tmp).write_text(text)


def _write_csv(path: Path, header: Sequence[str], rows: Iterable[list]) -> None:
    with atomic_file(path) as tmp, open(tmp, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        writer.writerows(rows)


def write_image(path: Path, image: np.ndarray) -> None:
    """An image file atomically, in the format of ``path``'s extension (as ``cv2.imwrite`` chooses it).

    Raises:
        ValueError: OpenCV has no encoder for that extension, or encoding failed.
    """
    try:
        ok, data = cv2.imencode(path.suffix, image)
    except cv2.error as err:
        raise ValueError(f"cannot encode an image as {path.suffix!r}: {err}") from err
    if not ok:
        raise ValueError(f"cannot encode an image as {path.suffix!r}")
    with atomic_file(path) as tmp:
        Path(tmp).write_bytes(data.tobytes())


def _faces(results: Iterable[FileResult]) -> Iterable[tuple[FileResult, FrameResult, int, dict]]:
    """``(file, frame, k, face dict)`` for every face, in file, frame and face order."""
    for result in results:
        for frame in result.frames:
            for k, face in enumerate(frame.faces):
                yield result, frame, k, face.to_dict()


def _prediction_rows(results: Iterable[FileResult]) -> Iterable[list]:
    for result, frame, k, face in _faces(results):
        coords = [v for p in face["points"] for v in p]
        scores = [face["score"], face["quality"], int(bool(face["is_face"]))]
        yield [result.file, frame.frame, k, *face["box"], *scores, *coords, *face["confidence"]]


def _face_rows(results: Iterable[FileResult]) -> Iterable[list]:
    for result, frame, k, face in _faces(results):
        pose = [(face["pose"] or {}).get(a, "") for a in ("yaw", "pitch", "roll")]
        yield [result.file, frame.frame, k, face["score"], face["quality"], int(bool(face["is_face"])), *pose]


def _write_pts_files(folder: Path, results: Iterable[FileResult]) -> None:
    """``<name>_<face>.pts`` for an image, ``<name>_<frame:06d>_<face>.pts`` for a video or stream frame."""
    for result in results:
        stem = (result.name or Path(Path(result.file).name)).with_suffix("")
        for frame in result.frames:
            tag = f"_{frame.frame:06d}" if result.kind != "image" else ""
            for k, face in enumerate(frame.faces):
                write_pts(folder / f"{stem}{tag}_{k}.pts", face.landmarks)


def _coco_items(results: Iterable[FileResult]) -> list[dict]:
    items = []
    for result in results:
        w, h = result.size
        for frame in result.frames:
            item = {"file_name": result.file, "width": w, "height": h, "faces": frame.faces}
            if result.kind != "image":
                item["frame"] = frame.frame
            items.append(item)
    return items


def write_predictions(out: Path, header: dict, results: Sequence[FileResult], formats: Sequence[str] = ()) -> None:
    """Write the result files into the folder ``out`` (their layout: the module docstring).

    Args:
        header: :func:`predictions_header` (its model's ``point_names`` and ``output_schema`` name the CSV
            columns and the COCO keypoints).
        results: every input, in order; the ``.pts`` and COCO files take those with frames.
        formats: ``"pts"`` and / or ``"coco"``: also write those.
    """
    point_names, schema = header["model"]["point_names"], header["model"]["output_schema"]
    write_json(out / "predictions.json", {**header, "files": [r.to_dict() for r in results]})
    _write_csv(out / "predictions.csv", csv_header(point_names), _prediction_rows(results))
    _write_csv(out / "faces.csv", FACES_CSV, _face_rows(results))
    done = [r for r in results if r.frames]
    if "pts" in formats:
        _write_pts_files(out / "pts", done)
    if "coco" in formats:
        write_json(out / "predictions_coco.json", coco_keypoints(_coco_items(done), schema))


def write_crops(
    folder: Path, bgr: np.ndarray, faces: Sequence[FaceLandmarks], name: Path, size: int, padding: float
) -> int:
    """Aligned crops (:func:`awing.app.align.aligned_crop`) of one image's faces as
    ``<folder>/<name>_<k>.png``.

    Args:
        bgr: the (H, W, 3) uint8 image the faces were found in.
        name: the image's relative output path (its suffix is replaced).
        size: the crops' side, pixels; padding: their margin (:func:`~awing.app.align.aligned_crop`).
    Returns:
        The number written: a face that gives no transform is skipped.
    Raises:
        ValueError: the faces' layout has no declared mapping to ``mtfl5``.
    """
    if not faces:
        return 0
    weights = point_mapping(load_schema(faces[0].schema), "mtfl5")
    if weights is None:
        raise ValueError(f"--crops: the schemas declare no mapping from {faces[0].schema!r} to mtfl5")
    written = 0
    for k, face in enumerate(faces):
        try:
            crop = aligned_crop(bgr, map_points(np.asarray(face.landmarks, np.float64), weights), size, padding=padding)
        except ValueError:
            continue
        write_image(folder / f"{name.with_suffix('')}_{k}.png", crop)
        written += 1
    return written


# ------------------------------------------------------------------------------------- the output folder
def earlier_outputs(out: Path) -> list[Path]:
    """The files in ``out`` that ``awing predict`` writes: :data:`RESULT_FILES`, and the files under
    ``annotated/`` and ``pts/`` with the suffixes it writes there (:data:`RESULT_FOLDERS`). Any other file
    (the user's own) is never listed."""
    out = Path(out)
    found = [out / name for name in RESULT_FILES if (out / name).is_file()]
    for folder, suffixes in RESULT_FOLDERS:
        if (out / folder).is_dir():
            found += sorted(p for p in (out / folder).rglob("*") if p.is_file() and p.suffix.lower() in suffixes)
    return found


def _identity(path: Path) -> tuple[int, int, int] | None:
    """What tells a file apart from the one that replaces it (every awing write is a new file renamed into
    place): device, inode and modification time; None when it is gone."""
    try:
        st = path.stat()
    except OSError:
        return None
    return st.st_dev, st.st_ino, st.st_mtime_ns


class OutputFolder(RunFolder):
    """``awing predict``'s ``--out``: earlier results are never replaced silently, and one run writes at a time.

    :meth:`check` (writes nothing: call it before any work) refuses a folder that holds an earlier run's
    files unless ``overwrite``. :meth:`claim` creates the folder, takes the lock ``awing train`` takes on a
    run folder (``.lock``, ``fcntl.flock``: a second run is refused while this one lives, and the OS
    releases it when the process dies, so a killed run leaves no stale lock), checks again under it and
    notes the earlier run's files. :meth:`prune`, once this run's results are written, removes the
    earlier files this run did not write again: a run that fails on the way keeps the earlier results.
    """

    def __init__(self, out: Path, overwrite: bool = False) -> None:
        super().__init__(Path(out), "")
        self.overwrite = overwrite
        self._earlier: dict[Path, tuple[int, int, int] | None] = {}

    def check(self, resume: bool = False, overwrite: bool = False) -> list[str]:
        """Refuses (:class:`~awing.engine.runtime.RunFolderError`) a folder with earlier results unless
        ``--overwrite`` was given. Returns nothing for :meth:`RunFolder.claim` to delete: the earlier files
        are replaced as this run writes, and the rest removed by :meth:`prune`."""
        if self.path.exists() and not self.path.is_dir():
            raise RunFolderError(f"--out {self.path} is a file; give a folder for predictions.json, .csv, annotated/")
        earlier = earlier_outputs(self.path)
        if earlier and not self.overwrite:
            tops = [p.relative_to(self.path).parts for p in earlier]
            names = sorted({parts[0] + ("/" if len(parts) > 1 else "") for parts in tops})
            raise RunFolderError(
                f"{self.path} already holds the results of an earlier awing predict ({', '.join(names)}); write "
                "into another folder with --out, or replace them with --overwrite"
            )
        return []

    def claim(self, resume: bool = False, overwrite: bool = False) -> None:
        """Create and lock the folder, check it again under the lock, note the earlier run's files."""
        super().claim(resume=False, overwrite=False)
        self._earlier = {p: _identity(p) for p in earlier_outputs(self.path)}

    def prune(self) -> list[Path]:
        """Remove the earlier run's files that this run did not write again (and the folders that leaves
        empty); returns them."""
        removed = []
        for path, identity in self._earlier.items():
            if identity is not None and _identity(path) == identity:
                path.unlink(missing_ok=True)
                removed.append(path)
                for parent in path.parents:
                    if parent == self.path or self.path not in parent.parents:
                        break
                    try:
                        parent.rmdir()
                    except OSError:  # not empty
                        break
        self._earlier = {}
        return removed
