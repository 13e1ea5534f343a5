"""``model.output_init`` (issue 26): mmpose's small output-layer initialisation, and its check."""

from __future__ import annotations

import pytest
import torch

from awing.core.config import Config, ConfigError
from awing.engine.train import build_model, check_config


def config(**model) -> Config:
    cfg = Config()
    cfg.model.name, cfg.model.stacks = "awing-1hg-tiny", 2
    for key, value in model.items():
        setattr(cfg.model, key, value)
    return cfg


def test_small_output_init_gives_flat_first_heatmaps_and_leaves_the_rest_alone():
    torch.manual_seed(0)
    default = build_model(config(), 5)
    torch.manual_seed(0)
    small = build_model(config(output_init="small"), 5)
    for layer in small.outputs:  # every stack's output layer
        assert float(layer.weight.detach().std()) == pytest.approx(1e-3, rel=0.2) and not layer.bias.any()
    assert all(float(layer.weight.detach().std()) > 1e-2 for layer in default.outputs)
    inner = [n for n, _ in small.named_parameters() if not n.startswith("outputs.")]
    d, s = dict(default.named_parameters()), dict(small.named_parameters())
    assert all(torch.equal(d[n], s[n]) for n in inner)  # the same seed: only the output layers differ
    with torch.no_grad():
        heatmaps = small.eval()(torch.rand(1, 3, small.spec.input_size, small.spec.input_size))[-1]
    assert float(heatmaps.abs().max()) < 0.05


def test_an_unknown_output_init_is_refused_by_name():
    with pytest.raises(ConfigError, match="model.output_init"):
        check_config(config(output_init="xavier"))
