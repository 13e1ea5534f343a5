"""``LandmarkDataset``: Samples -> cropped (and augmented) face tensors, plus the loader around it.

Each item is a dict of tensors (see :meth:`LandmarkDataset.__getitem__`). Heatmap targets are NOT
rendered here: the training loop renders them batched on its device from ``points``.

Robustness: an image that cannot be read (missing, truncated, not an image) does not stop an epoch. The
item comes back with ``valid=False`` and zeros, a warning is logged once per file (logger
``awing.data``) and :func:`collate_landmarks` drops it from the batch, reporting ``n_invalid``.

Randomness: each item's augmentation draws from its own generator seeded by ``(seed, distributed rank,
epoch, index)``. The draws therefore do not depend on which worker serves an item or how many workers
there are, differ between ranks and epochs, and a resumed run (``set_epoch``) repeats them exactly.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Sequence

import cv2
import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from awing.core.config import AugmentConfig
from awing.core.images import read_image
from awing.data.augment import jitter_square, photometric, random_affine_params, warp_sample
from awing.data.crop import face_square
from awing.data.sample import Sample, landmark_box
from awing.schemas import Schema, load_schema

log = logging.getLogger("awing.data")

__all__ = [
    "LandmarkDataset", "MixedLandmarks", "BalancedSampler", "part_sizes", "crop_box", "collate_landmarks",
    "build_loader", "worker_init_fn",
]

CROP_MODES = ("box", "landmarks")


def crop_box(sample: Sample, crop: str) -> np.ndarray:
    """(4,) float32 box a ``crop`` mode (:data:`CROP_MODES`) builds a face's crop from, before squaring
    and enlarging, in image pixels: ``box`` takes the sample's box (its landmark box when it has none),
    ``landmarks`` the landmark box."""
    if crop == "box" and sample.box is not None and np.isfinite(sample.box).all():
        return np.asarray(sample.box, dtype=np.float32)
    return landmark_box(sample.landmarks, sample.source)


def _rank() -> int:
    """This process's torch.distributed rank (0 when not distributed): ranks augment differently."""
    dist = torch.distributed
    return int(dist.get_rank()) if dist.is_available() and dist.is_initialized() else 0


class LandmarkDataset(Dataset):
    """Face crops of ``input_size`` pixels with their landmarks in crop coordinates.

    Args:
        samples: the faces (any reader's output).
        schema: a Schema or its name; gives N and the flip permutation.
        input_size: S, the crop side in pixels.
        crop: ``box`` crops on ``sample.box`` (falling back to the landmark box when a sample has none);
            ``landmarks`` on the tight box around the annotated landmarks (the paper's "GT bbox").
        enlarge: fraction by which both box dimensions grow before cropping (WFLW: 0.1).
        augment: Sec. 7.3 augmentation; used only if ``train`` and ``augment.enabled``.
        train: training mode (augmentation on).
        cache: keep decoded images in memory (per process; faces of one image share it).
        seed: seed of the augmentation generator.
        crop_rule: a model's stored crop rule (:func:`awing.data.crop.crop_square`, e.g. the authors' crop of
            an imported model), used instead of ``square_box(box, enlarge)``.
        shift: ``(dx, dy)``: the crop square's centre moved by these fractions of the box's longer side
            (a source whose box sits elsewhere on the face than the run's own data's; ``data.sources[i].shift``).
        known_points: (N,) bool, the points of ``schema`` these faces can have at all (a source whose
            points were carried into a run's layout: the others are missing in every face, and evaluation
            scores only these); None: every point.
    """

    def __init__(
        self,
        samples: Sequence[Sample],
        schema: Schema | str,
        input_size: int,
        crop: str = "box",
        enlarge: float = 0.0,
        augment: AugmentConfig | None = None,
        train: bool = False,
        cache: bool = False,
        seed: int = 0,
        crop_rule: dict | None = None,
        known_points: np.ndarray | None = None,
        shift: Sequence[float] = (0.0, 0.0),
    ) -> None:
        if crop not in CROP_MODES:
            raise ValueError(f"crop must be one of {CROP_MODES}, got {crop!r}")
        self.samples = list(samples)
        self.schema = load_schema(schema)
        n = self.schema.num_points
        for s in self.samples:
            if s.num_points != n:
                where = s.source or s.image
                raise ValueError(f"{where}: {s.num_points} landmarks, schema {self.schema.name} has {n}")
        self.input_size = int(input_size)
        self.crop = crop
        self.enlarge = float(enlarge)
        self.crop_rule = dict(crop_rule) if crop_rule else None
        if self.crop_rule:
            face_square((0.0, 0.0, 10.0, 10.0), rule=self.crop_rule)  # an unknown rule fails here, not per item
        self.augment = augment
        self.train = bool(train)
        self.cache = bool(cache)
        self.seed = int(seed)
        self.flip_permutation = self.schema.flip_permutation
        self.known_points = None if known_points is None else np.asarray(known_points, dtype=bool).reshape(n)
        self.shift = tuple(float(v) for v in shift)
        self.invalid_files: set[str] = set()  # this process's unreadable images (warned once each)
        self._images: dict[str, np.ndarray] = {}
        # Shared memory, so DataLoader workers (also persistent ones) see the epoch the loop sets.
        self._epoch = torch.zeros((), dtype=torch.int64).share_memory_()

    @property
    def augmenting(self) -> bool:
        return self.train and self.augment is not None and self.augment.enabled

    def __len__(self) -> int:
        return len(self.samples)

    # ---------------------------------------------------------------------------------------------
    def set_epoch(self, epoch: int) -> None:
        """Select the augmentation draws of ``epoch`` (call before iterating the epoch's loader)."""
        self._epoch.fill_(int(epoch))

    def item_rng(self, index: int) -> np.random.Generator:
        """The augmentation generator of one item in the current epoch."""
        return np.random.default_rng([self.seed, _rank(), int(self._epoch), int(index)])

    def face_box(self, sample: Sample) -> np.ndarray:
        """(4,) float32 box the crop is built from (before squaring and enlarging), original pixels."""
        return crop_box(sample, self.crop)

    def _image(self, path: str) -> np.ndarray | None:
        image = self._images.get(path)
        if image is None:
            image = read_image(path)
            if image is not None and self.cache:
                self._images[path] = image
        return image

    def _invalid(self, index: int, sample: Sample, reason: str) -> dict:
        if sample.image not in self.invalid_files:
            self.invalid_files.add(sample.image)
            log.warning("skipping %s (%s): %s", sample.image, sample.source or f"sample {index}", reason)
        n, s = self.schema.num_points, self.input_size
        box = sample.box if sample.box is not None else np.zeros(4, np.float32)
        return {
            "image": torch.zeros((3, s, s), dtype=torch.uint8),
            "points": torch.full((n, 2), float("nan"), dtype=torch.float32),
            "visible": torch.zeros(n, dtype=torch.bool),
            "affine": torch.zeros((2, 3), dtype=torch.float64),
            "landmarks": torch.from_numpy(np.array(sample.landmarks, dtype=np.float32)),
            "box": torch.from_numpy(np.array(box, dtype=np.float32)),
            "index": index,
            "valid": torch.tensor(False),
        }

    def __getitem__(self, index: int) -> dict:
        """One face.

        Returns a dict:
            ``image`` uint8 (3, S, S) RGB crop; ``points`` float32 (N, 2) landmarks in crop pixels (NaN
            where missing; points outside the crop keep their coordinates); ``visible`` bool (N,) (the
            annotation's flag, True where unknown, False where missing); ``affine`` float64 (2, 3)
            original -> crop (including augmentation; with a flip, ``points[i]`` is the image of
            ``landmarks[flip_permutation[i]]``); ``landmarks`` float32 (N, 2) original-image ground
            truth (un-augmented, original index order); ``box`` float32 (4,) the face box the crop was
            built from (:meth:`face_box`); ``index`` int; ``valid`` bool scalar.
        """
        index = int(index)
        sample = self.samples[index]
        try:
            box = self.face_box(sample)
            cx, cy, side = face_square(box, self.enlarge, self.crop_rule)
            if any(self.shift):
                longer = float(max(box[2] - box[0], box[3] - box[1]))
                cx, cy = cx + self.shift[0] * longer, cy + self.shift[1] * longer
        except ValueError as err:
            return self._invalid(index, sample, f"no usable face box ({err})")
        image = self._image(sample.image)
        if image is None:
            return self._invalid(index, sample, "image missing or unreadable")

        landmarks = sample.landmarks
        visible = np.ones(len(landmarks), dtype=bool) if sample.visible is None else sample.visible.copy()
        visible &= ~np.isnan(landmarks).any(axis=1)
        params = None
        if self.augmenting:
            rng = self.item_rng(index)
            params = random_affine_params(rng, self.augment, self.input_size)
            if self.augment.box_scale is not None or self.augment.box_shift:  # detector-like framing (issue 13)
                box_side = float(max(box[2] - box[0], box[3] - box[1]))
                (cx, cy), side = jitter_square(rng, self.augment, (cx, cy), side, box_side)
        crop, points, visible, m = warp_sample(
            image, landmarks, visible, (cx, cy), side, self.input_size, self.flip_permutation, params
        )
        crop = cv2.cvtColor(crop, cv2.COLOR_BGR2RGB)
        if self.augmenting:
            crop = photometric(crop, rng, self.augment)
        return {
            "image": torch.from_numpy(np.ascontiguousarray(crop.transpose(2, 0, 1))),
            "points": torch.from_numpy(points.astype(np.float32)),
            "visible": torch.from_numpy(np.ascontiguousarray(visible)),
            "affine": torch.from_numpy(m),
            "landmarks": torch.from_numpy(np.array(landmarks, dtype=np.float32)),
            "box": torch.from_numpy(np.array(box, dtype=np.float32)),
            "index": index,
            "valid": torch.tensor(True),
        }


class MixedLandmarks(torch.utils.data.ConcatDataset):
    """Several :class:`LandmarkDataset` of one schema and input size (mixed-source training), each with
    its own crop; indexed one after another. ``samples`` is their concatenation, in index order, and an
    item's ``index`` is its index here (the part's own index would name another part's file)."""

    def __init__(self, parts: Sequence[LandmarkDataset]) -> None:
        super().__init__(parts)
        if len({(p.schema.num_points, p.input_size) for p in parts}) > 1:
            raise ValueError("mixed-source parts must share the schema and the input size")
        self.samples = [s for p in parts for s in p.samples]
        self.schema = parts[0].schema

    def __getitem__(self, index: int) -> dict:
        item = super().__getitem__(index)
        item["index"] = index if index >= 0 else len(self) + index
        return item

    def set_epoch(self, epoch: int) -> None:
        for part in self.datasets:
            part.set_epoch(epoch)

    @property
    def invalid_files(self) -> set[str]:
        return set().union(*(p.invalid_files for p in self.datasets))


class BalancedSampler(Sampler[int]):
    """An epoch of ``epoch_size`` draws from the parts of a dataset (the parts of a
    :class:`MixedLandmarks`, one after another), split over distributed ranks as
    :class:`torch.utils.data.DistributedSampler` splits its indices.

    ``balanced``: every part gives the same number of draws (``epoch_size // parts``, the remainder to
    parts chosen at random each epoch), so a small source is seen as often as a large one; else the parts
    give draws in proportion to their sizes (uniform over the faces). Within a part the draws are whole
    shuffled passes over its faces and then a shuffled share of one more (sampling with replacement, but
    no face twice more often than another), so a part asked for fewer draws than it holds gives distinct
    faces. The epoch's draws are then shuffled together. Each epoch is a function of ``(seed, epoch)``
    alone (:meth:`set_epoch`), the same on every rank; rank ``r`` takes every ``num_replicas``-th index from
    ``r``, the list padded by its own first indices to a multiple of ``num_replicas`` (or cut to one
    with ``drop_last``).
    """

    def __init__(
        self,
        sizes: Sequence[int],
        epoch_size: int,
        balanced: bool = True,
        num_replicas: int = 1,
        rank: int = 0,
        seed: int = 0,
        drop_last: bool = False,
    ) -> None:
        self.sizes = [int(n) for n in sizes]
        if not self.sizes or min(self.sizes) < 1:
            raise ValueError(f"every part needs at least one face, got sizes {self.sizes}")
        if epoch_size < 1:
            raise ValueError(f"epoch_size must be >= 1, got {epoch_size}")
        if not 0 <= rank < num_replicas:
            raise ValueError(f"rank {rank} is not in [0, {num_replicas})")
        self.epoch_size, self.balanced = int(epoch_size), bool(balanced)
        self.num_replicas, self.rank, self.seed, self.drop_last = int(num_replicas), int(rank), int(seed), drop_last
        self.epoch = 0
        total = self.epoch_size // self.num_replicas if drop_last else -(-self.epoch_size // self.num_replicas)
        self.num_samples = total
        self.offsets = np.cumsum([0, *self.sizes[:-1]])

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def part_counts(self, rng: np.random.Generator) -> np.ndarray:
        """(parts,) how many draws each part gives this epoch."""
        k = len(self.sizes)
        if self.balanced:
            counts = np.full(k, self.epoch_size // k)
            counts[rng.choice(k, self.epoch_size % k, replace=False)] += 1
            return counts
        counts = np.floor(self.epoch_size * np.asarray(self.sizes) / sum(self.sizes)).astype(int)
        short = self.epoch_size - counts.sum()
        counts[rng.choice(k, short, replace=False, p=np.asarray(self.sizes) / sum(self.sizes))] += 1
        return counts

    def epoch_indices(self) -> np.ndarray:
        """(epoch_size,) every rank's indices of this epoch, shuffled, before the split over ranks."""
        rng = np.random.default_rng([self.seed, self.epoch])
        parts = []
        for size, offset, count in zip(self.sizes, self.offsets, self.part_counts(rng)):
            passes, rest = divmod(int(count), size)
            draws = [rng.permutation(size) for _ in range(passes)] + [rng.permutation(size)[:rest]]
            parts.append(offset + np.concatenate(draws))
        return rng.permutation(np.concatenate(parts))

    def __iter__(self):
        indices = self.epoch_indices().tolist()
        total = self.num_samples * self.num_replicas
        if len(indices) < total:  # pad as DistributedSampler does
            indices += (indices * (total // len(indices) + 1))[: total - len(indices)]
        return iter(indices[:total][self.rank : total : self.num_replicas])

    def __len__(self) -> int:
        return self.num_samples


def part_sizes(dataset: Dataset) -> list[int]:
    """The sizes of a :class:`MixedLandmarks`' parts (the run's own faces first, then each source's), or
    ``[len(dataset)]`` for one set."""
    return [len(p) for p in dataset.datasets] if isinstance(dataset, MixedLandmarks) else [len(dataset)]


def collate_landmarks(batch: Sequence[dict]) -> dict:
    """Stack a list of items into a batch, dropping ``valid=False`` items.

    Returns the item keys stacked over the kept items (``index`` as an int64 tensor, ``valid`` all
    True) plus ``n_invalid`` (int), the number of items dropped, and ``invalid_index`` (their dataset
    indices). A batch of only invalid items has
    zero-length tensors.
    """
    keep = torch.tensor([bool(item["valid"]) for item in batch], dtype=torch.bool)
    out: dict = {}
    for key in batch[0]:
        if key == "index":
            values = torch.tensor([int(item["index"]) for item in batch], dtype=torch.int64)
        else:
            values = torch.stack([torch.as_tensor(item[key]) for item in batch])
        out[key] = values[keep]
    out["n_invalid"] = int((~keep).sum())
    out["invalid_index"] = [int(item["index"]) for item in batch if not bool(item["valid"])]
    return out


def worker_init_fn(worker_id: int) -> None:
    """Distinct, reproducible global seeds (numpy, random) in each DataLoader worker.

    ``torch.initial_seed()`` in a worker is the loader's per-iterator base seed plus the worker id, so
    seeds differ across workers and epochs and follow the loader's generator.
    """
    seed = torch.initial_seed()
    np.random.seed(seed % 2**32)
    random.seed(seed)
    # No cv2.setNumThreads() here: reconfiguring OpenCV's inherited thread pool in a forked child can
    # hang (it joins threads that only existed in the parent). Parallel cv2 calls themselves are safe.


def build_loader(
    dataset: Dataset,
    batch_size: int,
    shuffle: bool,
    workers: int = 0,
    seed: int = 0,
    sampler: Sampler | None = None,
    drop_last: bool = False,
) -> DataLoader:
    """A DataLoader with :func:`collate_landmarks`, seeded shuffling and worker seeding.

    Persistent workers when ``workers > 0`` (their generators then advance across epochs); pinned
    memory only with CUDA. With a ``sampler`` (e.g. DistributedSampler) ``shuffle`` is ignored (the
    dataset mixes the distributed rank into its augmentation seeds itself).
    """
    generator = torch.Generator()
    generator.manual_seed(int(seed))
    return DataLoader(
        dataset,
        batch_size=batch_size,
        shuffle=bool(shuffle) if sampler is None else False,
        sampler=sampler,
        num_workers=int(workers),
        collate_fn=collate_landmarks,
        worker_init_fn=worker_init_fn if workers > 0 else None,
        generator=generator,
        persistent_workers=workers > 0,
        pin_memory=torch.cuda.is_available(),
        drop_last=drop_last,
    )
