"""Ego-motion by scan registration, for sequences without poses: point-to-point ICP (rigid, SVD) of the previous
scan onto the current one, on non-ground points, seeded with the last estimate (constant velocity)."""

from __future__ import annotations

import numpy as np
from scipy.spatial import cKDTree

from insitu.lidar.motion import ground_mask, transform


def _rigid(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    cs, cd = src.mean(0), dst.mean(0)
    u, _, vt = np.linalg.svd((src - cs).T @ (dst - cd))
    r = vt.T @ u.T
    if np.linalg.det(r) < 0:
        vt[-1] *= -1
        r = vt.T @ u.T
    m = np.eye(4)
    m[:3, :3], m[:3, 3] = r, cd - r @ cs
    return m


def register(prev: np.ndarray, cur: np.ndarray, init: np.ndarray | None = None, iters: int = 25,
             max_points: int = 6000, seed: int = 0) -> np.ndarray:
    """4x4 transform taking `prev` (N,3) points into the frame of `cur` (M,3)."""
    rng = np.random.default_rng(seed)
    p = prev[~ground_mask(prev, 0.25)]
    c = cur[~ground_mask(cur, 0.25)]
    if len(p) > max_points:
        p = p[rng.choice(len(p), max_points, replace=False)]
    tree = cKDTree(c)
    m = np.eye(4) if init is None else init.copy()
    for k in range(iters):
        moved = transform(p, m)
        bound = max(0.3, 2.0 * (1 - k / iters))
        d, j = tree.query(moved, distance_upper_bound=bound)
        ok = np.isfinite(d)
        if ok.sum() < 10:
            break
        m = _rigid(moved[ok], c[j[ok]]) @ m
    return m


def relative_motions(scans: list[np.ndarray], poses: np.ndarray | None) -> list[np.ndarray | None]:
    """For each scan i>0 the transform of scan i-1 into scan i's frame (from poses, else registration)."""
    out: list[np.ndarray | None] = [None]
    last = None
    for i in range(1, len(scans)):
        if poses is not None:
            out.append(np.linalg.inv(poses[i]) @ poses[i - 1])
        else:
            last = register(scans[i - 1][:, :3], scans[i][:, :3], last)
            out.append(last)
    return out
