"""The open flow: Yosys synthesis -> nextpnr place and route -> ecppack/icepack, for ECP5 and iCE40 boards.

Scripts are generated first (`synth.ys`, `run.sh`) and executed second, from inside the build directory
with relative paths (the yowasp WebAssembly tools see only that directory). Every tool runs under a timeout
with its log kept. Timing is never fatal here (`--timing-allow-fail`): the achieved Fmax is read from the
report and the caller decides what a missed target means.
"""

from __future__ import annotations

import shlex
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

from insitu.boards import Board, constraints
from insitu.errors import ConfigError
from insitu.firmware.nextpnr_report import PnrReport, parse_report
from insitu.firmware.pll import PllSetting, fastest_setting, patch_textcfg
from insitu.rundir import sha256_file
from insitu.toolexec import find_tool, run_tool, tool_version


@dataclass(frozen=True)
class FlowResult:
    bitstream: Path
    bitstream_sha256: str
    report: PnrReport
    seconds: dict[str, float]
    tools: dict[str, str | None]


def _steps(board: Board, top: str, freq_mhz: float, seed: int, router: str = "router1") -> list[list[str]]:
    if board.flow == "open-ecp5":
        return [["yosys", "-q", "-l", "yosys.log", "-s", "synth.ys"],
                ["nextpnr-ecp5", board.nextpnr_device, "--package", board.package, "--speed", board.speed,
                 "--json", f"{top}.json", "--lpf", f"{top}.lpf", "--textcfg", f"{top}.config",
                 "--report", "report.json", "--freq", f"{freq_mhz:g}", "--seed", str(seed),
                 "--timing-allow-fail", "--router", router, "-q", "-l", "nextpnr.log"],
                ["ecppack", "--compress", f"{top}.config", f"{top}.bit"]]
    if board.flow == "open-ice40":
        return [["yosys", "-q", "-l", "yosys.log", "-s", "synth.ys"],
                ["nextpnr-ice40", board.nextpnr_device, "--package", board.package, "--json", f"{top}.json",
                 "--pcf", f"{top}.pcf", "--asc", f"{top}.asc", "--report", "report.json", "--freq",
                 f"{freq_mhz:g}", "--seed", str(seed), "--timing-allow-fail", "--router", router, "-q", "-l",
                 "nextpnr.log"],
                ["icepack", f"{top}.asc", f"{top}.bin"]]
    raise ConfigError(f"board {board.name} is built by the {board.flow!r} flow, not the open flow",
                      "choose an ECP5 or iCE40 board (see `insitu boards`)")


def copy_sources(verilog: list[Path], build_dir: Path) -> list[str]:
    """Copy the Verilog into build_dir/src; their paths relative to build_dir (the WASI tools see only it)."""
    src = build_dir / "src"
    src.mkdir(parents=True, exist_ok=True)
    for f in verilog:
        shutil.copy(f, src / f.name)
    return [f"src/{f.name}" for f in verilog]


def write_scripts(board: Board, verilog: list[Path], top: str, build_dir: Path, freq_mhz: float,
                  seed: int, parameters: dict[str, int] | None = None, router: str = "router1",
                  dsp: bool = True) -> list[list[str]]:
    """Copy the sources in and write synth.ys (with the top's parameters), the pin constraints and run.sh;
    returns the command list. `dsp=False` maps every multiplier to LUTs (ECP5: synth_ecp5 -nodsp; iCE40
    synthesis uses no DSP unless asked)."""
    names = copy_sources(verilog, build_dir)
    synth = ("synth_ecp5" + ("" if dsp else " -nodsp")) if board.flow == "open-ecp5" else "synth_ice40"
    chparam = "".join(f" -chparam {k} {int(v)}" for k, v in (parameters or {}).items())
    (build_dir / "synth.ys").write_text(
        "".join(f"read_verilog -defer {n}\n" for n in names)
        + f"hierarchy -top {top}{chparam}\n{synth} -top {top} -json {top}.json\n")
    ext = "lpf" if board.flow == "open-ecp5" else "pcf"
    (build_dir / f"{top}.{ext}").write_text(constraints(board))
    steps = _steps(board, top, freq_mhz, seed, router)
    (build_dir / "run.sh").write_text("#!/usr/bin/env bash\n# Re-run this build by hand (yowasp-<tool> also works).\n"
                                      "set -euo pipefail\ncd \"$(dirname \"$0\")\"\n"
                                      + "".join(shlex.join(s) + "\n" for s in steps))
    return steps


def build(board: Board, verilog: list[Path], top: str, build_dir: Path, freq_mhz: float | None = None,
          seed: int = 1, timeout_s: float = 1800, parameters: dict[str, int] | None = None,
          router: str = "router1", dsp: bool = True) -> FlowResult:
    """Synthesise, place, route and pack `top` for `board` in `build_dir`."""
    freq = freq_mhz or board.clock_mhz
    steps = write_scripts(board, verilog, top, build_dir, freq, seed, parameters, router, dsp)
    seconds, tools = {}, {}
    for argv in steps:
        exe = find_tool(argv[0])
        tools[argv[0]] = tool_version(exe)
        t0 = time.monotonic()
        run_tool([exe, *argv[1:]], build_dir, build_dir / "logs" / f"{argv[0]}.log", timeout_s)
        seconds[argv[0]] = round(time.monotonic() - t0, 2)
    bit = build_dir / (f"{top}.bit" if board.flow == "open-ecp5" else f"{top}.bin")
    return FlowResult(bit, sha256_file(bit), parse_report(build_dir / "report.json"), seconds, tools)


def retune_pll(res: FlowResult, board: Board, build_dir: Path, top: str, timeout_s: float) -> tuple[FlowResult,
                                                                                                     PllSetting]:
    """Set the routed design's PLL to the fastest legal frequency at or below the core clock's Fmax, repack the
    bitstream, and append the same rewrite to run.sh. ECP5 only (iCE40 boards run the oscillator's clock)."""
    if board.flow != "open-ecp5":
        raise ConfigError(f"board {board.name} has no PLL retuning ({board.flow})", "set firmware.pll=asked")
    setting = fastest_setting(board.clock_mhz, res.report.fmax_mhz)
    cfg = build_dir / f"{top}.config"
    patch_textcfg(cfg, setting)
    pack = ["ecppack", "--compress", f"{top}.config", f"{top}.bit"]
    t0 = time.monotonic()
    run_tool([find_tool("ecppack"), *pack[1:]], build_dir, build_dir / "logs" / "ecppack-retuned.log", timeout_s)
    with (build_dir / "run.sh").open("a") as fh:
        fh.write(f"# the PLL set after routing to {setting.mhz:g} MHz, the fastest the routed design meets\n"
                 + shlex.join(["sed", "-i", setting.sed_script(), f"{top}.config"]) + "\n" + shlex.join(pack) + "\n")
    seconds = {**res.seconds, "ecppack_retuned": round(time.monotonic() - t0, 2)}
    return FlowResult(res.bitstream, sha256_file(res.bitstream), res.report.with_core_target(setting.mhz), seconds,
                      res.tools), setting
