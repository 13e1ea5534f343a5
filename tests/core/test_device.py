"""CPU threads and devices: the choices training, evaluation and the API share."""

import pytest
import torch

from awing.core.device import default_threads, resolve_device, set_threads


def test_threads_follow_the_setting_then_omp_num_threads(monkeypatch):
    before = torch.get_num_threads()
    try:
        assert set_threads(1) == 1 and torch.get_num_threads() == 1
        monkeypatch.setenv("OMP_NUM_THREADS", "2")
        assert default_threads() == 2 and set_threads(None) == 2 and torch.get_num_threads() == 2
        monkeypatch.delenv("OMP_NUM_THREADS")
        assert default_threads() >= 1
        with pytest.raises(ValueError, match="threads"):
            set_threads(-1)
    finally:
        torch.set_num_threads(before)


def test_a_training_run_uses_train_threads(make_config, caplog):
    from awing.engine.train import train

    caplog.set_level("INFO", logger="awing.train")
    before = torch.get_num_threads()
    try:
        train(make_config("train.threads=1"))
        assert "1 thread(s)" in caplog.text and torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)


def test_devices_are_checked():
    assert resolve_device("cpu") == torch.device("cpu")
    with pytest.raises(ValueError, match="unknown device"):
        resolve_device("gpu7")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="CUDA is not available"):
            resolve_device("cuda")
