"""Step `teacher`: train the teacher on the labelled split; save it, its metrics and its soft labels."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from insitu.config import RunConfig
from insitu.distill.checkpoint import save_checkpoint
from insitu.distill.teacher import ResNetTeacher, count_params
from insitu.distill.train import FitSpec, accuracy, confusion, fit, predict_logits, resolve_device, steps_for
from insitu.pipeline import StepResult
from insitu.rundir import RunDir, atomic_savez, atomic_write_json
from insitu.steps import data as data_step


def run(cfg: RunConfig, run: RunDir) -> StepResult:
    data = data_step.load(run)
    device = resolve_device(cfg.device)
    k = len(data.class_names)
    torch.manual_seed(cfg.seed)
    model = ResNetTeacher(cfg.teacher, k)
    x = data.train_x.astype(np.float32) / 256.0
    model.set_normalisation(float(x.mean()), float(x.std()))
    y = torch.from_numpy(data.train_y).to(device)
    t = cfg.teacher
    spec = FitSpec(steps_for(t.epochs, len(y), t.batch_size), t.batch_size, t.lr, t.weight_decay,
                   t.augment, photometric=True, seed=cfg.seed, flips=cfg.data.flips)
    fit(model, data.train_x, lambda logits, idx: F.cross_entropy(logits, y[idx.to(device)]), spec, device, "teacher")
    test_logits = predict_logits(model, data.test_x, device)
    tta = cfg.data.flips  # averaging flipped views is right only when flips keep the class
    soft = {"train": predict_logits(model, data.train_x, device, tta=tta),
            "pool": predict_logits(model, data.pool_x, device, tta=tta),
            "test": test_logits}
    ckpt = run.path("teacher", "teacher.pt")
    save_checkpoint(ckpt, model.cpu(), "teacher", {**t.model_dump(mode="json"), "classes": k})
    soft_path = run.path("teacher", "soft_labels.npz")
    atomic_savez(soft_path, **soft)
    pool_acc = accuracy(soft["pool"], data.pool_y) if (data.pool_y >= 0).all() and len(data.pool_y) else None
    metrics = {"params": count_params(model), "accuracy": accuracy(test_logits, data.test_y),
               "accuracy_tta": accuracy(predict_logits(model, data.test_x, device, tta=tta), data.test_y),
               "pool_soft_label_accuracy": pool_acc, "steps": spec.steps,
               "confusion": confusion(data.test_y, test_logits.argmax(1), k).tolist()}
    metrics_path = run.path("teacher", "metrics.json")
    atomic_write_json(metrics_path, metrics)
    return StepResult([ckpt, soft_path, metrics_path], {k_: v for k_, v in metrics.items() if k_ != "confusion"})
