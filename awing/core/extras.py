"""Optional dependencies (``pip install "awing[EXTRA]"``): one clear error when one is missing."""

from __future__ import annotations

import importlib
from types import ModuleType

__all__ = ["MissingExtra", "require"]


class MissingExtra(ImportError):
    """An optional dependency is not installed; the message names the extra (or package) to install.

    ``awing``'s command line prints it as one line and exits with status 2.
    """


def require(module: str, extra: str, what: str) -> ModuleType:
    """Import ``module``, or raise :class:`MissingExtra`: ``"{what} needs {module}: pip install ..."``.

    Args:
        module: the module to import (e.g. ``"onnxruntime"``).
        extra: the awing extra that installs it (e.g. ``"onnx"``), or ``"pip:NAME"`` for a package that
            no extra installs (see :func:`install_hint`).
        what: what needs it, for the message (e.g. ``"--backend onnx"``).
    """
    try:
        return importlib.import_module(module)
    except ImportError as err:
        raise MissingExtra(f"{what} needs the {module} package: {install_hint(extra)}") from err


def install_hint(extra: str) -> str:
    """``pip install "awing[EXTRA]"`` for an awing extra, ``pip install NAME`` for a plain package."""
    if extra.startswith("pip:"):
        return f"pip install {extra[4:]}"
    return f'pip install "awing[{extra}]"'
