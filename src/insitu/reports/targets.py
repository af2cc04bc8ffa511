"""The scorecard: a cells run's headline figures against insitu's targets for a sorter, each met, missed or not
measured by this run.

The targets (`TARGETS`, the registry) are the product's promises on the built-in cells data: a quantized student
close to its teacher, distillation that pays over the same student trained without the teacher, a decision in
microseconds at the clock the bitstream runs, and a main job that fits in a coffee break. Every figure is read
from this run's report; a run that did not measure one (no ablation, no bitstream) says so instead of guessing.
The accuracy targets are on the mean of 3 seeds (`bench/accuracy.py`): one run shows one seed, and says so.

The main job's time is the wall time during which at least one stage ran (the union of the stages' intervals
from the manifest), so stages that ran side by side count once and the pause of a resumed run counts not at
all; it does not include installing the environment.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Target:
    key: str
    what: str
    unit: str
    sense: str  # "<=" or ">="
    bound: float
    goal: float | None
    measure: Callable[[dict[str, Any]], tuple[float | None, str]]  # (value, how it was measured or why not)


def _gap(r: dict[str, Any]) -> tuple[float | None, str]:
    return 100 * (r["teacher"]["accuracy"] - r["student"]["accuracy"]), "teacher − KD student (QAT), this run's seed"


def _gain(r: dict[str, Any]) -> tuple[float | None, str]:
    if r.get("kd_gain_points") is None:
        return None, "no ablation in this run (distill.ablation = false)"
    return r["kd_gain_points"], "KD student − no-KD student (QAT), same student, seed, split and steps"


def _latency(r: dict[str, Any]) -> tuple[float | None, str]:
    lat = r.get("latency_us") or {}
    if lat.get("clock") != "bitstream" or lat.get("first_pixel_to_decision") is None:
        return None, "no bitstream in this run"
    return lat["first_pixel_to_decision"], (f"first pixel → decision, {lat['cycles']['first_pixel_to_decision']} "
                                            f"cycles at the bitstream's {lat['clock_mhz']:g} MHz")


def _minutes(r: dict[str, Any]) -> tuple[float | None, str]:
    wall = (r.get("main_job") or {}).get("wall_seconds")
    if wall is None:
        return None, "no stage times"
    return wall / 60, "wall time while a stage ran (setup not included)"


TARGETS: tuple[Target, ...] = (
    Target("teacher_gap", "quantized KD student behind its teacher", "points", "<=", 3.0, 1.0, _gap),
    Target("kd_gain", "KD gain over the no-KD ablation", "points", ">=", 2.0, None, _gain),
    Target("latency", "decision latency on the board", "µs", "<=", 5.0, None, _latency),
    Target("main_job", "main job", "min", "<=", 15.0, None, _minutes),
)


def wall_seconds(stages: dict[str, dict[str, Any]]) -> float | None:
    """Seconds during which at least one of these manifest stages ran (the union of their intervals)."""
    spans = []
    for rec in stages.values():
        try:
            end = time.mktime(time.strptime(rec["finished"], "%Y-%m-%dT%H:%M:%S"))
        except (KeyError, ValueError):
            continue
        spans.append((end - float(rec["seconds"]), end))
    if not spans:
        return None
    total, cur_start, cur_end = 0.0, *sorted(spans)[0]
    for start, end in sorted(spans)[1:]:
        if start > cur_end:
            total += cur_end - cur_start
            cur_start, cur_end = start, end
        else:
            cur_end = max(cur_end, end)
    return round(total + cur_end - cur_start, 1)


def scorecard(report: dict[str, Any]) -> list[dict[str, Any]]:
    rows = []
    for t in TARGETS:
        value, how = t.measure(report)
        if value is None:
            status = "not measured"
        else:
            ok = value <= t.bound if t.sense == "<=" else value >= t.bound
            status = "met" if ok else "missed"
            if ok and t.goal is not None and value > t.goal:
                status = "met (goal not reached)"
        rows.append({"key": t.key, "what": t.what, "value": None if value is None else round(value, 2),
                     "unit": t.unit, "target": f"{t.sense} {t.bound:g}", "goal": t.goal, "status": status,
                     "how": how})
    return rows


def markdown(rows: list[dict[str, Any]]) -> list[str]:
    lines = ["## Targets", "",
             "| target | this run | wanted | status | measured as |", "|---|---:|---:|---|---|"]
    for r in rows:
        value = "-" if r["value"] is None else f"{r['value']:g} {r['unit']}"
        wanted = f"{r['target']} {r['unit']}" + (f" (goal {r['goal']:g})" if r["goal"] is not None else "")
        lines.append(f"| {r['what']} | {value} | {wanted} | {r['status']} | {r['how']} |")
    lines += ["", "The accuracy targets are judged on the mean of 3 seeds (`bench/accuracy.py`); this run is one "
              "seed.", ""]
    return lines
