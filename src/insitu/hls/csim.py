"""C simulation: compile the project's own testbench with g++, run it on tb_data, read the outputs exactly."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import numpy as np

from insitu.config import HLSConfig
from insitu.errors import ToolError
from insitu.hls.project import HLSProject, csim_script, ensure_executable
from insitu.toolexec import find_tool, run_tool


def build(project: HLSProject, cfg: HLSConfig) -> Path:
    find_tool("g++")
    script = project.path / "insitu_csim_build.sh"
    script.write_text(csim_script(project))
    ensure_executable(script)
    run_tool(["bash", script.name], project.path, project.path / "logs" / "csim_build.log", cfg.compile_timeout_s)
    return project.path / "csim.bin"


def run(project: HLSProject, cfg: HLSConfig) -> np.ndarray:
    """Integer outputs (N, K) at the model's output frac, parsed exactly from tb_data/csim_results.log (a map
    output flattened channel-first, as the IR)."""
    exe = project.path / "csim.bin"
    if not exe.exists():
        build(project, cfg)
    results = project.path / "tb_data" / "csim_results.log"
    results.unlink(missing_ok=True)
    run_tool([str(exe)], project.path, project.path / "logs" / "csim_run.log", cfg.run_timeout_s)
    got = parse_results(results, project.n_outputs, project.output_frac)
    if len(project.output_shape) > 1:  # a map: channels-last rows back to the IR's channel-first order
        last = (len(got), *project.output_shape[1:], project.output_shape[0])
        got = np.moveaxis(got.reshape(last), -1, 1).reshape(len(got), -1)
    return got


def parse_results(path: Path, n_outputs: int, frac: int) -> np.ndarray:
    if not path.exists():
        raise ToolError(f"C simulation wrote no results ({path} missing)", "see logs/csim_run.log in the project")
    rows = []
    for lineno, line in enumerate(path.read_text().splitlines(), 1):
        vals = line.split()
        if not vals:
            continue
        if len(vals) != n_outputs:
            raise ToolError(f"{path}:{lineno}: {len(vals)} values, expected {n_outputs}", "see logs/csim_run.log")
        ints = []
        for v in vals:
            q = Fraction(float(v)) * Fraction(2) ** frac  # a double holds every output exactly
            if q.denominator != 1 or abs(q) >= 1 << 53:
                raise ToolError(f"{path}:{lineno}: {v} is not on the output grid 2^-{frac}",
                                "the C simulation printed a rounded value; report this bug")
            ints.append(int(q))
        rows.append(ints)
    return np.asarray(rows, dtype=np.int64).reshape(-1, n_outputs)
