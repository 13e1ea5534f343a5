"""The ``awing`` entry point: version, help, and the two listing commands."""

from __future__ import annotations

import importlib.metadata

import pytest

import awing
from awing.app.cli import COMMANDS, main
from awing.app.models import shipped_models
from awing.data.readers import READERS
from awing.pretrained import list_pretrained


def test_version_is_the_package_version_everywhere(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["--version"])
    assert exit_info.value.code == 0
    assert capsys.readouterr().out.strip() == f"awing {awing.__version__}"
    assert importlib.metadata.version("awing") == awing.__version__  # pyproject reads awing.__version__


def test_no_command_prints_the_commands_and_exits_2(capsys):
    assert main([]) == 2
    out = capsys.readouterr().out
    assert all(name in out for name in COMMANDS)


def test_datasets_lists_every_registered_reader(capsys):
    assert main(["datasets"]) == 0
    listed = {line.split()[0] for line in capsys.readouterr().out.splitlines()[1:]}
    assert listed == set(READERS) and {"wflw", "w300", "cofw", "aflw", "lsp", "fdd", "mtfl", "custom"} <= listed


def test_models_lists_the_shipped_models_and_marks_the_default(capsys):
    assert main(["models"]) == 0
    out = capsys.readouterr().out
    names = [m["name"] for m in list_pretrained()]
    assert names and all(name in out for name in names)
    assert out.count("(default)") == 1
    flips = {m["name"] for m in shipped_models() if m["flip_test"]}
    assert all(("flip test" in line) == (line.split()[0] in flips) for line in out.splitlines()[1:])
