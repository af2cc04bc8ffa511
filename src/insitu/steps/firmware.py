"""Step `firmware`: the board shell around the core, then a bitstream (open flow) or a labelled resource
estimate (AMD boards), written as a self-contained bundle in firmware/<board>/. The shell's simulation over its
UART is the `shellsim` step, which runs beside this one.

The bundle is assembled in a staging folder and swapped in whole, so an interrupted or failed build leaves
the previous bundle as it was.
"""

from __future__ import annotations

import json
import platform
import shutil

from insitu.boards import get_board
from insitu.config import RunConfig
from insitu.errors import RTLError, ToolError
from insitu.firmware import cost, estimate, open_flow, vivado
from insitu.firmware.fit import check_fit_from_log, use_dsp
from insitu.pipeline import StepResult
from insitu.rtl import shell
from insitu.rundir import RunDir, atomic_replace_dir, atomic_write_json, sha256_file
from insitu.steps.shellsim import shell_spec

TOP = "insitu_shell"
OPEN_FAMILIES = {"open-ecp5": "ecp5", "open-ice40": "ice40"}


def _amd(cfg: RunConfig, board, design: dict, verilog: list, staging) -> tuple[dict, dict, dict]:
    """AMD boards: the Vivado bundle (the shell with the board's XDC, or the core as an AXI4-Stream IP), built when
    Vivado is on PATH; otherwise a labelled Yosys estimate of the core, and the scripts to run by hand."""
    mode = "shell" if board.has_shell_pins else "ip"
    vdir = staging / "vivado"
    core = [f for f in verilog if f.name not in ("insitu_shell.v", "insitu_clkgen.v", shell.uart_file().name)]
    files = verilog
    if mode == "ip":
        wrapper = staging / "verilog" / f"{vivado.IP_TOP}.v"
        wrapper.write_text(vivado.axis_wrapper(design))
        files = sorted([*core, wrapper])
    exe = vivado.find_vivado()
    if exe is not None:
        res = vivado.build(board, files, vdir, board.clock_mhz, mode, cfg.firmware.timeout_s, exe)
        if res.impl.get("bitstream"):
            shutil.copy(vdir / res.impl["bitstream"], staging / res.impl["bitstream"])
        return res.impl, {"built": True, "mode": mode, "scripts": "vivado/build.tcl"}, {"vivado": res.tool}
    vivado.write_project(board, files, vdir, board.clock_mhz, mode)
    est = estimate.estimate(board, core, design["top"], staging / "estimate", cfg.firmware.timeout_s)
    impl = {"board": board.name, "device": board.device, "fmax_mhz": None, "timing_met": None,
            **{k: est.resources.get(k, 0) for k in ("lut", "ff", "dsp", "bram")},
            "estimate": est.to_dict(), "bitstream": None, "bitstream_sha256": None}
    note = {"built": False, "mode": mode, "scripts": "vivado/build.tcl",
            "reason": "not built: vivado not found (put Vivado on PATH, or run vivado/run.sh where it is)"}
    return impl, note, {"yosys": est.tool}


def run(cfg: RunConfig, run: RunDir) -> StepResult:
    if not cfg.firmware.enabled:
        return StepResult([], {"skipped": "firmware.enabled=false"})
    board = get_board(cfg.firmware.board)
    design = json.loads(run.path("rtl", "design.json").read_text())
    core_files = [run.path("rtl", "verilog", f) for f in design["files"]]
    vec_path = run.path("export", "vectors.npz")
    staging = run.path(f".firmware-staging-{board.name}")
    shutil.rmtree(staging, ignore_errors=True)
    (staging / "verilog").mkdir(parents=True)
    for f in core_files:
        shutil.copy(f, staging / "verilog" / f.name)
    shutil.copy(shell.uart_file(), staging / "verilog" / shell.uart_file().name)
    if board.flow == "open-ecp5":
        clkgen, clock = shell.clkgen_ecp5(board.clock_mhz, cfg.firmware.clock_mhz)
    else:
        clkgen, clock = shell.clkgen_passthrough(), board.clock_mhz
    spec = shell_spec(cfg, design, board)
    (staging / "verilog" / "insitu_shell.v").write_text(shell.generate(spec))
    (staging / "verilog" / "insitu_clkgen.v").write_text(clkgen)
    verilog = sorted((staging / "verilog").glob("*.v"))
    protocol = {"image_bytes": spec.image_bytes, "value_bytes": spec.value_bytes, "value_bits": spec.pixel_bits,
                "answer_bytes": 1 + spec.n_classes * spec.score_bytes, "score_bytes": spec.score_bytes}
    summary: dict = {"board": board.name, "device": board.device, "flow": board.flow, "clock_mhz": round(clock, 4),
                     "uart_baud": spec.baud, "protocol": protocol}
    tools: dict = {}
    dsp, dsp_why = use_dsp(cfg.firmware.dsp, design.get("multipliers", 0), board.device)
    summary["dsp_mapping"] = {"dsp": dsp, "why": dsp_why}
    if board.flow in ("open-ecp5", "open-ice40") and cfg.firmware.estimate_only:
        fam = OPEN_FAMILIES[board.flow]
        res_est, cells, tool = cost.synthesise(verilog, TOP, fam, staging / "estimate", cfg.firmware.timeout_s, dsp)
        summary["impl"] = {"board": board.name, "device": board.device, "fmax_mhz": None, "timing_met": None,
                           **{k: res_est.get(k, 0) for k in ("lut", "ff", "dsp", "bram")},
                           "estimate": {"kind": f"pre-place-and-route estimate (yosys synth_{fam}, the whole shell)",
                                        "family": fam, **res_est, "cells": cells, "tool": tool},
                           "bitstream": None, "bitstream_sha256": None}
        tools = {"yosys": tool}
    elif board.flow in ("open-ecp5", "open-ice40"):
        try:
            res = open_flow.build(board, verilog, TOP, staging / "build", clock, cfg.firmware.seed,
                                  cfg.firmware.timeout_s, router=cfg.firmware.router, dsp=dsp)
        except ToolError:
            check_fit_from_log(staging / "build" / "nextpnr.log", board, design["lanes"])
            raise
        asked = clock
        if cfg.firmware.pll == "fastest" and board.flow == "open-ecp5":
            res, setting = open_flow.retune_pll(res, board, staging / "build", TOP, cfg.firmware.timeout_s)
            clkgen, clock = shell.clkgen_ecp5(board.clock_mhz, setting.mhz, at_most=True)
            (staging / "verilog" / "insitu_clkgen.v").write_text(clkgen)  # what the bitstream holds
            summary["clock_mhz"] = round(clock, 4)
        bit = staging / res.bitstream.name
        shutil.copy(res.bitstream, bit)
        rep = res.report
        summary["impl"] = {"board": board.name, "device": board.device, "fmax_mhz": round(rep.fmax_mhz, 2),
                           "target_mhz": round(rep.target_mhz, 2), "timing_met": rep.timing_met,
                           **{k: rep.used.get(k, 0) for k in ("lut", "ff", "dsp", "bram")},
                           "available": rep.available,
                           "percent": {k: round(rep.percent(k), 2) for k in ("lut", "ff", "dsp", "bram")},
                           "bitstream": bit.name, "bitstream_sha256": res.bitstream_sha256,
                           "seconds": res.seconds, "seed": cfg.firmware.seed, "router": cfg.firmware.router,
                           "clock_mhz": round(clock, 4), "pll": {"mode": cfg.firmware.pll, "asked_mhz": round(asked, 4),
                                                                 "bitstream_mhz": round(clock, 4)},
                           "clocks": {n: {"achieved_mhz": round(a, 2), "constraint_mhz": round(c, 4)}
                                      for n, (a, c) in rep.clocks.items()}}
        tools = dict(res.tools)
        shutil.copy(staging / "build" / f"{TOP}.{'lpf' if board.flow == 'open-ecp5' else 'pcf'}", staging)
    elif board.flow in ("estimate", "vivado"):
        summary["impl"], summary["vivado"], tools = _amd(cfg, board, design, verilog, staging)
    else:  # pragma: no cover - Flow is a closed Literal
        raise RTLError(f"unknown flow {board.flow}", "")
    summary["lanes"] = design["lanes"]
    shutil.copy(vec_path, staging / "vectors.npz")
    atomic_write_json(staging / "impl.json", summary)
    files = sorted(p for p in staging.rglob("*") if p.is_file())
    manifest = {"board": board.name, "device": board.device, "tools": tools, "python": platform.python_version(),
                "files": {str(p.relative_to(staging)): sha256_file(p) for p in files}}
    atomic_write_json(staging / "bundle.json", manifest)
    final = run.path("firmware", board.name)
    final.parent.mkdir(parents=True, exist_ok=True)
    atomic_replace_dir(staging, final)
    outs = [final / "impl.json", final / "bundle.json"]
    if summary["impl"].get("bitstream"):
        outs.append(final / summary["impl"]["bitstream"])
    return StepResult(outs, summary, tools)
