"""Which heatmap does each loss ask for when the landmark's position is uncertain? (issue 26)

    python -m benchmarks.uncertainty [--jitter 0 0.5 1 1.5 2 3 4] [--draws 512] [--steps 400] [--figure PATH]

A network cannot resolve every landmark exactly: along the jaw line, say, the same image could carry its
annotation a few pixels either way. Training then fits, pixel by pixel, one prediction to a spread of
targets. This benchmark isolates that: one free heatmap (a parameter per pixel, no network) is fitted by
Adam to ``--draws`` Gaussian targets (sigma ``--sigma`` on ``(2 radius + 1)^2`` support, as the codec
renders them) whose centres are jittered by N(0, s^2) pixels in x and y, for each loss:

- **MSE**: its minimiser is each pixel's **mean** target, a lower and wider blob (peak sigma^2 / (sigma^2 +
  s^2) in the continuous limit);
- **AW** (Eq. 3 as trained, alpha 2.1, omega 14, epsilon 1, theta 0.5): near the foreground it grows like
  |error|^(alpha - y), close to L1 at y = 1, whose minimiser is the median; if that dominated, pixels inside
  the Gaussian for fewer than half of the draws would fit 0 and the map would go blank as s grows (the
  hypothesis this measures);
- **AW+WM** (Eq. 4's weight map, W 10).

A second table asks the same of a network's guess that is off: the prediction is the target's Gaussian moved
by d pixels, scaled by a gain g, and each loss's best gain (over a grid) says whether it rather keeps a
misplaced peak (and a gradient that can move it) or blanks the channel (``--offsets``).

It prints the fitted heatmap's peak, its value at the mean centre, and the area above half its peak, per
loss and jitter, and draws them. At 64x64 (sigma 1.5) a jitter of s pixels is s/2 pixels at 32x32 (sigma 1):
``--sigma 1 --radius 2`` with halved jitters gives the 32x32 side of the same uncertainty.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

if __package__:  # python -m benchmarks.uncertainty, or imported
    from benchmarks._common import line_panels
else:  # python benchmarks/uncertainty.py
    from _common import line_panels

from awing.method.losses import build_loss
from awing.method.targets import landmark_heatmaps
from awing.method.weights import build_loss_weights

LOSSES = {"MSE": ("mse", "none"), "AW": ("awing", "none"), "AW+WM": ("awing", "paper")}


def jittered_targets(jitter: float, draws: int, size: int, sigma: float, radius: int, seed: int = 0) -> torch.Tensor:
    """(draws, 1, size, size) Gaussian targets centred at the map's centre + N(0, jitter^2) px per axis."""
    g = torch.Generator().manual_seed(seed)
    centre = (size - 1) / 2
    points = centre + jitter * torch.randn(draws, 1, 2, generator=g)
    heat, _ = landmark_heatmaps(points, (size, size), sigma=sigma, radius=radius)
    return heat


def fit_heatmap(targets: torch.Tensor, loss: str, weight_map: str, steps: int = 400, lr: float = 0.02) -> torch.Tensor:
    """The (size, size) heatmap minimising the mean of ``loss`` (with ``weight_map``) over ``targets``
    (K, 1, size, size), fitted by Adam from zeros (as a network's first output: a flat map near 0)."""
    fn = build_loss(loss)
    weights = build_loss_weights(targets, weight_map)
    pred = torch.zeros(targets.shape[-2:], requires_grad=True)
    opt = torch.optim.Adam([pred], lr=lr)
    for _ in range(steps):
        opt.zero_grad()
        fn(pred.expand_as(targets), targets, weights).backward()
        opt.step()
    return pred.detach()


def describe(heat: torch.Tensor) -> dict[str, float]:
    """Peak, value at the centre pixel (the mean position) and pixels above half the peak of a fitted map."""
    size = heat.shape[-1]
    peak = float(heat.max())
    centre = float(heat[size // 2, size // 2]) if size % 2 else float(heat[size // 2 - 1 : size // 2 + 1].mean())
    area = int((heat > peak / 2).sum()) if peak > 0 else 0
    return {"peak": peak, "centre": centre, "half_area": area}


def best_gain(offset: float, loss: str, weight_map: str, size: int, sigma: float, radius: int) -> float:
    """The gain g in [0, 1.5] (steps of 0.005) minimising ``loss`` of g x (the target moved by ``offset`` px)
    against the centred target."""
    centre = (size - 1) / 2
    target, _ = landmark_heatmaps(torch.tensor([[[centre, centre]]]), (size, size), sigma=sigma, radius=radius)
    guess, _ = landmark_heatmaps(torch.tensor([[[centre + offset, centre]]]), (size, size), sigma=sigma, radius=radius)
    fn, weights = build_loss(loss), build_loss_weights(target, weight_map)
    gains = torch.linspace(0, 1.5, 301)
    losses = torch.stack([fn(g * guess, target, weights) for g in gains])
    return float(gains[int(losses.argmin())])


def run(jitters, draws: int, size: int, sigma: float, radius: int, steps: int) -> dict[str, list[dict]]:
    out: dict[str, list[dict]] = {name: [] for name in LOSSES}
    for s in jitters:
        targets = jittered_targets(s, draws, size, sigma, radius)
        for name, (loss, weight_map) in LOSSES.items():
            out[name].append({"jitter": s, **describe(fit_heatmap(targets, loss, weight_map, steps))})
    return out


PANELS = {"peak": "peak", "centre": "value at the centre", "half_area": "area > ½ peak (px²)"}


def figure(results: dict[str, list[dict]], path: Path, title: str) -> Path:
    """One panel per quantity of :data:`PANELS`, a line per loss over the jitter."""
    panels = {
        name: {loss: ([r["jitter"] for r in rows], [r[key] for r in rows]) for loss, rows in results.items()}
        for key, name in PANELS.items()
    }
    return line_panels(panels, path, title, "position jitter s (heatmap px)")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jitter", type=float, nargs="+", default=[0, 0.5, 1, 1.5, 2, 3, 4])
    parser.add_argument("--draws", type=int, default=512)
    parser.add_argument("--size", type=int, default=33, help="heatmap side (odd: a centre pixel)")
    parser.add_argument("--sigma", type=float, default=1.5)
    parser.add_argument("--radius", type=int, default=3)
    parser.add_argument("--steps", type=int, default=400)
    parser.add_argument("--offsets", type=float, nargs="+", default=[0, 1, 2, 3, 4, 5, 6])
    parser.add_argument("--figure", type=Path, default=Path("runs/uncertainty/uncertainty.png"))
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    results = run(args.jitter, args.draws, args.size, args.sigma, args.radius, args.steps)
    print(f"sigma {args.sigma} on {2 * args.radius + 1}x{2 * args.radius + 1}, {args.draws} draws per jitter\n")
    print("| jitter (px) | " + " | ".join(f"{n} peak | {n} centre | {n} area" for n in results) + " |")
    print("|---|" + "---|---|---|" * len(results))
    for i, s in enumerate(args.jitter):
        cells = [f"{r[i]['peak']:.3f} | {r[i]['centre']:.3f} | {r[i]['half_area']}" for r in results.values()]
        print(f"| {s:g} | " + " | ".join(cells) + " |")
    print("\nbest gain of a misplaced guess (the target's Gaussian moved by d px):\n")
    print("| d (px) | " + " | ".join(LOSSES) + " |")
    print("|---|" + "---|" * len(LOSSES))
    for d in args.offsets:
        gains = [best_gain(d, loss, wm, args.size, args.sigma, args.radius) for loss, wm in LOSSES.values()]
        print(f"| {d:g} | " + " | ".join(f"{g:.3f}" for g in gains) + " |")
    side = 2 * args.radius + 1
    title = f"one heatmap fitted to jittered targets (sigma {args.sigma:g}, {side}x{side})"
    print(f"\nfigure: {figure(results, args.figure, title)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
