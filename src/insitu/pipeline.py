"""Ordered steps `step(cfg, run) -> StepResult`, with resume and a record of time per step.

A step's key hashes the config sections it reads and the outputs of the steps it depends on; a finished
step whose key matches and whose outputs are intact is skipped (resume). Forcing a step re-runs it, which
changes its outputs and therefore the keys of everything after it.
"""

from __future__ import annotations

import hashlib
import logging
import os
import threading
import time
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from insitu import cancel
from insitu.config import RunConfig
from insitu.rundir import RunDir, atomic_write_json
from insitu.toolexec import stop_all_tools

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
    #: cores the step keeps busy while it runs (0: every core of the budget); the scheduler starts a step only
    #: when its cores are free, except a step that would otherwise run alone, which gets every core
    cores: int = 1
    #: the step trains with torch in this process: its worker thread gets as many torch threads as cores granted
    torch_threads: bool = False


_granted = threading.local()


def cores_granted(default: int = 1) -> int:
    """The cores the scheduler granted the step running in this thread (`default` outside `run_steps`)."""
    return getattr(_granted, "cores", default)


def step_key(step: Step, cfg: RunConfig, run: RunDir) -> str:
    parts = [cfg.section_hash(*step.sections)] + [run.output_digest(d) for d in step.deps]
    return hashlib.sha256("|".join(parts).encode()).hexdigest()[:16]


def save_config(cfg: RunConfig, run: RunDir) -> None:
    atomic_write_json(run.path("config.json"), cfg.model_dump(mode="json"))


def needed(steps: list[Step], target: str | tuple[str, ...] | None) -> list[Step]:
    """The target step(s) and every step they depend on, directly or not, in list order (all steps when none)."""
    if target is None:
        return list(steps)
    targets = (target,) if isinstance(target, str) else tuple(target)
    by_name = {s.name: s for s in steps}
    for t in targets:
        if t not in by_name:
            raise KeyError(f"no step named {t!r}")
    want, todo = set(), list(targets)
    while todo:
        name = todo.pop()
        if name in by_name and name not in want:
            want.add(name)
            todo.extend(by_name[name].deps)
    return [s for s in steps if s.name in want]


def run_steps(steps: list[Step], cfg: RunConfig, run: RunDir, force: frozenset[str] = frozenset(),
              stop_after: str | tuple[str, ...] | None = None, jobs: int = 3,
              cores: int | None = None) -> dict[str, float]:
    """Run `stop_after` (one step or several) and the steps they need (all steps by default), skipping intact
    ones unless forced.

    Steps whose dependencies are done run at the same time in worker threads, up to `jobs` of them and up to
    `cores` (default: the machine's) in the sum of their `Step.cores`; the list order is the priority. Most
    steps wait on one external tool each (the C simulation, the RTL simulator, place and route); a training
    step (`torch_threads`) gets torch threads for the cores it was granted. This thread only schedules the
    steps and writes the manifest. On Ctrl-C it requests cancellation (training loops stop at their
    next step) and stops the running tools, so the run ends at once. A failing step stops what depends on it;
    the steps already running finish and are recorded before the first error is raised. Returns seconds per
    step (each measured in its own thread)."""
    save_config(cfg, run)
    cancel.clear()
    todo = needed(steps, stop_after)
    names = {s.name for s in todo}
    seconds: dict[str, float] = {}
    failed: list[tuple[Step, BaseException]] = []
    running: dict[Future, tuple[Step, str]] = {}

    order = {s.name: i for i, s in enumerate(steps)}
    budget = max(1, cores or os.cpu_count() or 1)
    granted: dict[str, int] = {}

    def timed(step: Step) -> tuple[StepResult, float]:
        _granted.cores = granted[step.name]
        if step.torch_threads:
            import torch  # only training steps, which import it anyway

            torch.set_num_threads(min(granted[step.name], cfg.threads or budget))
        t0 = time.monotonic()
        return step.func(cfg, run), time.monotonic() - t0

    def demand(step: Step) -> int:
        return budget if step.cores <= 0 else min(step.cores, budget)

    def collect(futures) -> None:
        for fut in futures:
            step, key = running.pop(fut)
            granted.pop(step.name, None)
            try:
                result, dt = fut.result()
            except Exception as exc:  # noqa: BLE001 - re-raised below, after the others finish
                log.error("step %s failed: %s", step.name, exc)
                failed.append((step, exc))
                continue
            run.record_stage(step.name, key, dt, result.outputs, result.summary, result.tools)
            seconds[step.name] = run.manifest()["stages"][step.name]["seconds"]
            log.info("step %-8s done in %.1f s", step.name, dt)

    def launchable() -> list[tuple[Step, str]]:
        """Ready steps that must run (intact ones are resumed here); drops steps behind a failure."""
        out = []
        bad = {f.name for f, _ in failed}
        for step in list(todo):
            if any(d in bad for d in step.deps):
                todo.remove(step)
                bad.add(step.name)
                failed.append((step, _Skipped(step.name)))
                continue
            if not all(d in seconds for d in step.deps if d in names):
                continue
            todo.remove(step)
            key = step_key(step, cfg, run)
            if step.name not in force and run.stage_intact(step.name, key):
                log.info("step %-8s up to date (resumed from %s)", step.name, run.root)
                seconds[step.name] = run.manifest()["stages"][step.name]["seconds"]
                return launchable() + out  # its dependants may be ready now
            out.append((step, key))
        return out

    jobs = max(1, jobs)
    pool = ThreadPoolExecutor(max_workers=jobs, thread_name_prefix="step")
    try:
        while todo or running:
            ready = sorted(launchable() if not _real(failed) else [], key=lambda sk: order[sk[0].name])
            later, batch = [], []
            for step, key in ready:  # list order: a step that does not fit waits; later ones may still fit
                free = budget - sum(granted.values())
                if len(running) + len(batch) >= jobs or ((running or batch) and demand(step) > free):
                    later.append(step)
                    continue
                granted[step.name] = min(demand(step), free)
                batch.append((step, key))
            free = budget - sum(granted.values())
            if batch and free > 0 and (not later or len(running) + len(batch) >= jobs):
                granted[batch[0][0].name] += free  # nothing else can use them now
            for step, key in batch:
                log.info("step %-8s running on %d core(s): %s", step.name, granted[step.name], step.doc)
                run.forget_stage(step.name)
                running[pool.submit(timed, step)] = (step, key)
            todo[:0] = later
            if running:
                done, _ = wait(running, timeout=0.5, return_when=FIRST_COMPLETED)  # short: Ctrl-C lands here
                for fut in done:
                    if isinstance(fut.exception(), KeyboardInterrupt):
                        raise KeyboardInterrupt
                collect(done)
            elif todo and not _real(failed):
                raise RuntimeError(f"steps {[s.name for s in todo]} wait on steps that are not run")
            else:
                break
    except KeyboardInterrupt:
        active = [s.name for s, _ in running.values()]
        cancel.request()
        stop_all_tools()  # the running steps' tools; their threads then end at once
        pool.shutdown(wait=True, cancel_futures=True)
        log.error("interrupted during %s; finished steps are kept: run the same command to resume",
                  ", ".join(active) or "-")
        raise
    pool.shutdown(wait=True)
    real = _real(failed)
    if real:
        raise real[0][1]
    return seconds


class _Skipped(Exception):
    """A step not run because a step it needs failed."""


def _real(failed: list[tuple[Step, BaseException]]) -> list[tuple[Step, BaseException]]:
    return [(s, e) for s, e in failed if not isinstance(e, _Skipped)]
