"""Declared point correspondences onto 300-W, checked against the shipped 68-point model's predictions.

    OMP_NUM_THREADS=1 python -m benchmarks.correspondence [--sets fgnet scut aflw2000 w300] [--limit 200]
        [--shared ../shared/data] [--out runs/correspondence/tables.md]

For each set, ``--limit`` faces evenly spaced over its ``all`` split (300-W: its ``val`` faces, the model's
own validation set, as the reference) go through ``w300-1hg-tiny-300w`` (``--model``; trained on 300-W alone, so
not on the correspondences checked here) on the CPU: a crop of the landmark box
+ 10 % (as the model was trained), the box first made from the annotation's points that map to 300-W, then
once more from the model's own 68 points. The 68 predicted points are carried into the set's layout by its
declared ``from_schemas`` (``point_mapping(w300_68, schema, partial=True)``), and each mapped point's
distance to the annotation is divided by the face's inter-ocular distance (the set's outer eye corners).

Each set prints one Markdown table: per mapped point its 300-W source points, the median normalised
distance over all faces and per group (AFLW2000-3D: frontal / turned |yaw| >= 30 degrees; FG-NET: child /
adult; SCUT: Asian / Caucasian), the same point's median on the model's own 300-W validation faces (the
reference: how well the model finds that 300-W point, or mean of points, where the annotation is 300-W's)
and the ratio of the two, and the bias: the median signed offset, model - annotation, less the model's own
on the 300-W faces. A wrong correspondence is a systematic displacement, not scatter: ``far above`` marks
the columns where the bias exceeds 2.5 % of the inter-ocular distance (for AFLW2000-3D's turned faces: the
other jaw convention). Below each table: the mean signed offset over the single-point correspondences,
whose sign on both axes tells a 1-pixel difference in pixel origin against 300-W's (the ``w300`` row).
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

if __package__:  # python -m benchmarks.correspondence, or imported
    from benchmarks._common import add_shared_argument, subsample
else:  # python benchmarks/correspondence.py
    from _common import add_shared_argument, subsample

BIAS_LIMIT = 0.025  # a systematic offset over 2.5 % of the inter-ocular distance: another point
MODEL = "w300-1hg-tiny-300w"  # a model that never trained on FG-NET's or SCUT's mapped points
ENLARGE = 0.1  # the model's crop: the landmark box + 10 %


@dataclasses.dataclass(frozen=True)
class CheckSet:
    """One data set to check: its reader, folder under the shared data, split, and how to group its faces."""

    title: str
    reader: str
    folder: str
    split: str
    group_key: str
    groups: dict  # attribute value -> column name


SETS = {
    "fgnet": CheckSet("FG-NET (fgnet68)", "fgnet", "fgnet", "all", "child", {1: "child", 0: "adult"}),
    "scut": CheckSet("SCUT-FBP5500 (scut86)", "scut", "scut_fbp5500", "all", "ethnicity",
                     {"asian": "Asian", "caucasian": "Caucasian"}),
    "aflw2000": CheckSet("AFLW2000-3D (w300_68, identity)", "aflw2000", "aflw2000_3d", "all", "large_pose",
                         {0: "frontal", 1: "turned"}),
    "w300": CheckSet("300-W val (w300_68, identity; the reference)", "w300", "w300", "val", "subset",
                     {"afw": "AFW", "helen_train": "HELEN"}),
}


@dataclasses.dataclass
class SetResult:
    """What :func:`check_set` measured: (M, N) normalised distances (NaN where a point is not mapped),
    (M, N, 2) signed offsets in pixels, each face's group label, and the schema's names and sources."""

    errors: np.ndarray
    offsets: np.ndarray
    groups: list
    names: Sequence[str]
    sources: list[str]
    weights: np.ndarray | None = None  # (N, 68) the declared mapping from 300-W
    pred: np.ndarray | None = None  # (M, 68, 2) the model's points
    gt: np.ndarray | None = None  # (M, N, 2) the annotations
    iod: np.ndarray | None = None  # (M,) inter-ocular distances

    @property
    def as_reference(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """What :func:`reference_medians` takes, from a 300-W (identity) run."""
        return self.pred, self.gt, self.iod


def mapped_sources(weights: np.ndarray) -> list[str]:
    """Per target point, the 300-W points it is made from (``36`` or ``mean 37, 38``), ``""`` if none."""
    out = []
    for row in weights:
        (idx,) = np.nonzero(row)
        out.append("" if len(idx) == 0 else str(idx[0]) if len(idx) == 1 else "mean " + ", ".join(map(str, idx)))
    return out


def point_errors(pred68: np.ndarray, gt: np.ndarray, weights: np.ndarray, iod: np.ndarray):
    """((M, N) normalised distances, (M, N, 2) pixel offsets) of the predictions mapped by ``weights``."""
    from awing.schemas import map_points

    mapped = map_points(pred68, weights)
    offsets = mapped - gt
    return np.linalg.norm(offsets, axis=-1) / np.asarray(iod)[:, None], offsets


def predict_faces(samples: list, weights: np.ndarray, aligner) -> np.ndarray:
    """(M, 68, 2) the model's points: a crop from the box of the annotation's mapped points, then again
    from the box of the first prediction (both + ``ENLARGE``)."""
    from awing.data.sample import landmark_box

    used = weights.any(axis=0)  # which 300-W points the layout has
    preds = []
    for s in samples:
        back = _inverse_points(s.landmarks, weights, used)
        box = landmark_box(back if np.isfinite(back).any() else s.landmarks)
        for _ in range(2):
            face = aligner.predict_crops(s.image, box, enlarge=ENLARGE)[0]
            box = landmark_box(face.landmarks)
        preds.append(face.landmarks)
    return np.asarray(preds, dtype=np.float64).reshape(len(samples), -1, 2)


def _inverse_points(gt: np.ndarray, weights: np.ndarray, used: np.ndarray) -> np.ndarray:
    """The annotation's points that are single 300-W points, at those points' places (others NaN)."""
    out = np.full((weights.shape[1], 2), np.nan)
    for t, row in enumerate(weights):
        (idx,) = np.nonzero(row)
        if len(idx) == 1 and used[idx[0]]:
            out[idx[0]] = gt[t]
    return out


def check_set(samples: list, schema_name: str, group_key: str, aligner) -> SetResult:
    """Run the model on ``samples`` (of layout ``schema_name``) and measure every mapped point."""
    from awing.schemas import load_schema, normaliser_distance, point_mapping

    schema = load_schema(schema_name)
    weights = point_mapping("w300_68", schema, partial=True)
    gt = np.stack([s.landmarks for s in samples]).astype(np.float64)
    pred = predict_faces(samples, weights, aligner)
    iod = normaliser_distance(schema, gt, normaliser="inter_ocular")
    errors, offsets = point_errors(pred, gt, weights, iod)
    groups = [s.attributes.get(group_key) for s in samples]
    return SetResult(errors, offsets, groups, schema.point_names, mapped_sources(weights), weights, pred, gt, iod)


def table_rows(
    result: SetResult, groups: dict, reference: tuple[np.ndarray, np.ndarray] | None = None,
    limit: float = BIAS_LIMIT,
) -> list[dict]:
    """One row per mapped point: index, name, 300-W source, median distance over all faces and per group;
    with ``reference`` (:func:`reference_medians`: the model's (N,) median distances and (N, 2) median
    signed offsets for these points on 300-W faces) the reference median and the ratio; the bias (the
    median signed offset, model - annotation, less the reference's, as a length); and the flag: the
    columns (``all``, groups) whose bias exceeds ``limit`` (a fraction of the inter-ocular distance)."""
    labels = np.asarray(result.groups, dtype=object)
    mapped = [i for i, src in enumerate(result.sources) if src]
    columns = {"all": np.ones(len(labels), bool), **{col: labels == value for value, col in groups.items()}}
    iod = np.ones(len(labels)) if result.iod is None else np.asarray(result.iod, float)
    shifts = result.offsets[:, mapped] / iod[:, None, None]  # (M, K, 2)
    own = np.zeros((len(mapped), 2)) if reference is None else np.asarray(reference[1], float)[mapped]
    medians = {col: _medians(result.errors[members][:, mapped]) for col, members in columns.items()}
    bias = {col: _bias(shifts[members], own) for col, members in columns.items()}
    rows = []
    for k, i in enumerate(mapped):
        row = {"point": i, "name": result.names[i], "300-W": result.sources[i]}
        row.update({col: float(values[k]) for col, values in medians.items()})
        if reference is not None:
            row["300-W val"] = float(reference[0][i])
            row["ratio"] = float(medians["all"][k] / reference[0][i])
        row["bias"] = float(bias["all"][k])
        far = [col for col in columns if bias[col][k] > limit]
        row["flag"] = "far above (" + ", ".join(far) + ")" if far else ""
        rows.append(row)
    return rows


def _medians(errors: np.ndarray) -> np.ndarray:
    """(N,) nan-median of (M, N) errors; NaN for a column with no finite value (or no face)."""
    out = np.full(errors.shape[1], np.nan)
    for j in range(errors.shape[1]):
        finite = errors[:, j][np.isfinite(errors[:, j])]
        out[j] = np.median(finite) if len(finite) else np.nan
    return out


def _bias(shifts: np.ndarray, own: np.ndarray) -> np.ndarray:
    """(K,) the length of each point's median signed offset ((M, K, 2) shifts) less ``own`` ((K, 2))."""
    medians = np.stack([_medians(shifts[..., 0]), _medians(shifts[..., 1])], axis=-1)
    return np.linalg.norm(medians - own, axis=-1)


def reference_medians(
    reference: tuple[np.ndarray, np.ndarray, np.ndarray], weights: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """The model's own error on 300-W faces for each point a layout makes from 300-W's (``weights``, (N, 68)):
    ((N,) median normalised distances, (N, 2) median normalised signed offsets, model - annotation).
    ``reference`` is ((M, 68, 2) predictions, (M, 68, 2) annotations, (M,) IODs) of a 300-W run."""
    from awing.schemas import map_points

    pred, gt, iod = reference
    errors, offsets = point_errors(pred, map_points(gt, weights), weights, iod)
    shifts = offsets / np.asarray(iod, float)[:, None, None]
    return _medians(errors), np.stack([_medians(shifts[..., 0]), _medians(shifts[..., 1])], axis=-1)


def markdown_table(title: str, rows: list[dict], faces: int | None = None, note: str = "") -> str:
    """A Markdown table of :func:`table_rows` (distances in % of the inter-ocular distance)."""
    if not rows:
        return f"### {title}\n\nno mapped point\n"
    columns = list(rows[0])
    head = f"### {title}" + (f" ({faces} faces)" if faces is not None else "")
    lines = [head, "", "| " + " | ".join(_header(c) for c in columns) + " |",
             "|" + "|".join("---:" if _numeric(rows, c) else "---" for c in columns) + "|"]
    for row in rows:
        lines.append("| " + " | ".join(_cell(row[c], c) for c in columns) + " |")
    typical = np.median([r["all"] for r in rows])
    less = " less the model's own on 300-W val" if "ratio" in columns else ""
    lines += ["", f"Median of the point medians: {typical * 100:.2f} %. Bias: the median signed offset{less}; far "
              f"above: a bias over {BIAS_LIMIT * 100:g} % IOD in that column."]
    return "\n".join(lines + ([note] if note else [])) + "\n"


def _header(column: str) -> str:
    return column if column in ("point", "name", "300-W", "flag", "ratio") else f"{column} (% IOD)"


def _numeric(rows: list[dict], column: str) -> bool:
    return all(isinstance(r[column], int | float) for r in rows)


def _cell(value, column: str = "") -> str:
    if isinstance(value, float):
        return "—" if not np.isfinite(value) else f"{value:.2f}" if column == "ratio" else f"{value * 100:.2f}"
    return str(value)


def offset_note(result: SetResult) -> str:
    """The mean signed offset, model - annotation, over the single-point correspondences, in pixels and in %
    of the inter-ocular distance (a 1-pixel origin shift shows as about 100 / IOD % against 300-W's row)."""
    single = [i for i, src in enumerate(result.sources) if src and not src.startswith("mean")]
    if not single:
        return "no single-point correspondence"
    offsets = result.offsets[:, single]
    dx, dy = np.nanmean(offsets.reshape(-1, 2), axis=0)
    iod = np.ones(len(offsets)) if result.iod is None else result.iod
    nx, ny = np.nanmean((offsets / iod[:, None, None]).reshape(-1, 2), axis=0) * 100
    return (f"Mean signed offset, model - annotation, over {len(single)} single points: dx {dx:+.2f} px "
            f"({nx:+.2f} % IOD), dy {dy:+.2f} px ({ny:+.2f} % IOD); median IOD {np.median(iod):.0f} px")


def run_set(
    name: str, shared: Path, limit: int, aligner, reference: SetResult | None = None,
    log: Callable[[str], None] = print,
) -> tuple[str, SetResult]:
    """The Markdown of one set of :data:`SETS` (with ``reference``, a 300-W run, its per-point reference)."""
    from awing.data.readers import get_reader, read_dataset

    spec = SETS[name]
    samples = subsample(read_dataset(spec.reader, shared / spec.folder, spec.split), limit)
    result = check_set(samples, get_reader(spec.reader).schema, spec.group_key, aligner)
    ref = None if reference is None else reference_medians(reference.as_reference, result.weights)
    rows = table_rows(result, spec.groups, ref)
    counts = ", ".join(f"{col} {sum(g == v for g in result.groups)}" for v, col in spec.groups.items())
    text = markdown_table(spec.title, rows, len(samples), note=f"{offset_note(result)}. Faces: {counts}.")
    log(text)
    return text, result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sets", nargs="+", choices=list(SETS), default=list(SETS))
    parser.add_argument("--limit", type=int, default=200, help="faces per set, evenly spaced (0: all)")
    parser.add_argument("--out", type=Path, help="also write the tables to this Markdown file")
    parser.add_argument("--model", default=MODEL, help=f"the 68-point model (default {MODEL}: trained on 300-W only)")
    add_shared_argument(parser)
    args = parser.parse_args(argv)
    from awing.app.api import FaceAligner

    aligner = FaceAligner(args.model, detector="full", device="cpu", flip_test=False)
    texts, reference = [], None
    order = ["w300"] + [n for n in args.sets if n != "w300"]  # the reference first, when its data is there
    for name in order:
        folder = args.shared / SETS[name].folder
        if not folder.is_dir():
            if name in args.sets:
                print(f"### {SETS[name].title}\n\nskipped: {folder} not found\n")
            continue
        log = print if name in args.sets else (lambda text: None)
        text, result = run_set(name, args.shared, args.limit, aligner, reference, log)
        reference = result if name == "w300" else reference
        texts += [text] if name in args.sets else []
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text("\n".join(texts))
    return 0


if __name__ == "__main__":
    sys.exit(main())
