"""``awing models``: the shipped models, their schema, size, validation NME and how ``FaceAligner()`` runs them
(decoder, flip test)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from awing import pretrained
from awing.core.checkpoint import load_checkpoint
from awing.data.hints import inference_hints
from awing.method.model.checkpoint import codec_of_checkpoint, spec_of_checkpoint
from awing.pretrained import default_model, model_info, shipped_files


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print the list as JSON")


def shipped_models() -> list[dict]:
    """:func:`awing.pretrained.list_pretrained` plus how ``FaceAligner(name)`` runs each model, read the way it
    reads them: ``decoder`` (the file's codec) and ``flip_test`` (its inference hints). Each file is read once."""
    models = []
    for path in shipped_files().values():
        ckpt = load_checkpoint(path)
        decoder = codec_of_checkpoint(ckpt, spec_of_checkpoint(ckpt)).decoder
        flip_test = bool(inference_hints(ckpt).flip_test)
        models.append({**model_info(path, ckpt), "decoder": decoder, "flip_test": flip_test})
    return models


def run(args: argparse.Namespace) -> int:
    models = shipped_models()
    if args.json:
        print(json.dumps(models, indent=2))
        return 0
    if not models:
        print(f"no shipped models in {pretrained.PRETRAINED_DIR}")
        return 0
    default = default_model().stem
    rows = [("name", "schema", "points", "arch", "size", "val NME", "runs", "card")]
    for m in models:
        nme = "-" if m["val_nme"] is None else f"{100 * m['val_nme']:.2f}%"
        arch = f"{m['stacks']}hg w{m['width']} {m['input_size']}px"
        name = m["name"] + (" (default)" if m["name"] == default else "")
        rows.append(
            (
                name,
                m["schema"],
                str(m["points"]),
                arch,
                f"{m['size_mb']:.1f} MB",
                nme,
                ", ".join(filter(None, [m["decoder"], "flip test" if m["flip_test"] else ""])) or "-",
                Path(m["card"]).name if m["card"] else "-",
            )
        )
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for r in rows:
        print("  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip())
    return 0
