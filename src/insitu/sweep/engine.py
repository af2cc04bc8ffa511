"""Run a sweep's task graph on Ray: a local Ray started for the sweep (workers = cores) and stopped after it, or
an existing cluster (`address="auto"` or `ray://host:port`; the run directories must then be on a file system
every node sees, with insitu installed on each).

Each task asks for what it needs (a training step its torch threads, a place and route one CPU and 4 GiB), so
Ray runs one build per core. A task never raises: it returns its status, and a task whose inputs failed is
recorded as skipped, so one failing point never stops the others. sweep.json is rewritten as points finish, so
an interrupted sweep keeps what it had; run again, finished steps are resumed from the run directories.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from insitu.errors import InsituError
from insitu.pipeline import Step
from insitu.sweep import plan
from insitu.sweep.plan import Task

log = logging.getLogger(__name__)


def execute(point_dir: str, cfg_doc: dict, steps: list[Step], step: str, imports: list[tuple[str, str]],
            *needed: dict) -> dict[str, Any]:
    """One task, in a Ray worker: import the shared steps it needs, then run `step` (resuming intact ones)."""
    from insitu.toolexec import stop_all_tools

    def _term(signum, frame):  # a stopped sweep stops this task's tools too
        stop_all_tools()
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, _term)
    mark = _running_mark(Path(point_dir).parent, os.getpid())
    mark.parent.mkdir(exist_ok=True)
    mark.write_text(step)
    try:
        return _execute(point_dir, cfg_doc, steps, step, imports, needed)
    finally:
        mark.unlink(missing_ok=True)


def _execute(point_dir: str, cfg_doc: dict, steps: list[Step], step: str, imports: list[tuple[str, str]],
             needed: tuple[dict, ...]) -> dict[str, Any]:
    from insitu.config import RunConfig
    from insitu.pipeline import run_steps
    from insitu.rundir import RunDir
    from insitu.sweep.share import import_stage

    out = {"point": Path(point_dir).name, "step": step, "status": "done", "error": None, "seconds": 0.0}
    bad = [r for r in needed if r["status"] != "done"]
    if bad:
        return {**out, "status": "skipped", "error": bad[0]["error"] or f"{bad[0]['step']} did not finish"}
    t0 = time.monotonic()
    try:
        import torch

        cfg = RunConfig.model_validate(cfg_doc)
        torch.set_num_threads(max(1, cfg.threads))
        run = RunDir(Path(point_dir))
        with run.locked():
            for name, src in imports:
                import_stage(RunDir(Path(src)), run, name)
        run_steps(steps, cfg, run, stop_after=step, jobs=1)
    except InsituError as exc:
        out.update(status="failed", error=f"{step}: {exc.problem}" + (f" (fix: {exc.fix})" if exc.fix else ""))
    except Exception as exc:  # noqa: BLE001 - recorded with the point; the sweep goes on
        out.update(status="failed", error=f"{step}: {type(exc).__name__}: {exc}")
    out["seconds"] = round(time.monotonic() - t0, 1)
    return out


def start_ray(address: str | None, workers: int | None):
    """(ray module, whether this sweep started it)."""
    try:
        import ray
    except ImportError:
        raise InsituError("Ray is not installed", "pip install 'insitu[sweep]' (make test installs it)") from None
    if ray.is_initialized():
        return ray, False
    kw: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False, "logging_level": logging.WARNING,
                          "configure_logging": True}
    if address:
        try:
            ray.init(address=address, **kw)
        except (ConnectionError, RuntimeError, ValueError) as exc:
            raise InsituError(f"cannot reach the Ray cluster at {address}: {exc}",
                              "start it (`ray start --head`), check the address, or drop --address for a local Ray"
                              ) from None
        return ray, True
    n = workers or os.cpu_count() or 1
    ray.init(num_cpus=n, **kw)
    return ray, True


def run_tasks(tasks: list[Task], configs: dict[str, dict], steps: list[Step], root: Path, ray,
              on_done: Callable[[Task, dict], None]) -> dict[int, dict]:
    """Submit every task (each after those it needs) and call `on_done` as each finishes."""
    remote = ray.remote(execute)
    refs: dict[int, Any] = {}
    for t in tasks:
        opts: dict[str, Any] = {"num_cpus": t.cpus, "max_retries": 0}
        if t.memory:
            opts["memory"] = t.memory
        refs[t.index] = remote.options(**opts).remote(str(root / t.point), configs[t.point], steps, t.step,
                                                       list(t.imports), *[refs[i] for i in t.needs])
    by_ref = {r: i for i, r in refs.items()}
    results: dict[int, dict] = {}
    pending = list(refs.values())
    try:
        while pending:
            done, pending = ray.wait(pending, num_returns=1, timeout=1.0)
            for ref in done:
                t = tasks[by_ref[ref]]
                try:
                    res = ray.get(ref)
                except Exception as exc:  # noqa: BLE001 - a worker that died (out of memory, killed)
                    res = {"point": t.point, "step": t.step, "status": "failed", "seconds": 0.0,
                           "error": f"{t.step}: the worker died: {type(exc).__name__}: {str(exc)[:300]}"}
                results[t.index] = res
                on_done(t, res)
    except KeyboardInterrupt:
        _stop_running(root, ray, pending)
        raise
    return results


def _running_mark(root: Path, pid: int) -> Path:
    return root / ".running" / f"{socket.gethostname()}-{pid}"


def _stop_running(root: Path, ray, pending: list, grace_s: float = 60.0) -> None:
    """Stop the tasks running on this machine: SIGTERM to their workers (each then kills its tools and ends
    its step as Ctrl-C would), and wait for them up to `grace_s`. Not ray.cancel: in Ray 2.60 a cancel that
    races with a task's completion can abort the driver ("Tried to complete task that was not pending", the
    race of ray-project/ray#54798); the tasks not started end with ray.shutdown, or with the driver on an
    existing cluster."""
    host = socket.gethostname() + "-"
    stopped = 0
    for mark in (root / ".running").glob(host + "*"):
        try:
            os.kill(int(mark.name[len(host):]), signal.SIGTERM)
            stopped += 1
        except (ValueError, ProcessLookupError, PermissionError):
            mark.unlink(missing_ok=True)
    if stopped:
        log.info("stopping %d running task(s)", stopped)
    deadline = time.monotonic() + grace_s
    while pending and any((root / ".running").glob(host + "*")) and time.monotonic() < deadline:
        _, pending = ray.wait(pending, num_returns=1, timeout=1.0)


def plan_tasks(points: list[tuple[str, Any]], steps: list[Step], root: Path, from_run: Path | None) -> list[Task]:
    existing = plan.finished_in(from_run, steps) if from_run else None
    return plan.build(points, steps, root, existing)
