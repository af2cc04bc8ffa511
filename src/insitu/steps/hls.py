"""Step `hls`: write the hls4ml project, compile its C simulation and compare it bit for bit with the
reference over the test vectors; then, when Vitis HLS is on PATH, C synthesis, co-simulation and the IP export
(`insitu.hls.vitis`), their reports in csim.json. The project is built in a staging folder and moved into place only when
the simulation matched; on a mismatch the staging project is kept for inspection and the step fails."""

from __future__ import annotations

import shutil

from insitu.config import RunConfig
from insitu.errors import MismatchError
from insitu.hls import csim, vitis
from insitu.hls.project import write_project
from insitu.ir.model import QuantModel
from insitu.pipeline import StepResult
from insitu.rundir import RunDir, atomic_replace_dir, atomic_write_json
from insitu.sim.compare import compare
from insitu.sim.vectors import load_vectors
from insitu.toolexec import tool_version


def run(cfg: RunConfig, run: RunDir) -> StepResult:
    qm = QuantModel.load(run.path("export"))
    vec = load_vectors(run.path("export", "vectors.npz")).head(cfg.hls.csim_vectors)
    staging = run.path(".hls-staging")
    shutil.rmtree(staging, ignore_errors=True)
    project = write_project(qm, cfg.hls, staging / "project", vec.images, vec.expected_real())
    csim.build(project, cfg.hls)
    got = csim.run(project, cfg.hls)
    result = compare(vec.expected, got, "csim")
    summary = {"csim": result.to_dict(), "io_type": cfg.hls.io_type, "part": cfg.hls.part,
               "clock_period_ns": cfg.hls.clock_period_ns, "backend": cfg.hls.backend}
    if not result.ok:
        atomic_write_json(staging / "csim.json", summary)
        raise MismatchError(f"C simulation differs from the reference on {result.vectors - result.bit_exact_vectors}"
                            f" of {result.vectors} vectors:\n{result.report}",
                            f"the project is kept in {staging} for inspection; this is a bug in insitu")
    exe = vitis.find_tool() if cfg.hls.synth == "auto" else None
    summary["vitis"] = vitis.synthesize(project.path, project.name, cfg.hls.synth_timeout_s, exe) if exe else \
        {"run": False, "reason": "not run: " + ("hls.synth=off" if cfg.hls.synth == "off" else
                                                "vitis-run / vitis_hls / vivado_hls not found")}
    atomic_write_json(staging / "csim.json", summary)
    final = run.path("hls")
    atomic_replace_dir(staging, final)
    outs = [final / "csim.json", final / "project" / "tb_data" / "csim_results.log",
            final / "project" / "firmware" / f"{project.name}.cpp"]
    return StepResult(outs, summary, {"g++": tool_version("g++")})
