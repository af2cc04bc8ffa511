"""Step `report` of `insitu compile`: report.json and report.md at the top of the run directory."""

from __future__ import annotations

from insitu.config import RunConfig
from insitu.pipeline import StepResult
from insitu.reports import compile_md
from insitu.rundir import RunDir, atomic_write_json, atomic_write_text


def run(cfg: RunConfig, run: RunDir) -> StepResult:
    rep = compile_md.build(run)
    atomic_write_json(run.path("report.json"), rep)
    atomic_write_text(run.path("report.md"), compile_md.markdown(rep))
    return StepResult([run.path("report.json"), run.path("report.md")], {"all_exact": compile_md.all_exact(rep)})
