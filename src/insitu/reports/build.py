"""report.json: every number comes from an artifact of this run (metrics files and the manifest)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from insitu.reports.latency import latency_section
from insitu.reports.targets import scorecard, wall_seconds
from insitu.rundir import RunDir


def _read(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text())


def firmware_section(run: RunDir, cfg: dict[str, Any]) -> dict[str, Any]:
    """rtl / impl / latency_us / shell_sim, from the rtl and shellsim steps and the bundle of the configured board."""
    out: dict[str, Any] = {}
    rtl_path = run.path("rtlsim", "rtl_sim.json")
    if not rtl_path.exists():
        return out
    out["rtl"] = _read(rtl_path)
    fw = run.path("firmware", cfg["firmware"]["board"], "impl.json")
    impl_doc = _read(fw) if fw.exists() else {}
    out["impl"] = impl_doc.get("impl")
    shell_path = run.path("shellsim", "shell_sim.json")
    shell_doc = _read(shell_path) if shell_path.exists() else impl_doc.get("shell_sim")  # (older bundles: inside)
    if shell_doc and "skipped" not in shell_doc:
        out["shell_sim"] = shell_doc
    if "vivado" in impl_doc:
        out["vivado"] = impl_doc["vivado"]
    out["latency_us"] = latency_section(out["rtl"], out["impl"], impl_doc.get("clock_mhz"))
    cpu = run.path("cpu_latency.json")
    if cpu.exists():
        out["cpu"] = _read(cpu)
    return out


def lane_points(run: RunDir) -> list[dict[str, Any]]:
    """Every (lanes, board) built in this run, for the latency-vs-resources plot."""
    pts = []
    for impl_path in sorted(run.path("firmware").glob("*/impl.json")):
        doc = _read(impl_path)
        impl = doc.get("impl") or {}
        rtl_path = run.path("rtlsim", "rtl_sim.json")
        if not rtl_path.exists() or doc.get("lanes") != _read(rtl_path).get("lanes"):
            continue  # a bundle built from other Verilog than the simulated one
        lat = latency_section(_read(rtl_path), impl, doc.get("clock_mhz"))
        pts.append({"board": impl.get("board"), "lanes": doc.get("lanes"), "lut": impl.get("lut"),
                    "us": lat.get("first_pixel_to_decision")})
    sweep = run.path("lane_sweep.json")  # written by bench/latency.py
    if sweep.exists():
        for row in _read(sweep)["rows"]:
            if not any(p["board"] == row["board"] and p["lanes"] == row["lanes"] for p in pts):
                pts.append({"board": row["board"], "lanes": row["lanes"], "lut": row["impl"]["lut"],
                            "us": row["latency_us"]["first_pixel_to_decision"]})
    return pts


def build_report(run: RunDir) -> dict[str, Any]:
    m = run.manifest()
    stages = m["stages"]
    dataset = _read(run.path("data", "dataset.json"))
    teacher = _read(run.path("teacher", "metrics.json"))
    student = _read(run.path("student", "metrics.json"))
    nokd = _read(run.path("ablation", "metrics.json"))
    export = _read(run.path("export", "check.json"))
    hls = _read(run.path("hls", "csim.json"))
    cfg = _read(run.path("config.json"))
    report = {
        "app": cfg["app"],
        "preset": cfg["preset"],
        "dataset": {"name": dataset["name"], "classes": dataset["classes"], "sizes": dataset["sizes"],
                    "image_size": dataset["image_size"], "checksum": dataset["checksum"],
                    "split": dataset.get("source", {}).get("split")},
        "teacher": {"params": teacher["params"], "accuracy": teacher["accuracy"],
                    "accuracy_tta": teacher["accuracy_tta"], "confusion": teacher["confusion"]},
        "student": {"params": student["params"], "weight_bits": cfg["student"]["weight_bits"],
                    "pointwise_weight_bits": cfg["student"].get("pointwise_weight_bits"),
                    "first_weight_bits": cfg["student"].get("first_weight_bits"),
                    "weight_scale": cfg["student"].get("weight_scale", "tensor"),
                    "act_bits": cfg["student"]["act_bits"], "accuracy": student["kd"]["accuracy"],
                    "accuracy_float": student["kd_float"]["accuracy"], "distill_mode": student["mode"],
                    "distill_mode_reason": student.get("mode_reason"),
                    "steps": student["steps_per_student"], "confusion": student["kd"]["confusion"],
                    "params_vs_teacher": student["params"] / teacher["params"]},
        "student_no_kd": {"accuracy": nokd["nokd"]["accuracy"], "accuracy_float": nokd["nokd_float"]["accuracy"],
                          "confusion": nokd["nokd"]["confusion"]} if nokd.get("nokd") else None,
        "kd_gain_points": 100 * (student["kd"]["accuracy"] - nokd["nokd"]["accuracy"]) if nokd.get("nokd") else None,
        "reference": {**export["reference_vs_brevitas"], "accuracy": export["reference_accuracy"],
                      "tensor_types": export["tensor_types"], "qonnx": export["qonnx"]},
        "csim": {"vectors": hls["csim"]["vectors"], "bit_exact_vectors": hls["csim"]["bit_exact_vectors"],
                 "io_type": hls["io_type"], "part": hls["part"], "clock_period_ns": hls["clock_period_ns"],
                 "vitis": hls.get("vitis")},
        **firmware_section(run, cfg),
        "stage_seconds": {name: rec["seconds"] for name, rec in stages.items()},
        "main_job": {"wall_seconds": wall_seconds(stages),
                     "stage_seconds_sum": round(sum(rec["seconds"] for rec in stages.values()), 1)},
        "versions": m.get("versions", {}),
        "tools": m.get("tools", {}),
    }
    if cfg["app"] == "cells":
        report["targets"] = scorecard(report)
    return report
