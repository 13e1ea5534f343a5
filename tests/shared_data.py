"""The real data under ../shared/data (or $AWING_SHARED_DATA) that some tests read when it is present."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

SHARED = Path(os.environ.get("AWING_SHARED_DATA") or Path(__file__).resolve().parents[1].parent / "shared" / "data")


def need(path: Path) -> Path:
    """``path`` if it exists, else skip the calling test with a message saying what is missing."""
    if not path.exists():
        pytest.skip(f"real data not available: {path} (set AWING_SHARED_DATA to the shared data folder)")
    return path


def _has_haar() -> bool:
    import cv2

    return hasattr(cv2, "CascadeClassifier") and hasattr(cv2, "data")


# OpenCV 5 dropped the Haar cascades (awing's `opencv` detector then raises a clear error).
needs_haar = pytest.mark.skipif(not _has_haar(), reason="this OpenCV has no Haar cascades (opencv-python 5.x)")
