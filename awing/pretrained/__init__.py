"""The shipped (pretrained) model files ``awing/pretrained/<name>.pt`` (written by
:func:`awing.core.checkpoint.export_weights`), each with a model card ``<name>.md`` beside it, and their
registry. (The network itself is :mod:`awing.method.model`.)

``FaceAligner()`` without a model uses :func:`default_model`; ``awing models`` lists what is shipped.
The models are trained on research data sets (FDD, MTFL) licensed for non-commercial research use only;
each card says so.
"""

from __future__ import annotations

from pathlib import Path

from awing.core.checkpoint import checkpoint_metrics, load_checkpoint

PRETRAINED_DIR = Path(__file__).parent

# The default model is the first of these that is shipped, else the first shipped model by name.
# w300-1hg-tiny-128 (128 px, flip test on) became the default in session 14: within 2x MediaPipe FaceMesh's time
# per photo at <= 4.0 % NME on 300-W (GitHub issue 23). w300-1hg-tiny (256 px, four sources since session 15) is
# the most accurate, about 3x the time; w300-1hg-tiny-300w is the same network trained on 300-W alone.
DEFAULT_PREFERENCE = ("w300-1hg-tiny-128", "w300-1hg-tiny", "fdd14-1hg-tiny", "mtfl5-1hg-tiny")


def shipped_files() -> dict[str, Path]:
    """Shipped model name -> its file, sorted by name."""
    return {p.stem: p for p in sorted(PRETRAINED_DIR.glob("*.pt"))}


def validation_nme(ckpt: dict) -> float | None:
    """The validation NME (a fraction) recorded in a checkpoint, or None."""
    value = checkpoint_metrics(ckpt).get("val_nme")
    return float(value) if isinstance(value, (int, float)) else None


def model_info(path: str | Path, ckpt: dict | None = None) -> dict:
    """Name, schema, point count, architecture, file size and validation NME of one model file (how
    ``FaceAligner()`` runs it is :func:`awing.app.models.shipped_models`'s to say); ``ckpt``: the file already
    loaded, else it is read."""
    path = Path(path)
    ckpt = load_checkpoint(path) if ckpt is None else ckpt
    spec = ckpt["spec"]
    card = path.with_suffix(".md")
    return {
        "name": path.stem,
        "path": str(path),
        "schema": ckpt["schema"].get("name"),
        "points": int(spec["num_points"]),
        "stacks": int(spec.get("stacks", 0)),
        "width": int(spec.get("width", 0)),
        "input_size": int(spec.get("input_size", 0)),
        "size_mb": path.stat().st_size / 2**20,
        "val_nme": validation_nme(ckpt),
        "card": str(card) if card.is_file() else None,
    }


def list_pretrained() -> list[dict]:
    """One :func:`model_info` dict per shipped model, sorted by name (empty if none is shipped)."""
    return [model_info(p) for p in shipped_files().values()]


def default_model() -> Path:
    """The path of the default shipped model.

    Raises:
        FileNotFoundError: if no model is shipped in this install.
    """
    files = shipped_files()
    for name in (*DEFAULT_PREFERENCE, *files):
        if name in files:
            return files[name]
    raise FileNotFoundError(
        f"no shipped model in {PRETRAINED_DIR} yet: pass model=PATH (a checkpoint written by `awing train`, "
        "e.g. runs/NAME/best.pt) or a file made by `awing export CKPT --format weights`"
    )


def resolve_model(name_or_path: str | Path | None) -> Path:
    """A model file from a shipped name (``fdd14-1hg-tiny``), a path, or None (the default model).

    Raises:
        FileNotFoundError: naming the shipped models when it is neither an existing file nor one of them.
    """
    if name_or_path is None:
        return default_model()
    path = Path(name_or_path).expanduser()
    if path.is_file():
        return path
    files = shipped_files()
    if str(name_or_path) in files:
        return files[str(name_or_path)]
    shipped = ", ".join(files) or "none in this install"
    raise FileNotFoundError(f"model {str(name_or_path)!r} is neither a file nor a shipped model ({shipped})")
