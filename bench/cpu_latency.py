"""CPU latency baseline: teacher and student, PyTorch and ONNX Runtime, 1 thread and all threads.

For each (model, runtime, threads, batch) it times many inferences after a warm-up and prints the median
and the 99th percentile per call and per sample. Batch 1 is what a sorter sees (one cell at a time);
batched numbers show the best throughput a CPU can give. Models come from a run directory (--run) or, when
none is given, are the default architectures with random weights (latency does not depend on the values).
The student runs in float: on a CPU that is the fastest exact-enough form; its 8-bit input is the same.

    python bench/cpu_latency.py [--run runs/cells-...] [--iters 2000] [--batch 256]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from rich.console import Console
from rich.table import Table

from insitu.config import build_config, load_config
from insitu.distill.student import build_student, weight_params
from insitu.distill.teacher import ResNetTeacher, count_params


def _models(run: Path | None):
    if run is not None:
        from insitu.distill.checkpoint import load_checkpoint
        from insitu.rundir import RunDir
        from insitu.steps.distill import load_student

        cfg = load_config(run / "config.json")
        rd = RunDir(run)
        info = rd.manifest()["stages"]["data"]["summary"]
        k, size = len(info["classes"]), info["image_size"]
        teacher = ResNetTeacher(cfg.teacher, k)
        load_checkpoint(run / "teacher" / "teacher.pt", teacher, "teacher", {**cfg.teacher.model_dump(mode="json"),
                                                                               "classes": k})
        student = load_student(rd, cfg, "kd_float")
    else:
        cfg = build_config()
        k, size = 3, cfg.data.image_size
        teacher = ResNetTeacher(cfg.teacher, k)
        student = build_student(cfg.student, k, size, quantized=False)
    return {"teacher": teacher.eval(), "student": student.eval()}, size


def _stats(times: list[float], batch: int) -> tuple[float, float, float]:
    a = np.asarray(times) * 1e6
    return float(np.median(a)), float(np.percentile(a, 99)), float(np.median(a)) / batch


def _time(fn, iters: int) -> list[float]:
    for _ in range(min(50, iters // 10 + 1)):
        fn()
    out = []
    for _ in range(iters):
        t0 = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t0)
    return out


def bench_torch(model, x: torch.Tensor, threads: int, iters: int) -> list[float]:
    torch.set_num_threads(threads)
    with torch.inference_mode():
        return _time(lambda: model(x), iters)


def bench_ort(model, x: torch.Tensor, threads: int, iters: int, folder: Path) -> list[float]:
    import onnxruntime as ort

    path = folder / f"{type(model).__name__}_{x.shape[0]}.onnx"
    if not path.exists():
        torch.onnx.export(model, (x,), str(path), input_names=["x"], output_names=["y"], dynamo=False)
    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    sess = ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
    feed = {"x": x.numpy()}
    return _time(lambda: sess.run(None, feed), iters)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--run", type=Path, default=None)
    ap.add_argument("--iters", type=int, default=2000)
    ap.add_argument("--batch", type=int, default=256)
    args = ap.parse_args(argv)
    models, size = _models(args.run)
    cores = os.cpu_count() or 1
    table = Table(title=f"CPU latency on this machine ({cores} cores), input 1x{size}x{size}, "
                        f"{args.iters} timed calls (batch {args.batch}: {max(20, args.iters // 20)})")
    for col in ("model", "params", "runtime", "threads", "batch", "median µs/call", "p99 µs/call",
                "median µs/sample"):
        table.add_column(col, justify="right" if col not in ("model", "runtime") else "left")
    with tempfile.TemporaryDirectory() as tmp:
        for name, model in models.items():
            params = weight_params(model) if name == "student" else count_params(model)
            for batch in (1, args.batch):
                x = torch.rand(batch, 1, size, size)
                iters = args.iters if batch == 1 else max(20, args.iters // 20)
                for threads in sorted({1, cores}):
                    for runtime in ("pytorch", "onnxruntime"):
                        if runtime == "pytorch":
                            times = bench_torch(model, x, threads, iters)
                        else:
                            times = bench_ort(model, x, threads, iters, Path(tmp))
                        med, p99, per = _stats(times, batch)
                        table.add_row(name, f"{params:,}", runtime, str(threads), str(batch), f"{med:.1f}",
                                      f"{p99:.1f}", f"{per:.2f}")
    Console(width=160).print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
