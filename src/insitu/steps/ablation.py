"""Step `ablation`: the KD student's twin trained without the teacher, for the report's KD gain.

Same student, seed and split as the `distill` step and the same number of optimisation steps (so a KD gain is
not a compute gain): cross-entropy on the labelled split, repeated to the length of a KD epoch (labelled split
plus the unlabelled pool). It needs only the data, not the teacher or the KD student, so the scheduler runs it
on a free core beside the firmware steps. `distill.ablation = false` records no ablation (sweeps).
"""

from __future__ import annotations

import logging

import numpy as np
import torch

from insitu.config import RunConfig
from insitu.distill.losses import ce_loss
from insitu.distill.train import resolve_device
from insitu.pipeline import StepResult
from insitu.rundir import RunDir, atomic_write_json
from insitu.steps import data as data_step
from insitu.steps.distill import kd_sample_count, save_pair, train_pair

log = logging.getLogger(__name__)


def run(cfg: RunConfig, run: RunDir) -> StepResult:
    path = run.path("ablation", "metrics.json")
    if not cfg.distill.ablation:
        atomic_write_json(path, {"nokd": None, "nokd_float": None})
        return StepResult([path], {"ablation": False})
    data = data_step.load(run)
    device = resolve_device(cfg.device)
    k, size = len(data.class_names), data.image_size
    n_kd, n_lab = kd_sample_count(data), len(data.train_x)
    n_rep = int(np.ceil(n_kd / n_lab))
    x_ce = np.concatenate([data.train_x] * n_rep)[:n_kd]
    idx_map = torch.from_numpy(np.tile(np.arange(n_lab), n_rep)[:n_kd]).to(device)
    y_lab = torch.from_numpy(data.train_y).to(device)

    def ce(logits: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
        return ce_loss(logits, y_lab[idx_map[idx.to(device)]])

    nokd_float, nokd_quant, steps = train_pair(cfg, x_ce, ce, k, size, device, "no-KD student")
    saved = save_pair(run, "ablation", cfg, data, ("nokd_float", "nokd"), (nokd_float, nokd_quant))
    metrics = {**saved["metrics"], "steps": steps, "labelled_images": n_lab}
    atomic_write_json(path, metrics)
    return StepResult(saved["outputs"] + [path],
                      {"steps": steps, "nokd_accuracy": metrics["nokd"]["accuracy"],
                       "nokd_float_accuracy": metrics["nokd_float"]["accuracy"]})
