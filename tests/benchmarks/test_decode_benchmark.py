"""benchmarks/decode.py: the per-face decoding timings run and print every decoder (synthetic heatmaps
where no 300-W data is given)."""

from __future__ import annotations

from benchmarks.decode import VARIANTS, main, measure, synthetic_heatmaps


def test_the_decode_benchmark_times_every_variant_and_prints_the_table(tmp_path, capsys):
    heat = synthetic_heatmaps(faces=2, points=5, size=32)
    ms = measure(heat, repeats=2)
    assert list(ms) == list(VARIANTS) and all(v > 0 for v in ms.values())
    assert main(["--faces", "1", "--repeats", "2", "--data", str(tmp_path)]) == 0  # no w300/ there
    out = capsys.readouterr().out
    assert "synthetic" in out and "dark (window)" in out and "max" in out
