"""Landmark files other tools read: iBUG ``.pts`` and COCO-keypoints JSON.

- :func:`write_pts` / :func:`read_pts`: the iBUG / 300-W text format (``version: 1``, ``n_points: N``,
  ``{``, one ``x y`` line per point, ``}``), one face per file. iBUG files count pixels from 1 (the
  centre of the top-left pixel is ``1 1``); awing's points count from 0, so ``one_based=True`` (the
  default) adds 1 on writing and removes it on reading, as menpo does.
- :func:`coco_keypoints`: a COCO-keypoints dataset / result dict (``images``, ``annotations`` with
  ``keypoints`` ``[x, y, v] * N``, ``num_keypoints``, ``bbox`` ``[x, y, w, h]``, ``area``, ``score``;
  ``categories`` with the schema's point names and its boundary lines as a 1-based ``skeleton``), as
  mmpose and annotation tools (CVAT, Label Studio) import it. ``v`` is 2 (labelled, visible) for a finite
  point and 0 for a missing one; points are 0-based pixels, as COCO's.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from awing.core.checkpoint import atomic_file
from awing.schemas import Schema, lines_as_segments, load_schema

__all__ = ["coco_keypoints", "read_pts", "write_pts"]


def write_pts(path: str | Path, points: np.ndarray, one_based: bool = True) -> None:
    """Write (N, 2) points as an iBUG ``.pts`` file, atomically (a temporary file, then a rename; folders
    made); points to 3 decimals, a NaN point as ``-1 -1``."""
    pts = np.asarray(points, dtype=np.float64).reshape(-1, 2) + (1.0 if one_based else 0.0)
    lines = ["version: 1", f"n_points: {len(pts)}", "{"]
    lines += ["-1 -1" if not np.isfinite(p).all() else f"{p[0]:.3f} {p[1]:.3f}" for p in pts]
    lines.append("}")
    with atomic_file(path) as tmp:
        Path(tmp).write_text("\n".join(lines) + "\n")


def read_pts(path: str | Path, one_based: bool = True) -> np.ndarray:
    """(N, 2) float64 points of an iBUG ``.pts`` file (0-based when ``one_based``)."""
    text = Path(path).read_text().splitlines()
    n = next(int(line.split(":")[1]) for line in text if line.strip().startswith("n_points"))
    start = next(i for i, line in enumerate(text) if line.strip() == "{") + 1
    pts = np.array([[float(v) for v in line.split()[:2]] for line in text[start : start + n]], dtype=np.float64)
    if pts.shape != (n, 2):
        raise ValueError(f"{path}: expected {n} points")
    return pts - (1.0 if one_based else 0.0)


def coco_keypoints(items: list[dict], schema: Schema | str, category: str = "face") -> dict:
    """A COCO-keypoints dict from predictions.

    Args:
        items: one per image (or video frame): ``{"file_name", "width", "height", "faces": [...], "frame"
            (optional)}``; each face a :class:`~awing.app.api.FaceLandmarks` or the dict its
            :meth:`~awing.app.api.FaceLandmarks.to_dict` gives (the values as predictions.json has them).
        schema: the points' layout (names and skeleton).
    """
    schema = load_schema(schema)
    images, annotations = [], []
    for image_id, item in enumerate(items, start=1):
        entry = {
            "id": image_id,
            "file_name": item["file_name"],
            "width": item.get("width"),
            "height": item.get("height"),
        }
        if "frame" in item:
            entry["frame"] = item["frame"]
        images.append(entry)
        for face in item["faces"]:
            face = face.to_dict() if hasattr(face, "to_dict") else face
            keypoints, visible = [], 0
            for x, y in face["points"]:
                ok = x is not None and y is not None and np.isfinite(x) and np.isfinite(y)
                keypoints += [float(x), float(y), 2] if ok else [0.0, 0.0, 0]
                visible += int(ok)
            x0, y0, x1, y1 = (float(v) for v in face["box"])
            ann = {
                "id": len(annotations) + 1,
                "image_id": image_id,
                "category_id": 1,
                "keypoints": keypoints,
                "num_keypoints": visible,
                "bbox": [x0, y0, x1 - x0, y1 - y0],
                "area": (x1 - x0) * (y1 - y0),
                "iscrowd": 0,
                "score": face.get("quality", face.get("score", 1.0)),
            }
            if face.get("pose") is not None:
                ann["head_pose"] = face["pose"]
            annotations.append(ann)
    skeleton = (lines_as_segments(schema) + 1).tolist()
    return {
        "info": {"description": f"awing predictions, {schema.name} layout"},
        "images": images,
        "annotations": annotations,
        "categories": [
            {
                "id": 1,
                "name": category,
                "supercategory": category,
                "keypoints": list(schema.point_names),
                "skeleton": skeleton,
            }
        ],
    }
