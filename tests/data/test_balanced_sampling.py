"""Balanced sampling of mixed-source training (``data.balance``, ``data.epoch_size``): each epoch draws the
same number of faces from every source, the run's own split counting as one, also split over ranks."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest
from conftest import synthetic_68_source
from torch.utils.data import DistributedSampler

from awing.core.config import ConfigError, load_config
from awing.data.build import build_training_set, load_training_splits, training_sampler
from awing.data.dataset import BalancedSampler


def part_of(index: int, sizes: list[int]) -> int:
    return int(np.searchsorted(np.cumsum(sizes), index, side="right"))


def test_each_source_gives_the_same_number_of_faces_each_epoch():
    sizes = [1000, 30, 7]  # a large own split, a small and a tiny source
    sampler = BalancedSampler(sizes, epoch_size=300, balanced=True, seed=3)
    for epoch in range(4):
        sampler.set_epoch(epoch)
        indices = list(sampler)
        assert len(indices) == len(sampler) == 300
        counts = Counter(part_of(i, sizes) for i in indices)
        assert counts == {0: 100, 1: 100, 2: 100}
        tiny = Counter(i for i in indices if part_of(i, sizes) == 2)
        assert set(tiny) == set(range(1030, 1037)) and max(tiny.values()) - min(tiny.values()) <= 1  # 14 or 15 each
        assert len(set(i for i in indices if part_of(i, sizes) == 0)) == 100  # a large part: distinct faces
    sampler.set_epoch(0)
    first = list(sampler)
    sampler.set_epoch(1)
    assert list(sampler) != first  # a new draw each epoch...
    sampler.set_epoch(0)
    assert list(sampler) == first  # ...decided by (seed, epoch) alone: a resume repeats it


def test_an_uneven_epoch_gives_every_source_its_share_in_expectation():
    sizes = [50, 10, 10]
    sampler = BalancedSampler(sizes, epoch_size=100, balanced=True, seed=0)  # 100 = 3 x 33 + 1
    totals = Counter()
    for epoch in range(300):
        sampler.set_epoch(epoch)
        counts = Counter(part_of(i, sizes) for i in sampler)
        assert sorted(counts.values()) == [33, 33, 34]
        totals.update(counts)
    assert all(abs(totals[k] / 300 - 100 / 3) < 0.2 for k in range(3))


def test_without_balance_the_draws_follow_the_source_sizes():
    sizes = [60, 30, 10]
    sampler = BalancedSampler(sizes, epoch_size=200, balanced=False, seed=1)
    counts = Counter(part_of(i, sizes) for i in sampler)
    assert counts == {0: 120, 1: 60, 2: 20}


def test_ranks_split_one_epoch_as_distributed_sampler_does():
    sizes = [40, 5]
    ranks = [BalancedSampler(sizes, epoch_size=31, balanced=True, num_replicas=2, rank=r, seed=7) for r in (0, 1)]
    shares = [list(s) for s in ranks]
    assert [len(s) for s in shares] == [16, 16]  # 31 padded to 32, as DistributedSampler pads
    whole = ranks[0].epoch_indices().tolist()
    assert sorted(shares[0] + shares[1]) == sorted(whole + whole[:1])
    dropped = [BalancedSampler(sizes, 31, True, 2, r, seed=7, drop_last=True) for r in (0, 1)]
    assert [len(list(s)) for s in dropped] == [15, 15]
    with pytest.raises(ValueError, match="rank 2"):
        BalancedSampler(sizes, 10, num_replicas=2, rank=2)
    with pytest.raises(ValueError, match="at least one face"):
        BalancedSampler([3, 0], 10)


def test_the_config_chooses_the_sampler_and_checks_its_keys(make_config, tmp_path):
    source = synthetic_68_source(tmp_path / "s68", n_train=3, n_val=2)
    plain = make_config(f"data.sources=[{source}]")
    schema, train, _ = load_training_splits(plain)
    train_set = build_training_set(plain, train, schema, 64)
    assert isinstance(training_sampler(plain, train_set, 1, 0), DistributedSampler)  # as before
    cfg = make_config(f"data.sources=[{source}]", "data.balance=sources", "data.epoch_size=40")
    sampler = training_sampler(cfg, train_set, 1, 0)
    assert isinstance(sampler, BalancedSampler) and len(sampler) == 40 and sampler.sizes == [8, 3]
    assert Counter(part_of(i, [8, 3]) for i in sampler) == {0: 20, 1: 20}
    default = training_sampler(make_config(f"data.sources=[{source}]", "data.balance=sources"), train_set, 1, 0)
    assert len(default) == len(train_set) == 11  # the epoch size defaults to the number of training faces
    with pytest.raises(ConfigError, match="data.balance"):
        load_config(None, ["data.balance=people"])
    with pytest.raises(ConfigError, match="data.epoch_size"):
        load_config(None, ["data.epoch_size=0"])
