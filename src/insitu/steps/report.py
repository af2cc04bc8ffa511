"""Step `report`: report.json, report.md and the confusion-matrix plot at the top of the run directory."""

from __future__ import annotations

from insitu.config import RunConfig
from insitu.pipeline import StepResult
from insitu.reports import firmware_md, targets
from insitu.reports.build import build_report, lane_points
from insitu.reports.render import confusion_plot, markdown
from insitu.rundir import RunDir, atomic_write_json, atomic_write_text


def run(cfg: RunConfig, run: RunDir) -> StepResult:
    report = build_report(run)
    plot = confusion_plot(report, run.path("confusion.png"))
    lat_plot = firmware_md.latency_plot(lane_points(run), run.path("latency_vs_resources.png"))
    text = markdown(report, plot.name) + "\n".join(firmware_md.section(report, lat_plot.name if lat_plot else None)
                                                  + targets.markdown(report.get("targets") or []))
    atomic_write_json(run.path("report.json"), report)
    atomic_write_text(run.path("report.md"), text)
    outs = [run.path("report.json"), run.path("report.md"), plot] + ([lat_plot] if lat_plot else [])
    return StepResult(outs,
                      {"kd_gain_points": report["kd_gain_points"], "csim": report["csim"]})
