"""Shared fixtures: a tiny synthetic face set (generated once per session) and tiny training configs.

The test processes use one intra-op thread (``AWING_TEST_THREADS`` to change it; subprocesses inherit
``OMP_NUM_THREADS``): the tiny models here gain nothing from more, and on a machine whose cores are busy
OpenMP's spinning threads slow a training step down a hundredfold.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from awing.core.config import Config, load_config
from awing.data import synthetic

THREADS = int(os.environ.get("AWING_TEST_THREADS", "1"))
os.environ.setdefault("OMP_NUM_THREADS", str(THREADS))
torch.set_num_threads(THREADS)

# 98-point synthetic faces; small images and few of them, so a training epoch takes a fraction of a second.
# 5 val faces: an odd count, so two DDP ranks get uneven shares.
TINY_SET = dict(schema="wflw98", n_train=8, n_val=5, n_test=4, size=96)


def tiny_overrides(root: Path | str, out_dir: Path | str, *extra: str) -> list[str]:
    """Dotted overrides for a CPU run of a second or two on the tiny synthetic set under ``root``."""
    options = ", ".join(f"{k}: {v}" for k, v in TINY_SET.items() if k != "schema")
    return [
        "model.name=awing-1hg-tiny",
        "model.width=32",
        "model.input_size=64",  # the smallest the 4-level hourglass takes (a multiple of 4 * 2^4)
        "targets.sigma=1.0",
        "targets.radius=2",
        "data.format=synthetic",
        f"data.root={root}",
        f"data.schema={TINY_SET['schema']}",
        f"data.options={{{options}, progress: false}}",
        "data.test_splits=[test]",
        "data.workers=0",
        "data.enlarge=0.1",
        "augment.rotation=20",
        "augment.translation=6",
        "optim.lr=5e-4",
        "optim.batch_size=4",
        "optim.epochs=1",
        "optim.milestones=[1]",
        "train.precision=fp32",
        "train.channels_last=false",
        "train.deterministic=true",
        "train.device=cpu",
        "train.tensorboard=false",
        f"train.out_dir={out_dir}",
        "train.name=tiny",
        *extra,
    ]


def synthetic_source(root: Path, options: dict, **extra) -> str:
    """A ``data.sources`` entry (YAML flow) for the synthetic faces at ``root`` made with ``options``
    (``synthetic.generate``'s: schema, n_train, ...), cropped by landmarks, with ``extra`` source keys."""
    flow = ", ".join(f"{k}: {v}" for k, v in options.items())
    more = "".join(f", {k}: {v}" for k, v in extra.items())
    return f"{{format: synthetic, root: {root}, options: {{{flow}, progress: false}}, crop: landmarks{more}}}"


def synthetic_68_source(folder: Path, n_train: int, n_val: int, **extra) -> str:
    """Generate a tiny 68-point synthetic set in ``folder`` (a second source, in another layout than the tiny
    run's 98 points) and return its :func:`synthetic_source` entry."""
    options = dict(schema="w300_68", n_train=n_train, n_val=n_val, n_test=1, size=96)
    return synthetic_source(synthetic.generate(folder, progress=False, **options), options, **extra)


def tiny_config(root: Path | str, out_dir: Path | str, *extra: str) -> Config:
    return load_config(None, tiny_overrides(root, out_dir, *extra))


@pytest.fixture(scope="session")
def synthetic_root(tmp_path_factory) -> Path:
    """The tiny synthetic set (8 train / 5 val / 4 test faces at 96x96). Read-only: copy it to damage it."""
    return synthetic.generate(tmp_path_factory.mktemp("synthetic_tiny"), progress=False, **TINY_SET)


@pytest.fixture
def synthetic_copy(synthetic_root, tmp_path) -> Path:
    """A private copy of the tiny set that a test may modify."""
    return Path(shutil.copytree(synthetic_root, tmp_path / "synthetic_copy"))


@pytest.fixture
def make_config(synthetic_root, tmp_path):
    """``make_config(*overrides, root=None)``: a Config for a tiny run writing under ``tmp_path/runs``."""

    def make(*extra: str, root: Path | None = None) -> Config:
        return tiny_config(root or synthetic_root, tmp_path / "runs", *extra)

    return make


@pytest.fixture(scope="session")
def trained_run(synthetic_root, tmp_path_factory) -> Path:
    """A finished 2-epoch tiny run (read-only for tests: write evaluations elsewhere with ``--out``)."""
    from awing.engine.train import train

    cfg = tiny_config(synthetic_root, tmp_path_factory.mktemp("trained"), "optim.epochs=2")
    train(cfg)
    return Path(cfg.train.out_dir) / cfg.train.name


@pytest.fixture(scope="session")
def tiny_fdd_checkpoint(tmp_path_factory) -> Path:
    """A randomly initialised 14-point (FDD) one-stack model file, width 32, 128 px input."""
    from awing.core.checkpoint import save_checkpoint
    from awing.method.model import create_model, model_payload
    from awing.schemas import load_schema

    torch.manual_seed(0)
    model = create_model("awing-1hg-tiny", 14, width=32)
    return save_checkpoint(tmp_path_factory.mktemp("model") / "tiny.pt", model_payload(model, load_schema("fdd14")))


@pytest.fixture
def damaged_jpegs(tmp_path) -> tuple[Path, Path, Path]:
    """(good, cut, corrupt): one 320x240 JPEG written whole, cut in half, and with 300 bytes of its
    entropy-coded data scrambled (libjpeg warns about both damaged ones; OpenCV decodes them silently)."""
    import cv2

    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:240, 0:320]
    image = np.stack([xx % 256, yy % 256, (xx + yy) % 256], axis=2).astype(np.uint8)
    image = cv2.GaussianBlur(image, (0, 0), 3) + rng.integers(0, 20, image.shape, dtype=np.uint8)
    ok, encoded = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 90])
    assert ok
    data = encoded.tobytes()
    good, cut, corrupt = (tmp_path / name for name in ("good.jpg", "cut.jpg", "corrupt.jpg"))
    good.write_bytes(data)
    cut.write_bytes(data[: len(data) // 2])
    scrambled = bytearray(data)
    start = len(data) // 3
    scrambled[start : start + 300] = bytes((b * 7 + 13) % 256 for b in scrambled[start : start + 300])
    corrupt.write_bytes(bytes(scrambled))
    return good, cut, corrupt
