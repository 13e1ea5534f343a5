"""COCO-style keypoint JSON, as mmpose writes its face-landmark annotations.

A file holds ``images`` (``id``, ``file_name``) and ``annotations`` (``image_id``, ``keypoints`` as
``x, y, v`` triplets, ``bbox`` as ``x, y, width, height``); one sample per annotation, in file order.
mmpose's layout is ``root/annotations/face_landmarks_<dataset>_<split>.json`` with images in
``root/images``; the file is found as ``ann_file`` (option), else ``<split>.json``, else the one JSON
file whose name ends in ``_<split>`` or starts with ``<split>_``, in ``root`` or ``root/annotations``.

Points are used as stored. ``v = 0`` means not labelled: the point is NaN. COCO's ``v = 1`` is
"labelled, not visible" and ``v = 2`` "labelled, visible", but mmpose's face converters write ``v = 1``
for every labelled point; so visibility is read per file: if any point of the file has ``v = 2``,
``v = 1`` means occluded (``visible = False``); otherwise the file carries no visibility and
``visible`` is None. A missing or empty ``bbox`` falls back to the tight landmark box.

mmpose's (and HRNet's) ``center`` (2 values, pixels), ``scale`` (box size / 200) and ``box_size``
(pixels) of an annotation are kept in ``Sample.attributes`` under those names where present, so that
their AFLW normaliser ``box_size`` = 200 x ``scale`` can be computed
(:func:`awing.engine.metrics.annotation_box_size`).

Schema: the ``schema`` option, else inferred from the keypoint count where only one built-in schema
has it (98 wflw98, 68 w300_68, 29 cofw29, 19 aflw19, 5 mtfl5; 14 is FDD or LSP: pass ``schema``).
Use :func:`schema_for` to learn the schema of a file.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from awing.data.readers import register_reader, schema_for_point_count
from awing.data.readers._common import (
    check_box,
    find_image_dir,
    image_path,
    no_samples,
    parse_floats,
    xywh_to_xyxy,
)
from awing.data.sample import AnnotationError, Sample, landmark_box
from awing.schemas import load_schema

#: keypoint count -> the built-in schema, where unambiguous.


def annotation_file(root: Path, split: str, ann_file: str | None = None) -> Path:
    """The JSON file of a split (see the module docstring for the search order)."""
    if ann_file is not None:
        path = Path(root) / ann_file
        if not path.is_file():
            raise FileNotFoundError(f"COCO annotation file not found: {path}")
        return path
    if Path(root).is_file():
        return Path(root)
    folders = [f for f in (Path(root), Path(root) / "annotations") if f.is_dir()]
    for folder in folders:
        if (folder / f"{split}.json").is_file():
            return folder / f"{split}.json"
    matches = sorted(
        p for f in folders for p in f.glob("*.json") if p.stem.endswith(f"_{split}") or p.stem.startswith(f"{split}_")
    )
    if len(matches) != 1:
        found = ", ".join(str(p) for p in matches) or "none"
        raise FileNotFoundError(
            f"cannot choose the COCO JSON of split {split!r} in {root} (candidates: {found}); pass ann_file=..."
        )
    return matches[0]


def _load(path: Path) -> tuple[dict, list]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise AnnotationError(f"{path}:{err.lineno}: invalid JSON ({err.msg})") from None
    if (
        not isinstance(data, dict)
        or not isinstance(data.get("images"), list)
        or not isinstance(data.get("annotations"), list)
    ):
        raise AnnotationError(f"{path}: not a COCO keypoint file (needs 'images' and 'annotations' lists)")
    images = {}
    for i, image in enumerate(data["images"]):
        if not isinstance(image, dict) or "id" not in image or "file_name" not in image:
            raise AnnotationError(f"{path}[images][{i}]: needs 'id' and 'file_name'")
        images[image["id"]] = image["file_name"]
    return images, data["annotations"]


def _keypoints(annotation, where: str) -> np.ndarray:
    """(K, 3) ``x, y, v`` of one annotation."""
    if not isinstance(annotation, dict) or "keypoints" not in annotation or "image_id" not in annotation:
        raise AnnotationError(f"{where}: needs 'image_id' and 'keypoints'")
    raw = annotation["keypoints"]
    if not isinstance(raw, list) or len(raw) == 0 or len(raw) % 3:
        raise AnnotationError(f"{where}: 'keypoints' must be a non-empty list of x, y, v triplets")
    values = parse_floats([str(v) for v in raw], where, what="keypoint values").reshape(-1, 3)
    if not np.isin(values[:, 2], (0, 1, 2)).all():
        raise AnnotationError(f"{where}: keypoint flags v must be 0, 1 or 2")
    return values


def schema_for(count: int, schema: str | None = None, where: str = "") -> str:
    """The schema name: ``schema`` if given, else the built-in one with ``count`` points."""
    return schema if schema is not None else schema_for_point_count(count, where)


@register_reader(
    "coco",
    schema="",
    splits=(),
    description="COCO-style keypoint JSON (mmpose); schema from option 'schema' or the point count",
)
def read(
    root: Path,
    split: str,
    ann_file: str | None = None,
    image_dir: str | None = None,
    schema: str | None = None,
    check_images: bool = True,
) -> list[Sample]:
    """Read one COCO-style JSON file.

    Args:
        root: the dataset folder (or the JSON file itself).
        split: a label for the samples; also picks the file when ``ann_file`` is not given.
        ann_file: the JSON file, relative to ``root`` or absolute.
        image_dir: folder ``file_name`` is relative to (relative to ``root``); default ``root/images``
            if it exists, else ``root`` (the JSON file's folder when ``root`` is the file).
        schema: built-in schema name or YAML path; checked against the keypoint count.
        check_images: raise if an image file is missing.
    """
    root = Path(root)
    path = annotation_file(root, split, ann_file)
    images, annotations = _load(path)
    folder = find_image_dir(root if root.is_dir() else path.parent, image_dir)
    keypoints = [_keypoints(a, f"{path}[annotations][{i}]") for i, a in enumerate(annotations)]
    if not keypoints:
        raise no_samples("coco", split, path)
    count = len(keypoints[0])
    expected = load_schema(schema_for(count, schema, str(path))).num_points
    has_visibility = any((k[:, 2] == 2).any() for k in keypoints)
    samples = []
    for i, (annotation, points) in enumerate(zip(annotations, keypoints)):
        where = f"{path}[annotations][{i}]"
        if len(points) != expected:
            raise AnnotationError(f"{where}: {len(points)} keypoints, expected {expected}")
        if annotation["image_id"] not in images:
            raise AnnotationError(f"{where}: image_id {annotation['image_id']!r} is not among 'images'")
        landmarks = np.where(points[:, 2:3] == 0, np.nan, points[:, :2])
        bbox = annotation.get("bbox")
        if bbox:
            values = parse_floats([str(v) for v in bbox], where, count=4, what="bbox values")
            box = check_box(xywh_to_xyxy(values), where)
        else:
            box = landmark_box(landmarks, where)
        attributes = _scale_attributes(annotation, where)
        samples.append(
            Sample(
                image=image_path(folder, images[annotation["image_id"]], where, check_images),
                landmarks=landmarks,
                visible=points[:, 2] == 2 if has_visibility else None,
                box=box,
                attributes=attributes,
                split=split,
                source=where,
            )
        )
    return samples


def _scale_attributes(annotation: dict, where: str) -> dict:
    """``{"center": [cx, cy], "scale": s, "box_size": b}``: the fields of these an annotation has (floats)."""
    out = {}
    center = annotation.get("center")
    if center is not None:
        if not isinstance(center, (list, tuple)):
            raise AnnotationError(f"{where}: 'center' must be a list of 2 numbers, found {center!r}")
        out["center"] = [float(v) for v in parse_floats([str(v) for v in center], where, 2, "center values")]
    for key in ("scale", "box_size"):
        value = annotation.get(key)
        if isinstance(value, (list, tuple)):  # some converters store one value per axis; face sets use one
            value = value[0] if value else None
        if value is None:
            continue
        number = float(parse_floats([str(value)], where, 1, key)[0])
        if not number > 0:
            raise AnnotationError(f"{where}: {key} must be positive, found {number}")
        out[key] = number
    return out
