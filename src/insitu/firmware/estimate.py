"""Pre-place-and-route resource estimates for AMD parts: Yosys `synth_xilinx -flatten` and its cell counts.

These are labelled estimates everywhere they appear: no timing, no placement, Yosys' own mapping.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from insitu.boards import Board
from insitu.firmware.open_flow import copy_sources
from insitu.toolexec import find_tool, run_tool, tool_version

#: Yosys cell types -> reported resource.
XILINX_CELLS = {"lut": re.compile(r"^LUT\d$"), "ff": re.compile(r"^FD[A-Z]*$"), "dsp": re.compile(r"^DSP48E\d?$"),
                "bram": re.compile(r"^RAMB(18|36)E\d$"), "lutram": re.compile(r"^(RAM\d+[XM]|SRL)"),
                "carry": re.compile(r"^CARRY\d$")}


@dataclass(frozen=True)
class Estimate:
    family: str
    cells: dict[str, int]
    resources: dict[str, int]
    tool: str | None

    def to_dict(self) -> dict:
        return {"kind": "pre-place-and-route estimate (yosys synth_xilinx -flatten)", "family": self.family,
                **self.resources, "cells": self.cells, "tool": self.tool}


def parse_stat(text: str) -> dict[str, int]:
    """Cell counts of the last `stat` table in a Yosys log (flattened design)."""
    block = text[text.rfind("Number of cells") if "Number of cells" in text else text.rfind("cells"):]
    cells: dict[str, int] = {}
    for m in re.finditer(r"^\s+(\d+)\s+(\$?[A-Za-z_][\w$]*)\s*$", block, re.M):
        cells[m.group(2)] = cells.get(m.group(2), 0) + int(m.group(1))
    if not cells:  # older format: "     LUT4     123"
        for m in re.finditer(r"^\s+(\$?[A-Za-z_][\w$]*)\s+(\d+)\s*$", block, re.M):
            cells[m.group(1)] = int(m.group(2))
    return cells


def summarise(cells: dict[str, int]) -> dict[str, int]:
    out = {k: 0 for k in XILINX_CELLS}
    for name, n in cells.items():
        for res, pat in XILINX_CELLS.items():
            if pat.match(name):
                out[res] += n
    return out


def write_script(board: Board, verilog: list[Path], top: str, work: Path) -> Path:
    """Copy the sources in and write estimate.ys (relative paths, for the WASI build of Yosys)."""
    names = copy_sources(verilog, work)
    (work / "estimate.ys").write_text("".join(f"read_verilog -defer {n}\n" for n in names)
                                      + f"hierarchy -top {top}\nsynth_xilinx -flatten -family {board.family} "
                                        f"-top {top}\ntee -o stat.txt stat\n")
    return work / "estimate.ys"


def estimate(board: Board, verilog: list[Path], top: str, work: Path, timeout_s: float) -> Estimate:
    write_script(board, verilog, top, work)
    exe = find_tool("yosys")
    run_tool([exe, "-q", "-l", "yosys.log", "-s", "estimate.ys"], work, work / "logs" / "yosys.log", timeout_s)
    cells = parse_stat((work / "stat.txt").read_text())
    return Estimate(board.family, cells, summarise(cells), tool_version(exe))
