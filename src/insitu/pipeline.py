"""Ordered steps `step(cfg, run) -> StepResult`, with resume and a record of time per step.

A step's key hashes the config sections it reads and the outputs of the steps it depends on; a finished
step whose key matches and whose outputs are intact is skipped (resume). Forcing a step re-runs it, which
changes its outputs and therefore the keys of everything after it.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from insitu.config import RunConfig
from insitu.rundir import RunDir, atomic_write_json

log = logging.getLogger(__name__)


@dataclass
class StepResult:
    outputs: list[Path]
    summary: dict[str, Any] = field(default_factory=dict)
    tools: dict[str, str | None] = field(default_factory=dict)


@dataclass(frozen=True)
class Step:
    name: str
    func: Callable[[RunConfig, RunDir], StepResult]
    sections: tuple[str, ...]
    deps: tuple[str, ...]
    doc: str


def step_key(step: Step, cfg: RunConfig, run: RunDir) -> str:
    parts = [cfg.section_hash(*step.sections)] + [run.output_digest(d) for d in step.deps]
    return hashlib.sha256("|".join(parts).encode()).hexdigest()[:16]


def save_config(cfg: RunConfig, run: RunDir) -> None:
    atomic_write_json(run.path("config.json"), cfg.model_dump(mode="json"))


def run_steps(steps: list[Step], cfg: RunConfig, run: RunDir, force: frozenset[str] = frozenset(),
              stop_after: str | None = None) -> dict[str, float]:
    """Run `steps` in order (skipping intact ones unless forced) up to `stop_after`; returns seconds per step."""
    save_config(cfg, run)
    seconds: dict[str, float] = {}
    for step in steps:
        key = step_key(step, cfg, run)
        if step.name not in force and run.stage_intact(step.name, key):
            log.info("step %-8s up to date (resumed from %s)", step.name, run.root)
        else:
            log.info("step %-8s running: %s", step.name, step.doc)
            run.forget_stage(step.name)
            t0 = time.monotonic()
            try:
                result = step.func(cfg, run)
            except KeyboardInterrupt:
                log.error("interrupted during step %s; finished steps are kept: run the same command to resume",
                          step.name)
                raise
            dt = time.monotonic() - t0
            run.record_stage(step.name, key, dt, result.outputs, result.summary, result.tools)
            log.info("step %-8s done in %.1f s", step.name, dt)
        seconds[step.name] = run.manifest()["stages"][step.name]["seconds"]
        if step.name == stop_after:
            break
    return seconds
