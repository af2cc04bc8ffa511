"""Range-image projection: every point lands in the cell it was emitted from, and comes back exactly, for the
simulator's uniform tables and for real sensors' uneven ones."""

import numpy as np
import pytest

from insitu.data.range_image import PRESETS, BeamTable, assign_beams, elevations, preset, project, sim_table
from insitu.errors import DataError


@pytest.mark.parametrize("name,columns", [("sim-16", 360), ("sim-64", 2048), ("sim-32", 1024), ("vlp-32c", 1024),
                                          ("hdl-64e", 2048)])
def test_projection_round_trip(name, columns):
    table = preset(name)
    beams = table.beams
    rng = np.random.default_rng(beams)
    b = rng.integers(0, beams, 3000)
    c = rng.integers(0, columns, 3000)
    r = rng.uniform(2, 80, 3000)
    el, az = table.elevations()[b], (c / columns) * 2 * np.pi
    pts = np.stack([r * np.cos(el) * np.cos(az), r * np.cos(el) * np.sin(az), r * np.sin(el),
                    rng.uniform(0, 1, 3000)], 1)
    p = project(pts, table, columns)
    np.testing.assert_array_equal(p.beam, b)
    np.testing.assert_array_equal(p.column, c)
    # the kept point of each cell is the nearest one, and back-projection returns every point its cell's value
    held = p.index[p.beam, p.column]
    assert np.all(r[held] <= r + 1e-9)
    img = p.image(pts[:, 3])
    np.testing.assert_array_equal(p.back(img), pts[held, 3])
    assert np.allclose(p.range_[p.beam, p.column], r[held])
    assert (p.index >= 0).sum() == len(np.unique(b * columns + c))


def test_nearest_beam_boundaries_lie_half_way_for_uneven_spacing():
    t = BeamTable((10.0, 2.0, 1.0, -20.0))
    deg = np.array([6.01, 5.99, 1.51, 1.49, -9.49, -9.51, 50.0, -80.0])
    np.testing.assert_array_equal(assign_beams(np.deg2rad(deg), t), [0, 1, 1, 2, 2, 3, 0, 3])


def test_tables_refuse_bad_angles_and_unknown_sensors():
    with pytest.raises(DataError, match="no built-in beam table for a 40-beam sensor"):
        elevations(40)
    with pytest.raises(DataError, match="origin"):
        project(np.zeros((2, 4)), sim_table(16), 100)
    with pytest.raises(DataError, match="sorted top first"):
        BeamTable((1.0, 1.0, -2.0))
    with pytest.raises(DataError, match="finite"):
        BeamTable((1.0, float("nan")))
    with pytest.raises(DataError, match="2 to 256"):
        BeamTable((1.0,))
    with pytest.raises(DataError, match="no beam table named"):
        preset("hdl-128")
    assert BeamTable.from_angles([-1, 3, 2]).angles_deg == (3.0, 2.0, -1.0)
    assert all(BeamTable(v).beams == len(v) for v in PRESETS.values())
    assert preset("vlp-32c").beams == 32 and len(set(np.round(np.diff(PRESETS["vlp-32c"]), 3))) > 5  # uneven
