"""The built-in synthetic spinning lidar: sequences of scans in the SemanticKITTI layout, with anomalies.

The sensor (any beam table: by default the uniform 16/32/64-beam tables of `range_image`; `columns` azimuth
steps per turn, 10 Hz) rides
on an ego vehicle driving along the road with a gently swaying heading. Each scan is ray cast against the scene
(`lidar_raycast`) with Gaussian range noise, random dropouts (more at grazing incidence and on dark surfaces) and
a remission from the surface albedo and the incidence angle. A sequence folder holds velodyne/, labels/,
poses.txt and, kept aside for evaluation only, anomaly/*.label (uint32 anomaly category per point, 0 = normal).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from insitu.data import kitti
from insitu.data.lidar_raycast import GROUND, cast
from insitu.data.lidar_scene import MOVING_ID, ROAD, ROAD_HALF, SENSOR_HEIGHT, SIDEWALK, make_scene
from insitu.data.range_image import BeamTable, sim_table

SCAN_HZ = 10.0
SIM_VERSION = 1


@dataclass(frozen=True)
class SensorSpec:
    beams: int = 32
    columns: int = 512
    max_range_m: float = 70.0
    range_noise_m: float = 0.015
    dropout: float = 0.01
    angles_deg: tuple[float, ...] | None = None  # elevation angles, top first; None: the uniform sim table

    @property
    def table(self) -> BeamTable:
        if self.angles_deg is None:
            return sim_table(self.beams)
        table = BeamTable.from_angles(self.angles_deg, "simulated sensor", "simulator")
        if table.beams != self.beams:
            raise ValueError(f"SensorSpec: {table.beams} angles for {self.beams} beams")
        return table


@dataclass(frozen=True)
class SimScan:
    points: np.ndarray  # (N,4) float32 sensor frame
    semantic: np.ndarray  # (N,) uint16 SemanticKITTI ids (anomalies: 0)
    instance: np.ndarray  # (N,) uint16
    anomaly: np.ndarray  # (N,) uint16 category, 0 = normal


def ray_directions(table: BeamTable, columns: int) -> np.ndarray:
    """(beams*columns, 3) unit vectors, beam-major, in the sensor frame (column c at azimuth 2*pi*c/columns)."""
    el = table.elevations()[:, None]
    az = (2 * np.pi * np.arange(columns) / columns)[None, :]
    return np.stack([np.cos(el) * np.cos(az), np.cos(el) * np.sin(az), np.sin(el) * np.ones_like(az)],
                    axis=-1).reshape(-1, 3)


def _rz(a: float) -> np.ndarray:
    c, s = np.cos(a), np.sin(a)
    return np.array([[c, -s, 0], [s, c, 0], [0, 0, 1.0]])


def simulate_scan(scene: dict, position: np.ndarray, heading: float, time: float, sensor: SensorSpec,
                  rng: np.random.Generator, dirs: np.ndarray) -> SimScan:
    rot = _rz(heading)
    hits = cast(position, dirs @ rot.T, scene, time, sensor.max_range_m, sensor.columns, heading)
    ok = hits.prim > -2
    prim = hits.prim
    albedo = np.where(prim >= 0, scene["albedo"][np.maximum(prim, 0)], 0.0)
    world = position + hits.t[:, None] * (dirs @ rot.T)
    with np.errstate(invalid="ignore"):
        on_road = np.abs(world[:, 1]) < ROAD_HALF
    albedo = np.where(prim == GROUND, np.where(on_road, 0.12, 0.28), albedo)
    p_drop = sensor.dropout + 0.3 * (hits.cos_incidence < 0.12) + 0.1 * (albedo < 0.1)
    ok &= rng.random(len(dirs)) >= p_drop
    idx = np.where(ok)[0]
    rng_m = hits.t[idx] + rng.normal(0, sensor.range_noise_m, len(idx))
    xyz = dirs[idx] * rng_m[:, None]
    rem = np.clip(albedo[idx] * (0.25 + 0.75 * hits.cos_incidence[idx]) + rng.normal(0, 0.03, len(idx)), 0, 1)
    p = prim[idx]
    pi = np.maximum(p, 0)
    sem = np.where(p == GROUND, np.where(on_road[idx], ROAD, SIDEWALK), scene["semantic"][pi])
    moving = (np.linalg.norm(scene["velocity"][pi], axis=1) > 0.1) & (p >= 0)
    for static_id, moving_id in MOVING_ID.items():
        sem = np.where(moving & (sem == static_id), moving_id, sem)
    inst = np.where(p == GROUND, 0, scene["instance"][pi])
    anomaly = np.where(p == GROUND, 0, scene["anomaly"][pi])
    pts = np.column_stack([xyz, rem]).astype(np.float32)
    return SimScan(pts, sem.astype(np.uint16), inst.astype(np.uint16), anomaly.astype(np.uint16))


def simulate_sequence(folder: Path, seed: tuple[int, ...], sensor: SensorSpec, scans: int, n_anomalies: int) -> None:
    """Write one sequence (scans, labels, poses, anomaly labels) into `folder`."""
    rng = np.random.default_rng(list(seed))
    speed = rng.uniform(6, 12)
    duration = scans / SCAN_HZ
    scene = make_scene(rng, 0.0, speed, duration, n_anomalies, sensor.max_range_m).arrays()
    dirs = ray_directions(sensor.table, sensor.columns)
    sway_a, sway_w, phase = rng.uniform(0.01, 0.05), rng.uniform(0.5, 1.5), rng.uniform(0, 2 * np.pi)
    mats = []
    for i in range(scans):
        t = i / SCAN_HZ
        heading = sway_a * np.sin(sway_w * t + phase)
        pos = np.array([speed * t, -1.6 + 0.3 * np.sin(0.3 * t + phase), SENSOR_HEIGHT])
        scan = simulate_scan(scene, pos, heading, t, sensor, rng, dirs)
        name = f"{i:06d}"
        kitti.write_scan(folder / "velodyne" / f"{name}.bin", scan.points)
        kitti.write_label(folder / "labels" / f"{name}.label", scan.semantic, scan.instance)
        kitti.write_label(folder / "anomaly" / f"{name}.label", scan.anomaly)
        m = np.eye(4)
        m[:3, :3], m[:3, 3] = _rz(heading), pos
        mats.append(m)
    first = np.linalg.inv(mats[0])
    kitti.write_poses(folder / "poses.txt", np.array([first @ m for m in mats]))


def read_anomaly(folder: Path, scan_stem: str, n_points: int) -> np.ndarray:
    """Ground-truth anomaly category per point of a simulated scan (evaluation only)."""
    cat, _ = kitti.read_label(folder / "anomaly" / f"{scan_stem}.label", n_points)
    return cat
