"""Face detectors side by side: recall and speed on real validation faces, one CPU thread.

    python benchmarks/detectors.py [--detectors opencv blazeface] [--sets fdd mtfl w300] [--limit N]
                                   [--shared ../shared/data]

A face counts as found when one of the detector's boxes holds the landmarks' centre at a plausible
size: box side (``max(w, h)``) between 0.5x and 3x the landmark extent (``max`` of the landmarks'
width and height). ms/image is the mean wall time of ``detect()`` alone (images decoded beforehand),
with ``cv2.setNumThreads(1)``. ``enlarge`` is the crop enlargement a model trained on FDD-14 crops
needs for that detector's boxes (the ``*_ENLARGE`` figures of :mod:`awing.detect.detectors`): the
median over found faces of 3.2 x landmark extent / side of the box nearest the landmarks' centre,
minus 1; it is printed for the FDD set only.

Sets: FDD-14 val (400 images, 256 px), MTFL val (its first 300 faces, 80 px), 300-W val (145 faces,
about 450 px): ``../shared/data`` (or ``--shared`` / $AWING_SHARED_DATA).
"""

from __future__ import annotations

import argparse
import sys
import time

import cv2
import numpy as np

if __package__:  # python -m benchmarks.detectors, or imported
    from benchmarks._common import add_shared_argument, read_samples
else:  # python benchmarks/detectors.py
    from _common import add_shared_argument, read_samples

from awing.core.images import load_image
from awing.detect import get_detector

SETS = {  # name: (data set, split, at most this many faces: the first ones)
    "fdd": ("fdd14", "val", 400),
    "mtfl": ("mtfl5", "val", 300),
    "w300": ("w300", "val", 145),
}
FDD_CROP = 3.2  # FDD-14 images are squares of 3.2x the landmark extent


def face_found(boxes: np.ndarray, points: np.ndarray) -> tuple[bool, int]:
    """Whether a box holds the landmarks' centre at a plausible size, and the box nearest the centre."""
    pts = points[np.isfinite(points).all(1)]
    centre = pts.mean(0)
    extent = float(max(np.ptp(pts[:, 0]), np.ptp(pts[:, 1])))
    if len(boxes) == 0:
        return False, -1
    sides = np.maximum(boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1])
    inside = ((boxes[:, :2] <= centre) & (centre <= boxes[:, 2:])).all(1)
    ok = inside & (sides >= 0.5 * extent) & (sides <= 3.0 * extent)
    nearest = int(np.argmin(np.linalg.norm((boxes[:, :2] + boxes[:, 2:]) / 2 - centre, axis=1)))
    return bool(ok.any()), nearest


def run(detector, images, samples, fdd: bool) -> dict:
    found, times, ratios = 0, [], []
    for rgb, sample in zip(images, samples):
        t = time.perf_counter()
        boxes, _ = detector.detect(rgb)
        times.append(time.perf_counter() - t)
        hit, i = face_found(boxes, sample.landmarks)
        found += hit
        if fdd and hit:
            pts = sample.landmarks[np.isfinite(sample.landmarks).all(1)]
            extent = max(np.ptp(pts[:, 0]), np.ptp(pts[:, 1]))
            b = boxes[i]
            ratios.append(FDD_CROP * extent / max(b[2] - b[0], b[3] - b[1]) - 1.0)
    return {
        "recall": 100.0 * found / len(samples),
        "ms": 1000.0 * float(np.mean(times)),
        "enlarge": float(np.median(ratios)) if ratios else float("nan"),
        "enlarge_q": np.percentile(ratios, [25, 75]) if ratios else None,
    }


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--detectors", nargs="+", default=["opencv", "blazeface"])
    p.add_argument("--sets", nargs="+", default=list(SETS), choices=list(SETS))
    p.add_argument("--limit", type=int, default=None, help="at most this many faces per set")
    add_shared_argument(p)
    args = p.parse_args(argv)
    cv2.setNumThreads(1)
    detectors = {name: get_detector(name) for name in args.detectors}
    rows: dict[str, dict[str, dict]] = {name: {} for name in detectors}
    for set_name in args.sets:
        dataset, split, limit = SETS[set_name]
        samples = read_samples(dataset, split, args.shared)[: min(limit, args.limit or limit)]
        images = [load_image(s.image) for s in samples]
        for name, detector in detectors.items():
            detector.detect(images[0])  # warm up (first-call allocations)
            rows[name][set_name] = run(detector, images, samples, fdd=set_name == "fdd")
        shape = np.median([im.shape[:2] for im in images], axis=0).astype(int)
        print(f"# {set_name}: {len(samples)} faces, median image {shape[1]}x{shape[0]}", file=sys.stderr)
    head = f"{'detector':<16}" + "".join(f"{s + ' recall %':>15}{s + ' ms/img':>13}" for s in args.sets)
    if "fdd" in args.sets:
        head += f"{'enlarge (FDD)':>16}"
    print(head)
    for name, by_set in rows.items():
        line = f"{name:<16}" + "".join(f"{by_set[s]['recall']:>15.1f}{by_set[s]['ms']:>13.1f}" for s in args.sets)
        if "fdd" in args.sets:
            q = by_set["fdd"]["enlarge_q"]
            spread = f" ({q[0]:.2f}-{q[1]:.2f})" if q is not None else ""
            line += f"{by_set['fdd']['enlarge']:>7.3f}{spread}"
        print(line)


if __name__ == "__main__":
    main()
