"""How each face detector's box frames the face, relative to the landmark box (GitHub issue 13).

    python benchmarks/framing.py [--detectors opencv blazeface blazeface-back [dlib]] [--limit 150]
                                 [--shared ../shared/data] [--out runs/framing]

For every face of FDD-14 val, MTFL val and 300-W val (up to ``--limit`` per set, evenly spaced) the
detector box nearest the landmarks' centre is compared with the landmark box (the tight box around the
annotated points, :func:`awing.data.sample.landmark_box`); a face counts as found when that box holds
the landmarks' centre. With ``L`` = the landmark box's longer side:

- ``scale`` = detector box longer side / ``L``;
- ``dx``, ``dy`` = (detector box centre - landmark box centre) / ``L``, per axis (x right, y down).

Per detector and set: faces found, and the median, IQR (25-75 %) and 5-95 % range of each figure;
``log_scale`` spread = the 5-95 % range of ``scale / median(scale)`` (what a calibrated enlargement
leaves: :func:`awing.detect.calibrate.calibrate_crops` removes the median scale and centre offset, not
the spread).
The table goes to stdout and ``OUT/framing.md``, the figures to ``OUT/framing.json``. These numbers
are where :class:`awing.core.config.AugmentConfig`'s ``box_scale`` / ``box_shift`` defaults come from.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import cv2
import numpy as np

if __package__:  # python -m benchmarks.framing, or imported
    from benchmarks._common import add_shared_argument, dataset_root, read_samples
else:  # python benchmarks/framing.py
    from _common import add_shared_argument, dataset_root, read_samples

from awing.core.images import load_image
from awing.data.sample import landmark_box
from awing.detect import get_detector

SETS = {  # label: (data set, split)
    "FDD val": ("fdd14", "val"),
    "MTFL val": ("mtfl5", "val"),
    "300-W val": ("w300", "val"),
}


def default_detectors() -> list[str]:
    names = ["opencv", "blazeface", "blazeface-back"]
    try:
        import dlib  # noqa: F401

        names.append("dlib")
    except ImportError:
        pass
    return names


def framing(box: np.ndarray, points: np.ndarray) -> tuple[float, float, float] | None:
    """``(scale, dx, dy)`` of one detector box against the landmarks' box (module docstring)."""
    lb = landmark_box(points).astype(np.float64)
    side = float(max(lb[2] - lb[0], lb[3] - lb[1]))
    if not side > 0:
        return None
    b = np.asarray(box, np.float64)
    scale = float(max(b[2] - b[0], b[3] - b[1])) / side
    dx = ((b[0] + b[2]) - (lb[0] + lb[2])) / 2.0 / side
    dy = ((b[1] + b[3]) - (lb[1] + lb[3])) / 2.0 / side
    return scale, float(dx), float(dy)


def nearest_box(boxes: np.ndarray, points: np.ndarray) -> np.ndarray | None:
    """The box whose centre is nearest the landmarks' centre, if it holds that centre."""
    if len(boxes) == 0:
        return None
    centre = np.nanmean(np.asarray(points, np.float64), axis=0)
    boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
    box = boxes[int(np.argmin(np.linalg.norm((boxes[:, :2] + boxes[:, 2:]) / 2 - centre, axis=1)))]
    inside = box[0] <= centre[0] <= box[2] and box[1] <= centre[1] <= box[3]
    return box if inside else None


def summary(values: np.ndarray) -> dict:
    q = np.percentile(values, [5, 25, 50, 75, 95])
    return {"median": float(q[2]), "q25": float(q[1]), "q75": float(q[3]), "p5": float(q[0]), "p95": float(q[4])}


def measure(detector, samples: list) -> dict:
    rows, seconds = [], 0.0
    for s in samples:
        try:
            rgb = load_image(s.image)
        except (FileNotFoundError, ValueError):
            continue
        t = time.perf_counter()
        boxes, _ = detector.detect(rgb)
        seconds += time.perf_counter() - t
        box = nearest_box(np.asarray(boxes), s.landmarks)
        f = None if box is None else framing(box, s.landmarks)
        if f is not None:
            rows.append(f)
    out: dict = {"found": len(rows), "faces": len(samples), "ms": 1000 * seconds / max(1, len(samples))}
    if len(rows) >= 5:
        a = np.asarray(rows)
        out["scale"], out["dx"], out["dy"] = summary(a[:, 0]), summary(a[:, 1]), summary(a[:, 2])
        out["rel_scale"] = summary(a[:, 0] / np.median(a[:, 0]))
        out["values"] = [[round(v, 4) for v in r] for r in rows]
    return out


def fmt_cell(r: dict) -> str:
    return f"{r['median']:+.3f} [{r['q25']:+.3f}, {r['q75']:+.3f}] ({r['p5']:+.3f}..{r['p95']:+.3f})"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--detectors", nargs="+", default=None, help="default: opencv blazeface blazeface-back (+ dlib)")
    p.add_argument("--limit", type=int, default=150, help="faces per set, evenly spaced (0: all)")
    add_shared_argument(p)
    p.add_argument("--out", default="runs/framing")
    args = p.parse_args(argv)
    cv2.setNumThreads(1)
    names = args.detectors or default_detectors()
    results: dict[str, dict] = {}
    for label, (dataset, split) in SETS.items():
        root = dataset_root(dataset, args.shared)
        if not root.exists():
            print(f"{label}: {root} not found, skipped", flush=True)
            continue
        samples = read_samples(dataset, split, args.shared, args.limit)
        for name in names:
            r = measure(get_detector(name), samples)
            results.setdefault(name, {})[label] = r
            if "scale" in r:
                print(f"{name} on {label}: {r['found']}/{r['faces']} found, scale {r['scale']['median']:.3f}, "
                      f"dx {r['dx']['median']:+.3f}, dy {r['dy']['median']:+.3f}", flush=True)
            else:
                print(f"{name} on {label}: {r['found']}/{r['faces']} found", flush=True)
    lines = [
        "Detector box vs landmark box (L = its longer side): median [IQR] (5-95 %); "
        "scale = box side / L, dx, dy = centre offset / L, rel = scale / median scale.",
        "",
        "| detector | set | found | scale | rel scale | dx | dy |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, by_set in results.items():
        for label, r in by_set.items():
            if "scale" not in r:
                lines.append(f"| {name} | {label} | {r['found']}/{r['faces']} | - | - | - | - |")
                continue
            s = r["scale"]
            lines.append(
                f"| {name} | {label} | {r['found']}/{r['faces']} | "
                f"{s['median']:.3f} [{s['q25']:.3f}, {s['q75']:.3f}] ({s['p5']:.3f}..{s['p95']:.3f}) | "
                f"{r['rel_scale']['p5']:.3f}..{r['rel_scale']['p95']:.3f} | {fmt_cell(r['dx'])} | {fmt_cell(r['dy'])} |"
            )
    text = "\n".join(lines) + "\n"
    print("\n" + text)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "framing.md").write_text(text)
    (out / "framing.json").write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
