"""Your own data: a folder of images and one annotation file (CSV or JSON), with your schema.

CSV, one face per row, header required::

    image, x0, y0, ..., x{N-1}, y{N-1} [, split] [, box_x0, box_y0, box_x1, box_y1] [, other columns]

An empty or ``nan`` coordinate is a missing point (NaN). Other columns become sample attributes (int or
float when numeric, else text), so a schema's ``subsets`` can refer to them.

JSON, a list of objects::

    {"image": "a.jpg", "landmarks": [[x, y], null, ...], "box": [x0, y0, x1, y1], "split": "train",
     "visible": [true, false, ...], "attributes": {"glasses": 1}}

``box``, ``split``, ``visible`` and ``attributes`` are optional; a ``null`` point is missing.

Files: the annotation file is the ``annotations`` option, else the first of ``annotations.csv``,
``annotations.json``, ``landmarks.csv``, ``landmarks.json`` in ``root`` (``root`` may also be the file).
Image paths are relative to ``image_dir``, default ``root/images`` if it exists, else ``root``.

Conventions: points ``x, y`` in image pixels, pixel centres at integers; boxes ``x0, y0, x1, y1``; no
box means the tight landmark box. Split ``all`` is every row; another split name selects the rows
whose ``split`` is that name (a file without splits has only ``all``).
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np

from awing.data.readers import register_reader
from awing.data.readers._common import (
    at_line,
    check_box,
    csv_records,
    find_image_dir,
    first_existing,
    image_path,
    no_samples,
    parse_floats,
    row_points,
    xy_columns,
)
from awing.data.sample import AnnotationError, Sample, landmark_box
from awing.schemas import load_schema

DEFAULT_FILES = ("annotations.csv", "annotations.json", "landmarks.csv", "landmarks.json")
BOX_COLUMNS = ("box_x0", "box_y0", "box_x1", "box_y1")


def _value(text: str):
    """A CSV attribute: int, else float, else the stripped text."""
    text = text.strip()
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def _csv_rows(path: Path, n: int):
    """``(where, image, landmarks, box, split, visible, attributes)`` per row of a CSV file."""
    coords = xy_columns(n)
    with open(path, newline="", encoding="utf-8-sig") as handle:
        header = [c.strip() for c in next(csv.reader(handle), [])]
    boxes = [c for c in BOX_COLUMNS if c in header]
    if boxes and len(boxes) != 4:
        raise AnnotationError(f"{at_line(path, 1)}: box columns need all of {BOX_COLUMNS}, found {boxes}")
    extra = [c for c in header if c not in ("image", "split", *coords, *BOX_COLUMNS)]
    surplus = [c for c in extra if c[:1] in ("x", "y") and c[1:].isdigit()]
    if surplus:
        raise AnnotationError(f"{at_line(path, 1)}: coordinate columns {surplus} beyond the schema's {n} points")
    for number, row in csv_records(path, ("image", *coords)):
        where = at_line(path, number)
        box = parse_floats([row[c] for c in BOX_COLUMNS], where, what="box values") if boxes else None
        attributes = {c: _value(row[c]) for c in extra}
        yield (
            where,
            row["image"],
            row_points(row, n, where, missing_ok=True),
            box,
            row.get("split"),
            None,
            attributes,
        )


def _json_rows(path: Path, n: int):
    """``(where, image, landmarks, box, split, visible, attributes)`` per record of a JSON file."""
    try:
        records = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise AnnotationError(f"{path}:{err.lineno}: invalid JSON ({err.msg})") from None
    if not isinstance(records, list):
        raise AnnotationError(f"{path}: expected a list of face records")
    for i, record in enumerate(records):
        where = f"{path}[{i}]"
        if not isinstance(record, dict) or "image" not in record or "landmarks" not in record:
            raise AnnotationError(f"{where}: a record needs 'image' and 'landmarks'")
        points = record["landmarks"]
        if not isinstance(points, list) or len(points) != n:
            count = len(points) if isinstance(points, list) else "no list of"
            raise AnnotationError(f"{where}: {count} landmarks, the schema has {n}")
        flat = []
        for point in points:
            if point is not None and (not isinstance(point, list) or len(point) != 2):
                raise AnnotationError(f"{where}: each landmark must be [x, y] or null, found {point!r}")
            flat += ["nan", "nan"] if point is None else [str(v) for v in point]
        landmarks = parse_floats(flat, where, what="coordinates", missing_ok=True).reshape(-1, 2)
        box = record.get("box")
        if box is not None:
            box = parse_floats([str(v) for v in box], where, count=4, what="box values")
        visible = record.get("visible")
        if visible is not None and (
            not isinstance(visible, list) or len(visible) != n or any(v not in (True, False) for v in visible)
        ):
            raise AnnotationError(f"{where}: 'visible' must be a list of {n} booleans")
        attributes = record.get("attributes") or {}
        if not isinstance(attributes, dict):
            raise AnnotationError(f"{where}: 'attributes' must be an object")
        yield where, str(record["image"]), landmarks, box, record.get("split"), visible, attributes


@register_reader(
    "custom",
    schema="",
    splits=(),
    description="your images + a CSV or JSON annotation file, with your schema (option 'schema')",
)
def read(
    root: Path,
    split: str,
    schema: str | None = None,
    annotations: str | None = None,
    image_dir: str | None = None,
    check_images: bool = True,
) -> list[Sample]:
    """Read a user dataset (see the module docstring for the formats).

    Args:
        root: the dataset folder (or the annotation file).
        split: ``all``, or a name from the file's ``split`` column/key.
        schema: required: a built-in schema name or the path of a schema YAML; gives the point count.
        annotations: the annotation file, relative to ``root`` or absolute.
        image_dir: image folder, relative to ``root`` or absolute.
        check_images: raise if an image file is missing.
    """
    if schema is None:
        raise ValueError("custom: pass schema=<built-in name or YAML path> (the point layout of your data)")
    n = load_schema(schema).num_points
    root = Path(root)
    if root.is_file():
        path, root = root, root.parent
    elif annotations is not None:
        path = first_existing([root / annotations], "custom annotation file")
    else:
        path = first_existing([root / name for name in DEFAULT_FILES], "custom annotation file")
    if path.suffix.lower() not in (".csv", ".json"):
        raise ValueError(f"custom: annotation file must be .csv or .json, not {path}")
    rows = _csv_rows(path, n) if path.suffix.lower() == ".csv" else _json_rows(path, n)
    images = find_image_dir(root, image_dir)
    samples, present = [], set()
    for where, image, landmarks, box, row_split, visible, attributes in rows:
        row_split = "" if row_split is None else str(row_split).strip()
        present.add(row_split)
        if split != "all" and row_split != split:
            continue
        box = landmark_box(landmarks, where) if box is None else check_box(np.asarray(box), where)
        samples.append(
            Sample(
                image=image_path(images, image, where, check_images),
                landmarks=landmarks,
                visible=visible,
                box=box,
                attributes=attributes,
                split=split,
                source=where,
            )
        )
    if not samples:
        if present == {""}:
            raise ValueError(f"custom: {path} gives no split; read it as split 'all' (or add a 'split' field)")
        raise no_samples("custom", split, path, present - {""})
    return samples
