"""Spinning-lidar geometry: beam elevation tables, and range-image projection with exact back-projection.

A point's beam is the row whose elevation angle is nearest to the point's; its column is its azimuth
quantised to `columns` bins per turn (column 0 looks along +x, columns advance counter-clockwise as the
sensor spins). When two points fall into one cell the nearer one is kept in the image; `index` maps every
cell to the point it holds (-1 for empty) and `cell` maps every point to its (beam, column), so per-cell
predictions go back to every point.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from insitu.errors import DataError

#: Vertical angles in degrees, top beam first, for the sensor sizes the simulator builds.
BEAMS: dict[int, tuple[float, float]] = {16: (15.0, -15.0), 32: (10.67, -30.67), 64: (2.0, -24.8)}


def elevations(n_beams: int) -> np.ndarray:
    """Elevation angle (radians) of each beam, top first: uniform over the sensor's field of view."""
    if n_beams not in BEAMS:
        raise DataError(f"no beam table for a {n_beams}-beam sensor", f"use one of {sorted(BEAMS)}")
    top, bottom = BEAMS[n_beams]
    return np.deg2rad(np.linspace(top, bottom, n_beams))


@dataclass(frozen=True)
class Projection:
    beam: np.ndarray  # (N,) int, row of each point
    column: np.ndarray  # (N,) int
    index: np.ndarray  # (B, W) int, point held by each cell or -1
    range_: np.ndarray  # (B, W) float32, 0 where empty

    def image(self, values: np.ndarray, fill: float = 0.0) -> np.ndarray:
        """(B, W) image of a per-point quantity (the point held by each cell)."""
        out = np.full(self.index.shape, fill, dtype=np.asarray(values).dtype)
        ok = self.index >= 0
        out[ok] = np.asarray(values)[self.index[ok]]
        return out

    def back(self, image: np.ndarray) -> np.ndarray:
        """Per-point values read from a (B, W) image at each point's cell (every point, kept or not)."""
        return np.asarray(image)[self.beam, self.column]


def project(points: np.ndarray, n_beams: int, columns: int) -> Projection:
    xyz = np.asarray(points, dtype=np.float64)[:, :3]
    rng = np.linalg.norm(xyz, axis=1)
    if (rng <= 0).any():
        raise DataError("a point at the sensor origin has no direction", "drop zero-range returns")
    elev = np.arcsin(np.clip(xyz[:, 2] / rng, -1, 1))
    table = elevations(n_beams)
    beam = np.abs(elev[:, None] - table[None, :]).argmin(axis=1)
    az = np.arctan2(xyz[:, 1], xyz[:, 0]) % (2 * np.pi)
    column = np.floor(az / (2 * np.pi) * columns + 0.5).astype(np.int64) % columns
    index = np.full((n_beams, columns), -1, dtype=np.int64)
    order = np.argsort(-rng, kind="stable")  # far first: the nearest point of a cell is written last
    index[beam[order], column[order]] = order
    range_img = np.zeros((n_beams, columns), np.float32)
    ok = index >= 0
    range_img[ok] = rng[index[ok]]
    return Projection(beam, column, index, range_img)
