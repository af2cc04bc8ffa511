"""Accuracy benchmark: teacher vs KD student vs no-KD student vs float student, over several seeds.

Runs the pipeline's data/teacher/distill/ablation steps for each seed (default preset, built-in data unless --data
points at LymphoMNIST IDX files or another dataset) into runs/bench-accuracy-<tag>-seed<N>/ (resumable),
then prints a table of test accuracies: mean and spread over the seeds, and the per-seed numbers.

    python bench/accuracy.py [--seeds 0 1 2] [--data PATH] [--preset default] [--set section.field=value ...]
    python bench/accuracy.py --suite [--set threads=1]   # every row of SUITE, one combined table
    python bench/accuracy.py --report-only [--set ...]   # the table from finished runs, training nothing

The suite's rows share run directories with the single-configuration command (same preset and overrides), so a
configuration measured once is never trained again; a configuration with overrides starts from the data and the
teacher of the same seed's run without them (kept only when its own data and teacher sections are unchanged).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

from insitu.cli import _detect_source
from insitu.config import build_config, overrides_to_dict
from insitu.pipeline import run_steps
from insitu.rundir import RunDir
from insitu.steps import CELLS_STEPS
from insitu.sweep.share import import_stage

ROWS = [("teacher", "teacher (float)"), ("kd_float", "KD student, float"), ("kd", "KD student, QAT"),
        ("nokd_float", "no-KD student, float"), ("nokd", "no-KD student, QAT")]


def one_seed(seed: int, args: argparse.Namespace) -> dict[str, float]:
    over = overrides_to_dict(args.set or [])
    if args.data:
        over.setdefault("data", {}).update(source=_detect_source(Path(args.data)), path=args.data)
    over["seed"] = seed
    over.setdefault("data", {})["seed"] = seed
    cfg = build_config(args.preset, over)
    tag = base_tag = "builtin" if not args.data else Path(args.data).stem
    if args.set:  # overrides get their own run directories
        tag += "-" + "-".join(s.replace("=", "").replace(".", "_") for s in args.set)
    run = RunDir(Path("runs") / f"bench-accuracy-{tag}-{args.preset}-seed{seed}")
    if args.set and not args.report_only and not run.manifest()["stages"]:
        _share_teacher(run, Path("runs") / f"bench-accuracy-{base_tag}-{args.preset}-seed{seed}")
    t0 = time.monotonic()
    if not args.report_only:
        import torch

        torch.set_num_threads(cfg.threads or 2)
        run_steps(CELLS_STEPS, cfg, run, stop_after=("distill", "ablation"))
    missing = [f for f in ("teacher", "student", "ablation") if not run.path(f, "metrics.json").exists()]
    if missing:
        raise SystemExit(f"{run.root}: no {', '.join(missing)} results yet; run without --report-only to train them")
    teacher = json.loads(run.path("teacher", "metrics.json").read_text())
    student = {**json.loads(run.path("student", "metrics.json").read_text()),
               **json.loads(run.path("ablation", "metrics.json").read_text())}
    out = {"teacher": teacher["accuracy"], **{k: student[k]["accuracy"] for k, _ in ROWS[1:]}}
    stages = run.manifest()["stages"]
    out["seconds"] = time.monotonic() - t0
    out["stage_seconds"] = sum(stages[n]["seconds"] for n in ("data", "teacher", "distill", "ablation") if n in stages)
    out["mode"] = student["mode"]
    return out


def _share_teacher(run: RunDir, base_root: Path) -> None:
    """A new variant's run starts from the data and teacher of the same seed's run without overrides, when that
    run has them: the pipeline keeps them only if the variant's data and teacher sections hash the same (its
    step keys decide), so a variant that changes them trains its own."""
    if not (base_root / "manifest.json").exists():
        return
    base = RunDir(base_root)
    with run.locked():
        for name in ("data", "teacher"):
            if name in base.manifest()["stages"]:
                import_stage(base, run, name)


#: (label, preset, overrides): the default and the paper's topology, on 3 classes and on the paper's B vs T task
SUITE = [("default, 3 classes", "default", []), ("paper, 3 classes", "paper", []),
         ("default, 2 classes (B vs T)", "default", ["data.classes=2"]),
         ("paper, 2 classes (B vs T)", "paper", ["data.classes=2"]),
         ("default, half-up activations (FINN)", "default", ["student.act_rounding=half_up"])]


def _ms(vals: list[float]) -> str:
    return f"{statistics.mean(vals):.2f} ± {statistics.stdev(vals) if len(vals) > 1 else 0.0:.2f}"


def suite(args: argparse.Namespace) -> int:
    table = Table(title=f"test accuracy (%), built-in data, mean ± std over seeds {args.seeds}")
    for col in ("configuration", "teacher", "KD float", "KD QAT", "no-KD QAT", "KD gain per seed", "teacher - KD"):
        table.add_column(col, justify="left" if col == "configuration" else "right")
    for label, preset, sets in SUITE:
        sub = argparse.Namespace(**{**vars(args), "preset": preset, "set": [*sets, *(args.set or [])]})
        res = {s: one_seed(s, sub) for s in args.seeds}
        col = {k: [100 * res[s][k] for s in args.seeds] for k, _ in ROWS}
        gain = [a - b for a, b in zip(col["kd"], col["nokd"])]
        gap = [a - b for a, b in zip(col["teacher"], col["kd"])]
        table.add_row(label, _ms(col["teacher"]), _ms(col["kd_float"]), _ms(col["kd"]), _ms(col["nokd"]),
                      " ".join(f"{g:+.2f}" for g in gain), f"{statistics.mean(gap):.2f}")
    Console(width=180).print(table)
    return 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--data", default=None)
    ap.add_argument("--preset", default="default")
    ap.add_argument("--set", action="append")
    ap.add_argument("--suite", action="store_true", help="every configuration of SUITE, one combined table")
    ap.add_argument("--report-only", action="store_true",
                    help="print the table from the run directories as they are, training nothing (runs trained "
                         "elsewhere, e.g. one process per seed, or by an earlier version of the code)")
    args = ap.parse_args(argv)
    if args.suite:
        return suite(args)
    results = {s: one_seed(s, args) for s in args.seeds}
    table = Table(title=f"test accuracy, {args.preset} preset, "
                        f"{'built-in synthetic data' if not args.data else args.data}, seeds {args.seeds}")
    table.add_column("model")
    table.add_column("mean ± std", justify="right")
    table.add_column("min..max", justify="right")
    for s in args.seeds:
        table.add_column(f"seed {s}", justify="right")
    for key, label in ROWS:
        vals = [100 * results[s][key] for s in args.seeds]
        table.add_row(label, _ms(vals), f"{min(vals):.2f}..{max(vals):.2f}",
                      *[f"{v:.2f}%" for v in vals])
    gap = [100 * (results[s]["teacher"] - results[s]["kd"]) for s in args.seeds]
    gain = [100 * (results[s]["kd"] - results[s]["nokd"]) for s in args.seeds]
    table.add_row("teacher - KD student (QAT), points", _ms(gap), "", *[f"{v:+.2f}" for v in gap])
    table.add_row("KD gain over no-KD (QAT), points", _ms(gain), "", *[f"{v:+.2f}" for v in gain])
    console = Console(width=160)
    console.print(table)
    console.print(f"distillation mode: {results[args.seeds[0]]['mode']}; targets: KD student within 1 point of "
                  "the teacher, KD at least 2 points above no-KD. "
                  + ("" if args.report_only else "Wall time per seed in this call: "
                     + ", ".join(f"{results[s]['seconds']:.0f} s" for s in args.seeds) + "; ")
                  + "stage seconds (data, teacher, distill, ablation, as recorded in each run's manifest): "
                  + ", ".join(f"{results[s]['stage_seconds']:.0f} s" for s in args.seeds))
    return 0


if __name__ == "__main__":
    sys.exit(main())
