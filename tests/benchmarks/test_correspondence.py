"""benchmarks/correspondence.py: the table on hand-made distances (a wrong correspondence stands out), and a
tiny end-to-end run of the shipped 68-point model on generated FG-NET and SCUT fixtures."""

from __future__ import annotations

import numpy as np
import pytest
from fixtures.new_layouts import write_fgnet, write_scut

from benchmarks.correspondence import SetResult, main, mapped_sources, markdown_table, reference_medians, table_rows


def hand_made(offsets: np.ndarray, groups: list) -> SetResult:
    """A SetResult from (M, N, 2) offsets (IOD 1), point 1 unmapped."""
    n = offsets.shape[1]
    errors = np.linalg.norm(offsets, axis=-1)
    errors[:, 1] = np.nan
    sources = ["36", "", "mean 37, 38", "45", "8"][:n]
    return SetResult(errors, offsets, groups, [f"p{i}" for i in range(n)], sources)


def test_mapped_sources_name_single_and_mean_points():
    w = np.zeros((3, 68))
    w[0, 36] = 1
    w[2, [37, 38]] = 0.5
    assert mapped_sources(w) == ["36", "", "mean 37, 38"]


def test_a_systematic_offset_is_flagged_per_column():
    scatter = [0.02, -0.03, 0.02, -0.03]  # the model's imprecision: no bias
    offsets = np.zeros((4, 5, 2))
    offsets[:, :4, 0] = np.array(scatter)[:, None]
    offsets[:, 4, 0] = [0.10, 0.12, 0.01, -0.01]  # a wrong correspondence in group "a" only
    rows = table_rows(hand_made(offsets, ["a", "a", "b", "b"]), {"a": "A", "b": "B"})
    assert [r["point"] for r in rows] == [0, 2, 3, 4]  # point 1 has no 300-W source
    assert [r["flag"] for r in rows] == ["", "", "", "far above (all, A)"]
    assert rows[-1]["A"] == pytest.approx(0.11) and rows[-1]["B"] == pytest.approx(0.01)
    assert rows[-1]["all"] == pytest.approx(0.055) and rows[-1]["bias"] == pytest.approx(0.055)
    assert rows[0]["bias"] == pytest.approx(0.005)
    medians, bias = np.full(5, 0.02), np.zeros((5, 2))
    bias[4] = [0.05, 0.0]  # the model itself sits that far off on 300-W: no correspondence error
    rows = table_rows(hand_made(offsets, ["a", "a", "b", "b"]), {"a": "A", "b": "B"}, (medians, bias))
    assert rows[-1]["ratio"] == pytest.approx(2.75) and rows[-1]["300-W val"] == 0.02
    assert rows[-1]["bias"] == pytest.approx(0.005) and rows[-1]["flag"] == "far above (A, B)"  # 0.06, 0.05
    text = markdown_table("hand-made", rows, faces=4, note="a note")
    lines = text.splitlines()
    assert lines[0] == "### hand-made (4 faces)"
    header = "| point | name | 300-W | all (% IOD) | A (% IOD) | B (% IOD) | 300-W val (% IOD) | ratio | bias (% IOD) |"
    assert lines[2] == header + " flag |"
    assert "| 4 | p4 | 8 | 5.50 | 11.00 | 1.00 | 2.00 | 2.75 | 0.50 | far above (A, B) |" in lines
    assert text.rstrip().endswith("a note")


def test_reference_medians_follow_the_declared_means():
    pred = np.zeros((3, 68, 2))
    gt = np.zeros((3, 68, 2))
    gt[:, 37, 0], gt[:, 38, 0] = 1.0, 3.0  # their mean is 2 px right of the prediction
    w = np.zeros((2, 68))
    w[0, [37, 38]] = 0.5
    w[1, 36] = 1.0
    medians, bias = reference_medians((pred, gt, np.full(3, 10.0)), w)
    np.testing.assert_allclose(medians, [0.2, 0.0])
    np.testing.assert_allclose(bias, [[-0.2, 0.0], [0.0, 0.0]])


def test_a_tiny_run_on_generated_fixtures(tmp_path, capsys):
    write_fgnet(tmp_path / "fgnet")
    write_scut(tmp_path / "scut_fbp5500")
    out = tmp_path / "tables.md"
    assert main(["--sets", "fgnet", "scut", "aflw2000", "--limit", "2", "--shared", str(tmp_path),
                 "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "### FG-NET (fgnet68) (2 faces)" in printed and "### SCUT-FBP5500 (scut86) (2 faces)" in printed
    assert "skipped:" in printed and "aflw2000_3d not found" in printed
    assert "| 7 | contour_07 | 8 |" in printed and "| 58 | left_pupil | mean 36, 37, 38, 39, 40, 41 |" in printed
    assert "300-W val" not in printed  # no 300-W data here: no reference column
    assert out.read_text().count("### ") == 2
