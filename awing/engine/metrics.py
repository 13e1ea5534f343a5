"""Evaluation metrics for landmark localisation (Sec. 7.2 of the paper), as pure numpy functions.

Units and conventions:

- Points are ``(x, y)`` pixels; a missing (not annotated) ground-truth point is NaN and is never scored.
- Every error is a **fraction** of the image's normaliser (inter-ocular distance, box size, torso size);
  multiply by 100 for the percentages the paper prints. Reports do that; these functions never do.
- An image whose NME is undefined (no scored point, or a normaliser that is NaN or not positive) gets a
  NaN NME, is left out of every aggregate (mean NME, FR, AUC, CED) and is counted as ``num_unscored``.

Metrics:

- NME (Eq. 7): mean over an image's scored points of ``||p_i - p^_i|| / d``.
- FR@X: the fraction of images whose NME is larger than X.
- CED: for each threshold t, the fraction of images with NME <= t.
- AUC@X: area under the CED from 0 to X, divided by X. The CED is a step function, so the area is exact:
  ``mean_i max(0, X - min(nme_i, X)) / X``. :func:`auc_numerical` integrates a sampled CED with the
  trapezoid rule instead (the way most evaluation scripts do it) and agrees to about ``1 / steps``.
- PCK@alpha: the fraction of scored points whose error is at most ``alpha`` times the normaliser
  (LSP, Table 8: alpha = 0.2 of the torso size).

:func:`evaluate_predictions` bundles them for one test set into a JSON-serialisable dict; its layout is
documented there and in :mod:`awing.engine.reports`.
"""

from __future__ import annotations

import dataclasses
import math
import re
import warnings
from collections.abc import Callable, Mapping, Sequence

import numpy as np

from awing.schemas import Schema, load_schema, normaliser_distance

__all__ = [
    "nanmean",
    "normalised_point_errors",
    "per_image_nme",
    "failure_rate",
    "ced_curve",
    "auc",
    "auc_numerical",
    "pck",
    "joint_group",
    "pck_by_group",
    "subset_indices",
    "threshold_key",
    "evaluate_predictions",
    "to_jsonable",
    "Convention",
    "CONVENTIONS",
    "CONVENTION_NAMES",
    "NME_POOLINGS",
    "POOLINGS",
    "Protocol",
    "choose_protocol",
    "resolve_convention",
    "annotation_box_size",
    "normaliser_distances",
    "pooled_nme",
    "image_mean_nme",
]

# Table 8's column order for LSP joint groups; other groups follow in order of first appearance.
PCK_GROUP_ORDER = ("head", "shoulder", "elbow", "wrist", "hip", "knee", "ankle")
_SIDE_TOKENS = {"left", "right", "l", "r", "lt", "rt"}
_GROUP_ALIASES = {
    "head_top": "head",
    "top_head": "head",
    "headtop": "head",
    "top_of_head": "head",
    "neck": "head",
    "upper_neck": "head",
    "head": "head",
    "shoulders": "shoulder",
    "elbows": "elbow",
    "wrists": "wrist",
    "hips": "hip",
    "knees": "knee",
    "ankles": "ankle",
}


# --------------------------------------------------------------------------------------------- errors
def _points(a: np.ndarray, what: str) -> np.ndarray:
    a = np.asarray(a, dtype=np.float64)
    if a.ndim == 2:
        a = a[None]
    if a.ndim != 3 or a.shape[-1] != 2:
        raise ValueError(f"{what}: expected (B, N, 2) or (N, 2) points, got shape {a.shape}")
    return a


def normalised_point_errors(
    pred: np.ndarray, gt: np.ndarray, norm: np.ndarray | float, mask: np.ndarray | None = None
) -> np.ndarray:
    """Each point's Euclidean error as a fraction of its image's normaliser.

    Args:
        pred: (B, N, 2) predicted points in pixels ((N, 2) is taken as B = 1).
        gt: (B, N, 2) ground-truth points in pixels; NaN marks a missing point.
        norm: (B,) normaliser distances in pixels (a scalar applies to every image).
        mask: (B, N) bool, True where a point is to be scored; None scores every annotated point.
    Returns:
        (B, N) float64 errors / norm; NaN where a point is not scored (missing, masked out) or the image's
        normaliser is NaN or not positive.
    Raises:
        ValueError: on mismatched shapes, or a non-finite prediction at a point that is scored.
    """
    pred, gt = _points(pred, "pred"), _points(gt, "gt")
    if pred.shape != gt.shape:
        raise ValueError(f"pred {pred.shape} and gt {gt.shape} differ in shape")
    b, n = gt.shape[:2]
    norm = np.asarray(norm, dtype=np.float64)
    norm = np.full(b, float(norm)) if norm.ndim == 0 else norm.reshape(-1)
    if norm.shape != (b,):
        raise ValueError(f"norm: expected ({b},) distances, got shape {norm.shape}")
    valid = np.isfinite(gt).all(axis=-1)
    if mask is not None:
        mask = np.asarray(mask, dtype=bool)
        if mask.ndim == 1 and b == 1:
            mask = mask[None]
        if mask.shape != (b, n):
            raise ValueError(f"mask: expected ({b}, {n}), got shape {mask.shape}")
        valid &= mask
    bad = valid & ~np.isfinite(pred).all(axis=-1)
    if bad.any():
        img, pt = np.argwhere(bad)[0]
        raise ValueError(f"non-finite prediction at {int(bad.sum())} scored point(s), first: image {img} point {pt}")
    good_norm = np.isfinite(norm) & (norm > 0)
    valid &= good_norm[:, None]
    err = np.full((b, n), np.nan)
    dist = np.linalg.norm(pred - gt, axis=-1)
    safe_norm = np.where(good_norm, norm, 1.0)
    err[valid] = (dist / safe_norm[:, None])[valid]
    return err


def per_image_nme(
    pred: np.ndarray, gt: np.ndarray, norm: np.ndarray | float, mask: np.ndarray | None = None
) -> np.ndarray:
    """Normalised mean error of each image (Eq. 7), as a fraction (not %).

    Args:
        pred: (B, N, 2) predicted points in pixels ((N, 2) is taken as B = 1).
        gt: (B, N, 2) ground-truth points in pixels; NaN marks a missing point, which is not scored.
        norm: (B,) normaliser distance of each image in pixels (see
            :func:`awing.schemas.normaliser_distance`).
        mask: (B, N) bool, True where a point is to be scored; None scores every annotated point.
    Returns:
        (B,) float64: mean over scored points of ``||pred - gt|| / norm``; NaN for an image with no scored
        point or with a NaN / non-positive normaliser.
    """
    return nanmean(normalised_point_errors(pred, gt, norm, mask), axis=-1)


def nanmean(x: np.ndarray | Sequence[float | None], axis: int | None = None) -> float | np.ndarray:
    """Mean of the entries that are not NaN (None counts as NaN), without numpy's empty-slice warning.

    Args:
        x: array-like of floats.
        axis: None for the mean of every entry, or the axis to average over.
    Returns:
        With ``axis=None`` a float; else a float64 array with ``axis`` removed. NaN where no entry is
        defined (also for an empty input).
    """
    x = np.asarray(x, dtype=np.float64)
    ok = ~np.isnan(x)
    if axis is None:
        return float(x[ok].mean()) if ok.any() else math.nan
    count = ok.sum(axis=axis)
    out = np.full(count.shape, np.nan)
    np.divide(np.where(ok, x, 0.0).sum(axis=axis), count, out=out, where=count > 0)
    return out


def _flat(nme: np.ndarray | Sequence[float | None]) -> np.ndarray:
    """Per-image NMEs as a flat float64 array (None -> NaN)."""
    return np.asarray(nme, dtype=np.float64).reshape(-1)


# ----------------------------------------------------------------------------------- FR, CED and AUC
def failure_rate(nme: np.ndarray | Sequence[float], threshold: float) -> float:
    """Fraction of images whose NME is larger than ``threshold`` (both fractions, e.g. 0.10).

    NaN (or None) entries are left out; an empty input gives NaN.
    """
    x = _flat(nme)
    return nanmean(np.where(np.isnan(x), np.nan, x > threshold))


def ced_curve(
    nme: np.ndarray | Sequence[float], max_threshold: float, steps: int = 1001
) -> tuple[np.ndarray, np.ndarray]:
    """Cumulative error distribution sampled on ``steps`` evenly spaced thresholds in [0, max_threshold].

    Returns:
        thresholds: (steps,) NME thresholds (fractions);
        fraction: (steps,) fraction of images with NME <= threshold (NaN entries left out; all zeros if
        there is no image).
    """
    if steps < 2:
        raise ValueError("ced_curve needs at least 2 steps")
    x = _flat(nme)
    x = np.sort(x[~np.isnan(x)])
    t = np.linspace(0.0, float(max_threshold), int(steps))
    if x.size == 0:
        return t, np.zeros_like(t)
    return t, np.searchsorted(x, t, side="right") / x.size


def auc(nme: np.ndarray | Sequence[float], threshold: float) -> float:
    """Exact area under the CED from 0 to ``threshold``, divided by ``threshold`` (in [0, 1]).

    The CED is a step function rising by 1/M at each image's NME, so its integral over [0, X] is
    ``(1/M) sum_i max(0, X - min(nme_i, X))``: an image with NME e < X contributes the width X - e.
    NaN entries are left out; an empty input gives NaN.
    """
    if threshold <= 0:
        raise ValueError("AUC threshold must be positive")
    x = _flat(nme)  # NaN stays NaN through min / max and is left out of the mean
    return nanmean(np.maximum(0.0, threshold - np.minimum(x, threshold))) / threshold


def auc_numerical(nme: np.ndarray | Sequence[float], threshold: float, steps: int = 10001) -> float:
    """AUC by the trapezoid rule over a CED sampled at ``steps`` thresholds (the usual scripts' way).

    Differs from :func:`auc` by at most about ``1 / (2 (steps - 1))``; kept for cross-checking.
    """
    if threshold <= 0:
        raise ValueError("AUC threshold must be positive")
    if np.isnan(_flat(nme)).all():
        return math.nan
    t, f = ced_curve(nme, threshold, steps)
    return float(np.sum((f[1:] + f[:-1]) * np.diff(t)) / 2.0 / threshold)


# ------------------------------------------------------------------------------------------------ PCK
def pck(
    pred: np.ndarray,
    gt: np.ndarray,
    norm: np.ndarray | float,
    alpha: float = 0.2,
    mask: np.ndarray | None = None,
) -> tuple[np.ndarray, float]:
    """Percentage of correct keypoints, as fractions: a point is correct if its error <= alpha * norm.

    Args:
        pred, gt: (B, N, 2) points in pixels; NaN ground truth is not scored.
        norm: (B,) normaliser in pixels (LSP: the torso size).
        alpha: the fraction of the normaliser (Table 8: 0.2).
        mask: (B, N) bool, True where a point is to be scored.
    Returns:
        per_joint: (N,) fraction of scored instances of each point that are correct (NaN if never scored);
        mean: the mean of ``per_joint`` over the points scored at least once (the "Mean" of Table 8).
    """
    err = normalised_point_errors(pred, gt, norm, mask)
    scored = ~np.isnan(err)
    correct = scored & (np.where(scored, err, np.inf) <= alpha)
    count = scored.sum(axis=0)
    per_joint = np.full(err.shape[1], np.nan)
    np.divide(correct.sum(axis=0), count, out=per_joint, where=count > 0)
    return per_joint, nanmean(per_joint)


def joint_group(name: str) -> str:
    """The side-free group a point name belongs to: ``left_knee``, ``r_knee`` -> ``knee``;
    ``head_top`` and ``neck`` -> ``head`` (LSP's head column, Table 8)."""
    tokens = [t for t in re.split(r"[\s_\-.]+", name.lower()) if t and t not in _SIDE_TOKENS]
    key = "_".join(tokens) or name.lower()
    return _GROUP_ALIASES.get(key, key)


def pck_by_group(
    per_joint: np.ndarray | Sequence[float],
    point_names: Sequence[str] | Schema,
    groups: Mapping[str, Sequence[int | str]] | None = None,
) -> dict[str, float]:
    """Per-joint PCK averaged within named groups (left and right of a joint together, as in Table 8).

    Args:
        per_joint: (N,) per-point PCK (from :func:`pck`).
        point_names: the N point names, or a schema (its ``point_names``).
        groups: explicit ``group -> point indices or names``; default: :func:`joint_group` of each name.
    Returns:
        ``{group: mean PCK}`` (NaN-aware; NaN if no member was scored), Table 8's groups first in its order
        (head, shoulder, elbow, wrist, hip, knee, ankle), then the rest in order of first appearance.
    """
    names = list(point_names.point_names if isinstance(point_names, Schema) else point_names)
    values = np.asarray(per_joint, dtype=np.float64).reshape(-1)
    if len(names) != values.size:
        raise ValueError(f"{values.size} per-joint values for {len(names)} point names")
    if groups is None:
        members: dict[str, list[int]] = {}
        for i, nm in enumerate(names):
            members.setdefault(joint_group(nm), []).append(i)
    else:
        members = {g: [names.index(m) if isinstance(m, str) else int(m) for m in ms] for g, ms in groups.items()}
    order = [g for g in PCK_GROUP_ORDER if g in members] + [g for g in members if g not in PCK_GROUP_ORDER]
    return {g: nanmean(values[members[g]]) for g in order}


# ------------------------------------------------------------------------------------------- subsets
def _truthy(value) -> bool:
    if value is None:
        return False
    if isinstance(value, str):
        return value.strip().lower() not in ("", "0", "false", "no", "none", "n", "f")
    if isinstance(value, float | np.floating) and math.isnan(value):
        return False
    return bool(value)


def subset_indices(schema: Schema, attributes: Sequence[Mapping] | None) -> dict[str, list[int]]:
    """Members of each of ``schema.subsets`` (subset name -> attribute key truthy for members).

    A subset whose attribute key no sample carries is left out (the data has no such annotation); a
    subset whose key is present but never truthy is kept, empty.
    """
    if not attributes or not schema.subsets:
        return {}
    out = {}
    for subset, key in schema.subsets.items():
        if not any(key in (a or {}) for a in attributes):
            continue
        out[subset] = [i for i, a in enumerate(attributes) if _truthy((a or {}).get(key))]
    return out


# ------------------------------------------------------------------------------------- conventions
def pooled_nme(errors: np.ndarray) -> float:
    """mmpose's NME: the mean of every scored point's normalised error, (B, N) -> float (NaN: none)."""
    return nanmean(errors)


def image_mean_nme(errors: np.ndarray) -> float:
    """The paper's NME: the mean over images of each image's mean point error, (B, N) -> float (NaN: none)."""
    return nanmean(nanmean(errors, axis=-1))


#: NME aggregates of (B, N) normalised point errors: ``per_image`` = mean over images of each image's mean
#: point error (Eq. 7; the paper, the authors' and HRNet's code); ``pooled`` = mean over every scored point
#: of every image (mmpose's ``keypoint_nme``: all points with ``keypoints_visible > 0``).
NME_POOLINGS: Mapping[str, Callable[[np.ndarray], float]] = {"per_image": image_mean_nme, "pooled": pooled_nme}
POOLINGS = tuple(NME_POOLINGS)

#: The normaliser that is not a schema's: ``box_size`` = 200 x ``scale`` of HRNet's CSV / mmpose's COCO
#: JSON (the sample's ``attributes["box_size"]``, else ``200 * attributes["scale"]``), pixels.
ANNOTATION_NORMALISERS = ("box_size",)


@dataclasses.dataclass(frozen=True)
class Convention:
    """A named evaluation protocol: the NME normaliser of each schema it names (others: the schema's
    default normaliser) and how point errors are pooled into one NME (a :data:`POOLINGS` name)."""

    name: str
    pooling: str
    normalisers: Mapping[str, str]

    def resolve(self, schema: Schema) -> tuple[str, str]:
        """``(normaliser, pooling)`` for ``schema``."""
        return self.normalisers.get(schema.name, schema.default_normaliser), self.pooling


_FACE_SCHEMAS = ("w300_68", "cofw29", "aflw19", "wflw98")


def _convention(name: str, pooling: str, normalisers: Sequence[str]) -> Convention:
    return Convention(name, pooling, dict(zip(_FACE_SCHEMAS, normalisers, strict=True)))


#: Named conventions. ``paper``: the AWing paper's protocol (awing's default). ``authors``: their released
#: evaluation code (protossw512/AdaptiveWingLoss ``fan_NME``). ``hrnet`` / ``mmpose``: those toolkits.
#: Normalisers in the order of ``_FACE_SCHEMAS``: 300W, COFW, AFLW, WFLW.
CONVENTIONS: Mapping[str, Convention] = {
    c.name: c
    for c in (
        _convention("paper", "per_image", ("inter_ocular", "inter_pupil", "box", "inter_ocular")),
        _convention("authors", "per_image", ("inter_pupil", "inter_pupil", "box", "inter_ocular")),
        _convention("hrnet", "per_image", ("inter_ocular", "inter_ocular", "box_size", "inter_ocular")),
        _convention("mmpose", "pooled", ("inter_ocular", "inter_ocular", "box_size", "inter_ocular")),
    )
}
CONVENTION_NAMES = tuple(CONVENTIONS)


def resolve_convention(schema: Schema | str, convention: str | None = None) -> tuple[str, str]:
    """``(normaliser, pooling)`` of a named convention for a schema (None: ``paper``, awing's default).

    Raises:
        ValueError: an unknown convention name.
    """
    name = convention or "paper"
    if name not in CONVENTIONS:
        raise ValueError(f"unknown evaluation convention {name!r}; known: {', '.join(CONVENTION_NAMES)}")
    return CONVENTIONS[name].resolve(load_schema(schema))


@dataclasses.dataclass(frozen=True)
class Protocol:
    """How one test set is scored: the main normaliser, the NME pooling, and the name of the convention
    that makes these choices (a :data:`CONVENTIONS` name, or ``custom``)."""

    normaliser: str
    pooling: str
    convention: str


def choose_protocol(
    schema: Schema | str,
    normaliser: str | None = None,
    convention: str | None = None,
    pooling: str | None = None,
    extra: Sequence[str] = (),
) -> Protocol:
    """The protocol of :func:`evaluate_predictions`' arguments: an explicit ``normaliser`` / ``pooling``
    wins over the ``convention``'s (None: ``paper``). The label is ``convention`` when its choices are
    kept, else (no convention named) the first convention making the same choices, else ``custom``.
    ``extra``: the names of normalisers whose distances the caller gives (``evaluate_predictions``'
    ``distances``), valid as ``normaliser`` too.

    Raises:
        ValueError: an unknown convention, pooling, or normaliser (neither the schema's nor
            :data:`ANNOTATION_NORMALISERS` nor one of ``extra``).
    """
    schema = load_schema(schema)
    conv_norm, conv_pool = resolve_convention(schema, convention)
    main, pooling = normaliser or conv_norm, pooling or conv_pool
    if pooling not in NME_POOLINGS:
        raise ValueError(f"unknown NME pooling {pooling!r}; known: {', '.join(POOLINGS)}")
    if main not in schema.normalisers and main not in ANNOTATION_NORMALISERS and main not in extra:
        raise ValueError(
            f"unknown normaliser {main!r}; schema {schema.name!r} has {list(schema.normalisers)} "
            f"(and {list(ANNOTATION_NORMALISERS)} where the annotations carry it)"
        )
    candidates = [convention] if convention is not None else CONVENTION_NAMES
    label = next((c for c in candidates if resolve_convention(schema, c) == (main, pooling)), "custom")
    return Protocol(main, pooling, label)


def annotation_box_size(attributes: Sequence[Mapping] | None) -> np.ndarray | None:
    """(B,) float64 ``box_size`` = 200 x ``scale`` (HRNet / mmpose) per image from sample attributes, in
    pixels; None unless every image carries ``box_size`` or ``scale``."""
    if not attributes:
        return None
    out = []
    for a in attributes:
        a = a or {}
        if a.get("box_size") is not None:
            out.append(float(a["box_size"]))
        elif a.get("scale") is not None:
            out.append(200.0 * float(a["scale"]))
        else:
            return None
    return np.asarray(out, dtype=np.float64)


def normaliser_distances(
    schema: Schema,
    gt: np.ndarray,
    boxes: np.ndarray | None,
    attributes: Sequence[Mapping] | None,
    main: str,
    given: Mapping[str, np.ndarray] | None = None,
) -> dict[str, np.ndarray]:
    """Each image's distance under every normaliser the inputs allow, ``{name: (B,) pixels}``: ``main``
    first, then the schema's others in order, then ``box_size`` where every sample carries it, then the
    ``given`` ones (distances computed by the caller, by a name that is none of those). A box
    normaliser is left out without ``boxes``; a distance is NaN where its points are missing.

    Raises:
        ValueError: ``main`` needs boxes or annotated box sizes that are not given; a ``given`` name that is
            the schema's or an annotation normaliser's.
    """
    given = dict(given or {})
    clash = sorted(set(given) & (set(schema.normalisers) | set(ANNOTATION_NORMALISERS)))
    if clash:
        raise ValueError(f"given normaliser distances {clash} have the names of computed ones")
    box_size = annotation_box_size(attributes)
    if main == "box_size" and box_size is None:
        raise ValueError("normaliser 'box_size' needs every sample's annotated 'box_size' or 'scale' (HRNet / mmpose)")
    extra = ["box_size"] if box_size is not None else []
    out = {}
    for name in dict.fromkeys([main, *schema.normalisers, *extra, *given]):
        if name in given:
            out[name] = np.asarray(given[name], dtype=np.float64).reshape(-1)
        elif name == "box_size":
            out[name] = box_size
        elif schema.normalisers[name].kind != "box" or boxes is not None:
            with warnings.catch_warnings():  # nanmean of an all-missing eye: NaN norm, image unscored
                warnings.simplefilter("ignore", RuntimeWarning)
                out[name] = normaliser_distance(schema, gt, boxes, name)
        elif name == main:
            raise ValueError(f"normaliser {main!r} needs face boxes")
    return out


# ------------------------------------------------------------------------------------------ evaluate
def threshold_key(threshold: float) -> str:
    """The JSON key of an FR / AUC threshold: ``0.08 -> "0.08"``, ``0.10 -> "0.1"``."""
    return f"{float(threshold):g}"


@dataclasses.dataclass(frozen=True)
class _Scored:
    """One test set's inputs and normalised errors: pred / gt (B, N, 2), mask (B, N) or None, and per
    normaliser name (B,) distances and (B, N) point errors (the main normaliser's first)."""

    pred: np.ndarray
    gt: np.ndarray
    mask: np.ndarray | None
    distances: dict[str, np.ndarray]
    errors: dict[str, np.ndarray]
    protocol: Protocol
    thresholds: tuple[float, ...]
    pck_alpha: float | None

    @property
    def main_errors(self) -> np.ndarray:
        return self.errors[self.protocol.normaliser]


def _check_inputs(schema: Schema, pred, gt, boxes, attributes, mask):
    """pred, gt as (B, N, 2) float64, boxes as (B, 4) or None, mask as (B, N) bool or None."""
    pred, gt = _points(pred, "pred"), _points(gt, "gt")
    if gt.shape[1] != schema.num_points:
        raise ValueError(f"gt has {gt.shape[1]} points; schema {schema.name!r} has {schema.num_points}")
    b = gt.shape[0]
    if boxes is not None:
        boxes = np.asarray(boxes, dtype=np.float64).reshape(b, 4)
    if attributes is not None and len(attributes) != b:
        raise ValueError(f"{len(attributes)} attribute dicts for {b} images")
    if mask is not None:
        mask = np.asarray(mask, dtype=bool)
        mask = mask[None] if mask.ndim == 1 and b == 1 else mask
    return pred, gt, boxes, mask


def _subset_members(
    schema: Schema, attributes: Sequence[Mapping] | None, subsets: Mapping[str, Sequence[int]] | None, b: int
) -> dict[str, np.ndarray]:
    """Schema subsets from the attributes, then the explicit ones (which replace one of the same name)."""
    members = subset_indices(schema, attributes)
    members.update({str(k): [int(i) for i in v] for k, v in (subsets or {}).items()})
    out = {}
    for name, idx in members.items():
        idx = np.asarray(idx, dtype=np.int64)
        if idx.size and (idx.min() < 0 or idx.max() >= b):
            raise ValueError(f"subset {name!r}: indices outside 0..{b - 1}")
        out[name] = idx
    return out


def _pck(s: _Scored, idx: np.ndarray) -> tuple[np.ndarray, float]:
    """:func:`pck` of the images ``idx`` under the main normaliser."""
    mask = None if s.mask is None else s.mask[idx]
    return pck(s.pred[idx], s.gt[idx], s.distances[s.protocol.normaliser][idx], s.pck_alpha, mask)


def _summary(s: _Scored, idx: np.ndarray) -> dict:
    """num_images, nme, fr, auc and nme_by_normaliser of the images ``idx``."""
    image_nme = {name: nanmean(err[idx], axis=-1) for name, err in s.errors.items()}
    main = image_nme[s.protocol.normaliser]
    return {
        "num_images": int(np.count_nonzero(~np.isnan(main))),
        "nme": NME_POOLINGS[s.protocol.pooling](s.main_errors[idx]),
        "fr": {threshold_key(t): failure_rate(main, t) for t in s.thresholds},
        "auc": {threshold_key(t): auc(main, t) for t in s.thresholds},
        "nme_by_normaliser": {name: nanmean(v) for name, v in image_nme.items()},
    }


def _subset_summary(s: _Scored, idx: np.ndarray) -> dict:
    out = _summary(s, idx)
    if s.pck_alpha is not None:
        out["pck_mean"] = _pck(s, idx)[1]
    out["indices"] = idx.tolist()
    return out


def _test_set_summary(s: _Scored) -> dict:
    """Every key of :func:`evaluate_predictions` but ``subsets`` and ``pck``."""
    b = s.gt.shape[0]
    summary = _summary(s, np.arange(b))
    errors = s.main_errors
    return {
        "num_images": summary["num_images"],
        "num_unscored": b - summary["num_images"],
        "normaliser": s.protocol.normaliser,
        "convention": s.protocol.convention,
        "pooling": s.protocol.pooling,
        "thresholds": list(s.thresholds),
        "nme": summary["nme"],
        "nme_by_pooling": {name: pool(errors) for name, pool in NME_POOLINGS.items()},
        "fr": summary["fr"],
        "auc": summary["auc"],
        "nme_by_normaliser": summary["nme_by_normaliser"],
        "per_point_nme": nanmean(errors, axis=0),
        "per_image_nme": nanmean(errors, axis=-1),
    }


def _pck_section(s: _Scored, schema: Schema) -> dict:
    per_joint, mean = _pck(s, np.arange(s.gt.shape[0]))
    groups = pck_by_group(per_joint, schema)
    return {"alpha": float(s.pck_alpha), "mean": mean, "per_point": per_joint, "groups": groups}


def evaluate_predictions(
    pred: np.ndarray,
    gt: np.ndarray,
    schema: Schema | str,
    boxes: np.ndarray | None = None,
    attributes: Sequence[Mapping] | None = None,
    normaliser: str | None = None,
    thresholds: Sequence[float] = (0.08, 0.10),
    subsets: Mapping[str, Sequence[int]] | None = None,
    mask: np.ndarray | None = None,
    convention: str | None = None,
    pooling: str | None = None,
    distances: Mapping[str, np.ndarray] | None = None,
) -> dict:
    """Every metric of one test set, as a JSON-serialisable dict (floats and lists; NaN becomes None).

    Args:
        pred: (B, N, 2) predicted points in original-image pixels.
        gt: (B, N, 2) ground-truth points; NaN where missing (not scored).
        schema: the landmark schema (or its name); gives normalisers, subsets and ``pck_threshold``.
        boxes: (B, 4) face boxes ``x0, y0, x1, y1``; needed for ``box`` normalisers, which are otherwise
            left out (an error if the main normaliser is a box one).
        attributes: B dicts of sample attributes (``Sample.attributes``); membership of
            ``schema.subsets`` (subset name -> attribute key truthy for members).
        normaliser: the main normaliser's name; default the schema's ``default_normaliser``.
        thresholds: FR and AUC cut-offs, fractions (0.08 and 0.10 = the paper's 8% and 10%).
        subsets: explicit subsets, name -> image indices (e.g. 300W ``common`` / ``challenge``); they
            override a schema subset of the same name.
        mask: (B, N) bool, True where a point is scored (default: every annotated point).
        convention: a named convention (:data:`CONVENTIONS`: ``paper``, ``authors``, ``hrnet``, ``mmpose``)
            giving the normaliser and the pooling; an explicit ``normaliser`` / ``pooling`` wins. None: the
            schema's default normaliser, per-image mean (the paper's; labelled ``paper`` only when it is
            that convention's choice, else ``custom``). See :func:`choose_protocol`.
        pooling: ``per_image`` (mean of per-image NMEs) or ``pooled`` (mmpose: mean over all scored points);
            FR, AUC and CED are per image either way.
        distances: more normalisers, ``{name: (B,) pixels}`` computed by the caller (e.g. the ground
            truth's box size when a partial layout mapping leaves out the schema's normaliser points); a
            name here may be ``normaliser``, and each is reported in ``nme_by_normaliser``.
    Returns:
        A dict with keys (all NME / FR / AUC / PCK values are fractions)::

            num_images         images with a defined NME (the ones every aggregate uses)
            num_unscored       images without one (no scored point, or a NaN / non-positive normaliser)
            normaliser         the main normaliser's name
            convention         the named convention the figures follow (``paper``, ..., or ``custom``)
            pooling            ``per_image`` or ``pooled``: how ``nme`` aggregates point errors
            thresholds         [0.08, 0.1]
            nme                the main normaliser's NME, aggregated as ``pooling`` says
            nme_by_pooling     {"per_image": ..., "pooled": ...}: the main normaliser's NME both ways
            fr, auc            {threshold_key: value}, e.g. {"0.08": ..., "0.1": ...}
            nme_by_normaliser  {normaliser name: mean of per-image NMEs} for every normaliser computed
            per_point_nme      N values: each point's mean normalised error over the images scoring it
            per_image_nme      B values (None where undefined), in input order, main normaliser
            subsets            {name: {num_images, nme, fr, auc, nme_by_normaliser[, pck_mean], indices}}
            pck                only if schema.pck_threshold: {alpha, mean, per_point (N), groups}
    Raises:
        ValueError: mismatched shapes, a non-finite prediction at a scored point, an unknown convention,
            pooling or normaliser, a box normaliser without boxes, subset indices out of range.
    """
    schema = load_schema(schema)
    pred, gt, boxes, mask = _check_inputs(schema, pred, gt, boxes, attributes, mask)
    protocol = choose_protocol(schema, normaliser, convention, pooling, extra=tuple(distances or ()))
    distances = normaliser_distances(schema, gt, boxes, attributes, protocol.normaliser, distances)
    errors = {name: normalised_point_errors(pred, gt, d, mask) for name, d in distances.items()}
    thresholds = tuple(float(t) for t in thresholds)
    scored = _Scored(pred, gt, mask, distances, errors, protocol, thresholds, schema.pck_threshold)
    out = _test_set_summary(scored)
    members = _subset_members(schema, attributes, subsets, gt.shape[0])
    out["subsets"] = {name: _subset_summary(scored, idx) for name, idx in members.items()}
    if scored.pck_alpha is not None:
        out["pck"] = _pck_section(scored, schema)
    return to_jsonable(out)


def to_jsonable(obj):
    """Plain JSON data: numpy scalars and arrays to Python numbers and lists, NaN and inf to None."""
    if isinstance(obj, Mapping):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, np.ndarray):
        return to_jsonable(obj.tolist())
    if isinstance(obj, list | tuple):
        return [to_jsonable(v) for v in obj]
    if isinstance(obj, bool | np.bool_):
        return bool(obj)
    if isinstance(obj, int | np.integer):
        return int(obj)
    if isinstance(obj, float | np.floating):
        v = float(obj)
        return v if math.isfinite(v) else None
    return obj
