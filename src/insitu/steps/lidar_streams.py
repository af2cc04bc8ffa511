"""Lidar step `streams`: the two-stream detector on the pool and test sequences (no label is read), saved per
sequence as the student's pseudo-labels; its metrics against the ground-truth anomalies of the test split, and
the supervised stream's mIoU on the test split's normal classes."""

from __future__ import annotations

import logging
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import torch

from insitu.config import RunConfig
from insitu.data import kitti
from insitu.data.lidar_sim import read_anomaly
from insitu.lidar import metrics, segnet, two_stream
from insitu.pipeline import StepResult
from insitu.rundir import RunDir, atomic_savez, atomic_write_json
from insitu.steps.lidar_data import load_dataset, load_segnet

log = logging.getLogger(__name__)


def _one(args: tuple) -> dict[str, np.ndarray]:
    folder, run_root, cfg_json, table = args
    from insitu.config import RunConfig

    torch.set_num_threads(1)
    cfg = RunConfig.model_validate(cfg_json)
    model = load_segnet(RunDir(Path(run_root)), cfg)
    res = two_stream.run_sequence(kitti.open_sequence(folder), model, table, cfg.lidar.data.columns,
                                  cfg.lidar.motion)
    return two_stream.to_arrays(res)


def truth_of(folder: Path, arrays: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray] | None:
    """(anomaly category, supervised-class ground truth) per point, when the sequence has them."""
    if not (folder / "anomaly").is_dir():
        return None
    seq = kitti.open_sequence(folder)
    cats, cls = [], []
    for i, scan in enumerate(seq.scans):
        n = int(arrays["offsets"][i + 1] - arrays["offsets"][i])
        cats.append(read_anomaly(folder, scan.stem, n))
        cls.append(segnet.class_of(kitti.read_label(seq.labels[i], n)[0]) if seq.labels else np.full(n, 255))
    return np.concatenate(cats), np.concatenate(cls)


def run(cfg: RunConfig, run: RunDir) -> StepResult:
    ds = load_dataset(run)
    jobs = [(f, str(run.root), cfg.model_dump(mode="json"), ds.table(f.name)) for s in ("pool", "test")
            for f in ds.folders(s)]
    with ProcessPoolExecutor(2) as ex:
        results = list(ex.map(_one, jobs))
    outputs, flags, truth, pred_cls, true_cls, score = [], [], [], [], [], []
    for (folder, *_), arr in zip(jobs, results):
        path = run.path("streams", f"{folder.name}.npz")
        atomic_savez(path, **arr)
        outputs.append(path)
        if folder.name in ds.splits["test"]:
            t = truth_of(folder, arr)
            if t is not None:
                flags.append(arr["flag"])
                score.append(arr["teacher_score"])
                truth.append(t[0])
                pred_cls.append(arr["cls"])
                true_cls.append(t[1])
    summary: dict = {"sequences": len(jobs), "pool_flagged_fraction": float(np.mean(np.concatenate(
        [r["flag"] for (f, *_), r in zip(jobs, results) if f.name in ds.splits["pool"]])))}
    if truth:
        f, cat = np.concatenate(flags), np.concatenate(truth)
        t = cat > 0
        summary["two_stream"] = metrics.binary(f, t)
        summary["two_stream"]["per_category"] = metrics.per_category(cat, f)
        summary["two_stream"]["auroc_binary"] = metrics.scores(f.astype(float), t)["auroc"]
        summary["teacher_score"] = metrics.scores(np.concatenate(score), t)
        m, per = metrics.miou(np.concatenate(pred_cls), np.concatenate(true_cls), len(segnet.CLASSES), segnet.IGNORE)
        summary["supervised"] = {"miou": m, "iou": dict(zip(segnet.CLASSES, per))}
    path = run.path("streams", "metrics.json")
    atomic_write_json(path, summary)
    return StepResult(outputs + [path], summary)
