"""benchmarks/jaw.py: one short run per jaw option, trained only when missing, then the sources table."""

from __future__ import annotations

from benchmarks import jaw


def test_each_option_trains_once_with_only_the_aflw_source_and_its_jaw(tmp_path, monkeypatch):
    done = tmp_path / "jaw_keep"
    done.mkdir()
    (done / "results.json").write_text("{}")  # finished: not trained again
    (tmp_path / "jaw_mask").mkdir()
    (tmp_path / "jaw_mask" / "last.pt").write_text("")  # stopped: resumed
    commands, scored = [], []
    monkeypatch.setattr(jaw.subprocess, "run", lambda cmd, **kw: commands.append(cmd))
    monkeypatch.setattr(jaw, "sources_main", lambda argv: scored.append(argv) or 0)
    assert jaw.main(["--out", str(tmp_path)]) == 0
    assert [c[c.index("--resume")] if "--resume" in c else None for c in commands] == [None, "--resume"]
    assert [next(a for a in c if a.startswith("train.name=")) for c in commands] == [
        "train.name=jaw_mask_turned",
        "train.name=jaw_mask",
    ]
    for cmd, option in zip(commands, ("mask_turned", "mask")):
        (sources,) = [a for a in cmd if a.startswith("data.sources=")]
        assert "format: aflw2000" in sources and f"options: {{jaw: {option}}}" in sources and "fgnet" not in sources
    assert scored[0][:4] == ["--models", str(tmp_path / "jaw_keep" / "best.pt"), *scored[0][2:4]]
    assert len(scored[0]) == 6 and scored[0][-2] == "--out"
