"""Group photos: faces per second on a crowded image; also the other figures of issue 15 (the face score's
calibration, head-pose error, aligned-crop consistency).

    python benchmarks/group_photo.py [--grid 6] [--tile 160] [--repeat 5] [--model NAME] [--threads 1]
                                   [--detector blazeface-back]
    python benchmarks/group_photo.py --calibrate [--limit 200] [--shared ../shared/data]
    python benchmarks/group_photo.py --pose [--limit 100]
    python benchmarks/group_photo.py --crops [--limit 10] [--crop-source fdd|synthetic]

The crowded image is a ``grid x grid`` photo of synthetic faces (:func:`awing.data.synthetic.make_example`,
``tile`` pixels each, a different face per tile). The timing is the mean wall time of
``FaceAligner.predict`` on it (detection + every face's crop in one batched forward pass), after one
warm-up call, with ``torch`` and OpenCV on ``--threads`` threads; faces/s = faces found / that time.

``--calibrate`` measures :attr:`awing.app.api.FaceLandmarks.quality` (the mean point confidence) on
real faces (FDD-14 val, each through the default detector) and on non-faces: random boxes on the same
images whose centre lies more than one face extent from the face and that do not cover the landmarks,
blank (one colour) crops and texture crops (noise, stripes). It prints both distributions, the
threshold that best separates them and its error rates (compare ``FACE_QUALITY_THRESHOLD``).

``--pose``: mean absolute yaw / pitch / roll error (degrees) of :func:`awing.app.pose.head_pose` on
``--limit`` synthetic faces (256 px, ``val`` split, seed 0) against their generated pose, from their
ground-truth landmarks (in w300_68, fdd14 and mtfl5) and from each shipped model's predictions (the
face's detector-like box of the record, the model's calibrated enlargement).

``--crops``: one face at 3 rotations (-25, 0, 25 degrees) x 3 scales (0.75, 1, 1.3) (the image warped,
reflect-padded); each version's aligned crop (112 px, :func:`awing.app.align.aligned_crop`) from its
ground-truth five points and from the default model's points. Figures: the mean absolute pixel
difference (of 255) to the unrotated, unscaled crop, and the RMS spread (pixels) of the face's true five
points over the nine crops; averaged over ``--limit`` faces (FDD val, every 20th image, or synthetic).
"""

from __future__ import annotations

import argparse
import csv
import time
from pathlib import Path

import cv2
import numpy as np
import torch

if __package__:  # python -m benchmarks.group_photo, or imported
    from benchmarks._common import add_shared_argument, dataset_root
else:  # python benchmarks/group_photo.py
    from _common import add_shared_argument, dataset_root

from awing.app.api import FACE_QUALITY_THRESHOLD, FaceAligner
from awing.data.synthetic import make_example


def group_photo(grid: int, tile: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(grid*tile, grid*tile, 3) uint8 BGR of grid x grid synthetic faces, and their (grid*grid, 4) boxes."""
    rows, boxes = [], []
    for r in range(grid):
        row = []
        for c in range(grid):
            image, record = make_example(seed, "val", r * grid + c, tile, "w300_68")
            row.append(image)
            boxes.append(record["box"] + np.array([c, r, c, r], np.float32) * tile)
        rows.append(np.hstack(row))
    return np.vstack(rows), np.stack(boxes)


def faces_per_second(aligner: FaceAligner, image: np.ndarray, repeat: int) -> tuple[int, float]:
    """``(faces found, mean seconds per predict call)`` on a BGR image."""
    faces = aligner.predict(image, color="BGR")  # warm-up
    t0 = time.perf_counter()
    for _ in range(repeat):
        faces = aligner.predict(image, color="BGR")
    return len(faces), (time.perf_counter() - t0) / repeat


def fdd_val(shared: Path) -> list[tuple[Path, np.ndarray]]:
    """FDD-14's val faces, in the order of its ``landmarks.csv``: (image path, (14, 2) landmarks) each."""
    root = dataset_root("fdd14", shared)
    with open(root / "landmarks.csv") as f:
        rows = [r for r in csv.DictReader(f) if r["split"] == "val"]
    points = [np.array([[float(r[f"x{i}"]), float(r[f"y{i}"])] for i in range(14)]) for r in rows]
    return [(root / "images" / r["image"], lm) for r, lm in zip(rows, points)]


def calibrate(aligner: FaceAligner, shared: Path, limit: int, seed: int = 0) -> dict:
    """Face quality on real faces vs non-face boxes (see the module doc): both arrays and the best cut."""
    rng = np.random.default_rng(seed)
    real, fake = [], []
    for path, lm in fdd_val(shared)[:limit]:
        bgr = cv2.imread(str(path))
        faces = aligner.predict(bgr, color="BGR")
        centre, extent = lm.mean(0), float((lm.max(0) - lm.min(0)).max())
        near = [f for f in faces if np.hypot(*(f.landmarks.mean(0) - centre)) < 0.5 * extent]
        if near:
            real.append(max(f.quality for f in near))
        h, w = bgr.shape[:2]
        boxes = []
        for _ in range(200):
            side = extent * rng.uniform(0.6, 1.2)
            x0, y0 = rng.uniform(0, w - side), rng.uniform(0, h - side)
            c = np.array([x0 + side / 2, y0 + side / 2])
            inside = ((lm >= [x0, y0]) & (lm <= [x0 + side, y0 + side])).all(1).mean()
            if np.hypot(*(c - centre)) > extent and inside < 0.3:
                boxes.append([x0, y0, x0 + side, y0 + side])
            if len(boxes) == 2:
                break
        if boxes:
            fake += [f.quality for f in aligner.predict_crops(bgr, boxes, color="BGR")]
    for k in range(limit // 4):  # blank and texture crops
        size = 128
        kind = k % 3
        if kind == 0:
            img = np.full((size, size, 3), rng.integers(0, 256, 3), np.uint8)
        elif kind == 1:
            img = cv2.GaussianBlur(rng.integers(0, 256, (size, size, 3)).astype(np.uint8), (0, 0), rng.uniform(0.5, 4))
        else:
            x = np.arange(size)[None, :] * rng.uniform(0.05, 0.5) + np.arange(size)[:, None] * rng.uniform(0, 0.3)
            img = np.repeat(((np.sin(x) + 1) * 127).astype(np.uint8)[..., None], 3, axis=2)
        fake += [f.quality for f in aligner.predict_crops(img, [[16, 16, 112, 112]], color="BGR")]
    real, fake = np.array(real), np.array(fake)
    cuts = np.unique(np.concatenate([real, fake]))
    errors = [(np.mean(real < c) + np.mean(fake >= c)) / 2 for c in cuts]
    best = float(cuts[int(np.argmin(errors))])
    return {"real": real, "fake": fake, "best": best}


def pose_error(limit: int) -> dict[str, np.ndarray]:
    """Mean absolute (yaw, pitch, roll) error, degrees: ``{label: (3,)}`` (see the module doc)."""
    from awing.app.pose import head_pose, mean_face_3d
    from awing.schemas import map_points, point_mapping

    examples = [make_example(0, "val", i, 256, "w300_68") for i in range(limit)]
    truth = np.array([[r["head_pose"][k] for k in ("yaw", "pitch", "roll")] for _, r in examples])
    out = {}
    for schema in ("w300_68", "fdd14", "mtfl5"):
        w = point_mapping("w300_68", schema)
        est = [head_pose(map_points(r["landmarks"], w), mean_face_3d(schema), (256, 256)) for _, r in examples]
        out[f"ground-truth landmarks, {schema}"] = np.abs(np.array(est, dtype=np.float64) - truth).mean(0)
    for model in ("fdd14-1hg-tiny", "mtfl5-1hg-tiny"):
        aligner = FaceAligner(model, device="cpu")
        est = []
        for img, rec in examples:
            pose = aligner.predict_crops(img, [rec["box"]], color="BGR")[0].pose
            est.append([np.nan] * 3 if pose is None else [pose["yaw"], pose["pitch"], pose["roll"]])
        out[f"{model} predictions"] = np.nanmean(np.abs(np.array(est) - truth), 0)
    return out


def crop_consistency(aligner: FaceAligner, limit: int, source: str, shared: Path) -> dict[str, tuple[float, float]]:
    """``{"ground truth" | "predicted": (mean abs pixel difference, 5-point RMS spread px)}`` (module doc)."""
    import itertools

    from awing.app.align import aligned_crop, alignment_matrix, five_points
    from awing.schemas import map_points, point_mapping

    w = point_mapping("w300_68" if source == "synthetic" else "fdd14", "mtfl5")
    rows = fdd_val(shared)[::20] if source == "fdd" else []
    diffs, spreads = {"ground truth": [], "predicted": []}, {"ground truth": [], "predicted": []}
    for idx in range(min(limit, len(rows)) if source == "fdd" else limit):
        if source == "synthetic":
            img, rec = make_example(0, "val", idx, 256, "w300_68")
            lm, box = rec["landmarks"], rec["box"]
        else:
            path, lm = rows[idx]
            img = cv2.imread(str(path))
            box = aligner.predict(img, color="BGR")[0].box
        big = cv2.copyMakeBorder(img, 128, 128, 128, 128, cv2.BORDER_REFLECT)
        pts, box = np.asarray(lm, np.float64) + 128, np.asarray(box, np.float64) + 128
        crops, inside = {k: [] for k in diffs}, {k: [] for k in diffs}
        for angle, scale in itertools.product((-25, 0, 25), (0.75, 1.0, 1.3)):
            m = cv2.getRotationMatrix2D((256, 256), angle, scale)
            image = cv2.warpAffine(big, m, (512, 512), flags=cv2.INTER_LINEAR)
            p = pts @ m[:, :2].T + m[:, 2]
            centre = box.reshape(2, 2).mean(0) @ m[:, :2].T + m[:, 2]
            half = (box[2] - box[0]) * scale / 2  # the box turns and scales with the face
            face = aligner.predict_crops(image, [[*(centre - half), *(centre + half)]], color="BGR")[0]
            for kind, five in (("ground truth", map_points(p, w)), ("predicted", five_points(face))):
                crops[kind].append(aligned_crop(image, five).astype(np.float32))
                a = alignment_matrix(five)
                inside[kind].append(map_points(p, w) @ a[:, :2].T + a[:, 2])
        for kind in diffs:
            diffs[kind].append(np.mean([np.abs(c - crops[kind][4]).mean() for c in crops[kind]]))
            g = np.array(inside[kind])
            spreads[kind].append(np.sqrt(((g - g.mean(0)) ** 2).sum(-1).mean()))
    return {k: (float(np.mean(diffs[k])), float(np.mean(spreads[k]))) for k in diffs}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=None)
    parser.add_argument("--grid", type=int, default=6)
    parser.add_argument("--tile", type=int, default=160)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--detector", default="blazeface-back", help="default: blazeface-back (small faces)")
    parser.add_argument("--calibrate", action="store_true")
    parser.add_argument("--pose", action="store_true", help="head-pose error on synthetic faces")
    parser.add_argument("--crops", action="store_true", help="aligned-crop consistency under rotation and scale")
    parser.add_argument("--crop-source", choices=["fdd", "synthetic"], default="fdd")
    parser.add_argument("--limit", type=int, default=None, help="faces (200 --calibrate, 100 --pose, 10 --crops)")
    add_shared_argument(parser)
    args = parser.parse_args(argv)
    if args.limit is None:
        args.limit = 100 if args.pose else 10 if args.crops else 200
    torch.set_num_threads(args.threads)
    cv2.setNumThreads(args.threads)
    if args.pose:
        for label, err in pose_error(args.limit).items():
            print(f"{label:40s} MAE yaw {err[0]:.2f}  pitch {err[1]:.2f}  roll {err[2]:.2f} degrees")
        return 0
    detector = "blazeface" if args.calibrate or args.crops else args.detector
    aligner = FaceAligner(args.model, device=args.device, detector=detector)
    if args.crops:
        for kind, (diff, spread) in crop_consistency(aligner, args.limit, args.crop_source, args.shared).items():
            print(
                f"{kind:12s} points: mean abs pixel difference {diff:.2f} / 255, five-point RMS spread {spread:.2f} px"
            )
        return 0
    if args.calibrate:
        res = calibrate(aligner, args.shared, args.limit)
        real, fake, best = res["real"], res["fake"], res["best"]
        for name, q in (("faces", real), ("non-faces", fake)):
            print(f"{name:10s} n={len(q):4d} quality mean {q.mean():.3f} min {q.min():.3f} "
                  f"p5 {np.percentile(q, 5):.3f} p95 {np.percentile(q, 95):.3f} max {q.max():.3f}")
        for cut, label in ((best, "best cut"), (FACE_QUALITY_THRESHOLD, "FACE_QUALITY_THRESHOLD")):
            print(f"{label} {cut:.3f}: faces rejected {np.mean(real < cut):.1%}, "
                  f"non-faces accepted {np.mean(fake >= cut):.1%}")
        return 0
    image, boxes = group_photo(args.grid, args.tile)
    n = len(boxes)
    found, seconds = faces_per_second(aligner, image, args.repeat)
    print(f"{image.shape[1]}x{image.shape[0]} photo, {n} faces, detector + landmarks: {found} found, "
          f"{seconds * 1000:.1f} ms/image, {found / seconds:.1f} faces/s")
    print(f"({args.threads} thread(s), {aligner!r})")
    aligner.predict_crops(image, boxes, color="BGR")  # warm-up
    t0 = time.perf_counter()
    for _ in range(args.repeat):
        aligner.predict_crops(image, boxes, color="BGR")
    seconds = (time.perf_counter() - t0) / args.repeat
    print(f"given boxes (landmarks only, one batched pass): {n} faces, {seconds * 1000:.1f} ms/image, "
          f"{n / seconds:.1f} faces/s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
