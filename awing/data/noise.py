"""Synthetic annotation noise for the robustness experiment (supplementary Table 11)."""

from __future__ import annotations

import dataclasses

import numpy as np

from awing.data.sample import Sample
from awing.schemas import Schema, normaliser_distance


def add_label_noise(
    samples: list[Sample], schema: Schema, fraction: float, shift: float, seed: int = 0
) -> list[Sample]:
    """Copies of ``samples`` where a ``fraction`` of all annotated points moves ``shift`` x the image's
    inter-ocular distance (the schema's default normaliser) in a uniformly random direction.

    ``fraction`` and ``shift`` are fractions (Table 11's P % and S % divided by 100). The noise is drawn
    once, from ``seed``, so every epoch sees the same noisy labels, as with a noisy annotation.
    """
    if fraction <= 0 or shift <= 0:
        return samples
    rng = np.random.default_rng(seed)
    noisy = []
    for sample in samples:
        pts = sample.landmarks.astype(np.float64).copy()
        annotated = np.flatnonzero(~np.isnan(pts).any(axis=1))
        moved = annotated[rng.random(len(annotated)) < fraction]
        distance = float(normaliser_distance(schema, pts, sample.box)) * shift
        angle = rng.uniform(0, 2 * np.pi, size=len(moved))
        pts[moved] += distance * np.stack([np.cos(angle), np.sin(angle)], axis=1)
        noisy.append(dataclasses.replace(sample, landmarks=pts.astype(np.float32)))
    return noisy
