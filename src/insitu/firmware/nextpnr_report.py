"""Read nextpnr's `--report` JSON: achieved Fmax per clock and cell utilisation."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from insitu.errors import ToolError

#: nextpnr cell types -> the resource names insitu reports.
RESOURCES = {"lut": ("TRELLIS_COMB", "ICESTORM_LC"), "ff": ("TRELLIS_FF",), "bram": ("DP16KD", "ICESTORM_RAM"),
             "dsp": ("MULT18X18D", "ICESTORM_DSP"), "io": ("TRELLIS_IO", "SB_IO")}


@dataclass(frozen=True)
class PnrReport:
    fmax_mhz: float  # achieved, of the slowest constrained clock
    target_mhz: float
    used: dict[str, int]
    available: dict[str, int]

    @property
    def timing_met(self) -> bool:
        return self.fmax_mhz >= self.target_mhz

    def percent(self, resource: str) -> float:
        avail = self.available.get(resource, 0)
        return 100.0 * self.used.get(resource, 0) / avail if avail else 0.0


def parse_report(path: Path) -> PnrReport:
    try:
        doc = json.loads(Path(path).read_text())
        fmax = doc["fmax"]
        util = doc["utilization"]
    except (OSError, json.JSONDecodeError, KeyError) as exc:
        raise ToolError(f"cannot read nextpnr report {path}: {exc}", "see the nextpnr log beside it") from None
    if not fmax:
        raise ToolError(f"nextpnr report {path} has no clock", "the design has no constrained clock")
    slowest = min(fmax.values(), key=lambda c: c["achieved"])
    used, avail = {}, {}
    for name, cells in RESOURCES.items():
        for cell in cells:
            if cell in util:
                used[name] = int(util[cell]["used"])
                avail[name] = int(util[cell]["available"])
    return PnrReport(float(slowest["achieved"]), float(slowest["constraint"]), used, avail)
