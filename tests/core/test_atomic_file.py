"""``awing.core.checkpoint.atomic_file``: the one atomic write every result file and checkpoint goes through."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest

from awing.core.checkpoint import atomic_file


def test_the_new_file_replaces_the_old_one_only_when_the_block_succeeds(tmp_path):
    target = tmp_path / "sub" / "out.txt"
    with atomic_file(target) as tmp:
        assert Path(tmp).parent == target.parent and not target.exists()  # folders made, target untouched
        Path(tmp).write_text("first")
    assert target.read_text() == "first"
    with pytest.raises(RuntimeError, match="boom"):
        with atomic_file(target) as tmp:
            Path(tmp).write_text("half")
            raise RuntimeError("boom")
    assert target.read_text() == "first"
    assert [p.name for p in target.parent.iterdir()] == ["out.txt"]  # the temporary file is gone


def test_suffix_and_permissions(tmp_path):
    with atomic_file(tmp_path / "v.mp4", suffix=".mp4") as tmp:
        assert tmp.endswith(".mp4")
        Path(tmp).write_bytes(b"x")
    mask = os.umask(0)
    os.umask(mask)
    assert (tmp_path / "v.mp4").stat().st_mode & 0o777 == 0o666 & ~mask  # not mkstemp's 0600


def test_a_full_disk_is_named(tmp_path):
    target = tmp_path / "out.json"
    with pytest.raises(OSError, match="no space left") as info:
        with atomic_file(target):
            raise OSError(errno.ENOSPC, "No space left on device")
    assert info.value.errno == errno.ENOSPC and "nothing was written" in str(info.value)
    assert list(tmp_path.iterdir()) == []
