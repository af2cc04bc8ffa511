"""Step `data`: build the train / pool / test split at the model input size.

It also checks, before anything trains, what the split decides for later steps: that the student's stages fit
the image size and that the distillation mode has the images it needs (an explicit label_free needs a pool).
"""

from __future__ import annotations

import logging

from insitu.config import RunConfig
from insitu.data.cells import CellData, prepare
from insitu.distill.mode import resolve_mode
from insitu.distill.student import feature_shape
from insitu.pipeline import StepResult
from insitu.rundir import RunDir, atomic_write_json

DATA_FILE = ("data", "cells.npz")
log = logging.getLogger(__name__)


def run(cfg: RunConfig, run: RunDir) -> StepResult:
    feature_shape(cfg.student, cfg.data.image_size)  # ConfigError naming the fields when it does not fit
    data = prepare(cfg.data)
    n_images = data.source.get("split", {}).get("available")
    mode, why = resolve_mode(cfg, len(data.train_y), len(data.pool_x), n_images)
    path = run.path(*DATA_FILE)
    data.save(path)
    info = {**data.describe(), "distill_mode": mode, "distill_mode_reason": why}
    log.info("data: %d labelled, %d unlabelled, %d test images (%s)", len(data.train_y), len(data.pool_x),
             len(data.test_y), why)
    atomic_write_json(run.path("data", "dataset.json"), info)
    return StepResult([path, run.path("data", "dataset.json")], info)


def load(run: RunDir) -> CellData:
    return CellData.load(run.path(*DATA_FILE))
