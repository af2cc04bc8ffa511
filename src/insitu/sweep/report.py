"""The sweep's report.md: the table of points (the Pareto front marked) and two plots, accuracy against latency
and accuracy against LUTs, coloured by board, estimates drawn hollow."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

PUBLISHED_US = {"cells": 14.5}  # the published cell sorter's inference latency (Islam et al. 2025)


def _fmt(v: Any) -> str:
    if v is None:
        return "–"
    if isinstance(v, float):
        return f"{v:.4g}"
    return str(v)


def plot(points: list[dict[str, Any]], app: str, out: Path) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    done = [p for p in points if p["status"] == "done" and p["metrics"].get("accuracy") is not None]
    paths = []
    for key, label, name in (("latency_us", "first input → decision (µs)", "pareto_latency.png"),
                             ("lut", "LUTs", "pareto_lut.png")):
        fig, ax = plt.subplots(figsize=(6, 4.2))
        boards = sorted({p["metrics"].get("board") or "none" for p in done})
        colours = {b: f"C{i}" for i, b in enumerate(boards)}
        for p in done:
            m = p["metrics"]
            if m.get(key) is None:
                continue
            c = colours[m.get("board") or "none"]
            ax.scatter(m[key], m["accuracy"], s=60 if p["pareto"] else 30, edgecolors=c,
                       facecolors="none" if m.get("estimated") else c, marker="*" if p["pareto"] else "o")
        front = sorted((p["metrics"][key], p["metrics"]["accuracy"]) for p in done if p["pareto"]
                       and p["metrics"].get(key) is not None)
        if front:
            ax.step([f[0] for f in front], [f[1] for f in front], where="post", color="grey", lw=0.8)
        if key == "latency_us" and app in PUBLISHED_US:
            ax.axvline(PUBLISHED_US[app], color="red", ls="--", lw=0.8, label=f"published {PUBLISHED_US[app]} µs")
        for b, c in colours.items():
            ax.scatter([], [], color=c, label=b)
        ax.set_xlabel(label + (" (hollow: estimate)" if any(p["metrics"].get("estimated") for p in done) else ""))
        ax.set_ylabel("accuracy" if app == "cells" else "score")
        ax.legend(fontsize=7)
        ax.grid(alpha=0.3)
        fig.tight_layout()
        fig.savefig(out / name, dpi=110)
        plt.close(fig)
        paths.append(out / name)
    return paths


def _mode(doc: dict[str, Any]) -> str:
    if doc.get("routed_front") is not None:
        return (f"; the {len(doc['routed_front'])} points of the estimated front placed and routed, the others "
                "Yosys estimates (marked est.)")
    return "; estimate only (no place and route)" if doc["estimate_only"] else ""


def markdown(doc: dict[str, Any], plots: list[Path]) -> str:
    axes = doc["axes"]
    pts = doc["points"]
    n_done = sum(p["status"] == "done" for p in pts)
    lines = [f"# insitu sweep: {doc['app']} ({doc['preset']} preset), {len(pts)} points", "",
             f"{n_done} done, {len(pts) - n_done} failed; {doc['workers']} workers on {doc['engine']}, "
             f"{doc['wall_seconds']:.0f} s wall time{_mode(doc)}.",
             "", f"Fixed: {json.dumps(doc['fixed']) if doc['fixed'] else 'nothing'}.", "",
             "| point | " + " | ".join(axes) + " | status | accuracy | params | LUT | FF | DSP | BRAM | Fmax MHz | "
             "µs | II | Pareto |", "|" + "---|" * (len(axes) + 12)]
    for p in sorted(pts, key=lambda q: (q["status"] != "done", -((q.get("metrics") or {}).get("accuracy") or 0))):
        m = p.get("metrics") or {}
        us = _fmt(m.get("latency_us")) + (" (est.)" if m.get("estimated") else "")
        lines.append(f"| {Path(p['run_dir']).name} | " + " | ".join(_fmt(p["overrides"].get(a)) for a in axes)
                     + f" | {p['status']} | {_fmt(m.get('accuracy'))} | {_fmt(m.get('params'))} | {_fmt(m.get('lut'))}"
                     f" | {_fmt(m.get('ff'))} | {_fmt(m.get('dsp'))} | {_fmt(m.get('bram'))} | {_fmt(m.get('fmax_mhz'))}"
                     f" | {us} | {_fmt(m.get('ii_cycles'))} | {'**yes**' if p.get('pareto') else ''} |")
    failed = [p for p in pts if p["status"] != "done"]
    if failed:
        lines += ["", "## Failed points", ""]
        lines += [f"- {Path(p['run_dir']).name} ({', '.join(f'{k}={v}' for k, v in p['overrides'].items())}): "
                  f"{(p.get('error') or '').splitlines()[0] if p.get('error') else 'unknown error'}" for p in failed]
    lines += ["", *[f"![{p.stem}]({p.name})" for p in plots], "",
              "Pareto: no other done point is at least as accurate, as fast and as small in LUTs, and better in one. "
              "Latency is first input to decision at the bitstream's clock (estimates: at the configured clock)."]
    return "\n".join(lines) + "\n"
