"""AFLW, 19-point protocol (Zhu et al. 2016, revised AFLW annotations): ``AFLWinfo_release.mat``.

Layout::

    root/AFLWinfo_release.mat
    root/data/flickr/<0|2|3>/imageNNNNN.jpg       (or root/flickr/..., or paths relative to root)

Variables (N = 24386 faces; read with scipy, or h5py if saved as v7.3):

* ``data``      N x 38: 19 x, then 19 y (image pixels);
* ``bbox``      N x 4: ``x0, x1, y0, y1`` (note the order);
* ``mask_new``  N x 19: 1 where the point is visible;
* ``ra``        a random permutation of 1..N (1-based row numbers);
* ``nameList``  N image paths relative to the image folder.

Splits: ``train`` = rows ``ra[:20000]``, ``test`` = rows ``ra[20000:]`` (4386), in that order;
``frontal`` = the test rows whose ``mask_new`` is all 1 (the "no landmark occluded" frontal test set,
1314 in the paper). Every sample has the attribute ``frontal`` (0/1, same rule), so a ``test`` run can
also report the frontal subset.

Coordinates are used as stored, as the field does (the protocol's reference code does not shift
them). Points with ``mask_new`` 0 keep their coordinates with ``visible = False``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from awing.data.readers import register_reader
from awing.data.readers._common import (
    MatFile,
    at_row,
    check_box,
    check_split,
    find_image_dir,
    image_path,
    points_planar,
)
from awing.data.sample import AnnotationError, Sample
from awing.schemas import load_schema

SPLITS = ("train", "test", "frontal")
NUM_POINTS = load_schema("aflw19").num_points  # the schema says it, not the reader
NUM_TRAIN = 20000


def split_rows(ra: np.ndarray, n: int, where: Path, num_train: int = NUM_TRAIN) -> dict[str, np.ndarray]:
    """0-based row indices of ``train`` and ``test`` from the 1-based permutation ``ra``."""
    order = np.asarray(ra).reshape(-1)
    if order.size != n or not np.array_equal(np.sort(order), np.arange(1, n + 1)):
        raise AnnotationError(f"{where}: 'ra' is not a permutation of 1..{n} (the number of faces)")
    if not 0 < num_train < n:
        raise AnnotationError(f"{where}: {n} faces, cannot take the first {num_train} of 'ra' for training")
    order = order.astype(np.int64) - 1
    return {"train": order[:num_train], "test": order[num_train:]}


@register_reader(
    "aflw",
    schema="aflw19",
    splits=SPLITS,
    description="AFLW 19-point protocol from AFLWinfo_release.mat (train/test/frontal)",
)
def read(
    root: Path,
    split: str,
    mat_file: str = "AFLWinfo_release.mat",
    image_dir: str | None = None,
    check_images: bool = True,
    num_train: int = NUM_TRAIN,
) -> list[Sample]:
    """Read one split of AFLW-19.

    Args:
        root: folder holding ``AFLWinfo_release.mat``.
        split: ``train``, ``test`` or ``frontal``.
        mat_file: the ``.mat`` file (relative to ``root`` or absolute).
        image_dir: folder the ``nameList`` paths are relative to; default the first of
            ``root/data/flickr``, ``root/flickr`` that exists, else ``root``.
        check_images: raise if an image file is missing.
        num_train: how many rows of ``ra`` form the training set (the protocol: 20000).
    """
    check_split("aflw", split, SPLITS)
    root = Path(root)
    path = root / mat_file
    with MatFile(path) as mat:
        data, bbox = mat.array("data", ndim=2), mat.array("bbox", ndim=2)
        mask, ra, names = mat.array("mask_new", ndim=2), mat.array("ra"), mat.strings("nameList")
    n = len(names)
    expected = {"data": (n, 2 * NUM_POINTS), "bbox": (n, 4), "mask_new": (n, NUM_POINTS)}
    for var, value in (("data", data), ("bbox", bbox), ("mask_new", mask)):
        if value.shape != expected[var]:
            raise AnnotationError(f"{path}: {var!r} is {value.shape}, expected {expected[var]} ({n} names)")
    if not np.isin(mask, (0, 1)).all():
        raise AnnotationError(f"{path}: 'mask_new' has values other than 0 and 1")
    rows = split_rows(ra, n, path, num_train)
    frontal = mask.all(axis=1)
    selected = rows["test"][frontal[rows["test"]]] if split == "frontal" else rows[split]
    images = find_image_dir(root, image_dir, default=("data/flickr", "flickr"))
    samples = []
    for i in selected:
        where = at_row(path, int(i) + 1)
        x0, x1, y0, y1 = bbox[i]
        samples.append(
            Sample(
                image=image_path(images, names[i], where, check_images),
                landmarks=points_planar(data[i]),
                visible=mask[i] == 1,
                box=check_box(np.array([x0, y0, x1, y1]), where),
                attributes={"frontal": int(frontal[i])},
                split=split,
                source=where,
            )
        )
    return samples
