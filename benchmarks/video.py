"""Video landmarks: speed of tracking vs per-frame detection, and jitter / lag of One-Euro smoothing.

    python benchmarks/video.py                       # about 1 minute on one busy core
    python benchmarks/video.py --frames 150 --seed 1 --min-cutoff 1.0 --beta 0.5

Two clips at ``--fps`` (30) are made from one synthetic face (``awing.data.synthetic.make_example``,
256 x 256, BGR), with Gaussian sensor noise (``--noise``, grey levels, drawn anew for every frame):

- still: the same face in every frame, so any landmark motion is jitter;
- moving: the face translated by ``(A sin(2 pi t / P), A/2 sin(2 pi t / 2P))`` px (``--amplitude`` A 20 px,
  period P 2 s: up to about 2 px per frame), borders replicated.

Each clip runs through per-frame detection (``FaceAligner.predict``) and :class:`awing.app.tracking.FaceTracker`
(raw and One-Euro smoothed), with the shipped default model and detector on one thread. Printed:

- FPS: frames per second of the whole loop (decode excluded: frames are in memory), and how many times
  the detector ran;
- jitter (still clip): the mean over frames and points of the frame-to-frame point displacement, px and %
  of the inter-ocular distance (the schema's default NME normaliser, measured on the mean still face);
- error (moving clip): the mean distance to a reference = that way's mean still-clip prediction moved by
  the frame's known translation; it holds the model's own variation under translation plus any lag the
  filter adds (the "error added by smoothing" = smoothed minus raw tracking error).

``--grid`` also filters the raw tracked points offline for a few (min_cutoff, beta) pairs (the filter does
not feed back into the crops, so this equals running the tracker with them).
"""

from __future__ import annotations

import argparse
import os
import time

import cv2
import numpy as np
import torch

from awing.app.api import FaceAligner
from awing.app.tracking import FaceTracker, OneEuroFilter
from awing.data import synthetic
from awing.schemas import normaliser_distance


def make_clips(seed: int, frames: int, fps: float, noise: float, amplitude: float, period: float):
    """``(still, moving, shifts)``: two lists of (256, 256, 3) uint8 BGR frames and the moving clip's
    (T, 2) translations in px."""
    base, _ = synthetic.make_example(seed, "test", 0, size=256)
    rng = np.random.default_rng(seed)

    def noisy(img):
        return np.clip(img.astype(np.float32) + rng.normal(0, noise, img.shape), 0, 255).astype(np.uint8)

    t = np.arange(frames) / fps
    shifts = np.stack(
        [amplitude * np.sin(2 * np.pi * t / period), amplitude / 2 * np.sin(2 * np.pi * t / (2 * period))], 1
    )
    still = [noisy(base) for _ in range(frames)]
    moving = []
    for dx, dy in shifts:
        m = np.float32([[1, 0, dx], [0, 1, dy]])
        moving.append(noisy(cv2.warpAffine(base, m, (256, 256), borderMode=cv2.BORDER_REPLICATE)))
    return still, moving, shifts


def first_face(faces):
    """(N, 2) points of the face with the lowest track id / best score, NaN when none."""
    return faces[0].landmarks.astype(np.float64) if faces else None


def run_per_frame(aligner, clip):
    points, start = [], time.perf_counter()
    for bgr in clip:
        points.append(first_face(aligner.predict(bgr, color="BGR")))
    return points, len(clip) / (time.perf_counter() - start), len(clip)


def run_tracker(aligner, clip, fps, smooth, min_cutoff, beta):
    tracker = FaceTracker(aligner, fps=fps, smooth=smooth, min_cutoff=min_cutoff, beta=beta)
    points, start = [], time.perf_counter()
    for bgr in clip:
        frame = tracker.update(bgr, color="BGR")
        points.append(first_face([f.face for f in frame.faces]))
    return points, len(clip) / (time.perf_counter() - start), tracker.detections


def stack(points, n):
    return np.stack([np.full((n, 2), np.nan) if p is None else p for p in points])


def jitter(p: np.ndarray) -> float:
    """Mean frame-to-frame displacement, px, of (T, N, 2) points."""
    return float(np.nanmean(np.linalg.norm(np.diff(p, axis=0), axis=-1)))


def error(p: np.ndarray, ref: np.ndarray) -> float:
    return float(np.nanmean(np.linalg.norm(p - ref, axis=-1)))


def smooth_offline(p: np.ndarray, fps: float, min_cutoff: float, beta: float) -> np.ndarray:
    f = OneEuroFilter(fps, min_cutoff, beta)
    return np.stack([f(x) for x in p])


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seed", type=int, default=0, help="synthetic face (seeds 0, 1 are found by Haar)")
    parser.add_argument("--frames", type=int, default=90)
    parser.add_argument("--fps", type=float, default=30.0)
    parser.add_argument("--noise", type=float, default=4.0, help="sensor noise sigma, grey levels")
    parser.add_argument("--amplitude", type=float, default=20.0, help="moving clip: px")
    parser.add_argument("--period", type=float, default=2.0, help="moving clip: s")
    parser.add_argument("--min-cutoff", type=float, default=1.0)
    parser.add_argument("--beta", type=float, default=0.2)
    parser.add_argument("--grid", action="store_true", help="also a (min_cutoff, beta) table")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    aligner = FaceAligner()
    print(f"{aligner!r}\ntorch threads 1, OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS')}, "
          f"{args.frames} frames of 256 x 256 at {args.fps:g} fps, noise sigma {args.noise:g}")
    still, moving, shifts = make_clips(args.seed, args.frames, args.fps, args.noise, args.amplitude, args.period)
    n = aligner.schema.num_points
    aligner.predict(still[0], color="BGR")  # warm-up
    runs = {}
    for name, fn in [
        ("per-frame detection", lambda clip: run_per_frame(aligner, clip)),
        ("tracking, raw", lambda clip: run_tracker(aligner, clip, args.fps, False, args.min_cutoff, args.beta)),
        ("tracking, smoothed", lambda clip: run_tracker(aligner, clip, args.fps, True, args.min_cutoff, args.beta)),
    ]:
        s_pts, s_fps, s_det = fn(still)
        m_pts, m_fps, m_det = fn(moving)
        runs[name] = (stack(s_pts, n), stack(m_pts, n), (s_fps + m_fps) / 2, s_det + m_det)
    still_mean = np.nanmean(runs["per-frame detection"][0], axis=0)
    iod = float(normaliser_distance(aligner.schema, still_mean))
    # each way's reference: its own mean still face, moved (per-frame and tracked crops differ, and so do
    # the model's points by a constant offset that is not motion error)
    refs = {name: np.nanmean(s, axis=0)[None] + shifts[:, None, :] for name, (s, *_) in runs.items()}
    ref = refs["tracking, raw"]
    print(f"inter-ocular distance {iod:.1f} px; smoothing: min_cutoff {args.min_cutoff:g} Hz, beta {args.beta:g}")
    print(f"{'':22s} {'FPS':>6s} {'detector runs':>14s} {'jitter px':>10s} {'jitter %IOD':>12s} {'moving err px':>14s}")
    for name, (s, m, fps, det) in runs.items():
        j = jitter(s)
        missed = int(np.isnan(s).any(axis=(1, 2)).sum() + np.isnan(m).any(axis=(1, 2)).sum())
        note = f"  ({missed} frames without a face)" if missed else ""
        print(f"{name:22s} {fps:6.1f} {det:>8d}/{2 * args.frames:<5d} {j:10.3f} {100 * j / iod:11.2f}% "
              f"{error(m, refs[name]):14.3f}{note}")
    smoothed = error(runs["tracking, smoothed"][1], refs["tracking, smoothed"])
    print(f"error added by smoothing on the moving clip: {smoothed - error(runs['tracking, raw'][1], ref):+.3f} px")
    if args.grid:
        s_raw, m_raw = runs["tracking, raw"][0], runs["tracking, raw"][1]
        print("\noffline One-Euro on the raw tracked points: jitter px (still) / error px (moving)")
        betas = [0.0, 0.05, 0.1, 0.2, 0.5, 1.0]
        print(f"{'min_cutoff / beta':>18s} " + " ".join(f"{b:>13g}" for b in betas))
        for mc in [0.3, 0.5, 1.0, 2.0]:
            cells = []
            for b in betas:
                js = jitter(smooth_offline(s_raw, args.fps, mc, b))
                em = error(smooth_offline(m_raw, args.fps, mc, b), ref)
                cells.append(f"{js:6.3f}/{em:6.3f}")
            print(f"{mc:>18g} " + " ".join(f"{c:>13s}" for c in cells))


if __name__ == "__main__":
    main()
