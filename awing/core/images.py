"""Image reading: files (OpenCV) and the arrays / PIL images users pass, as uint8 RGB."""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
import warnings
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np

__all__ = ["read_image", "load_image", "DamagedImageError"]

# What libjpeg says (on the process's standard error, the only channel OpenCV leaves it) when a file's data
# is cut short or corrupt; OpenCV still returns an image, grey where the data ended.
_JPEG_DAMAGE = (b"Premature end of JPEG file", b"Corrupt JPEG data", b"Invalid JPEG file structure")


UNSTATED_COLOR = (
    "a colour numpy array was passed without color=: taken as RGB. cv2.imread and cv2.VideoCapture give BGR: "
    "pass color='BGR' for those (or color='RGB' to silence this warning)"
)


class DamagedImageError(ValueError):
    """An image file whose data is cut short or corrupt: it decodes, but part of the picture is made up."""


@contextlib.contextmanager
def _stderr_to(sink) -> Iterator[None]:
    """Point file descriptor 2 at ``sink`` (a real file) for the block: C libraries write there directly."""
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        os.dup2(sink.fileno(), 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def _is_jpeg(path: Path) -> bool:
    with open(path, "rb") as f:
        return f.read(2) == b"\xff\xd8"


def _imread_reporting(path: Path) -> tuple[np.ndarray | None, bytes]:
    """``cv2.imread`` and what the decoder wrote to standard error meanwhile."""
    with tempfile.TemporaryFile() as sink:
        with _stderr_to(sink):
            image = cv2.imread(str(path), cv2.IMREAD_COLOR)
        sink.seek(0)
        return image, sink.read()


def read_image(path: str | Path, check_damage: bool = False) -> np.ndarray | None:
    """(H, W, 3) uint8 BGR image, or None if the file is missing or cannot be decoded.

    Args:
        check_damage: also watch the JPEG decoder's warnings and raise where the data is cut short or
            corrupt (OpenCV decodes such files silently, with grey or smeared parts).
    Raises:
        DamagedImageError: ``check_damage`` and a JPEG file whose data is truncated or corrupt.
    """
    path = Path(path)
    try:
        if not (check_damage and path.is_file() and _is_jpeg(path)):
            image = cv2.imread(str(path), cv2.IMREAD_COLOR)
        else:
            image, said = _imread_reporting(path)
            problem = next((m for m in _JPEG_DAMAGE if m in said), None)
            if problem is not None:
                raise DamagedImageError(f"{path}: damaged image data ({problem.decode()})")
    except cv2.error:
        return None
    if image is None or image.size == 0:
        return None
    return image


def _dtype_advice(image: np.ndarray) -> str:
    """How to turn this array into uint8, said for its own dtype and value range."""
    if image.dtype == np.bool_:
        return "a bool mask is not an image; if it is one, use (img * 255).astype(np.uint8)"
    if image.dtype == np.uint16:
        return "convert 16-bit pixels with (img // 257).astype(np.uint8)"
    if np.issubdtype(image.dtype, np.floating):
        finite = image[np.isfinite(image)]
        top = float(finite.max()) if finite.size else 0.0
        if top <= 1.0:
            return "floats in [0, 1]: convert with (img * 255).round().astype(np.uint8)"
        return "floats in [0, 255]: convert with img.clip(0, 255).round().astype(np.uint8)"
    return "convert it to uint8 pixels in [0, 255] first"


def load_image(image, color: str | None = None) -> np.ndarray:
    """Any supported image -> (H, W, 3) uint8 RGB.

    Args:
        image: a path (read with OpenCV, EXIF orientation applied), a numpy array (H, W), (H, W, 1),
            (H, W, 3) or (H, W, 4) uint8 whose channel order ``color`` states, or a PIL image.
        color: ``"RGB"`` or ``"BGR"``: the channel order of a numpy array (OpenCV's ``cv2.imread`` and
            ``VideoCapture`` give BGR). Ignored for paths and PIL images. Left out (None) for a colour array,
            RGB is assumed and a warning says so (once per calling line): the order cannot be read off the
            pixels, and a BGR array taken for RGB gives worse points without any error.
    Raises:
        FileNotFoundError: a path that does not exist. DamagedImageError: a JPEG file whose data is cut
        short or corrupt. ValueError: an unreadable file or unusable array.
    """
    if color is not None and (not isinstance(color, str) or color.upper() not in ("RGB", "BGR")):
        raise ValueError(f"color must be 'RGB' or 'BGR', got {color!r}")
    if isinstance(image, (str, Path)):
        path = Path(image)
        if not path.is_file():
            raise FileNotFoundError(f"image not found: {path}")
        bgr = read_image(path, check_damage=True)
        if bgr is None:
            raise ValueError(f"cannot read {path} as an image")
        return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
    if type(image).__module__.startswith("PIL."):  # PIL is optional: recognised without importing it
        return np.asarray(image.convert("RGB"))
    if not isinstance(image, np.ndarray):
        raise ValueError(f"expected a path, a numpy array or a PIL image, got {type(image).__name__}")
    if image.dtype != np.uint8:
        raise ValueError(f"expected a uint8 image, got {image.dtype}: {_dtype_advice(image)}")
    if image.ndim == 3 and image.shape[2] == 1:
        image = image[..., 0]
    if image.ndim == 2 and image.size:
        return np.ascontiguousarray(np.repeat(image[..., None], 3, axis=2))
    if image.ndim != 3 or image.shape[2] not in (3, 4) or image.size == 0:
        raise ValueError(f"expected an (H, W), (H, W, 3) or (H, W, 4) image, got shape {image.shape}")
    if color is None:
        warnings.warn(UNSTATED_COLOR, UserWarning, stacklevel=2)
        color = "RGB"
    image = image[..., :3]
    return np.ascontiguousarray(image[..., ::-1] if color.upper() == "BGR" else image)
