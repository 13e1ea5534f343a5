"""Evaluation metrics for landmark localisation (Sec. 7.2 of the paper), as pure numpy functions.

Units and conventions:

- Points are ``(x, y)`` pixels; a missing (not annotated) ground-truth point is NaN and is never scored.
- Every error is a **fraction** of the image's normaliser (inter-ocular distance, box size, torso size);
  multiply by 100 for the percentages the paper prints. Reports do that; these functions never do.
- An image whose NME is undefined (no scored point, or a normaliser that is NaN or not positive) gets a
  NaN NME and is left out of every aggregate (mean NME, FR, AUC, CED).

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

import math
import re
import warnings
from collections.abc import Mapping, Sequence

import numpy as np

from awing.schemas import Schema, load_schema, normaliser_distance

__all__ = [
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
    "CONVENTIONS",
    "CONVENTION_NAMES",
    "POOLINGS",
    "resolve_convention",
    "annotation_box_size",
    "pooled_nme",
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
        raise ValueError(
            f"non-finite prediction at {int(bad.sum())} scored point(s), first: image {img} point {pt}"
        )
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
    err = normalised_point_errors(pred, gt, norm, mask)
    return _row_nanmean(err)


def _row_nanmean(err: np.ndarray) -> np.ndarray:
    ok = ~np.isnan(err)
    count = ok.sum(axis=-1)
    total = np.where(ok, err, 0.0).sum(axis=-1)
    out = np.full(count.shape, np.nan)
    np.divide(total, count, out=out, where=count > 0)
    return out


def _finite(nme: np.ndarray | Sequence[float | None]) -> np.ndarray:
    """Flat float64 array of the defined NMEs (None and NaN dropped)."""
    a = np.asarray(nme, dtype=np.float64).reshape(-1)  # None -> NaN
    return a[~np.isnan(a)]


# ----------------------------------------------------------------------------------- FR, CED and AUC
def failure_rate(nme: np.ndarray | Sequence[float], threshold: float) -> float:
    """Fraction of images whose NME is larger than ``threshold`` (both fractions, e.g. 0.10).

    NaN (or None) entries are left out; an empty input gives NaN.
    """
    x = _finite(nme)
    return float(np.mean(x > threshold)) if x.size else math.nan


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
    x = np.sort(_finite(nme))
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
    x = _finite(nme)
    if x.size == 0:
        return math.nan
    return float(np.mean(np.maximum(0.0, threshold - np.minimum(x, threshold))) / threshold)


def auc_numerical(nme: np.ndarray | Sequence[float], threshold: float, steps: int = 10001) -> float:
    """AUC by the trapezoid rule over a CED sampled at ``steps`` thresholds (the usual scripts' way).

    Differs from :func:`auc` by at most about ``1 / (2 (steps - 1))``; kept for cross-checking.
    """
    if threshold <= 0:
        raise ValueError("AUC threshold must be positive")
    if _finite(nme).size == 0:
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
    seen = per_joint[~np.isnan(per_joint)]
    return per_joint, float(seen.mean()) if seen.size else math.nan


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
        members = {
            g: [names.index(m) if isinstance(m, str) else int(m) for m in ms] for g, ms in groups.items()
        }
    order = [g for g in PCK_GROUP_ORDER if g in members] + [g for g in members if g not in PCK_GROUP_ORDER]
    out = {}
    for g in order:
        v = values[members[g]]
        v = v[~np.isnan(v)]
        out[g] = float(v.mean()) if v.size else math.nan
    return out


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
#: NME aggregates: ``per_image`` = mean over images of each image's mean point error (Eq. 7; the paper,
#: the authors' and HRNet's code); ``pooled`` = mean over every scored point of every image (mmpose's
#: ``keypoint_nme``: all points with ``keypoints_visible > 0``, i.e. every annotated point).
POOLINGS = ("per_image", "pooled")

#: The normaliser that is not a schema's: ``box_size`` = 200 x ``scale`` of HRNet's CSV / mmpose's COCO
#: JSON (the sample's ``attributes["box_size"]``, else ``200 * attributes["scale"]``), pixels.
ANNOTATION_NORMALISERS = ("box_size",)

#: Named conventions: convention -> {schema name: (normaliser, pooling)}; a schema not listed takes its
#: default normaliser. ``paper``: the AWing paper's protocol (awing's default). ``authors``: their released
#: evaluation code (protossw512/AdaptiveWingLoss ``fan_NME``). ``hrnet`` / ``mmpose``: those toolkits.
CONVENTIONS: dict[str, dict[str, tuple[str, str]]] = {
    "paper": {"w300_68": ("inter_ocular", "per_image"), "cofw29": ("inter_pupil", "per_image"),
              "aflw19": ("box", "per_image"), "wflw98": ("inter_ocular", "per_image")},
    "authors": {"w300_68": ("inter_pupil", "per_image"), "cofw29": ("inter_pupil", "per_image"),
                "aflw19": ("box", "per_image"), "wflw98": ("inter_ocular", "per_image")},
    "hrnet": {"w300_68": ("inter_ocular", "per_image"), "cofw29": ("inter_ocular", "per_image"),
              "aflw19": ("box_size", "per_image"), "wflw98": ("inter_ocular", "per_image")},
    "mmpose": {"w300_68": ("inter_ocular", "pooled"), "cofw29": ("inter_ocular", "pooled"),
               "aflw19": ("box_size", "pooled"), "wflw98": ("inter_ocular", "pooled")},
}  # fmt: skip
CONVENTION_NAMES = tuple(CONVENTIONS)


def resolve_convention(schema: Schema | str, convention: str | None = None) -> tuple[str, str]:
    """``(normaliser, pooling)`` of a named convention for a schema (None: ``paper``, awing's default).

    Raises:
        ValueError: an unknown convention name.
    """
    schema = load_schema(schema)
    name = convention or "paper"
    if name not in CONVENTIONS:
        raise ValueError(f"unknown evaluation convention {name!r}; known: {', '.join(CONVENTION_NAMES)}")
    default = (schema.default_normaliser, "per_image")
    if name != "mmpose":
        return CONVENTIONS[name].get(schema.name, default)
    return CONVENTIONS[name].get(schema.name, (schema.default_normaliser, "pooled"))


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


def pooled_nme(errors: np.ndarray) -> float:
    """mmpose's NME: the mean of every scored point's normalised error, (B, N) -> float (NaN: none)."""
    return _mean(np.asarray(errors, dtype=np.float64).reshape(-1))


# ------------------------------------------------------------------------------------------ evaluate
def threshold_key(threshold: float) -> str:
    """The JSON key of an FR / AUC threshold: ``0.08 -> "0.08"``, ``0.10 -> "0.1"``."""
    return f"{float(threshold):g}"


def _mean(x: np.ndarray) -> float:
    x = x[~np.isnan(x)]
    return float(x.mean()) if x.size else math.nan


def _summary(
    idx: np.ndarray,
    nme: dict[str, np.ndarray],
    main: str,
    thresholds: Sequence[float],
    pck_correct: np.ndarray | None,
    pooled: np.ndarray | None = None,
) -> dict:
    """``pooled``: the main normaliser's (B, N) point errors when the headline NME is pooled (mmpose)."""
    x = nme[main][idx]
    fin = x[~np.isnan(x)]
    out = {
        "num_images": int(fin.size),
        "nme": _mean(x) if pooled is None else pooled_nme(pooled[idx]),
        "fr": {threshold_key(t): failure_rate(fin, t) for t in thresholds},
        "auc": {threshold_key(t): auc(fin, t) for t in thresholds},
        "nme_by_normaliser": {k: _mean(v[idx]) for k, v in nme.items()},
    }
    if pck_correct is not None:
        per_joint = _pck_from_correct(pck_correct[idx])
        seen = per_joint[~np.isnan(per_joint)]
        out["pck_mean"] = float(seen.mean()) if seen.size else math.nan
    return out


def _pck_from_correct(correct: np.ndarray) -> np.ndarray:
    """(B, N) float with 1 correct, 0 wrong, NaN not scored -> (N,) fraction correct."""
    scored = ~np.isnan(correct)
    count = scored.sum(axis=0)
    out = np.full(correct.shape[1], np.nan)
    np.divide(np.where(scored, correct, 0.0).sum(axis=0), count, out=out, where=count > 0)
    return out


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
) -> dict:
    """Every metric of one test set, as a JSON-serialisable dict (floats and lists; NaN becomes None).

    Args:
        pred: (B, N, 2) predicted points in original-image pixels.
        gt: (B, N, 2) ground-truth points; NaN where missing (not scored).
        schema: the landmark schema (or its name); gives normalisers, subsets and ``pck_threshold``.
        boxes: (B, 4) face boxes ``x0, y0, x1, y1``; needed for ``box`` normalisers, which are otherwise
            skipped (an error if the main normaliser is a box one).
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
            that convention's choice, else ``custom``).
        pooling: ``per_image`` (mean of per-image NMEs) or ``pooled`` (mmpose: mean over all scored points);
            FR, AUC and CED are per image either way.
    Returns:
        A dict with keys (all NME / FR / AUC / PCK values are fractions)::

            num_images         images with a defined NME (the ones every aggregate uses)
            num_skipped        images without (no scored point, or a NaN / zero normaliser)
            normaliser         the main normaliser's name
            convention         the named convention the figures follow (``paper``, ..., or ``custom``)
            pooling            ``per_image`` or ``pooled``: how ``nme`` aggregates point errors
            nme_per_image, nme_pooled   the main normaliser's NME both ways
            thresholds         [0.08, 0.1]
            nme                mean NME under the main normaliser
            fr, auc            {threshold_key: value}, e.g. {"0.08": ..., "0.1": ...}
            nme_by_normaliser  {normaliser name: mean NME} for every normaliser that could be computed
            per_point_nme      N values: each point's mean normalised error over the images scoring it
            per_image_nme      B values (None where undefined), in input order, main normaliser
            subsets            {name: {num_images, nme, fr, auc, nme_by_normaliser[, pck_mean], indices}}
            pck                only if schema.pck_threshold: {alpha, mean, per_point (N), groups}
    """
    schema = load_schema(schema)
    pred, gt = _points(pred, "pred"), _points(gt, "gt")
    if gt.shape[1] != schema.num_points:
        raise ValueError(f"gt has {gt.shape[1]} points; schema {schema.name!r} has {schema.num_points}")
    b = gt.shape[0]
    if boxes is not None:
        boxes = np.asarray(boxes, dtype=np.float64).reshape(b, 4)
    if attributes is not None and len(attributes) != b:
        raise ValueError(f"{len(attributes)} attribute dicts for {b} images")
    conv_norm, conv_pool = resolve_convention(schema, convention)
    main = normaliser or conv_norm
    pooling = pooling or conv_pool
    if pooling not in POOLINGS:
        raise ValueError(f"unknown NME pooling {pooling!r}; known: {', '.join(POOLINGS)}")
    if main not in schema.normalisers and main not in ANNOTATION_NORMALISERS:
        raise ValueError(
            f"unknown normaliser {main!r}; schema {schema.name!r} has {list(schema.normalisers)} "
            f"(and {list(ANNOTATION_NORMALISERS)} where the annotations carry it)"
        )
    if convention is not None:
        label = convention if (main, pooling) == (conv_norm, conv_pool) else "custom"
    else:  # name what the figures follow, if a named convention does
        label = next((c for c in CONVENTION_NAMES if resolve_convention(schema, c) == (main, pooling)), "custom")
    thresholds = [float(t) for t in thresholds]

    names = [main] + [k for k in schema.normalisers if k != main]
    norms, errors = {}, {}
    box_size = annotation_box_size(attributes)
    if main == "box_size" and box_size is None:
        raise ValueError("normaliser 'box_size' needs every sample's annotated 'box_size' or 'scale' (HRNet / mmpose)")
    if box_size is not None and "box_size" not in names:
        names.append("box_size")
    for name in names:
        if name == "box_size":
            norms[name] = box_size
            errors[name] = normalised_point_errors(pred, gt, box_size, mask)
            continue
        if schema.normalisers[name].kind == "box" and boxes is None:
            if name == main:
                raise ValueError(f"normaliser {main!r} needs face boxes")
            continue
        with warnings.catch_warnings():  # nanmean of an all-missing eye: NaN norm, image skipped
            warnings.simplefilter("ignore", RuntimeWarning)
            norms[name] = normaliser_distance(schema, gt, boxes, name)
        errors[name] = normalised_point_errors(pred, gt, norms[name], mask)
    nme = {k: _row_nanmean(e) for k, e in errors.items()}

    pck_correct = None
    if schema.pck_threshold is not None:
        err = errors[main]
        pck_correct = np.where(np.isnan(err), np.nan, (err <= schema.pck_threshold).astype(np.float64))

    pooled = errors[main] if pooling == "pooled" else None
    full = _summary(np.arange(b), nme, main, thresholds, None, pooled)
    out = {"num_images": full.pop("num_images")}
    out.update(num_skipped=b - out["num_images"], normaliser=main, convention=label, pooling=pooling,
               nme_per_image=_mean(nme[main]), nme_pooled=pooled_nme(errors[main]), thresholds=thresholds,
               **full)  # fmt: skip
    point_err = errors[main]
    out["per_point_nme"] = [_mean(point_err[:, j]) for j in range(point_err.shape[1])]
    out["per_image_nme"] = nme[main].tolist()

    members = subset_indices(schema, attributes)
    for k, v in (subsets or {}).items():
        members[str(k)] = [int(i) for i in v]
    out["subsets"] = {}
    for k, idx in members.items():
        idx_arr = np.asarray(idx, dtype=np.int64)
        if idx_arr.size and (idx_arr.min() < 0 or idx_arr.max() >= b):
            raise ValueError(f"subset {k!r}: indices outside 0..{b - 1}")
        entry = _summary(idx_arr, nme, main, thresholds, pck_correct, pooled)
        entry["indices"] = idx_arr.tolist()
        out["subsets"][k] = entry

    if pck_correct is not None:
        per_joint = _pck_from_correct(pck_correct)
        seen = per_joint[~np.isnan(per_joint)]
        out["pck"] = {
            "alpha": float(schema.pck_threshold),
            "mean": float(seen.mean()) if seen.size else math.nan,
            "per_point": per_joint.tolist(),
            "groups": pck_by_group(per_joint, schema),
        }
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
