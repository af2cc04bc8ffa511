"""Step `report`: report.json, report.md and the confusion-matrix plot at the top of the run directory."""

from __future__ import annotations

from insitu.config import RunConfig
from insitu.pipeline import StepResult
from insitu.reports.build import build_report
from insitu.reports.render import confusion_plot, markdown
from insitu.rundir import RunDir, atomic_write_json, atomic_write_text


def run(cfg: RunConfig, run: RunDir) -> StepResult:
    report = build_report(run)
    plot = confusion_plot(report, run.path("confusion.png"))
    atomic_write_json(run.path("report.json"), report)
    atomic_write_text(run.path("report.md"), markdown(report, plot.name))
    return StepResult([run.path("report.json"), run.path("report.md"), plot],
                      {"kd_gain_points": report["kd_gain_points"], "csim": report["csim"]})
