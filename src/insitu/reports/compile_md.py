"""report.json and report.md of `insitu compile`: every number from an artifact of the run."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from insitu.reports.build import firmware_section
from insitu.reports.firmware_md import section as firmware_lines
from insitu.rundir import RunDir


def _read(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text())


def build(run: RunDir) -> dict[str, Any]:
    m = run.manifest()
    cfg = _read(run.path("config.json"))
    imp = _read(run.path("export", "import.json"))
    chk = _read(run.path("check", "check.json"))
    hls = _read(run.path("hls", "csim.json"))
    rep: dict[str, Any] = {
        "app": "compile",
        "import": {k: imp[k] for k in ("format", "source", "layers", "layer_kinds", "params", "input_shape",
                                       "ir_input_shape", "input_quant", "output_type", "inputs")},
        "reference": {"vectors": chk["vectors"], "bit_exact_vectors": chk["bit_exact_vectors"],
                      "against": chk["against"]},
        "csim": {"vectors": hls["csim"]["vectors"], "bit_exact_vectors": hls["csim"]["bit_exact_vectors"],
                 "io_type": hls["io_type"], "part": hls["part"], "clock_period_ns": hls["clock_period_ns"]},
        **firmware_section(run, cfg),
        "stage_seconds": {name: rec["seconds"] for name, rec in m["stages"].items()},
        "versions": m.get("versions", {}),
    }
    rtl = rep.get("rtl")
    if rtl:
        rep["rtl"] = {**rtl, "vectors": rtl["vectors"], "bit_exact_vectors": rtl["bit_exact_vectors"]}
    return rep


def all_exact(rep: dict[str, Any]) -> bool:
    parts = [rep["reference"], rep["csim"]] + ([rep["rtl"]] if rep.get("rtl") else [])
    return all(p["vectors"] == p["bit_exact_vectors"] for p in parts)


def markdown(rep: dict[str, Any]) -> str:
    imp, ref, cs = rep["import"], rep["reference"], rep["csim"]
    kinds = ", ".join(f"{k} x{v}" for k, v in imp["layer_kinds"].items())
    iq = imp["input_quant"]
    lines = ["# insitu compile report", "",
             f"- Model: `{imp['source']}` ({imp['format']}), {imp['layers']} IR layers ({kinds}), "
             f"{imp['params']:,} parameters, input {tuple(imp['input_shape'])}, output {imp['output_type']}.",
             f"- Input quantizer: {'signed' if iq['signed'] else 'unsigned'} {iq['bits']} bits, scale 2^-{iq['frac']}, "
             f"rounding {iq['rounding_mode']}{', narrow' if iq['narrow'] else ''}; inputs: {imp['inputs']}.",
             "", "| stage | vectors | bit-exact |", "|---|---:|---:|"]
    for name, r in ref["against"].items():
        lines.append(f"| IR reference vs {name} | {r['vectors']} | {r['bit_exact_vectors']} |")
    lines.append(f"| C simulation (hls4ml, {cs['io_type']}) vs reference | {cs['vectors']} | {cs['bit_exact_vectors']} |")
    rtl = rep.get("rtl")
    if rtl:
        lines.append(f"| RTL simulation ({rtl['simulator']}, {rtl.get('architecture')}) vs reference | "
                     f"{rtl['vectors']} | {rtl['bit_exact_vectors']} |")
    lines += ["", f"**{'Every stage is bit-exact.' if all_exact(rep) else 'MISMATCH: see the table.'}**", ""]
    lines += firmware_lines(rep, None)
    lines += ["", "| step | seconds |", "|---|---:|"]
    lines += [f"| {k} | {v:.1f} |" for k, v in rep["stage_seconds"].items()]
    return "\n".join(lines) + "\n"
