"""Lidar datasets for the failure-detection application: the simulated set (cached with checksums) or the
user's SemanticKITTI sequences; splits train (normal scenes, labelled) / pool (unlabelled) / test.

A simulated set lives in `<cache>/lidar-<key>/sequences/NN/` with `splits.json` and `checksums.json` (SHA-256
of every file). The key hashes the data configuration (with the beam table's angles, not the name of the file
that gave them) and the simulator version; a cached set is re-verified before use and rebuilt when a file is
missing or altered.

Every sequence has its own beam table (`tables`): the simulator's, the configured one, or one estimated from the
sequence's scans (`lidar_sensor`); only its beam count has to match the student's.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from insitu.config_lidar import LidarDataConfig
from insitu.data import kitti
from insitu.data.lidar_sim import SIM_VERSION, SensorSpec, simulate_sequence
from insitu.data.lidar_sensor import given_table, require_beams, sequence_table, simulator_table
from insitu.data.range_image import BeamTable
from insitu.errors import DataError
from insitu.rundir import atomic_write_json, sha256_file

log = logging.getLogger(__name__)
SPLITS = ("train", "pool", "test")


@dataclass(frozen=True)
class LidarDataset:
    root: Path  # folder holding sequences/
    splits: dict[str, list[str]]  # split -> sequence folder names
    beams: int
    columns: int
    synthetic: bool
    tables: dict[str, BeamTable]  # sequence folder name -> its beam table

    def table(self, name: str) -> BeamTable:
        return self.tables[name]

    def sequence(self, name: str) -> kitti.Sequence:
        return kitti.open_sequence(self.root / "sequences" / name)

    def folders(self, split: str) -> list[Path]:
        return [self.root / "sequences" / n for n in self.splits[split]]


def cache_root(cfg: LidarDataConfig) -> Path:
    base = cfg.cache_dir or Path(os.environ.get("INSITU_CACHE", Path.home() / ".cache" / "insitu"))
    payload = cfg.model_dump(mode="json", exclude={"cache_dir", "path", "source", "sensor", "beam_angles_deg"})
    payload["angles_deg"] = list(simulator_table(cfg.sensor, cfg.beam_angles_deg, cfg.beams).angles_deg)
    key = hashlib.sha256(json.dumps({**payload, "sim": SIM_VERSION}, sort_keys=True).encode()).hexdigest()[:12]
    return Path(base) / f"lidar-{key}"


def _checksums(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): sha256_file(p) for p in sorted((root / "sequences").rglob("*")) if p.is_file()}


def _verify(root: Path) -> bool:
    try:
        recorded = json.loads((root / "checksums.json").read_text())
    except (OSError, json.JSONDecodeError):
        return False
    return recorded == _checksums(root)


def _one(args: tuple) -> None:
    folder, seed, sensor, scans, anomalies = args
    simulate_sequence(folder, seed, sensor, scans, anomalies)


def _uniform(splits: dict[str, list[str]], table: BeamTable) -> dict[str, BeamTable]:
    return {n: table for names in splits.values() for n in names}


def simulate(cfg: LidarDataConfig, workers: int = 2) -> LidarDataset:
    root = cache_root(cfg)
    table = simulator_table(cfg.sensor, cfg.beam_angles_deg, cfg.beams)
    splits_file = root / "splits.json"
    if splits_file.exists() and _verify(root):
        log.info("lidar data: cached set verified at %s", root)
        splits = json.loads(splits_file.read_text())
        return LidarDataset(root, splits, cfg.beams, cfg.columns, True, _uniform(splits, table))
    staging = root.with_name(f".{root.name}.staging{os.getpid()}")
    shutil.rmtree(staging, ignore_errors=True)
    sensor = SensorSpec(cfg.beams, cfg.columns, cfg.max_range_m, cfg.range_noise_m, cfg.dropout, table.angles_deg)
    rng = np.random.default_rng([cfg.seed, 7])
    jobs, splits = [], {s: [] for s in SPLITS}
    counts = {"train": cfg.train_sequences, "pool": cfg.pool_sequences, "test": cfg.test_sequences}
    for split_id, split in enumerate(SPLITS):
        for k in range(counts[split]):
            name = f"{len(jobs):02d}"
            n_anom = 0 if split == "train" else int(rng.integers(cfg.anomalies_min, max(cfg.anomalies_min,
                                                                                         cfg.anomalies_max) + 1))
            jobs.append((staging / "sequences" / name, (cfg.seed, split_id, k), sensor, cfg.scans_per_sequence,
                         n_anom))
            splits[split].append(name)
    log.info("lidar data: simulating %d sequences x %d scans (%d beams x %d columns)", len(jobs),
             cfg.scans_per_sequence, cfg.beams, cfg.columns)
    if workers > 1:
        with ProcessPoolExecutor(workers) as ex:
            list(ex.map(_one, jobs))
    else:
        for j in jobs:
            _one(j)
    atomic_write_json(staging / "splits.json", splits)
    atomic_write_json(staging / "checksums.json", _checksums(staging))
    shutil.rmtree(root, ignore_errors=True)
    root.parent.mkdir(parents=True, exist_ok=True)
    os.replace(staging, root)
    return LidarDataset(root, splits, cfg.beams, cfg.columns, True, _uniform(splits, table))


def from_semantickitti(cfg: LidarDataConfig) -> LidarDataset:
    """User sequences: sequences/NN/ under cfg.path; the last one is the test split, the rest are the pool;
    sequences with labels also train the supervised stream. Every scan is read and each sequence's beam table
    resolved (given, or estimated from its scans); a beam count other than cfg.beams is a DataError."""
    if cfg.path is None or not (Path(cfg.path) / "sequences").is_dir():
        raise DataError(f"lidar.data.path={cfg.path} has no sequences/ folder", "point at a SemanticKITTI root")
    names = sorted(p.name for p in (Path(cfg.path) / "sequences").iterdir() if p.is_dir())
    if len(names) < 2:
        raise DataError(f"{cfg.path}/sequences holds {len(names)} sequence(s); at least 2 are needed",
                        "add a sequence for the test split")
    root = Path(cfg.path)
    labelled = [n for n in names[:-1] if (root / "sequences" / n / "labels").is_dir()]
    if not labelled:
        raise DataError("no sequence besides the test one has labels/: the supervised stream cannot be trained",
                        "add SemanticKITTI labels to at least one sequence")
    given = given_table(cfg.sensor, cfg.beam_angles_deg)
    tables = {n: sequence_table(kitti.open_sequence(root / "sequences" / n), given) for n in names}
    for n, t in tables.items():
        require_beams(t, cfg.beams, str(root / "sequences" / n), trained=False)
    return LidarDataset(root, {"train": labelled, "pool": names[:-1], "test": names[-1:]}, cfg.beams, cfg.columns,
                        False, tables)
