"""Student search: accuracy against hardware cost, and the front the default preset is chosen from.

Every candidate is a set of student (and distill) overrides. For each: the KD student is trained exactly as the
`distill` step trains it (float with its options, then QAT) on the data and fixed soft labels of an existing run
directory (`--run`, e.g. one of bench/accuracy.py's), its QAT test accuracy measured, then exported to the IR and
costed by `insitu.firmware.cost.model_cost` at each lane count: Yosys synth_ecp5 resources (LUTs in nextpnr's
units) and the cycles of a short bit-exact RTL simulation. Results append to a JSON-lines file (resumable: a
candidate already there is not re-run); the table marks the accuracy-LUT-latency Pareto front, and a plot is
written beside the file.

    python bench/student_search.py --run runs/bench-accuracy-builtin-...-seed0 [--only A B] [--lanes 4 8]
        [--threads 1] [--out bench/results/student_search.jsonl] [--no-cost]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

from insitu.config import PRESETS

_PAPER = PRESETS["paper"]["student"]
#: name -> (student overrides, distill overrides), laid over the default preset
CANDIDATES: dict[str, tuple[dict, dict]] = {
    "default": ({}, {}),
    "default-attention1": ({}, {"attention": 1.0}),  # float training only (distill.attention_in_qat false)
    "default-attention1-qat": ({}, {"attention": 1.0, "attention_in_qat": True}),
    "default-attention10-qat": ({}, {"attention": 10.0, "attention_in_qat": True}),
    "paper": ({**_PAPER, "batchnorm": False}, {}),
    "paper-bn": ({**_PAPER, "batchnorm": True}, {}),
    "sep16-32-64-bn": ({"arch": "separable", "channels": [16, 32, 64], "batchnorm": True}, {}),
    "sep16-32-64-bn-w4a4": ({"arch": "separable", "channels": [16, 32, 64], "batchnorm": True, "weight_bits": 4,
                             "act_bits": 4}, {}),
    "sep8-16-32-bn": ({"arch": "separable", "channels": [8, 16, 32], "batchnorm": True}, {}),
    "sep16-24-32-bn": ({"arch": "separable", "channels": [16, 24, 32], "batchnorm": True}, {}),
    "sep16-32-64-bn-online": ({"arch": "separable", "channels": [16, 32, 64], "batchnorm": True},
                              {"teacher_view": "online"}),
    "sep16-32-64-bn-a8": ({"arch": "separable", "channels": [16, 32, 64], "batchnorm": True, "act_bits": 8}, {}),
    "sep16-32-64-bn-w8a8": ({"arch": "separable", "channels": [16, 32, 64], "batchnorm": True, "weight_bits": 8,
                             "act_bits": 8}, {}),
    "sep16-32-64-bn-qat10": ({"arch": "separable", "channels": [16, 32, 64], "batchnorm": True},
                             {"qat_epochs": 10}),
    "sep8-16-32-bn-w4a4": ({"arch": "separable", "channels": [8, 16, 32], "batchnorm": True, "weight_bits": 4,
                            "act_bits": 4}, {}),
}


def train_and_score(name: str, run_dir: Path, threads: int) -> tuple[dict, object]:
    import numpy as np
    import torch

    from insitu.config import build_config, load_config
    from insitu.distill.export import export_quantmodel
    from insitu.distill.mode import resolve_mode
    from insitu.distill.student import weight_params
    from insitu.distill.train import accuracy, predict_logits
    from insitu.ir import reference
    from insitu.rundir import RunDir
    from insitu.steps import data as data_step
    from insitu.steps.distill import load_teacher, train_kd

    torch.set_num_threads(threads)
    base = load_config(run_dir / "config.json")
    student, distill = CANDIDATES[name]
    cfg = build_config("default", {"seed": base.seed, "data": base.data.model_dump(mode="json"),
                                   "student": student, "distill": distill})
    run = RunDir(run_dir)
    data = data_step.load(run)
    with np.load(run.path("teacher", "soft_labels.npz")) as z:
        soft_train, soft_pool = z["train"], z["pool"]
    mode, _ = resolve_mode(cfg, len(data.train_y), len(data.pool_x))
    t0 = time.monotonic()
    in_loop = cfg.distill.teacher_view == "online" or cfg.distill.attention > 0
    teacher = load_teacher(run, base, len(data.class_names)) if in_loop else None
    fl, q, steps = train_kd(cfg, data, soft_train, soft_pool, mode, torch.device("cpu"), teacher)
    cpu = torch.device("cpu")
    row = {"name": name, "student": student, "distill": distill, "run": str(run_dir), "steps": steps,
           "params": weight_params(q), "float_accuracy": accuracy(predict_logits(fl, data.test_x, cpu), data.test_y),
           "qat_accuracy": accuracy(predict_logits(q, data.test_x, cpu), data.test_y),
           "train_seconds": round(time.monotonic() - t0, 1)}
    qm = export_quantmodel(q.eval(), data.image_size, data.class_names)
    row["reference_accuracy"] = float((reference.run(qm, data.test_x).argmax(1) == data.test_y).mean())
    return row, qm


def cost_rows(qm, lanes: list[int]) -> dict:
    from insitu.firmware.cost import model_cost

    out = {}
    for p in lanes:
        with tempfile.TemporaryDirectory() as tmp:
            c = model_cost(qm, Path(tmp), "ecp5", p, samples=2)
        out[str(p)] = {"lut": c.resources.get("lut"), "ff": c.resources.get("ff"), "dsp": c.resources.get("dsp"),
                       "bram": c.resources.get("bram"), "cycles": c.latency_cycles_first_to_valid,
                       "synthesis_s": c.seconds.get("synthesis")}
    return out


def pareto(points: list[tuple[float, float, float]]) -> list[bool]:
    """(accuracy up, lut down, cycles down): the sweep's own Pareto definition (insitu.sweep.results)."""
    from insitu.sweep.results import pareto_flags

    return pareto_flags([{"status": "done", "metrics": {"accuracy": a, "lut": lut, "latency_us": cyc}}
                         for a, lut, cyc in points])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--run", type=Path, required=True, help="a run directory with data and teacher steps")
    ap.add_argument("--only", nargs="+", choices=sorted(CANDIDATES))
    ap.add_argument("--lanes", type=int, nargs="+", default=[4])
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", type=Path, default=Path("bench/results/student_search.jsonl"))
    ap.add_argument("--no-cost", action="store_true", help="accuracy only")
    args = ap.parse_args(argv)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    done = {}
    if args.out.exists():
        for line in args.out.read_text().splitlines():
            r = json.loads(line)
            done[(r["name"], r["run"])] = r
    for name in args.only or list(CANDIDATES):
        if (name, str(args.run)) in done:
            continue
        row, qm = train_and_score(name, args.run, args.threads)
        if not args.no_cost:
            row["cost"] = cost_rows(qm, args.lanes)
        done[(name, str(args.run))] = row
        with args.out.open("a") as fh:
            fh.write(json.dumps(row) + "\n")
        print(json.dumps(row), flush=True)
    rows = [r for r in done.values() if r["run"] == str(args.run)]
    print_table(rows, args.lanes[0], args.out.with_suffix(".png"))
    return 0


def print_table(rows: list[dict], lanes: int, plot: Path) -> None:
    from rich.console import Console
    from rich.table import Table

    key = str(lanes)
    costed = [r for r in rows if key in r.get("cost", {})]
    flags = pareto([(r["qat_accuracy"], r["cost"][key]["lut"], r["cost"][key]["cycles"]) for r in costed])
    front = {r["name"] for r, f in zip(costed, flags) if f}
    t = Table(title=f"student search: QAT test accuracy (KD, label-free) against Yosys ECP5 LUTs and cycles at "
                    f"P={lanes}; * = Pareto front")
    for col in ("candidate", "params", "float %", "QAT %", "LUT", "FF", "DSP", "cycles", "µs at 60 MHz", "front"):
        t.add_column(col, justify="right")
    for r in sorted(rows, key=lambda r: -r["qat_accuracy"]):
        c = r.get("cost", {}).get(key, {})
        t.add_row(r["name"], f"{r['params']:,}", f"{100 * r['float_accuracy']:.2f}", f"{100 * r['qat_accuracy']:.2f}",
                  f"{c.get('lut', 0):,}" if c else "-", f"{c.get('ff', 0):,}" if c else "-",
                  str(c.get("dsp", "-")), str(c.get("cycles", "-")),
                  f"{c['cycles'] / 60:.2f}" if c else "-", "*" if r["name"] in front else "")
    Console(width=160).print(t)
    if costed:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, axes = plt.subplots(1, 2, figsize=(10, 4))
        for ax, xkey, label in ((axes[0], "lut", "LUT (Yosys, nextpnr units)"), (axes[1], "cycles",
                                                                                 "first pixel → decision, cycles")):
            for r in costed:
                x, y = r["cost"][key][xkey], 100 * r["qat_accuracy"]
                ax.scatter([x], [y], c="tab:red" if r["name"] in front else "tab:blue")
                ax.annotate(r["name"], (x, y), fontsize=7, xytext=(3, 3), textcoords="offset points")
            ax.set_xlabel(label)
            ax.set_ylabel("QAT test accuracy, %")
            ax.grid(alpha=0.3)
        fig.suptitle(f"student search at P={lanes} (red: Pareto front)")
        fig.tight_layout()
        fig.savefig(plot, dpi=120)


if __name__ == "__main__":
    sys.exit(main())
