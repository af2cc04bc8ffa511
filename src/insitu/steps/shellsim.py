"""Step `shellsim`: the board shell around the core, simulated over its UART (image bytes in, the answer and the
trigger pulse out), on the same Verilog the `firmware` step builds.

It needs the core and the test vectors, not the bitstream, so it runs beside place and route instead of before
it (on the cells core its Verilator build takes about two minutes, which used to sit on the firmware's chain).
The shell is simulated at a fast baud rate (the board oscillator's clock / 5) and otherwise the same logic, with
the core at the clock the board's PLL is synthesised with.
"""

from __future__ import annotations

import json
import shutil

from insitu.boards import get_board
from insitu.config import RunConfig
from insitu.errors import RTLError
from insitu.pipeline import StepResult
from insitu.rtl import shell
from insitu.rundir import RunDir, atomic_write_json
from insitu.sim.rtl import pick_simulator
from insitu.sim.shell_sim import simulate_shell
from insitu.sim.vectors import load_vectors


def shell_spec(cfg: RunConfig, design: dict, board) -> shell.ShellSpec:
    """The shell the bitstream holds, for this core and board."""
    return shell.ShellSpec(design["lanes"], design["pixel_bits"], design["height"] * design["width"],
                           design["n_classes"], design["score_type"]["width"], len(board.pins.leds) or 1,
                           board.clock_mhz, cfg.firmware.baud, cfg.firmware.trigger_class, cfg.firmware.trigger_us)


def core_clock_mhz(cfg: RunConfig, board) -> float:
    """The core clock the board's clock generator is synthesised with (ECP5: the PLL's nearest setting)."""
    if board.flow == "open-ecp5":
        return shell.clkgen_ecp5(board.clock_mhz, cfg.firmware.clock_mhz)[1]
    return board.clock_mhz


def run(cfg: RunConfig, run: RunDir) -> StepResult:
    path = run.path("shellsim", "shell_sim.json")
    board = get_board(cfg.firmware.board)
    if not cfg.firmware.enabled or not cfg.firmware.shell_sim_images:
        why = "firmware.enabled=false" if not cfg.firmware.enabled else "firmware.shell_sim_images=0"
        atomic_write_json(path, {"board": board.name, "skipped": why})
        return StepResult([path], {"skipped": why})
    design = json.loads(run.path("rtl", "design.json").read_text())
    core_files = [run.path("rtl", "verilog", f) for f in design["files"]]
    vec_path = run.path("export", "vectors.npz")
    spec = shell_spec(cfg, design, board)
    fast = shell.ShellSpec(**{**spec.__dict__, "baud": max(1, round(board.clock_mhz * 1e6 / 5))})
    vec = load_vectors(vec_path)
    n = min(cfg.firmware.shell_sim_images, len(vec.images))
    work = run.path(".shellsim-work")
    shutil.rmtree(work, ignore_errors=True)
    try:
        sim = simulate_shell(core_files, fast, vec_path, vec.expected, n, work / "sim",
                             pick_simulator(cfg.rtl.simulator), cfg.rtl.timeout_s, core_mhz=core_clock_mhz(cfg, board))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    summary = {"board": board.name, **sim.to_dict()}
    atomic_write_json(path, summary)
    if sim.exact_answers != sim.images or sim.triggers != sim.expected_triggers:
        raise RTLError(f"the board shell answered {sim.exact_answers} of {sim.images} images exactly and pulsed the "
                       f"trigger {sim.triggers} times (expected {sim.expected_triggers}); details in {path}",
                       "the core alone is checked by the rtlsim step: a shell-only mismatch is a bug of the shell "
                       "(UART framing, clock crossing, trigger); please report it with that file")
    return StepResult([path], summary)
