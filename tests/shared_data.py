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
