"""Each 68-point model on the validation split of every source of the mixed recipe (issue 24): one table.

    python -m benchmarks.sources [--models w300-1hg-tiny w300-1hg-tiny-128 runs/NAME/best.pt ...] [--out DIR]

Rows are models (default: the shipped 68-point ones), columns the sources' fixed ``val`` splits, scored as
``awing eval`` scores them with the model's own crop rule and decoder: 300-W (NME by the outer eye
corners), FG-NET and SCUT-FBP5500 (on the 29 / 21 points that correspond to 300-W's, by the outer eye
corners, which both carry), AFLW2000-3D by the box size sqrt(w h) of the 68 ground-truth points (the
inter-ocular distance collapses on turned heads) and its ``large_pose`` subset (|yaw| >= 30 degrees) of
the same split. The validation splits keep a person (FG-NET) or a photo out of training; no model here
trained on them. Writes ``OUT/sources.md`` and ``.json``.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

if __package__:  # python -m benchmarks.sources, or imported
    from benchmarks._common import DATASETS, add_shared_argument
else:  # python benchmarks/sources.py
    from _common import DATASETS, add_shared_argument

# column -> (data set of DATASETS, split, normaliser or None (the layout's own), subset or None)
COLUMNS = {
    "300-W val": ("w300", "val", None, None),
    "FG-NET val": ("fgnet", "val", None, None),
    "SCUT val": ("scut", "val", None, None),
    "AFLW2000-3D val (box)": ("aflw2000", "val", "box", None),
    "AFLW2000-3D val, yaw >= 30° (box)": ("aflw2000", "val", "box", "large_pose"),
}


def shipped_68_point_models() -> list[str]:
    from awing.pretrained import list_pretrained

    return [m["name"] for m in list_pretrained() if m["schema"] == "w300_68"]


def model_folder(model: str) -> str:
    """A folder name per model: a shipped name as it is, a file by its run folder too (``runs/a/best.pt`` and
    ``runs/b/best.pt`` must not share results)."""
    path = Path(model)
    if path.suffix != ".pt":
        return path.name
    return "_".join(p for p in (path.parent.name, path.stem) if p)


def evaluate(model: str, column: str, shared: Path, out: Path) -> tuple[float, int]:
    """NME (a fraction) and faces of one model on one column, through ``awing eval``'s own code."""
    from awing.app.cli import main as awing_main

    name, split, normaliser, subset = COLUMNS[column]
    data = DATASETS[name]
    folder = out / model_folder(model) / name / (normaliser or "own")
    results = folder / "results.json"
    if not results.exists():
        argv = ["eval", model, f"{data.reader}:{shared / data.folder}:{split}", "--out", str(folder), "--device", "cpu"]
        if awing_main(argv + (["--normaliser", normaliser] if normaliser else [])) != 0:
            raise SystemExit(f"awing eval failed: {' '.join(argv)}")
        found = sorted(folder.glob("results*.json"))
        found[0].rename(results)
    scores = next(iter(json.loads(results.read_text())["testsets"].values()))
    if subset:
        part = scores["subsets"][subset]
        return part["nme"], part["num_images"]
    return scores["nme"], scores["num_images"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--models", nargs="+", help="shipped names or checkpoints (default: the shipped 68-point models)"
    )
    parser.add_argument("--out", type=Path, default=Path("runs/sources"))
    add_shared_argument(parser)
    args = parser.parse_args(argv)
    models = args.models or shipped_68_point_models()
    table = {m: {c: evaluate(m, c, args.shared, args.out) for c in COLUMNS} for m in models}
    lines = ["| model | " + " | ".join(COLUMNS) + " |", "|---|" + "---|" * len(COLUMNS)]
    for model, row in table.items():
        cells = [f"{100 * nme:.2f} ({n})" for nme, n in row.values()]
        lines.append(f"| {model} | " + " | ".join(cells) + " |")
    text = "NME % (faces) on each source's validation split\n\n" + "\n".join(lines) + "\n"
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "sources.md").write_text(text)
    (args.out / "sources.json").write_text(json.dumps(table, indent=1))
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
