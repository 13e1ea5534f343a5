"""Crop calibration: how much to grow each detector's boxes so that inference crops match the
model's training crops (``awing export --calibrate`` stores the result in the model file)."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import numpy as np

from awing.core.config import Config, config_from_dict
from awing.core.images import load_image
from awing.data.build import build_dataset, read_split
from awing.data.crop import square_box
from awing.data.hints import InferenceHints, inference_hints
from awing.detect.detectors import calibration_detectors, get_detector
from awing.schemas import load_schema

__all__ = ["calibrate_crops", "calibration_hints"]


def calibrate_crops(
    samples: Sequence, face_box, train_enlarge: float, detectors: Sequence[str], limit: int = 200
) -> dict[str, dict[str, float | list[float]]]:
    """Per-detector crop enlargement and centre offset that reproduce the training crops.

    For each image, the training crop is ``square_box(face_box(sample), train_enlarge)``; against the
    detector box nearest the landmarks' centre, with ``L`` that box's longer side, the enlargement is
    ``crop side / L - 1`` and the offset ``(crop centre - box centre) / L`` per axis (x right, y down).
    Each figure is the median over images (images where a detector finds no face are skipped).

    Args:
        samples: :class:`~awing.data.sample.Sample` s with landmarks (e.g. the validation split).
        face_box: ``sample -> (4,)`` the box training crops were built from
            (:meth:`awing.data.dataset.LandmarkDataset.face_box`).
        detectors: names for :func:`awing.detect.get_detector`.
    Returns:
        ``{"enlarge": {detector: float}, "offset": {detector: [dx, dy]}}`` for the detectors that found at
        least 5 faces.
    """
    chosen = list(samples)[:: max(1, len(samples) // limit)][:limit]
    measured: dict[str, list[tuple[float, float, float]]] = {name: [] for name in detectors}
    found = {name: get_detector(name) for name in detectors}
    for sample in chosen:
        try:
            rgb = load_image(sample.image)
        except (FileNotFoundError, ValueError):
            continue
        cx, cy, side = square_box(face_box(sample), train_enlarge)
        centre = np.nanmean(sample.landmarks, axis=0)
        for name, detector in found.items():
            boxes, _ = detector.detect(rgb)
            if len(boxes) == 0:
                continue
            box = boxes[np.argmin(np.linalg.norm((boxes[:, :2] + boxes[:, 2:]) / 2 - centre, axis=1))]
            length = float(max(box[2] - box[0], box[3] - box[1]))
            bx, by = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
            measured[name].append((side / length - 1.0, (cx - bx) / length, (cy - by) / length))
    kept = {name: np.asarray(m) for name, m in measured.items() if len(m) >= 5}
    return {
        "enlarge": {name: round(float(np.median(m[:, 0])), 3) for name, m in kept.items()},
        "offset": {name: [round(float(np.median(m[:, k])), 3) for k in (1, 2)] for name, m in kept.items()},
    }


def calibration_hints(ckpt: dict, spec: str | None) -> InferenceHints:
    """The checkpoint's :class:`~awing.data.hints.InferenceHints` with ``enlarge``, ``offset`` and
    ``calibrated_on`` measured (:func:`calibrate_crops`) for one detector per box style
    (:func:`awing.detect.detectors.calibration_detectors`; dlib only where it is installed), on the run's
    validation split or on ``spec`` (``FORMAT:ROOT:SPLIT``), for ``awing export --calibrate``.

    Raises:
        ValueError: ``spec`` is not ``FORMAT:ROOT:SPLIT``, or it is None / ``"config"`` and the checkpoint
        has no run config with a val split.
    """
    data = (ckpt.get("config") or {}).get("data") or {}
    if spec and spec != "config":
        fmt, root, split = spec.split(":", 2) if spec.count(":") >= 2 else (None, None, None)
        if fmt is None:
            raise ValueError(f"--calibrate expects FORMAT:ROOT:SPLIT, got {spec!r}")
    else:
        fmt, root, split = data.get("format"), data.get("root"), data.get("val_split")
        if not (fmt and root and split):
            raise ValueError("checkpoint has no run config with a val split; use --calibrate FMT:ROOT:SPLIT")
    cfg = config_from_dict(ckpt["config"]) if ckpt.get("config") else Config()
    samples = read_split(cfg.data, split, fmt, root)
    crop, train_enlarge = cfg.data.crop, cfg.data.enlarge
    dataset = build_dataset(cfg, samples, load_schema(ckpt["schema"]), input_size=64)
    styles = {name: style for style, name in calibration_detectors().items() if style != "dlib"}
    try:
        import dlib  # noqa: F401

        styles.update({name: style for style, name in calibration_detectors().items() if style == "dlib"})
    except ImportError:
        pass
    crops = calibrate_crops(samples, dataset.face_box, train_enlarge, list(styles))
    return dataclasses.replace(
        inference_hints(ckpt),
        enlarge={styles[name]: value for name, value in crops["enlarge"].items()},
        offset={styles[name]: tuple(value) for name, value in crops["offset"].items()},
        calibrated_on=f"{fmt}:{split} (crop={crop}, enlarge={train_enlarge})",
    )
