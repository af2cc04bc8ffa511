"""Which step of which point runs where: the task graph of a sweep, and the sharing of steps between points.

A step's *lineage* hashes the config sections it reads and, recursively, the lineages of the steps it depends
on. Two points whose step has the same lineage would compute the same thing (its step key, which hashes the
dependencies' outputs, comes out equal too), so exactly one task computes it, in the first point that needs it
(its *owner*); every other point imports the owner's finished outputs and manifest record into its own run
directory (`share.import_stage`), hard-linked, and resumes from there. The teacher is thus trained once for the
whole sweep, a student once per student configuration, the RTL once per RTL configuration. A step's task runs
after the tasks of the steps it needs; every task writes only its own point's run directory, under that
directory's manifest lock, so no two workers ever write the same step.

The last step of an app (its report) is never shared: each point writes its own.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from insitu.config import RunConfig, load_config
from insitu.pipeline import Step, step_key
from insitu.rundir import RunDir


@dataclass(frozen=True)
class Task:
    index: int
    point: str  # the point's name (its run directory under points/)
    step: str
    needs: tuple[int, ...]  # tasks that must finish first (own or owners' steps)
    imports: tuple[tuple[str, str], ...]  # (step, run directory) to import before running, in list order
    cpus: float
    memory: int  # bytes asked of the scheduler (0: none)


#: steps that train with torch: they ask for `threads` CPUs
TRAINING = {"teacher", "distill", "ablation", "segnet", "streams"}
PLACE_AND_ROUTE_MEMORY = 4 << 30  # nextpnr-ecp5 on an 85F core peaks near 3 GiB


def lineages(steps: list[Step], cfg: RunConfig) -> dict[str, str]:
    out: dict[str, str] = {}
    for s in steps:
        parts = [cfg.section_hash(*s.sections)] + [out[d] for d in s.deps]
        out[s.name] = hashlib.sha256("|".join([s.name, *parts]).encode()).hexdigest()[:16]
    return out


def finished_in(run_root: Path, steps: list[Step]) -> dict[str, str]:
    """lineage -> run directory, for the steps of a finished run that are intact (with all they need)."""
    run = RunDir(run_root)
    cfg = load_config(run.path("config.json"))
    lin = lineages(steps, cfg)
    ok: set[str] = set()
    for s in steps[:-1]:
        if all(d in ok for d in s.deps) and run.stage_intact(s.name, step_key(s, cfg, run)):
            ok.add(s.name)
    return {lin[name]: str(run.root) for name in ok}


def _closure(by_name: dict[str, Step], name: str) -> list[str]:
    seen: list[str] = []

    def visit(n: str) -> None:
        for d in by_name[n].deps:
            visit(d)
        if n not in seen:
            seen.append(n)

    visit(name)
    return seen


def build(points: list[tuple[str, RunConfig]], steps: list[Step], root: Path,
          existing: dict[str, str] | None = None) -> list[Task]:
    """The tasks of every point, in an order where each task comes after those it needs. `existing` maps
    lineages to run directories that hold them already (a `from_run`)."""
    by_name = {s.name: s for s in steps}
    order = [s.name for s in steps]
    owner_task: dict[str, int] = {}
    owner_dir: dict[str, str] = dict(existing or {})
    tasks: list[Task] = []
    for name, cfg in points:
        lin = lineages(steps, cfg)
        own: dict[str, int] = {}
        for s in steps:
            shared = s.name != order[-1] and (lin[s.name] in owner_task or lin[s.name] in owner_dir)
            if shared:
                continue
            needs, imports = set(), []
            for d in _closure(by_name, s.name)[:-1]:
                if d in own:
                    if d in s.deps:
                        needs.add(own[d])
                    continue
                if lin[d] in owner_task:
                    needs.add(owner_task[lin[d]])
                    imports.append((d, str(root / tasks[owner_task[lin[d]]].point)))
                else:
                    imports.append((d, owner_dir[lin[d]]))
            train = s.name in TRAINING
            cpus = float(max(1, cfg.threads)) if train else 1.0
            memory = PLACE_AND_ROUTE_MEMORY if s.name == "firmware" and cfg.firmware.enabled and \
                not cfg.firmware.estimate_only else 0
            t = Task(len(tasks), name, s.name, tuple(sorted(needs)), tuple(imports), cpus, memory)
            tasks.append(t)
            own[s.name] = t.index
            if s.name != order[-1]:
                owner_task[lin[s.name]] = t.index
    return tasks
