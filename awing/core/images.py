"""Image reading: files (OpenCV) and the arrays / PIL images users pass, as uint8 RGB."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

__all__ = ["read_image", "load_image"]


def read_image(path: str | Path) -> np.ndarray | None:
    """(H, W, 3) uint8 BGR image, or None if the file is missing or cannot be decoded."""
    try:
        image = cv2.imread(str(path), cv2.IMREAD_COLOR)
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


def load_image(image, color: str = "RGB") -> np.ndarray:
    """Any supported image -> (H, W, 3) uint8 RGB.

    Args:
        image: a path (read with OpenCV, EXIF orientation applied), a numpy array (H, W), (H, W, 1),
            (H, W, 3) or (H, W, 4) uint8 whose channel order ``color`` states, or a PIL image.
        color: ``"RGB"`` or ``"BGR"``: the channel order of a numpy array (OpenCV's ``cv2.imread`` and
            ``VideoCapture`` give BGR). Ignored for paths and PIL images.
    Raises:
        FileNotFoundError: a path that does not exist. ValueError: an unreadable file or unusable array.
    """
    if not isinstance(color, str) or color.upper() not in ("RGB", "BGR"):
        raise ValueError(f"color must be 'RGB' or 'BGR', got {color!r}")
    color = color.upper()
    if isinstance(image, (str, Path)):
        path = Path(image)
        if not path.is_file():
            raise FileNotFoundError(f"image not found: {path}")
        bgr = read_image(path)
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
    image = image[..., :3]
    return np.ascontiguousarray(image[..., ::-1] if color == "BGR" else image)
