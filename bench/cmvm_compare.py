"""da4ml 0.6.0 (what insitu uses) against its successor alkaid, on the same constant-matrix kernels.

The kernels are the six of the DS-CNN (bench/ds_cnn.py, GAP head, seeded 4-bit weights: first conv, the two
depthwise and the two pointwise convolutions, the dense head) and two random dense matrices with 6- and
8-bit weights. For each kernel and tool, at the same latency cutoff:
- generation time (trace + CMVM solve + pipelining + Verilog), the tool's adder cost, the pipeline depth;
- exactness: the tool's own interpreter against numpy on random integer inputs;
- Yosys `synth_ecp5` LUT4 / FF of the tool's Verilog (insitu's writer for da4ml, alkaid's own for alkaid);
- with --pnr NAME..., post-route Fmax on ULX3S-85F of the kernel between a serial-in shift register and
  registered XOR reductions of its outputs (the same wrapper for both tools).

alkaid has no release compatible with insitu's pins in one environment, so it runs in a venv of its own:

    python -m venv /tmp/alkaid && /tmp/alkaid/bin/pip install alkaid==0.8.2
    python bench/cmvm_compare.py --alkaid-python /tmp/alkaid/bin/python [--pnr pw2 dense8] [--out F.json]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

CUTOFF = 2.0


def kernels() -> dict[str, dict]:
    """name -> {weight (O, I), bias, in_signed, in_width}: the matrices insitu's RTL would hand the tool."""
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from ds_cnn import ds_cnn

    from insitu.ir.graph import dense_weight
    from insitu.ir.layers import Conv2D, Dense

    qm, _ = ds_cnn(head="gap")
    types = dict(zip([layer.name for layer in qm.layers], qm.tensor_types()))
    names = iter(["conv0", "dw1", "pw1", "dw2", "pw2", "dense"])
    out, prev = {}, "inp"
    for layer in qm.layers:
        if isinstance(layer, (Conv2D, Dense)):
            w = dense_weight(layer) if isinstance(layer, Conv2D) else layer.weight
            t = types[layer.inputs[0] if layer.inputs else prev]
            out[next(names)] = {"weight": w.reshape(w.shape[0], -1), "bias": layer.bias, "in_signed": t.signed,
                                "in_width": t.width}
        prev = layer.name
    rng = np.random.default_rng(1)
    for bits, shape in ((6, (32, 64)), (8, (16, 64))):
        lim = 1 << (bits - 1)
        out[f"dense{bits}"] = {"weight": rng.integers(-lim, lim, shape), "bias": rng.integers(-64, 64, shape[0]),
                               "in_signed": False, "in_width": 4}
    return out


# --- one tool, in its own environment ------------------------------------------------------------------
def run_alkaid(spec: dict, out_dir: Path) -> dict:
    from alkaid.codegen import RTLModel
    from alkaid.trace import FVArrayInput, trace

    w, b = np.asarray(spec["weight"], np.float64), np.asarray(spec["bias"], np.float64)
    k = int(spec["in_signed"])
    t0 = time.monotonic()
    inp = FVArrayInput((w.shape[1],))
    comb = trace(inp, inp.quantize(k, spec["in_width"] - k, 0) @ w.T + b)
    t1 = time.monotonic()
    model = RTLModel(comb, out_dir, prj_name="kern", latency_cutoff=CUTOFF, print_latency=False)
    model.write()
    t2 = time.monotonic()
    return {"cost": float(json.loads((out_dir / "metadata.json").read_text())["cost"]), "latency": model.latency,
            "trace_s": round(t1 - t0, 2), "total_s": round(t2 - t0, 2), "exact": _exact(comb, w, b, spec),
            "verilog": sorted(str(p) for p in (out_dir / "src").rglob("*.v")), "top": "kern",
            "in_bits": int(w.shape[1] * spec["in_width"]), "out_bits": _out_bits(out_dir / "src" / "kern.v")}


def _out_bits(top_file: Path) -> int:
    import re

    m = re.search(r"output reg \[(\d+):0\] model_out", top_file.read_text())
    return int(m.group(1)) + 1


def run_da4ml(spec: dict, out_dir: Path) -> dict:
    from insitu.ir.fixed import FixedType
    from insitu.rtl.kernel import _trace, make_kernel

    w, b = np.asarray(spec["weight"], np.int64), np.asarray(spec["bias"], np.int64)
    in_t = FixedType(bool(spec["in_signed"]), int(spec["in_width"]), 0)
    t0 = time.monotonic()
    comb = _trace(w, b, in_t)
    t1 = time.monotonic()
    k = make_kernel("kern", w, b, in_t, out_dir, CUTOFF)  # traces again, then pipelines and writes
    t2 = time.monotonic()
    return {"cost": float(comb.cost), "latency": k.latency, "trace_s": round(t1 - t0, 2),
            "total_s": round(t2 - t1, 2), "exact": _exact(comb, w, b, spec), "verilog": [str(p) for p in k.files],
            "top": "kern", "in_bits": int(w.shape[1] * spec["in_width"]), "out_bits": k.n_out * k.out_width}


def _exact(comb, w, b, spec) -> bool:
    rng = np.random.default_rng(0)
    lo = -(1 << (spec["in_width"] - 1)) if spec["in_signed"] else 0
    hi = (1 << (spec["in_width"] - 1)) - 1 if spec["in_signed"] else (1 << spec["in_width"]) - 1
    x = rng.integers(lo, hi + 1, (256, w.shape[1])).astype(np.float64)
    return bool(np.array_equal(np.asarray(comb.predict(x), np.float64), x @ np.asarray(w, np.float64).T + b))


def worker(tool: str, specs: Path, work: Path) -> dict:
    with np.load(specs, allow_pickle=False) as z:
        names = sorted({k.split("/")[0] for k in z.files})
        got = {}
        for n in names:
            spec = {f: z[f"{n}/{f}"] for f in ("weight", "bias")}
            spec.update(in_signed=bool(z[f"{n}/in_signed"]), in_width=int(z[f"{n}/in_width"]))
            fn = run_alkaid if tool == "alkaid" else run_da4ml
            got[n] = fn(spec, work / tool / n)
    return got


# --- the comparison, in insitu's environment ----------------------------------------------------------
def _wrapper(r: dict, path: Path) -> Path:
    n_in, n_out = r["in_bits"], r["out_bits"]
    groups = (n_out + 15) // 16
    path.write_text(f"""module top (input clk, input uart_rx, output uart_tx, output [7:0] led);
    reg [{n_in - 1}:0] sr; always @(posedge clk) sr <= {{sr[{n_in - 2}:0], uart_rx}};
    wire [{n_out - 1}:0] y; {r['top']} u (.clk(clk), .model_inp(sr), .model_out(y));
    reg [{n_out - 1}:0] yr; always @(posedge clk) yr <= y;
    reg [{groups - 1}:0] x1; integer i;
    always @(posedge clk) for (i = 0; i < {groups}; i = i + 1) x1[i] <= ^(yr >> (16 * i) & 16'hffff);
    reg x2; always @(posedge clk) x2 <= ^x1;
    assign uart_tx = x2; assign led = 8'd0;
endmodule
""")
    return path


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--alkaid-python", type=Path, help="python of a venv with alkaid installed")
    ap.add_argument("--pnr", nargs="*", default=[], help="kernels to place and route on ULX3S-85F")
    ap.add_argument("--out", type=Path)
    ap.add_argument("--worker", choices=["da4ml", "alkaid"], help=argparse.SUPPRESS)
    ap.add_argument("--specs", type=Path, help=argparse.SUPPRESS)
    ap.add_argument("--work", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.worker:
        print(json.dumps(worker(args.worker, args.specs, args.work)))
        return 0
    from insitu.firmware.cost import synthesise

    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        specs = kernels()
        np.savez(work / "specs.npz", **{f"{n}/{f}": np.asarray(v) for n, s in specs.items() for f, v in s.items()})
        results = {"da4ml": worker("da4ml", work / "specs.npz", work)}
        if args.alkaid_python:
            p = subprocess.run([str(args.alkaid_python), __file__, "--worker", "alkaid", "--specs",
                                str(work / "specs.npz"), "--work", str(work)], capture_output=True, text=True,
                               timeout=3600, check=False)
            if p.returncode:
                sys.stderr.write(p.stderr[-3000:])
                return 1
            results["alkaid"] = json.loads(p.stdout.strip().splitlines()[-1])
        rows = []
        for name, spec in specs.items():
            for tool, res in results.items():
                r = res[name]
                t0 = time.monotonic()
                syn, _, _ = synthesise([Path(f) for f in r["verilog"]], r["top"], "ecp5", work / "syn" / tool / name,
                                       3600)
                row = {"kernel": name, "tool": tool, "shape": list(spec["weight"].shape), "cost": r["cost"],
                       "stages": r["latency"], "gen_s": r["total_s"], "exact": r["exact"], "lut": syn["lut"],
                       "lut4": syn.get("lut4", syn["lut"]), "carry": syn["carry"], "ff": syn["ff"], "yosys_s": round(time.monotonic() - t0, 1), "fmax_mhz": None}
                if name in args.pnr:
                    row["fmax_mhz"] = _fmax(r, work / "pnr" / tool / name)
                rows.append(row)
        print("| kernel | O x I | tool | adder cost | stages | generation s | exact | LUT (LUT4 + 2 x CCU2C) | FF | "
              "Fmax MHz |")
        print("|---|---|---|---:|---:|---:|---|---:|---:|---:|")
        for r in rows:
            print(f"| {r['kernel']} | {r['shape'][0]} x {r['shape'][1]} | {r['tool']} | {r['cost']:.0f} | "
                  f"{r['stages']} | {r['gen_s']} | {r['exact']} | {r['lut']:,} ({r['lut4']:,} + 2 x {r['carry']:,}) | "
                  f"{r['ff']:,} | {r['fmax_mhz'] or '-'} |")
        if args.out:
            args.out.write_text(json.dumps(rows, indent=1))
    return 0


def _fmax(r: dict, work: Path) -> float:
    from insitu.boards import get_board
    from insitu.firmware.open_flow import build

    work.mkdir(parents=True, exist_ok=True)
    files = [Path(f) for f in r["verilog"]] + [_wrapper(r, work / "top_wrap.v")]
    res = build(get_board("ulx3s-85f"), files, "top", work / "build", freq_mhz=150, timeout_s=3 * 3600)
    return round(res.report.fmax_mhz, 1)


if __name__ == "__main__":
    sys.exit(main())
