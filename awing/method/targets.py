"""Ground-truth heatmaps: sub-pixel Gaussian landmark channels and the boundary channel.

All functions are batched tensor functions that run on whatever device the points are on. Points are
in heatmap pixels (pixel centres at integers); see docs/ARCHITECTURE.md for the crop -> heatmap map.
"""

from __future__ import annotations

import torch


def inside_mask(points: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """(B, N) bool: the point is annotated (finite) and lies on the heatmap grid ``size = (H, W)``."""
    h, w = size
    finite = torch.isfinite(points).all(dim=-1)
    x, y = points[..., 0], points[..., 1]
    return finite & (x >= -0.5) & (x <= w - 0.5) & (y >= -0.5) & (y <= h - 0.5)


def landmark_heatmaps(
    points: torch.Tensor, size: tuple[int, int], sigma: float = 1.5, radius: int = 3
) -> tuple[torch.Tensor, torch.Tensor]:
    """One Gaussian per landmark, centred at its sub-pixel position.

    ``exp(-((x - px)^2 + (y - py)^2) / (2 sigma^2))`` on the ``(2 radius + 1)^2`` pixels around the
    nearest pixel to the point (7x7 at radius 3, the paper's support at 64x64), zero elsewhere.

    Args:
        points: (B, N, 2) landmark positions in heatmap pixels; NaN for missing.
        size: (H, W) heatmap size.
    Returns:
        heatmaps: (B, N, H, W) float32 in [0, 1]; an all-zero channel for a missing or outside point.
        mask: (B, N) bool, True where the point is annotated and on the grid.
    """
    h, w = size
    mask = inside_mask(points, size)
    safe = torch.where(mask[..., None], points, torch.zeros_like(points)).float()
    xs = torch.arange(w, device=points.device, dtype=torch.float32)
    ys = torch.arange(h, device=points.device, dtype=torch.float32)
    dx = xs - safe[..., 0:1]  # (B, N, W)
    dy = ys - safe[..., 1:2]  # (B, N, H)
    gx = torch.exp(-(dx**2) / (2 * sigma**2)) * ((xs - safe[..., 0:1].round()).abs() <= radius)
    gy = torch.exp(-(dy**2) / (2 * sigma**2)) * ((ys - safe[..., 1:2].round()).abs() <= radius)
    heat = gy[..., :, None] * gx[..., None, :]
    return heat * mask[..., None, None], mask


def segment_distance(pixels: torch.Tensor, start: torch.Tensor, end: torch.Tensor) -> torch.Tensor:
    """Euclidean distance from points to line segments, each segment with its own points.

    Args:
        pixels: (B, S, ..., 2) points (pixel centres) measured against segment ``(b, s)``.
        start, end: (B, S, 2) segment end points.
    Returns:
        (B, S, ...) distances.
    """
    extra = (1,) * (pixels.dim() - 3)
    a = start.reshape(*start.shape[:2], *extra, 2)
    direction = end.reshape(a.shape) - a
    length2 = (direction**2).sum(-1).clamp_min(1e-12)
    rel = pixels - a
    t = ((rel * direction).sum(-1) / length2).clamp(0, 1)
    closest = rel - t[..., None] * direction
    return torch.sqrt((closest**2).sum(-1))


def boundary_heatmap(
    points: torch.Tensor,
    segments: torch.Tensor,
    size: tuple[int, int],
    sigma: float = 1.0,
    cutoff: float = 3.0,
) -> torch.Tensor:
    """The boundary channel (Sec. 5, 7.3): all boundary lines in one heatmap.

    Each line is a polyline through its landmarks; with ``d`` the distance of a pixel to the nearest
    line, the value is ``exp(-d^2 / (2 sigma^2))`` where ``d < cutoff * sigma`` and 0 elsewhere. Taking
    the nearest line is the per-pixel maximum over lines of the paper.

    Only pixels within ``cutoff * sigma`` of a segment can be non-zero, so each segment is drawn in a
    window around it (one window size for all, the largest segment's extent) and the windows are merged
    by a per-pixel maximum: the same values as measuring every pixel against every segment, about ten
    times faster for the 63 segments of the 68-point layout at 64x64.

    Args:
        points: (B, N, 2) landmarks in heatmap pixels (NaN for missing: segments touching them are dropped).
        segments: (S, 2) long, landmark index pairs (``awing.schemas.lines_as_segments``).
        size: (H, W).
    Returns:
        (B, 1, H, W) float32 in [0, 1]; all zero if the schema has no lines.
    """
    h, w = size
    b = points.shape[0]
    heat = points.new_zeros((b, h * w), dtype=torch.float32)
    if segments.numel() == 0:
        return heat.reshape(b, 1, h, w)
    segments = segments.to(points.device)
    start, end = points[:, segments[:, 0]].float(), points[:, segments[:, 1]].float()  # (B, S, 2)
    valid = torch.isfinite(start).all(-1) & torch.isfinite(end).all(-1)  # (B, S)
    start = torch.where(valid[..., None], start, torch.zeros_like(start))
    end = torch.where(valid[..., None], end, torch.zeros_like(end))
    reach = cutoff * sigma
    # (B, S, 2): each window's first and last pixel, x and y, inside the grid
    last_pixel = torch.tensor([w - 1, h - 1], device=points.device, dtype=torch.float32)
    low = (torch.minimum(start, end) - reach).floor().clamp(min=0)
    high = torch.minimum((torch.maximum(start, end) + reach).ceil(), last_pixel)
    side = int((high - low).amax().clamp(min=0).item()) + 1  # <= max(h, w)
    steps = torch.arange(side, device=points.device, dtype=torch.float32)
    xs = low[..., 0:1] + steps  # (B, S, K)
    ys = low[..., 1:2] + steps
    pixels = torch.stack(torch.broadcast_tensors(xs[..., None, :], ys[..., :, None]), dim=-1)  # (B, S, K, K, 2)
    dist = segment_distance(pixels, start, end)  # (B, S, K, K)
    value = torch.exp(-(dist**2) / (2 * sigma**2)) * (dist < reach)
    on_grid = (xs[..., None, :] >= 0) & (xs[..., None, :] < w) & (ys[..., :, None] >= 0) & (ys[..., :, None] < h)
    value = value * (on_grid & valid[..., None, None])
    index = (ys[..., :, None].clamp(0, h - 1) * w + xs[..., None, :].clamp(0, w - 1)).long()
    heat.scatter_reduce_(1, index.reshape(b, -1), value.reshape(b, -1), reduce="amax")
    return heat.reshape(b, 1, h, w)


def render_targets(
    points: torch.Tensor,
    size: tuple[int, int],
    segments: torch.Tensor | None,
    sigma: float = 1.5,
    radius: int = 3,
    boundary_sigma: float = 1.0,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Landmark heatmaps followed, if ``segments`` is given, by the boundary channel.

    Returns:
        targets: (B, N [+ 1], H, W).
        channel_mask: (B, N [+ 1]) bool; the boundary channel is supervised where every point of the
            boundary lines is annotated (a face with a missing line point, e.g. a mixed-source sample
            from a sparser layout, would teach an incomplete boundary).
    """
    heat, mask = landmark_heatmaps(points, size, sigma, radius)
    if segments is None:
        return heat, mask
    boundary = boundary_heatmap(points, segments, size, boundary_sigma)
    line_points = torch.unique(segments.to(points.device).reshape(-1))
    complete = torch.isfinite(points[:, line_points]).flatten(1).all(-1)
    return torch.cat([heat, boundary], 1), torch.cat([mask, complete[:, None]], 1)
