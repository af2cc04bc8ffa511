"""The lidar targets of a finished `insitu run lidar`, measured against their goals, plus the CPU baseline.

Per-column latency: RTL-simulated cycles per column over the post-route Fmax (goal <= 0.2 us at one column per
clock), and its margin to the 49 us column period of a 64-beam, 2,048-column, 10 Hz sensor. AUROC: the student's
failure score against the ground-truth anomalies of the held-out synthetic sequences (goal >= 0.90 and within 0.05
of the two-stream teacher's score). CPU: the same integer reference in numpy and the float QAT student in PyTorch,
per column (batch 1) and per scan (all columns at once), median of repeated runs on this machine.

    python bench/lidar_targets.py --run runs/lidar-default [--iters 300]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch
from rich.console import Console
from rich.table import Table

from insitu.ir import reference
from insitu.ir.model import QuantModel
from insitu.sim.vectors import load_vectors


def _median_us(fn, iters: int) -> float:
    sys.path.insert(0, str(Path(__file__).parent))
    from cpu_latency import _time  # the same warm-up and timer as the cells CPU baseline

    return float(np.median(_time(fn, iters)) * 1e6)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--run", type=Path, required=True)
    ap.add_argument("--iters", type=int, default=300)
    args = ap.parse_args()
    rep = json.loads((args.run / "report.json").read_text())
    lat, st, ts = rep.get("latency_us") or {}, rep["student"], rep["two_stream"]
    teacher_auroc = (ts.get("teacher_score") or {}).get("auroc")
    qm = QuantModel.load(args.run / "export")
    vec = load_vectors(args.run / "export" / "vectors.npz")
    one = vec.images[:1]
    scan = np.repeat(vec.images, int(np.ceil(rep["dataset"]["columns"] / len(vec.images))), 0)[:rep["dataset"]["columns"]]
    torch.set_num_threads(1)
    from insitu.config import load_config
    from insitu.steps.lidar_student import load_column_student
    from insitu.rundir import RunDir

    student = load_column_student(RunDir(args.run), load_config(args.run / "config.json"))
    x1 = torch.from_numpy(one).float().unsqueeze(1) / 256
    xs = torch.from_numpy(scan).float().unsqueeze(1) / 256
    with torch.no_grad():
        cpu = {"reference numpy, 1 column": _median_us(lambda: reference.run(qm, one), args.iters),
               "reference numpy, 1 scan": _median_us(lambda: reference.run(qm, scan), max(10, args.iters // 10)),
               "Brevitas QAT torch 1 thread, 1 column": _median_us(lambda: student(x1), args.iters),
               "Brevitas QAT torch 1 thread, 1 scan": _median_us(lambda: student(xs), max(10, args.iters // 10))}
    table = Table(title=f"lidar targets: {args.run}")
    for col in ("what", "measured", "goal", "met"):
        table.add_column(col)
    per_col = lat.get("per_column")
    table.add_row("per-column latency (us, at post-route Fmax)", f"{per_col}", "<= 0.2",
                  str(per_col is not None and per_col <= 0.2))
    table.add_row("margin to the 48.8 us column period", f"{lat.get('margin')}x", "", "")
    table.add_row("columns per second (II = 1)", f"{lat.get('columns_per_second_at_fmax', 0):.3g}",
                  ">= 20,480 (2,048 columns x 10 Hz)", "")
    table.add_row("student AUROC vs ground truth", f"{st.get('auroc'):.4f}", ">= 0.90", str(st.get("auroc", 0) >= 0.9))
    table.add_row("two-stream soft-score AUROC (teacher)", f"{teacher_auroc:.4f}", "", "")
    table.add_row("student - teacher AUROC", f"{st.get('auroc') - teacher_auroc:+.4f}", ">= -0.05",
                  str(st.get("auroc") - teacher_auroc >= -0.05))
    table.add_row("two-stream flag IoU / student IoU", f"{ts.get('iou'):.4f} / {st.get('iou'):.4f}", "", "")
    for k, v in cpu.items():
        table.add_row(f"CPU {k} (us, median)", f"{v:.1f}", "", "")
    Console(width=150).print(table)


if __name__ == "__main__":
    main()
