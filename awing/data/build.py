"""Samples and datasets from a config: the one way training, evaluation, export and the benchmarks
build them."""

from __future__ import annotations

import dataclasses
import inspect
import logging

import numpy as np
from torch.utils.data import Dataset, DistributedSampler, Sampler

from awing.core.config import Config, DataConfig, SourceConfig
from awing.data.dataset import BalancedSampler, LandmarkDataset, MixedLandmarks, crop_box, part_sizes
from awing.data.noise import add_label_noise
from awing.data.readers import get_reader, read_dataset, schema_for_point_count
from awing.data.sample import Sample
from awing.schemas import Schema, load_schema, map_points, transfer_mapping

log = logging.getLogger("awing.data")

__all__ = [
    "read_split", "dataset_schema", "build_dataset", "build_training_set", "load_training_splits", "load_sources",
    "source_names", "build_source_val_sets", "training_sampler",
]


def _reader_options(data: DataConfig, fmt: str, root: str | None = None) -> dict:
    """``data.options`` for the config's own dataset (another format or folder gets none: the options
    describe the run's data), with ``data.schema`` passed to readers that take a schema (custom CSV/JSON,
    COCO, synthetic)."""
    if fmt != data.format or (root is not None and str(root) != str(data.root)):
        return {}
    options = dict(data.options)
    if data.schema and "schema" in inspect.signature(get_reader(fmt).read).parameters:
        options["schema"] = data.schema
    return options


def read_split(data: DataConfig, split: str, fmt: str | None = None, root: str | None = None) -> list[Sample]:
    """The samples of one split: the config's dataset, or ``fmt`` / ``root`` (``FORMAT:ROOT:SPLIT``)."""
    fmt = fmt or data.format
    return read_dataset(fmt, root or data.root, split, **_reader_options(data, fmt, root))


def dataset_schema(data: DataConfig, samples: list[Sample], fmt: str | None = None, root: str | None = None) -> Schema:
    """The schema of a split: ``data.schema``, else the reader's, else the built-in one for the point count.

    Raises:
        ValueError: the samples' point count does not fit the schema.
    """
    fmt = fmt or data.format
    name = (data.schema if fmt == data.format and root in (None, data.root) else None) or get_reader(fmt).schema
    if not name:  # layouts such as COCO JSON whose schema depends on the file
        name = schema_for_point_count(samples[0].num_points, f"data.format={fmt}") if samples else None
    if name is None:
        raise ValueError(f"no samples to infer the schema of data.format={fmt} from; set data.schema")
    schema = load_schema(name)
    if samples and samples[0].num_points != schema.num_points:
        raise ValueError(
            f"{fmt} samples have {samples[0].num_points} points but schema {schema.name} has {schema.num_points}"
        )
    return schema


def load_training_splits(cfg: Config) -> tuple[Schema, list[Sample], list[Sample]]:
    """Schema and the train / val samples of a training config, with ``data.limit`` and the label noise
    of ``data.label_noise`` (Table 11) applied to the training samples.

    Raises:
        ValueError: no training samples, or a split whose points do not fit the schema.
    """
    d = cfg.data
    train = read_split(d, d.train_split)
    if not train:
        raise ValueError(f"no training samples in {d.root} split {d.train_split!r}")
    val = read_split(d, d.val_split) if d.val_split else []
    schema = dataset_schema(d, train)
    if val and val[0].num_points != schema.num_points:
        raise ValueError(
            f"val samples have {val[0].num_points} points but schema {schema.name} has {schema.num_points}"
        )
    if d.limit:
        train = train[: d.limit]
    p, s = d.label_noise
    return schema, add_label_noise(train, schema, p / 100, s / 100, seed=cfg.train.seed), val


def _map_visibility(visible: np.ndarray | None, weights: np.ndarray) -> np.ndarray | None:
    """(T,) visibility through mapping ``weights`` (T, S): visible when every source point used is."""
    return None if visible is None else ~((weights > 0) & ~visible[None, :]).any(axis=1)


def _box_size(points: np.ndarray) -> float:
    """sqrt(w * h) of the tight box around the annotated points (NaN: none), the fallback normaliser's
    distance of :mod:`awing.engine.evaluate`, recorded before a source's points are mapped."""
    finite = points[np.isfinite(points).all(axis=1)]
    if not len(finite):
        return float("nan")
    w, h = finite.max(axis=0) - finite.min(axis=0)
    return float(np.sqrt(w * h))


def _mapped_source(
    i: int, src: SourceConfig, split: str, schema: Schema, limit: int | None
) -> tuple[list[Sample], np.ndarray]:
    """One split of ``data.sources[i]``, its points moved into ``schema`` (missing where the source cannot
    give a point), its crop box fixed in the source's own layout and the box size of its own annotation
    kept as ``attributes["gt_box"]``; with the (T, S) mapping weights.

    Raises:
        ValueError: no samples, or a source that shares no point with ``schema``.
    """
    samples = read_dataset(src.format, src.root, split, **src.options)
    if not samples:
        raise ValueError(f"data.sources[{i}]: no samples in {src.root} split {split!r}")
    if limit and limit < len(samples):
        samples = [samples[j] for j in np.linspace(0, len(samples) - 1, limit).round().astype(int)]
    own = dataset_schema(DataConfig(format=src.format, root=src.root, schema=src.options.get("schema")), samples)
    weights = transfer_mapping(own, schema)
    # The crop box is fixed in the source's own layout (its reader's box or its own landmark box),
    # so the crop frames the face as this source does, not by the few points it shares.
    samples = [dataclasses.replace(s, landmarks=map_points(s.landmarks, weights).astype(np.float32),
                                   visible=_map_visibility(s.visible, weights), box=crop_box(s, src.crop),
                                   attributes={**s.attributes, "gt_box": _box_size(s.landmarks)})
               for s in samples]
    log.info("data.sources[%d]: %d %s faces from %s:%s, %d of %d %s points each", i, len(samples), own.name,
             src.format, split, int(weights.any(axis=1).sum()), schema.num_points, schema.name)
    return samples, weights


def load_sources(cfg: Config, schema: Schema) -> list[tuple[SourceConfig, list[Sample]]]:
    """The extra training sources of a mixed-source run (``data.sources``), each source's samples with
    their points moved into ``schema`` (missing where the source cannot give a point; see
    :func:`awing.schemas.transfer_mapping`) and their crop box fixed in the source's own layout.

    Raises:
        ValueError: a source with no samples, or one that shares no point with ``schema``.
    """
    return [(src, _mapped_source(i, src, src.split, schema, src.limit)[0]) for i, src in enumerate(cfg.data.sources)]


def source_names(cfg: Config) -> list[str]:
    """Each of ``data.sources``' name in metrics (``val_nme_<name>``): its format, numbered from the
    second source of a format on (``fgnet``, ``fgnet_2``)."""
    names, seen = [], {}
    for src in cfg.data.sources:
        seen[src.format] = seen.get(src.format, 0) + 1
        names.append(src.format if seen[src.format] == 1 else f"{src.format}_{seen[src.format]}")
    return names


def build_source_val_sets(cfg: Config, schema: Schema, input_size: int) -> dict[str, LandmarkDataset]:
    """``{name: dataset}`` (:func:`source_names`) of the validation split of every source that names one
    (``data.sources[i].val_split``): its faces mapped into ``schema`` like its training faces, cropped
    like them (no augmentation), and ``known_points`` saying which points it can give (only those are
    scored).

    Raises:
        ValueError: a source's ``val_normaliser`` is not one of ``schema``'s normalisers.
    """
    out = {}
    for i, (name, src) in enumerate(zip(source_names(cfg), cfg.data.sources)):
        if not src.val_split:
            continue
        if src.val_normaliser and src.val_normaliser not in schema.normalisers:
            raise ValueError(
                f"data.sources[{i}].val_normaliser={src.val_normaliser!r} is not a normaliser of {schema.name}; "
                f"known: {', '.join(schema.normalisers)}"
            )
        samples, weights = _mapped_source(i, src, src.val_split, schema, None)
        out[name] = LandmarkDataset(
            samples, schema, input_size, crop="box", enlarge=src.enlarge, cache=cfg.data.cache,
            seed=cfg.train.seed, known_points=weights.any(axis=1), shift=src.shift,
        )
    return out


def build_training_set(
    cfg: Config, samples: list[Sample], schema: Schema, input_size: int
) -> LandmarkDataset | MixedLandmarks:
    """The augmented training set: the config's own split, plus each of ``data.sources`` with its crop."""
    own = build_dataset(cfg, samples, schema, input_size, train=True)
    if not cfg.data.sources:
        return own
    parts = [own]
    for k, (src, source_samples) in enumerate(load_sources(cfg, schema), start=1):
        augment = cfg.augment if cfg.augment.enabled else None
        parts.append(LandmarkDataset(
            source_samples, schema, input_size, crop="box", enlarge=src.enlarge, augment=augment, train=True,
            cache=cfg.data.cache, seed=cfg.train.seed + 7919 * k, shift=src.shift,
        ))
    return MixedLandmarks(parts)


def training_sampler(cfg: Config, train_set: Dataset, world_size: int, rank: int) -> Sampler:
    """The sampler of a training set (each rank's share of an epoch, reshuffled by ``set_epoch``).

    ``data.balance: none`` without ``data.epoch_size``: a seeded :class:`DistributedSampler` over every
    face (the last incomplete share dropped once there are at least ``batch x ranks`` faces), as always.
    Else a :class:`~awing.data.dataset.BalancedSampler` of ``data.epoch_size`` draws (default: the number
    of training faces): the same number from each part of the training set (the run's own split, then each
    source) with ``balance: sources``, in proportion to their sizes with ``none``.
    """
    d, batch, seed = cfg.data, cfg.optim.batch_size, cfg.train.seed
    if d.balance == "none" and d.epoch_size is None:
        drop = len(train_set) >= batch * world_size
        return DistributedSampler(train_set, world_size, rank, shuffle=True, seed=seed, drop_last=drop)
    epoch_size = d.epoch_size or len(train_set)
    sizes = part_sizes(train_set)
    sampler = BalancedSampler(sizes, epoch_size, d.balance == "sources", world_size, rank, seed,
                              drop_last=epoch_size >= batch * world_size)
    log.info("data.balance=%s: %d faces per epoch from parts of %s faces", d.balance, epoch_size,
             " / ".join(map(str, sizes)))
    return sampler


def build_dataset(
    cfg: Config, samples: list[Sample], schema: Schema, input_size: int, train: bool = False,
    crop_rule: dict | None = None,
) -> LandmarkDataset:
    """A :class:`LandmarkDataset` with the config's crop, cache and (when ``train``) augmentation;
    ``crop_rule``: a model's stored crop rule instead of the config's enlargement (evaluation)."""
    d = cfg.data
    augment = cfg.augment if (train and cfg.augment.enabled) else None
    return LandmarkDataset(
        samples, schema, input_size, crop=d.crop, enlarge=d.enlarge, augment=augment, train=train,
        cache=d.cache, seed=cfg.train.seed, crop_rule=crop_rule,
    )
