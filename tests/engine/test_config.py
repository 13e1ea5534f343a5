"""The typed config: YAML files with ``base:`` inheritance, dotted overrides, errors that name the key."""

from __future__ import annotations

from pathlib import Path

import pytest

import awing.engine.train as train_module
from awing.engine.config import (
    Config,
    ConfigError,
    OptimConfig,
    config_from_dict,
    load_config,
    parse_overrides,
    save_config,
)

CONFIGS = Path(__file__).resolve().parents[2] / "configs"


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


@pytest.fixture
def child(tmp_path) -> Path:
    write(
        tmp_path / "base" / "common.yaml",
        "model: {name: awing-2hg, width: 128, boundary: false}\n"
        "loss: {name: awing, params: {theta: 0.4, omega: 12}}\n"
        "optim: {lr: 2.0e-4, epochs: 100, milestones: [30, 60]}\n"
        "data: {format: wflw, root: /data/WFLW, options: {a: 1}}\n",
    )
    return write(
        tmp_path / "exp" / "child.yaml",
        "base: ../base/common.yaml\n"
        "model: {input_size: 128}\n"
        "optim: {epochs: 12}\n"
        "loss: {params: {theta: 0.6}}\n"
        "train: {seed: 3}\n",
    )


def test_yaml_base_inheritance_and_dotted_overrides_build_typed_dataclasses(child):
    cfg = load_config(child, ["optim.lr=1e-3", "optim.milestones=[5, 9]", "train.deterministic=true",
                              "data.limit=50", "eval.thresholds=[0.1]", "model.stacks=2"])  # fmt: skip
    assert isinstance(cfg, Config) and isinstance(cfg.optim, OptimConfig)
    # from the base file, kept where the child is silent
    assert (cfg.model.name, cfg.model.width, cfg.model.boundary) == ("awing-2hg", 128, False)
    assert cfg.data.root == "/data/WFLW"
    # the child overrides the base field by field
    assert cfg.model.input_size == 128 and cfg.optim.epochs == 12 and cfg.train.seed == 3
    # loss.params is replaced as a whole (it belongs to one loss), not merged key by key
    assert cfg.loss.params == {"theta": 0.6}
    # dotted overrides win over both files; values are typed
    assert cfg.optim.lr == 1e-3 and type(cfg.optim.lr) is float
    assert cfg.optim.milestones == [5, 9] and cfg.train.deterministic is True
    assert cfg.data.limit == 50 and cfg.model.stacks == 2 and cfg.eval.thresholds == [0.1]
    assert type(cfg.optim.epochs) is int and type(cfg.optim.momentum) is float
    # untouched sections keep their defaults; the run name defaults to the file's stem
    assert cfg.augment == Config().augment
    assert cfg.train.name == "child"


def test_exponents_without_a_dot_are_numbers():
    # PyYAML (YAML 1.1) reads "1e-4" as a string; a config must not reject optim.lr=1e-4
    cfg = load_config(None, ["optim.lr=1e-4", "optim.weight_decay=5E-6", "loss.params={epsilon: 1e-3}",
                             "optim.epochs=1e2", "eval.thresholds=[1e-1]"])  # fmt: skip
    assert cfg.optim.lr == 1e-4 and cfg.optim.weight_decay == 5e-6
    assert cfg.loss.params == {"epsilon": 1e-3} and isinstance(cfg.loss.params["epsilon"], float)
    assert cfg.optim.epochs == 100 and type(cfg.optim.epochs) is int
    assert cfg.eval.thresholds == [0.1]


@pytest.mark.parametrize(
    "overrides, named",
    [
        (["optim.epochz=3"], "optim.epochz"),
        (["optimizer.lr=0.1"], "optimizer"),
        (["model.width.x=1"], "model.width"),
        (["optim.epochs=abc"], "optim.epochs"),
        (["optim.epochs=2.5"], "optim.epochs"),
        (["optim.lr=fast"], "optim.lr"),
        (["train.deterministic=maybe"], "train.deterministic"),
        (["train.deterministic=1"], "train.deterministic"),
        (["model=3"], "model"),
        (["data.options=5"], "data.options"),
        (["model.input_size=null"], "model.input_size"),
        (["optim.epochs"], "optim.epochs"),  # not key=value
    ],
)
def test_bad_overrides_raise_config_error_naming_the_key(overrides, named):
    with pytest.raises(ConfigError, match=named.replace(".", r"\.")):
        load_config(None, overrides)


def test_unknown_keys_in_a_file_or_its_base_are_errors(tmp_path):
    bad = write(tmp_path / "bad.yaml", "optim: {epochs: 3, lr_decay: 0.1}\n")
    with pytest.raises(ConfigError, match=r"optim\.lr_decay"):
        load_config(bad)
    write(tmp_path / "base.yaml", "trainer: {seed: 1}\n")
    child = write(tmp_path / "child.yaml", "base: base.yaml\noptim: {epochs: 3}\n")
    with pytest.raises(ConfigError, match="trainer"):
        load_config(child)
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "missing.yaml")
    write(tmp_path / "a.yaml", "base: b.yaml\n")
    write(tmp_path / "b.yaml", "base: a.yaml\n")
    with pytest.raises(ConfigError, match="cycle"):
        load_config(tmp_path / "a.yaml")
    with pytest.raises(ConfigError, match="mapping"):
        load_config(write(tmp_path / "list.yaml", "- 1\n- 2\n"))


def test_save_and_reload_and_dict_round_trips_are_exact(child, tmp_path):
    cfg = load_config(child, ["optim.lr=3e-4", "data.options={schema: w300_68, n_train: 7}"])
    save_config(cfg, tmp_path / "saved.yaml")
    assert load_config(tmp_path / "saved.yaml") == cfg
    assert config_from_dict(cfg.to_dict()) == cfg


def test_retired_keys_in_an_older_checkpoint_config_are_dropped_but_other_unknown_keys_still_fail():
    saved = Config().to_dict()
    saved["train"].update(log_every=20, log_train_mse=True)  # what checkpoints from before 2026-11-28 hold
    assert config_from_dict(saved) == Config()
    saved["train"]["log_evry"] = 5
    with pytest.raises(ConfigError, match=r"train\.log_evry"):
        config_from_dict(saved)


def test_parse_overrides_nests_and_parses_values_as_yaml():
    assert parse_overrides(["a.b=1", "a.c=[1, 2]", "d=x=y", "e="]) == {"a": {"b": 1, "c": [1, 2]}, "d": "x=y", "e": ""}


def test_every_shipped_config_loads():
    files = sorted(CONFIGS.rglob("*.yaml"))
    assert len(files) >= 3
    for path in files:
        cfg = load_config(path)
        assert cfg.train.name == path.stem


class _Built(Exception):
    pass


def test_loss_params_travel_from_config_to_build_loss(make_config, monkeypatch):
    """theta (and the others) reach build_loss unchanged from the config, and nothing is added."""
    seen = {}

    def spy(name, **params):
        seen.update(name=name, params=params)
        raise _Built

    monkeypatch.setattr(train_module, "build_loss", spy)
    cfg = make_config("loss.name=awing", "loss.params={theta: 0.35, omega: 10, epsilon: 1e-1}")
    with pytest.raises(_Built):
        train_module.train(cfg)
    assert seen == {"name": "awing", "params": {"theta": 0.35, "omega": 10, "epsilon": 0.1}}


def test_an_unknown_loss_parameter_is_an_error_before_training(make_config):
    cfg = make_config("loss.name=wing", "loss.params={theta: 0.5}")  # theta belongs to AWing, not Wing
    with pytest.raises(ValueError, match="theta"):
        train_module.train(cfg)
    assert not (Path(cfg.train.out_dir) / cfg.train.name / "last.pt").exists()
