"""report.json / report.md of the lidar application, with the ROC curve and a bird's-eye view of a test scan.

Every number comes from an artifact of the run. Per-column latency: the unrolled core takes one column per
clock, so a column's latency is the simulated cycles from its input to its scores over the post-route Fmax;
the margin is the column period of a 64-beam, 2,048-column, 10 Hz sensor (about 49 us) over that latency.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from insitu.reports.build import firmware_section
from insitu.reports.render import save_figure
from insitu.rundir import RunDir

COLUMN_PERIOD_US = 1e6 / (10 * 2048)  # 64-beam, 2,048-column sensor at 10 Hz


def _read(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text())


def build(run: RunDir) -> dict[str, Any]:
    m = run.manifest()
    cfg = _read(run.path("config.json"))
    data, streams = _read(run.path("lidar", "data.json")), _read(run.path("streams", "metrics.json"))
    exp = _read(run.path("export", "check.json"))
    seg = m["stages"]["segnet"]["summary"]
    dist = m["stages"]["distill"]["summary"]
    hls_path = run.path("hls", "csim.json")
    rep: dict[str, Any] = {
        "app": "lidar", "preset": cfg["preset"],
        "dataset": {**{k: data[k] for k in ("root", "beams", "columns", "synthetic", "scans")},
                    "beam_tables": sorted({f"{t['name']} ({t['source']})" for t in data.get("tables", {}).values()})},
        "supervised": {**streams.get("supervised", {}), "params": seg["params"], "train_miou": seg["train_miou"]},
        "two_stream": {**streams.get("two_stream", {}), "teacher_score": streams.get("teacher_score")},
        "student": {**{k: v for k, v in exp.get("student", {}).items() if k != "binary"},
                    "binary": exp.get("student", {}).get("binary"), "params": exp["params"],
                    "weight_bits": exp["weight_bits"], "act_bits": exp["act_bits"],
                    "threshold_logit": exp["threshold_logit"], "agreement_with_pseudo_labels": exp["agreement"],
                    "pool_columns": dist["pool_columns"], "steps": dist["steps"]},
        "reference": {**exp["reference_vs_brevitas"], "qonnx": exp["qonnx"], "tensor_types": exp["tensor_types"]},
    }
    if hls_path.exists():
        h = _read(hls_path)
        rep["csim"] = {"vectors": h["csim"]["vectors"], "bit_exact_vectors": h["csim"]["bit_exact_vectors"],
                       "io_type": h["io_type"], "part": h["part"]}
    fw = firmware_section(run, cfg)
    if "rtl" in fw:
        r = fw["rtl"]
        fw["rtl"] = {**r, "latency_cycles": r["latency_cycles_first_to_valid"]}
        lat = fw.get("latency_us") or {}
        per_col = lat.get("first_pixel_to_decision")
        fw["latency_us"] = {**lat, "per_column": per_col, "column_period_us": round(COLUMN_PERIOD_US, 3),
                            "margin": round(COLUMN_PERIOD_US / per_col, 1) if per_col else None,
                            "columns_per_second": (lat.get("clock_mhz") or 0) * 1e6
                            / max(r.get("ii_cycles") or 1, 1)}
    rep.update(fw)
    rep["stage_seconds"] = {n: s["seconds"] for n, s in m["stages"].items()}
    rep["versions"], rep["tools"] = m.get("versions", {}), m.get("tools", {})
    return rep


def roc_plot(rep: dict[str, Any], path: Path) -> Path | None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    roc = _read(path.parent / "export" / "check.json").get("roc")
    if not roc:
        return None
    fig, ax = plt.subplots(figsize=(4.2, 4))
    ax.plot(roc["fpr"], roc["tpr"], label=f"student (AUROC {rep['student']['auroc']:.3f})")
    ts = rep["two_stream"]
    if ts.get("points"):
        tpr = ts["tp"] / max(ts["tp"] + ts["fn"], 1e-12)
        fpr = ts["fp"] / max(ts["fp"] + ts["tn"], 1e-12)
        ax.plot([fpr], [tpr], "o", label="two-stream flags")
    ax.plot([0, 1], [0, 1], ":", color="grey")
    ax.set_xlabel("false-positive rate")
    ax.set_ylabel("true-positive rate")
    ax.legend(loc="lower right", fontsize=8)
    return save_figure(fig, path)


def bev_plot(run: RunDir, path: Path) -> Path | None:
    """Bird's-eye view of the test scan with the most anomaly points: codes, student score, ground truth."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from insitu.data import kitti
    from insitu.steps.lidar_data import load_dataset
    from insitu.steps.lidar_streams import truth_of

    ds = load_dataset(run)
    scores = np.load(run.path("export", "test_scores.npz"))
    best = None
    base = 0
    for folder in ds.folders("test"):
        arr = dict(np.load(run.path("streams", f"{folder.name}.npz"), allow_pickle=False))
        gt = truth_of(folder, arr)
        for i in range(len(arr["names"])):
            a, b = arr["offsets"][i], arr["offsets"][i + 1]
            n_an = int((gt[0][a:b] > 0).sum()) if gt else 0
            if best is None or n_an > best[0]:
                best = (n_an, folder, i, arr["code"][a:b], gt[0][a:b] if gt else None,
                        scores["score"][base + a:base + b])
        base += int(arr["offsets"][-1])
    if best is None:
        return None
    _, folder, i, code, gt, score = best
    pts = kitti.read_scan(kitti.open_sequence(folder).scans[i])
    near = np.linalg.norm(pts[:, :2], axis=1) < 30
    fig, axes = plt.subplots(1, 3, figsize=(13, 4.4), sharex=True, sharey=True)
    colors = np.array(["#cccccc", "#1f77b4", "#d62728", "#ff7f0e"])
    axes[0].scatter(pts[near, 0], pts[near, 1], s=0.6, c=colors[code[near]])
    axes[0].set_title("codes: static / both dyn / only self-sup / only sup", fontsize=9)
    sc = axes[1].scatter(pts[near, 0], pts[near, 1], s=0.6, c=score[near], cmap="viridis")
    fig.colorbar(sc, ax=axes[1], fraction=0.04)
    axes[1].set_title("student failure logit", fontsize=9)
    if gt is not None:
        axes[2].scatter(pts[near, 0], pts[near, 1], s=0.6, c=np.where(gt[near] > 0, "#d62728", "#cccccc"))
    axes[2].set_title(f"ground-truth anomalies ({folder.name}/{i:06d})", fontsize=9)
    for ax in axes:
        ax.set_aspect("equal")
        ax.set_xlabel("x (m)")
    axes[0].set_ylabel("y (m)")
    return save_figure(fig, path)


def _categories(ts: dict[str, Any], st: dict[str, Any]) -> list[str]:
    cats = ts.get("per_category") or {}
    if not cats:
        return []
    sc = st.get("per_category") or {}
    rows = ["", "| anomaly | points | two-stream recall | student recall | student AUROC |", "|---|---:|---:|---:|---:|"]
    for name, row in cats.items():
        s = sc.get(name, {})
        rows.append(f"| {name} | {row['points']} | {row['recall']:.3f} | {s.get('recall', float('nan')):.3f} | "
                    f"{s.get('auroc', float('nan')):.3f} |")
    return rows + [""]


def markdown(rep: dict[str, Any], roc_name: str | None, bev_name: str | None) -> str:
    def f(v: Any, nd: int = 3) -> str:
        return "n/a" if v is None else (f"{v:.{nd}f}" if isinstance(v, float) else str(v))

    ts, st = rep["two_stream"], rep["student"]
    lines = [f"# insitu lidar failure detection ({rep['preset']} preset)", "",
             f"Data: {rep['dataset']['beams']} beams x {rep['dataset']['columns']} columns; scans "
             + ", ".join(f"{k} {v}" for k, v in rep["dataset"]["scans"].items())
             +
             f"{' (built-in simulator)' if rep['dataset']['synthetic'] else ''}; beam table "
             f"{', '.join(rep['dataset'].get('beam_tables') or ['n/a'])}.", "",
             "| detector | IoU | TP | FP | FN | AUROC | AUPR | FPR95 |", "|---|---:|---:|---:|---:|---:|---:|---:|",
             f"| two-stream flags | {f(ts.get('iou'))} | {f(ts.get('tp'), 4)} | {f(ts.get('fp'), 4)} | "
             f"{f(ts.get('fn'), 4)} | {f(ts.get('auroc_binary'))} (binary) | | |",
             f"| two-stream soft score | | | | | {f((ts.get('teacher_score') or {}).get('auroc'))} | "
             f"{f((ts.get('teacher_score') or {}).get('aupr'))} | {f((ts.get('teacher_score') or {}).get('fpr95'))} |",
             f"| student ({st['params']} params, {st['weight_bits']}-bit) | {f(st.get('iou'))} | "
             f"{f((st.get('binary') or {}).get('tp'), 4)} | {f((st.get('binary') or {}).get('fp'), 4)} | "
             f"{f((st.get('binary') or {}).get('fn'), 4)} | {f(st.get('auroc'))} | {f(st.get('aupr'))} | "
             f"{f(st.get('fpr95'))} |", "",
             *_categories(ts, st),
             f"Supervised stream mIoU on normal classes: {f(rep['supervised'].get('miou'))}. Student vs pseudo-labels: "
             f"accuracy {f(st['agreement_with_pseudo_labels']['accuracy'])}, IoU "
             f"{f(st['agreement_with_pseudo_labels']['iou'])}.", "",
             f"Reference == Brevitas on {rep['reference']['bit_exact_vectors']}/{rep['reference']['vectors']} test columns."]
    if "csim" in rep:
        lines.append(f"C simulation: {rep['csim']['bit_exact_vectors']}/{rep['csim']['vectors']} columns bit-exact.")
    if "rtl" in rep:
        lines.append(f"RTL simulation: {rep['rtl']['bit_exact_vectors']}/{rep['rtl']['vectors']} columns bit-exact, "
                     f"{rep['rtl']['latency_cycles']} cycles per column, II {rep['rtl'].get('ii_cycles')}.")
    impl, lat = rep.get("impl"), rep.get("latency_us") or {}
    if impl:
        lines.append(f"Implementation on {impl['board']}: bitstream clock {f(lat.get('clock_mhz'), 1)} MHz (Fmax "
                     f"{f(impl.get('fmax_mhz'), 1)} MHz), {impl.get('lut')} LUT, "
                     f"{impl.get('ff')} FF, {impl.get('dsp')} DSP; per-column latency {f(lat.get('per_column'), 4)} us, "
                     f"{f(lat.get('margin'), 1)}x inside the {lat.get('column_period_us')} us column period.")
    lines.append("")
    if roc_name:
        lines.append(f"![ROC]({roc_name})")
    if bev_name:
        lines.append(f"![bird's-eye view]({bev_name})")
    return "\n".join(lines) + "\n"
