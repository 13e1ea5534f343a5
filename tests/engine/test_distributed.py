"""DistributedDataParallel on CPU: two gloo processes under torchrun train the tiny config.

Checks that the run completes, that only rank 0 writes (config, checkpoints, metrics, results), and that
the validation numbers are those of the whole val set, gathered from both ranks: the same as evaluating
best.pt afterwards in one process.
"""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import torch.distributed as dist

from awing.app.cli import main
from awing.core.checkpoint import load_checkpoint
from awing.core.config import save_config
from awing.engine.distributed import DistInfo, all_gather_objects, all_reduce_mean

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.skipif(not dist.is_available() or not dist.is_gloo_available(), reason="needs gloo")

# Runs `awing train` with the file-writing functions wrapped, so that each rank logs what it writes.
LAUNCHER = textwrap.dedent(
    """
    import os, sys
    from pathlib import Path

    import awing.engine.train as t

    log, argv, rank = Path(sys.argv[1]), sys.argv[2:], os.environ["RANK"]

    def note(text):
        with log.open("a") as f:
            f.write(f"{rank} {text}\\n")

    def record(what, fn):
        def wrapper(*args, **kwargs):
            note(what)
            return fn(*args, **kwargs)
        return wrapper

    setup = t.distributed.setup
    def setup_and_note(device):
        info, dev = setup(device)
        import torch.distributed as dist
        note(f"setup {info.rank}/{info.world_size} {dist.get_backend() if dist.is_initialized() else None}")
        return info, dev

    t.distributed.setup = setup_and_note
    for name in ("save_checkpoint", "save_config", "write_evaluation"):
        setattr(t, name, record(name, getattr(t, name)))
    t.MetricsLog.write = record("metrics", t.MetricsLog.write)
    t.MetricsLog.__init__ = record("metrics_open", t.MetricsLog.__init__)

    from awing.app.cli import main

    note(f"pid {os.getpid()}")
    try:
        code = main(argv)
    except SystemExit as stop:
        code = stop.code
    note(f"exit {code}")
    sys.exit(code)
    """
)


def test_helpers_are_identities_on_one_process():
    import torch

    info = DistInfo()
    assert info.is_main and not info.enabled
    assert all_gather_objects({"a": 1}, info) == [{"a": 1}]
    x = torch.tensor([1.0, 2.0])
    assert torch.equal(all_reduce_mean(x, info), x)


def two_process_launch(cfg, tmp_path: Path) -> tuple[list[str], dict, Path, Path, Path]:
    """``awing train`` of ``cfg`` under torchrun with 2 CPU processes, through LAUNCHER (which logs each
    rank's writes): returns the command, its environment, the saved config, the writes log and the run folder."""
    config = tmp_path / f"{cfg.train.name}.yaml"
    save_config(cfg, config)
    (tmp_path / "launch.py").write_text(LAUNCHER)
    log = tmp_path / "writes.log"
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
               str(tmp_path / "launch.py"), str(log), "train", str(config)]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    return command, env, config, log, Path(cfg.train.out_dir) / cfg.train.name


def test_ddp_on_two_cpu_processes_writes_once_and_validates_on_the_whole_val_set(
    make_config, synthetic_copy, tmp_path, capsys
):
    for i in (1, 4, 6):  # unreadable training images, met by both ranks: they are counted over all ranks
        (synthetic_copy / "images" / "train" / f"{i:05d}.jpg").write_bytes(b"not a JPEG")
    cfg = make_config("optim.epochs=2", "train.name=ddp", "train.max_skipped=0.5", root=synthetic_copy)
    command, env, config, log, run_dir = two_process_launch(cfg, tmp_path)
    start = time.perf_counter()
    proc = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=180)
    wall = time.perf_counter() - start
    with capsys.disabled():
        print(f"\n[DDP] 2-process CPU training (2 epochs) wall time: {wall:.1f} s")
    assert proc.returncode == 0, proc.stderr[-4000:]

    # both ranks joined one gloo group; everything written was written by rank 0
    entries = [line.split(" ", 1) for line in log.read_text().splitlines()]
    setups = sorted(text for _, text in entries if text.startswith("setup"))
    assert setups == ["setup 0/2 gloo", "setup 1/2 gloo"]
    assert sorted(text for _, text in entries if text.startswith("exit")) == ["exit 0", "exit 0"]
    writes = [(rank, text) for rank, text in entries if text.split()[0] not in ("setup", "pid", "exit")]
    assert {rank for rank, _ in writes} == {"0"}, writes
    kinds = [text for _, text in writes]
    assert kinds.count("metrics") == 2 and kinds.count("write_evaluation") == 1 and kinds.count("save_config") == 1
    with (run_dir / "metrics.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert [r["epoch"] for r in rows] == ["1", "2"]
    assert [r["skipped_images"] for r in rows] == ["3", "3"]

    # each rank trains on its half: 4 faces, one batch of 4 per epoch
    last = load_checkpoint(run_dir / "last.pt")
    assert (last["epoch"], last["step"]) == (2, 2)
    assert not any(k.startswith("module.") for k in last["model"])  # the bare model's weights, not DDP's

    # validation covers all 5 val faces (3 on rank 0, 2 on rank 1), and equals a one-process evaluation
    ddp = json.loads((run_dir / "results.json").read_text())["testsets"]["val"]
    assert ddp["num_images"] == 5
    best = load_checkpoint(run_dir / "best.pt")
    assert min(float(r["val_nme"]) for r in rows) == pytest.approx(best["metrics"]["val_nme"], abs=1e-12)
    assert ddp["nme"] == pytest.approx(best["metrics"]["val_nme"], abs=1e-9)
    out = tmp_path / "single"
    assert main(["eval", str(run_dir / "best.pt"), str_spec(cfg), "--out", str(out), "--device", "cpu"]) == 0
    single = json.loads((out / "results.json").read_text())["testsets"]["val"]
    assert single["num_images"] == 5
    assert single["nme"] == pytest.approx(ddp["nme"], abs=1e-6)
    assert single["per_image_nme"] == pytest.approx(ddp["per_image_nme"], abs=1e-6)


def test_a_signal_to_one_rank_stops_all_ranks_at_the_same_step(make_config, tmp_path, capsys):
    """SIGTERM to rank 1 only: both ranks leave the loop after the same step (no collective hangs), rank 0
    keep the end-of-epoch last.pt, both exit with 143 (128 + SIGTERM), and a one-process resume finishes the run."""
    cfg = make_config("optim.epochs=1000", "train.val_every=1000", "train.name=stop")
    command, env, config, log, run_dir = two_process_launch(cfg, tmp_path)
    start = time.perf_counter()
    proc = subprocess.Popen(command, cwd=tmp_path, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            text=True, start_new_session=True)
    try:
        deadline = time.time() + 90
        while not (run_dir / "metrics.csv").exists():  # epoch 1 done: both ranks are in the loop
            assert proc.poll() is None, proc.communicate()[1][-4000:]
            assert time.time() < deadline, "no epoch finished within 90 s"
            time.sleep(0.05)
        pids = dict(line.split(" pid ") for line in log.read_text().splitlines() if " pid " in line)
        os.kill(int(pids["1"]), signal.SIGTERM)
        try:
            _, err = proc.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            pytest.fail("the ranks did not stop together: a collective operation hangs")
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    with capsys.disabled():
        print(f"\n[DDP] 2-process CPU run stopped by SIGTERM to rank 1: wall time {time.perf_counter() - start:.1f} s")
    exits = sorted(text for _, text in (line.split(" ", 1) for line in log.read_text().splitlines()) if "exit" in text)
    assert exits == ["exit 143", "exit 143"], err[-4000:]
    ckpt = load_checkpoint(run_dir / "last.pt")
    with (run_dir / "metrics.csv").open() as f:
        done = len(list(csv.DictReader(f)))
    assert 1 <= ckpt["epoch"] <= done < 1000

    assert main(["train", str(config), f"optim.epochs={done + 1}", "train.val_every=1", "--resume"]) == 0
    assert load_checkpoint(run_dir / "last.pt")["epoch"] == done + 1
    assert json.loads((run_dir / "results.json").read_text())["testsets"]["val"]["num_images"] == 5


def str_spec(cfg) -> str:
    return f"{cfg.data.format}:{cfg.data.root}:{cfg.data.val_split}"
