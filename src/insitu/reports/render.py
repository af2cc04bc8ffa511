"""report.md and its confusion-matrix plot, rendered from report.json."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np


def _bits_label(s: dict) -> str:
    """'6-bit weights (4-bit first conv, 4-bit pointwise), scaled per channel / 6-bit activations'."""
    parts = (("first_weight_bits", "first conv"), ("pointwise_weight_bits", "pointwise"))
    own = [f"{s[k]}-bit {name}" for k, name in parts if s.get(k) and s[k] != s["weight_bits"]]
    pw = f" ({', '.join(own)})" if own else ""
    scale = ", scaled per channel" if s.get("weight_scale") == "channel" else ""
    return f"{s['weight_bits']}-bit weights{pw}{scale} / {s['act_bits']}-bit activations"


def confusion_plot(report: dict[str, Any], path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = report["dataset"]["classes"]
    panels = [("teacher", report["teacher"]), ("KD student (QAT)", report["student"])]
    if report["student_no_kd"]:
        panels.append(("no-KD student (QAT)", report["student_no_kd"]))
    fig, axes = plt.subplots(1, len(panels), figsize=(4 * len(panels), 4))
    for ax, (title, part) in zip(axes, panels):
        m = np.asarray(part["confusion"], dtype=float)
        norm = m / np.maximum(m.sum(1, keepdims=True), 1)
        ax.imshow(norm, cmap="Blues", vmin=0, vmax=1)
        for i in range(len(names)):
            for j in range(len(names)):
                ax.text(j, i, f"{int(m[i, j])}", ha="center", va="center",
                        color="white" if norm[i, j] > 0.5 else "black")
        ax.set_xticks(range(len(names)), names)
        ax.set_yticks(range(len(names)), names)
        ax.set_xlabel("predicted")
        ax.set_ylabel("true")
        ax.set_title(f"{title}\naccuracy {100 * part['accuracy']:.1f}%")
    return save_figure(fig, path)


def save_figure(fig, path: Path) -> Path:
    """tight_layout, write to a temporary file, close, then move into place (no half-written PNG)."""
    import matplotlib.pyplot as plt

    fig.tight_layout()
    tmp = path.with_name(f".{path.name}.tmp.png")
    fig.savefig(tmp, dpi=90)
    plt.close(fig)
    tmp.replace(path)
    return path


def vitis_lines(v: dict | None) -> list[str]:
    """Vitis HLS on the hls4ml project: its C synthesis and co-simulation, or why it did not run."""
    if not v:
        return []
    if v.get("run") is False:
        return [f"- Vitis HLS: {v['reason']}."]
    cs, co = v.get("csynth") or {}, v.get("cosim") or {}
    r = cs.get("resources", {})
    return [f"- Vitis HLS C synthesis: latency {cs.get('latency_min')}-{cs.get('latency_max')} cycles, II "
            f"{cs.get('ii_min')}-{cs.get('ii_max')}, estimated clock {cs.get('estimated_clock_ns')} ns (target "
            f"{cs.get('target_clock_ns')}); LUT {r.get('lut')}, FF {r.get('ff')}, DSP {r.get('dsp')}, BRAM_18K "
            f"{r.get('bram_18k')}. Co-simulation: {co.get('status', 'not run')}; IP: {v.get('ip') or 'none'}"
            + (f"; missing: {', '.join(v['missing'])}" if v.get("missing") else "") + "."]


def markdown(report: dict[str, Any], plot_name: str) -> str:
    d, t, s, n = report["dataset"], report["teacher"], report["student"], report["student_no_kd"]
    r, c = report["reference"], report["csim"]
    pct = lambda v: f"{100 * v:.2f}%"  # noqa: E731
    exact = "bit-exact" if c["vectors"] == c["bit_exact_vectors"] else "MISMATCH"
    lines = [
        f"# insitu run: {report['app']} ({report['preset']} preset)",
        "",
        f"Dataset **{d['name']}**: classes {', '.join(d['classes'])}; {d['sizes']['train']} labelled, "
        f"{d['sizes']['pool']} unlabelled, {d['sizes']['test']} test images at {d['image_size']}x{d['image_size']} "
        f"(sha256 `{d['checksum'][:16]}…`).",
        *[f"\n> Data: {note}." for note in (d.get("split") or {}).get("notes", [])],
        "",
        "| model | parameters | test accuracy |",
        "|---|---:|---:|",
        f"| teacher (ResNet-style, float) | {t['params']:,} | {pct(t['accuracy'])} |",
        f"| student, distilled, float | {s['params']:,} | {pct(s['accuracy_float'])} |",
        f"| **student, distilled, {_bits_label(s)} (QAT)** | "
        f"{s['params']:,} | **{pct(s['accuracy'])}** |",
        *([f"| student without the teacher, float | {s['params']:,} | {pct(n['accuracy_float'])} |",
           f"| student without the teacher, QAT | {s['params']:,} | {pct(n['accuracy'])} |"] if n else []),
        "",
        f"Distillation mode: **{s['distill_mode']}**"
        + (f" ({s['distill_mode_reason']})" if s.get("distill_mode_reason") else "")
        + f"; {s['steps']} optimisation steps per student"
        + (f", the same for the ablation. Knowledge distillation gain: **{report['kd_gain_points']:+.2f} points**. "
           if n else " (no ablation: distill.ablation = false). ")
        + f"The student is {1 / s['params_vs_teacher']:,.0f}x smaller than the teacher.",
        "",
        f"![confusion matrices]({plot_name})",
        "",
        "## Bit-exactness",
        "",
        f"- Integer reference vs Brevitas' quantized forward pass: {r['bit_exact_vectors']} / {r['vectors']} "
        "test images identical in every output.",
        f"- hls4ml C simulation ({c['io_type']}, part {c['part']}, {c['clock_period_ns']} ns clock) vs reference: "
        f"**{c['bit_exact_vectors']} / {c['vectors']} vectors {exact}**.",
        *vitis_lines(c.get("vitis")),
        f"- Tensor types: {' → '.join(f'`{x}`' for x in r['tensor_types'])}.",
        "- QONNX export executed with qonnx vs reference: " + (
            f"{r['qonnx']['bit_exact_vectors']} / {r['qonnx']['vectors']} test images identical."
            if isinstance(r["qonnx"], dict) else f"{r['qonnx']}."),
        "",
        "## Time per stage",
        "",
        "| stage | seconds |",
        "|---|---:|",
        *[f"| {k} | {v:.1f} |" for k, v in report["stage_seconds"].items()],
        f"| sum (stages run side by side) | {sum(report['stage_seconds'].values()):.1f} |",
        *([f"| **wall time while a stage ran** | **{report['main_job']['wall_seconds']:.1f}** |"]
          if (report.get("main_job") or {}).get("wall_seconds") is not None else []),
        "",
        "Versions: " + ", ".join(f"{k} {v}" for k, v in report["versions"].items()) + ".",
        "",
    ]
    return "\n".join(lines)
