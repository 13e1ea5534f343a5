"""One typed configuration for training, evaluation and the reproduction runs.

A config is a YAML file whose top-level sections mirror the dataclasses below. A file may name a
``base:`` file (relative to itself) whose values it overrides. Command-line overrides use dotted keys:
``awing train configs/cpu/fdd14.yaml loss.name=mse optim.epochs=3``. A key that does not exist is an
error before any work starts.
"""

from __future__ import annotations

import dataclasses
import logging
import re
import typing
from pathlib import Path
from typing import Any

import yaml

log = logging.getLogger(__name__)


@dataclasses.dataclass
class ModelConfig:
    """Stacked-hourglass model. ``name`` picks a registry preset; other fields override it if set."""

    name: str = "awing-1hg"
    stacks: int | None = None
    width: int | None = None
    input_size: int = 256
    boundary: bool = True  # the extra boundary heatmap channel (Sec. 5)
    coordconv: bool = True  # x, y, r coordinate channels (Sec. 6)
    boundary_coords: bool = True  # B_x, B_y from the previous stack's boundary (Eq. 6)


@dataclasses.dataclass
class LossConfig:
    """Heatmap loss and its weighting.

    ``params`` go to the loss by name (AWing: alpha, omega, epsilon, theta; Wing: omega, epsilon), so a
    parameter such as theta travels from here to the loss and nowhere else.
    """

    name: str = "awing"  # awing | wing | mse | l1
    params: dict = dataclasses.field(default_factory=dict)
    weight_map: str = "paper"  # none | base | paper  (Table 7: -, WM_base, WM)
    weight: float = 10.0  # W of Eq. 5
    threshold: float = 0.2  # dilated-heatmap threshold of Eq. 4


@dataclasses.dataclass
class TargetConfig:
    """Ground-truth heatmaps, in heatmap pixels."""

    sigma: float = 1.5  # landmark Gaussian; the authors' 7x7 kernel has an effective sigma of ~1.75
    radius: int = 3  # support half-size: 3 -> 7x7 (the paper's setting at 64x64)
    boundary_sigma: float = 1.0  # Sec. 7.3: exp(-d^2 / 2 sigma^2), cut at d >= 3 sigma


@dataclasses.dataclass
class DataConfig:
    """Where samples come from and how faces are cropped."""

    format: str = "synthetic"  # a reader name: see ``awing datasets``
    root: str = "runs/data/synthetic98"
    schema: str | None = None  # override the reader's schema (custom data)
    train_split: str = "train"
    val_split: str = "val"
    test_splits: list = dataclasses.field(default_factory=lambda: ["test"])
    options: dict = dataclasses.field(default_factory=dict)  # reader keyword options
    crop: str = "box"  # box | landmarks ("GT bbox")
    enlarge: float = 0.0  # enlarge the box by this fraction on each dimension (WFLW: 0.1)
    workers: int = 0
    cache: bool = False  # keep decoded images in memory (small datasets)
    limit: int | None = None  # use at most this many training samples (smoke runs)


@dataclasses.dataclass
class AugmentConfig:
    """Sec. 7.3 augmentation; translation is in pixels at 256x256 input and scales with input size."""

    enabled: bool = True
    rotation: float = 50.0  # degrees, uniform in [-r, r]
    translation: float = 25.0
    scale: float = 0.15
    flip: float = 0.5
    blur: float = 0.2  # probability of a Gaussian blur
    noise: float = 0.2  # probability of additive Gaussian noise
    occlusion: float = 0.2  # probability of a random occluding patch
    colour: float = 0.3  # probability of brightness/contrast jitter


@dataclasses.dataclass
class OptimConfig:
    """The paper's schedule: RMSProp 1e-4, momentum 0, wd 1e-5, 240 epochs, x0.1 at 80 and 160."""

    name: str = "rmsprop"  # rmsprop | adam | sgd
    lr: float = 1e-4
    momentum: float = 0.0
    weight_decay: float = 1e-5
    epochs: int = 240
    milestones: list = dataclasses.field(default_factory=lambda: [80, 160])
    gamma: float = 0.1
    batch_size: int = 16


@dataclasses.dataclass
class TrainConfig:
    """Run control."""

    seed: int = 0
    deterministic: bool = False
    precision: str = "auto"  # auto | fp32 | bf16 | fp16  (auto: bf16 on CPU/CUDA where supported)
    channels_last: bool = True
    device: str = "auto"  # auto | cpu | cuda | cuda:N
    out_dir: str = "runs"
    name: str | None = None  # run folder name; default: the config file's stem
    val_every: int = 1  # epochs
    progress: bool = True  # tqdm bars; false for batch jobs whose output goes to a file (one log line per epoch)
    label_noise: list = dataclasses.field(default_factory=lambda: [0.0, 0.0])  # [P, S] of Table 11
    tensorboard: bool = True  # only if the tensorboard package is installed


@dataclasses.dataclass
class EvalConfig:
    normaliser: str | None = None  # default: the schema's protocol normaliser
    thresholds: list = dataclasses.field(default_factory=lambda: [0.08, 0.10])  # FR and AUC cut-offs
    flip_test: bool = False


@dataclasses.dataclass
class Config:
    model: ModelConfig = dataclasses.field(default_factory=ModelConfig)
    loss: LossConfig = dataclasses.field(default_factory=LossConfig)
    targets: TargetConfig = dataclasses.field(default_factory=TargetConfig)
    data: DataConfig = dataclasses.field(default_factory=DataConfig)
    augment: AugmentConfig = dataclasses.field(default_factory=AugmentConfig)
    optim: OptimConfig = dataclasses.field(default_factory=OptimConfig)
    train: TrainConfig = dataclasses.field(default_factory=TrainConfig)
    eval: EvalConfig = dataclasses.field(default_factory=EvalConfig)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


class ConfigError(ValueError):
    """A config file or override that does not fit the schema above."""


def _merge(base: dict, update: dict) -> dict:
    out = dict(base)
    for key, value in update.items():
        if (
            isinstance(value, dict)
            and isinstance(out.get(key), dict)
            and key != "params"
            and key != "options"
        ):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


class _YamlLoader(yaml.SafeLoader):
    """SafeLoader that also reads exponents without a dot (``1e-4``) as floats, as YAML 1.2 does;
    YAML 1.1 (PyYAML) would make ``optim.lr=1e-4`` or ``loss.params={epsilon: 1e-3}`` a string."""


_YamlLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:[0-9][0-9_]*)(?:[eE][-+]?[0-9]+)$"),
    list("-+0123456789"),
)


def _yaml(text: str) -> Any:
    return yaml.load(text, Loader=_YamlLoader)  # noqa: S506 (a SafeLoader subclass)


def _read_yaml(path: Path, seen: tuple = ()) -> dict:
    if not path.is_file():
        raise ConfigError(f"config file not found: {path}")
    if path.resolve() in seen:
        raise ConfigError(f"config base cycle through {path}")
    data = _yaml(path.read_text()) or {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: a config is a mapping of sections")
    base = data.pop("base", None)
    if base:
        data = _merge(_read_yaml((path.parent / base), seen + (path.resolve(),)), data)
    return data


def _coerce(value: Any, annotation: Any, where: str) -> Any:
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if value is None:
        if annotation is type(None) or type(None) in args:
            return None
        raise ConfigError(f"{where}: null is not allowed here")
    if args and type(None) in args:  # Optional[X]
        inner = [a for a in args if a is not type(None)]
        return _coerce(value, inner[0], where)
    if annotation is bool:
        if isinstance(value, bool):
            return value
        raise ConfigError(f"{where}: expected true/false, got {value!r}")
    if annotation in (int, float):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{where}: expected a number, got {value!r}")
        if annotation is int and float(value) != int(value):
            raise ConfigError(f"{where}: expected an integer, got {value!r}")
        return annotation(value)
    if annotation is str:
        return str(value)
    if annotation is list or origin is list:
        return list(value) if isinstance(value, (list, tuple)) else [value]
    if annotation is dict or origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: expected a mapping, got {value!r}")
        return dict(value)
    return value


# Keys that older versions wrote (checkpoints keep their config): accepted and dropped.
RETIRED_KEYS = {"train.log_every", "train.log_train_mse"}


def _build(cls, data: dict, where: str):
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    for key in sorted(set(data) - names):
        if where + key in RETIRED_KEYS:
            log.debug("config key %s%s is no longer used; ignored", where, key)
            data = {k: v for k, v in data.items() if k != key}
    unknown = sorted(set(data) - names)
    if unknown:
        raise ConfigError(
            f"unknown config key(s) {', '.join(where + k for k in unknown)}; known: {sorted(names)}"
        )
    kwargs = {}
    for name, value in data.items():
        hint = hints[name]
        if dataclasses.is_dataclass(hint):
            if not isinstance(value, dict):
                raise ConfigError(f"{where}{name}: expected a section (mapping)")
            kwargs[name] = _build(hint, value, f"{where}{name}.")
        else:
            kwargs[name] = _coerce(value, hint, where + name)
    return cls(**kwargs)


def parse_overrides(overrides: list[str]) -> dict:
    """``["a.b=1", "c.d=[1, 2]"]`` -> nested dict; values are parsed as YAML."""
    nested: dict = {}
    for item in overrides:
        if "=" not in item:
            raise ConfigError(f"override {item!r} is not key=value")
        key, raw = item.split("=", 1)
        parts = key.strip().split(".")
        node = nested
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = _yaml(raw) if raw.strip() else ""
    return nested


def load_config(path: str | Path | None = None, overrides: list[str] | None = None) -> Config:
    """Config from a YAML file (or the defaults) plus dotted ``key=value`` overrides."""
    data = _read_yaml(Path(path)) if path else {}
    data = _merge(data, parse_overrides(overrides or []))
    cfg = _build(Config, data, "")
    if path and cfg.train.name is None:
        cfg.train.name = Path(path).stem
    return cfg


def config_from_dict(data: dict) -> Config:
    """Rebuild a config saved with :meth:`Config.to_dict` (e.g. from a checkpoint)."""
    return _build(Config, data, "")


def save_config(cfg: Config, path: str | Path) -> None:
    Path(path).write_text(yaml.safe_dump(cfg.to_dict(), sort_keys=False))
