"""FPGA latency sweep: pixel lanes P -> cycles (RTL simulation), Fmax and resources (real place and route),
microseconds, against the published 14.5 µs and against the same student on this CPU.

For every P it generates the streaming core from the run's QuantModel, simulates --images test images with
cocotb (bit-exact against the reference, or it stops), wraps the board shell around the core and runs the
open flow for --board. Results go to a table, to bench/results/latency.json and to RUN/lane_sweep.json
(which the run's report plots).

    python bench/latency.py --run runs/cells-... [--lanes 1 2 4 8] [--board ulx3s-85f] [--images 200]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

from insitu.boards import get_board
from insitu.firmware import open_flow
from insitu.firmware.fit import use_dsp
from insitu.ir.model import QuantModel
from insitu.reports.latency import latency_section
from insitu.rtl import shell, streaming
from insitu.sim.rtl import pick_simulator, simulate
from insitu.sim.vectors import load_vectors

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


def sweep_one(qm: QuantModel, vec_path: Path, lanes: int, board_name: str, clock_mhz: float, images: int,
              cutoff: float, work: Path, router: str) -> dict:
    board = get_board(board_name)
    vec = load_vectors(vec_path)
    design = streaming.generate(qm, work / "verilog", lanes, cutoff)
    n = min(images, len(vec.images))
    sim = simulate(design.files, design.to_dict(), vec_path, vec.expected, work / "sim", n,
                   simulator=pick_simulator("auto"))
    rtl = {**sim.to_dict(), "beats_per_image": design.beats, "lanes": lanes}
    clkgen, clock = shell.clkgen_ecp5(board.clock_mhz, clock_mhz) if board.flow == "open-ecp5" else \
        (shell.clkgen_passthrough(), board.clock_mhz)
    spec = shell.ShellSpec(lanes, 8, design.height * design.width, design.n_classes, design.score_type.width,
                           len(board.pins.leds), board.clock_mhz)
    (work / "insitu_shell.v").write_text(shell.generate(spec))
    (work / "insitu_clkgen.v").write_text(clkgen)
    files = [work / "insitu_shell.v", work / "insitu_clkgen.v", shell.uart_file(), *design.files]
    t0 = time.monotonic()
    dsp, _ = use_dsp("auto", design.multipliers, board.device)
    res = open_flow.build(board, files, "insitu_shell", work / "build", clock, 1, 3600, router=router, dsp=dsp)
    if board.flow == "open-ecp5":  # the bitstream's clock: the fastest PLL setting the routed design meets
        res, setting = open_flow.retune_pll(res, board, work / "build", "insitu_shell", 3600)
        clock = setting.mhz
    rep = res.report
    impl = {"board": board.name, "fmax_mhz": round(rep.fmax_mhz, 2), "timing_met": rep.timing_met,
            "bitstream": res.bitstream.name, "clock_mhz": round(clock, 4),
            **{k: rep.used.get(k, 0) for k in ("lut", "ff", "dsp", "bram")},
            "percent_lut": round(rep.percent("lut"), 2), "build_seconds": round(time.monotonic() - t0, 1),
            "router": router}
    return {"lanes": lanes, "rtl": rtl, "impl": impl, "latency_us": latency_section(rtl, impl, clock),
            "board": board.name}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--run", type=Path, required=True, help="a run directory with an export step")
    ap.add_argument("--lanes", type=int, nargs="+", default=[1, 2, 4, 8])
    ap.add_argument("--board", default="ulx3s-85f")
    ap.add_argument("--clock-mhz", type=float, default=50.0, help="PLL clock asked (the insitu default)")
    ap.add_argument("--router", default="router1", choices=("router1", "router2"))
    ap.add_argument("--images", type=int, default=200)
    ap.add_argument("--cutoff", type=float, default=2.0)
    args = ap.parse_args(argv)
    qm = QuantModel.load(args.run / "export")
    rows = []
    for p in args.lanes:
        with tempfile.TemporaryDirectory() as tmp:
            rows.append(sweep_one(qm, args.run / "export" / "vectors.npz", p, args.board, args.clock_mhz,
                                  args.images, args.cutoff, Path(tmp), args.router))
        print(json.dumps(rows[-1]), flush=True)
    cpu = cpu_student_us(args.run)
    table = Table(title=f"{args.board}: first pixel -> decision, cycles from cocotb RTL simulation, µs at the "
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
