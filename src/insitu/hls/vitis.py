"""Vitis HLS on the hls4ml project: C synthesis, C/RTL co-simulation and the IP export, when `vitis-run` (Vitis
2024+), `vitis_hls` or `vivado_hls` is on PATH, under a timeout; then the reports, read without ever failing on a
file that is missing (hls4ml's own reader raises IndexError when the solution's .app file is absent).

`synthesize(project, name, timeout)` sets hls4ml's build_opt.tcl (csim off: insitu's own C simulation has run,
synth, cosim and export on) and runs build_prj.tcl; `read_reports(project, name)` returns what the reports say
and which files were not there.
"""

from __future__ import annotations

import re
import time
import xml.etree.ElementTree as ET
from pathlib import Path

from insitu.errors import ToolError
from insitu.toolexec import first_on_path, run_tool, tool_version

TOOLS = ("vitis-run", "vitis_hls", "vivado_hls")


def find_tool() -> str | None:
    return first_on_path(TOOLS)


def command(exe: str) -> list[str]:
    if Path(exe).name == "vitis-run":
        return [exe, "--tcl", "build_prj.tcl", "--mode", "hls"]
    return [exe, "-f", "build_prj.tcl"]


def write_options(project: Path, synth: bool = True, cosim: bool = True, export: bool = True) -> None:
    opts = {"reset": 0, "csim": 0, "synth": int(synth), "cosim": int(cosim), "validation": 0,
            "export": int(export), "vsynth": 0, "fifo_opt": 0}
    (project / "build_opt.tcl").write_text("array set opt {\n" + "".join(f"    {k:<10} {v}\n" for k, v in opts.items())
                                           + "}\n")


def _float(node: ET.Element | None, path: str) -> float | None:
    el = node.find(path) if node is not None else None
    if el is None or el.text is None:
        return None
    try:
        return float(el.text.strip().split()[0])
    except (ValueError, IndexError):
        return None


def parse_csynth(path: Path) -> dict:
    """Latency (cycles) min/max, II min/max, estimated and target clock, resources and availability."""
    try:
        root = ET.parse(path).getroot()
    except ET.ParseError as exc:
        raise ToolError(f"the C-synthesis report {path} is not valid XML: {exc}",
                        "re-run the synthesis; the report may have been cut short") from None
    perf, lat = root.find("PerformanceEstimates"), root.find("PerformanceEstimates/SummaryOfOverallLatency")
    area = root.find("AreaEstimates")

    def res(section: str) -> dict:
        out = {}
        node = area.find(section) if area is not None else None
        for child in (node if node is not None else []):
            key = {"DSP48E": "dsp", "BRAM_18K": "bram_18k"}.get(child.tag, child.tag.lower())
            out[key] = _float(node, child.tag)
        return out

    def i(v: float | None) -> int | None:
        return None if v is None else int(v)

    est = _float(perf, "SummaryOfTimingAnalysis/EstimatedClockPeriod")
    return {"latency_min": i(_float(lat, "Best-caseLatency")), "latency_max": i(_float(lat, "Worst-caseLatency")),
            "ii_min": i(_float(lat, "Interval-min")), "ii_max": i(_float(lat, "Interval-max")),
            "estimated_clock_ns": est, "target_clock_ns": _float(root, "UserAssignments/TargetClockPeriod"),
            "estimated_fmax_mhz": round(1000 / est, 2) if est else None,
            "resources": {k: i(v) for k, v in res("Resources").items()},
            "available": {k: i(v) for k, v in res("AvailableResources").items()}}


def parse_cosim(text: str) -> dict:
    """The Verilog row of a cosim report: status, latency min/avg/max, interval min/avg/max."""
    for line in text.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) >= 2 and cells[0] in ("Verilog", "VHDL") and cells[1] != "NA":
            nums = [int(c) if c.isdigit() else None for c in cells[2:8]] + [None] * 6
            return {"rtl": cells[0], "status": cells[1], "latency_min": nums[0], "latency_avg": nums[1],
                    "latency_max": nums[2], "ii_min": nums[3], "ii_avg": nums[4], "ii_max": nums[5]}
    return {"status": None}


def read_reports(project: Path, name: str) -> dict:
    sol = project / f"{name}_prj" / "solution1"
    files = {"csynth": sol / "syn" / "report" / f"{name}_csynth.xml",
             "cosim": sol / "sim" / "report" / f"{name}_cosim.rpt"}
    out: dict = {"missing": [str(p.relative_to(project)) for p in files.values() if not p.is_file()]}
    if files["csynth"].is_file():
        out["csynth"] = parse_csynth(files["csynth"])
    if files["cosim"].is_file():
        out["cosim"] = parse_cosim(files["cosim"].read_text(errors="replace"))
    ips = sorted((sol / "impl" / "ip").glob("*.zip")) if (sol / "impl" / "ip").is_dir() else []
    out["ip"] = str(ips[0].relative_to(project)) if ips else None
    return out


def synthesize(project: Path, name: str, timeout_s: float, exe: str) -> dict:
    """Run C synthesis, co-simulation and the IP export; the reports as `read_reports` gives them."""
    write_options(project)
    t0 = time.monotonic()
    run_tool(command(exe), project, project / "logs" / "vitis_hls.log", timeout_s)
    out = read_reports(project, name)
    out.update(tool=tool_version(exe, "-version"), seconds=round(time.monotonic() - t0, 1))
    if "csynth" not in out:
        raise ToolError(f"{Path(exe).name} finished but wrote no C-synthesis report ({out['missing'][0]})",
                        f"read {project / 'logs' / 'vitis_hls.log'}")
    cos = out.get("cosim", {})
    if cos.get("status") and not re.match(r"(?i)pass", cos["status"]):
        raise ToolError(f"the C/RTL co-simulation of the hls4ml project reports {cos['status']}",
                        f"read {project / 'logs' / 'vitis_hls.log'} and the cosim report")
    return out
