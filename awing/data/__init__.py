"""Data: samples, readers, face crops, augmentation and the Dataset / DataLoader path.

``from awing.data import LandmarkDataset`` etc. work; the submodules are imported on first use so that
importing :mod:`awing.data.sample` (every reader does) does not pull in torch or OpenCV.
"""

from __future__ import annotations

import importlib

from awing.data.sample import AnnotationError, Sample, landmark_box

_LAZY = {
    "square_box": "crop",
    "crop_matrix": "crop",
    "transform_points": "crop",
    "warp_image": "crop",
    "random_affine_params": "augment",
    "warp_sample": "augment",
    "photometric": "augment",
    "LandmarkDataset": "dataset",
    "collate_landmarks": "dataset",
    "build_loader": "dataset",
    "worker_init_fn": "dataset",
    "build_dataset": "build",
    "read_split": "build",
}

__all__ = ["Sample", "AnnotationError", "landmark_box", *_LAZY]


def __getattr__(name: str):
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"awing.data.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))
