"""One typed configuration for training, evaluation and the reproduction runs.

A config is a YAML file whose top-level sections mirror the dataclasses below. A file may name a
``base:`` file (relative to itself) whose values it overrides. Command-line overrides use dotted keys:
``awing train configs/cpu/fdd14.yaml loss.name=mse optim.epochs=3``. A key that does not exist is an
error before any work starts.
"""

from __future__ import annotations

import copy
import dataclasses
import logging
import math
import re
import typing
from pathlib import Path
from typing import Any

import yaml

log = logging.getLogger(__name__)


def _opaque_mapping() -> Any:
    """A field holding a mapping passed through untyped to the code it configures (a loss, a reader): a
    file's mapping replaces its base's whole (no key-by-key merge), and config comparisons treat it as one
    value. The one place that rule is declared: :data:`OPAQUE_KEYS` collects these fields."""
    return dataclasses.field(default_factory=dict, metadata={"opaque": True})


@dataclasses.dataclass
class ModelConfig:
    """Stacked-hourglass model. ``name`` picks a registry preset; other fields override it if set."""

    name: str = "awing-1hg"
    stacks: int | None = None
    width: int | None = None
    input_size: int | None = None  # None: the preset's (awing-1hg: 256, awing-1hg-small: 128)
    depth: int | None = None  # hourglass levels (None: the preset's, 4 except awing-1hg-96's 3)
    stem: str | None = None  # "fan" (the paper's) or "light" (no block at half resolution); None: the preset's
    heatmap_stride: int | None = None  # input pixels per heatmap pixel: 4 (the paper's) or 2; None: the preset's
    boundary: bool = True  # the extra boundary heatmap channel (Sec. 5)
    coordconv: bool = True  # x, y, r coordinate channels (Sec. 6)
    boundary_coords: bool = True  # B_x, B_y from the previous stack's boundary (Eq. 6)
    # The heatmap output layers' initial weights: "default" (PyTorch's, as all runs before issue 26) or
    # "small" (weights N(0, 0.001^2), bias 0: mmpose's heads, so every first heatmap is flat near zero).
    output_init: str = "default"


@dataclasses.dataclass
class LossConfig:
    """Heatmap loss and its weighting.

    ``params`` go to the loss by name (AWing: alpha, omega, epsilon, theta; Wing: omega, epsilon), so a
    parameter such as theta travels from here to the loss and nowhere else.
    """

    name: str = "awing"  # awing | wing | mse | l1
    params: dict = _opaque_mapping()
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
class SourceConfig:
    """One more training source of a mixed-source run (``data.sources``): its samples join the training
    set with their points moved into the run's layout (``awing.schemas.transfer_mapping``). A point the
    source does not annotate is missing, so its heatmap channel is masked out of the loss (and the
    boundary channel with it unless every boundary-line point is known). Each source keeps its own crop.
    """

    format: str = ""  # a reader name
    root: str = ""
    split: str = "train"
    options: dict = _opaque_mapping()  # reader keyword options
    crop: str = "box"  # box | landmarks, as data.crop, in the source's own layout
    enlarge: float = 0.0  # as data.enlarge
    # [dx, dy]: the crop's centre moved by these fractions of the box's longer side (before enlarge), for a
    # layout whose box sits elsewhere on the face than the run's (SCUT's outline reaches up to the hairline).
    shift: list = dataclasses.field(default_factory=lambda: [0.0, 0.0])
    limit: int | None = None  # at most this many samples, evenly spaced over the split
    # A split of the source validated at every validation of the run (its faces mapped into the run's
    # layout, scored on the points the source gives): the metrics.csv column val_nme_<format>. None: none.
    val_split: str | None = None
    # The NME normaliser of that validation (a name in the run's layout, e.g. box for AFLW2000-3D, whose
    # turned faces shrink the eye-corner distance); None: the run's (eval.normaliser, else its layout's).
    val_normaliser: str | None = None


@dataclasses.dataclass
class DataConfig:
    """Where samples come from and how faces are cropped."""

    format: str = "synthetic"  # a reader name: see ``awing datasets``
    root: str = "runs/data/synthetic98"
    schema: str | None = None  # the landmark schema, for readers that need one (custom, COCO, synthetic)
    train_split: str = "train"
    val_split: str = "val"
    test_splits: list = dataclasses.field(default_factory=lambda: ["test"])  # evaluated after training
    options: dict = _opaque_mapping()  # reader keyword options (not the schema)
    crop: str = "box"  # box | landmarks ("GT bbox")
    enlarge: float = 0.0  # enlarge the box by this fraction on each dimension (WFLW: 0.1)
    workers: int = 0
    cache: bool = False  # keep decoded images in memory (small datasets)
    limit: int | None = None  # use at most this many training samples (smoke runs)
    label_noise: list = dataclasses.field(default_factory=lambda: [0.0, 0.0])  # [P, S] % of Table 11
    sources: list[SourceConfig] = dataclasses.field(default_factory=list)  # more training sets (mixed sources)
    # How an epoch draws its faces: "none" (every training face once, shuffled) or "sources" (the same number
    # from each source, the run's own split counting as one; a small source is drawn with replacement).
    balance: str = "none"
    epoch_size: int | None = None  # faces per epoch (over all ranks); None: the number of training faces


@dataclasses.dataclass
class AugmentConfig:
    """Sec. 7.3 augmentation of training crops.

    ``rotation`` is in degrees in [0, 180] (uniform in [-r, r]), ``translation`` in pixels at 256x256 input
    (>= 0, scaled with the input size), ``scale`` a fraction in [0, 1) (the crop scale is U(1 - s, 1 + s)).

    ``box_scale`` / ``box_shift`` (GitHub issue 13) frame training crops the way face detectors frame
    faces, applied to the crop square (the face box squared and enlarged by ``data.enlarge``) before the
    affine augmentation, in training only, from each item's own seeded generator:

    - ``box_scale: [lo, hi]``, ``0 < lo <= hi``: the square's side x ``exp(U(log lo, log hi))``
      (log-uniform); null: off.
    - ``box_shift: s`` in [0, 1): its centre moves by ``U(-s, s)`` x the face box's longer side (before
      ``data.enlarge``; for landmark-box crops the landmark box's longer side) on each axis; 0: off.

    Both are off by default. How detectors frame faces (what these ranges mimic) is measured by
    ``benchmarks/framing.py``; the figures are in docs/RESULTS.md.

    Raises:
        ConfigError: ``box_scale`` or ``box_shift`` out of range (the other ranges: :func:`validate`).
    """

    enabled: bool = True
    rotation: float = 50.0  # degrees, uniform in [-r, r]
    translation: float = 25.0
    scale: float = 0.15
    flip: float = 0.5
    blur: float = 0.2  # probability of a Gaussian blur
    noise: float = 0.2  # probability of additive Gaussian noise
    occlusion: float = 0.2  # probability of a random occluding patch
    colour: float = 0.3  # probability of brightness/contrast jitter
    box_scale: list | None = None  # [lo, hi], log-uniform crop side factor; None: off
    box_shift: float = 0.0  # centre shift, fraction of the face box's longer side; 0: off

    def __post_init__(self) -> None:
        if self.box_scale is not None:
            lo_hi = list(self.box_scale)
            if not (len(lo_hi) == 2 and all(_finite_number(v) and v > 0 for v in lo_hi) and lo_hi[0] <= lo_hi[1]):
                raise ConfigError(f"augment.box_scale: must be null or [lo, hi], 0 < lo <= hi, got {self.box_scale}")
            self.box_scale = [float(v) for v in lo_hi]
        if not (_finite_number(self.box_shift) and 0 <= self.box_shift < 1):
            raise ConfigError(f"augment.box_shift: must be a fraction in [0, 1), got {self.box_shift}")


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
    tensorboard: bool = True  # only if the tensorboard package is installed
    threads: int | None = None  # CPU intra-op threads; None: OMP_NUM_THREADS, else this process's cores
    overwrite: bool = False  # train into an existing run folder, replacing its files (else: refused)
    max_skipped: float = 0.1  # fail when more than this share of an epoch's training images is unreadable
    # Which validation NME picks best.pt: "main" (the run's own val split's) or "mean" (the mean of it and
    # every data.sources[i].val_split's NME).
    select: str = "main"
    # Validation faces (evenly spaced over the split) on which every validation also measures where the loss
    # spends its gradient and how tall the heatmaps are (awing.engine.diagnostics; metrics.csv diag_*); 0: off.
    diagnose: int = 0


@dataclasses.dataclass
class EvalConfig:
    batch_size: int | None = None  # None: optim.batch_size
    normaliser: str | None = None  # default: the schema's protocol normaliser
    thresholds: list = dataclasses.field(default_factory=lambda: [0.08, 0.10])  # FR and AUC cut-offs
    flip_test: bool = False
    # The sub-pixel decoder: quarter (Sec. 7.3, the paper's) or dark (a Taylor step on the log heatmap;
    # awing.method.decode.dark_refine). Training stores it in the run's codec; None there is quarter, and
    # None at `awing eval` keeps the checkpoint's.
    decoder: str | None = None


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


def _opaque_keys(cls) -> frozenset[str]:
    """The names of the opaque mapping fields (:func:`_opaque_mapping`) of ``cls`` and the sections below it."""
    keys, hints = set(), typing.get_type_hints(cls)
    for field in dataclasses.fields(cls):
        if field.metadata.get("opaque"):
            keys.add(field.name)
        for section in (hints[field.name], *typing.get_args(hints[field.name])):
            if dataclasses.is_dataclass(section):
                keys |= _opaque_keys(section)
    return frozenset(keys)


OPAQUE_KEYS = _opaque_keys(Config)  # params, options


def _is_section(key: str, a: Any, b: Any) -> bool:
    """Whether two values under ``key`` are sections compared or merged key by key (not opaque values)."""
    return isinstance(a, dict) and isinstance(b, dict) and key not in OPAQUE_KEYS


def _merge(base: dict, update: dict) -> dict:
    out = dict(base)
    for key, value in update.items():
        out[key] = _merge(out[key], value) if _is_section(key, out.get(key), value) else value
    return out


def config_changes(old: dict, new: dict, prefix: str = "") -> dict[str, tuple]:
    """``{dotted key: (old, new)}`` for every value that differs between two config dicts
    (:meth:`Config.to_dict`); an opaque mapping (``loss.params``, ``data.options``) is one value."""
    changes = {}
    for key in sorted(set(old) | set(new)):
        a, b = old.get(key), new.get(key)
        if _is_section(key, a, b):
            changes.update(config_changes(a, b, f"{prefix}{key}."))
        elif a != b:
            changes[prefix + key] = (a, b)
    return changes


class _YamlLoader(yaml.SafeLoader):
    """SafeLoader that also reads exponents without a dot (``1e-4``) as floats, as YAML 1.2 does;
    YAML 1.1 (PyYAML) would make ``optim.lr=1e-4`` or ``loss.params={epsilon: 1e-3}`` a string."""


_YamlLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:[0-9][0-9_]*)(?:[eE][-+]?[0-9]+)$"),
    list("-+0123456789"),
)


def _yaml(text: str, where: str = "") -> Any:
    try:
        return yaml.load(text, Loader=_YamlLoader)  # noqa: S506 (a SafeLoader subclass)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        at = f" (line {mark.line + 1}, column {mark.column + 1})" if mark is not None else ""
        problem = getattr(err, "problem", None) or str(err).splitlines()[0]
        raise ConfigError(f"{where or 'config'}: invalid YAML{at}: {problem}") from None


def _read_yaml(path: Path, seen: tuple = ()) -> dict:
    if not path.is_file():
        raise ConfigError(f"config file not found: {path}")
    if path.resolve() in seen:
        raise ConfigError(f"config base cycle through {path}")
    data = _yaml(path.read_text(), str(path)) or {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: a config is a mapping of sections")
    base = data.pop("base", None)
    if base is not None:
        if not isinstance(base, str) or not base.strip():
            raise ConfigError(f"{path}: base must be the path of another config file, got {base!r}")
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
    if origin is list and args and dataclasses.is_dataclass(args[0]):
        items = value if isinstance(value, (list, tuple)) else [value]
        for i, item in enumerate(items):
            if not isinstance(item, (dict, args[0])):
                raise ConfigError(f"{where}[{i}]: expected a mapping, got {item!r}")
        return [
            item if isinstance(item, args[0]) else _build(args[0], item, f"{where}[{i}].")
            for i, item in enumerate(items)
        ]
    if annotation is list or origin is list:
        return list(value) if isinstance(value, (list, tuple)) else [value]
    if annotation is dict or origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: expected a mapping, got {value!r}")
        return dict(value)
    return value


# Keys that older versions wrote (checkpoints keep their config): dropped, or moved to their new place.
RETIRED_KEYS = {"train.log_every", "train.log_train_mse"}
MOVED_KEYS = {"train.label_noise": "data.label_noise"}


def _upgrade(data: dict) -> dict:
    """Move keys of older configs (``MOVED_KEYS``) to where they live now."""
    data = {k: dict(v) if isinstance(v, dict) else v for k, v in data.items()}
    for old, new in MOVED_KEYS.items():
        (s_old, k_old), (s_new, k_new) = old.split("."), new.split(".")
        section = data.get(s_old)
        if isinstance(section, dict) and k_old in section:
            value = section.pop(k_old)
            target = data.setdefault(s_new, {})
            if isinstance(target, dict):
                target.setdefault(k_new, value)
    return data


def _build(cls, data: dict, where: str):
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    for key in sorted(set(data) - names):
        if where + key in RETIRED_KEYS:
            log.debug("config key %s%s is no longer used; ignored", where, key)
            data = {k: v for k, v in data.items() if k != key}
    unknown = sorted(set(data) - names)
    if unknown:
        raise ConfigError(f"unknown config key(s) {', '.join(where + k for k in unknown)}; known: {sorted(names)}")
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


def parse_overrides(overrides: list[str]) -> list[tuple[list[str], Any]]:
    """``["a.b=1", "c.d=[1, 2]"]`` -> ``[(["a", "b"], 1), (["c", "d"], [1, 2])]``; values are parsed as YAML."""
    parsed = []
    for item in overrides:
        if "=" not in item:
            raise ConfigError(f"override {item!r} is not key=value")
        key, raw = item.split("=", 1)
        parts = key.strip().split(".")
        if not all(parts):
            raise ConfigError(f"override {item!r}: empty key")
        parsed.append((parts, _yaml(raw, f"override {key.strip()}") if raw.strip() else ""))
    return parsed


def apply_overrides(data: dict, overrides: list[str]) -> dict:
    """Set each dotted key in (a copy of) ``data``: ``loss.params.theta=0.3`` changes theta and keeps
    the other parameters; a mapping given as the value (``loss.params={theta: 0.3}``) replaces."""
    data = copy.deepcopy(data)
    for parts, value in parse_overrides(overrides):
        node = data
        for i, part in enumerate(parts[:-1]):
            child = node.get(part)
            if child is None:
                child = node[part] = {}
            if not isinstance(child, dict):
                raise ConfigError(f"override {'.'.join(parts)}: {'.'.join(parts[: i + 1])} is not a section")
            node = child
        node[parts[-1]] = value
    return data


# model.input_size: the stacked hourglass takes multiples of 4 * 2**depth (a stride-4 stem, then `depth`
# halvings): 64 at the usual depth 4, 32 at depth 3 (the model's spec checks the exact multiple); past 2048 px
# the heatmaps alone of one batch need tens of GB.
INPUT_SIZE_RANGE = (64, 2048)
INPUT_SIZE_MULTIPLE = 32
MAX_THREADS = 256  # train.threads
BALANCES = ("none", "sources")  # data.balance
SELECTIONS = ("main", "mean")  # train.select


def _check(condition: bool, key: str, message: str) -> None:
    if not condition:
        raise ConfigError(f"{key}: {message}")


def _finite_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def validate(cfg: Config) -> Config:
    """Value checks that need no other part of awing; each failure names its key and the valid values.

    The loss parameters, the model preset and the device are checked by the training engine
    (``awing.engine.train.check_config``), which knows the losses and models.

    Raises:
        ConfigError: one line, ``"<key>: must be ..., got <value>"``.
    """
    _validate_model(cfg.model, cfg.targets)
    _validate_data(cfg.data)
    _validate_augment(cfg.augment)
    _validate_optim(cfg.optim)
    _validate_train(cfg.train)
    e = cfg.eval
    _check(e.batch_size is None or e.batch_size > 0, "eval.batch_size", f"must be > 0, got {e.batch_size}")
    good = all(_finite_number(v) and v > 0 for v in e.thresholds)
    _check(good, "eval.thresholds", f"must be positive numbers, got {e.thresholds}")
    return cfg


def _validate_model(m: ModelConfig, t: TargetConfig) -> None:
    (lo, hi), step = INPUT_SIZE_RANGE, INPUT_SIZE_MULTIPLE
    size = m.input_size
    good = size is None or (lo <= size <= hi and size % step == 0)
    _check(good, "model.input_size", f"must be a multiple of {step} in [{lo}, {hi}], got {size}")
    _check(m.stacks is None or m.stacks > 0, "model.stacks", f"must be > 0, got {m.stacks}")
    _check(m.width is None or m.width > 0, "model.width", f"must be > 0, got {m.width}")
    _check(m.depth is None or m.depth > 0, "model.depth", f"must be > 0, got {m.depth}")
    _check(t.sigma > 0 and math.isfinite(t.sigma), "targets.sigma", f"must be > 0, got {t.sigma}")
    good = t.boundary_sigma > 0 and math.isfinite(t.boundary_sigma)
    _check(good, "targets.boundary_sigma", f"must be > 0, got {t.boundary_sigma}")
    _check(t.radius >= 0, "targets.radius", f"must be >= 0, got {t.radius}")


def _validate_data(d: DataConfig) -> None:
    _check(d.limit is None or d.limit >= 0, "data.limit", f"must be >= 0, got {d.limit}")
    _check(d.workers >= 0, "data.workers", f"must be >= 0, got {d.workers}")
    _check(d.crop in ("box", "landmarks"), "data.crop", f"must be box or landmarks, got {d.crop!r}")
    _check("schema" not in d.options, "data.options.schema", "the schema is data.schema (one key)")
    good = len(d.label_noise) == 2 and all(_finite_number(v) and 0 <= v <= 100 for v in d.label_noise)
    _check(good, "data.label_noise", f"must be [P, S] percentages in [0, 100], got {d.label_noise}")
    _check(all(isinstance(s, str) for s in d.test_splits), "data.test_splits", "must be a list of split names")
    for i, src in enumerate(d.sources):
        where = f"data.sources[{i}]"
        _check(bool(src.format) and bool(src.root), where, "needs a format and a root")
        _check(src.crop in ("box", "landmarks"), f"{where}.crop", f"must be box or landmarks, got {src.crop!r}")
        _check(src.limit is None or src.limit > 0, f"{where}.limit", f"must be > 0, got {src.limit}")
        good = _finite_number(src.enlarge) and src.enlarge > -1
        _check(good, f"{where}.enlarge", f"must be > -1, got {src.enlarge}")
        good = len(src.shift) == 2 and all(_finite_number(v) and -1 < v < 1 for v in src.shift)
        _check(good, f"{where}.shift", f"must be [dx, dy], fractions in (-1, 1), got {src.shift}")
    _check(d.balance in BALANCES, "data.balance", f"must be one of {', '.join(BALANCES)}, got {d.balance!r}")
    good = d.epoch_size is None or d.epoch_size > 0
    _check(good, "data.epoch_size", f"must be null or > 0 (faces per epoch), got {d.epoch_size}")


def _validate_augment(a: AugmentConfig) -> None:
    good = _finite_number(a.rotation) and 0 <= a.rotation <= 180
    _check(good, "augment.rotation", f"must be in [0, 180] (degrees), got {a.rotation}")
    good = _finite_number(a.translation) and a.translation >= 0
    _check(good, "augment.translation", f"must be >= 0 (pixels at 256 px input), got {a.translation}")
    good = _finite_number(a.scale) and 0 <= a.scale < 1
    _check(good, "augment.scale", f"must be a fraction in [0, 1), got {a.scale}")


def _validate_optim(o: OptimConfig) -> None:
    _check(o.epochs > 0, "optim.epochs", f"must be > 0, got {o.epochs}")
    _check(o.batch_size > 0, "optim.batch_size", f"must be > 0, got {o.batch_size}")
    _check(_finite_number(o.lr) and o.lr > 0, "optim.lr", f"must be a finite number > 0, got {o.lr}")
    _check(o.weight_decay >= 0, "optim.weight_decay", f"must be >= 0, got {o.weight_decay}")
    good = all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in o.milestones)
    _check(good, "optim.milestones", f"must be a list of positive epoch numbers, got {o.milestones}")
    _check(o.milestones == sorted(o.milestones), "optim.milestones", f"must be increasing, got {o.milestones}")


def _validate_train(tr: TrainConfig) -> None:
    _check(tr.val_every >= 1, "train.val_every", f"must be >= 1 (epochs), got {tr.val_every}")
    _check(0 <= tr.max_skipped <= 1, "train.max_skipped", f"must be a share in [0, 1], got {tr.max_skipped}")
    good = tr.threads is None or 1 <= tr.threads <= MAX_THREADS
    _check(good, "train.threads", f"must be in [1, {MAX_THREADS}], got {tr.threads}")
    good = tr.precision in ("auto", "fp32", "bf16", "fp16")
    _check(good, "train.precision", f"must be auto, fp32, bf16 or fp16, got {tr.precision!r}")
    _check(tr.select in SELECTIONS, "train.select", f"must be one of {', '.join(SELECTIONS)}, got {tr.select!r}")
    _check(tr.diagnose >= 0, "train.diagnose", f"must be >= 0 (validation faces; 0: off), got {tr.diagnose}")
    good = tr.name is None or _safe_name(tr.name)
    _check(good, "train.name", f"must be a folder name inside train.out_dir (no '..', '/' or '\\'), got {tr.name!r}")


def _safe_name(name: str) -> bool:
    return bool(name) and name not in (".", "..") and not any(c in name for c in "/\\\0") and ".." not in name


def load_config(path: str | Path | None = None, overrides: list[str] | None = None) -> Config:
    """Config from a YAML file (or the defaults) plus dotted ``key=value`` overrides, validated.

    Raises:
        ConfigError: a missing file, invalid YAML, an unknown key, a wrong type or an invalid value,
            naming the key.
    """
    data = _upgrade(_read_yaml(Path(path)) if path else {})
    data = apply_overrides(data, overrides or [])
    cfg = _build(Config, data, "")
    if path and cfg.train.name is None:
        cfg.train.name = Path(path).stem
    return validate(cfg)


def config_from_dict(data: dict) -> Config:
    """Rebuild a config saved with :meth:`Config.to_dict` (e.g. from a checkpoint)."""
    return _build(Config, _upgrade(data), "")


def save_config(cfg: Config, path: str | Path) -> None:
    Path(path).write_text(yaml.safe_dump(cfg.to_dict(), sort_keys=False))
