"""The heatmap codec: the one object that owns how points become heatmaps and heatmaps become points.

A codec holds the input size, the heatmap size (hence the stride), the Gaussian's sigma and support, the
boundary channel's sigma, the sub-pixel decoder and the frame that relates heatmap pixels to crop pixels.
It is built once from the model spec and the config (:func:`build_codec`), stored in checkpoints
(:meth:`HeatmapCodec.to_dict` / :func:`codec_from_dict`) and used by training, evaluation, the API,
export and the benchmarks, so none of them recomputes a stride or re-states a frame convention.

Frames (docs/ARCHITECTURE.md): crop pixels have their centres at integers; with stride
``s = input_size / heatmap_size`` the default codec maps ``h = (c + 0.5) / s - 0.5`` (pixel-centre
aligned). Crop -> image is the inverse of the crop's 2x3 affine.

A new target or frame is one subclass registered with :func:`register_codec`; a new sub-pixel decoder is one
function registered with :func:`awing.method.decode.register_decoder`.
"""

from __future__ import annotations

import dataclasses
from typing import ClassVar

import torch

from awing.method.decode import apply_affine, get_decoder, invert_affine
from awing.method.targets import render_targets

__all__ = ["HeatmapCodec", "AuthorsCodec", "CODECS", "register_codec", "build_codec", "codec_from_dict"]

CODECS: dict[str, type[HeatmapCodec]] = {}


def register_codec(cls: type[HeatmapCodec]) -> type[HeatmapCodec]:
    """Class decorator: make ``cls`` loadable by its ``name`` from checkpoints."""
    CODECS[cls.name] = cls
    return cls


@register_codec
@dataclasses.dataclass(frozen=True)
class HeatmapCodec:
    """Sub-pixel Gaussian targets, argmax + quarter-pixel decoding, pixel-centre frames.

    Attributes:
        input_size: S, the side of the square model input (crop), pixels.
        heatmap_size: H, the side of the model's heatmaps, pixels.
        sigma: the landmark Gaussian's standard deviation, heatmap pixels.
        radius: support half-size, heatmap pixels (3 -> the paper's 7x7).
        boundary_sigma: the boundary channel's sigma, heatmap pixels (cut at 3 sigma).
        shift: the decoder's move toward the larger neighbour, heatmap pixels (Sec. 7.3: 0.25).
        decoder: a name in :data:`awing.method.decode.DECODERS`: ``quarter`` (Sec. 7.3: argmax + ``shift``)
            or ``dark`` (a Taylor step on the smoothed log heatmap, :func:`awing.method.decode.dark_refine`;
            the quarter shift where it cannot step).
    """

    name: ClassVar[str] = "gaussian"

    input_size: int
    heatmap_size: int
    sigma: float = 1.5
    radius: int = 3
    boundary_sigma: float = 1.0
    shift: float = 0.25
    decoder: str = "quarter"

    def __post_init__(self) -> None:
        get_decoder(self.decoder)  # ValueError naming the registered decoders
        if self.input_size <= 0 or self.heatmap_size <= 0:
            raise ValueError(
                f"input_size and heatmap_size must be positive, got {self.input_size}, {self.heatmap_size}"
            )
        if not (self.sigma > 0 and self.boundary_sigma > 0):
            raise ValueError(f"sigma and boundary_sigma must be > 0, got {self.sigma}, {self.boundary_sigma}")
        if self.radius < 0:
            raise ValueError(f"radius must be >= 0, got {self.radius}")

    @property
    def stride(self) -> float:
        """Crop pixels per heatmap pixel."""
        return self.input_size / self.heatmap_size

    # ----------------------------------------------------------------------------------- frames
    def crop_to_heatmap(self, points: torch.Tensor) -> torch.Tensor:
        """(..., 2) crop pixels -> heatmap pixels."""
        return (points + 0.5) / self.stride - 0.5

    def heatmap_to_crop(self, points: torch.Tensor) -> torch.Tensor:
        """(..., 2) heatmap pixels -> crop pixels."""
        return (points + 0.5) * self.stride - 0.5

    # ----------------------------------------------------------------------------- the codec
    def encode(self, points: torch.Tensor, segments: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Training targets for crop-space points, rendered on the points' device.

        Args:
            points: (B, N, 2) landmarks in crop pixels; NaN for missing.
            segments: (S, 2) landmark index pairs of the boundary lines, or None for no boundary channel.
        Returns:
            targets: (B, N [+ 1], H, W) float32 in [0, 1].
            mask: (B, N [+ 1]) bool, False for a missing or off-grid landmark (its channel is not supervised).
        """
        size = (self.heatmap_size, self.heatmap_size)
        return render_targets(
            self.crop_to_heatmap(points.float()), size, segments, self.sigma, self.radius, self.boundary_sigma
        )

    def decode(self, heatmaps: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Points from landmark heatmaps.

        Args:
            heatmaps: (B, N, H, W) landmark channels only.
        Returns:
            points: (B, N, 2) float32 ``x, y`` in crop pixels.
            confidence: (B, N) float32, the peak value.
        """
        points, confidence = self.peaks(heatmaps)
        return self.heatmap_to_crop(points), confidence

    def peaks(self, heatmaps: torch.Tensor, interior: str = "axis") -> tuple[torch.Tensor, torch.Tensor]:
        """(B, N, H, W) heatmaps -> (B, N, 2) float32 sub-pixel peaks in heatmap pixels and (B, N) peak
        values, by :attr:`decoder` (``interior``: the quarter shift's rule, see ``decode_heatmaps``)."""
        decoder = get_decoder(self.decoder)
        return decoder(heatmaps.float(), sigma=self.sigma, shift=self.shift, interior=interior)

    def to_image(self, points: torch.Tensor, affine: torch.Tensor) -> torch.Tensor:
        """(B, N, 2) crop pixels -> original-image pixels through the inverse of the (B, 2, 3) crop affine
        (original -> crop). Computed in the affine's dtype (pass float64 for exact round trips)."""
        return apply_affine(points.to(affine.dtype), invert_affine(affine))

    # ------------------------------------------------------------------------------ storage
    def to_dict(self) -> dict:
        return {"name": self.name, **dataclasses.asdict(self)}


def build_codec(spec, targets=None, decoder: str = "quarter") -> HeatmapCodec:
    """The default codec for a model spec (``input_size``, ``heatmap_size``), a target config
    (``sigma``, ``radius``, ``boundary_sigma``; None: the defaults) and a decoder name."""
    fields = {}
    if targets is not None:
        fields = {k: getattr(targets, k) for k in ("sigma", "radius", "boundary_sigma")}
    return HeatmapCodec(input_size=spec.input_size, heatmap_size=spec.heatmap_size, decoder=decoder, **fields)


def codec_from_dict(data: dict) -> HeatmapCodec:
    """Rebuild a codec stored with :meth:`HeatmapCodec.to_dict`.

    Raises:
        ValueError: an unknown codec name or fields that do not fit it.
    """
    if not isinstance(data, dict):
        raise ValueError(f"a codec is a mapping, got {type(data).__name__}")
    fields = dict(data)
    name = fields.pop("name", HeatmapCodec.name)
    if name not in CODECS:
        raise ValueError(f"unknown heatmap codec {name!r}; known: {', '.join(sorted(CODECS))}")
    try:
        return CODECS[name](**fields)
    except TypeError as err:
        raise ValueError(f"codec {name!r}: {err}") from err


@register_codec
@dataclasses.dataclass(frozen=True)
class AuthorsCodec(HeatmapCodec):
    """The authors' decoder and frame (protossw512/AdaptiveWingLoss, ``get_preds_fromhm`` then x stride).

    Decoding: per-channel argmax (the first maximum, as ``torch.max``), then ``shift`` (0.25) heatmap
    pixels toward the larger neighbour on both axes, applied only where the peak is interior on BOTH
    axes (``0 < x < W - 1`` and ``0 < y < H - 1``; the authors hard-code 63 for 64-px heatmaps), then
    ``+ 0.5``: the authors' heatmap frame ``p = index + 0.5 +/- shift``, and their crop frame
    ``c = p * stride``. That frame is edge-origin (crop point 0 is the crop square's left / top edge), so
    it sits 0.5 crop pixel from awing's pixel-centre crop frame: ``c = u + 0.5`` for awing's crop point
    ``u`` (:func:`awing.data.crop.crop_matrix`). :meth:`decode` returns the authors' ``c``;
    :meth:`to_image` takes that 0.5 off before inverting the crop affine, so points land where theirs do.

    Targets (:meth:`encode`, for fine-tuning only): awing's sub-pixel Gaussians, centred where the decoder
    reads them back; the authors drew theirs on floored integer pixels with an effective sigma of ~1.75.

    Attributes: those of :class:`HeatmapCodec`.
    """

    name: ClassVar[str] = "authors"

    # ----------------------------------------------------------------------------------- frames
    def crop_to_heatmap(self, points: torch.Tensor) -> torch.Tensor:
        """(..., 2) crop pixels in the authors' edge-origin frame -> heatmap pixels (pixel centres at
        integers): ``h = c / stride - 0.5``."""
        return points / self.stride - 0.5

    def heatmap_to_crop(self, points: torch.Tensor) -> torch.Tensor:
        """(..., 2) heatmap pixels (pixel centres at integers) -> crop pixels in the authors' frame:
        ``c = (h + 0.5) * stride``."""
        return (points + 0.5) * self.stride

    @staticmethod
    def from_awing_crop(points: torch.Tensor) -> torch.Tensor:
        """(..., 2) awing crop pixels (pixel centres at integers) -> the authors' crop frame (+0.5)."""
        return points + 0.5

    @staticmethod
    def to_awing_crop(points: torch.Tensor) -> torch.Tensor:
        """(..., 2) the authors' crop frame -> awing crop pixels (-0.5)."""
        return points - 0.5

    # ----------------------------------------------------------------------------- the codec
    def encode(self, points: torch.Tensor, segments: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """:meth:`HeatmapCodec.encode` for (B, N, 2) points in awing's crop frame (a dataset's ``points``)."""
        size = (self.heatmap_size, self.heatmap_size)
        heat = self.crop_to_heatmap(self.from_awing_crop(points.float()))
        return render_targets(heat, size, segments, self.sigma, self.radius, self.boundary_sigma)

    def decode_heatmap_frame(self, heatmaps: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The authors' ``get_preds_fromhm`` (without its optional image mapping).

        Args:
            heatmaps: (B, N, H, W) landmark channels only.
        Returns:
            points: (B, N, 2) float32 ``x, y`` in the authors' heatmap frame (``index + 0.5 +/- shift``).
            confidence: (B, N) float32, the peak value.
        """
        points, confidence = self.peaks(heatmaps, interior="both")
        return points + 0.5, confidence

    def decode(self, heatmaps: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Points from (B, N, H, W) landmark heatmaps: (B, N, 2) float32 ``x, y`` in the authors' crop
        frame (``get_preds_fromhm`` x stride) and (B, N) float32 peak values."""
        points, confidence = self.decode_heatmap_frame(heatmaps)
        return points * self.stride, confidence

    def to_image(self, points: torch.Tensor, affine: torch.Tensor) -> torch.Tensor:
        """(B, N, 2) points in the authors' crop frame -> original-image pixels through the inverse of the
        (B, 2, 3) awing crop affine (original -> awing crop), in the affine's dtype."""
        return apply_affine(self.to_awing_crop(points.to(affine.dtype)), invert_affine(affine))
