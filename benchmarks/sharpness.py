"""Fig. 2 / Sec. 1 of the paper, measured: are AWing's heatmaps sharper than MSE's?

    python -m benchmarks.sharpness MSE_RUN AW_RUN --out DIR [--device cpu|cuda|auto]

(``MSE_RUN`` / ``AW_RUN``: a run folder holding ``best.pt`` (else ``last.pt``), or a ``.pt`` file; several
seeds of one method as a comma-separated list.) ``benchmarks/reproduce.py sharpness`` calls
:func:`sharpness_report` on its MSE and AW runs.

The paper's claim: a model trained with MSE predicts blurry, dilated heatmaps with a low intensity at
the landmarks; AWing's are sharp. On every face of the runs' validation split (rebuilt from the
checkpoint's config, no augmentation, no flip test), with the last stack's landmark heatmaps (the
boundary channel left out), for every annotated landmark that lies on the heatmap grid:

``peak``        the heatmap maximum (the value at the predicted point).
``value@GT``    the heatmap bilinearly sampled at the ground-truth point (heatmap pixels).
``radius@GT``   sqrt of the second moment of ``clamp(h, 0)`` about the ground-truth point, over the
                ``(2 R + 1)^2`` window (R = 6) centred on the pixel nearest to it:
                ``sqrt(sum w d^2 / sum w)``, ``d`` the distance to the GT point. A Gaussian of sigma
                ``s`` gives ``s sqrt(2)``; a flat window gives about 5.3 (R = 6). It grows with blur,
                with a dilated shoulder and with a peak off the GT point.
``blob radius`` the same second moment about its own centroid, over the window centred on the heatmap
                maximum: the size of the predicted blob, whatever its position (Gaussian: ``s sqrt(2)``).
``area>½peak``  the number of heatmap pixels (whole channel) above half the channel's peak (the
                "dilated" area; a Gaussian of sigma ``s`` gives about ``2 pi ln2 s^2``). NaN for a
                peak <= 0.
``error``       distance (heatmap pixels) from the decoded point (argmax with the quarter-pixel shift)
                to the ground truth.

Each statistic is averaged over points and faces (NaNs left out) for each run, then shown as mean ± std
over a method's runs (seeds). The reference row is the same statistics of the ground-truth targets
(``render_targets`` with the config's sigma and radius) on the same faces; its peak and value@GT are
below 1 because the points are sub-pixel (the Gaussian's centre falls between pixel centres, and bilinear
sampling of a Gaussian under-reads its top), and its radii are below ``sigma sqrt(2)`` when the target's
support (``radius``) truncates the Gaussian. ``sharpness.json`` also holds
the radial profiles (mean heatmap value against distance to the GT point, 0.5-pixel bins) and
``sharpness.png`` shows three validation faces: the input crop, the GT heatmap and each method's
prediction (max over landmark channels, one colour scale 0..1), plus the radial profiles.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

import numpy as np
import torch

if __package__:  # python -m benchmarks.sharpness, or imported
    from benchmarks._common import REPO
else:  # python benchmarks/sharpness.py
    from _common import REPO

from awing.core.checkpoint import load_checkpoint
from awing.core.config import Config, config_from_dict
from awing.core.device import resolve_device
from awing.data.build import build_dataset, read_split
from awing.data.dataset import LandmarkDataset, build_loader
from awing.engine.diagnostics import channel_gradient
from awing.method.codec import codec_from_dict
from awing.method.decode import bilinear_sample, decode_heatmaps
from awing.method.losses import build_loss
from awing.method.model import model_from_checkpoint, predict_heatmaps
from awing.method.targets import inside_mask, render_targets

WINDOW = 6  # half-size of the window around a point (heatmap pixels)
PROFILE_STEP = 0.5  # radial-profile bin width (heatmap pixels)
STATS = ("peak", "value_at_gt", "radius_gt", "radius_blob", "half_area", "error")
HEADERS = {
    "peak": "peak",
    "value_at_gt": "value@GT",
    "radius_gt": "radius@GT (px)",
    "radius_blob": "blob radius (px)",
    "half_area": "area>½peak (px²)",
    "error": "error (px)",
}
REFERENCE = "GT target"
# The losses whose gradient the per-part table splits, each at the paper's / its default parameters and
# without a weight map, on every run's own predictions.
GRADIENT_LOSSES = {"AW": "awing", "MSE": "mse"}

__all__ = [
    "heatmap_statistics",
    "bilinear_sample",
    "second_moment_radius",
    "half_peak_area",
    "radial_profile",
    "run_statistics",
    "sharpness_report",
    "main",
]


# ------------------------------------------------------------------------------------- statistics
def _window_weights(heat: torch.Tensor, centres: torch.Tensor, window: int):
    """clamp(h, 0) inside the (2 window + 1)^2 window around the pixel nearest to each centre, and the
    pixel coordinate grids (broadcastable to (B, N, H, W))."""
    _, _, h, w = heat.shape
    xs = torch.arange(w, device=heat.device, dtype=torch.float32).view(1, 1, 1, w)
    ys = torch.arange(h, device=heat.device, dtype=torch.float32).view(1, 1, h, 1)
    cx, cy = centres[..., 0, None, None].round(), centres[..., 1, None, None].round()
    inside = ((xs - cx).abs() <= window) & ((ys - cy).abs() <= window)
    return heat.clamp_min(0) * inside, xs, ys


def second_moment_radius(
    heat: torch.Tensor, centres: torch.Tensor, window: int = WINDOW, central: bool = False
) -> torch.Tensor:
    """sqrt of the second moment of ``clamp(h, 0)`` in the window around each centre -> (B, N).

    Args:
        heat: (B, N, H, W).
        centres: (B, N, 2) ``x, y`` heatmap pixels; the window is centred on the nearest pixel.
        central: measure distances from the weighted centroid of the window (the blob's own size)
            instead of from ``centres``.
    Returns:
        radius in heatmap pixels; NaN where the centre is NaN or the window holds no positive mass.
        A 2-D Gaussian of sigma ``s`` gives ``s * sqrt(2)`` (``E[dx^2 + dy^2] = 2 s^2``).
    """
    finite = torch.isfinite(centres).all(-1)
    safe = torch.where(finite[..., None], centres, torch.zeros_like(centres)).float()
    weights, xs, ys = _window_weights(heat.float(), safe, window)
    mass = weights.sum((-1, -2))
    denom = mass.clamp_min(1e-12)
    if central:
        cx = (weights * xs).sum((-1, -2)) / denom
        cy = (weights * ys).sum((-1, -2)) / denom
    else:
        cx, cy = safe[..., 0], safe[..., 1]
    d2 = (xs - cx[..., None, None]) ** 2 + (ys - cy[..., None, None]) ** 2
    radius = ((weights * d2).sum((-1, -2)) / denom).sqrt()
    ok = finite & (mass > 1e-12)
    return torch.where(ok, radius, torch.full_like(radius, float("nan")))


def half_peak_area(heat: torch.Tensor) -> torch.Tensor:
    """(B, N): pixels of each channel above half its maximum (NaN where the maximum is <= 0)."""
    peak = heat.flatten(-2).amax(-1)
    count = (heat > 0.5 * peak[..., None, None]).flatten(-2).sum(-1).float()
    return torch.where(peak > 0, count, torch.full_like(count, float("nan")))


def heatmap_statistics(heat: torch.Tensor, points: torch.Tensor, window: int = WINDOW) -> dict[str, torch.Tensor]:
    """Per-landmark sharpness statistics (see the module docstring).

    Args:
        heat: (B, N, H, W) landmark heatmaps.
        points: (B, N, 2) ground-truth ``x, y`` in heatmap pixels (NaN: missing).
    Returns:
        ``{name: (B, N) float tensor}`` for the names of :data:`STATS`; NaN where the point is missing or
        off the heatmap grid.
    """
    heat = heat.detach().float()
    points = points.to(heat.device).float()
    valid = inside_mask(points, heat.shape[-2:])
    pts = torch.where(valid[..., None], points, torch.full_like(points, float("nan")))
    decoded, peak = decode_heatmaps(heat)
    b, n, h, w = heat.shape
    index = heat.reshape(b, n, h * w).argmax(-1)
    argmax = torch.stack([(index % w).float(), torch.div(index, w, rounding_mode="floor").float()], -1)
    stats = {
        "peak": peak,
        "value_at_gt": bilinear_sample(heat, pts),
        "radius_gt": second_moment_radius(heat, pts, window),
        "radius_blob": second_moment_radius(heat, argmax, window, central=True),
        "half_area": half_peak_area(heat),
        "error": (decoded - pts).norm(dim=-1),
    }
    nan = torch.tensor(float("nan"), device=heat.device)
    return {k: torch.where(valid, v.float(), nan) for k, v in stats.items()}


def radial_profile(
    heat: torch.Tensor, points: torch.Tensor, window: int = WINDOW, step: float = PROFILE_STEP
) -> tuple[torch.Tensor, torch.Tensor]:
    """Sums and counts of heatmap values by distance ``d`` to the GT point, in bins of ``step`` pixels
    over ``0 <= d < window`` (valid points only) -> two (ceil(window / step),) float64 tensors."""
    heat = heat.detach().float()
    points = points.to(heat.device).float()
    bins = int(math.ceil(window / step))
    valid = inside_mask(points, heat.shape[-2:])
    safe = torch.where(valid[..., None], points, torch.zeros_like(points))
    _, _, h, w = heat.shape
    xs = torch.arange(w, device=heat.device, dtype=torch.float32).view(1, 1, 1, w)
    ys = torch.arange(h, device=heat.device, dtype=torch.float32).view(1, 1, h, 1)
    dist = ((xs - safe[..., 0, None, None]) ** 2 + (ys - safe[..., 1, None, None]) ** 2).sqrt()
    keep = valid[..., None, None] & (dist < window)
    index = (dist[keep] / step).floor().long().clamp_max(bins - 1)
    sums = torch.bincount(index, weights=heat[keep].double(), minlength=bins)
    counts = torch.bincount(index, minlength=bins).double()
    return sums.cpu(), counts.cpu()


# ------------------------------------------------------------------------------------------- runs
def checkpoint_path(run: str | Path) -> Path:
    run = Path(run)
    if run.is_file():
        return run
    for name in ("best.pt", "last.pt"):
        if (run / name).is_file():
            return run / name
    raise FileNotFoundError(f"no best.pt or last.pt in {run}")


def _data_root(root: str) -> str:
    """A relative data root that does not exist from here is taken relative to the repository (runs
    are trained with the repository as the working directory)."""
    path = Path(root).expanduser()
    if not path.is_absolute() and not path.exists() and (REPO / path).exists():
        return str(REPO / path)
    return str(path)


def val_dataset(cfg: Config, schema, input_size: int) -> LandmarkDataset:
    """The run's validation split, without augmentation, cropped as in training."""
    d = cfg.data
    if not d.val_split:
        raise ValueError("the run's config has no data.val_split")
    samples = read_split(d, d.val_split, root=_data_root(d.root))
    if not samples:
        raise ValueError(f"no samples in {d.format}:{d.root}:{d.val_split}")
    return build_dataset(cfg, samples, schema, input_size)


def _nanmean(values: list[torch.Tensor]) -> float:
    v = torch.cat([t.flatten() for t in values]).double() if values else torch.zeros(0)
    v = v[torch.isfinite(v)]
    return float(v.mean()) if v.numel() else float("nan")


def point_groups(point_names) -> dict[str, list[int]]:
    """Landmark indices by facial part, from the schema's point names (``left_eye_3`` -> ``eye``,
    ``outer_lip_04`` -> ``mouth``, ``nose_bridge_1`` -> ``nose``, ``contour_07`` -> ``contour``), in first-seen
    order."""
    groups: dict[str, list[int]] = {}
    for i, name in enumerate(point_names):
        words = [w for w in str(name).split("_") if w not in ("left", "right") and not w.isdigit()]
        part = "mouth" if "lip" in words or "mouth" in words else words[0] if words else "point"
        groups.setdefault(part, []).append(i)
    return groups


@torch.no_grad()
def run_statistics(
    run: str | Path,
    device: str | torch.device = "cpu",
    examples: list[int] | None = None,
    reference: bool = False,
    batch_size: int = 16,
    window: int = WINDOW,
) -> dict:
    """Statistics of one run on its validation split.

    Returns a dict: ``run`` (checkpoint path), ``stats`` ({name: mean}), ``profile`` (mean value per
    radial bin), ``n_faces``, ``n_points`` (landmarks counted), ``dataset`` (format, root, split, sigma,
    radius), ``examples`` ({face index: (H, W) max over landmark channels}); with ``reference``, also
    ``reference``: the same for the ground-truth targets (``stats``, ``profile``, ``examples``), and
    ``crops`` ({face index: (S, S, 3) uint8 RGB}, ``points`` ({face index: (N, 2) crop pixels}).
    """
    device = resolve_device(device)
    path = checkpoint_path(run)
    ckpt = load_checkpoint(path)
    if "config" not in ckpt:
        raise ValueError(f"{path} holds no config: cannot rebuild its validation set")
    cfg = config_from_dict(ckpt["config"])
    model, schema, codec = model_from_checkpoint(ckpt, device)
    spec = model.spec
    size = codec.heatmap_size
    dataset = val_dataset(cfg, schema, codec.input_size)
    examples = list(examples) if examples is not None else []
    loader = build_loader(dataset, batch_size, shuffle=False, workers=0)
    parts: dict[str, dict[str, list]] = {"model": {k: [] for k in STATS}, "gt": {k: [] for k in STATS}}
    losses = {label: build_loss(name) for label, name in GRADIENT_LOSSES.items()}
    gradients: dict[str, list[torch.Tensor]] = {label: [] for label in losses}
    t = cfg.targets
    profiles = {"model": None, "gt": None}
    out_examples: dict[str, dict] = {"model": {}, "gt": {}}
    crops, crop_points = {}, {}
    n_faces = n_points = 0
    for batch in loader:
        if batch["image"].shape[0] == 0:
            continue
        images = batch["image"].to(device).float().div_(255)
        heat = predict_heatmaps(model, images, None, None)
        points = codec.crop_to_heatmap(batch["points"].to(device).float())
        heats = {"model": heat}
        targets, _ = render_targets(points, (size, size), None, t.sigma, t.radius)
        on_grid = inside_mask(points, (size, size))
        for label, loss in losses.items():
            gradients[label].append(torch.where(on_grid, channel_gradient(loss, heat, targets), 0.0).cpu())
        if reference:
            heats["gt"] = targets
        for key, hm in heats.items():
            for name, value in heatmap_statistics(hm, points, window).items():
                parts[key][name].append(value.cpu())
            sums, counts = radial_profile(hm, points, window)
            prev = profiles[key]
            profiles[key] = (sums, counts) if prev is None else (prev[0] + sums, prev[1] + counts)
        n_faces += images.shape[0]
        n_points += int(inside_mask(points, (size, size)).sum())
        for row, index in enumerate(batch["index"].tolist()):
            if index in examples:
                for key, hm in heats.items():
                    out_examples[key][index] = hm[row].amax(0).cpu().numpy()
                crops[index] = batch["image"][row].permute(1, 2, 0).numpy()
                crop_points[index] = batch["points"][row].numpy()

    groups = point_groups(schema.point_names)

    def summary(key):
        sums, counts = profiles[key] if profiles[key] is not None else (torch.zeros(1), torch.zeros(1))
        profile = torch.where(counts > 0, sums / counts.clamp_min(1), torch.full_like(sums, float("nan")))
        per_point = {name: torch.cat(parts[key][name]) if parts[key][name] else None for name in STATS}
        by_group = {
            group: {name: _nanmean([v[:, idx]]) for name, v in per_point.items() if v is not None}
            for group, idx in groups.items()
        }
        return {
            "stats": {name: _nanmean(parts[key][name]) for name in STATS},
            "by_group": by_group,
            "profile": [float(v) for v in profile],
            "examples": out_examples[key],
        }

    d = cfg.data
    total = {label: torch.cat(g).double().sum(0) for label, g in gradients.items()}  # (N,) per landmark
    gradient_share = {
        label: {group: float(g[idx].sum() / g.sum()) for group, idx in groups.items()} for label, g in total.items()
    }
    result = {
        "run": str(path),
        **summary("model"),
        "gradient_share": gradient_share,
        "point_share": {group: len(idx) / len(schema.point_names) for group, idx in groups.items()},
        "n_faces": n_faces,
        "n_points": n_points,
        "dataset": {
            "format": d.format, "root": d.root, "split": d.val_split, "sigma": cfg.targets.sigma,
            "radius": cfg.targets.radius, "heatmap_size": size, "input_size": spec.input_size,
        },
        "loss": cfg.loss.name,
    }
    if reference:
        result["reference"] = summary("gt")
        result["crops"], result["points"] = crops, crop_points
        result["codec"] = codec.to_dict()
    return result


# ----------------------------------------------------------------------------------------- report
def _cell(values: list[float], digits: int) -> str:
    v = np.asarray([x for x in values if np.isfinite(x)], dtype=float)
    if v.size == 0:
        return "–"
    if v.size == 1:
        return f"{v[0]:.{digits}f}"
    return f"{v.mean():.{digits}f} ± {v.std(ddof=1):.{digits}f}"


DIGITS = {"peak": 3, "value_at_gt": 3, "radius_gt": 2, "radius_blob": 2, "half_area": 1, "error": 2}


def _mean_std(values: list[float]) -> tuple[float, float]:
    v = np.asarray([x for x in values if np.isfinite(x)], dtype=float)
    if v.size == 0:
        return float("nan"), float("nan")
    return float(v.mean()), float(v.std(ddof=1)) if v.size > 1 else 0.0


def _figure(
    path: Path,
    labels: list[str],
    first: dict,
    reference: dict,
    examples: dict[str, dict],
    profiles: dict,
    show_images: bool = True,
) -> Path:
    """Rows: three val faces (crop, GT heatmap, each method's heatmap, colour scale 0..1); last row:
    the radial profiles. ``show_images=False`` draws the ground-truth points on a blank panel instead of
    the face (for figures that are published where the dataset's images may not be)."""
    from matplotlib.figure import Figure

    faces = sorted(first["crops"])
    cols = 2 + len(labels)
    fig = Figure(figsize=(2.4 * cols + 0.6, 2.4 * len(faces) + 2.8), dpi=100)
    grid = fig.add_gridspec(len(faces) + 1, cols, height_ratios=[1] * len(faces) + [1.1])
    image, heat_axes = None, []
    size = first["dataset"]["heatmap_size"]
    codec = codec_from_dict(first["codec"])
    for r, face in enumerate(faces):
        ax = fig.add_subplot(grid[r, 0])
        crop = first["crops"][face]
        ax.imshow(crop if show_images else np.full_like(crop, 255))
        pts = first["points"][face]
        ax.scatter(pts[:, 0], pts[:, 1], s=4, c="lime", linewidths=0)
        ax.set_ylabel(f"val face {face}", fontsize=8)
        panels = [("GT target", reference["examples"][face])]
        panels += [(label, examples[label].get(face)) for label in labels]
        for c, (title, hm) in enumerate(panels, start=1):
            ax2 = fig.add_subplot(grid[r, c])
            heat_axes.append(ax2)
            if hm is not None:
                image = ax2.imshow(hm, vmin=0.0, vmax=1.0, cmap="magma", interpolation="nearest")
                gt = codec.crop_to_heatmap(np.asarray(pts, dtype=np.float64))
                ax2.scatter(gt[:, 0], gt[:, 1], s=2, c="cyan", linewidths=0, alpha=0.6)
                ax2.set_xlim(-0.5, size - 0.5)
                ax2.set_ylim(size - 0.5, -0.5)
            if r == 0:
                ax2.set_title(title, fontsize=9)
            ax2.set_xticks([])
            ax2.set_yticks([])
        if r == 0:
            ax.set_title("input crop" if show_images else "GT points (image withheld)", fontsize=9)
        ax.set_xticks([])
        ax.set_yticks([])
    if image is not None:
        fig.colorbar(image, ax=heat_axes, fraction=0.02, pad=0.01, label="heatmap value (max over landmarks)")
    ax = fig.add_subplot(grid[len(faces), :])
    r = np.arange(len(reference["profile"])) * PROFILE_STEP + PROFILE_STEP / 2
    ax.plot(r, reference["profile"], "k--", label=REFERENCE)
    for label in labels:
        ax.plot(r, profiles[label], marker="o", ms=3, label=label)
    ax.axhline(0, color="grey", lw=0.5)
    ax.set_xlabel("distance to the ground-truth point (heatmap pixels)")
    ax.set_ylabel("mean heatmap value")
    ax.set_title("radial profile around the ground truth (all val landmarks)", fontsize=9)
    ax.legend(fontsize=8)
    ax.grid(True, alpha=0.3)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, format="png")
    return path


GROUP_STATS = ("error", "peak", "half_area")  # the per-part table's columns


def group_table(labels: list[str], results: dict[str, list[dict]], reference: dict) -> list[str]:
    """Markdown lines: the decoding error, peak and area above half the peak of each facial part
    (:func:`point_groups`), a row per method (mean +- std over seeds) and the GT targets' row."""
    groups = list(reference["by_group"])
    head = "| heatmaps | " + " | ".join(f"{g}: {HEADERS[k]}" for g in groups for k in GROUP_STATS) + " |"
    rows = [("GT target", [reference])] + [(label, results[label]) for label in labels]
    lines = ["By facial part:", "", head, "|---|" + "---|" * (len(groups) * len(GROUP_STATS))]
    for label, rs in rows:
        cells = [_cell([r["by_group"][g][k] for r in rs], DIGITS[k]) for g in groups for k in GROUP_STATS]
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return [*lines, ""]


def gradient_table(labels: list[str], results: dict[str, list[dict]]) -> list[str]:
    """Markdown lines: the share (%) of each loss's ``sum |dL/d y_hat|`` that falls on each facial part's
    channels, on every method's own heatmaps (mean +- std over seeds), under the parts' share of the points."""
    first = results[labels[0]][0]
    groups = list(first["point_share"])
    head = "| heatmaps | loss | " + " | ".join(groups) + " |"
    lines = [
        "Where each loss's gradient goes, by facial part (% of Σ|dL/dŷ| over the landmark channels, no weight map):",
        "",
        head,
        "|---|---|" + "---|" * len(groups),
        "| (share of the points) | – | " + " | ".join(f"{100 * first['point_share'][g]:.1f}" for g in groups) + " |",
    ]
    for label in labels:
        for loss in GRADIENT_LOSSES:
            cells = [_cell([100 * r["gradient_share"][loss][g] for r in results[label]], 1) for g in groups]
            lines.append(f"| {label} | {loss} | " + " | ".join(cells) + " |")
    return [*lines, ""]


def sharpness_report(
    runs: dict[str, list[Path]], out_dir: Path, device: str = "cpu", faces: int = 3, show_images: bool = True
) -> str:
    """Measure every run's heatmaps on its validation split; write ``out_dir/sharpness.json`` and
    ``out_dir/sharpness.png`` and return the Markdown table (with the figure's link).

    Args:
        runs: method label -> run folders (seeds), e.g. ``{"MSE": [...], "AW": [...]}``. The first run
            of the first method defines the validation set shown and the GT reference row.
        out_dir: where the JSON and the PNG go.
        device: ``cpu``, ``cuda``, ``cuda:N`` or ``auto``.
        faces: validation faces in the figure (spread evenly over the split).
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    labels = [label for label, dirs in runs.items() if dirs]
    if not labels:
        raise ValueError("no runs given")
    first_run = sorted(runs[labels[0]])[0]
    ckpt = load_checkpoint(checkpoint_path(first_run))
    cfg = config_from_dict(ckpt["config"]) if "config" in ckpt else Config()
    n_val = len(read_split(cfg.data, cfg.data.val_split, root=_data_root(cfg.data.root)))
    chosen = sorted({int(i) for i in np.linspace(0, n_val - 1, min(faces, n_val))}) if n_val else []

    results: dict[str, list[dict]] = {}
    first = None
    for label in labels:
        results[label] = []
        for i, run in enumerate(sorted(runs[label])):
            is_first = first is None
            res = run_statistics(run, device, examples=chosen if i == 0 else [], reference=is_first)
            if is_first:
                first = res
            results[label].append(res)
    reference = first["reference"]

    # table
    head = "| heatmaps | runs | " + " | ".join(HEADERS[k] for k in STATS) + " |"
    lines = [
        "### Heatmap sharpness (Fig. 2): MSE vs AWing predictions on the validation split",
        "",
        head,
        "|---|---|" + "---|" * len(STATS),
        f"| {REFERENCE} (σ={first['dataset']['sigma']:g}, r={first['dataset']['radius']}) | – | "
        + " | ".join(_cell([reference["stats"][k]], DIGITS[k]) for k in STATS)
        + " |",
    ]
    for label in labels:
        cells = [_cell([r["stats"][k] for r in results[label]], DIGITS[k]) for k in STATS]
        lines.append(f"| {label} | {len(results[label])} | " + " | ".join(cells) + " |")
    ds = first["dataset"]
    lines += [
        "",
        f"{ds['format']}:{ds['split']}, {first['n_faces']} faces, {first['n_points']} landmarks on the "
        f"{ds['heatmap_size']}×{ds['heatmap_size']} heatmaps; last stack, landmark channels only, no flip test. "
        "Means over landmarks and faces; ± is the std over seeds. "
        f"peak: heatmap maximum; value@GT: bilinear value at the ground truth; radius@GT: sqrt of the second "
        f"moment of clamp(h, 0) about the GT point in the {2 * WINDOW + 1}×{2 * WINDOW + 1} window around it "
        f"(Gaussian: σ√2; flat window: ≈{math.sqrt(2 * WINDOW * (WINDOW + 1) / 3):.1f}); blob radius: the same "
        "about the blob's own centroid, window on the maximum; area>½peak: pixels of the channel above half "
        "its maximum; error: decoded point to GT, heatmap pixels.",
        "",
        "![](sharpness.png)",
        "",
        *group_table(labels, results, reference),
        *gradient_table(labels, results),
    ]
    text = "\n".join(lines)

    # figure
    examples = {label: results[label][0]["examples"] for label in labels}
    profiles = {label: np.nanmean([r["profile"] for r in results[label]], axis=0) for label in labels}
    _figure(out_dir / "sharpness.png", labels, first, reference, examples, profiles, show_images)

    # json
    def method_json(rs: list[dict]) -> dict:
        ms = {k: _mean_std([r["stats"][k] for r in rs]) for k in STATS}
        return {
            "mean": {k: v[0] for k, v in ms.items()},
            "std": {k: v[1] for k, v in ms.items()},
            "runs": [{"run": r["run"], "loss": r["loss"], "stats": r["stats"], "profile": r["profile"],
                      "gradient_share": r["gradient_share"], "n_faces": r["n_faces"], "n_points": r["n_points"]}
                     for r in rs],
        }

    data = {
        "dataset": ds,
        "n_faces": first["n_faces"],
        "n_points": first["n_points"],
        "window": WINDOW,
        "profile_step": PROFILE_STEP,
        "figure_faces": chosen,
        "definitions": {k: HEADERS[k] for k in STATS},
        "reference": {"stats": reference["stats"], "profile": reference["profile"]},
        "methods": {label: method_json(results[label]) for label in labels},
    }
    (out_dir / "sharpness.json").write_text(json.dumps(_jsonable(data), indent=1, allow_nan=True))
    return text


def _jsonable(value):
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, (float, np.floating)):
        return None if not math.isfinite(float(value)) else float(value)
    if isinstance(value, np.integer):
        return int(value)
    return value


# -------------------------------------------------------------------------------------------- CLI
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("mse", help="MSE run folder(s) or checkpoint(s), comma-separated for several seeds")
    parser.add_argument("aw", help="AWing run folder(s) or checkpoint(s), comma-separated for several seeds")
    parser.add_argument("--out", required=True, help="output folder (sharpness.md / .json / .png)")
    parser.add_argument("--device", default="cpu", help="cpu, cuda, cuda:N or auto")
    parser.add_argument("--faces", type=int, default=3, help="validation faces in the figure")
    parser.add_argument("--no-images", action="store_true", help="leave the face crops out of the figure")
    args = parser.parse_args(argv)
    runs = {label: [Path(p) for p in spec.split(",") if p] for label, spec in (("MSE", args.mse), ("AW", args.aw))}
    out = Path(args.out)
    text = sharpness_report(runs, out, device=args.device, faces=args.faces, show_images=not args.no_images)
    (out / "sharpness.md").write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
