"""Hardware cost of a depthwise-separable CNN on 48x48 input, against lanes, on ECP5.

The topology is the float probe that reached 86.1% on the built-in cells (6,371 parameters with its head):
    conv 3x3 1->16, ReLU, pool 2 | depthwise 3x3, ReLU, pointwise 16->32, ReLU, pool 2
    | depthwise 3x3, ReLU, pointwise 32->64, ReLU, pool 2 | head
where the head is global average pooling + dense 64->3 (`--head gap`, the default: 3,491 parameters) or
flatten + dense 1024->3 (`--head dense`)
with seeded random 4-bit weights whose activations are calibrated on built-in cell images (a trained student
would have other weights, hence other adder graphs: read the numbers as the topology's order of magnitude).

For each lane count: Yosys `synth_ecp5` resources and the cycles of a bit-exact RTL simulation
(`insitu.firmware.cost.model_cost`). With --pnr P, also the whole firmware step for ULX3S-85F at P lanes (board
shell, Yosys, nextpnr-ecp5, ecppack): post-route Fmax, resources, latency, place-and-route time.

    python bench/ds_cnn.py [--lanes 1 2 4] [--head gap|dense] [--pnr 4] [--no-dsp] [--router router2] [--out F]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from insitu.errors import InsituError
from insitu.ir.builder import GraphBuilder
from insitu.ir.fixed import FixedType


def ds_cnn(seed: int = 0, size: int = 48, bits: int = 4, head: str = "gap"):
    from insitu.data.cells import resize_u8
    from insitu.data.synth_cells import generate

    x, _ = generate(64, seed, 3, 1.0)
    x = resize_u8(x, size)
    b = GraphBuilder(x[:, None].astype(np.int64), FixedType(False, 8, 8), np.random.default_rng(seed))
    h = b.maxpool(b.requant(b.conv2d("inp", 16, 3, bits), bits=bits), 2)
    for c_out in (32, 64):
        h = b.requant(b.conv2d(h, b.shape(h)[0], 3, bits, depthwise=True), bits=bits)
        h = b.maxpool(b.requant(b.conv2d(h, c_out, 1, bits), bits=bits), 2)
    if head == "gap":
        b.dense(b.global_avgpool(h, extra_frac=2), 3, bits)
    else:
        b.dense(b.flatten(h), 3, bits)
    return b.model(["B", "T4", "T8"], {"source": f"bench/ds_cnn.py seed {seed} head {head}"}), x


def place_and_route(qm, images: np.ndarray, lanes: int, work: Path, dsp: bool, router: str) -> dict:
    from insitu.config import build_config
    from insitu.ir import reference
    from insitu.rundir import RunDir
    from insitu.sim.vectors import save_vectors
    from insitu.steps import firmware, rtl

    run = RunDir(work)
    qm.save(run.path("export"))
    save_vectors(run.path("export", "vectors.npz"), images, np.zeros(len(images), np.int64),
                 reference.run(qm, images), qm.output_type.frac)
    cfg = build_config("default", {"rtl": {"lanes": lanes, "simulator": "icarus", "sim_vectors": 4},
                                   "firmware": {"shell_sim_images": 1, "dsp": dsp, "router": router,
                                                "timeout_s": 4 * 3600}})
    t0 = time.monotonic()
    rtl.run(cfg, run)
    r = rtl.run_sim(cfg, run).summary["rtl"]
    fw = firmware.run(cfg, run).summary
    impl = fw["impl"]
    return {"lanes": lanes, "fmax_mhz": impl["fmax_mhz"], "clock_mhz": fw["clock_mhz"], "lut": impl["lut"],
            "ff": impl["ff"], "dsp": impl["dsp"], "bram": impl["bram"],
            "latency_cycles_first_to_valid": r["latency_cycles_first_to_valid"],
            "us_at_fmax": r["latency_cycles_first_to_valid"] / impl["fmax_mhz"],
            "us_at_clock": r["latency_cycles_first_to_valid"] / fw["clock_mhz"],
            "pnr_seconds": impl["seconds"], "total_seconds": round(time.monotonic() - t0, 1)}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--lanes", type=int, nargs="+", default=[1, 2, 4])
    ap.add_argument("--pnr", type=int, nargs="*", default=[], help="lane counts to place and route (ULX3S-85F)")
    ap.add_argument("--out", type=Path, default=None, help="write the rows as JSON")
    ap.add_argument("--no-dsp", action="store_true", help="multipliers in LUTs (firmware.dsp=false)")
    ap.add_argument("--head", default="gap", choices=["gap", "dense"], help="global average pooling or flatten")
    ap.add_argument("--router", default="router1", choices=["router1", "router2"], help="nextpnr router")
    args = ap.parse_args(argv)
    from insitu.firmware.cost import model_cost

    qm, images = ds_cnn(head=args.head)
    print(f"DS-CNN ({args.head} head): {qm.n_params():,} parameters, input {qm.input.shape}, seeded 4-bit weights, multipliers in "
          f"{'LUTs' if args.no_dsp else 'DSP blocks'}")
    print("| P | LUT (LUT4 + 2 x CCU2C + 2 x DPR16X4) | FF | DSP | BRAM | II cycles | first pixel -> decision | "
          "µs at 50 MHz | yosys s |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for p in args.lanes:
            c = model_cost(qm, Path(tmp) / f"p{p}", "ecp5", lanes=p, simulator="icarus", dsp=not args.no_dsp)
            r = c.resources
            rows.append({"estimate": c.to_dict()})
            print(f"| {p} | {r['lut']:,} | {r['ff']:,} | {r['dsp']} | {r['bram']} | {c.ii_cycles} | "
                  f"{c.latency_cycles_first_to_valid} | {c.latency_us(50.0):.2f} | {c.seconds['synthesis']} |")
        if args.pnr:
            print("\n| P | Fmax MHz | LUT (TRELLIS_COMB) | FF | DSP | BRAM | cycles | µs at Fmax | µs at the PLL clock | P&R s |")
            print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
        for p in args.pnr:
            try:
                d = place_and_route(qm, images[:8], p, Path(tmp) / f"run{p}", not args.no_dsp, args.router)
            except InsituError as exc:
                rows.append({"pnr": {"lanes": p, "error": exc.problem}})
                print(f"| {p} | does not build: {exc.problem} |")
                continue
            rows.append({"pnr": d})
            print(f"| {p} | {d['fmax_mhz']} | {d['lut']:,} | {d['ff']:,} | {d['dsp']} | {d['bram']} | "
                  f"{d['latency_cycles_first_to_valid']} | {d['us_at_fmax']:.2f} | {d['us_at_clock']:.2f} "
                  f"({d['clock_mhz']} MHz) | {d['pnr_seconds']} |")
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps({"head": args.head, "params": qm.n_params(), "rows": rows}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
