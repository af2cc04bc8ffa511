"""The hardware cost of a QuantModel before any place and route: what a student search or a sweep calls.

`model_cost(qm, work, family, lanes)` generates the core (streaming or unrolled), synthesises it with Yosys for
the device family (`synth_ecp5`, `synth_ice40`, or `synth_xilinx -flatten`) and counts LUTs, flip-flops, DSP
and block-RAM cells. It then simulates a few random inputs through the core (checking them bit for bit
against the integer reference) to measure its cycles: first input beat to result, last beat to result, and the
initiation interval between back-to-back samples. These are estimates: Yosys' mapping with no placement and no
timing. A number from place and route replaces them in the firmware step.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from insitu.errors import ConfigError
from insitu.firmware.estimate import XILINX_CELLS, parse_stat
from insitu.firmware.open_flow import copy_sources
from insitu.ir import reference
from insitu.ir.model import QuantModel
from insitu.rtl import streaming, unrolled
from insitu.sim.rtl import pick_simulator, simulate
from insitu.sim.vectors import save_vectors
from insitu.toolexec import find_tool, run_tool, tool_version

#: family -> (Yosys synthesis command, cell patterns per resource)
FAMILIES: dict[str, tuple[str, dict[str, re.Pattern]]] = {
    "ecp5": ("synth_ecp5 -top {top}", {"lut": re.compile(r"^LUT4$"), "ff": re.compile(r"^TRELLIS_FF$"),
                                        "dsp": re.compile(r"^MULT18X18D$"), "bram": re.compile(r"^DP16KD$"),
                                        "carry": re.compile(r"^CCU2C$"), "lutram": re.compile(r"^TRELLIS_DPR16X4$")}),
    "ice40": ("synth_ice40 -top {top}", {"lut": re.compile(r"^SB_LUT4$"), "ff": re.compile(r"^SB_DFF\w*$"),
                                          "dsp": re.compile(r"^SB_MAC16$"), "bram": re.compile(r"^SB_RAM40_4K\w*$"),
                                          "carry": re.compile(r"^SB_CARRY$"), "lutram": re.compile(r"^$^")}),
    "xc7": ("synth_xilinx -flatten -family xc7 -top {top}", XILINX_CELLS),
    "xcup": ("synth_xilinx -flatten -family xcup -top {top}", XILINX_CELLS),
}


@dataclass(frozen=True)
class Cost:
    architecture: str
    lanes: int
    family: str
    resources: dict[str, int]
    ii_cycles: int
    latency_cycles_first_to_valid: int
    latency_cycles_last_to_valid: int
    beats_per_sample: int
    cells: dict[str, int] = field(default_factory=dict)
    tool: str | None = None
    seconds: dict[str, float] = field(default_factory=dict)

    def latency_us(self, clock_mhz: float) -> float:
        """First input beat to result at a given clock (the clock itself is not estimated here)."""
        return self.latency_cycles_first_to_valid / clock_mhz

    def to_dict(self) -> dict:
        return {"kind": f"pre-place-and-route estimate (yosys {FAMILIES[self.family][0].split()[0]}), cycles from "
                        "RTL simulation", "architecture": self.architecture, "lanes": self.lanes,
                "family": self.family, **self.resources, "ii_cycles": self.ii_cycles,
                "latency_cycles_first_to_valid": self.latency_cycles_first_to_valid,
                "latency_cycles_last_to_valid": self.latency_cycles_last_to_valid,
                "beats_per_sample": self.beats_per_sample, "cells": self.cells, "tool": self.tool,
                "seconds": self.seconds}


def synthesise(verilog: list[Path], top: str, family: str, work: Path, timeout_s: float, dsp: bool = True
               ) -> tuple[dict[str, int], dict[str, int], str | None]:
    """(resources, raw cell counts, Yosys version) of the design, synthesised for `family` (`dsp=False`: the
    multipliers in LUTs, as `firmware.dsp=false` builds them)."""
    if family not in FAMILIES:
        raise ConfigError(f"no cost model for the family {family!r}", f"choose one of {', '.join(FAMILIES)}")
    command, patterns = FAMILIES[family]
    if not dsp and family != "ice40":
        command = command.replace(" -top", " -nodsp -top")
    names = copy_sources(verilog, work)
    (work / "cost.ys").write_text("".join(f"read_verilog -defer {n}\n" for n in names)
                                  + f"hierarchy -top {top}\n{command.format(top=top)}\ntee -o stat.txt stat\n")
    exe = find_tool("yosys")
    run_tool([exe, "-q", "-l", "yosys.log", "-s", "cost.ys"], work, work / "logs" / "yosys.log", timeout_s)
    cells = parse_stat((work / "stat.txt").read_text())
    resources = {res: sum(n for name, n in cells.items() if pat.match(name)) for res, pat in patterns.items()}
    if family == "ecp5":  # LUT4s in nextpnr's units (TRELLIS_COMB): a CCU2C carry cell and a 16x4 RAM hold two each
        resources["lut4"] = resources["lut"]
        resources["lut"] += 2 * resources["carry"] + 2 * resources["lutram"]
    return resources, cells, tool_version(exe)


def _random_inputs(qm: QuantModel, n: int, seed: int) -> np.ndarray:
    t, shape = qm.input.out_type, tuple(qm.input.shape)
    x = np.random.default_rng(seed).integers(t.min_int, t.max_int + 1, (n, *shape))
    return (x[:, 0] if shape[0] == 1 else x).astype(np.uint8 if not t.signed and t.width <= 8 else np.int64)


def model_cost(qm: QuantModel, work: Path, family: str = "ecp5", lanes: int = 1, architecture: str = "auto",
               latency_cutoff: float = 2.0, samples: int = 3, simulator: str = "auto", timeout_s: float = 3600,
               seed: int = 0, dsp: bool = True) -> Cost:
    """Resources from Yosys synthesis and cycles from a short bit-exact RTL simulation, written under `work`."""
    arch = unrolled.architecture_for(qm, architecture)
    t0 = time.monotonic()
    if arch == "streaming":
        design = streaming.generate(qm, work / "verilog", lanes, latency_cutoff)
    else:
        design = unrolled.generate(qm, work / "verilog", latency_cutoff)
    t_gen = time.monotonic() - t0
    resources, cells, tool = synthesise(design.files, design.top, family, work / "synth", timeout_s, dsp)
    t_syn = time.monotonic() - t0 - t_gen
    x = _random_inputs(qm, max(2, samples), seed)
    expected = reference.run(qm, x)
    vec = save_vectors(work / "vectors.npz", x, np.zeros(len(x), np.int64), expected, qm.output_type.frac)
    sim = simulate(design.files, design.to_dict(), vec, expected, work / "sim", len(x),
                   simulator=pick_simulator(simulator), timeout_s=timeout_s)
    seconds = {"generate": round(t_gen, 1), "synthesis": round(t_syn, 1), "simulation": round(sim.seconds, 1)}
    return Cost(arch, design.lanes, family, resources, sim.ii_cycles or design.beats, sim.latency_first_to_valid,
                sim.latency_last_to_valid, design.beats, cells, tool, seconds)
