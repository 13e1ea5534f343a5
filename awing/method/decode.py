"""From heatmaps back to points: the sub-pixel decoders and their registry, and batched affine maps.

Decoders: ``quarter``, argmax with the quarter-pixel shift (the paper's, Sec. 7.3), and ``dark``, the
distribution-aware Taylor refinement (DARK). :data:`DECODERS` maps each name to its function; the codec,
config validation and every ``--decoder`` option read it, so a new decoder is one function here with
``@register_decoder``.

The frames (heatmap -> crop -> image) are the codec's (:mod:`awing.method.codec`); these are its parts.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from typing import Protocol

import torch
import torch.nn.functional as F

__all__ = [
    "bilinear_sample",
    "DECODERS",
    "Decoder",
    "register_decoder",
    "get_decoder",
    "describe_decoders",
    "decode_heatmaps",
    "gaussian_blur",
    "dark_refine",
    "dark_refine_full",
    "invert_affine",
    "apply_affine",
]


class Decoder(Protocol):
    """A sub-pixel decoder: (B, N, H, W) heatmaps -> (B, N, 2) float32 ``x, y`` peaks in heatmap pixels
    and (B, N) float32 peak values. It takes the codec's fields by keyword and may ignore any of them."""

    summary: str

    def __call__(
        self, heatmaps: torch.Tensor, *, sigma: float, shift: float, interior: str
    ) -> tuple[torch.Tensor, torch.Tensor]: ...


# The registry: decoder name -> function, in registration order (HeatmapCodec.decoder is one of its keys).
DECODERS: dict[str, Decoder] = {}


def register_decoder(name: str, summary: str) -> Callable[[Callable], Decoder]:
    """Function decorator: make the decorated :class:`Decoder` the codec's decoder ``name``.

    Args:
        name: the name stored in codecs and checkpoints and given to ``--decoder``.
        summary: a few words for ``--help`` (:func:`describe_decoders`).
    Raises:
        ValueError: ``name`` is already taken by another function.
    """

    def decorate(fn: Callable) -> Decoder:
        known = DECODERS.get(name)
        if known is not None and (known.__module__, known.__qualname__) != (fn.__module__, fn.__qualname__):
            raise ValueError(f"decoder {name!r} is already registered ({known.__module__}.{known.__qualname__})")
        fn.summary = summary
        DECODERS[name] = fn
        return fn

    return decorate


def get_decoder(name: str) -> Decoder:
    """The registered decoder ``name``.

    Raises:
        ValueError: no decoder has that name (the message lists the known ones).
    """
    if name not in DECODERS:
        raise ValueError(f"decoder must be one of {', '.join(DECODERS)}, got {name!r}")
    return DECODERS[name]


def describe_decoders() -> str:
    """The registered decoders for a ``--help`` line: ``quarter (...) or dark (...)``."""
    parts = [f"{name} ({fn.summary})" for name, fn in DECODERS.items()]
    return ", ".join(parts[:-1]) + " or " + parts[-1] if len(parts) > 1 else "".join(parts)


def _first(hit: torch.Tensor) -> torch.Tensor:
    """Index of the first True along the last axis (0 where none is)."""
    return hit.to(torch.uint8).argmax(-1)


def _argmax(heatmaps: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """(B, N, H, W) -> the (B, N, H*W) float32 maps, (B, N) peak values and the peaks' integer x, y.

    The first maximum in row-major order (as ``torch.max``; a NaN counts as the maximum), found by a
    maximum per row, then the first row and the first column that hold it."""
    b, n, h, w = heatmaps.shape
    maps = heatmaps.detach().float()
    row_max = maps.amax(-1)  # (B, N, H)
    confidence = row_max.amax(-1)
    y = _first((row_max == confidence[..., None]) | row_max.isnan())
    row = maps.gather(2, y[..., None, None].expand(b, n, 1, w)).squeeze(2)  # (B, N, W)
    x = _first((row == confidence[..., None]) | row.isnan())
    return maps.reshape(b, n, h * w), confidence, x, y


def _window(flat: torch.Tensor, x: torch.Tensor, y: torch.Tensor, offsets: torch.Tensor, size: tuple[int, int]):
    """The (B, N, K*K) values of (B, N, H*W) maps at rows ``y + offsets`` and columns ``x + offsets``
    (row-major), indices clamped to the map (the replicated edge)."""
    h, w = size
    rows = (y[..., None] + offsets).clamp(0, h - 1)  # (B, N, K)
    cols = (x[..., None] + offsets).clamp(0, w - 1)
    return flat.gather(-1, (rows[..., :, None] * w + cols[..., None, :]).flatten(-2))


def _quarter_shift(
    around: torch.Tensor, x: torch.Tensor, y: torch.Tensor, size: tuple[int, int], shift: float, interior: str
) -> torch.Tensor:
    """(B, N, 2) argmax ``x, y`` moved ``shift`` toward the larger neighbour (see :func:`decode_heatmaps`),
    from the (B, N, 3, 3) values about it (:func:`_window` with offsets -1, 0, 1)."""
    h, w = size
    inside_x, inside_y = (x > 0) & (x < w - 1), (y > 0) & (y < h - 1)
    if interior == "both":
        inside_x = inside_y = inside_x & inside_y
    elif interior != "axis":
        raise ValueError(f"interior must be 'axis' or 'both', got {interior!r}")
    dx = torch.sign(around[..., 1, 2] - around[..., 1, 0]) * inside_x
    dy = torch.sign(around[..., 2, 1] - around[..., 0, 1]) * inside_y
    return torch.stack([x.float() + shift * dx, y.float() + shift * dy], dim=-1)


def decode_heatmaps(
    heatmaps: torch.Tensor, shift: float = 0.25, interior: str = "axis"
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-channel argmax, moved ``shift`` pixels toward the larger neighbour on each axis (Sec. 7.3).

    ``interior="axis"`` (awing): the shift applies on an axis where the peak has neighbours on both sides
    along it; ``"both"`` (the authors' ``get_preds_fromhm``): only where the peak is interior on both axes.

    Args:
        heatmaps: (B, N, H, W).
    Returns:
        points: (B, N, 2) float32 ``x, y`` in heatmap pixels.
        confidence: (B, N) float32, the peak value.
    Raises:
        ValueError: ``interior`` is neither ``"axis"`` nor ``"both"``.
    """
    b, n, h, w = heatmaps.shape
    flat, confidence, x, y = _argmax(heatmaps)
    around = _window(flat, x, y, torch.arange(-1, 2, device=flat.device), (h, w)).reshape(b, n, 3, 3)
    return _quarter_shift(around, x, y, (h, w), shift, interior), confidence


def gaussian_blur(heatmaps: torch.Tensor, sigma: float) -> torch.Tensor:
    """Separable Gaussian blur of every channel, support ``2 ceil(3 sigma) + 1``, edges replicated.

    Args:
        heatmaps: (B, N, H, W) float.
    Returns:
        (B, N, H, W), same dtype.
    """
    radius = _blur_radius(sigma)
    kernel = _blur_kernel(sigma, radius, heatmaps.dtype, heatmaps.device)
    b, n, h, w = heatmaps.shape
    flat = heatmaps.reshape(b * n, 1, h, w)
    flat = F.conv2d(F.pad(flat, (radius, radius, 0, 0), mode="replicate"), kernel.view(1, 1, 1, -1))
    flat = F.conv2d(F.pad(flat, (0, 0, radius, radius), mode="replicate"), kernel.view(1, 1, -1, 1))
    return flat.reshape(b, n, h, w)


def _blur_radius(sigma: float) -> int:
    return max(1, int(math.ceil(3 * sigma)))


def _blur_kernel(sigma: float, radius: int, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    offsets = torch.arange(-radius, radius + 1, dtype=dtype, device=device)
    kernel = torch.exp(-(offsets**2) / (2 * sigma**2))
    return kernel / kernel.sum()


_TINY = 1e-10  # the floor under the smoothed heatmap before its log


def dark_refine_full(
    heatmaps: torch.Tensor, sigma: float = 1.5, shift: float = 0.25
) -> tuple[torch.Tensor, torch.Tensor]:
    """The reference implementation of :func:`dark_refine`: it blurs the whole of every heatmap.

    Same arguments, returns and results as :func:`dark_refine` (which blurs only a window around each
    peak); kept to check that against, and for the rare channel where the window cannot decide.
    """
    quarter, confidence = decode_heatmaps(heatmaps, shift)
    b, n, h, w = heatmaps.shape
    raw = heatmaps.detach().float()
    smooth = gaussian_blur(raw, sigma)
    peak = smooth.flatten(2).amax(-1).clamp_min(_TINY)
    smooth = smooth * (confidence.clamp_min(_TINY) / peak)[..., None, None]
    log = smooth.clamp_min(_TINY).log().reshape(b, n, h * w)
    index = raw.reshape(b, n, h * w).argmax(-1)
    x, y = index % w, torch.div(index, w, rounding_mode="floor")

    def at(dx: int, dy: int) -> torch.Tensor:
        xx, yy = (x + dx).clamp(0, w - 1), (y + dy).clamp(0, h - 1)
        return log.gather(-1, (yy * w + xx).unsqueeze(-1)).squeeze(-1)

    centre = at(0, 0)
    gx, gy = 0.5 * (at(1, 0) - at(-1, 0)), 0.5 * (at(0, 1) - at(0, -1))
    hxx, hyy = at(1, 0) - 2 * centre + at(-1, 0), at(0, 1) - 2 * centre + at(0, -1)
    hxy = 0.25 * (at(1, 1) - at(1, -1) - at(-1, 1) + at(-1, -1))
    refined, usable = _newton_step(x, y, (h, w), gx, gy, hxx, hyy, hxy)
    return torch.where(usable[..., None], refined, quarter), confidence


def _newton_step(x, y, size, gx, gy, hxx, hyy, hxy) -> tuple[torch.Tensor, torch.Tensor]:
    """The step ``-H^{-1} g`` from the (B, N) argmax ``x, y``: (B, N, 2) refined points and a (B, N) bool,
    True where it is defined (at least 2 pixels from the border, ``H`` negative definite, at most one
    pixel per axis)."""
    h, w = size
    det = hxx * hyy - hxy * hxy
    safe_det = torch.where(det > 1e-12, det, torch.ones_like(det))
    step_x = -(hyy * gx - hxy * gy) / safe_det
    step_y = -(hxx * gy - hxy * gx) / safe_det
    inside = (x >= 2) & (x <= w - 3) & (y >= 2) & (y <= h - 3)
    usable = inside & (hxx < 0) & (det > 1e-12) & (step_x.abs() <= 1) & (step_y.abs() <= 1)
    return torch.stack([x.float() + step_x, y.float() + step_y], dim=-1), usable


@functools.lru_cache(maxsize=16)
def _window_operators(sigma: float, device: torch.device) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """For :func:`dark_refine`: the (K,) offsets of a K = 2 ceil(3 sigma) + 3 pixel window about a peak,
    the (K*K, 9) matrix that blurs it (:func:`gaussian_blur`) into the 3 x 3 values about the peak, and
    the (9, 5) central differences ``gx, gy, hxx, hyy, hxy`` of those (row-major, rows y - 1..y + 1)."""
    radius = _blur_radius(sigma)
    kernel = _blur_kernel(sigma, radius, torch.float32, torch.device("cpu"))
    side = 2 * radius + 3
    band = torch.zeros(side, 3)  # band[i + t, i] = kernel[t]: the 1-D blur into the 3 central pixels
    for i in range(3):
        band[i : i + 2 * radius + 1, i] = kernel
    diff = torch.zeros(3, 3, 5)  # [row (dy + 1), column (dx + 1), quantity]
    diff[1, 2, 0], diff[1, 0, 0] = 0.5, -0.5
    diff[2, 1, 1], diff[0, 1, 1] = 0.5, -0.5
    diff[1, 2, 2], diff[1, 1, 2], diff[1, 0, 2] = 1.0, -2.0, 1.0
    diff[2, 1, 3], diff[1, 1, 3], diff[0, 1, 3] = 1.0, -2.0, 1.0
    diff[2, 2, 4], diff[0, 2, 4], diff[2, 0, 4], diff[0, 0, 4] = 0.25, -0.25, -0.25, 0.25
    offsets = torch.arange(-radius - 1, radius + 2)
    return offsets.to(device), torch.kron(band, band).to(device), diff.reshape(9, 5).to(device)


def dark_refine(heatmaps: torch.Tensor, sigma: float = 1.5, shift: float = 0.25) -> tuple[torch.Tensor, torch.Tensor]:
    """Sub-pixel peaks by a second-order Taylor step on the log heatmap (DARK: Zhang et al., CVPR 2020).

    A Gaussian ``exp(-|p - mu|^2 / (2 sigma^2))`` is a paraboloid in log space, so from the argmax ``m``
    one Newton step ``mu = m - H^{-1} g`` (gradient ``g`` and Hessian ``H`` of the log by central
    differences) lands on ``mu`` exactly. Predicted heatmaps are first smoothed by a Gaussian of the
    targets' ``sigma`` (and rescaled to their peak) so that their log is close to a paraboloid. Where the
    step is not defined (a peak within 2 pixels of the border, a Hessian that is not negative definite,
    or a step longer than one pixel) the quarter-pixel decoder's point is kept.

    Only the 3 x 3 smoothed values about each argmax enter the step, so only the raw
    ``(2 ceil(3 sigma) + 3)``-pixel square about it is read and blurred (indices clamped at the border, as
    the full blur's replicated edges). The result is :func:`dark_refine_full`'s up to float rounding: the
    rescale adds a constant to the log, which the differences cancel, except where a smoothed value in the
    3 x 3 window is below the log's floor (1e-10); such a channel is decoded by :func:`dark_refine_full`.

    Args:
        heatmaps: (B, N, H, W).
        sigma: the smoothing Gaussian's sigma, heatmap pixels (the codec's target sigma).
        shift: the fallback's quarter-pixel shift.
    Returns:
        points: (B, N, 2) float32 ``x, y`` in heatmap pixels.
        confidence: (B, N) float32, the peak value of the raw heatmaps.
    """
    b, n, h, w = heatmaps.shape
    flat, confidence, x, y = _argmax(heatmaps)
    offsets, blur, diff = _window_operators(float(sigma), flat.device)
    patch = _window(flat, x, y, offsets, (h, w))  # (B, N, K*K)
    side = offsets.numel()
    around = patch.reshape(b, n, side, side)[..., side // 2 - 1 : side // 2 + 2, side // 2 - 1 : side // 2 + 2]
    quarter = _quarter_shift(around, x, y, (h, w), shift, "axis")
    smooth = patch @ blur  # (B, N, 9): the blurred 3 x 3 about the peak
    gx, gy, hxx, hyy, hxy = (smooth.clamp_min(_TINY).log() @ diff).unbind(-1)
    refined, usable = _newton_step(x, y, (h, w), gx, gy, hxx, hyy, hxy)
    points = torch.where(usable[..., None], refined, quarter)
    undecided = (x >= 2) & (x <= w - 3) & (y >= 2) & (y <= h - 3) & (smooth.amin(-1) < _TINY)
    if undecided.any():
        bi, ni = undecided.nonzero(as_tuple=True)
        points[bi, ni] = dark_refine_full(heatmaps.detach()[bi, ni][None], sigma, shift)[0][0]
    return points, confidence


@register_decoder("quarter", "the paper's: argmax + a quarter-pixel shift")
def quarter_decoder(
    heatmaps: torch.Tensor, *, sigma: float, shift: float, interior: str = "axis"
) -> tuple[torch.Tensor, torch.Tensor]:
    """Sec. 7.3's decoder: :func:`decode_heatmaps` with the codec's ``shift`` and ``interior`` rule."""
    return decode_heatmaps(heatmaps, shift, interior)


@register_decoder("dark", "a Taylor step on the smoothed log heatmap")
def dark_decoder(
    heatmaps: torch.Tensor, *, sigma: float, shift: float, interior: str = "axis"
) -> tuple[torch.Tensor, torch.Tensor]:
    """:func:`dark_refine` with the codec's target ``sigma`` and ``shift``; its quarter-shift fallback
    applies the shift per axis (``interior`` is not used)."""
    return dark_refine(heatmaps, sigma, shift)


def invert_affine(matrix: torch.Tensor) -> torch.Tensor:
    """(..., 2, 3) affine -> its inverse, also (..., 2, 3).

    The 2 x 2 part is inverted in closed form (adjugate over determinant): for one face that costs less
    than ``torch.linalg.inv``'s general dispatch. A singular matrix gives inf / NaN; a crop affine never is one.
    """
    a, b, c, d = matrix[..., 0, 0], matrix[..., 0, 1], matrix[..., 1, 0], matrix[..., 1, 1]
    det = a * d - b * c
    inv = torch.stack([torch.stack([d, -b], -1), torch.stack([-c, a], -1)], -2) / det[..., None, None]
    return torch.cat([inv, -inv @ matrix[..., 2:]], dim=-1)


def apply_affine(points: torch.Tensor, matrix: torch.Tensor) -> torch.Tensor:
    """Apply (B, 2, 3) affines to (B, N, 2) points (NaN stays NaN)."""
    return points @ matrix[..., :2].transpose(-1, -2) + matrix[..., None, :, 2]


def bilinear_sample(heat: torch.Tensor, points: torch.Tensor) -> torch.Tensor:
    """(B, N, H, W) heatmaps sampled at (B, N, 2) ``x, y`` heatmap-pixel points -> (B, N).

    Pixel centres are at integers; positions beyond the outermost centres take the border value.
    NaN points give NaN.
    """
    b, n, h, w = heat.shape
    flat = heat.reshape(b, n, h * w)
    finite = torch.isfinite(points).all(-1)
    pts = torch.where(finite[..., None], points, torch.zeros_like(points)).float()
    x = pts[..., 0].clamp(0, w - 1)
    y = pts[..., 1].clamp(0, h - 1)
    x0 = x.floor().long().clamp(0, max(w - 2, 0))
    y0 = y.floor().long().clamp(0, max(h - 2, 0))
    fx, fy = x - x0, y - y0
    x1, y1 = (x0 + 1).clamp(max=w - 1), (y0 + 1).clamp(max=h - 1)

    def at(xx, yy):
        return flat.gather(-1, (yy * w + xx).unsqueeze(-1)).squeeze(-1)

    top = at(x0, y0) * (1 - fx) + at(x1, y0) * fx
    bottom = at(x0, y1) * (1 - fx) + at(x1, y1) * fx
    value = top * (1 - fy) + bottom * fy
    return torch.where(finite, value, torch.full_like(value, float("nan")))
