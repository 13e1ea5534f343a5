"""What the benchmarks share: the repository's root, the real data's folder, and how each data set in it is found.

A benchmark runs as ``python -m benchmarks.NAME`` (then, as when the tests import it, it is
``benchmarks.NAME``) or as ``python benchmarks/NAME.py`` (then this folder is ``sys.path[0]``, and the
benchmark imports this file as ``_common``). Every benchmark that needs it starts the same way::

    if __package__:  # python -m benchmarks.NAME, or imported
        from benchmarks._common import REPO, shared_data
    else:  # python benchmarks/NAME.py
        from _common import REPO, shared_data

Imported as ``_common`` (a script), this file also puts the repository root first on ``sys.path``, so that
``awing`` (this checkout's, installed or not) and ``benchmarks.*`` import as they do under ``-m``. That is
the one ``sys.path`` change of the benchmarks.

The real data (FDD-14, MTFL-5, 300-W, AFLW2000-3D, FG-NET, SCUT-FBP5500, the in-the-wild fixtures) is read
from ``$AWING_SHARED_DATA``, else from ``../shared/data`` beside the repository; benchmarks that read it
directly also take ``--shared``.
"""

from __future__ import annotations

import argparse
import os
import sys
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

if __name__ == "_common" and str(REPO) not in sys.path:  # run as a script: see the module docstring
    sys.path.insert(0, str(REPO))


def shared_data() -> Path:
    """The real data folder: ``$AWING_SHARED_DATA`` if set, else ``../shared/data`` beside the repository."""
    env = os.environ.get("AWING_SHARED_DATA")
    return Path(env) if env else REPO.parent / "shared" / "data"


@dataclass(frozen=True)
class DataSet:
    """One real data set under the shared data folder."""

    reader: str  # awing's reader of its layout (``awing datasets``)
    folder: str  # its folder under the shared data
    schema: str  # its landmark layout (awing/schemas/SCHEMA.yaml)


DATASETS = {
    "fdd14": DataSet("fdd", "fdd14", "fdd14"),
    "mtfl5": DataSet("mtfl", "mtfl5", "mtfl5"),
    "w300": DataSet("w300", "w300", "w300_68"),  # AFW + HELEN train, with the fixed fit / val split
    "aflw2000": DataSet("aflw2000", "aflw2000_3d", "w300_68"),  # AFLW2000-3D: 300-W's order, large poses
    "fgnet": DataSet("fgnet", "fgnet", "fgnet68"),  # FG-NET: its own 68 points, 29 shared with 300-W's
    "scut": DataSet("scut", "scut_fbp5500", "scut86"),  # SCUT-FBP5500: 86 points, 21 shared with 300-W's
}


def dataset_root(name: str, shared: str | Path | None = None) -> Path:
    """The folder of data set ``name`` (a key of :data:`DATASETS`) under ``shared`` (default: :func:`shared_data`)."""
    return Path(shared_data() if shared is None else shared) / DATASETS[name].folder


def subsample(samples: list, limit: int | None) -> list:
    """At most ``limit`` items, evenly spaced from the first (``0`` / None: all of them)."""
    return samples[:: max(1, len(samples) // limit)][:limit] if limit else samples


def read_samples(name: str, split: str, shared: str | Path | None = None, limit: int | None = None) -> list:
    """The samples of one split of data set ``name`` (its reader on :func:`dataset_root`), :func:`subsample`\\ d."""
    from awing.data.readers import read_dataset

    return subsample(read_dataset(DATASETS[name].reader, dataset_root(name, shared), split), limit)


def add_shared_argument(parser: argparse.ArgumentParser) -> None:
    """``--shared DIR``: the real data folder (default: :func:`shared_data`), parsed as a Path."""
    parser.add_argument(
        "--shared",
        type=Path,
        default=shared_data(),
        help="the real data folder (default: $AWING_SHARED_DATA, else ../shared/data beside the repository)",
    )


def line_panels(panels: dict[str, dict[str, tuple]], path: Path, title: str, xlabel: str, columns: int = 3) -> Path:
    """One figure of line plots: ``panels`` = {panel title: {line label: (xs, ys)}}, lines coloured alike
    across panels (the first panel has the legend); written to ``path`` (PNG)."""
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    rows = -(-len(panels) // columns)
    fig = Figure(figsize=(4 * columns, 3.2 * rows), dpi=100)
    axes = fig.subplots(rows, columns, squeeze=False).ravel()
    for ax, (name, lines) in zip(axes, panels.items()):
        for i, (label, (xs, ys)) in enumerate(lines.items()):
            ax.plot(xs, ys, marker=".", color=f"C{i}", label=label)
        ax.set_title(name, fontsize="medium")
        ax.set_xlabel(xlabel)
        if all(float(x).is_integer() for xs, _ in lines.values() for x in xs):
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(True, alpha=0.3)
    for ax in axes[len(panels) :]:
        ax.set_visible(False)
    axes[0].legend()
    fig.suptitle(title)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, format="png")
    return path
