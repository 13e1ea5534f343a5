"""Leeds Sports Pose (LSP) and LSP extended (LSPET): 14 body joints from ``joints.mat``.

The paper's pose experiment (Sec. 8) trains on LSP train + LSPET (11,000 images) with the original
person-centric labels and low-resolution images, and tests on the 1,000 LSP test images (PCK@0.2).

``lsp`` (Johnson & Everingham 2010)::

    root/joints.mat      variable ``joints``, 3 x 14 x 2000: x, y, flag
    root/images/im0001.jpg ... im2000.jpg

splits ``train`` = images 1-1000, ``test`` = images 1001-2000.

``lspet`` (Johnson & Everingham 2011)::

    root/joints.mat      variable ``joints``, 14 x 3 x 10000: x, y, flag
    root/images/im00001.jpg ... im10000.jpg

split ``train`` (all 10,000).

Flags, as implemented: in LSP the third row is 1 for an **occluded** joint (0 = visible), although
the dataset's README calls it "visibility"; occluded LSP joints are still annotated, so they keep their
coordinates with ``visible = False``. In LSPET the third column is 1 for a **visible** joint; joints
with 0 are not annotated there (the paper computes no loss on them), so they become NaN (missing) with
``visible = False``. ``visibility_flag="visible"|"occluded"`` overrides the reading of the flag.

Joint order (person-centric: "right" is the person's right, not the image's): 0 right ankle,
1 right knee, 2 right hip, 3 left hip, 4 left knee, 5 left ankle, 6 right wrist, 7 right elbow,
8 right shoulder, 9 left shoulder, 10 left elbow, 11 left wrist, 12 neck, 13 head top.

Coordinates are used as stored. The box is the tight box of the annotated joints (LSP has no boxes).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from awing.data.readers import register_reader
from awing.data.readers._common import MatFile, at_row, check_split, image_path
from awing.data.sample import AnnotationError, Sample, landmark_box
from awing.schemas import load_schema

NUM_JOINTS = load_schema("lsp14").num_points  # the schema says it, not the reader


def read_joints(path: Path, joints_axis: int) -> np.ndarray:
    """(M, 14, 3) ``x, y, flag`` from ``joints.mat``, whose ``joints`` variable has the 14 joints on
    axis ``joints_axis`` (0 for LSPET's 14 x 3 x M, 1 for LSP's 3 x 14 x M) and the images last."""
    with MatFile(path) as mat:
        joints = mat.array("joints", ndim=3)
    coord_axis = 1 - joints_axis
    if joints.shape[joints_axis] != NUM_JOINTS or joints.shape[coord_axis] != 3:
        want = "14 x 3 x M" if joints_axis == 0 else "3 x 14 x M"
        raise AnnotationError(f"{path}: 'joints' is {' x '.join(map(str, joints.shape))}, expected {want}")
    return np.moveaxis(joints, (2, joints_axis, coord_axis), (0, 1, 2)).astype(np.float64)


def _samples(
    root: Path,
    path: Path,
    joints: np.ndarray,
    rows: range,
    split: str,
    image_name: str,
    flag_means: str,
    occluded_missing: bool,
    check_images: bool,
) -> list[Sample]:
    if flag_means not in ("visible", "occluded"):
        raise ValueError(f"visibility_flag must be 'visible' or 'occluded', not {flag_means!r}")
    samples = []
    for i in rows:
        where = at_row(path, i + 1)
        flags = joints[i, :, 2]
        if not np.isin(flags, (0, 1)).all():
            raise AnnotationError(f"{where}: joint flags must be 0 or 1, found {sorted(set(flags.tolist()))}")
        visible = flags == 1 if flag_means == "visible" else flags == 0
        points = joints[i, :, :2].copy()
        if occluded_missing:
            points[~visible] = np.nan
        samples.append(
            Sample(
                image=image_path(root / "images", image_name.format(i + 1), where, check_images),
                landmarks=points,
                visible=visible,
                box=landmark_box(points, where),
                split=split,
                source=where,
            )
        )
    return samples


@register_reader(
    "lsp",
    schema="lsp14",
    splits=("train", "test"),
    description="Leeds Sports Pose joints.mat (14 joints, person-centric; train 1-1000, test 1001-2000)",
    landmark_boxes=True,
)
def read(root: Path, split: str, visibility_flag: str = "occluded", check_images: bool = True) -> list[Sample]:
    """Read LSP's ``train`` (images 1-1000) or ``test`` (1001-2000) split.

    Args:
        root: folder holding ``joints.mat`` and ``images/``.
        visibility_flag: what a flag of 1 means: ``occluded`` (LSP) or ``visible``.
        check_images: raise if an image file is missing.
    """
    check_split("lsp", split, ("train", "test"))
    path = Path(root) / "joints.mat"
    joints = read_joints(path, joints_axis=1)
    if len(joints) != 2000:
        raise AnnotationError(f"{path}: {len(joints)} images, LSP has 2000 (1000 train + 1000 test)")
    rows = range(0, 1000) if split == "train" else range(1000, 2000)
    return _samples(Path(root), path, joints, rows, split, "im{:04d}.jpg", visibility_flag, False, check_images)


@register_reader(
    "lspet",
    schema="lsp14",
    splits=("train",),
    description="LSP extended joints.mat (14 joints, 10,000 training images; unannotated joints NaN)",
    landmark_boxes=True,
)
def read_extended(root: Path, split: str, visibility_flag: str = "visible", check_images: bool = True) -> list[Sample]:
    """Read LSPET (``train`` only): every image of ``joints.mat``; joints flagged invisible are NaN.

    Args:
        root: folder holding ``joints.mat`` and ``images/``.
        visibility_flag: what a flag of 1 means: ``visible`` (LSPET) or ``occluded``.
        check_images: raise if an image file is missing.
    """
    check_split("lspet", split, ("train",))
    path = Path(root) / "joints.mat"
    joints = read_joints(path, joints_axis=0)
    return _samples(
        Path(root),
        path,
        joints,
        range(len(joints)),
        split,
        "im{:05d}.jpg",
        visibility_flag,
        True,
        check_images,
    )
