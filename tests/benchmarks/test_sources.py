"""benchmarks/sources.py: each column names a real data set, split, normaliser and subset of its layout,
and the table is written from ``awing eval``'s results (a stand-in evaluation here)."""

from __future__ import annotations

import json

import pytest

from awing.data.readers import get_reader
from awing.schemas import load_schema
from benchmarks import sources
from benchmarks._common import DATASETS


def test_every_column_is_a_real_split_normaliser_and_subset():
    for column, (name, split, normaliser, subset) in sources.COLUMNS.items():
        assert "|" not in column  # a Markdown table cell
        data = DATASETS[name]
        assert get_reader(data.reader).knows(split)
        schema = load_schema(data.schema)
        assert normaliser is None or normaliser in schema.normalisers
        assert subset is None or subset in schema.subsets


def test_the_table_has_a_row_per_model_and_a_cell_per_column(monkeypatch, tmp_path):
    calls = []

    def fake(model, column, shared, out):
        calls.append((model, column))
        return 0.0123, 7

    monkeypatch.setattr(sources, "evaluate", fake)
    assert sources.main(["--models", "a.pt", "b.pt", "--out", str(tmp_path)]) == 0
    assert len(calls) == 2 * len(sources.COLUMNS)
    text = (tmp_path / "sources.md").read_text()
    assert text.count("| 1.23 (7) ") == 2 * len(sources.COLUMNS) and "| a.pt |" in text and "| b.pt |" in text
    assert json.loads((tmp_path / "sources.json").read_text())["b.pt"][next(iter(sources.COLUMNS))] == [0.0123, 7]


def test_a_subset_column_reads_the_subset_of_the_splits_results(tmp_path, monkeypatch):
    folder = tmp_path / sources.model_folder("m") / "aflw2000" / "box"
    folder.mkdir(parents=True)
    scores = {"nme": 0.07, "num_images": 215, "subsets": {"large_pose": {"nme": 0.128, "num_images": 79}}}
    (folder / "results.json").write_text(json.dumps({"testsets": {"val": scores}}))
    columns = {c: v for c, v in sources.COLUMNS.items() if v[0] == "aflw2000"}
    whole, part = (sources.evaluate("m.pt", c, tmp_path, tmp_path) for c in columns)
    assert whole == (0.07, 215) and part == pytest.approx((0.128, 79))


def test_two_runs_best_files_get_their_own_results_folders():
    assert sources.model_folder("runs/jaw_keep/best.pt") != sources.model_folder("runs/jaw_mask/best.pt")
    assert sources.model_folder("w300-1hg-tiny") == "w300-1hg-tiny"
