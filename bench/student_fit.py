"""Does the student underfit or overfit its teacher? For each run, the KD student's (float and QAT) agreement with
the teacher's soft labels and its accuracy, on the images it was trained on (labelled split, unlabelled pool) and
on the test set.

A student that agrees with its teacher on its own training images no better than on the test set is limited by
what it can represent or by its training schedule, not by data: more unlabelled images or a stronger regulariser
(mixup) cannot help it, more capacity or longer training can.

    python bench/student_fit.py runs/bench-accuracy-builtin-default-seed0 [runs/...]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.table import Table


def rows(run_dir: Path) -> list[tuple]:
    import torch

    from insitu.config import load_config
    from insitu.distill.train import predict_logits
    from insitu.rundir import RunDir
    from insitu.steps import data as data_step
    from insitu.steps.distill import load_student

    torch.set_num_threads(1)
    cfg, run = load_config(run_dir / "config.json"), RunDir(run_dir)
    data = data_step.load(run)
    with np.load(run.path("teacher", "soft_labels.npz")) as z:
        soft = {"train": z["train"].argmax(1), "pool": z["pool"].argmax(1)}
    splits = (("labelled", data.train_x, data.train_y, soft["train"]), ("pool", data.pool_x, None, soft["pool"]),
              ("test", data.test_x, data.test_y, None))
    out = []
    for name in ("kd_float", "kd"):
        model = load_student(run, cfg, name)
        for split, x, y, teacher in splits:
            pred = predict_logits(model, x, torch.device("cpu")).argmax(1)
            out.append((run_dir.name, name, split, None if y is None else 100 * float((pred == y).mean()),
                        None if teacher is None else 100 * float((pred == teacher).mean())))
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("runs", nargs="+", type=Path)
    args = ap.parse_args(argv)
    table = Table(title="the KD student on its training images and on the test set (%)")
    for col in ("run", "student", "images", "accuracy", "agrees with the teacher"):
        table.add_column(col, justify="left" if col in ("run", "student", "images") else "right")
    for run_dir in args.runs:
        for run, name, split, acc, agree in rows(run_dir):
            table.add_row(run, name, split, "-" if acc is None else f"{acc:.2f}",
                          "-" if agree is None else f"{agree:.2f}")
    Console(width=160).print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
