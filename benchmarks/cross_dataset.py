"""Every model on every real face set it was not (only) trained on: NME with the dataset's crop and end to end.

    python benchmarks/cross_dataset.py [--models NAME|PATH ...] [--detector opencv] [--limit 200]
                                       [--out runs/cross_dataset] [--refine] [--refine-max-shift F]

Sets (from ../shared/data, or AWING_SHARED_DATA): FDD-14 val, MTFL-5 val, 300-W val (the fixed split of
AFW + HELEN train), AFLW2000-3D val and its large poses (``large_pose``: |yaw| >= 30 degrees, of all its
faces), FG-NET val, SCUT-FBP5500 val, and the in-the-wild fixtures: 8 LFPW / Menpo faces (iBUG .pts), 2
300-W private-test faces and 4 WFLW faces (mmpose COCO JSON). A model is scored on a set of another layout
over the points the schemas map (``from_schemas``): the ground truth is mapped into the model's layout
where possible, else the predictions into the set's (:func:`awing.engine.evaluate.scoring_layout`), with
the scoring layout's inter-ocular normaliser. FG-NET and SCUT map only partly onto 300-W's 68 points: a
68-point model is scored on the 29 / 21 points they share (their inter-ocular points among them); a set no
declared mapping relates to a model's layout is ``n/a``, and is not run.

Three numbers per cell:
- ``crop``: the set's own crop (FDD: its box x2; MTFL: the whole 80 px image; 300-W, AFLW2000-3D and the
  iBUG fixtures: the landmark box + 10 %; FG-NET and SCUT: their own landmark box enlarged to frame faces
  as 300-W's + 10 % does, as configs/cpu/w300_all.yaml crops them; COCO fixtures: their box + 10 %);
- ``tight``: that crop x0.6 with its centre 0.1 of the box lower (the face 1.7x larger in the frame and
  higher: how a tighter detector or another dataset frames faces), on the sets whose own crop is loose
  (FDD, MTFL); "–" on the landmark-box sets, where x0.6 would cut the face off;
- ``e2e``: end to end through ``FaceAligner`` with the detector (default: the default one): the face
  whose box holds the ground truth's centre is scored; a face not found counts as a failure at 100 %.
  With ``--refine``: ``FaceAligner(refine=True)``, a second pass cropped around the first pass's landmarks;
  ``--refine-max-shift``: the rule that drops a second pass which moved the points far (``inf``: never).
Each figure is the mean per-image NME in %, with the faces found end to end. The table goes to stdout and
``OUT/cross_dataset.md`` (+ .json).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

if __package__:  # python -m benchmarks.cross_dataset, or imported
    from benchmarks._common import DATASETS, dataset_root, shared_data, subsample
else:  # python benchmarks/cross_dataset.py
    from _common import DATASETS, dataset_root, shared_data, subsample

from awing.app.api import REFINE_MAX_SHIFT, FaceAligner
from awing.core.checkpoint import load_checkpoint
from awing.core.config import Config, config_from_dict
from awing.data.build import build_dataset, dataset_schema, read_split
from awing.data.dataset import crop_box
from awing.data.hints import inference_hints
from awing.data.readers import get_reader
from awing.engine.evaluate import EvalSettings, evaluate_model, score_predictions, scoring_layout
from awing.method.model import model_from_checkpoint
from awing.pretrained import list_pretrained, resolve_model
from awing.schemas import Schema, load_schema

FAILURE_NME = 1.0  # a face the detector did not find scores 100 %
TIGHT = (0.6, 0.1)  # the `tight` framing: the set's crop x0.6, moved down 0.1 of the box (the face higher)


# Each set's own crop (its configs/cpu config, or the benchmark protocol): (data.crop, data.enlarge).
FDD_CROP, MTFL_CROP, GT_BOX, DATASET_BOX = ("box", 1.0), ("box", 0.0), ("landmarks", 0.1), ("box", 0.1)
# FG-NET's and SCUT's own landmark boxes framed as configs/cpu/w300_all.yaml's sources are (measured against
# the 300-W box + 10 % on 100 faces each: docs/datasets.md): FG-NET's + 12 %; SCUT's (forehead to chin) - 15 %,
# its centre moved down 0.13 of the box's longer side.
FGNET_CROP, SCUT_CROP, SCUT_SHIFT = ("landmarks", 0.12), ("landmarks", -0.15), 0.13
SET_FRAMING = {"SCUT val": (1.0, SCUT_SHIFT)}  # (scale, dy) of crop_nme, by set label
# Sets also scored as their literature does, by the box size sqrt(w * h) (AFLW2000-3D: its 68-point box; the
# inter-ocular distance shrinks on turned faces): ``crop_box`` / ``e2e_box`` in the JSON, a line below the table.
BOX_NORMALISED = ("AFLW2000-3D val", "AFLW2000-3D large pose")


def face_sets(data: Path, workdir: Path) -> dict[str, tuple[str, str, str, tuple[str, float]]]:
    """``{label: (format, root, split, (crop, enlarge))}`` of the real sets that are present."""
    fixtures = data / "fixtures"
    own = (
        ("FDD val", "fdd14", "val", FDD_CROP),
        ("MTFL val", "mtfl5", "val", MTFL_CROP),
        ("300-W val", "w300", "val", GT_BOX),
        ("AFLW2000-3D val", "aflw2000", "val", GT_BOX),
        ("AFLW2000-3D large pose", "aflw2000", "large_pose", GT_BOX),
        ("FG-NET val", "fgnet", "val", FGNET_CROP),
        ("SCUT val", "scut", "val", SCUT_CROP),
    )
    sets = {label: (DATASETS[name].reader, dataset_root(name, data), split, crop) for label, name, split, crop in own}
    lfpw, menpo = fixtures / "lfpw_trainset_samples" / "trainset", fixtures / "menpo_samples"
    if lfpw.is_dir() and menpo.is_dir():  # the iBUG folders, as a w300 root of two subsets
        (workdir / "lfpw").mkdir(parents=True, exist_ok=True)
        for link, target in ((workdir / "lfpw" / "trainset", lfpw), (workdir / "ibug", menpo)):
            if not link.exists():
                link.symlink_to(target, target_is_directory=True)
        sets["wild: LFPW + Menpo"] = ("w300", workdir, "lfpw_train+ibug", GT_BOX)
    sets["wild: 300-W private"] = ("coco", fixtures / "mmpose_samples" / "300w", "test", DATASET_BOX)
    sets["wild: WFLW"] = ("coco", fixtures / "mmpose_samples" / "wflw", "test", DATASET_BOX)
    return {k: (f, str(r), s, c) for k, (f, r, s, c) in sets.items() if Path(r).exists()}


def pct(value: float | None) -> str:
    """A fraction as a percentage with two decimals; "–" for a figure not measured."""
    return "–" if value is None else f"{100 * value:.2f}"


def crop_nme(
    path: Path, fmt: str, root: str, split: str, crop: tuple[str, float], limit: int,
    framing: tuple[float, float] = (1.0, 0.0),
) -> float:
    """Mean NME (fraction) with the set's own crop: :func:`crop_metrics`' ``nme``."""
    return crop_metrics(path, fmt, root, split, crop, limit, framing)["nme"]


def crop_metrics(
    path: Path, fmt: str, root: str, split: str, crop: tuple[str, float], limit: int,
    framing: tuple[float, float] = (1.0, 0.0),
) -> dict:
    """The evaluation metrics (``nme``, ``nme_by_normaliser``, ...) with the set's own crop (``crop``: its
    ``data.crop`` and ``data.enlarge``); ``framing = (scale, dy)``: that crop's side times ``scale`` and
    its centre moved down by ``dy`` x the box's longer side (``(0.6, 0.1)``: the face 1.7x larger in the
    frame and higher, as a tighter detector frames it)."""
    ckpt = load_checkpoint(path)
    model, schema, codec = model_from_checkpoint(ckpt)
    cfg = config_from_dict(ckpt["config"]) if ckpt.get("config") else Config()
    cfg.data.crop, cfg.data.enlarge = crop
    cfg.data.sources = []
    samples = subsample(read_split(cfg.data, split, fmt, root), limit)
    layout = dataset_schema(cfg.data, samples, fmt, root)
    crop_rule = inference_hints(ckpt).crop
    scale, dy = framing
    if (scale, dy) != (1.0, 0.0):
        moved = []
        for s in samples:
            box = crop_box(s, cfg.data.crop)
            shift = dy * float(max(box[2] - box[0], box[3] - box[1]))
            moved.append(dataclasses.replace(s, box=box + np.float32([0, shift, 0, shift])))
        samples, crop_rule = moved, None
        cfg.data.crop, cfg.data.enlarge = "box", (1 + crop[1]) * scale - 1
    dataset = build_dataset(cfg, samples, layout, codec.input_size, crop_rule=crop_rule)
    return evaluate_model(model, codec, dataset, schema, EvalSettings.from_config(cfg), torch.device("cpu")).metrics


def end_to_end(
    aligner: FaceAligner, fmt: str, root: str, split: str, limit: int, normalisers: tuple[str, ...] = ()
) -> tuple[float, int, int, float, dict[str, float]]:
    """Mean NME (fraction; misses count as 1.0), faces found, faces, ms per image (detect + landmarks),
    and the mean NME under each of ``normalisers`` (the scoring layout's, e.g. ``box``; misses at 1.0)."""
    cfg = Config()
    samples = subsample(read_split(cfg.data, split, fmt, root), limit)
    layout = dataset_schema(cfg.data, samples, fmt, root)
    settings = EvalSettings()
    nmes, found, seconds = [], 0, 0.0
    others: dict[str, list[float]] = {name: [] for name in normalisers}
    for s in samples:
        gt = np.asarray(s.landmarks, dtype=np.float64)[None]
        centre = np.nanmean(gt[0], axis=0)
        t0 = time.perf_counter()
        faces = aligner.predict(s.image)
        seconds += time.perf_counter() - t0
        hits = [f for f in faces if f.box[0] <= centre[0] <= f.box[2] and f.box[1] <= centre[1] <= f.box[3]]
        if not hits:
            nmes.append(FAILURE_NME)
            for values in others.values():
                values.append(FAILURE_NME)
            continue
        face = min(hits, key=lambda f: np.linalg.norm((f.box[:2] + f.box[2:]) / 2 - centre))
        box = crop_box(s, "landmarks")[None]
        metrics = score_predictions(face.landmarks[None].astype(np.float64), gt, aligner.schema, layout, settings, box)
        nmes.append(float(metrics["per_image_nme"][0]))
        for name, values in others.items():
            values.append(float(metrics["nme_by_normaliser"][name]))
        found += 1
    means = {name: float(np.mean(values)) for name, values in others.items()}
    return float(np.mean(nmes)), found, len(samples), 1000 * seconds / max(1, len(samples)), means


def scored_points(model: Schema, fmt: str) -> str | None:
    """``"29 of 68"``: how many of a set's points a model is scored on, where its layout maps only partly
    (None: all of them, or a layout only the data's files say).

    Raises:
        ValueError: no declared mapping relates the two layouts (or none shares a point).
    """
    name = get_reader(fmt).schema
    if not name:
        return None
    scoring = scoring_layout(model, load_schema(name))
    return None if scoring.shared is None else f"{int(scoring.shared.sum())} of {scoring.layout.num_points}"


def score_set(path: Path, aligner: FaceAligner, set_name: str, spec: tuple, limit: int) -> dict:
    """One table cell: ``crop``, ``tight``, ``e2e`` NME, ``found`` / ``faces``, ``ms`` per image (and
    ``points`` where only some are scored, ``crop_box`` / ``e2e_box`` for :data:`BOX_NORMALISED` sets), or
    ``{"error": ...}`` where no declared mapping relates the model's and the set's layouts."""
    fmt, root, split, set_crop = spec
    boxed = ("box",) if set_name in BOX_NORMALISED else ()
    try:
        points = scored_points(aligner.schema, fmt)  # before any work: n/a costs nothing
        crop = crop_metrics(path, fmt, root, split, set_crop, limit, SET_FRAMING.get(set_name, (1.0, 0.0)))
        loose = set_crop in (FDD_CROP, MTFL_CROP)  # a landmark box x0.6 would cut the face off
        tight = crop_nme(path, fmt, root, split, set_crop, limit, TIGHT) if loose else None
        e2e, found, total, ms, e2e_by = end_to_end(aligner, fmt, root, split, limit, boxed)
    except ValueError as err:  # no mapping between the layouts
        return {"error": str(err)}
    row = {"crop": crop["nme"], "tight": tight, "e2e": e2e, "found": found, "faces": total, "ms": ms}
    if points:
        row["points"] = points
    if boxed:
        row["crop_box"], row["e2e_box"] = crop["nme_by_normaliser"]["box"], e2e_by["box"]
    return row


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--models", nargs="*", help="shipped names or checkpoint paths (default: every shipped model)")
    p.add_argument("--detector", default=None, help="the end-to-end detector (default: FaceAligner's, BlazeFace)")
    p.add_argument("--limit", type=int, default=200, help="faces per set, evenly spaced (0: all)")
    p.add_argument("--out", default="runs/cross_dataset")
    p.add_argument("--threads", type=int, default=None)
    p.add_argument(
        "--refine",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="end to end with a second pass around the first pass's landmarks, or not (default: FaceAligner's)",
    )
    p.add_argument(
        "--refine-max-shift", type=float, default=None, metavar="FRACTION",
        help="keep a second pass only if it moved the points by at most this fraction of the box "
        f"(default {REFINE_MAX_SHIFT}; inf: always keep it)",
    )
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    models = args.models or [m["name"] for m in list_pretrained()]
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    results: dict[str, dict] = {}
    with tempfile.TemporaryDirectory() as tmp:
        sets = face_sets(shared_data(), Path(tmp))
        for name in models:
            path = resolve_model(name)
            options = {"detector": args.detector, "refine": args.refine, "refine_max_shift": args.refine_max_shift}
            aligner = FaceAligner(path, device="cpu", **{k: v for k, v in options.items() if v is not None})
            file = Path(name)
            label = name if not file.suffix else file.stem
            if file.stem in ("best", "last"):  # a run's checkpoint: name it by its run folder
                label = f"{file.parent.name}/{file.stem}"
            results[label] = {}
            for set_name, spec in sets.items():
                row = score_set(path, aligner, set_name, spec, args.limit)
                results[label][set_name] = row
                if "error" not in row:
                    on = f" on {row['points']} points" if "points" in row else ""
                    print(f"{label} on {set_name}{on}: crop {pct(row['crop'])} %, tight {pct(row['tight'])} %, "
                          f"e2e {100 * row['e2e']:.2f} % ({row['found']}/{row['faces']} found, "
                          f"{row['ms']:.0f} ms/image)", flush=True)
    set_names = list(next(iter(results.values())).keys()) if results else []
    lines = [
        f"NME % (inter-ocular of the scoring layout), up to {args.limit or 'all'} faces per set; "
        f"`crop`: the set's box, `tight`: that crop x{TIGHT[0]:g} moved down {TIGHT[1]:g} of the box, "
        f"`e2e`: {args.detector or 'the default'} detector + model"
        f"{'' if args.refine is None else ' + refine pass' if args.refine else ', one pass'}, "
        "misses at 100 % (found / faces). FG-NET and SCUT: over the points their layouts share with the "
        "model's (29 / 21 of 300-W's 68).",
        "",
        "| model | " + " | ".join(set_names) + " |",
        "|---|" + "---|" * len(set_names),
    ]
    for label, row in results.items():
        cells = []
        for set_name in set_names:
            r = row[set_name]
            figures = f"{pct(r['crop'])} / {pct(r['tight'])} / {pct(r['e2e'])}" if "error" not in r else ""
            cells.append(f"{figures} ({r['found']}/{r['faces']})" if figures else "n/a")
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    boxed = [f"{label} on {name} {pct(r['crop_box'])} / {pct(r['e2e_box'])}" for label, row in results.items()
             for name, r in row.items() if "crop_box" in r]
    if boxed:
        lines += ["", "NME % of the box size sqrt(w x h) of the ground truth's landmark box (AFLW2000-3D's usual "
                  "normaliser), `crop` / `e2e`: " + "; ".join(boxed) + "."]
    text = "\n".join(lines) + "\n"
    print("\n" + text)
    (out / "cross_dataset.md").write_text(text)
    (out / "cross_dataset.json").write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
