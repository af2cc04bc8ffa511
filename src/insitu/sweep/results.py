"""A sweep's results: each point's metrics from its own report.json, the Pareto flags, sweep.json and sweep.csv.

Metrics: `accuracy` is the app's main score (cells: the quantized KD student's test accuracy; lidar: the
student's AUROC against the failure labels; compile: none, the model is the user's), `params`, `lut`, `ff`,
`dsp`, `bram` (after place and route, or the Yosys estimate with `estimated: true`), `fmax_mhz` (post-route;
null when estimated), `latency_us` (first input to decision at the bitstream's clock, or with an estimate at
the configured clock) and `ii_cycles`.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

METRICS = ("accuracy", "params", "lut", "ff", "dsp", "bram", "fmax_mhz", "latency_us", "ii_cycles", "estimated",
           "clock_mhz", "board")


def score(rep: dict[str, Any]) -> float | None:
    app = rep.get("app")
    if app == "cells":
        return rep["student"]["accuracy"]
    if app == "lidar":
        return rep["student"].get("auroc")
    return None


def params(rep: dict[str, Any]) -> int | None:
    if rep.get("app") == "compile":
        return rep.get("import", {}).get("params")
    return rep.get("student", {}).get("params")


def metrics(rep: dict[str, Any]) -> dict[str, Any]:
    """The metrics of one point from its report.json."""
    impl = rep.get("impl") or {}
    lat = rep.get("latency_us") or {}
    us = lat.get("per_column", lat.get("first_pixel_to_decision"))
    estimated = bool(impl) and not impl.get("bitstream")
    return {"accuracy": score(rep), "params": params(rep),
            **{k: impl.get(k) for k in ("lut", "ff", "dsp", "bram")},
            "fmax_mhz": None if estimated else impl.get("fmax_mhz"), "latency_us": us,
            "ii_cycles": (lat.get("cycles") or {}).get("ii") or (rep.get("rtl") or {}).get("ii_cycles"),
            "estimated": estimated, "clock_mhz": lat.get("clock_mhz"), "board": impl.get("board")}


def _dominates(b: dict, a: dict) -> bool:
    """b at least as good as a in accuracy (higher), latency and LUTs (lower), and better in one."""
    acc_a, acc_b = a["accuracy"], b["accuracy"]
    if (acc_a is None) != (acc_b is None):
        return False
    ge = [(acc_b or 0) >= (acc_a or 0), b["latency_us"] <= a["latency_us"], b["lut"] <= a["lut"]]
    gt = [(acc_b or 0) > (acc_a or 0), b["latency_us"] < a["latency_us"], b["lut"] < a["lut"]]
    return all(ge) and any(gt)


def comparable(m: dict | None) -> bool:
    return bool(m) and m.get("latency_us") is not None and m.get("lut") is not None


def pareto_flags(points: list[dict[str, Any]]) -> list[bool]:
    """True for a done point that no other done point dominates; points without latency or LUTs are never on
    the front (nothing to compare them by)."""
    done = [p["metrics"] if p["status"] == "done" and comparable(p.get("metrics")) else None for p in points]
    return [m is not None and not any(o is not None and o is not m and _dominates(o, m) for o in done)
            for m in done]


def write_csv(points: list[dict[str, Any]], axes: list[str]) -> str:
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(["point", *axes, "status", *METRICS, "pareto", "error"])
    for p in points:
        m = p.get("metrics") or {}
        w.writerow([Path(p["run_dir"]).name, *[json.dumps(p["overrides"].get(a)) for a in axes], p["status"],
                    *[m.get(k) for k in METRICS], p.get("pareto", False),
                    (p.get("error") or "").split("\n", 1)[0]])
    return buf.getvalue()
