"""Which beam table a lidar sequence was recorded with: given (a preset, a sensor file, a list of angles) or
estimated from the scans themselves.

Estimation, in order of trust:
1. **Beam order.** Files that keep the points ring by ring (KITTI's HDL-64E exports, the built-in simulator)
   sweep the azimuth once per ring: a ring ends where the azimuth jumps back by more than half a turn. When the
   scans split into 2..256 such rings that each cover most of a turn, each ring's median elevation is its angle
   (this is immune to the elevation smear of lasers mounted off the optical centre).
2. **Elevation clustering.** Otherwise the elevation angles of all points, pooled over the scans, are
   histogrammed at 0.01 degrees; every well separated mode (its valleys fall below half its height) is a ring.
A ring from which no scan ever returned (a beam pointing at open sky in every scan) cannot be seen: the
estimate then has fewer beams, and the error that follows says to give the table instead.

Sensor files are TOML or JSON: `name = "..."` (optional) and `beam_angles_deg = [...]` (degrees, any order).
"""

from __future__ import annotations

import json
import logging
import tomllib
from pathlib import Path

import numpy as np
from scipy.ndimage import gaussian_filter1d
from scipy.signal import find_peaks

from insitu.data import kitti
from insitu.data.range_image import PRESETS, BeamTable, preset, sim_table
from insitu.errors import ConfigError, DataError

log = logging.getLogger(__name__)
BIN_DEG = 0.01
MIN_SEPARATION_DEG = 0.12  # closer rings than this are not resolved (the tightest real tables: 0.33 degrees)
FIT_FRACTION = 0.9  # points that must lie near a ring for a table to describe a scan
MAX_POINTS = 400_000


# --- given tables --------------------------------------------------------------------------------------
def read_sensor_file(path: Path) -> BeamTable:
    """A beam table from a TOML or JSON sensor file; every problem is a DataError naming the file."""
    path = Path(path)
    fix = 'write `beam_angles_deg = [15.0, 13.0, ...]` (degrees, one per beam) and optionally `name = "..."`'
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise DataError(f"sensor file {path} does not exist", "check the path") from None
    except (OSError, UnicodeError) as exc:
        raise DataError(f"cannot read sensor file {path} ({type(exc).__name__}: {exc})", fix) from None
    try:
        doc = json.loads(text) if path.suffix.lower() == ".json" else tomllib.loads(text)
    except (ValueError, tomllib.TOMLDecodeError, RecursionError) as exc:
        raise DataError(f"sensor file {path} is not valid {'JSON' if path.suffix.lower() == '.json' else 'TOML'}: "
                        f"{exc}", fix) from None
    if not isinstance(doc, dict) or not isinstance(doc.get("beam_angles_deg"), list):
        raise DataError(f"sensor file {path} has no list `beam_angles_deg`", fix)
    name = doc.get("name", path.stem)
    angles = doc["beam_angles_deg"]
    if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in angles):
        raise DataError(f"sensor file {path}: beam_angles_deg must hold numbers only", fix)
    try:
        return BeamTable.from_angles(angles, str(name), "file")
    except DataError as exc:
        raise DataError(f"sensor file {path}: {exc.problem}", exc.fix) from None


def given_table(sensor: str, angles: list[float] | None) -> BeamTable | None:
    """The table the configuration names (`lidar.data.beam_angles_deg`, else `lidar.data.sensor`: a preset
    or a sensor file), or None for `auto`."""
    if angles is not None:
        try:
            return BeamTable.from_angles(angles, "lidar.data.beam_angles_deg", "config")
        except DataError as exc:
            raise ConfigError(f"lidar.data.beam_angles_deg: {exc.problem}", exc.fix) from None
    if sensor == "auto":
        return None
    if sensor in PRESETS:
        return preset(sensor)
    if Path(sensor).suffix.lower() in (".toml", ".json") or Path(sensor).exists():
        return read_sensor_file(Path(sensor))
    raise ConfigError(f"lidar.data.sensor={sensor!r} is neither a beam table preset nor a sensor file",
                      f"use auto (estimate from the scans), one of {', '.join(PRESETS)}, or a .toml/.json file "
                      "with beam_angles_deg")


def simulator_table(sensor: str, angles: list[float] | None, beams: int) -> BeamTable:
    """The table the simulator casts with: the configured one, else its own uniform table for `beams`."""
    table = given_table(sensor, angles) or sim_table(beams)
    if table.beams != beams:
        raise ConfigError(f"the beam table {table.name!r} has {table.beams} beams but lidar.data.beams={beams}",
                          f"set lidar.data.beams={table.beams}, or give a table of {beams} angles")
    return table


# --- estimation ----------------------------------------------------------------------------------------
def _elevation_deg(points: np.ndarray) -> np.ndarray:
    xyz = np.asarray(points, np.float64)[:, :3]
    r = np.linalg.norm(xyz, axis=1)
    ok = r > 1e-6
    return np.degrees(np.arcsin(np.clip(xyz[ok, 2] / r[ok], -1, 1)))


def rings_from_order(points: np.ndarray) -> np.ndarray | None:
    """Median elevation (degrees) of each ring when the points are stored ring by ring, else None."""
    xyz = np.asarray(points, np.float64)[:, :3]
    if len(xyz) < 64:
        return None
    az = np.arctan2(xyz[:, 1], xyz[:, 0])
    step = np.angle(np.exp(1j * np.diff(az)))
    sweep = np.sign(np.median(step))
    if sweep == 0:
        return None
    swept = np.mod(sweep * (az - az[0]), 2 * np.pi)  # rises through each ring from ~0 to ~2 pi
    breaks = np.flatnonzero(np.diff(swept) < -np.pi) + 1
    bounds = np.concatenate([[0], breaks, [len(xyz)]])
    if not 2 <= len(bounds) - 1 <= 256:
        return None
    el = _elevation_deg(xyz)
    if len(el) != len(xyz):
        return None
    rings, spans = [], []
    for a, b in zip(bounds[:-1], bounds[1:]):
        if b - a < 8:
            return None  # a jittering cut makes tiny rings: not a clean ring order
        rings.append(float(np.median(el[a:b])))
        spans.append(float(swept[b - 1] - swept[a]))
    if np.median(spans) < 1.5 * np.pi:  # rings must cover most of a turn
        return None
    return np.asarray(rings)


def rings_from_histogram(el_deg: np.ndarray) -> np.ndarray:
    """Ring angles (degrees, descending) from the modes of the elevation histogram."""
    if len(el_deg) < 32:
        return np.zeros(0)
    lo, hi = float(el_deg.min()) - 5 * BIN_DEG, float(el_deg.max()) + 5 * BIN_DEG
    n_bins = min(int(np.ceil((hi - lo) / BIN_DEG)), 20_000)
    hist, edges = np.histogram(el_deg, bins=n_bins, range=(lo, hi))
    smooth = gaussian_filter1d(hist.astype(np.float64), 1.5)
    min_mass = max(5.0, 2e-4 * len(el_deg))
    peaks, props = find_peaks(smooth, distance=max(1, int(MIN_SEPARATION_DEG / BIN_DEG)), prominence=1.0)
    keep = props["prominences"] >= 0.5 * smooth[peaks]
    peaks = peaks[keep]
    if len(peaks) == 0:
        return np.zeros(0)
    centres = (edges[peaks] + edges[peaks + 1]) / 2
    mids = np.concatenate([[lo], (centres[1:] + centres[:-1]) / 2, [hi]])
    which = np.searchsorted(mids, el_deg) - 1
    rings = []
    for i in range(len(centres)):
        members = el_deg[which == i]
        near = members[np.abs(members - centres[i]) < 0.25 * max(MIN_SEPARATION_DEG, np.diff(mids[i:i + 2])[0])]
        if len(near) >= min_mass:
            rings.append(float(np.median(near)))
    return np.sort(np.asarray(rings))[::-1]


def fit_fraction(el_deg: np.ndarray, table: BeamTable) -> float:
    """Share of elevation angles within a quarter of the local beam spacing of their nearest beam."""
    if len(el_deg) == 0:
        return 0.0
    a = np.asarray(table.angles_deg)[::-1]  # ascending
    gaps = np.diff(a)
    spacing = np.minimum(np.concatenate([[gaps[0]], gaps]), np.concatenate([gaps, [gaps[-1]]]))
    mids = (a[1:] + a[:-1]) / 2
    k = np.searchsorted(mids, el_deg)
    return float(np.mean(np.abs(el_deg - a[k]) <= np.maximum(0.25 * spacing[k], 0.05)))


def _sample(scans: list[np.ndarray], seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    per_scan = max(1, MAX_POINTS // max(1, len(scans)))
    return np.concatenate([_elevation_deg(s[rng.choice(len(s), per_scan, replace=False)] if len(s) > per_scan else s)
                           for s in scans]) if scans else np.zeros(0)


def _modal(ring_lists: list[np.ndarray]) -> list[np.ndarray]:
    counts = [len(r) for r in ring_lists]
    mode = max(sorted(set(counts)), key=counts.count)
    return [r for r in ring_lists if len(r) == mode]


def estimate_table(scans: list[np.ndarray], where: str, seed: int = 0) -> BeamTable:
    """The beam table that explains a set of scans of one sensor (see the module docstring)."""
    ordered = [rings_from_order(s) for s in scans]
    if ordered and all(r is not None for r in ordered):
        # ring k of every scan with the usual ring count is the same laser: its angle is the median over scans
        same = _modal([np.sort(r)[::-1] for r in ordered])
        rings, method = np.median(np.stack(same), axis=0), "beam order"
    else:
        rings, method = rings_from_histogram(_sample(scans, seed)), "elevation clustering"
    if len(rings) < 2:
        raise DataError(f"{where}: the scans' elevation angles show {len(rings)} distinct ring(s); no beam table "
                        "can be estimated from them", _GIVE_TABLE)
    try:
        table = BeamTable(tuple(float(v) for v in rings), f"estimated ({method})", "estimated")
    except DataError as exc:
        raise DataError(f"{where}: the rings found by {method} do not make a beam table ({exc.problem})",
                        _GIVE_TABLE) from None
    if method == "elevation clustering":  # the ring order is its own evidence; clusters must be tight
        share = fit_fraction(_sample(scans, seed), table)
        if share < FIT_FRACTION:
            raise DataError(f"{where}: the elevation angles do not form distinct rings ({100 * share:.0f}% of the "
                            f"points lie near one of the {table.beams} rings found by {method}, "
                            f"{100 * FIT_FRACTION:.0f}% are needed)", _GIVE_TABLE)
    log.info("%s: %d-beam table estimated by %s", where, table.beams, method)
    return table


def row_shift_deg(table: BeamTable, trained: BeamTable) -> float:
    """Largest difference between the angles of the same row in two tables of one beam count (degrees)."""
    return float(np.max(np.abs(np.asarray(table.angles_deg) - np.asarray(trained.angles_deg))))


def foreign_table_warning(table: BeamTable, trained: list[BeamTable]) -> str | None:
    """A warning when no table the student trained on puts its rows within a quarter spacing of this one's:
    each row of a column student has learnt the scene at its own elevation, so scores on another table are not
    validated (a sim-32 student scored AUROC 0.44 instead of 0.65 on the same scenes seen by a VLP-32C)."""
    same = [t for t in trained if t.beams == table.beams]
    if not same:
        return None
    spacing = float(np.min(-np.diff(np.asarray(table.angles_deg))))
    shift = min(row_shift_deg(table, t) for t in same)
    if shift <= max(0.05, 0.25 * spacing):
        return None
    return (f"the sequence's beam table ({table.name}) puts its rows up to {shift:.2f} degrees from those the student "
            f"was trained on ({', '.join(sorted({t.name for t in same}))}): the scores are not validated for this "
            f"sensor; train for it, for example `insitu run lidar --set lidar.data.sensor=<preset or sensor file>` "
            f"on simulated scans of its table")


def require_beams(table: BeamTable, expected: int, where: str, trained: bool) -> None:
    """Only the beam count must match the student's; the fix says how to get a student for this sensor."""
    if table.beams == expected:
        return
    if trained:
        fix = (f"train a run for this sensor: `insitu run lidar --data ROOT` on your own {table.beams}-beam "
               f"sequences, or on simulated ones with --set lidar.data.beams={table.beams} --set "
               f"lidar.data.sensor=<preset or sensor file>")
        what = f"the run's student takes {expected} beams"
    else:
        fix = f"set lidar.data.beams={table.beams} (the student is built for the sensor's beam count)"
        what = f"lidar.data.beams={expected}"
    if table.source == "estimated":
        fix += "; if the estimate missed rings that never returned, " + _GIVE_TABLE
    raise DataError(f"{where}: the scans come from a {table.beams}-beam sensor (table {table.name}) but {what}", fix)


_GIVE_TABLE = ("give the sensor's beam table: lidar.data.sensor = one of " + ", ".join(PRESETS) +
               " or a .toml/.json sensor file with beam_angles_deg (`--sensor` for `insitu lidar detect`), "
               "or the angles in lidar.data.beam_angles_deg")


def _same_sensor(a: BeamTable, b: BeamTable, by_order: bool) -> bool:
    """Could two per-scan estimates come from one sensor? A scan may miss a ring that never returned."""
    if by_order:  # ring counts are exact; angles of lasers off the optical centre move with the scene
        return abs(a.beams - b.beams) <= max(1, b.beams // 10)

    def covered(x: BeamTable, y: BeamTable) -> float:
        ya = np.asarray(y.angles_deg)
        return float(np.mean([np.min(np.abs(ya - v)) < max(0.1, 0.3 * _spacing_at(ya, v)) for v in x.angles_deg]))

    return covered(a, b) >= 0.8 and covered(b, a) >= 0.8


def _spacing_at(angles: np.ndarray, v: float) -> float:
    d = np.sort(np.abs(angles - v))
    return float(d[1]) if len(d) > 1 else 1.0


def check_scan(points: np.ndarray, table: BeamTable, where: str) -> None:
    """A given table must span the scan's elevations and, for ring-ordered files, have its ring count."""
    el = _elevation_deg(points)
    a = np.asarray(table.angles_deg)
    margin = max(0.5, float(np.max(-np.diff(a))))
    inside = float(np.mean((el <= a[0] + margin) & (el >= a[-1] - margin))) if len(el) else 1.0
    rings = rings_from_order(points)
    if inside < 0.95 or (rings is not None and len(rings) > table.beams):
        found = f"{len(rings)} rings in beam order, " if rings is not None else ""
        raise DataError(f"{where}: the scan does not fit the beam table {table.name!r} ({table.beams} beams, "
                        f"{a[-1]:.2f} to {a[0]:.2f} degrees): {found}{100 * inside:.0f}% of its points inside "
                        "the table's span", "give the table of the sensor that recorded it, or lidar.data.sensor=auto")


def sequence_table(seq: kitti.Sequence, given: BeamTable | None) -> BeamTable:
    """Read (and so validate) every scan of `seq` and return its beam table: `given`, else estimated.

    Scans from different sensors in one sequence and scans that a given table does not describe are DataErrors
    naming the sequence and what to do."""
    scans = [kitti.read_scan(p) for p in seq.scans]
    if given is None:
        tables = [estimate_table([s], f"{seq.folder}/velodyne/{p.name}") for s, p in zip(scans, seq.scans)]
        by_order = all(t.name.endswith("(beam order)") for t in tables)
        counts = [t.beams for t in tables]
        ref = tables[counts.index(max(sorted(set(counts)), key=counts.count))]
        odd = [(p.name, t.beams) for p, t in zip(seq.scans, tables) if not _same_sensor(t, ref, by_order)]
        if odd:
            desc = ", ".join(f"{name} ({n} beams)" for name, n in odd[:5])
            raise DataError(f"{seq.folder}: scans from sensors with different beam counts or tables: {desc} differ "
                            f"from the {ref.beams}-beam table of the others",
                            "split the sequence so that each holds scans of one sensor")
        table = estimate_table(scans, str(seq.folder)) if len(scans) > 1 else tables[0]
    else:
        table = given
        for s, p in zip(scans, seq.scans):
            check_scan(s, table, f"{seq.folder}/velodyne/{p.name}")
    return table
