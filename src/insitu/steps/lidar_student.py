"""Lidar steps `distill` (the per-column student, float then Brevitas QAT, on the two-stream pseudo-labels of
the pool: no ground truth is read) and `export` (QuantModel IR + QONNX, reference == Brevitas on every test
column, the test vectors of the C and RTL simulations, and the student's metrics from the integer reference,
which is exactly what the firmware computes)."""

from __future__ import annotations

import logging

import numpy as np
import torch
from torch.nn import functional as F

from insitu.config import RunConfig
from insitu.data import kitti
from insitu.distill.checkpoint import load_checkpoint, save_checkpoint
from insitu.distill.export import export_qonnx, export_quantmodel, verify_against_brevitas, verify_qonnx
from insitu.distill.student import load_float_into_quant, weight_params
from insitu.distill.train import FitSpec, fit, resolve_device, steps_for
from insitu.errors import MismatchError
from insitu.ir import reference
from insitu.lidar import column_student as cs
from insitu.lidar import metrics
from insitu.pipeline import StepResult
from insitu.rundir import RunDir, atomic_savez, atomic_write_json
from insitu.sim.vectors import save_vectors
from insitu.steps.lidar_data import load_dataset
from insitu.steps.lidar_streams import truth_of

log = logging.getLogger(__name__)


def split_columns(run: RunDir, cfg: RunConfig, split: str) -> dict[str, np.ndarray]:
    """Student inputs of every column of a split, with per-cell targets and the per-point maps back."""
    ds = load_dataset(run)
    d = cfg.lidar.data
    xs, tgt, flag, valid, cell_of_point, offsets, truth = [], [], [], [], [], [0], []
    w = cfg.lidar.distill.flag_weight
    for folder in ds.folders(split):
        arr = dict(np.load(run.path("streams", f"{folder.name}.npz"), allow_pickle=False))
        seq = kitti.open_sequence(folder)
        gt = truth_of(folder, arr) if split == "test" else None
        for i, scan in enumerate(seq.scans):
            pts = kitti.read_scan(scan)
            a, b = arr["offsets"][i], arr["offsets"][i + 1]
            img, proj = cs.feature_image(pts, ds.table(folder.name), d.columns)
            xs.append(cs.columns_of(img, cfg.lidar.student.context))
            soft = w * arr["flag"][a:b] + (1 - w) * arr["teacher_score"][a:b]
            tgt.append(proj.image(soft.astype(np.float32)).T)
            flag.append(proj.image(arr["flag"][a:b]).T)
            valid.append((proj.index >= 0).T)
            base = sum(len(x) for x in xs[:-1])
            cell_of_point.append((base + proj.column) * d.beams + proj.beam)
            offsets.append(offsets[-1] + len(pts))
            if gt is not None:
                truth.append(gt[0][a:b])
    out = {"x": np.concatenate(xs), "target": np.concatenate(tgt), "flag": np.concatenate(flag),
           "valid": np.concatenate(valid), "cell_of_point": np.concatenate(cell_of_point),
           "offsets": np.array(offsets)}
    if truth:
        out["anomaly"] = np.concatenate(truth)
    return out


def _student_config(cfg: RunConfig) -> dict:
    return {**cfg.lidar.student.model_dump(mode="json"), "beams": cfg.lidar.data.beams}


def run_distill(cfg: RunConfig, run: RunDir) -> StepResult:
    pool = split_columns(run, cfg, "pool")
    device = resolve_device(cfg.device)
    tgt = torch.from_numpy(pool["target"]).float().to(device)
    mask = torch.from_numpy(pool["valid"]).float().to(device)
    pos = float((pool["target"] * pool["valid"]).sum())
    neg = float(pool["valid"].sum()) - pos
    pos_weight = torch.tensor(float(np.clip(neg / max(pos, 1.0), 1.0, 50.0)), device=device)

    def loss_fn(logits: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
        idx = idx.to(device)
        per = F.binary_cross_entropy_with_logits(logits, tgt[idx], reduction="none", pos_weight=pos_weight)
        return (per * mask[idx]).sum() / mask[idx].sum().clamp(min=1)

    dc, beams = cfg.lidar.distill, cfg.lidar.data.beams
    torch.manual_seed(cfg.seed)
    float_model = cs.build(cfg.lidar.student, beams, quantized=False)
    n_float = steps_for(dc.float_epochs, len(pool["x"]), dc.batch_size) if dc.float_epochs else 0
    if n_float:
        fit(float_model, pool["x"], loss_fn, FitSpec(n_float, dc.batch_size, dc.lr, 1e-4, False, seed=cfg.seed),
            device, "column student float")
    torch.manual_seed(cfg.seed)
    quant = cs.build(cfg.lidar.student, beams, quantized=True)
    load_float_into_quant(float_model.cpu(), quant)
    n_qat = steps_for(dc.qat_epochs, len(pool["x"]), dc.batch_size)
    fit(quant, pool["x"], loss_fn, FitSpec(n_qat, dc.batch_size, dc.qat_lr, 1e-4, False, seed=cfg.seed + 1),
        device, "column student QAT")
    outs = []
    for name, model, kind in (("float", float_model, "column_float"), ("qat", quant, "column_quant")):
        path = run.path("student", f"{name}.pt")
        save_checkpoint(path, model.cpu(), kind, _student_config(cfg))
        outs.append(path)
    summary = {"pool_columns": len(pool["x"]), "pos_weight": float(pos_weight), "steps": n_float + n_qat,
               "params": weight_params(quant), "pool_flagged_cells": int((pool["flag"] & pool["valid"]).sum())}
    return StepResult(outs, summary)


def load_column_student(run: RunDir, cfg: RunConfig) -> torch.nn.Sequential:
    model = cs.build(cfg.lidar.student, cfg.lidar.data.beams, quantized=True)
    load_checkpoint(run.path("student", "qat.pt"), model, "column_quant", _student_config(cfg))
    return model.eval()


def _pick_vectors(test: dict, n: int, seed: int) -> np.ndarray:
    """Test columns for C/RTL simulation: half from columns with a flagged or anomalous cell, half at random."""
    rng = np.random.default_rng(seed)
    n_cols = len(test["x"])
    hot = np.unique(np.where(test["flag"].any(1))[0])
    if "anomaly" in test:
        an_cells = test["cell_of_point"][test["anomaly"] > 0] // test["x"].shape[1]
        hot = np.unique(np.concatenate([hot, an_cells]))
    k = min(len(hot), n // 2)
    chosen = rng.choice(hot, k, replace=False) if k else np.zeros(0, np.int64)
    rest = np.setdiff1d(np.arange(n_cols), chosen)
    chosen = np.concatenate([chosen, rng.choice(rest, min(n - k, len(rest)), replace=False)])
    return np.sort(chosen)


def run_export(cfg: RunConfig, run: RunDir) -> StepResult:
    student = load_column_student(run, cfg)
    beams, width = cfg.lidar.data.beams, cs.input_width(cfg.lidar.student)
    qm = export_quantmodel(student, (beams, width), cs.beam_names(beams))
    qm.meta.update({"application": "lidar", "features": list(cs.FEATURES), "context": cfg.lidar.student.context})
    test, pool = split_columns(run, cfg, "test"), split_columns(run, cfg, "pool")
    ref = reference.run(qm, test["x"])
    check = verify_against_brevitas(qm, student, test["x"], ref)  # every test column, or MismatchError
    frac = qm.output_type.frac
    score_cells = ref.astype(np.float64) * 2.0 ** -frac  # (cols, beams) logits
    pool_cells = reference.run(qm, pool["x"]).astype(np.float64) * 2.0 ** -frac
    threshold = metrics.best_f1_threshold(pool_cells[pool["valid"]], pool["flag"][pool["valid"]])
    point_score = score_cells.reshape(-1)[test["cell_of_point"]]
    summary: dict = {"reference_vs_brevitas": check, "params": qm.n_params(),
                     "weight_bits": cfg.lidar.student.weight_bits, "act_bits": cfg.lidar.student.act_bits,
                     "threshold_logit": threshold, "tensor_types": [t.hls() for t in qm.tensor_types()]}
    pseudo = test["flag"].reshape(-1)[test["cell_of_point"]].astype(bool)
    summary["agreement"] = {"accuracy": float(((point_score >= threshold) == pseudo).mean()),
                            **{k: v for k, v in metrics.binary(point_score >= threshold, pseudo).items()
                               if k == "iou"}}
    if "anomaly" in test:
        truth = test["anomaly"] > 0
        summary["student"] = {**metrics.scores(point_score, truth),
                              "iou": metrics.binary(point_score >= threshold, truth)["iou"],
                              "binary": metrics.binary(point_score >= threshold, truth),
                              "per_category": metrics.per_category(test["anomaly"], point_score >= threshold,
                                                                   point_score)}
        summary["roc"] = metrics.roc(point_score, truth)
    folder = run.path("export")
    outputs = qm.save(folder)
    pick = _pick_vectors(test, cfg.lidar.distill.vectors, cfg.seed)
    col_has_anomaly = np.zeros(len(test["x"]), np.int64)
    if "anomaly" in test:
        col_has_anomaly[np.unique(test["cell_of_point"][test["anomaly"] > 0] // beams)] = 1
    outputs.append(save_vectors(folder / "vectors.npz", test["x"][pick], col_has_anomaly[pick], ref[pick], frac))
    atomic_savez(folder / "test_scores.npz", score=point_score.astype(np.float32), offsets=test["offsets"],
                 threshold=np.asarray(threshold))
    outputs.append(folder / "test_scores.npz")
    try:
        qpath = export_qonnx(student, (beams, width), folder / "student.qonnx.onnx")
        summary["qonnx"] = verify_qonnx(qpath, test["x"][pick], ref[pick], frac)
        outputs.append(qpath)
    except MismatchError:
        raise
    except Exception as exc:  # noqa: BLE001 - QONNX is a by-product; the IR is the contract
        log.warning("QONNX export failed (%s: %s); the IR is unaffected", type(exc).__name__, exc)
        summary["qonnx"] = f"failed: {type(exc).__name__}: {exc}"
    atomic_write_json(folder / "check.json", summary)
    outputs.append(folder / "check.json")
    return StepResult(outputs, summary)
