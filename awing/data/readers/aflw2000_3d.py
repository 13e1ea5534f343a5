"""AFLW2000-3D (Zhu et al., CVPR 2016): AFLW faces with 68 points in the 300-W order, fitted by a 3-D model.

Layout, as released::

    root/AFLW2000/imageNNNNN.jpg     450 x 450 photos (``root`` may also be the AFLW2000 folder itself)
    root/AFLW2000/imageNNNNN.mat     MATLAB v5: pt3d_68 (3 x 68: x, y, depth), pt2d, Pose_Para, roi, ...

Points: ``pt3d_68``'s first two rows, the 68 points in the iBUG / 300-W order (schema ``w300_68``), used
as stored (``one_based=True`` subtracts 1; ``benchmarks/correspondence.py`` measures which origin fits the
images: docs/datasets.md). On a turned face the hidden jaw points sit at their 3-D position behind the
cheek, not on the visible outline as 300-W places them: mix them with 300-W only knowing that (the
``large_pose`` flag below marks those faces). Option ``jaw`` (:data:`JAW_OPTIONS`): ``keep`` (default) uses
them as stored; ``mask_turned`` makes the 17 jaw points 0-16 missing (NaN, not visible: not trained on, not
scored) on the faces turned |yaw| >= 30 degrees; ``mask`` on every face. Box: the tight box of all 68
points as stored, whatever ``jaw`` masks (so a face is cropped alike either way).

Attributes: ``yaw``, ``pitch``, ``roll`` in degrees (``Pose_Para``'s first three values, radians as
stored), ``large_pose`` = 1 when |yaw| >= 30 degrees (664 of the 1,680 shared faces), else 0, and ``image_id``.

Splits: ``all`` (every ``.mat``), ``val`` (a fixed hold-out: the faces whose image id ``imageNNNNN``
is held out by :func:`awing.data.readers.w300.held_out`, SHA-1 of the id, first 8 bytes divisible by 8:
about 1 in 8, decided by the id alone), ``train`` (the others), and ``frontal`` / ``large_pose`` (the
faces of ``all`` with |yaw| < 30 / >= 30 degrees, for per-pose scores). Each image is one AFLW face.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from awing.data.readers import register_reader
from awing.data.readers._common import MatFile, check_split, image_beside, no_samples
from awing.data.readers.w300 import held_out
from awing.data.sample import AnnotationError, Sample, landmark_box
from awing.schemas import load_schema

SPLITS = ("train", "val", "all", "frontal", "large_pose")
NUM_POINTS = load_schema("w300_68").num_points
LARGE_YAW = 30.0  # degrees: |yaw| at or above this is a large pose
JAW = tuple(range(17))  # the jaw line's points in the 300-W order
JAW_OPTIONS = ("keep", "mask_turned", "mask")  # the reader's ``jaw`` option


def find_folder(root: Path) -> Path:
    """``root/AFLW2000`` if it exists, else ``root`` (the folder itself)."""
    folder = Path(root) / "AFLW2000"
    return folder if folder.is_dir() else Path(root)


def read_mat(path: Path) -> tuple[np.ndarray, tuple[float, float, float]]:
    """((68, 2) points as stored, (pitch, yaw, roll) radians) of one AFLW2000-3D ``.mat`` file.

    Raises:
        AnnotationError: unreadable file, missing or misshaped ``pt3d_68`` / ``Pose_Para``, non-finite values
        (the message names the file and the variable).
    """
    from scipy.io.matlab import MatReadError

    try:
        with MatFile(path) as mat:
            pt3d = mat.array("pt3d_68", ndim=2)
            pose = mat.array("Pose_Para").reshape(-1)
    except MatReadError as err:  # a truncated or foreign file (MatFile names the other failures)
        raise AnnotationError(f"{path}: not a readable MATLAB file ({err})") from None
    if pt3d.shape[0] not in (2, 3) or pt3d.shape[1] != NUM_POINTS:
        raise AnnotationError(f"{path}: variable 'pt3d_68' has shape {pt3d.shape}, expected (3, {NUM_POINTS})")
    points = np.asarray(pt3d[:2].T, dtype=np.float64)
    if not np.isfinite(points).all():
        raise AnnotationError(f"{path}: variable 'pt3d_68' holds non-finite coordinates")
    if pose.size < 3 or not np.isfinite(pose[:3]).all():
        raise AnnotationError(f"{path}: variable 'Pose_Para' needs finite pitch, yaw, roll first, has {pose.tolist()}")
    pitch, yaw, roll = (float(v) for v in pose[:3])
    return points, (pitch, yaw, roll)


def in_split(image_id: str, split: str, large_pose: bool | None = None) -> bool:
    """Whether a face belongs to ``split`` (module docstring); ``large_pose`` None: not known yet (True
    for the pose splits, which are decided once the file is read)."""
    if split in ("train", "val"):
        return held_out(image_id) == (split == "val")
    if split in ("frontal", "large_pose") and large_pose is not None:
        return large_pose == (split == "large_pose")
    return True


@register_reader(
    "aflw2000",
    schema="w300_68",
    splits=SPLITS,
    landmark_boxes=True,
    description="AFLW2000-3D imageNNNNN.jpg + .mat (68 points, 3-D fit, large poses; val = fixed 1-in-8 hash)",
)
def read(
    root: Path, split: str, one_based: bool = False, check_images: bool = True, jaw: str = "keep"
) -> list[Sample]:
    """Read one AFLW2000-3D split (module docstring: layout, splits, attributes).

    Args:
        root: folder holding ``AFLW2000/`` (or that folder).
        split: ``train``, ``val``, ``all``, ``frontal`` or ``large_pose``.
        one_based: subtract 1 from the stored coordinates.
        check_images: raise if a ``.mat`` file has no image beside it.
        jaw: ``keep`` the jaw points 0-16 as stored, ``mask_turned``: missing on faces turned |yaw| >= 30
            degrees, ``mask``: missing on every face.

    Raises:
        ValueError: an unknown split or ``jaw`` option.
    """
    check_split("aflw2000", split, SPLITS)
    if jaw not in JAW_OPTIONS:
        raise ValueError(f"aflw2000: jaw must be one of {', '.join(JAW_OPTIONS)}, got {jaw!r}")
    folder = find_folder(root)
    files = sorted(folder.glob("image*.mat"))
    if not files:
        raise FileNotFoundError(f"aflw2000: no image*.mat file in {folder}")
    shift = 1.0 if one_based else 0.0
    samples = []
    for path in files:
        if not in_split(path.stem, split):
            continue
        where = str(path)
        points, (pitch, yaw, roll) = read_mat(path)
        yaw_deg = math.degrees(yaw)
        large = abs(yaw_deg) >= LARGE_YAW
        if not in_split(path.stem, split, large):
            continue
        landmarks = points - shift
        box = landmark_box(landmarks, where)
        visible = None
        if jaw == "mask" or (jaw == "mask_turned" and large):
            landmarks = landmarks.copy()
            landmarks[list(JAW)] = np.nan
            visible = np.ones(NUM_POINTS, dtype=bool)
            visible[list(JAW)] = False
        attributes = {
            "image_id": path.stem,
            "yaw": yaw_deg,
            "pitch": math.degrees(pitch),
            "roll": math.degrees(roll),
            "large_pose": int(large),
        }
        samples.append(
            Sample(
                image=image_beside(path, where, check_images),
                landmarks=landmarks,
                box=box,
                visible=visible,
                attributes=attributes,
                split=split,
                source=where,
            )
        )
    if not samples:
        raise no_samples("aflw2000", split, folder)
    return samples
