"""Read nextpnr's `--report` JSON: achieved Fmax per clock and cell utilisation."""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from pathlib import Path

from insitu.errors import ToolError

#: nextpnr cell types -> the resource names insitu reports.
RESOURCES = {"lut": ("TRELLIS_COMB", "ICESTORM_LC"), "ff": ("TRELLIS_FF",), "bram": ("DP16KD", "ICESTORM_RAM"),
             "dsp": ("MULT18X18D", "ICESTORM_DSP"), "io": ("TRELLIS_IO", "SB_IO")}


@dataclass(frozen=True)
class PnrReport:
    fmax_mhz: float  # achieved by the core clock (the slowest clock when none is named so)
    target_mhz: float  # that clock's constraint
    used: dict[str, int]
    available: dict[str, int]
    clocks: dict[str, tuple[float, float]] = field(default_factory=dict)  # net -> (achieved, constraint) MHz
    core_clock: str = ""

    @property
    def timing_met(self) -> bool:
        """Every constrained clock meets its constraint (the core's at its own target)."""
        others = all(a >= c for n, (a, c) in self.clocks.items() if n != self.core_clock)
        return self.fmax_mhz >= self.target_mhz and others

    def with_core_target(self, mhz: float) -> PnrReport:
        """The same routed design judged against another core clock (the PLL retuned after routing)."""
        clocks = dict(self.clocks)
        if self.core_clock in clocks:
            clocks[self.core_clock] = (self.fmax_mhz, mhz)
        return replace(self, target_mhz=mhz, clocks=clocks)

    def percent(self, resource: str) -> float:
        avail = self.available.get(resource, 0)
        return 100.0 * self.used.get(resource, 0) / avail if avail else 0.0


#: Net names of the core clock after Yosys flattens the shell: the clock generator's output, or the shell's wire.
CORE_CLOCK_NETS = ("u_clk.clk", "cclk")


def parse_report(path: Path, core_clock: tuple[str, ...] = CORE_CLOCK_NETS) -> PnrReport:
    """`core_clock`: net names (after nextpnr's `$glbnet$` prefix) of the clock the latency is counted in; with
    none of them in the report (a design with one clock), the slowest clock."""
    try:
        doc = json.loads(Path(path).read_text())
        fmax = doc["fmax"]
        util = doc["utilization"]
    except (OSError, json.JSONDecodeError, KeyError) as exc:
        raise ToolError(f"cannot read nextpnr report {path}: {exc}", "see the nextpnr log beside it") from None
    if not fmax:
        raise ToolError(f"nextpnr report {path} has no clock", "the design has no constrained clock")
    clocks = {n: (float(c["achieved"]), float(c["constraint"])) for n, c in fmax.items()}
    named = [n for n in clocks if n.removeprefix("$glbnet$") in core_clock]
    core = named[0] if named else min(clocks, key=lambda n: clocks[n][0])
    used, avail = {}, {}
    for name, cells in RESOURCES.items():
        for cell in cells:
            if cell in util:
                used[name] = int(util[cell]["used"])
                avail[name] = int(util[cell]["available"])
    return PnrReport(clocks[core][0], clocks[core][1], used, avail, clocks, core)
