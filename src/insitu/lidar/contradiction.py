"""Per-point contradiction codes of the two streams, and failure clusters made from them. No label is used.

Codes (one per point):
    0  both streams say static
    1  both say dynamic
    2  only the self-supervised (motion) stream says dynamic
    3  only the supervised (segmentation) stream says dynamic
Points with codes 2 or 3 are clustered on position (DBSCAN, eps ~1 m, at least ~25 points); the points of those
clusters are the flagged failures (pseudo-labels for the student). Isolated contradicting points are noise.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from insitu.errors import DataError

BOTH_STATIC, BOTH_DYNAMIC, ONLY_SELF_SUPERVISED, ONLY_SUPERVISED = 0, 1, 2, 3


@dataclass(frozen=True)
class Thresholds:
    cluster_eps_m: float = 1.0
    cluster_min_points: int = 25


def codes(supervised_dynamic: np.ndarray, self_supervised_dynamic: np.ndarray) -> np.ndarray:
    sup = np.asarray(supervised_dynamic, dtype=bool)
    ssl = np.asarray(self_supervised_dynamic, dtype=bool)
    if sup.shape != ssl.shape:
        raise DataError(f"the streams disagree on the number of points: {sup.shape} vs {ssl.shape}",
                        "run both streams on the same scan")
    out = np.full(sup.shape, BOTH_STATIC, np.uint8)
    out[sup & ssl] = BOTH_DYNAMIC
    out[ssl & ~sup] = ONLY_SELF_SUPERVISED
    out[sup & ~ssl] = ONLY_SUPERVISED
    return out


def failure_flags(xyz: np.ndarray, point_codes: np.ndarray, th: Thresholds = Thresholds()) -> np.ndarray:
    """Boolean per point: member of a dense cluster of contradicting points."""
    from sklearn.cluster import DBSCAN

    pts = np.asarray(xyz, dtype=np.float64)[:, :3]
    contra = np.isin(point_codes, (ONLY_SELF_SUPERVISED, ONLY_SUPERVISED))
    flags = np.zeros(len(pts), bool)
    if contra.sum() < th.cluster_min_points:
        return flags
    labels = DBSCAN(eps=th.cluster_eps_m, min_samples=th.cluster_min_points).fit_predict(pts[contra])
    flags[np.where(contra)[0][labels >= 0]] = True
    return flags
