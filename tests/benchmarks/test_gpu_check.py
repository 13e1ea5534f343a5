"""benchmarks/gpu_check.py: the dry run (the GPU check's code on the CPU, torchrun part included), the
no-GPU exit, and the figures it derives."""

from __future__ import annotations

import math

import pytest
import torch
from conftest import TINY_SET

from benchmarks.gpu_check import Result, main


def synthetic_overrides(root) -> list[str]:
    """The paper's 300-W recipe on the tiny synthetic set instead of 300-W."""
    options = ", ".join(f"{k}: {v}" for k, v in TINY_SET.items() if k != "schema")
    return [
        "data.format=synthetic",
        f"data.root={root}",
        f"data.schema={TINY_SET['schema']}",
        f"data.options={{{options}, progress: false}}",
        "data.train_split=train",
    ]


def test_dry_run_trains_in_one_process_and_under_torchrun(synthetic_root, capfd):
    assert main(["--dry-run", *synthetic_overrides(synthetic_root)]) == 0
    out = capfd.readouterr().out
    assert "model: awing-4hg 2 stacks, width 32, 64 px -> 16x16, boundary True, CoordConv True, CB True" in out
    assert "loss awing + weight map paper; rmsprop lr 0.0001; bf16 autocast + channels_last" in out
    assert "one process: 1 x CPU" in out
    assert "torchrun --nproc_per_node=2: 2 x CPU" in out  # rank 0's report, read back by the launcher
    assert out.count("  images/s ") == 2 and out.count("loss            first 1 step ") == 2
    assert "scaling" in out


def test_dry_run_with_one_rank_skips_the_multi_process_part(synthetic_root, capsys):
    assert main(["--dry-run", "--ranks", "1", "--steps", "3", *synthetic_overrides(synthetic_root)]) == 0
    out = capsys.readouterr().out
    assert "multi-GPU: skipped, 1 rank visible" in out
    assert "torchrun" not in out


def test_without_a_gpu_it_says_so_in_one_line_and_exits_2(monkeypatch, capsys):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert main([]) == 2
    out = capsys.readouterr().out.strip().splitlines()
    assert len(out) == 1 and out[0].startswith("gpu_check: no CUDA GPU visible") and "--dry-run" in out[0]


def result(losses, **kw) -> Result:
    fields = dict(
        device="cpu",
        world_size=2,
        steps=len(losses),
        batch=4,
        timed_steps=len(losses) - 1,
        seconds=2.0,
        data_seconds=0.5,
        peak_bytes=None,
        rss_bytes=1,
        losses=losses,
    )
    return Result(**{**fields, **kw})


def test_result_figures():
    falling = result([float(30 - i) for i in range(30)])
    assert falling.loss_change() == (pytest.approx(25.5), pytest.approx(5.5))  # first / last 10 steps
    assert falling.loss_fell()
    assert falling.images_per_s == pytest.approx(29 * 4 * 2 / 2.0)  # every rank's images
    assert falling.step_images_per_s == pytest.approx(29 * 4 * 2 / 1.5)
    assert result([3.0, 2.0, 1.0]).loss_change() == (3.0, 1.0)  # short runs: halves
    assert not result([1.0, 2.0]).loss_fell()
    assert not result([5.0, math.nan, 1.0, 1.0]).loss_fell()
