"""The two-stream failure detector on one sequence: supervised stream, self-supervised motion stream,
contradiction codes and failure flags per point of every scan (the pseudo-labels of the student).

Scan 0 is judged against scan 1 (the motion stream needs a neighbour scan; the flow simply runs backwards). A
sequence of a single scan has no motion stream: its points keep the supervised stream's outputs, codes are left
at 'both static' and nothing is flagged; the result says so.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import numpy as np

from insitu.config_lidar import MotionConfig
from insitu.data import kitti
from insitu.data.range_image import BeamTable
from insitu.lidar import contradiction, segnet
from insitu.lidar.motion import MotionParams, motion, transform
from insitu.lidar.registration import relative_motions

log = logging.getLogger(__name__)


@dataclass
class ScanResult:
    name: str
    points: np.ndarray  # (N,4)
    cls: np.ndarray  # supervised class per point
    sup_dynamic: np.ndarray
    p_dynamic_sup: np.ndarray
    ssl_dynamic: np.ndarray
    ssl_confidence: np.ndarray
    considered: np.ndarray
    code: np.ndarray
    flag: np.ndarray
    teacher_score: np.ndarray  # soft contradiction confidence in [0,1]


@dataclass
class SequenceResult:
    scans: list[ScanResult] = field(default_factory=list)
    motion_stream: bool = True
    ego_motion: str = "poses"


def motion_params(cfg: MotionConfig) -> MotionParams:
    return MotionParams(max_range_m=cfg.max_range_m, cluster_eps_m=cfg.cluster_eps_m, coherence=cfg.coherence,
                        min_speed_kmh=cfg.min_speed_kmh, max_speed_kmh=cfg.max_speed_kmh,
                        flow_smooth_k=cfg.flow_smooth_k)


def run_sequence(seq: kitti.Sequence, model: segnet.SegNet, table: BeamTable, columns: int,
                 cfg: MotionConfig) -> SequenceResult:
    scans = [kitti.read_scan(p) for p in seq.scans]
    rel = relative_motions(scans, seq.poses) if len(scans) > 1 else [None]
    th = contradiction.Thresholds(cfg.failure_eps_m, cfg.failure_min_points)
    out = SequenceResult(motion_stream=len(scans) > 1, ego_motion="poses" if seq.poses is not None else "registration")
    if len(scans) == 1:
        log.warning("%s has a single scan: no motion stream is possible, running the supervised stream only",
                    seq.folder)
    params = motion_params(cfg)
    for i, pts in enumerate(scans):
        if len(scans) == 1:
            nb = None
        elif i == 0:
            nb = transform(scans[1][:, :3], np.linalg.inv(rel[1]))
        else:
            nb = transform(scans[i - 1][:, :3], rel[i])
        sup = segnet.predict(model, pts, nb, table, columns)
        n = len(pts)
        if nb is None:
            ssl = np.zeros(n, bool)
            conf = np.zeros(n)
            considered = np.zeros(n, bool)
            code = np.zeros(n, np.uint8)
            flag = np.zeros(n, bool)
        else:
            m = motion(pts[:, :3].astype(np.float64), nb, params)
            ssl, conf, considered = m.dynamic, m.confidence, m.considered
            code = contradiction.codes(sup.dynamic & considered, ssl)
            flag = contradiction.failure_flags(pts, code, th)
        score = np.where(considered, np.abs(sup.p_dynamic - conf), 0.0)
        out.scans.append(ScanResult(seq.scans[i].stem, pts, sup.cls, sup.dynamic, sup.p_dynamic, ssl, conf, considered, code,
                                    flag, score))
    return out


ARRAYS = ("cls", "sup_dynamic", "p_dynamic_sup", "ssl_dynamic", "ssl_confidence", "considered", "code", "flag",
          "teacher_score")


def to_arrays(res: SequenceResult) -> dict[str, np.ndarray]:
    """Per-point arrays of every scan concatenated, with `offsets` (S+1) and scan `names`."""
    out = {k: np.concatenate([getattr(s, k) for s in res.scans]) for k in ARRAYS}
    out["offsets"] = np.cumsum([0] + [len(s.points) for s in res.scans])
    out["names"] = np.array([s.name for s in res.scans])
    out["motion_stream"] = np.array(res.motion_stream)
    return out
