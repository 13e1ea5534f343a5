"""How to crop faces for a model: the typed ``checkpoint["inference"]`` record.

Training writes what it knows (:func:`training_hints`: whether its crops were landmark boxes, and their
enlargement), ``awing export --calibrate`` adds each detector's enlargement and centre offset
(:func:`awing.detect.calibrate.calibration_hints`), ``awing export --face-quality`` the is_face cut, and
an imported model its crop rule (:mod:`awing.app.official`). Everything that uses a model file reads
them with :func:`inference_hints`, the one reader, which also upgrades files written before a field
existed.
"""

from __future__ import annotations

import dataclasses
import logging
import math
from collections.abc import Mapping

__all__ = ["REFINE_HINTS", "InferenceHints", "inference_hints", "training_hints", "landmark_crop_enlarge"]

log = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class InferenceHints:
    """A model's crop and face-score settings for inference (all optional).

    Attributes:
        crop: a stored crop rule (:func:`awing.data.crop.crop_square`, e.g. the authors' WFLW crop), which
            replaces awing's enlarged square; None: awing's.
        landmark_enlarge: the model was trained on crops of the landmark box squared and grown by this
            fraction (``data.crop: landmarks``, or ``box`` with a reader whose boxes are landmark boxes);
            None: its training crops were built from other boxes (or a crop rule).
        enlarge: ``{box_style: fraction}``, the calibrated crop enlargement of each detector's boxes.
        offset: ``{box_style: (dx, dy)}``, the calibrated crop centre's offset from the box centre, in
            units of the box's longer side (x right, y down).
        face_quality: the is_face cut on the mean point confidence; None: the library default.
        calibrated_on: what ``enlarge`` and ``offset`` were measured on (text, for people).
        refine: what ``FaceAligner(refine="auto")`` does with this model's second pass: ``"never"`` (a fast
            model whose second pass costs more than it gains) or ``"auto"``; None: ``"auto"``.
        flip_test: whether ``FaceAligner(flip_test=None)`` runs the mirrored crop too (a model small enough
            that the flip test's gain is worth its second forward pass); None: no.
    """

    crop: dict | None = None
    landmark_enlarge: float | None = None
    enlarge: dict[str, float] = dataclasses.field(default_factory=dict)
    offset: dict[str, tuple[float, float]] = dataclasses.field(default_factory=dict)
    face_quality: float | None = None
    calibrated_on: str | None = None
    refine: str | None = None
    flip_test: bool | None = None

    def to_dict(self) -> dict:
        """The checkpoint form (plain values; ``landmark_enlarge`` always present, unset fields left out)."""
        out: dict = {"landmark_enlarge": self.landmark_enlarge}
        if self.crop:
            out["crop"] = dict(self.crop)
        if self.enlarge:
            out["enlarge"] = dict(self.enlarge)
        if self.offset:
            out["offset"] = {style: [float(dx), float(dy)] for style, (dx, dy) in self.offset.items()}
        if self.face_quality is not None:
            out["face_quality"] = self.face_quality
        if self.calibrated_on:
            out["calibrated_on"] = self.calibrated_on
        if self.refine is not None:
            out["refine"] = self.refine
        if self.flip_test is not None:
            out["flip_test"] = self.flip_test
        return out

    @classmethod
    def from_dict(cls, data: Mapping | None) -> InferenceHints:
        """The record of a checkpoint's ``inference`` mapping as stored (missing fields: unset).

        Raises:
            ValueError: a field of the wrong type or a non-finite number.
        """
        data = dict(data or {})
        crop = data.get("crop")
        if crop is not None and not isinstance(crop, Mapping):
            raise ValueError(f"inference 'crop' must be a mapping (a crop rule), got {crop!r}")
        return cls(
            crop=dict(crop) if crop else None,
            landmark_enlarge=_number(data.get("landmark_enlarge"), "landmark_enlarge"),
            enlarge={str(k): _number(v, f"enlarge[{k!r}]") for k, v in _mapping(data, "enlarge").items()},
            offset={str(k): _pair(v, f"offset[{k!r}]") for k, v in _mapping(data, "offset").items()},
            face_quality=_number(data.get("face_quality"), "face_quality"),
            calibrated_on=None if data.get("calibrated_on") is None else str(data["calibrated_on"]),
            refine=_refine(data.get("refine")),
            flip_test=_flag(data.get("flip_test"), "flip_test"),
        )


def _number(value, name: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ValueError(f"inference {name!r} must be a finite number, got {value!r}")
    return float(value)


def _flag(value, name: str) -> bool | None:
    if value is not None and not isinstance(value, bool):
        raise ValueError(f"inference {name!r} must be true or false, got {value!r}")
    return value


# What a model file may say about its second pass (InferenceHints.refine).
REFINE_HINTS = ("auto", "never")


def _refine(value) -> str | None:
    if value is not None and value not in REFINE_HINTS:
        raise ValueError(f"inference 'refine' must be one of {', '.join(map(repr, REFINE_HINTS))}, got {value!r}")
    return value


def _pair(value, name: str) -> tuple[float, float]:
    if isinstance(value, (str, bytes)) or not hasattr(value, "__len__") or len(value) != 2:
        raise ValueError(f"inference {name!r} must be a pair [dx, dy], got {value!r}")
    dx, dy = (_number(v, name) for v in value)
    return dx, dy


def _mapping(data: dict, key: str) -> Mapping:
    value = data.get(key) or {}
    if not isinstance(value, Mapping):
        raise ValueError(f"inference {key!r} must map box styles to values, got {value!r}")
    return value


def landmark_crop_enlarge(crop: str, fmt: str | None, enlarge: float) -> float | None:
    """The enlargement of a training crop that was the landmark box (``crop == "landmarks"``, or
    ``"box"`` on a reader whose boxes are landmark boxes), else None.

    A format this install has no reader for is logged and taken for detector-box crops (None).
    """
    from awing.data.readers import get_reader

    if crop == "landmarks":
        return float(enlarge)
    if crop != "box" or fmt is None:
        return None
    try:
        landmark_boxes = get_reader(fmt).landmark_boxes
    except ValueError:
        log.warning("no reader for the model's training format %r: its crops are taken for face-box crops", fmt)
        return None
    return float(enlarge) if landmark_boxes else None


def training_hints(cfg) -> InferenceHints:
    """The hints a training run knows, from its :class:`~awing.core.config.Config` (``cfg.data``)."""
    return InferenceHints(landmark_enlarge=landmark_crop_enlarge(cfg.data.crop, cfg.data.format, cfg.data.enlarge))


def inference_hints(ckpt: Mapping) -> InferenceHints:
    """A loaded checkpoint's hints: the one way to read ``checkpoint["inference"]``.

    Files written before training recorded ``landmark_enlarge`` get it from their run config
    (``config.data``: crop, format, enlarge); files without a run config get None, and so does a model
    with a crop rule.

    Raises:
        ValueError: a malformed ``inference`` field.
    """
    stored = ckpt.get("inference") or {}
    if not isinstance(stored, Mapping):
        raise ValueError(f"checkpoint field 'inference' must be a mapping, got {type(stored).__name__}")
    hints = InferenceHints.from_dict(stored)
    if hints.crop is not None:  # a crop rule frames every crop, the second pass's too
        return dataclasses.replace(hints, landmark_enlarge=None)
    if "landmark_enlarge" in stored:
        return hints
    data = (ckpt.get("config") or {}).get("data") or {}
    enlarge = landmark_crop_enlarge(data.get("crop", "box"), data.get("format"), data.get("enlarge", 0.0))
    return dataclasses.replace(hints, landmark_enlarge=enlarge)
