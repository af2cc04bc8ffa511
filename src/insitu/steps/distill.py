"""Step `distill`: the KD student (float pre-training, then QAT), the one the firmware is built from.

Label-free mode (default when the pool outnumbers the labels): the KD student never sees a label. The no-KD
ablation (step `ablation`) trains the same student with the same seed, split and number of steps without the
teacher; it needs only the data, so it runs beside the firmware steps instead of before them.
"""

from __future__ import annotations

import logging

import numpy as np
import torch

from insitu.config import RunConfig
from insitu.distill.attention import AttentionTransfer
from insitu.distill.checkpoint import save_checkpoint
from insitu.distill.losses import kd_loss
from insitu.distill.mode import resolve_mode
from insitu.distill.student import build_student, load_float_into_quant, weight_params
from insitu.distill.train import FitSpec, accuracy, confusion, fit, predict_logits, resolve_device, steps_for
from insitu.errors import ConfigError
from insitu.pipeline import StepResult
from insitu.rundir import RunDir, atomic_write_json
from insitu.steps import data as data_step

log = logging.getLogger(__name__)


def kd_sample_count(data) -> int:
    """Images per KD epoch (the labelled split and the pool): the ablation's epochs are this long too."""
    return len(data.train_x) + len(data.pool_x)


def train_pair(cfg: RunConfig, x: np.ndarray, loss_fn, k: int, size: int, device: torch.device, tag: str,
               sees_input: bool = False, attach=None, qat_loss_fn=None):
    """Float pre-training then QAT fine-tuning of one student; returns (float_model, quant_model, steps).
    `attach(model)`, when given, hooks each student before it trains and returns the hooks' remover;
    `qat_loss_fn` (same signature as `loss_fn`) replaces `loss_fn` in QAT, where the hooks are then not set."""
    d = cfg.distill
    steps_float = steps_for(d.float_epochs, len(x), d.batch_size) if d.float_epochs else 0
    steps_qat = steps_for(d.qat_epochs, len(x), d.batch_size)
    torch.manual_seed(cfg.seed)
    float_model = build_student(cfg.student, k, size, quantized=False)
    if steps_float:
        remove = attach(float_model) if attach else None
        fit(float_model, x, loss_fn, FitSpec(steps_float, d.batch_size, d.lr, 1e-4, d.augment, seed=cfg.seed,
                                             flips=cfg.data.flips, mixup=d.mixup, ema=d.ema),
            device, f"{tag} float", sees_input)
        if remove:
            remove()
    torch.manual_seed(cfg.seed)
    quant_model = build_student(cfg.student, k, size, quantized=True)
    load_float_into_quant(float_model.cpu(), quant_model)
    remove = attach(quant_model) if attach and qat_loss_fn is None else None
    fit(quant_model, x, qat_loss_fn or loss_fn,
        FitSpec(steps_qat, d.batch_size, d.qat_lr, 1e-4, d.augment, seed=cfg.seed + 1, flips=cfg.data.flips,
                mixup=d.mixup, ema=d.ema),
        device, f"{tag} QAT", sees_input)
    if remove:
        remove()
    return float_model.cpu(), quant_model.cpu(), steps_float + steps_qat


def train_kd(cfg: RunConfig, data, soft_train: np.ndarray, soft_pool: np.ndarray, mode: str,
             device: torch.device, teacher: torch.nn.Module | None = None):
    """The KD student on the labelled split and the pool (labels only in `labelled` mode); (float, QAT, steps).
    With `distill.teacher_view=online`, `teacher` is run (eval mode, no gradient) on each augmented (with
    `distill.mixup`, blended) batch, its logits averaged over the four flips when the data allows them and
    `distill.teacher_tta` is on, like the fixed soft labels. With `distill.attention > 0` the teacher also runs on
    each augmented batch for attention transfer."""
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

    if teacher is None and (d.teacher_view == "online" or d.attention > 0):
        raise ValueError("distill.teacher_view=online and distill.attention need the teacher")
    if d.mixup > 0 and d.attention > 0 and d.teacher_view == "fixed":
        raise ConfigError("distill.mixup with distill.attention needs distill.teacher_view=online (the fixed soft "
                          "labels are of the un-blended images, the attention maps of the blended ones)",
                          "set distill.teacher_view=online, or turn one of distill.mixup / distill.attention off")
    at = AttentionTransfer(teacher.to(device), d.attention) if d.attention > 0 else None
    if d.teacher_view == "fixed" and at is None:
        return train_pair(cfg, x_kd, kd, k, size, device, "KD student")
    teacher = teacher.to(device).eval()

    @torch.no_grad()
    def teach(xb: torch.Tensor) -> torch.Tensor:
        tta = cfg.data.flips and d.teacher_tta
        views = [xb, xb.flip(-1), xb.flip(-2), xb.flip(-1).flip(-2)] if tta else [xb]
        return torch.stack([teacher(v) for v in views]).mean(0)

    def kd_term(logits: torch.Tensor, idx: torch.Tensor, xb: torch.Tensor) -> torch.Tensor:  # no attention
        if d.teacher_view == "online":
            idx_d = idx.to(device)
            return kd_loss(logits, teach(xb), y_kd[idx_d], has_label[idx_d], d.temperature, d.alpha)
        return kd(logits, idx)

    def kd_in_loop(logits: torch.Tensor, idx: torch.Tensor, xb: torch.Tensor) -> torch.Tensor:
        loss = kd_term(logits, idx, xb)
        return loss + at.loss(xb) if at is not None else loss

    qat_fn = kd_term if at is not None and not d.attention_in_qat else None
    try:
        return train_pair(cfg, x_kd, kd_in_loop, k, size, device, "KD student", sees_input=True,
                          attach=at.attach if at is not None else None, qat_loss_fn=qat_fn)
    finally:
        if at is not None:
            at.close()


def load_teacher(run: RunDir, cfg: RunConfig, k: int) -> torch.nn.Module:
    from insitu.distill.checkpoint import load_checkpoint
    from insitu.distill.teacher import ResNetTeacher

    model = ResNetTeacher(cfg.teacher, k)
    load_checkpoint(run.path("teacher", "teacher.pt"), model, "teacher", {**cfg.teacher.model_dump(mode="json"),
                                                                           "classes": k})
    return model.eval()


def save_pair(run: RunDir, folder: str, cfg: RunConfig, data, names: tuple[str, str], models: tuple) -> dict:
    """Checkpoints `<folder>/<name>.pt` of a (float, QAT) pair; their test metrics keyed by name, and the paths."""
    k, size = len(data.class_names), data.image_size
    student_cfg = {**cfg.student.model_dump(mode="json", exclude_none=True), "classes": k, "image_size": size}
    metrics, outputs = {}, []
    for name, model, quantized in ((names[0], models[0], False), (names[1], models[1], True)):
        logits = predict_logits(model, data.test_x, torch.device("cpu"))
        metrics[name] = {"accuracy": accuracy(logits, data.test_y),
                         "confusion": confusion(data.test_y, logits.argmax(1), k).tolist()}
        path = run.path(folder, f"{name}.pt")
        save_checkpoint(path, model, "student_quant" if quantized else "student_float", student_cfg)
        outputs.append(path)
    return {"metrics": metrics, "outputs": outputs}


def run(cfg: RunConfig, run: RunDir) -> StepResult:
    data = data_step.load(run)
    device = resolve_device(cfg.device)
    k = len(data.class_names)
    with np.load(run.path("teacher", "soft_labels.npz")) as z:
        soft_train, soft_pool = z["train"], z["pool"]
    mode, why = resolve_mode(cfg, len(data.train_y), len(data.pool_x))
    log.info("distillation: %s (%s)", mode, why)
    in_loop = cfg.distill.teacher_view == "online" or cfg.distill.attention > 0
    teacher = load_teacher(run, cfg, k) if in_loop else None
    kd_float, kd_quant, kd_steps = train_kd(cfg, data, soft_train, soft_pool, mode, device, teacher)
    saved = save_pair(run, "student", cfg, data, ("kd_float", "kd"), (kd_float, kd_quant))
    metrics = {"mode": mode, "mode_reason": why, "steps_per_student": kd_steps, **saved["metrics"],
               "params": weight_params(kd_quant)}
    path = run.path("student", "metrics.json")
    atomic_write_json(path, metrics)
    summary = {"mode": mode, "mode_reason": why, "params": metrics["params"], "steps": kd_steps,
               "kd_accuracy": metrics["kd"]["accuracy"], "kd_float_accuracy": metrics["kd_float"]["accuracy"]}
    return StepResult(saved["outputs"] + [path], summary)


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
