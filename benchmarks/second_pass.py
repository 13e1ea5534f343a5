"""Where the second pass pays: NME end to end and ms per face with it always, never, and by ``refine="auto"``'s rule.

    python benchmarks/second_pass.py [--models NAME ...] [--limit N] [--threads 1] [--out runs/second_pass]

Sets: those of benchmarks/cross_dataset.py (FDD-14 val, MTFL-5 val, 300-W val: awing's fixed ``val`` split,
and the in-the-wild 68-point fixtures), from ../shared/data or $AWING_SHARED_DATA. Each model (default: the
shipped models whose ``refine="auto"`` can run a second pass, the default one first) runs every photo end to
end with the default detector in three pipelines, ``FaceAligner(refine="never" | "always" | "auto")``, in turn
(the order rotated by one per photo, one thread), each timed on the decoded RGB image (``predict``); a face not
found scores 100 % as in cross_dataset.py (the same face is scored in all three: the detector is the same).

The rule (:func:`awing.app.api.second_pass_pays`): a face's second pass runs when the crop it would take and
the first pass's crop overlap less than a cut (IoU). Each face's IoU is read off its first pass
(:meth:`FaceAligner.crop_squares`, not timed), so the NME of every cut of ``--cuts`` is the first pass's NME
where IoU >= cut and the second's below: the sweep needs no further runs. ``auto`` is the shipped cut
(:data:`awing.app.api.REFINE_MIN_IOU`), run for real: its NME must equal the sweep's at that cut.

Figures: mean per-image NME in % (inter-ocular of the scoring layout, misses at 100 %), the share of faces
whose second pass ran, and ms per found face (the sum of the pipeline's times over the faces the detector found).
Tables on stdout and in OUT/second_pass.md (+ .json).
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

if __package__:  # python -m benchmarks.second_pass, or imported
    from benchmarks._common import shared_data, subsample
    from benchmarks.cross_dataset import FAILURE_NME, face_sets
else:  # python benchmarks/second_pass.py
    from _common import shared_data, subsample
    from cross_dataset import FAILURE_NME, face_sets

from awing.app.api import REFINE_MIN_IOU, FaceAligner, load_rgb
from awing.core.boxes import box_iou
from awing.core.config import Config
from awing.data.build import dataset_schema, read_split
from awing.engine.evaluate import common_layout
from awing.engine.metrics import per_image_nme
from awing.schemas import normaliser_distance

PIPELINES = ("never", "always", "auto")
CUTS = (0.5, 0.6, 0.7, 0.75, 0.8, 0.85, 0.88, 0.9, 0.92, 0.95, 0.97)
DEFAULT_MODELS = ("w300-1hg-tiny", "fdd14-1hg-tiny")


def face_nme(aligner: FaceAligner, faces: list, gt: np.ndarray, layout) -> tuple[float, int | None]:
    """The NME (fraction) of the face whose box holds the ground truth's centre (the nearest such), and its
    index; ``(FAILURE_NME, None)`` when no box holds it."""
    centre = np.nanmean(gt, axis=0)
    hits = [k for k, f in enumerate(faces) if f.box[0] <= centre[0] <= f.box[2] and f.box[1] <= centre[1] <= f.box[3]]
    if not hits:
        return FAILURE_NME, None
    k = min(hits, key=lambda i: np.linalg.norm((faces[i].box[:2] + faces[i].box[2:]) / 2 - centre))
    scored, pred, truth = common_layout(aligner.schema, layout, faces[k].landmarks[None].astype(np.float64), gt[None])
    return float(per_image_nme(pred, truth, normaliser_distance(scored, truth))[0]), k


def run_set(aligners: dict[str, FaceAligner], samples: list, layout) -> list[dict]:
    """One record per annotated face: ``nme`` and ``ms`` per pipeline, ``faces`` (found in its photo) and
    ``iou`` (of its two crops; NaN when not found or no second crop)."""
    records = []
    for i, sample in enumerate(samples):
        rgb = load_rgb(sample.image)
        gt = np.asarray(sample.landmarks, np.float64)
        order = PIPELINES[i % 3 :] + PIPELINES[: i % 3]
        row: dict = {"nme": {}, "ms": {}}
        for name in order:
            t0 = time.perf_counter()
            faces = aligners[name].predict(rgb, color="RGB")
            row["ms"][name] = 1000 * (time.perf_counter() - t0)
            row["nme"][name], k = face_nme(aligners[name], faces, gt, layout)
            if name == "never":
                row["faces"] = len(faces)
                first, second = aligners[name].crop_squares(faces[k]) if k is not None else (None, None)
                row["iou"] = float(box_iou(first, second)[0, 0]) if second is not None else float("nan")
        records.append(row)
    return records


def summarise(records: list[dict], cuts: tuple[float, ...]) -> dict:
    """Mean NME per pipeline and per cut of the rule, the share of found faces each cut refines, ms per face."""
    nme = {p: np.array([r["nme"][p] for r in records]) for p in PIPELINES}
    iou = np.array([r["iou"] for r in records])
    found = np.isfinite(iou)
    faces = max(1, sum(r["faces"] for r in records))
    out = {f"{p}_nme": float(nme[p].mean()) for p in PIPELINES}
    out.update({f"{p}_ms": sum(r["ms"][p] for r in records) / faces for p in PIPELINES})
    out["found"], out["faces"] = int(found.sum()), len(records)
    out["median_iou"] = float(np.median(iou[found])) if found.any() else float("nan")
    for cut in cuts:
        run = found & (iou < cut)
        out[f"rule@{cut:g}_nme"] = float(np.where(run, nme["always"], nme["never"]).mean())
        out[f"rule@{cut:g}_share"] = float(run.sum() / max(1, found.sum()))
    return out


def table(results: dict, cuts: tuple[float, ...]) -> str:
    """The Markdown tables: NME and ms per face per pipeline, then the sweep of cuts (NME, share refined)."""
    lines = [
        f"NME % end to end (default detector); ms per found face; auto = the shipped cut {REFINE_MIN_IOU:g}.",
        "",
        "| model | set | faces (found) | median IoU | never | always | auto | ms never | ms always | ms auto |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for model, sets in results.items():
        for name, s in sets.items():
            lines.append(
                f"| {model} | {name} | {s['faces']} ({s['found']}) | {s['median_iou']:.3f} | "
                + " | ".join(f"{100 * s[f'{p}_nme']:.2f}" for p in PIPELINES)
                + " | " + " | ".join(f"{s[f'{p}_ms']:.1f}" for p in PIPELINES) + " |"
            )
    lines += ["", "Rule sweep: NME % (share of found faces refined) for each IoU cut.", ""]
    lines += ["| model | set | " + " | ".join(f"< {c:g}" for c in cuts) + " |", "|---|---|" + "---|" * len(cuts)]
    for model, sets in results.items():
        for name, s in sets.items():
            cells = [f"{100 * s[f'rule@{c:g}_nme']:.2f} ({100 * s[f'rule@{c:g}_share']:.0f} %)" for c in cuts]
            lines.append(f"| {model} | {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--models", nargs="*", default=list(DEFAULT_MODELS), help="shipped names or checkpoint paths")
    p.add_argument("--limit", type=int, default=0, help="faces per set, evenly spaced (0: all)")
    p.add_argument("--threads", type=int, default=1, help="torch's (and ONNX Runtime's) threads (default 1)")
    p.add_argument("--sets", nargs="*", default=None, help="set labels to run (default: all present)")
    p.add_argument("--cuts", type=float, nargs="*", default=list(CUTS), help="IoU cuts of the sweep")
    p.add_argument("--out", default="runs/second_pass")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    cuts = tuple(sorted(set(args.cuts) | {REFINE_MIN_IOU}))
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    results: dict[str, dict] = {}
    with tempfile.TemporaryDirectory() as tmp:  # the fixtures' links live here: the runs too
        data = {}  # every set read first: the readers load once, before any timing
        for name, (fmt, root, split, _) in face_sets(shared_data(), Path(tmp)).items():
            if not args.sets or name in args.sets:
                samples = subsample(read_split(Config().data, split, fmt, root), args.limit)
                data[name] = (samples, dataset_schema(Config().data, samples, fmt, root))
        for model in args.models:
            aligners = {r: FaceAligner(model, device="cpu", refine=r, threads=args.threads) for r in PIPELINES}
            results[Path(model).stem] = {}
            for name, (samples, layout) in data.items():
                summary = summarise(run_set(aligners, samples, layout), cuts)
                results[Path(model).stem][name] = summary
                print(f"{model} on {name}: " + ", ".join(f"{p} {100 * summary[f'{p}_nme']:.2f} %" for p in PIPELINES),
                      flush=True)
                (out / "second_pass.json").write_text(json.dumps(results, indent=1))  # each set as it ends
    text = table(results, cuts)
    print("\n" + text)
    (out / "second_pass.md").write_text(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
