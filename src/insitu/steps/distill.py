"""Step `distill`: the KD student (float pre-training, then QAT) and the ablation without the teacher.

Both students start from the same seed and see the same split; the ablation trains on the labelled split
with cross-entropy for the same number of optimisation steps (so a KD gain is not a compute gain).
Label-free mode (default when the pool outnumbers the labels): the KD student never sees a label.
"""

from __future__ import annotations

import logging

import numpy as np
import torch

from insitu.config import RunConfig
from insitu.distill.checkpoint import save_checkpoint
from insitu.distill.losses import ce_loss, kd_loss
from insitu.distill.mode import resolve_mode
from insitu.distill.student import build_student, load_float_into_quant, weight_params
from insitu.distill.train import FitSpec, accuracy, confusion, fit, predict_logits, resolve_device, steps_for
from insitu.pipeline import StepResult
from insitu.rundir import RunDir, atomic_write_json
from insitu.steps import data as data_step

log = logging.getLogger(__name__)


def _train_pair(cfg: RunConfig, x: np.ndarray, loss_fn, k: int, size: int, device: torch.device, tag: str,
                sees_input: bool = False):
    """Float pre-training then QAT fine-tuning of one student; returns (float_model, quant_model)."""
    d = cfg.distill
    steps_float = steps_for(d.float_epochs, len(x), d.batch_size) if d.float_epochs else 0
    steps_qat = steps_for(d.qat_epochs, len(x), d.batch_size)
    torch.manual_seed(cfg.seed)
    float_model = build_student(cfg.student, k, size, quantized=False)
    if steps_float:
        fit(float_model, x, loss_fn, FitSpec(steps_float, d.batch_size, d.lr, 1e-4, d.augment, seed=cfg.seed,
                                             flips=cfg.data.flips),
            device, f"{tag} float", sees_input)
    torch.manual_seed(cfg.seed)
    quant_model = build_student(cfg.student, k, size, quantized=True)
    load_float_into_quant(float_model.cpu(), quant_model)
    fit(quant_model, x, loss_fn, FitSpec(steps_qat, d.batch_size, d.qat_lr, 1e-4, d.augment, seed=cfg.seed + 1,
                                         flips=cfg.data.flips),
        device, f"{tag} QAT", sees_input)
    return float_model.cpu(), quant_model.cpu(), steps_float + steps_qat


def train_kd(cfg: RunConfig, data, soft_train: np.ndarray, soft_pool: np.ndarray, mode: str,
             device: torch.device, teacher: torch.nn.Module | None = None):
    """The KD student on the labelled split and the pool (labels only in `labelled` mode); (float, QAT, steps).
    With `distill.teacher_view=online`, `teacher` is run (eval mode, no gradient) on each augmented batch, its
    logits averaged over the four flips when the data allows flips, like the fixed soft labels."""
    k, size = len(data.class_names), data.image_size
    x_kd = np.concatenate([data.train_x, data.pool_x])
    t_kd = torch.from_numpy(np.concatenate([soft_train, soft_pool])).float().to(device)
    labels = np.concatenate([data.train_y if mode == "labelled" else -np.ones_like(data.train_y),
                             -np.ones(len(data.pool_x), np.int64)])
    y_kd = torch.from_numpy(labels).to(device)
    has_label = y_kd >= 0
    d = cfg.distill

    def kd(logits: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
        idx = idx.to(device)
        return kd_loss(logits, t_kd[idx], y_kd[idx], has_label[idx], d.temperature, d.alpha)

    if d.teacher_view == "fixed":
        return _train_pair(cfg, x_kd, kd, k, size, device, "KD student")
    if teacher is None:
        raise ValueError("distill.teacher_view=online needs the teacher")
    teacher = teacher.to(device).eval()

    @torch.no_grad()
    def teach(xb: torch.Tensor) -> torch.Tensor:
        views = [xb, xb.flip(-1), xb.flip(-2), xb.flip(-1).flip(-2)] if cfg.data.flips else [xb]
        return torch.stack([teacher(v) for v in views]).mean(0)

    def kd_online(logits: torch.Tensor, idx: torch.Tensor, xb: torch.Tensor) -> torch.Tensor:
        idx = idx.to(device)
        return kd_loss(logits, teach(xb), y_kd[idx], has_label[idx], d.temperature, d.alpha)

    return _train_pair(cfg, x_kd, kd_online, k, size, device, "KD student", sees_input=True)


def load_teacher(run: RunDir, cfg: RunConfig, k: int) -> torch.nn.Module:
    from insitu.distill.checkpoint import load_checkpoint
    from insitu.distill.teacher import ResNetTeacher

    model = ResNetTeacher(cfg.teacher, k)
    load_checkpoint(run.path("teacher", "teacher.pt"), model, "teacher", {**cfg.teacher.model_dump(mode="json"),
                                                                           "classes": k})
    return model.eval()


def run(cfg: RunConfig, run: RunDir) -> StepResult:
    data = data_step.load(run)
    device = resolve_device(cfg.device)
    k, size = len(data.class_names), data.image_size
    with np.load(run.path("teacher", "soft_labels.npz")) as z:
        soft_train, soft_pool = z["train"], z["pool"]
    mode, why = resolve_mode(cfg, len(data.train_y), len(data.pool_x))
    log.info("distillation: %s (%s)", mode, why)
    teacher = load_teacher(run, cfg, k) if cfg.distill.teacher_view == "online" else None
    kd_float, kd_quant, kd_steps = train_kd(cfg, data, soft_train, soft_pool, mode, device, teacher)
    x_kd_len = len(data.train_x) + len(data.pool_x)

    nokd_float = nokd_quant = None
    if cfg.distill.ablation:
        # Ablation: same student, seed and split, no teacher; same number of optimisation steps.
        y_lab = torch.from_numpy(data.train_y).to(device)
        n_rep = int(np.ceil(x_kd_len / len(data.train_x)))
        x_ce = np.concatenate([data.train_x] * n_rep)[:x_kd_len]
        idx_map = torch.from_numpy(np.tile(np.arange(len(data.train_x)), n_rep)[:x_kd_len]).to(device)

        def ce(logits: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
            return ce_loss(logits, y_lab[idx_map[idx.to(device)]])

        nokd_float, nokd_quant, _ = _train_pair(cfg, x_ce, ce, k, size, device, "no-KD student")

    outputs, metrics = [], {"mode": mode, "mode_reason": why, "steps_per_student": kd_steps}
    student_cfg = {**cfg.student.model_dump(mode="json", exclude_none=True), "classes": k, "image_size": size}
    for name, model, quantized in (("kd_float", kd_float, False), ("kd", kd_quant, True),
                                   ("nokd_float", nokd_float, False), ("nokd", nokd_quant, True)):
        if model is None:  # distill.ablation = false
            metrics[name] = None
            continue
        logits = predict_logits(model, data.test_x, torch.device("cpu"))
        metrics[name] = {"accuracy": accuracy(logits, data.test_y),
                         "confusion": confusion(data.test_y, logits.argmax(1), k).tolist()}
        path = run.path("student", f"{name}.pt")
        save_checkpoint(path, model, "student_quant" if quantized else "student_float", student_cfg)
        outputs.append(path)
    metrics["params"] = weight_params(kd_quant)
    metrics["kd_gain_points"] = 100 * (metrics["kd"]["accuracy"] - metrics["nokd"]["accuracy"]) \
        if metrics["nokd"] else None
    path = run.path("student", "metrics.json")
    atomic_write_json(path, metrics)
    summary = {"mode": mode, "mode_reason": why, "params": metrics["params"], **{f"{n}_accuracy": (metrics[n] or {}).get("accuracy")
               for n in ("kd", "kd_float", "nokd", "nokd_float")}, "kd_gain_points": metrics["kd_gain_points"]}
    return StepResult(outputs + [path], summary)


def load_student(run: RunDir, cfg: RunConfig, name: str = "kd") -> torch.nn.Sequential:
    from insitu.distill.checkpoint import load_checkpoint

    data_info = run.manifest()["stages"]["data"]["summary"]
    k, size = len(data_info["classes"]), data_info["image_size"]
    quantized = not name.endswith("_float")
    model = build_student(cfg.student, k, size, quantized=quantized)
    student_cfg = {**cfg.student.model_dump(mode="json", exclude_none=True), "classes": k, "image_size": size}
    load_checkpoint(run.path("student", f"{name}.pt"), model, "student_quant" if quantized else "student_float",
                    student_cfg)
    return model.eval()
