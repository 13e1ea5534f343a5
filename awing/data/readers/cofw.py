"""COFW (Burgos-Artizzu et al. 2013): 29 points with occlusion flags, in MATLAB v7.3 files.

Layout (``root`` holds the two official files)::

    COFW_train_color.mat   IsTr (1345 images), phisTr (1345 x 87), bboxesTr (1345 x 4)
    COFW_test_color.mat    IsT  (507 images),  phisT  (507 x 87),  bboxesT  (507 x 4)

``Is*`` is a cell array of uint8 images (``H x W x 3`` RGB, or ``H x W`` grey); ``phis*`` rows are 29
x, then 29 y, then 29 occlusion flags (1 = occluded); ``bboxes*`` rows are ``x, y, width, height``.
v7.3 files are HDF5 and are read with h5py (:class:`~awing.data.readers._common.MatFile` undoes
MATLAB's column-major transposition); a v5 file with the same variables also works.

Images live inside the ``.mat`` file, but a Sample names an image file: on first read the images of a
split are decoded once into ``<cache_dir>/NNNN.png`` (``NNNN`` = 1-based row, default cache folder
``root/.awing_cache/cofw_<split>``). A ``SOURCE`` stamp (the ``.mat`` size and mtime) makes the cache
rebuild when the file changes; missing PNGs are re-created on every read.

Coordinates: the annotations were made in MATLAB, where the top-left pixel centre is ``(1, 1)``; the
reader subtracts 1 from points and box corners (``one_based=False`` keeps the stored values), giving
awing's 0-based pixel-centre coordinates. An occlusion flag of 1 gives ``visible = False``; occluded
points keep their (estimated) coordinates.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from awing.data.readers import register_reader
from awing.data.readers._common import MatFile, at_row, check_box, check_split, points_planar, xywh_to_xyxy
from awing.data.sample import AnnotationError, Sample
from awing.schemas import load_schema

SPLITS = ("train", "test")
NUM_POINTS = load_schema("cofw29").num_points  # the schema says it, not the reader
#: split -> (file, images variable, annotations variable, boxes variable)
FILES = {
    "train": ("COFW_train_color.mat", "IsTr", "phisTr", "bboxesTr"),
    "test": ("COFW_test_color.mat", "IsT", "phisT", "bboxesT"),
}


def _stamp(path: Path) -> str:
    stat = path.stat()
    return f"{path.name} {stat.st_size} {stat.st_mtime_ns}\n"


def _write_png(image: np.ndarray, path: Path, where: str) -> None:
    import cv2

    image = np.asarray(image)
    if image.ndim == 3 and image.shape[2] == 3:
        image = image[..., ::-1]  # RGB (MATLAB) -> BGR (OpenCV)
    elif image.ndim != 2:
        raise AnnotationError(f"{where}: image of shape {image.shape} is neither H x W nor H x W x 3")
    if image.dtype != np.uint8:
        raise AnnotationError(f"{where}: image of type {image.dtype}, expected uint8")
    tmp = path.with_name(path.stem + ".tmp.png")
    if not cv2.imwrite(str(tmp), np.ascontiguousarray(image)):
        raise OSError(f"could not write {tmp}")
    os.replace(tmp, path)  # atomic: an interrupted run never leaves a truncated PNG


def cache_images(images: Sequence, mat_path: Path, folder: Path) -> list[str]:
    """Paths of ``folder/NNNN.png``, one per image of the cell array, decoding those not yet there."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise OSError(f"cannot create the COFW image cache {folder} ({err}); pass cache_dir=...") from None
    stamp_file, stamp = folder / "SOURCE", _stamp(mat_path)
    fresh = stamp_file.is_file() and stamp_file.read_text() == stamp
    paths = []
    for i in range(len(images)):
        path = folder / f"{i + 1:04d}.png"
        if not (fresh and path.is_file()):
            _write_png(images[i], path, at_row(mat_path, i + 1))
        paths.append(str(path))
    if not fresh:
        stamp_file.write_text(stamp)
    return paths


@register_reader(
    "cofw",
    schema="cofw29",
    splits=SPLITS,
    description="COFW color .mat files (29 points, occlusion flags, official boxes)",
)
def read(
    root: Path, split: str, mat_file: str | None = None, cache_dir: str | None = None, one_based: bool = True
) -> list[Sample]:
    """Read one COFW split.

    Args:
        root: folder holding ``COFW_train_color.mat`` and ``COFW_test_color.mat``.
        split: ``train`` or ``test``.
        mat_file: the ``.mat`` file (relative to ``root`` or absolute), overriding the official name.
        cache_dir: folder for the decoded PNGs; default ``root/.awing_cache/cofw_<split>``.
        one_based: the stored values are MATLAB 1-based: subtract 1.
    """
    check_split("cofw", split, SPLITS)
    root = Path(root)
    name, images_var, phis_var, boxes_var = FILES[split]
    path = root / (mat_file or name)
    cache = Path(root / cache_dir) if cache_dir else root / ".awing_cache" / f"cofw_{split}"
    shift = 1.0 if one_based else 0.0
    with MatFile(path) as mat:
        phis = mat.array(phis_var, ndim=2)
        boxes = mat.array(boxes_var, ndim=2)
        images = mat.cell(images_var)
        n = len(images)
        if phis.shape != (n, 3 * NUM_POINTS) or boxes.shape != (n, 4):
            raise AnnotationError(
                f"{path}: {n} images but {phis_var} is {phis.shape} (want {n} x 87) and "
                f"{boxes_var} is {boxes.shape} (want {n} x 4)"
            )
        image_files = cache_images(images, path, cache)
    samples = []
    for i in range(n):
        where = at_row(path, i + 1)
        flags = phis[i, 2 * NUM_POINTS :]
        if not np.isin(flags, (0, 1)).all():
            raise AnnotationError(f"{where}: occlusion flags must be 0 or 1, found {sorted(set(flags.tolist()))}")
        box = check_box(xywh_to_xyxy(boxes[i]) - shift, where)
        samples.append(
            Sample(
                image=image_files[i],
                landmarks=points_planar(phis[i, : 2 * NUM_POINTS]) - shift,
                visible=flags == 0,
                box=box,
                split=split,
                source=where,
            )
        )
    return samples
