"""Spinning-lidar geometry: beam tables, and range-image projection with exact back-projection.

A `BeamTable` holds a sensor's elevation angles, top beam first, with any spacing (real sensors space their
beams unevenly: a VLP-32C packs half of its 32 beams into 5 degrees around the horizon). A point's beam is the
row whose elevation angle is nearest to the point's (the boundaries lie half way between neighbouring beams);
its column is its azimuth quantised to `columns` bins per turn (column 0 looks along +x, columns advance
counter-clockwise as the sensor spins). When two points fall into one cell the nearer one is kept in the image;
`index` maps every cell to the point it holds (-1 for empty) and `cell` maps every point to its (beam, column),
so per-cell predictions go back to every point. Nothing downstream reads the angles themselves: the features of
a cell are its range, height and remission, so a model trained on one table runs on another of the same size.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from insitu.errors import DataError


@dataclass(frozen=True)
class BeamTable:
    """Elevation angles in degrees, strictly decreasing (top beam first); `source` says where they came from
    (preset, file, config, estimated, simulator)."""

    angles_deg: tuple[float, ...]
    name: str = "custom"
    source: str = "config"

    def __post_init__(self) -> None:
        a = self.angles_deg
        where = f"beam table {self.name!r}"
        if len(a) < 2 or len(a) > 256:
            raise DataError(f"{where} has {len(a)} beams; 2 to 256 are supported", "list one angle per beam")
        if not all(isinstance(v, float) and math.isfinite(v) and -90 < v < 90 for v in a):
            raise DataError(f"{where}: every angle must be a finite number of degrees in (-90, 90)",
                            "give the elevation angles in degrees, for example 15.0, 13.0, ..., -15.0")
        steps = np.diff(np.asarray(a))
        if not (steps < -1e-3).all():
            i = int(np.argmax(steps >= -1e-3))
            raise DataError(f"{where}: angles must be distinct and sorted top first; beam {i} ({a[i]}) and beam "
                            f"{i + 1} ({a[i + 1]}) are not", "sort the angles from the top beam down")

    @classmethod
    def from_angles(cls, angles, name: str = "custom", source: str = "config") -> BeamTable:
        """Any order in, top first out."""
        try:
            vals = sorted((float(v) for v in angles), reverse=True)
        except (TypeError, ValueError):
            raise DataError(f"beam table {name!r}: angles must be numbers (degrees)",
                            "list one angle per beam") from None
        return cls(tuple(vals), name, source)

    @property
    def beams(self) -> int:
        return len(self.angles_deg)

    def elevations(self) -> np.ndarray:
        """Elevation angles in radians, top first."""
        return np.deg2rad(np.asarray(self.angles_deg, np.float64))

    def describe(self) -> dict:
        return {"name": self.name, "source": self.source, "beams": self.beams,
                "angles_deg": list(self.angles_deg)}


def _uniform(top: float, bottom: float, n: int) -> tuple[float, ...]:
    return tuple(float(v) for v in np.linspace(top, bottom, n))


#: Named beam tables: the simulator's three uniform sensors and the nominal tables of common sensors.
PRESETS: dict[str, tuple[float, ...]] = {
    "sim-16": _uniform(15.0, -15.0, 16),
    "sim-32": _uniform(10.67, -30.67, 32),
    "sim-64": _uniform(2.0, -24.8, 64),
    "vlp-16": _uniform(15.0, -15.0, 16),  # Velodyne VLP-16 (Puck): 2 degrees apart
    "hdl-32e": _uniform(10.67, -30.67, 32),  # Velodyne HDL-32E: 1.33 degrees apart
    "vlp-32c": (15.0, 10.333, 7.0, 4.667, 3.333, 2.333, 1.667, 1.333, 1.0, 0.667, 0.333, 0.0, -0.333, -0.667,
                -1.0, -1.333, -1.667, -2.0, -2.333, -2.667, -3.0, -3.333, -3.667, -4.0, -4.667, -5.333, -6.148,
                -7.254, -8.843, -11.31, -15.639, -25.0),  # Velodyne VLP-32C (Ultra Puck), uneven
    # Velodyne HDL-64E (the KITTI sensor), nominal: an upper block of 32 lasers 1/3 degree apart and a lower
    # block of 32 lasers 1/2 degree apart; each unit's calibration differs slightly (estimate it from the scans)
    "hdl-64e": _uniform(2.0, -8.33, 32) + _uniform(-8.83, -24.33, 32),
}
#: The simulator's table for each beam count it builds without being given one.
SIM_TABLES = {16: "sim-16", 32: "sim-32", 64: "sim-64"}


def preset(name: str) -> BeamTable:
    if name not in PRESETS:
        raise DataError(f"no beam table named {name!r}", f"use one of {', '.join(PRESETS)} or a sensor file")
    return BeamTable(PRESETS[name], name, "preset")


def sim_table(n_beams: int) -> BeamTable:
    """The simulator's uniform table of a 16, 32 or 64-beam sensor."""
    if n_beams not in SIM_TABLES:
        raise DataError(f"the simulator has no built-in beam table for a {n_beams}-beam sensor",
                        f"use {sorted(SIM_TABLES)} beams, or give the angles (lidar.data.sensor = a preset or "
                        "a sensor file, or lidar.data.beam_angles_deg)")
    return BeamTable(PRESETS[SIM_TABLES[n_beams]], SIM_TABLES[n_beams], "simulator")


def elevations(n_beams: int) -> np.ndarray:
    """Elevation angles (radians) of the simulator's n-beam sensor, top first."""
    return sim_table(n_beams).elevations()


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


def assign_beams(elev: np.ndarray, table: BeamTable) -> np.ndarray:
    """Row of each elevation angle (radians): the nearest beam of the table."""
    el = table.elevations()[::-1]  # ascending
    mids = (el[1:] + el[:-1]) / 2
    return (len(el) - 1) - np.searchsorted(mids, elev)


def project(points: np.ndarray, table: BeamTable, columns: int) -> Projection:
    xyz = np.asarray(points, dtype=np.float64)[:, :3]
    rng = np.linalg.norm(xyz, axis=1)
    if (rng <= 0).any():
        raise DataError("a point at the sensor origin has no direction", "drop zero-range returns")
    elev = np.arcsin(np.clip(xyz[:, 2] / rng, -1, 1))
    n_beams = table.beams
    beam = assign_beams(elev, table)
    az = np.arctan2(xyz[:, 1], xyz[:, 0]) % (2 * np.pi)
    column = np.floor(az / (2 * np.pi) * columns + 0.5).astype(np.int64) % columns
    index = np.full((n_beams, columns), -1, dtype=np.int64)
    order = np.argsort(-rng, kind="stable")  # far first: the nearest point of a cell is written last
    index[beam[order], column[order]] = order
    range_img = np.zeros((n_beams, columns), np.float32)
    ok = index >= 0
    range_img[ok] = rng[index[ok]]
    return Projection(beam, column, index, range_img)
