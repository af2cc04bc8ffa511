"""The self-supervised stream: which points move, from two consecutive scans and no label.

1. The previous scan is brought into the current scan's frame with the ego-motion (poses, or scan registration
   when a sequence has none), and both are cut to the range the method trusts (~25 m).
2. The ground is removed (RANSAC plane), then the current points are clustered on position (DBSCAN).
3. Scene flow: for each position cluster a rigid translation is fitted by a few ICP iterations against the
   previous scan (seeded by zero and by the median nearest-neighbour flow); every point's flow is that
   translation plus its nearest-neighbour residual averaged over its k nearest neighbours (seeds: the median
   nearest-neighbour flow and the centroid shift to the previous points around the cluster; a translation is
   kept only when it fits clearly better than standing still, because ICP slides freely along walls). Plain nearest-neighbour flow alone is not coherent on
   a moving object: its points match the ground below or the overlap with its own previous position.
4. Each position cluster is split by DBSCAN on flow; a flow cluster is dynamic when its flow is coherent
   (normalised std below ~0.12) and its median speed is between ~4 and ~80 km/h.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.spatial import cKDTree


@dataclass(frozen=True)
class MotionParams:
    max_range_m: float = 25.0
    ground_tol_m: float = 0.25
    cluster_eps_m: float = 0.7
    cluster_min_points: int = 8
    flow_eps_m: float = 0.25
    flow_min_points: int = 5
    coherence: float = 0.12
    min_speed_kmh: float = 4.0
    max_speed_kmh: float = 80.0
    icp_iters: int = 8
    flow_smooth_k: int = 10
    scan_hz: float = 10.0


@dataclass(frozen=True)
class MotionResult:
    dynamic: np.ndarray  # (N,) bool
    speed_kmh: np.ndarray  # (N,) float, 0 outside clusters
    confidence: np.ndarray  # (N,) float in [0, 1]: how clearly the point moves
    considered: np.ndarray  # (N,) bool: within range and not ground


def transform(xyz: np.ndarray, m: np.ndarray) -> np.ndarray:
    return xyz @ m[:3, :3].T + m[:3, 3]


def ground_mask(xyz: np.ndarray, tol: float, seed: int = 0, iters: int = 60) -> np.ndarray:
    """Points within `tol` of the dominant near-horizontal plane (RANSAC over the lower half of the points)."""
    if len(xyz) < 3:
        return np.zeros(len(xyz), bool)
    rng = np.random.default_rng(seed)
    low = xyz[xyz[:, 2] <= np.median(xyz[:, 2])]
    best, best_n = None, -1
    for _ in range(iters):
        a, b, c = low[rng.choice(len(low), 3, replace=False)]
        n = np.cross(b - a, c - a)
        norm = np.linalg.norm(n)
        if norm < 1e-9 or abs(n[2]) / norm < 0.9:
            continue
        n = n / norm
        count = int((np.abs((low - a) @ n) < tol).sum())
        if count > best_n:
            best, best_n = (n, a), count
    if best is None:
        return np.zeros(len(xyz), bool)
    n, a = best
    return np.abs((xyz - a) @ n) < tol


def _fit_error(pts: np.ndarray, tree: cKDTree, t: np.ndarray) -> float:
    d, _ = tree.query(pts - t, distance_upper_bound=1.0)
    return float(np.where(np.isfinite(d), d, 1.0).mean())


def _icp_translation(pts: np.ndarray, tree: cKDTree, prev: np.ndarray, iters: int) -> tuple[np.ndarray, float]:
    """Rigid translation of a cluster since the previous scan. Standing still (t = 0, no iteration) is the
    default: a motion is kept only when it explains the points clearly better (error below 0.7x and 3 cm under
    that of t = 0), so walls and hedges, along which ICP slides freely, stay static."""
    d0, j0 = tree.query(pts, distance_upper_bound=3.0)
    ok = np.isfinite(d0)
    inits = [np.median(pts[ok] - prev[j0[ok]], axis=0)] if ok.sum() >= 3 else []
    lo, hi = pts.min(0) - 2.2, pts.max(0) + 2.2  # the centroid shift to the previous points around the cluster
    around = prev[np.all((prev >= lo) & (prev <= hi), axis=1)]
    if len(around) >= 3:
        inits.append(pts.mean(0) - around.mean(0))
    err0 = _fit_error(pts, tree, np.zeros(3))
    best_t, best_err = np.zeros(3), err0
    for t in inits:
        for k in range(iters):
            bound = max(0.4, 2.0 * (1 - k / max(iters - 1, 1)))
            d, j = tree.query(pts - t, distance_upper_bound=bound)
            ok = np.isfinite(d)
            if ok.sum() < 3:
                break
            t = t + np.median((pts - t)[ok] - prev[j[ok]], axis=0)
        err = _fit_error(pts, tree, t)
        if err < min(0.7 * err0, err0 - 0.03) and err < best_err:
            best_t, best_err = t, err
    return best_t, best_err


def _smooth(pts: np.ndarray, resid: np.ndarray, k: int) -> np.ndarray:
    """Mean residual over each point's k nearest neighbours in its cluster: the sampling noise of
    nearest-neighbour matching between two sparse scans averages out, a real deformation does not."""
    k = min(k, len(pts))
    if k <= 1:
        return resid
    _, j = cKDTree(pts).query(pts, k=k)
    return resid[j].mean(axis=1)


def motion(cur: np.ndarray, prev_in_cur: np.ndarray, p: MotionParams = MotionParams()) -> MotionResult:
    """Per-point dynamic/static of `cur` (N,3) given the previous scan already in cur's frame (M,3)."""
    from sklearn.cluster import DBSCAN

    n = len(cur)
    dynamic, speed, conf = np.zeros(n, bool), np.zeros(n), np.zeros(n)
    near = np.linalg.norm(cur[:, :2], axis=1) <= p.max_range_m
    ground = ground_mask(cur, p.ground_tol_m)
    considered = near & ~ground
    prev_near = np.linalg.norm(prev_in_cur[:, :2], axis=1) <= p.max_range_m + 3
    prev = prev_in_cur[prev_near & ~ground_mask(prev_in_cur, p.ground_tol_m)]
    idx = np.where(considered)[0]
    if len(idx) < p.cluster_min_points or len(prev) < 3:
        return MotionResult(dynamic, speed, conf, considered)
    tree = cKDTree(prev)
    pos_labels = DBSCAN(eps=p.cluster_eps_m, min_samples=p.cluster_min_points).fit_predict(cur[idx])
    for lab in np.unique(pos_labels[pos_labels >= 0]):
        members = idx[pos_labels == lab]
        pts = cur[members]
        t, _ = _icp_translation(pts, tree, prev, p.icp_iters)
        d, j = tree.query(pts - t, distance_upper_bound=1.0)
        resid = np.where(np.isfinite(d)[:, None], (pts - t) - prev[np.minimum(j, len(prev) - 1)], 0.0)
        flow = t + _smooth(pts, resid, p.flow_smooth_k)
        flow_labels = DBSCAN(eps=p.flow_eps_m, min_samples=p.flow_min_points).fit_predict(flow)
        for fl in np.unique(flow_labels[flow_labels >= 0]):
            sel = flow_labels == fl
            f = flow[sel]
            mean = np.linalg.norm(f.mean(axis=0))
            nstd = float(np.linalg.norm(f.std(axis=0)) / max(mean, 1e-9))
            kmh = float(np.median(np.linalg.norm(f, axis=1)) * p.scan_hz * 3.6)
            moving = nstd < p.coherence and p.min_speed_kmh <= kmh <= p.max_speed_kmh
            speed[members[sel]] = kmh
            dynamic[members[sel]] = moving
            c = np.clip(kmh / (2 * p.min_speed_kmh), 0, 1) * np.clip(2 - nstd / p.coherence, 0, 1)
            conf[members[sel]] = c if kmh <= p.max_speed_kmh else 0.0
    return MotionResult(dynamic, speed, conf, considered)
