"""Landmark schemas: the layout of a landmark set, as data.

A schema says how many points a dataset has, what they are called, which pairs swap under a
horizontal flip, which boundary lines run through them (Sec. 5 of the paper), how the NME of an image
is normalised, and which named evaluation subsets exist. Each built-in schema is one YAML file beside
this module; users load their own with :func:`load_schema` from a path.

Nothing else in awing knows a point count: code asks the schema.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from functools import cache
from pathlib import Path

import numpy as np
import yaml

SCHEMA_DIR = Path(__file__).parent


@dataclasses.dataclass(frozen=True)
class Normaliser:
    """How one image's NME denominator is computed.

    kind:
      ``points``  distance between the centroids of two point groups (``groups``), e.g. the outer eye
                  corners (inter-ocular) or the mean of each eye's points (inter-pupil);
      ``box``     size of the face box: ``box_mode`` ``longer_side`` (mmpose), ``sqrt_area`` (the AWing
                  authors for AFLW) or ``diagonal``;
      ``torso``   like ``points``; a name kept for body-pose PCK (LSP).
    """

    name: str
    kind: str
    groups: tuple[tuple[int, ...], tuple[int, ...]] = ((), ())
    box_mode: str = "longer_side"


@dataclasses.dataclass(frozen=True)
class Schema:
    """One landmark layout.

    Attributes:
        name: registry name, e.g. ``wflw98``.
        num_points: N, the number of landmarks.
        point_names: N names, left/right as seen in the image.
        flip_pairs: index pairs that swap under a horizontal flip.
        boundary_lines: named polylines through landmark indices (the boundary channel's lines).
        normalisers: NME normalisers by name; ``default_normaliser`` names the protocol's one.
        subsets: named evaluation subsets; each maps to a sample-attribute key that is truthy for members.
        pck_threshold: fraction of the normaliser for PCK (body pose), if the schema uses PCK.
        from_schemas: how to get these points from another layout's: ``{source schema: N index lists}``,
            point ``i`` being the mean of the source points ``from_schemas[source][i]`` (e.g. an eye centre
            from the six points around that eye). :func:`point_mapping` composes them. An empty list marks a
            point the source layout has no counterpart for (a partial mapping, e.g. FG-NET's 68 points from
            300-W's): only :func:`transfer_mapping` and ``point_mapping(..., partial=True)`` use such a one.
    """

    name: str
    num_points: int
    point_names: tuple[str, ...]
    flip_pairs: tuple[tuple[int, int], ...]
    boundary_lines: dict[str, tuple[int, ...]]
    normalisers: dict[str, Normaliser]
    default_normaliser: str
    subsets: dict[str, str] = dataclasses.field(default_factory=dict)
    description: str = ""
    pck_threshold: float | None = None
    from_schemas: dict[str, tuple[tuple[int, ...], ...]] = dataclasses.field(default_factory=dict)

    def __post_init__(self) -> None:
        n = self.num_points
        problems = []
        if len(self.point_names) != n:
            problems.append(f"{len(self.point_names)} point names for {n} points")
        used = [i for pair in self.flip_pairs for i in pair]
        used += [i for line in self.boundary_lines.values() for i in line]
        used += [i for norm in self.normalisers.values() for group in norm.groups for i in group]
        bad = sorted({i for i in used if not 0 <= i < n})
        if bad:
            problems.append(f"indices {bad} out of range 0..{n - 1}")
        if len(set(used[: 2 * len(self.flip_pairs)])) != 2 * len(self.flip_pairs):
            problems.append("a point appears in more than one flip pair")
        if self.default_normaliser not in self.normalisers:
            problems.append(f"default_normaliser {self.default_normaliser!r} is not among {list(self.normalisers)}")
        for source, rows in self.from_schemas.items():
            if len(rows) != n or not any(rows):
                problems.append(f"from_schemas[{source!r}] needs one index list per point ({n}), not all empty")
        for line_name, line in self.boundary_lines.items():
            if len(line) < 2:
                problems.append(f"boundary line {line_name!r} needs at least 2 points")
        if problems:
            raise ValueError(f"schema {self.name!r}: " + "; ".join(problems))

    @property
    def flip_permutation(self) -> np.ndarray:
        """(N,) int: index of each point's mirror partner (itself if it has none)."""
        perm = np.arange(self.num_points)
        for a, b in self.flip_pairs:
            perm[a], perm[b] = b, a
        return perm

    def to_dict(self) -> dict:
        """Plain-data form, as stored in YAML and in checkpoints."""
        return {
            "name": self.name,
            "description": self.description,
            "num_points": self.num_points,
            "point_names": list(self.point_names),
            "flip_pairs": [list(p) for p in self.flip_pairs],
            "boundary_lines": {k: list(v) for k, v in self.boundary_lines.items()},
            "normalisers": {
                k: {"kind": v.kind, "groups": [list(g) for g in v.groups], "box_mode": v.box_mode}
                for k, v in self.normalisers.items()
            },
            "default_normaliser": self.default_normaliser,
            "subsets": dict(self.subsets),
            "pck_threshold": self.pck_threshold,
            "from_schemas": {k: [list(r) for r in v] for k, v in self.from_schemas.items()},
        }

    @classmethod
    def from_dict(cls, data: dict, source: str = "<dict>") -> Schema:
        required = ("name", "num_points", "normalisers", "default_normaliser")
        missing = [k for k in required if k not in data]
        if missing:
            raise ValueError(f"schema {source}: missing keys {missing}")
        n = int(data["num_points"])
        names = tuple(data.get("point_names") or (f"p{i}" for i in range(n)))
        normalisers = {}
        for key, spec in data["normalisers"].items():
            groups = tuple(tuple(int(i) for i in g) for g in spec.get("groups", ((), ())))
            if spec.get("kind", "points") in ("points", "torso") and len(groups) != 2:
                raise ValueError(f"schema {source}: normaliser {key!r} needs exactly two point groups")
            normalisers[key] = Normaliser(
                name=key,
                kind=spec.get("kind", "points"),
                groups=groups if groups else ((), ()),
                box_mode=spec.get("box_mode", "longer_side"),
            )
        return cls(
            name=str(data["name"]),
            description=str(data.get("description", "")),
            num_points=n,
            point_names=names,
            flip_pairs=tuple(tuple(int(i) for i in p) for p in data.get("flip_pairs", [])),
            boundary_lines={k: tuple(int(i) for i in v) for k, v in (data.get("boundary_lines") or {}).items()},
            normalisers=normalisers,
            default_normaliser=str(data["default_normaliser"]),
            subsets=dict(data.get("subsets") or {}),
            pck_threshold=data.get("pck_threshold"),
            from_schemas={
                str(k): tuple(tuple(int(i) for i in row) for row in v)
                for k, v in (data.get("from_schemas") or {}).items()
            },
        )


def available_schemas() -> list[str]:
    """Names of the built-in schemas."""
    return sorted(p.stem for p in SCHEMA_DIR.glob("*.yaml"))


@cache
def _load_builtin(name: str) -> Schema:
    path = SCHEMA_DIR / f"{name}.yaml"
    return Schema.from_dict(yaml.safe_load(path.read_text()), source=str(path))


def load_schema(name_or_path: str | Path | Schema | dict) -> Schema:
    """A schema by built-in name (``wflw98``), from a YAML path, or from its dict form."""
    if isinstance(name_or_path, Schema):
        return name_or_path
    if isinstance(name_or_path, dict):
        return Schema.from_dict(name_or_path)
    text = str(name_or_path)
    if text in available_schemas():
        return _load_builtin(text)
    path = Path(text)
    if path.suffix in (".yaml", ".yml") and path.is_file():
        return Schema.from_dict(yaml.safe_load(path.read_text()), source=str(path))
    raise ValueError(f"unknown schema {text!r}: not a built-in ({', '.join(available_schemas())}) nor a YAML file")


def normaliser_distance(
    schema: Schema, landmarks: np.ndarray, box: np.ndarray | None = None, normaliser: str | None = None
) -> np.ndarray:
    """Per-image NME denominator.

    Args:
        landmarks: (..., N, 2) ground-truth points in pixels (NaN for missing).
        box: (..., 4) face boxes ``x0, y0, x1, y1`` in pixels, needed for ``box`` normalisers.
        normaliser: a name from ``schema.normalisers``; default the schema's protocol one.
    Returns:
        (...,) distances in pixels.
    """
    norm = schema.normalisers[normaliser or schema.default_normaliser]
    landmarks = np.asarray(landmarks, dtype=np.float64)
    if norm.kind == "box":
        if box is None:
            raise ValueError(f"normaliser {norm.name!r} needs face boxes")
        box = np.asarray(box, dtype=np.float64)
        w, h = box[..., 2] - box[..., 0], box[..., 3] - box[..., 1]
        if norm.box_mode == "longer_side":
            return np.maximum(w, h)
        if norm.box_mode == "sqrt_area":
            return np.sqrt(w * h)
        if norm.box_mode == "diagonal":
            return np.hypot(w, h)
        raise ValueError(f"unknown box_mode {norm.box_mode!r}")
    a = np.nanmean(landmarks[..., list(norm.groups[0]), :], axis=-2)
    b = np.nanmean(landmarks[..., list(norm.groups[1]), :], axis=-2)
    return np.linalg.norm(a - b, axis=-1)


def point_mapping(source: Schema | str, target: Schema | str, partial: bool = False) -> np.ndarray | None:
    """(T, S) float64 weights that make ``target``'s points from ``source``'s: ``target = W @ source``,
    each row the mean over the source points it names. Declared mappings (``from_schemas``) are composed
    through other built-in layouts when there is no direct one (e.g. wflw98 -> w300_68 -> fdd14).
    None if no chain of declared mappings leads from ``source`` to ``target``. Declarations with empty rows
    (points the source lacks) are links only with ``partial=True``; their rows are then all zero.
    """
    source, target = load_schema(source), load_schema(target)
    if source.name == target.name:
        return np.eye(target.num_points) if source.num_points == target.num_points else None
    frontier, seen = [(target, np.eye(target.num_points))], {target.name}
    while frontier:  # breadth-first over "made from" links, from the target back towards the source
        layout, weights = frontier.pop(0)
        for name, rows in _declared_mappings(layout).items():
            if name in seen or (not partial and not all(rows)):
                continue
            try:
                parent = load_schema(name)
            except (FileNotFoundError, ValueError):
                continue
            step = np.zeros((layout.num_points, parent.num_points))
            for i, row in enumerate(rows):
                if not all(0 <= j < parent.num_points for j in row):
                    raise ValueError(f"schema {layout.name}: from_schemas[{name!r}] row {i} is out of range")
                if row:  # an empty row: a point the parent layout has none of
                    step[i, list(row)] = 1.0 / len(row)
            if name == source.name:
                return weights @ step
            seen.add(name)
            frontier.append((parent, weights @ step))
    return None


def transfer_mapping(source: Schema | str, target: Schema | str) -> np.ndarray:
    """(T, S) weights that carry a ``source`` annotation into ``target``'s layout for training:
    :func:`point_mapping` where one exists (a partial one too: 300-W -> FG-NET's shared points), else each
    target point that a declared mapping the other way ties to exactly one source point
    (``target.point[t] == source.point[s]``, e.g. the 14 FDD points that are single 68-point landmarks).
    Rows with no weight are points the source cannot give (missing).

    Raises:
        ValueError: no target point can be had from the source.
    """
    source, target = load_schema(source), load_schema(target)
    full = point_mapping(source, target, partial=True)
    if full is not None and full.any():
        return full
    weights = np.zeros((target.num_points, source.num_points))
    backward = point_mapping(target, source, partial=True)  # (S, T): source points made from target points
    if backward is not None:
        for s, row in enumerate(backward):
            (made_from,) = np.nonzero(row)
            if len(made_from) == 1:
                weights[made_from[0], s] = 1.0
    if not weights.any():
        raise ValueError(f"no point of schema {target.name} can be had from {source.name}: declare a "
                         f"from_schemas mapping between them")
    return weights


def _declared_mappings(schema: Schema) -> dict[str, tuple[tuple[int, ...], ...]]:
    """A schema's ``from_schemas``; one stored without them (e.g. in an older checkpoint) gets the
    built-in schema's of the same name and point count."""
    if schema.from_schemas or schema.name not in available_schemas():
        return schema.from_schemas
    builtin = _load_builtin(schema.name)
    return builtin.from_schemas if builtin.num_points == schema.num_points else {}


def map_points(points: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """(..., S, 2) points in one layout -> (..., T, 2) in another through :func:`point_mapping`'s (or
    :func:`transfer_mapping`'s) weights. A target point is NaN (missing) when any source point it is made
    from is missing, or when its row names no source point."""
    pts = np.asarray(points, dtype=np.float64)
    used = weights > 0
    out = np.einsum("ts,...sc->...tc", weights, np.nan_to_num(pts))
    missing = np.isnan(pts).any(axis=-1)  # (..., S)
    out[(missing[..., None, :] & used).any(axis=-1)] = np.nan
    out[..., ~used.any(axis=-1), :] = np.nan
    return out


def lines_as_segments(schema: Schema) -> np.ndarray:
    """(S, 2) int: every consecutive index pair of every boundary line (the polyline segments)."""
    segs = [(line[i], line[i + 1]) for line in schema.boundary_lines.values() for i in range(len(line) - 1)]
    return np.asarray(segs, dtype=np.int64).reshape(-1, 2)


__all__: Sequence[str] = [
    "Schema",
    "Normaliser",
    "load_schema",
    "available_schemas",
    "normaliser_distance",
    "lines_as_segments",
    "point_mapping",
    "transfer_mapping",
    "map_points",
]
