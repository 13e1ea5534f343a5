"""Inference speed and accuracy on the CPU: awing's models in fp32, bf16 + channels_last and ONNX Runtime
(optionally torch.compile), against dlib's 68-point shape predictor.

    python benchmarks/inference.py                          # default: about 1 minute on 2 idle cores
    python benchmarks/inference.py --iters 20 --batch-iters 5 --compile
    python benchmarks/inference.py --models awing-1hg-small --no-accuracy

Speed: the model's forward pass on random input (random weights; speed does not depend on them) for the
presets and the shipped models: latency at batch 1 and throughput at batch 16, with each mode's
ratio to fp32 eager. Times are the best of ``--iters`` (``--batch-iters``) runs after one warm-up run.
End to end: one photo through ``FaceAligner.predict`` (Haar detection, crop, forward, decode) vs dlib
(HOG detection + 68-point predictor).

Accuracy (needs ../shared/data, or AWING_SHARED_DATA): NME (inter-ocular, % of the eye-corner distance for
FDD-14, of the eye-centre distance for MTFL-5, of the outer eye corners for 300-W) on FDD val, the MTFL
hold-out and the 300-W val split, for the shipped models and for dlib (``pip install dlib-bin
face-recognition-models``; HOG boxes, as its predictor was trained on them). dlib's 68 points (iBUG 300-W
order, 0-based) are mapped onto the smaller layouts by the schemas' declared mappings (``from_schemas``
in awing/schemas/fdd14.yaml and mtfl5.yaml), which are:

    FDD-14: 0 brow outer <- 17, 1 brow inner <- 21, 2 <- 22, 3 <- 26, 4 eye outer <- 36,
            5 eye centre <- mean(36..41), 6 eye inner <- 39, 7 <- 42, 8 <- mean(42..47), 9 <- 45,
            10 nose tip <- 30, 11 mouth corner <- 48, 12 upper lip centre <- 62, 13 <- 54
    MTFL-5: 0 eye centre <- mean(36..41), 1 <- mean(42..47), 2 nose tip <- 30, 3 <- 48, 4 <- 54

FDD's "upper lip centre" lies on the mouth line, so it maps to dlib's inner-lip point 62 (on 100 FDD val
faces: 5.8% NME for 62, 8.2% for the outer-lip point 51); "nose tip" maps to 30 (5.0%; 33, the base of
the nose, 17%). Faces a detector misses are counted in the "found" column and left out of the NME; the
"common" NME compares every method on the faces all of them found.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import importlib.util
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

if __package__:  # python -m benchmarks.inference, or imported
    from benchmarks._common import DATASETS, dataset_root, read_samples, shared_data
else:  # python benchmarks/inference.py
    from _common import DATASETS, dataset_root, read_samples, shared_data

from awing.app.api import FaceAligner
from awing.app.export import export_onnx
from awing.core.checkpoint import load_checkpoint, save_checkpoint
from awing.core.device import inference_dtype
from awing.core.images import load_image
from awing.engine.metrics import per_image_nme
from awing.method.model import create_model, model_from_checkpoint, model_payload
from awing.pretrained import list_pretrained
from awing.schemas import load_schema, map_points, normaliser_distance, point_mapping

PRESETS = ["awing-1hg", "awing-2hg", "awing-4hg", "awing-1hg-small", "awing-2hg-small"]
ACCURACY_SETS = ("fdd14", "mtfl5", "w300")  # their val splits (benchmarks/_common.py: DATASETS)


def best_time(fn, iters: int, warmup: int = 1) -> float:
    """Shortest wall time of ``fn()`` in seconds over ``iters`` runs after ``warmup`` runs (the minimum is
    the figure least disturbed by other processes on a shared machine)."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(iters):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


# ------------------------------------------------------------------------------------------------ speed
def runners(model: torch.nn.Module, schema, onnx_dir: Path, compile_: bool) -> dict:
    """mode -> ``f(x)`` running the last stack's heatmaps; None where a mode is unavailable."""
    bf16 = inference_dtype(torch.device("cpu"))

    def eager(m, dtype):
        def run(x):
            ctx = torch.autocast("cpu", dtype=dtype) if dtype else contextlib.nullcontext()
            with torch.inference_mode(), ctx:
                return m(x.contiguous(memory_format=torch.channels_last) if dtype else x)[-1]

        return run

    out = {"fp32": eager(model, None), "bf16+CL": None, "onnxrt": None, "compile": None}
    fast_model = None
    if bf16 is not None:
        fast_model = copy.deepcopy(model).eval().to(memory_format=torch.channels_last)
        out["bf16+CL"] = eager(fast_model, bf16)
    if importlib.util.find_spec("onnxruntime"):
        import onnxruntime as ort

        path = export_onnx(model, schema, onnx_dir / "model.onnx")
        options = ort.SessionOptions()
        options.intra_op_num_threads = torch.get_num_threads()
        session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        out["onnxrt"] = lambda x: session.run(None, {"image": x.numpy()})[0]
    if compile_:
        compiled = torch.compile(fast_model or model)
        out["compile"] = eager(compiled, bf16)
    return out


def speed_rows(models: dict, args) -> list[list[str]]:
    rows = []
    for label, (model, schema) in models.items():
        s = model.spec.input_size
        with tempfile.TemporaryDirectory() as tmp:
            modes = runners(model, schema, Path(tmp), args.compile)
            b1, b16 = torch.rand(1, 3, s, s), torch.rand(args.batch, 3, s, s)
            lat, thr = {}, {}
            for mode, fn in modes.items():
                if fn is None:
                    continue
                t0 = time.perf_counter()
                fn(b1)  # first call: compile / allocate (timed separately for torch.compile)
                if mode == "compile":
                    print(f"  {label}: torch.compile first call {time.perf_counter() - t0:.0f} s", flush=True)
                lat[mode] = best_time(lambda fn=fn, x=b1: fn(x), args.iters) * 1000
                thr[mode] = args.batch / best_time(lambda fn=fn, x=b16: fn(x), args.batch_iters)
        row = [label, f"{s}", f"{sum(p.numel() for p in model.parameters()) / 1e6:.2f}M"]
        for mode in ("fp32", "bf16+CL", "onnxrt", "compile"):
            if mode == "compile" and not args.compile:
                continue
            if mode not in lat:
                row += ["n/a", "n/a"]
                continue
            r_lat, r_thr = lat["fp32"] / lat[mode], thr[mode] / thr["fp32"]
            ratio = mode != "fp32"
            row.append(f"{lat[mode]:.1f}" + (f" ({r_lat:.2f}x)" if ratio else ""))
            row.append(f"{thr[mode]:.1f}" + (f" ({r_thr:.2f}x)" if ratio else ""))
        rows.append(row)
        print(f"  timed {label}", file=sys.stderr, flush=True)
    return rows


def dlib_predictor():
    """(detector, 68-point shape predictor), or None when dlib / face-recognition-models are missing."""
    spec = importlib.util.find_spec("face_recognition_models")
    if importlib.util.find_spec("dlib") is None or spec is None:
        return None
    import dlib

    dat = Path(spec.origin).parent / "models" / "shape_predictor_68_face_landmarks.dat"
    return dlib.get_frontal_face_detector(), dlib.shape_predictor(str(dat))


def dlib_points(detector_predictor, rgb: np.ndarray, near: np.ndarray | None = None) -> np.ndarray | None:
    """(68, 2) points of the HOG face nearest ``near`` (or the first), or None if no face is found."""
    detector, predictor = detector_predictor
    rects = detector(rgb, 1)
    if len(rects) == 0:
        return None

    def centre(r) -> np.ndarray:
        return np.array([(r.left() + r.right()) / 2, (r.top() + r.bottom()) / 2])

    rect = rects[0] if near is None else min(rects, key=lambda r: np.linalg.norm(centre(r) - near))
    return np.array([[p.x, p.y] for p in predictor(rgb, rect).parts()], dtype=np.float64)


def end_to_end_rows(aligners: dict, photo: np.ndarray, dlib_pair, iters: int) -> list[list[str]]:
    """Per-image time of the whole pipeline on one photo."""
    rows = []
    for label, aligner in aligners.items():
        det = best_time(lambda a=aligner: a.detector.detect(photo), iters) * 1000
        total = best_time(lambda a=aligner: a.predict(photo), iters) * 1000
        rows.append([label, f"{det:.1f}", f"{total - det:.1f}", f"{total:.1f}"])
    if dlib_pair is not None:
        detector, predictor = dlib_pair
        det = best_time(lambda: detector(photo, 1), iters) * 1000
        total = best_time(lambda: dlib_points(dlib_pair, photo), iters) * 1000
        rows.append(["dlib HOG + 68-pt predictor", f"{det:.1f}", f"{total - det:.1f}", f"{total:.1f}"])
    return rows


# --------------------------------------------------------------------------------------------- accuracy
def accuracy_rows(dataset: str, data: Path, split: str, models: list[dict], dlib_pair, limit):
    """One row per method on up to ``limit`` faces of ``dataset`` (a key of ``DATASETS``), evenly spaced."""
    samples = read_samples(dataset, split, data, limit)
    schema_name = DATASETS[dataset].schema
    schema = load_schema(schema_name)
    gt = np.stack([s.landmarks for s in samples]).astype(np.float64)
    norm = normaliser_distance(schema, gt)
    preds: dict[str, np.ndarray] = {}  # method -> (B, N, 2), NaN where the face was not found
    for m in models:
        for detector, fast in (("full", True), ("full", False), ("blazeface", True), ("opencv", True)):
            aligner = FaceAligner(m["name"], device="cpu", detector=detector, fast=fast)
            pred = np.full_like(gt, np.nan)
            for i, s in enumerate(samples):
                faces = aligner.predict(s.image)
                if faces:
                    centres = [np.mean(f.landmarks, axis=0) for f in faces]
                    k = int(np.argmin([np.linalg.norm(c - np.nanmean(s.landmarks, 0)) for c in centres]))
                    pred[i] = faces[k].landmarks
            precision = "fp32" if aligner.dtype is None else "fast"
            preds[f"{m['name']} ({detector} box, {precision})"] = pred
    if dlib_pair is not None:
        pred = np.full_like(gt, np.nan)
        for i, s in enumerate(samples):
            p68 = dlib_points(dlib_pair, load_image(s.image), near=np.nanmean(s.landmarks, 0))
            if p68 is not None:
                pred[i] = map_points(p68, point_mapping("w300_68", schema_name))  # the schemas' mapping
        preds["dlib 68-pt (HOG box)" + (", mapped" if schema_name != "w300_68" else "")] = pred
    found = {k: np.isfinite(p).all(axis=(1, 2)) for k, p in preds.items()}
    common = np.logical_and.reduce(list(found.values())) if found else np.zeros(0, bool)
    rows = []
    for k, p in preds.items():
        f = found[k]
        nme = per_image_nme(p[f], gt[f], norm[f]) * 100 if f.any() else np.full(1, np.nan)
        nme_c = per_image_nme(p[common], gt[common], norm[common]).mean() * 100 if common.any() else np.nan
        row = [k, f"{f.sum()}/{len(f)}", f"{nme.mean():.2f}", f"{np.median(nme):.2f}"]
        rows.append(row + [f"{nme_c:.2f} (n={common.sum()})"])
    return rows


# ------------------------------------------------------------------------------------------------ output
def table(header: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    line = lambda r: "| " + " | ".join(str(c).ljust(w) for c, w in zip(r, widths)) + " |"  # noqa: E731
    return "\n".join([line(header), "|" + "|".join("-" * (w + 2) for w in widths) + "|", *map(line, rows)])


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--models", nargs="*", default=PRESETS, help=f"presets to time (default {' '.join(PRESETS)})")
    p.add_argument("--points", type=int, default=98, help="landmarks of the preset models (default 98, WFLW)")
    p.add_argument("--iters", type=int, default=5, help="timed batch-1 runs per mode (default 5)")
    p.add_argument("--batch", type=int, default=16, help="throughput batch size (default 16)")
    p.add_argument("--batch-iters", type=int, default=1, help="timed batch runs per mode (default 1)")
    p.add_argument("--compile", action="store_true", help="also time torch.compile of the fastest eager mode (slow)")
    p.add_argument("--no-accuracy", action="store_true", help="skip the accuracy section")
    p.add_argument("--no-speed", action="store_true", help="skip the speed sections")
    p.add_argument("--acc-limit", type=int, default=200, help="faces per accuracy test set (default 200)")
    p.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)

    bf16 = inference_dtype(torch.device("cpu"))
    print(f"$ python benchmarks/{Path(__file__).name} {' '.join(sys.argv[1:] if argv is None else argv)}")
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {platform.processor() or platform.machine()}"
          f", native bf16: {'yes' if bf16 else 'no (bf16 column n/a)'}")

    models = {}
    for name in args.models:
        models[name] = (create_model(name, args.points).eval(), None)
    shipped = list_pretrained()
    for m in shipped:
        models[f"shipped {m['name']}"] = model_from_checkpoint(load_checkpoint(m["path"]))[:2]
    for label, (model, schema) in list(models.items()):
        models[label] = (model, schema or _fake_schema(model.spec.num_points))

    dlib_pair = dlib_predictor()
    data = shared_data()
    if not args.no_speed:
        speed_sections(models, shipped, dlib_pair, data, args)
    if args.no_accuracy:
        return 0
    accuracy_sections(shipped, dlib_pair, data, args)
    return 0


def speed_sections(models: dict, shipped: list, dlib_pair, data: Path, args) -> None:
    print(f"\n## Forward pass: batch-1 latency (ms) and batch-{args.batch} throughput (img/s); (x) = vs fp32")
    header = ["model", "input", "params", "fp32 ms", "fp32 img/s", "bf16+CL ms", "bf16+CL img/s"]
    header += ["onnxrt ms", "onnxrt img/s"] + (["compile ms", "compile img/s"] if args.compile else [])
    print(table(header, speed_rows(models, args)), flush=True)
    photo_path = dataset_root("fdd14", data) / "images" / "simple_0001.jpg"
    photo = load_image(photo_path) if photo_path.is_file() else _synthetic_photo()
    with tempfile.TemporaryDirectory() as tmp:
        if shipped:
            aligners = {f"awing {m['name']} (BlazeFace + crop + model)": FaceAligner(m["name"], device="cpu")
                        for m in shipped}
        else:
            aligners = {}
            for name in ("awing-1hg-small", "awing-1hg"):
                model = create_model(name, 14)
                path = save_checkpoint(Path(tmp) / f"{name}.pt", model_payload(model, load_schema("fdd14")))
                aligners[f"{name} random weights (BlazeFace + crop + model)"] = FaceAligner(path, device="cpu")
        print(f"\n## End to end, one {photo.shape[1]}x{photo.shape[0]} photo, ms per image")
        rows = end_to_end_rows(aligners, photo, dlib_pair, args.iters)
        print(table(["pipeline", "detect", "landmarks", "total"], rows))
    if dlib_pair is None:
        print("(dlib rows skipped: pip install dlib-bin face-recognition-models)")


def accuracy_sections(shipped: list, dlib_pair, data: Path, args) -> None:
    print(f"\n## Accuracy: NME % (inter-ocular), up to {args.acc_limit} faces per set")
    split = "val"
    for name in ACCURACY_SETS:
        dataset, root, schema_name = DATASETS[name].reader, dataset_root(name, data), DATASETS[name].schema
        ours = [m for m in shipped if m["schema"] == schema_name]
        if not root.is_dir():
            print(f"- {dataset} {split}: skipped ({root} absent; set AWING_SHARED_DATA)")
            continue
        if not ours and dlib_pair is None:
            print(f"- {dataset} {split}: skipped (no shipped {schema_name} model and no dlib)")
            continue
        rows = accuracy_rows(name, data, split, ours, dlib_pair, args.acc_limit)
        print(f"\n{dataset} {split} ({schema_name})" + ("" if ours else f": no shipped {schema_name} model yet"))
        print(table(["method", "found", "NME % (found)", "median", "NME % (common)"], rows))


def _fake_schema(num_points: int):
    """A placeholder layout for timing preset models (export needs names only)."""
    from awing.schemas import Schema

    return Schema.from_dict(
        {
            "name": f"any{num_points}",
            "num_points": num_points,
            "default_normaliser": "box",
            "normalisers": {"box": {"kind": "box"}},
        }
    )


def _synthetic_photo() -> np.ndarray:
    rng = np.random.default_rng(0)
    return rng.integers(0, 256, (480, 640, 3), dtype=np.uint8)


if __name__ == "__main__":
    sys.exit(main())
