"""`insitu board-sim`: the bundle's board shell and core, simulated (Verilator or Icarus, through cocotb), on a
pseudo-terminal that `insitu infer --port` (or any serial program) talks to as if it were the board.

The simulated design is the bundle's own Verilog: its `insitu_shell_logic` (UART, packer, trigger, LEDs) around
its core, clocked as on the board (the oscillator at the board's clock, the core at the bitstream's clock); only
the board's PLL primitive is replaced by the two clocks.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

from insitu.errors import InsituError
from insitu.rtl import shell
from insitu.sim.rtl import pick_simulator


def bundle_of(run: Path, board: str | None) -> Path:
    fw = run / "firmware"
    bundles = sorted(p.parent for p in fw.glob("*/impl.json")) if fw.is_dir() else []
    if board:
        bundles = [b for b in bundles if b.name == board]
    if not bundles:
        raise InsituError(f"{run} has no firmware bundle{f' for {board}' if board else ''}",
                          f"build one: insitu build --board {board or 'ulx3s-85f'} --out {run}")
    if len(bundles) > 1:
        raise InsituError(f"{run} has bundles for {', '.join(b.name for b in bundles)}", "choose one with --board")
    return bundles[0]


def prepare(bundle: Path, work: Path, seconds: float, simulator: str) -> tuple[list[str], Path]:
    """(the child's command line, the file the terminal's path will be written to)."""
    doc = json.loads((bundle / "impl.json").read_text())
    design_files = sorted((bundle / "verilog").glob("*.v"))
    if not any(f.name == "insitu_shell.v" for f in design_files):
        raise InsituError(f"the bundle {bundle} has no insitu_shell.v (the core alone: an IP bundle)",
                          "board-sim needs a board with the UART shell (an ECP5, iCE40 or Arty board)")
    work.mkdir(parents=True, exist_ok=True)
    clkgen = work / "insitu_clkgen_sim.v"
    clkgen.write_text(shell.clkgen_passthrough())
    files = [f for f in design_files if f.name != "insitu_clkgen.v"] + [clkgen]
    osc_mhz = _board_mhz(doc)
    core_mhz = float(doc["clock_mhz"])
    port_file = work / "port"
    port_file.unlink(missing_ok=True)
    cfg = {"clks_per_bit": max(4, round(osc_mhz * 1e6 / doc["uart_baud"])), "osc_ps": 2 * round(5e5 / osc_mhz),
           "core_ps": 2 * round(5e5 / core_mhz), "port_file": str(port_file.resolve()), "seconds": seconds,
           "simulator": simulator, "sources": [str(p.resolve()) for p in files], "top": "insitu_shell_logic",
           "build_dir": str((work / "build").resolve()), "test_module": "insitu.sim.cocotb_board", "mode": "all"}
    (work / "board.json").write_text(json.dumps(cfg, indent=1))
    return [sys.executable, "-m", "insitu.sim.cocotb_run", str((work / "board.json").resolve())], port_file


def _board_mhz(doc: dict) -> float:
    from insitu.boards import get_board

    return get_board(doc["board"]).clock_mhz


def start(run: Path, board: str | None, work: Path, seconds: float, simulator: str = "auto",
          ready_timeout_s: float = 900) -> tuple[subprocess.Popen, str]:
    """Build and start the simulation; returns the child process and the terminal's path once it is up."""
    argv, port_file = prepare(bundle_of(run, board), work, seconds, pick_simulator(simulator))
    log = open(work / "board-sim.log", "w")
    proc = subprocess.Popen(argv, cwd=work, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    deadline = time.monotonic() + ready_timeout_s
    while time.monotonic() < deadline:
        if port_file.exists():
            return proc, port_file.read_text().strip()
        if proc.poll() is not None:
            raise InsituError(f"the board simulation stopped before it was ready (exit {proc.returncode})",
                              f"read {work / 'board-sim.log'}")
        time.sleep(0.2)
    proc.kill()
    raise InsituError(f"the board simulation was not ready within {ready_timeout_s:.0f} s",
                      f"read {work / 'board-sim.log'} (the Verilator build of a large core takes minutes)")
