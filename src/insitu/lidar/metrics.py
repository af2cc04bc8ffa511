"""Metrics of failure detection against ground-truth anomalies, and of the supervised stream's segmentation."""

from __future__ import annotations

import numpy as np


def binary(flag: np.ndarray, truth: np.ndarray) -> dict[str, float]:
    """Per-point TP/FP/FN/TN as fractions of all points, and the IoU of flagged vs true points."""
    f, t = np.asarray(flag, bool), np.asarray(truth, bool)
    n = max(len(f), 1)
    tp, fp, fn = int((f & t).sum()), int((f & ~t).sum()), int((~f & t).sum())
    tn = len(f) - tp - fp - fn
    return {"tp": tp / n, "fp": fp / n, "fn": fn / n, "tn": tn / n, "iou": tp / max(tp + fp + fn, 1),
            "points": len(f), "true_points": int(t.sum()), "flagged_points": int(f.sum())}


def scores(score: np.ndarray, truth: np.ndarray) -> dict[str, float]:
    """AUROC, AUPR (average precision) and FPR at 95% TPR of a continuous score."""
    from sklearn.metrics import average_precision_score, roc_auc_score, roc_curve

    t = np.asarray(truth, bool)
    if t.all() or not t.any():
        return {"auroc": float("nan"), "aupr": float("nan"), "fpr95": float("nan")}
    fpr, tpr, _ = roc_curve(t, score)
    return {"auroc": float(roc_auc_score(t, score)), "aupr": float(average_precision_score(t, score)),
            "fpr95": float(fpr[np.searchsorted(tpr, 0.95, side="left")])}


def roc(score: np.ndarray, truth: np.ndarray, points: int = 200) -> dict[str, list[float]]:
    from sklearn.metrics import roc_curve

    fpr, tpr, _ = roc_curve(np.asarray(truth, bool), score)
    keep = np.unique(np.linspace(0, len(fpr) - 1, min(points, len(fpr))).astype(int))
    return {"fpr": fpr[keep].round(5).tolist(), "tpr": tpr[keep].round(5).tolist()}


def best_f1_threshold(score: np.ndarray, target: np.ndarray) -> float:
    """The threshold that maximises F1 of `score >= th` against a (pseudo-)label."""
    from sklearn.metrics import precision_recall_curve

    t = np.asarray(target, bool)
    if not t.any():
        return float(np.max(score)) + 1.0
    p, r, th = precision_recall_curve(t, score)
    f1 = 2 * p[:-1] * r[:-1] / np.maximum(p[:-1] + r[:-1], 1e-12)
    return float(th[int(np.argmax(f1))])


def miou(pred: np.ndarray, truth: np.ndarray, k: int, ignore: int) -> tuple[float, list[float]]:
    ok = truth != ignore
    ious = []
    for c in range(k):
        p, t = (pred == c) & ok, (truth == c) & ok
        u = (p | t).sum()
        ious.append(float((p & t).sum() / u) if u else float("nan"))
    return float(np.nanmean(ious)), ious


def per_category(category: np.ndarray, flag: np.ndarray, score: np.ndarray | None = None) -> dict[str, dict]:
    """Per anomaly category: points, recall of the flags and (with a score) AUROC of that category's points
    against the normal points."""
    from insitu.data.lidar_scene import ANOMALY_CATEGORIES

    out: dict[str, dict] = {}
    normal = category == 0
    for cat, name in ANOMALY_CATEGORIES.items():
        m = category == cat
        if not m.any():
            continue
        row: dict = {"points": int(m.sum()), "recall": float(np.asarray(flag, bool)[m].mean())}
        if score is not None:
            sel = m | normal
            row["auroc"] = scores(np.asarray(score)[sel], m[sel])["auroc"]
        out[name] = row
    return out
