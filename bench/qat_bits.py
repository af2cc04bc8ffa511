"""QAT after float training: QAT of a run's float KD student at several (weight, activation) widths and
schedules, each with its test accuracy and (unless --no-cost) its core's Yosys cost, so that bits and QAT time
can be traded for LUTs and accuracy.

Every variant starts from the same float student (the run's student/kd_float.pt) and runs the distill step's own
QAT (same KD loss, soft labels and seed); only the bit widths and, with --epochs / --lr, the QAT schedule differ
(the run's distill.qat_epochs and distill.qat_lr otherwise), and with --scale the weights' power-of-two scale
(per tensor or per output channel). A third number of --bits sets the pointwise layers' weight bits, a fourth the
first convolution's. Rows are appended to a JSON-lines file and skipped
when already there (resumable).

    python bench/qat_bits.py --runs runs/A runs/B [--bits 6,6 4,6 5,6 6,6,4,4] [--epochs 10 20] [--lr 1e-3]
        [--scale tensor channel] [--lanes 4] [--threads 1] [--no-cost] [--out F]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path


def one(run_dir: Path, wbits: int, abits: int, threads: int, lanes: int, pwbits: int | None = None,
        epochs: int | None = None, lr: float | None = None, cost: bool = True, scale: str = "tensor",
        first_bits: int | None = None) -> dict:
    import numpy as np
    import torch

    from insitu.config import load_config
    from insitu.distill.export import export_quantmodel
    from insitu.distill.losses import kd_loss
    from insitu.distill.mode import resolve_mode
    from insitu.distill.student import build_student, load_float_into_quant
    from insitu.distill.train import FitSpec, accuracy, fit, predict_logits, steps_for
    from insitu.firmware.cost import model_cost
    from insitu.rundir import RunDir
    from insitu.steps import data as data_step
    from insitu.steps.distill import load_student

    torch.set_num_threads(threads)
    cfg = load_config(run_dir / "config.json")
    run = RunDir(run_dir)
    data = data_step.load(run)
    with np.load(run.path("teacher", "soft_labels.npz")) as z:
        soft = np.concatenate([z["train"], z["pool"]])
    mode, _ = resolve_mode(cfg, len(data.train_y), len(data.pool_x))
    x = np.concatenate([data.train_x, data.pool_x])
    labels = np.concatenate([data.train_y if mode == "labelled" else -np.ones_like(data.train_y),
                             -np.ones(len(data.pool_x), np.int64)])
    t_kd, y_kd = torch.from_numpy(soft).float(), torch.from_numpy(labels)
    d = cfg.distill
    epochs = d.qat_epochs if epochs is None else epochs
    lr = d.qat_lr if lr is None else lr

    def loss(logits, idx):
        return kd_loss(logits, t_kd[idx], y_kd[idx], y_kd[idx] >= 0, d.temperature, d.alpha)

    float_model = load_student(run, cfg, "kd_float")
    scfg = cfg.student.model_copy(update={"weight_bits": wbits, "act_bits": abits, "pointwise_weight_bits": pwbits,
                                          "first_weight_bits": first_bits, "weight_scale": scale})
    torch.manual_seed(cfg.seed)
    q = build_student(scfg, len(data.class_names), data.image_size, quantized=True)
    load_float_into_quant(float_model, q)
    t0 = time.monotonic()
    fit(q, x, loss, FitSpec(steps_for(epochs, len(x), d.batch_size), d.batch_size, lr, 1e-4, d.augment,
                            seed=cfg.seed + 1, flips=cfg.data.flips), torch.device("cpu"), f"QAT w{wbits}a{abits}")
    seconds = time.monotonic() - t0
    cpu = torch.device("cpu")
    row = {"run": str(run_dir), "seed": cfg.seed, "channels": cfg.student.channels, "weight_bits": wbits,
           "act_bits": abits, "pointwise_weight_bits": pwbits, "first_weight_bits": first_bits,
           "weight_scale": scale, "qat_epochs": epochs,
           "qat_lr": lr,
           "float_accuracy": accuracy(predict_logits(float_model, data.test_x, cpu), data.test_y),
           "qat_accuracy": accuracy(predict_logits(q.eval(), data.test_x, cpu), data.test_y),
           "qat_seconds": round(seconds, 1)}
    if not cost:
        return row
    qm = export_quantmodel(q.eval(), data.image_size, data.class_names)
    with tempfile.TemporaryDirectory() as tmp:
        c = model_cost(qm, Path(tmp), "ecp5", lanes, samples=2)
    row.update(lanes=lanes, lut=c.resources.get("lut"), ff=c.resources.get("ff"), dsp=c.resources.get("dsp"),
               cycles=c.latency_cycles_first_to_valid)
    return row


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", nargs="+", type=Path, required=True)
    ap.add_argument("--bits", nargs="+", default=["6,6", "4,6", "5,6"],
                    help="weight,activation pairs; a third number sets the 1x1 (pointwise) layers' weights apart, a "
                         "fourth the first convolution's (0: weight_bits)")
    ap.add_argument("--epochs", nargs="+", type=int, default=[None], help="QAT epochs (default: the run's)")
    ap.add_argument("--lr", nargs="+", type=float, default=[None], help="QAT learning rate (default: the run's)")
    ap.add_argument("--scale", nargs="+", choices=["tensor", "channel"], default=["tensor"],
                    help="power-of-two weight scales per tensor or per output channel (student.weight_scale)")
    ap.add_argument("--no-cost", action="store_true", help="skip the Yosys cost of each variant")
    ap.add_argument("--lanes", type=int, default=4)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", type=Path, default=Path("bench/results/qat_bits.jsonl"))
    args = ap.parse_args(argv)
    done = [json.loads(line) for line in args.out.read_text().splitlines()] if args.out.exists() else []
    def schedule(run: str | Path) -> dict:
        f = Path(run) / "config.json"
        return json.loads(f.read_text())["distill"] if f.exists() else {"qat_epochs": None, "qat_lr": None}

    def key(r: dict) -> tuple:  # rows of older versions carry no schedule: theirs was the run's own
        s = schedule(r["run"]) if "qat_epochs" not in r else r
        return (r["weight_bits"], r["act_bits"], r.get("pointwise_weight_bits"), s["qat_epochs"], s["qat_lr"],
                r.get("weight_scale", "tensor"), r.get("first_weight_bits"))  # older rows: per tensor, no first

    def parse(bits: str) -> tuple:
        v = [int(b) for b in bits.split(",")]
        return v[0], v[1], (v[2] if len(v) > 2 and v[2] else None), (v[3] if len(v) > 3 and v[3] else None)

    variants = [(*parse(bits), e, lr, sc) for bits in args.bits for e in args.epochs for lr in args.lr
                for sc in args.scale]
    rows_of: dict[tuple, list[dict]] = {}
    for w, a, pw, fb, e, lr, sc in variants:
        for run in args.runs:
            cfg = schedule(run)
            k = (w, a, pw, cfg["qat_epochs"] if e is None else e, cfg["qat_lr"] if lr is None else lr, sc, fb)
            row = next((r for r in done if r["run"] == str(run) and key(r) == k and (args.no_cost or "lut" in r)),
                       None)
            if row is None:
                row = one(run, w, a, args.threads, args.lanes, pw, e, lr, not args.no_cost, sc, fb)
                done.append(row)
                args.out.parent.mkdir(parents=True, exist_ok=True)
                with open(args.out, "a") as fh:
                    fh.write(json.dumps(row) + "\n")
                print(json.dumps(row), flush=True)
            rows_of.setdefault(k, []).append(row)
    print(f"\n| bits (w, a) | weight scale | QAT epochs | QAT lr | float → QAT drop, mean | QAT accuracy, mean ± std (per run) | "
          f"LUT ({args.lanes} lanes, Yosys) | FF | DSP |")
    print("|---|---|---:|---:|---:|---|---:|---:|---:|")
    for (w, a, pw, e, lr, sc, fb), rows in rows_of.items():
        acc = [100 * r["qat_accuracy"] for r in rows]
        drop = statistics.mean(100 * (r["float_accuracy"] - r["qat_accuracy"]) for r in rows)
        sd = statistics.stdev(acc) if len(acc) > 1 else 0.0
        hw = [f"{rows[0][f]:,}" if rows[0].get(f) is not None else "-" for f in ("lut", "ff", "dsp")]
        own = f"{f' pointwise w{pw}' if pw else ''}{f' first w{fb}' if fb else ''}"
        print(f"| w{w}a{a}{own} | per {sc} | {e} | {lr:g} | {drop:.2f} | {statistics.mean(acc):.2f} ± "
              f"{sd:.2f} ({', '.join(f'{v:.2f}' for v in acc)}) | {' | '.join(hw)} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
