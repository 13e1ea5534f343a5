"""Decoding cost per face: the registered sub-pixel decoders and the full-map DARK reference, side by side.

    OMP_NUM_THREADS=1 python -m benchmarks.decode [--faces 8] [--repeats 200] [--data ../shared/data]

Heatmaps: the shipped ``w300-1hg-tiny`` model's on real 300-W faces (the landmark box + 10 %, as it was
trained) when the shared data is there, else 68 synthetic Gaussian peaks with noise; batch 1, 68 channels,
64 x 64, one thread. Each decoder runs ``repeats`` times per face, interleaved with the others so that a
loaded machine slows all alike; the table gives the median ms per face, the ratio to the quarter decoder,
and the largest distance (heatmap pixels) between the window DARK decoder and the full-map reference.
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import cv2
import numpy as np
import torch

from awing.core.checkpoint import load_checkpoint
from awing.data.crop import crop_matrix, square_box
from awing.data.readers.w300 import read_pts
from awing.method.decode import dark_refine, dark_refine_full, decode_heatmaps
from awing.method.model import model_from_checkpoint, predict_heatmaps
from awing.method.targets import landmark_heatmaps
from awing.pretrained import resolve_model

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def real_heatmaps(
    data: Path = SHARED, faces: int = 8, model: str = "w300-1hg-tiny", flip: bool = False
) -> torch.Tensor | None:
    """(faces, 68, H, W) float32 heatmaps of the shipped 68-point model on the first ``faces`` AFW faces
    under ``data``/w300 (sorted by name; landmark box + 10 %, as it was trained), or None where those files
    are absent. ``flip``: the flip test's average of the face and its mirror image instead of one pass."""
    folder = data / "w300" / "afw"
    files = sorted(folder.glob("*.pts"))[:faces] if folder.is_dir() else []
    if not files:
        return None
    loaded = model_from_checkpoint(load_checkpoint(resolve_model(model)))
    size = loaded.codec.input_size
    crops = []
    for pts in files:
        image = cv2.imread(str(pts.with_suffix(".jpg")), cv2.IMREAD_COLOR)
        points = read_pts(pts) - 1.0  # 1-based in 300-W
        cx, cy, side = square_box(np.concatenate([points.min(0), points.max(0)]), enlarge=0.1)
        crop = cv2.warpAffine(image, crop_matrix((cx, cy), side, size), (size, size), flags=cv2.INTER_LINEAR)
        crops.append(torch.from_numpy(cv2.cvtColor(crop, cv2.COLOR_BGR2RGB)).permute(2, 0, 1))
    images = torch.stack(crops).float() / 255.0
    flip_permutation = loaded.schema.flip_permutation if flip else None
    return predict_heatmaps(loaded.model.eval(), images, flip_permutation=flip_permutation)


def synthetic_heatmaps(faces: int = 8, points: int = 68, size: int = 64, seed: int = 0) -> torch.Tensor:
    """(faces, points, size, size) sigma-1.5 Gaussians at random sub-pixel centres plus a little noise."""
    rng = torch.Generator().manual_seed(seed)
    centres = 2 + (size - 4) * torch.rand(faces, points, 2, generator=rng)
    heat, _ = landmark_heatmaps(centres, (size, size), 1.5, 3)
    return heat + 0.02 * torch.randn(heat.shape, generator=rng)


VARIANTS = {
    "quarter": lambda h: decode_heatmaps(h),
    "dark (full-map reference)": lambda h: dark_refine_full(h, 1.5),
    "dark (window)": lambda h: dark_refine(h, 1.5),
}


def measure(heatmaps: torch.Tensor, repeats: int = 200) -> dict[str, float]:
    """Median ms per face (batch 1) of each entry of :data:`VARIANTS` over ``repeats`` rounds x faces."""
    times: dict[str, list[float]] = {name: [] for name in VARIANTS}
    for _ in range(repeats):
        for face in heatmaps.split(1):
            for name, decode in VARIANTS.items():
                start = time.perf_counter()
                decode(face)
                times[name].append(time.perf_counter() - start)
    return {name: 1e3 * statistics.median(values) for name, values in times.items()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--faces", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=200)
    parser.add_argument("--data", type=Path, default=SHARED)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    heat = real_heatmaps(args.data, args.faces)
    source = f"w300-1hg-tiny on {args.faces} real 300-W faces"
    if heat is None:
        heat, source = synthetic_heatmaps(args.faces), f"{args.faces} synthetic faces (no 300-W data)"
    with torch.no_grad():
        for face in heat.split(1):  # warm-up
            for decode in VARIANTS.values():
                decode(face)
        ms = measure(heat, args.repeats)
        gap = (dark_refine(heat, 1.5)[0] - dark_refine_full(heat, 1.5)[0]).norm(dim=-1).max().item()
    print(f"heatmaps: {source}, {tuple(heat.shape[1:])} per face, batch 1, {args.threads} thread(s)")
    print(f"{'decoder':28s} {'ms / face':>10s} {'x quarter':>10s}")
    for name, value in ms.items():
        print(f"{name:28s} {value:10.3f} {value / ms['quarter']:10.2f}")
    print(f"window dark vs full-map dark: max {gap:.2e} heatmap px")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
