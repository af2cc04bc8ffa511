"""FPGA latency sweep: pixel lanes P -> cycles (RTL simulation), Fmax and resources (real place and route),
microseconds, against the published 14.5 µs and against the same student on this CPU.

It is an `insitu sweep` (one mechanism): it writes a sweep spec over `rtl.lanes` whose points are the run's own
configuration (its steps up to the export are taken from the run, not re-trained), runs it on a local Ray
(`--workers` place and routes at a time), and prints the table. Results go to bench/results/latency.json and to
RUN/lane_sweep.json (which the run's report plots); the sweep itself stays in RUN/lane-sweep/ (resumable).

    python bench/latency.py --run runs/cells-... [--lanes 1 2 4 8] [--board ulx3s-85f] [--images 200] [--workers 2]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

from rich.console import Console
from rich.table import Table

from insitu.config import load_config
from insitu.steps import APP_STEPS
from insitu.sweep import load_spec, run_sweep

PUBLISHED_US = 14.5
GOAL_US = 5.0


def cpu_student_us(run: Path, iters: int = 2000) -> float | None:
    """Median batch-1 latency of the same student on ONNX Runtime, all cores (bench/cpu_latency.py)."""
    sys.path.insert(0, str(Path(__file__).parent))
    import os

    import torch
    from cpu_latency import _models, _stats, bench_ort

    models, size = _models(run)
    with tempfile.TemporaryDirectory() as tmp:
        times = bench_ort(models["student"], torch.rand(1, 1, size, size), os.cpu_count() or 1, iters, Path(tmp))
    return _stats(times, 1)[0]


def _flat(d: dict, prefix: str = "") -> dict:
    out = {}
    for k, v in d.items():
        if isinstance(v, dict):
            out.update(_flat(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


def write_spec(run: Path, lanes: list[int], board: str, clock_mhz: float, router: str, images: int,
               cutoff: float, path: Path) -> Path:
    """A sweep spec whose points are the run's configuration with rtl.lanes = each of `lanes`."""
    cfg = load_config(run / "config.json")
    fixed = {k: v for k, v in _flat(cfg.model_dump(mode="json")).items()
             if k not in ("app", "preset") and not k.startswith(("lidar.", "compile.")) and v is not None}
    fixed.update({"firmware.board": board, "firmware.clock_mhz": clock_mhz, "firmware.router": router,
                  "firmware.enabled": True, "firmware.estimate_only": False, "rtl.sim_vectors": images, "rtl.latency_cutoff": cutoff})
    lines = [f'app = "{cfg.app}"', f'preset = "{cfg.preset}"', f'from_run = "{run.resolve()}"', "", "[set]"]
    lines += [f'"{k}" = {json.dumps(v)}' for k, v in sorted(fixed.items())]  # JSON scalars and lists read as TOML
    lines += ["", "[grid]", f'"rtl.lanes" = {json.dumps(lanes)}', ""]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines))
    return path


def rows_of(doc: dict) -> list[dict]:
    """lane_sweep.json rows (the run report's latency plot reads them) from the sweep's points."""
    rows = []
    for p in doc["points"]:
        if p["status"] != "done":
            print(f"lanes {p['overrides']['rtl.lanes']}: {p['status']}: {p['error']}", flush=True)
            continue
        rep = json.loads((Path(p["run_dir"]) / "report.json").read_text())
        rows.append({"lanes": p["overrides"]["rtl.lanes"], "board": rep["impl"]["board"],
                     "rtl": {**rep["rtl"], "lanes": p["overrides"]["rtl.lanes"]},
                     "impl": {**rep["impl"], "build_seconds": rep["stage_seconds"].get("firmware")},
                     "latency_us": rep["latency_us"], "run_dir": p["run_dir"]})
    return rows


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--run", type=Path, required=True, help="a run directory with an export step")
    ap.add_argument("--lanes", type=int, nargs="+", default=[1, 2, 4, 8])
    ap.add_argument("--board", default="ulx3s-85f")
    ap.add_argument("--clock-mhz", type=float, default=50.0, help="PLL clock asked (the insitu default)")
    ap.add_argument("--router", default="router1", choices=("router1", "router2"))
    ap.add_argument("--images", type=int, default=200)
    ap.add_argument("--cutoff", type=float, default=2.0)
    ap.add_argument("--workers", type=int, default=None, help="place and routes at a time (default: all cores)")
    args = ap.parse_args(argv)
    out = args.run / "lane-sweep"
    spec = write_spec(args.run, args.lanes, args.board, args.clock_mhz, args.router, args.images, args.cutoff,
                      out / "lanes.toml")
    rows = rows_of(run_sweep(load_spec(spec), out, APP_STEPS.__getitem__, workers=args.workers,
                             show=sys.stdout.isatty()))
    cpu = cpu_student_us(args.run)
    table = Table(title=f"{args.board} (insitu sweep {out}): first pixel -> decision, cycles from cocotb RTL simulation, µs at the "
                        "bitstream clock (the PLL set after routing to the fastest setting the design meets); "
                        f"CPU = same student, ONNX Runtime, batch 1 ({cpu:.1f} µs)")
    for col in ("P", "bit-exact", "cycles first→dec", "cycles last→dec", "II", "clock MHz", "µs first→dec",
                "µs after last", "µs pixel-in", "vs 14.5 µs", "LUT", "FF", "DSP", "BRAM", "CPU/FPGA"):
        table.add_column(col, justify="right")
    for r in rows:
        lat, impl, rtl = r["latency_us"], r["impl"], r["rtl"]
        us = lat["first_pixel_to_decision"]
        table.add_row(str(r["lanes"]), f"{rtl['bit_exact_vectors']}/{rtl['vectors']}",
                      str(rtl["latency_cycles_first_to_valid"]), str(rtl["latency_cycles_last_to_valid"]),
                      str(rtl["ii_cycles"]), f"{impl['clock_mhz']:.1f}", f"{us:.2f}", f"{lat['after_last_pixel']:.2f}",
                      f"{lat['pixel_in']:.2f}", f"{PUBLISHED_US / us:.2f}x", f"{impl['lut']:,}", f"{impl['ff']:,}",
                      str(impl["dsp"]), str(impl["bram"]), f"{cpu / us:.1f}x")
    Console(width=200).print(table)
    sweep = args.run / "lane_sweep.json"
    old = json.loads(sweep.read_text())["rows"] if sweep.exists() else []
    keep = [r for r in old if (r["lanes"], r["board"]) not in {(n["lanes"], n["board"]) for n in rows}]
    rows = sorted(keep + rows, key=lambda r: (r["board"], r["lanes"]))
    doc = {"board": args.board, "clock_mhz": args.clock_mhz, "cpu_student_us": cpu, "published_us": PUBLISHED_US,
           "goal_us": GOAL_US, "rows": rows}
    out = Path(__file__).parent / "results"
    out.mkdir(exist_ok=True)
    (out / "latency.json").write_text(json.dumps(doc, indent=1))
    sweep.write_text(json.dumps(doc, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
