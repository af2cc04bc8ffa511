"""Step `data`: build the train / pool / test split at the model input size."""

from __future__ import annotations

from insitu.config import RunConfig
from insitu.data.cells import CellData, prepare
from insitu.pipeline import StepResult
from insitu.rundir import RunDir, atomic_write_json

DATA_FILE = ("data", "cells.npz")


def run(cfg: RunConfig, run: RunDir) -> StepResult:
    data = prepare(cfg.data)
    path = run.path(*DATA_FILE)
    data.save(path)
    info = data.describe()
    atomic_write_json(run.path("data", "dataset.json"), info)
    return StepResult([path, run.path("data", "dataset.json")], info)


def load(run: RunDir) -> CellData:
    return CellData.load(run.path(*DATA_FILE))
