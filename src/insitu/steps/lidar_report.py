"""Lidar step `report`: report.json, report.md, roc.png and bev.png at the top of the run directory."""

from __future__ import annotations

from insitu.config import RunConfig
from insitu.pipeline import StepResult
from insitu.reports import lidar as lidar_report
from insitu.rundir import RunDir, atomic_write_json, atomic_write_text


def run(cfg: RunConfig, run: RunDir) -> StepResult:
    rep = lidar_report.build(run)
    roc = lidar_report.roc_plot(rep, run.path("roc.png"))
    bev = lidar_report.bev_plot(run, run.path("bev.png"))
    atomic_write_json(run.path("report.json"), rep)
    atomic_write_text(run.path("report.md"), lidar_report.markdown(rep, roc and roc.name, bev and bev.name))
    outs = [run.path("report.json"), run.path("report.md")] + [p for p in (roc, bev) if p]
    return StepResult(outs, {"student_auroc": rep["student"].get("auroc"), "two_stream_iou": rep["two_stream"].get("iou")})
