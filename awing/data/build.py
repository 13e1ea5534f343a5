"""Samples and datasets from a config: the one way training, evaluation, export and the benchmarks
build them."""

from __future__ import annotations

import inspect
import logging

from awing.core.config import Config, DataConfig
from awing.data.dataset import LandmarkDataset
from awing.data.noise import add_label_noise
from awing.data.readers import get_reader, read_dataset, schema_for_point_count
from awing.data.sample import Sample
from awing.schemas import Schema, load_schema

log = logging.getLogger("awing.data")

__all__ = ["read_split", "dataset_schema", "build_dataset", "load_training_splits"]


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


def build_dataset(
    cfg: Config, samples: list[Sample], schema: Schema, input_size: int, train: bool = False,
    crop_rule: dict | None = None,
) -> LandmarkDataset:  # fmt: skip
    """A :class:`LandmarkDataset` with the config's crop, cache and (when ``train``) augmentation;
    ``crop_rule``: a model's stored crop rule instead of the config's enlargement (evaluation)."""
    d = cfg.data
    augment = cfg.augment if (train and cfg.augment.enabled) else None
    return LandmarkDataset(
        samples, schema, input_size, crop=d.crop, enlarge=d.enlarge, augment=augment, train=train,
        cache=d.cache, seed=cfg.train.seed, crop_rule=crop_rule,
    )  # fmt: skip
