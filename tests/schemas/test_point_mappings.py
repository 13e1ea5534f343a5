"""Declared point mappings between layouts (``from_schemas`` in the schema YAMLs)."""

import numpy as np
import pytest

from awing.data import synthetic
from awing.schemas import Schema, load_schema, map_points, point_mapping


def test_98_to_68_mapping_reproduces_the_68_point_synthetic_face_exactly():
    """The generator draws one 3-D face in both layouts: mapping its 98 points gives its 68."""
    for index in range(3):
        face98 = synthetic.make_example(seed=0, split="val", index=index, schema="wflw98")
        face68 = synthetic.make_example(seed=0, split="val", index=index, schema="w300_68")
        pts98 = np.asarray(face98[1]["landmarks"], dtype=np.float64)
        pts68 = np.asarray(face68[1]["landmarks"], dtype=np.float64)
        np.testing.assert_allclose(map_points(pts98, point_mapping("wflw98", "w300_68")), pts68, atol=1e-9)


def test_mappings_compose_and_average_the_named_points():
    w = point_mapping("wflw98", "mtfl5")  # composed: wflw98 -> w300_68 -> mtfl5
    assert w.shape == (5, 98) and np.allclose(w.sum(axis=1), 1)
    pts = np.random.default_rng(0).uniform(0, 100, (98, 2))
    mapped = map_points(pts, w)
    # the left eye centre is the mean of 300W's six left-eye points, i.e. six of WFLW's eight
    np.testing.assert_allclose(mapped[0], pts[[60, 61, 63, 64, 65, 67]].mean(axis=0))
    np.testing.assert_allclose(mapped[2], pts[54])  # nose tip
    direct = map_points(pts, point_mapping("fdd14", "mtfl5") @ point_mapping("wflw98", "fdd14"))
    np.testing.assert_allclose(direct[2:], mapped[2:])  # nose and mouth agree through either chain
    assert point_mapping("mtfl5", "fdd14") is None  # 5 points do not make 14
    assert np.array_equal(point_mapping("fdd14", "fdd14"), np.eye(14))


def test_a_missing_source_point_makes_the_points_built_from_it_missing():
    pts = np.random.default_rng(1).uniform(0, 100, (2, 68, 2))
    pts[1, 40] = np.nan  # one left-eye point of the second face
    mapped = map_points(pts, point_mapping("w300_68", "mtfl5"))
    assert np.isfinite(mapped[0]).all()
    assert np.isnan(mapped[1, 0]).all() and np.isfinite(mapped[1, 1:]).all()


def test_a_mapping_row_per_point_is_required():
    data = load_schema("mtfl5").to_dict()
    data["from_schemas"] = {"w300_68": [[36], [45]]}  # 2 rows for 5 points
    with pytest.raises(ValueError, match="from_schemas"):
        Schema.from_dict(data)
    assert Schema.from_dict(load_schema("fdd14").to_dict()) == load_schema("fdd14")  # round trip


def test_a_schema_stored_without_mappings_uses_the_builtin_ones():
    """Checkpoints written before mappings existed store schemas without ``from_schemas``."""
    data = load_schema("mtfl5").to_dict()
    del data["from_schemas"]
    old = Schema.from_dict(data, source="checkpoint")
    assert old.from_schemas == {}
    np.testing.assert_array_equal(point_mapping("w300_68", old), point_mapping("w300_68", "mtfl5"))
