"""benchmarks/sharpness.py: the heatmap statistics on hand-made heatmaps, and the report's files."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from awing.core.checkpoint import save_checkpoint
from awing.core.config import load_config
from awing.data.readers import read_dataset
from awing.method.model import create_model, model_payload
from awing.method.targets import landmark_heatmaps
from awing.schemas import load_schema
from benchmarks.sharpness import (
    STATS,
    bilinear_sample,
    half_peak_area,
    heatmap_statistics,
    main,
    radial_profile,
    second_moment_radius,
    sharpness_report,
)


def gaussian(points, sigma, size=48):
    """Untruncated Gaussians (support far beyond the 6-pixel window) at the given points."""
    heat, _ = landmark_heatmaps(torch.tensor([points], dtype=torch.float32), (size, size), sigma, radius=size)
    return heat


@pytest.mark.parametrize("sigma", [1.0, 1.5])
def test_gaussian_statistics(sigma):
    points = [[20.0, 18.0], [30.3, 12.7]]
    heat = gaussian(points, sigma)
    stats = heatmap_statistics(heat, torch.tensor([points]))
    assert set(stats) == set(STATS)
    # centred on a pixel: peak 1 at the centre, exact value there, no localisation error
    assert stats["peak"][0, 0] == pytest.approx(1.0)
    assert stats["value_at_gt"][0, 0] == pytest.approx(1.0)
    assert stats["error"][0, 0] == pytest.approx(0.0)
    # 2-D second-moment radius of a Gaussian: sigma * sqrt(2), about the GT point and about the blob's centroid
    for name in ("radius_gt", "radius_blob"):
        assert stats[name][0].tolist() == pytest.approx([sigma * math.sqrt(2)] * 2, rel=0.01)
    # half-maximum area ~ 2 pi ln2 sigma^2 (discretised)
    assert stats["half_area"][0, 0] == pytest.approx(2 * math.pi * math.log(2) * sigma**2, abs=1.5)
    # off-pixel point: peak below 1 at the nearest pixel, bilinear value close to it
    assert 0.8 < stats["peak"][0, 1] < 1.0
    assert 0.75 < stats["value_at_gt"][0, 1] < 1.0


def test_spread_grows_and_intensity_drops_with_blur():
    points = [[24.0, 24.0]]
    sharp = heatmap_statistics(gaussian(points, 1.0), torch.tensor([points]))
    blurry = heatmap_statistics(0.4 * gaussian(points, 2.5), torch.tensor([points]))
    assert blurry["radius_gt"][0, 0] > sharp["radius_gt"][0, 0] + 1
    assert blurry["half_area"][0, 0] > 3 * sharp["half_area"][0, 0]
    assert blurry["value_at_gt"][0, 0] == pytest.approx(0.4)
    # a sharp blob off the GT point: small blob radius, large radius about the GT point
    shifted = heatmap_statistics(gaussian([[27.0, 24.0]], 1.0), torch.tensor([points]))
    assert shifted["radius_blob"][0, 0] == pytest.approx(math.sqrt(2), rel=0.01)
    assert shifted["radius_gt"][0, 0] > 3
    assert shifted["error"][0, 0] == pytest.approx(3.0)


def test_edge_cases():
    heat = torch.zeros(1, 3, 16, 16)
    heat[0, 0, 5, 7] = 1.0
    points = torch.tensor([[[7.0, 5.0], [float("nan"), 1.0], [40.0, 3.0]]])
    stats = heatmap_statistics(heat, points)
    assert stats["radius_gt"][0, 0] == pytest.approx(0.0)
    assert stats["half_area"][0, 0] == 1
    for name in STATS:  # missing and off-grid points are NaN
        assert torch.isnan(stats[name][0, 1:]).all()
    assert torch.isnan(half_peak_area(torch.zeros(1, 1, 4, 4))).all()  # no positive peak
    assert torch.isnan(second_moment_radius(torch.zeros(1, 1, 8, 8), torch.tensor([[[3.0, 3.0]]]))).all()
    ramp = torch.arange(16.0).repeat(16, 1).view(1, 1, 16, 16)  # h = x
    assert bilinear_sample(ramp, torch.tensor([[[3.25, 9.5]]])).item() == pytest.approx(3.25)
    assert bilinear_sample(ramp, torch.tensor([[[15.4, 0.0]]])).item() == pytest.approx(15.0)  # border
    sums, counts = radial_profile(heat[:, :1], points[:, :1])
    assert sums[0] == 1 and counts[0] == 1 and sums[1:].sum() == 0


def run_config(root, *extra):
    """A config whose data section is the session's tiny synthetic set (only what the report reads)."""
    overrides = [
        "model.name=awing-1hg-tiny",
        "model.width=32",
        "model.input_size=64",
        "model.coordconv=false",
        "model.boundary_coords=false",
        "targets.sigma=1.0",
        "targets.radius=2",
        "data.format=synthetic",
        f"data.root={root}",
        "data.options={generate: false, progress: false}",  # read the shared set as it is
        "data.enlarge=0.1",
    ]
    return load_config(None, overrides + list(extra))


def make_run(run_dir, cfg, seed):
    torch.manual_seed(seed)
    schema = load_schema("wflw98")
    model = create_model("awing-1hg-tiny", schema.num_points, width=32, input_size=64, stacks=1,
                         boundary=cfg.model.boundary, coordconv=False, boundary_coords=False)
    save_checkpoint(run_dir / "best.pt", {**model_payload(model, schema), "config": cfg.to_dict()})
    return run_dir


def test_report_writes_files(synthetic_root, tmp_path):
    torch.set_num_threads(1)
    plain, boundary = run_config(synthetic_root, "model.boundary=false"), run_config(synthetic_root)
    runs = {
        "MSE": [make_run(tmp_path / "MSE_s0", plain, 0)],
        "AW": [make_run(tmp_path / "AW_s0", boundary, 1), make_run(tmp_path / "AW_s1", boundary, 2)],
    }
    out = tmp_path / "report"
    text = sharpness_report(runs, out)
    assert "![](sharpness.png)" in text
    assert "| GT target" in text and "| MSE | 1 |" in text and "| AW | 2 |" in text and " ± " in text
    assert (out / "sharpness.png").stat().st_size > 1000
    data = json.loads((out / "sharpness.json").read_text())
    n_val = len(read_dataset("synthetic", synthetic_root, "val", generate=False))
    assert data["n_faces"] == n_val and data["n_points"] > 0
    assert set(data["methods"]) == {"MSE", "AW"}
    assert len(data["methods"]["AW"]["runs"]) == 2
    ref = data["reference"]["stats"]
    assert 0.8 < ref["peak"] <= 1.0 and ref["radius_gt"] < 1.6  # sigma 1, radius 2 targets
    assert np.isfinite(data["methods"]["MSE"]["mean"]["peak"])
    # each loss's gradient split by facial part: shares of one whole, a table row per method and loss
    for run in data["methods"]["AW"]["runs"]:
        for loss in ("AW", "MSE"):
            assert sum(run["gradient_share"][loss].values()) == pytest.approx(1.0)
    assert "| (share of the points) |" in text and "| AW | MSE |" in text and "| MSE | AW |" in text

    # the command line: MSE_RUN AW_RUN --out DIR
    assert main([str(runs["MSE"][0]), str(runs["AW"][0] / "best.pt"), "--out", str(tmp_path / "cli")]) == 0
    assert {p.name for p in (tmp_path / "cli").iterdir()} == {"sharpness.md", "sharpness.json", "sharpness.png"}


def test_point_groups_split_the_68_points_into_facial_parts():
    from awing.schemas import load_schema
    from benchmarks.sharpness import point_groups

    groups = point_groups(load_schema("w300_68").point_names)
    assert {k: len(v) for k, v in groups.items()} == {"contour": 17, "brow": 10, "nose": 9, "eye": 12, "mouth": 20}
    assert sorted(i for v in groups.values() for i in v) == list(range(68)) and groups["contour"] == list(range(17))
