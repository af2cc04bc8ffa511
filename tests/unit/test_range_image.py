"""Range-image projection: every point lands in the cell it was emitted from, and comes back exactly."""

import numpy as np
import pytest

from insitu.data.range_image import elevations, project
from insitu.errors import DataError


@pytest.mark.parametrize("beams,columns", [(16, 360), (64, 2048), (32, 1024)])
def test_projection_round_trip(beams, columns):
    rng = np.random.default_rng(beams)
    b = rng.integers(0, beams, 3000)
    c = rng.integers(0, columns, 3000)
    r = rng.uniform(2, 80, 3000)
    el, az = elevations(beams)[b], (c / columns) * 2 * np.pi
    pts = np.stack([r * np.cos(el) * np.cos(az), r * np.cos(el) * np.sin(az), r * np.sin(el),
                    rng.uniform(0, 1, 3000)], 1)
    p = project(pts, beams, columns)
    np.testing.assert_array_equal(p.beam, b)
    np.testing.assert_array_equal(p.column, c)
    # the kept point of each cell is the nearest one, and back-projection returns every point its cell's value
    held = p.index[p.beam, p.column]
    assert np.all(r[held] <= r + 1e-9)
    img = p.image(pts[:, 3])
    np.testing.assert_array_equal(p.back(img), pts[held, 3])
    assert np.allclose(p.range_[p.beam, p.column], r[held])
    assert (p.index >= 0).sum() == len(np.unique(b * columns + c))


def test_unknown_sensor_and_origin_points():
    with pytest.raises(DataError, match="no beam table for a 40-beam sensor"):
        elevations(40)
    with pytest.raises(DataError, match="origin"):
        project(np.zeros((2, 4)), 16, 100)
