"""Precision and backend on the CPU: how far bf16 moves the points against fp32, and what each path costs.

    python benchmarks/precision.py [--model w300-1hg-tiny] [--limit 0] [--repeats 3] [--threads 1]

Paths (rows): ``torch fp32`` (``FaceAligner(backend="torch", fast=False)``), ``torch bf16`` (``backend="torch"``,
bf16 autocast + channels_last where the CPU has native bf16, :func:`awing.core.device.inference_dtype`) and
``onnxruntime`` (``backend="onnx"``, fp32, ``threads`` intra-op threads).

Points: on 300-W val (awing's fixed ``val`` split, 145 faces, from ../shared/data or $AWING_SHARED_DATA), each
path's points against torch fp32's on the same face: ``first pass`` with the default detector's boxes and
``refine="never"`` (the model's own precision), ``default`` with ``refine="auto"`` (the second pass's crop
follows the first pass's points, so a moved point can move its crop). Figures: the share of points within
0.5 px of fp32's, and the 50th / 95th / 99th percentile and the largest distance in pixels.

Time, one thread, all paths in turn on every item (the order rotated by one per item, after one untimed
warm-up), so a busy machine slows all alike: ``forward``: ``landmarks_in_crops`` on one face's crop (batch 1:
forward pass + decode), ``repeats`` times per face; ``batch 8``: eight faces' crops in one call; ``photo``:
``predict`` on the decoded photo (detector, crop, model, second pass). Median ms and the ratio to torch fp32.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

if __package__:  # python -m benchmarks.precision, or imported
    from benchmarks._common import read_samples
else:  # python benchmarks/precision.py
    from _common import read_samples

from awing.app.api import FaceAligner, load_rgb

PATHS = {
    "torch fp32": {"backend": "torch", "fast": False},
    "torch bf16": {"backend": "torch", "fast": True},
    "onnxruntime": {"backend": "onnx"},
}


def aligners(model: str, threads: int, refine: str) -> dict[str, FaceAligner]:
    """One :class:`FaceAligner` per path of :data:`PATHS` (the bf16 row is skipped without native bf16)."""
    out = {}
    for name, options in PATHS.items():
        extra = {"threads": threads} if options["backend"] == "onnx" else {}
        aligner = FaceAligner(model, device="cpu", refine=refine, **options, **extra)
        if name == "torch bf16" and aligner.dtype is None:
            print("no native bf16 on this CPU: the torch bf16 row is fp32 and is skipped")
            continue
        out[name] = aligner
    return out


def movement(paths: dict[str, FaceAligner], rgbs: list[np.ndarray]) -> dict[str, np.ndarray]:
    """Per path, each point's distance (px) to torch fp32's point on the same face (faces by detector order)."""
    moved: dict[str, list] = {name: [] for name in paths if name != "torch fp32"}
    for rgb in rgbs:
        reference = paths["torch fp32"].predict(rgb, color="RGB")
        for name in moved:
            faces = paths[name].predict(rgb, color="RGB")
            for a, b in zip(reference, faces):
                moved[name].append(np.linalg.norm(b.landmarks - a.landmarks, axis=1))
    return {name: np.concatenate(v) if v else np.zeros(0) for name, v in moved.items()}


def timed(paths: dict[str, FaceAligner], items: list, call) -> dict[str, np.ndarray]:
    """ms of ``call(aligner, item)`` per path and item, the paths in turn (rotated per item), one warm-up."""
    names = list(paths)
    for name in names:
        call(paths[name], items[0])
    ms: dict[str, list[float]] = {name: [] for name in names}
    for i, item in enumerate(items):
        for name in names[i % len(names) :] + names[: i % len(names)]:
            t0 = time.perf_counter()
            call(paths[name], item)
            ms[name].append(1000 * (time.perf_counter() - t0))
    return {name: np.asarray(v) for name, v in ms.items()}


def crops_of(aligner: FaceAligner, rgbs: list[np.ndarray]) -> list[tuple[np.ndarray, np.ndarray]]:
    """Each photo's first face as a model-ready crop and its matrix (the detector's box, the aligner's crop)."""
    from awing.data.crop import crop_matrix, warp_image

    out = []
    for rgb in rgbs:
        boxes, _ = aligner.detector.detect(rgb)
        if len(boxes):
            cx, cy, side = aligner._square(boxes[0], aligner.enlarge, aligner.offset)
            m = crop_matrix((cx, cy), side, aligner.input_size)
            out.append((warp_image(rgb, m, aligner.input_size)[None], m[None]))
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="w300-1hg-tiny")
    p.add_argument("--limit", type=int, default=0, help="300-W val faces, evenly spaced (0: all 145)")
    p.add_argument("--repeats", type=int, default=3, help="timed forward passes per face")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--no-points", dest="points", action="store_false", help="timing only")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    rgbs = [load_rgb(s.image) for s in read_samples("w300", "val", limit=args.limit)]
    if args.points:
        print("| points vs torch fp32 | path | within 0.5 px | p50 px | p95 px | p99 px | max px |")
        print("|---|---|---|---|---|---|---|")
        for refine, label in (("never", "first pass"), ("auto", "default")):
            for name, d in movement(aligners(args.model, args.threads, refine), rgbs).items():
                q = np.percentile(d, [50, 95, 99])
                print(f"| {label} ({d.size} points) | {name} | {100 * (d <= 0.5).mean():.2f} % | "
                      + " | ".join(f"{v:.3f}" for v in q) + f" | {d.max():.2f} |", flush=True)
    paths = aligners(args.model, args.threads, "auto")
    crops = crops_of(paths["torch fp32"], rgbs)
    batches = [(np.concatenate([c for c, _ in crops[i : i + 8]]), np.concatenate([m for _, m in crops[i : i + 8]]))
               for i in range(0, len(crops) - 7, 8)]
    runs = {
        "forward, batch 1": timed(paths, crops * args.repeats, lambda a, cm: a.landmarks_in_crops(*cm)),
        "forward, batch 8": timed(paths, batches, lambda a, cm: a.landmarks_in_crops(*cm)),
        "photo (predict)": timed(paths, rgbs, lambda a, rgb: a.predict(rgb, color="RGB")),
    }
    print(f"\n{args.model}, {args.threads} thread(s), median ms (ratio to torch fp32)\n")
    print("| call | " + " | ".join(paths) + " |\n|---|" + "---|" * len(paths))
    for label, ms in runs.items():
        base = np.median(ms["torch fp32"])
        cells = [f"{np.median(v):.2f} ({base / np.median(v):.2f}x)" for v in ms.values()]
        print(f"| {label} (n={len(ms['torch fp32'])}) | " + " | ".join(cells) + " |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
