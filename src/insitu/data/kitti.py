"""SemanticKITTI sequences: strict readers and writers for scans, labels and poses.

Layout of a sequence folder (as in SemanticKITTI):
    velodyne/000000.bin   float32 records (x, y, z, remission), 16 bytes per point
    labels/000000.label   uint32 per point: semantic class in the low 16 bits, instance id in the high 16
    poses.txt             one 3x4 row-major pose matrix (12 numbers) per scan, scan -> first scan frame
Labels and poses are optional on read; whatever is present is checked against the scans.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from insitu.errors import DataError
from insitu.rundir import atomic_write_bytes, atomic_write_text


def read_scan(path: Path) -> np.ndarray:
    """(N, 4) float32 x, y, z, remission."""
    try:
        raw = Path(path).read_bytes()
    except OSError as exc:
        raise DataError(f"cannot read scan {path}: {exc.strerror}", "check the path") from None
    if len(raw) % 16:
        raise DataError(f"scan {path} has {len(raw)} bytes, not a multiple of 16 (x, y, z, remission as float32)",
                        "the file is truncated or not a KITTI .bin scan")
    pts = np.frombuffer(raw, dtype="<f4").reshape(-1, 4)
    if len(pts) == 0:
        raise DataError(f"scan {path} is empty", "remove it from the sequence or re-export it")
    bad = ~np.isfinite(pts).all(axis=1)
    if bad.any():
        raise DataError(f"scan {path} has {int(bad.sum())} points with NaN/inf (first at index {int(np.argmax(bad))})",
                        "filter invalid returns before writing the scan")
    return pts.copy()


def read_label(path: Path, n_points: int) -> tuple[np.ndarray, np.ndarray]:
    """(semantic uint16, instance uint16) for a scan of n_points."""
    try:
        raw = Path(path).read_bytes()
    except OSError as exc:
        raise DataError(f"cannot read labels {path}: {exc.strerror}", "check the path") from None
    if len(raw) % 4:
        raise DataError(f"label file {path} has {len(raw)} bytes, not a multiple of 4 (uint32 per point)",
                        "the file is truncated")
    lab = np.frombuffer(raw, dtype="<u4")
    if len(lab) != n_points:
        raise DataError(f"label file {path} has {len(lab)} labels but its scan has {n_points} points",
                        "labels and scans must come from the same export")
    return (lab & 0xFFFF).astype(np.uint16), (lab >> 16).astype(np.uint16)


def read_poses(path: Path, n_scans: int | None = None) -> np.ndarray:
    """(S, 4, 4) float64 homogeneous poses."""
    try:
        lines = Path(path).read_text().splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(f"cannot read poses {path}: {exc}", "check the path") from None
    poses = []
    for i, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            vals = [float(v) for v in line.split()]
        except ValueError:
            raise DataError(f"poses {path} line {i}: not numbers: {line[:60]!r}", "write 12 numbers per line") from None
        if len(vals) != 12 or not all(math.isfinite(v) for v in vals):
            raise DataError(f"poses {path} line {i}: {len(vals)} values, expected 12 finite numbers (3x4 matrix)",
                            "write one 3x4 row-major pose per scan")
        m = np.eye(4)
        m[:3] = np.array(vals).reshape(3, 4)
        poses.append(m)
    if n_scans is not None and len(poses) != n_scans:
        raise DataError(f"poses {path} has {len(poses)} poses for {n_scans} scans", "one pose line per scan")
    return np.array(poses).reshape(-1, 4, 4)


def write_scan(path: Path, points: np.ndarray) -> None:
    pts = np.asarray(points, dtype="<f4")
    if pts.ndim != 2 or pts.shape[1] != 4:
        raise DataError(f"a scan is (N, 4) x, y, z, remission; got {pts.shape}", "stack the four columns")
    atomic_write_bytes(Path(path), pts.tobytes())


def write_label(path: Path, semantic: np.ndarray, instance: np.ndarray | None = None) -> None:
    sem = np.asarray(semantic, dtype=np.uint32)
    inst = np.zeros_like(sem) if instance is None else np.asarray(instance, dtype=np.uint32)
    if sem.max(initial=0) > 0xFFFF or inst.max(initial=0) > 0xFFFF:
        raise DataError("semantic and instance ids must fit 16 bits", "renumber them")
    atomic_write_bytes(Path(path), ((inst << 16) | sem).astype("<u4").tobytes())


def write_poses(path: Path, poses: np.ndarray) -> None:
    rows = [" ".join(f"{v:.9e}" for v in p[:3].reshape(-1)) for p in np.asarray(poses, dtype=np.float64)]
    atomic_write_text(Path(path), "\n".join(rows) + "\n")


@dataclass
class Sequence:
    folder: Path
    scans: list[Path]
    labels: list[Path] | None
    poses: np.ndarray | None

    def __len__(self) -> int:
        return len(self.scans)


def open_sequence(folder: Path) -> Sequence:
    """List a sequence's scans and check that labels and poses (when present) match them."""
    folder = Path(folder)
    vel = folder / "velodyne"
    scans = sorted(vel.glob("*.bin")) if vel.is_dir() else []
    if not scans:
        raise DataError(f"{folder} has no velodyne/*.bin scans", "point at a SemanticKITTI sequence folder")
    labels = None
    if (folder / "labels").is_dir():
        labels = [folder / "labels" / f"{s.stem}.label" for s in scans]
        missing = [p.name for p in labels if not p.exists()]
        if missing:
            raise DataError(f"{folder}/labels lacks {len(missing)} label files (first: {missing[0]})",
                            "export labels for every scan, or remove the labels folder")
    poses = read_poses(folder / "poses.txt", len(scans)) if (folder / "poses.txt").exists() else None
    return Sequence(folder, scans, labels, poses)
