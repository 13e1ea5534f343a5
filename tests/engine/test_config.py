"""The typed config: YAML files with ``base:`` inheritance, dotted overrides, errors that name the key."""

from __future__ import annotations

from pathlib import Path

import pytest

import awing.engine.train as train_module
from awing.core.config import (
    OPAQUE_KEYS,
    Config,
    ConfigError,
    OptimConfig,
    config_changes,
    config_from_dict,
    load_config,
    parse_overrides,
    save_config,
)

CONFIGS = Path(__file__).resolve().parents[2] / "configs"
FDD_CONFIG = CONFIGS / "cpu" / "fdd14.yaml"


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
                              "data.limit=50", "eval.thresholds=[0.1]", "model.stacks=2"])
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
                             "optim.epochs=1e2", "eval.thresholds=[1e-1]"])
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
        (["model.input_size=0"], "model.input_size"),
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
    cfg = load_config(child, ["optim.lr=3e-4", "data.schema=w300_68", "data.options={n_train: 7}"])
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


def test_parse_overrides_splits_keys_and_parses_values_as_yaml():
    assert parse_overrides(["a.b=1", "a.c=[1, 2]", "d=x=y", "e="]) == [
        (["a", "b"], 1), (["a", "c"], [1, 2]), (["d"], "x=y"), (["e"], "")
    ]


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

    cfg = make_config("loss.name=awing", "loss.params={theta: 0.35, omega: 10, epsilon: 1e-1}")
    monkeypatch.setattr(train_module, "build_loss", spy)
    monkeypatch.setattr(train_module, "check_config", lambda cfg: cfg)
    with pytest.raises(_Built):
        train_module.train(cfg)
    assert seen == {"name": "awing", "params": {"theta": 0.35, "omega": 10, "epsilon": 0.1}}


def test_an_unknown_loss_parameter_is_an_error_when_the_config_loads(make_config, monkeypatch):
    """``loss.params.thetaa`` fails in load_training_config, before any data is read or model built."""
    cfg = make_config("loss.name=wing", "loss.params={theta: 0.5}")  # theta belongs to AWing, not Wing
    with pytest.raises(ConfigError, match="theta"):
        train_module.train(cfg)
    assert not (Path(cfg.train.out_dir) / cfg.train.name).exists()
    read = []
    monkeypatch.setattr(train_module, "load_training_splits", lambda cfg: read.append(cfg))
    with pytest.raises(ConfigError, match=r"loss\.params.*thetaa"):
        train_module.load_training_config(FDD_CONFIG, ["loss.params.thetaa=0.3"])
    assert read == []


def test_a_dotted_loss_parameter_override_keeps_the_files_other_parameters(tmp_path):
    path = write(tmp_path / "p.yaml", "loss: {name: awing, params: {omega: 10, epsilon: 2}}\n")
    assert load_config(path, ["loss.params.theta=0.3"]).loss.params == {"omega": 10, "epsilon": 2, "theta": 0.3}
    assert load_config(path, ["loss.params={theta: 0.3}"]).loss.params == {"theta": 0.3}  # a mapping replaces
    assert load_config(path, ["data.options.n_train=5"]).data.options == {"n_train": 5}


def test_a_model_preset_trains_at_its_own_input_size_unless_one_is_given():
    from awing.engine.train import build_model

    cfg = load_config(None, ["model.name=awing-1hg-small"])
    assert cfg.model.input_size is None and build_model(cfg, 14).spec.input_size == 128
    given = load_config(None, ["model.name=awing-1hg-small", "model.input_size=64"])
    assert build_model(given, 14).spec.input_size == 64
    assert build_model(load_config(None, ["model.name=awing-1hg"]), 14).spec.input_size == 256


def test_label_noise_is_a_data_setting_and_older_configs_move_it_there():
    assert load_config(None, ["data.label_noise=[10, 20]"]).data.label_noise == [10, 20]
    saved = Config().to_dict()
    del saved["data"]["label_noise"]
    saved["train"]["label_noise"] = [5.0, 5.0]  # where checkpoints from before 2026-12-01 kept it
    assert config_from_dict(saved).data.label_noise == [5.0, 5.0]
    with pytest.raises(ConfigError, match="train.label_noise"):
        load_config(None, ["train.label_noise=[1, 1]"])


@pytest.mark.parametrize(
    "overrides, named",
    [(["train.val_every=0"], "train.val_every"), (["model.input_size=-4"], "model.input_size"),
     (["optim.epochs=0"], "optim.epochs"), (["data.limit=-1"], "data.limit"),
     (["optim.milestones=[a, b]"], "optim.milestones"), (["optim.milestones=[8, 4]"], "optim.milestones"),
     (["targets.sigma=0"], "targets.sigma"), (["targets.boundary_sigma=-1"], "targets.boundary_sigma"),
     (["optim.lr=.inf"], "optim.lr"), (["optim.lr=0"], "optim.lr"), (["eval.batch_size=0"], "eval.batch_size"),
     (["train.name=../../x"], "train.name"), (["train.name=a/b"], "train.name"), (["train.threads=0"], "train.threads"),
     (["data.options={schema: wflw98}"], "data.options.schema"), (["data.label_noise=[120, 0]"], "data.label_noise"),
     (["train.precision=fp8"], "train.precision"), (["data.crop=detector"], "data.crop")],
)
def test_invalid_values_are_one_error_naming_the_key_when_the_config_loads(overrides, named):
    with pytest.raises(ConfigError, match=named.replace(".", r"\.")):
        load_config(None, overrides)


@pytest.mark.parametrize(
    "overrides, named",
    [(["loss.params={epsilon: 0}"], "epsilon"), (["loss.params={theta: 0}"], "theta"),
     (["loss.params={theta: -0.5}"], "theta"), (["loss.params={omega: 0}"], "omega"),
     (["loss.params={omega: abc}"], "omega"), (["loss.name=wing", "loss.params={epsilon: 0}"], "epsilon"),
     (["loss.name=hinge"], "hinge"), (["model.name=awing-9hg"], "awing-9hg"), (["optim.name=lion"], "optim.name"),
     (["loss.weight_map=focal"], "loss.weight_map")],
)
def test_values_that_make_the_loss_or_model_undefined_fail_before_any_work(overrides, named):
    with pytest.raises(ConfigError, match=named):
        train_module.load_training_config(None, overrides)


@pytest.mark.skipif(__import__("torch").cuda.is_available(), reason="this machine has CUDA")
def test_cuda_without_cuda_is_a_config_error():
    with pytest.raises(ConfigError, match="train.device"):
        train_module.load_training_config(None, ["train.device=cuda"])


def test_yaml_syntax_errors_and_bad_bases_name_the_file(tmp_path):
    broken = write(tmp_path / "broken.yaml", "optim: {epochs: 3\nloss: x\n")
    with pytest.raises(ConfigError, match=r"broken\.yaml.*invalid YAML.*line"):
        load_config(broken)
    with pytest.raises(ConfigError, match="base must be the path"):
        load_config(write(tmp_path / "b.yaml", "base: [a, b]\n"))
    with pytest.raises(ConfigError, match=r"override optim\.lr.*invalid YAML"):
        load_config(None, ["optim.lr=[1, 2"])


def test_the_ends_of_each_checked_range_are_accepted():
    ends = ["augment.rotation=180", "augment.scale=0.99", "augment.translation=0", "model.input_size=2048"]
    cfg = load_config(None, [*ends, "train.threads=256"])
    assert (cfg.augment.rotation, cfg.augment.scale, cfg.model.input_size, cfg.train.threads) == (180, 0.99, 2048, 256)
    cfg = load_config(None, ["augment.rotation=0", "augment.scale=0", "model.input_size=64", "train.threads=1"])
    assert (cfg.augment.rotation, cfg.augment.scale, cfg.model.input_size, cfg.train.threads) == (0, 0, 64, 1)


def test_opaque_mappings_are_declared_once_and_compared_and_merged_as_one_value(child):
    """``loss.params`` and the readers' ``options`` belong to the code they configure: a file's mapping
    replaces its base's (see the child fixture), and a config comparison names the mapping, not its keys."""
    assert OPAQUE_KEYS == {"params", "options"}
    old = Config().to_dict()
    new = load_config(None, ["loss.params={theta: 0.3}", "data.options={n_train: 5}", "optim.lr=1e-3"]).to_dict()
    assert config_changes(old, new) == {
        "data.options": ({}, {"n_train": 5}),
        "loss.params": ({}, {"theta": 0.3}),
        "optim.lr": (1e-4, 1e-3),
    }
    assert load_config(child).data.options == {"a": 1} and load_config(child).loss.params == {"theta": 0.6}
