"""Design-space sweeps: a TOML spec of axes over an app's config, every point an ordinary run directory under
DIR/points/, the steps shared between points where their inputs are the same, the tasks run on Ray, and the
accuracy / latency / resources Pareto front in DIR/sweep.json, DIR/sweep.csv and DIR/report.md.

    from insitu.sweep import load_spec, run_sweep
    doc = run_sweep(load_spec(Path("sweep.toml")), Path("runs/sweep"), steps_for_app, workers=2)

`steps_for_app(app) -> list[Step]` is the step registry (the CLI passes `insitu.steps.APP_STEPS`): this package
runs steps, it does not choose them.
"""

from __future__ import annotations

import dataclasses
import logging
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from insitu.config import load_config
from insitu.errors import InsituError
from insitu.pipeline import Step
from insitu.rundir import atomic_write_json, atomic_write_text
from insitu.sweep import engine, report, results
from insitu.sweep.spec import Point, SweepSpec, load_spec

__all__ = ["load_spec", "run_sweep", "SweepSpec", "Point"]
log = logging.getLogger(__name__)


def _prepare(spec: SweepSpec, estimate_only: bool) -> SweepSpec:
    fixed = dict(spec.fixed)
    fixed.setdefault("threads", 1)  # one torch thread per training task: Ray gives each task its own core
    if estimate_only:
        fixed["firmware.estimate_only"] = True
    return dataclasses.replace(spec, fixed=fixed)


def _point_doc(p: Point, root: Path, state: dict) -> dict[str, Any]:
    return {"name": p.name, "overrides": p.overrides, "status": state["status"], "error": state["error"],
            "run_dir": str(root / p.name), "metrics": state["metrics"], "pareto": False,
            "steps_done": state["done"], "steps": state["total"], "seconds": round(state["seconds"], 1)}


def _estimated_front(out: Path, spec: SweepSpec) -> tuple[set[str], list[dict[str, Any]]]:
    """The names of the points on the front of an estimate-only sweep in `out`, and its point entries."""
    path = out / "sweep.json"
    prev = _read_json(path) if path.exists() else None
    if not prev or not prev.get("estimate_only") or not prev.get("points"):
        raise InsituError(f"--route-front needs an estimate-only sweep in {out}",
                          f"run `insitu sweep {spec.source} --out {out} --estimate-only` first")
    names = {p.name for p in spec.points()}
    kept = [p for p in prev["points"] if p["name"] in names]
    return {p["name"] for p in kept if p["pareto"]}, kept


def _routed(run_dir: Path):
    cfg = load_config(run_dir / "config.json")
    return cfg.model_copy(update={"firmware": cfg.firmware.model_copy(update={"estimate_only": False})})


def run_sweep(spec: SweepSpec, out: Path, steps_for_app: Callable[[str], list[Step]], workers: int | None = None,
              address: str | None = None, estimate_only: bool = False, show: bool = True,
              route_front: bool = False) -> dict[str, Any]:
    """Run every point (or, with `route_front`, place and route only the points on the front of the estimate-only
    sweep already in `out`, keeping the others' estimates) and write sweep.json, sweep.csv and report.md."""
    out = Path(out)
    front, kept = _estimated_front(out, spec) if route_front else (set(), [])
    spec = _prepare(spec, estimate_only and not route_front)
    steps = steps_for_app(spec.app)
    points = spec.points()
    if route_front:  # the front's points as they ran (their config.json), now with place and route
        points = [Point(p["overrides"], _routed(Path(p["run_dir"]))) for p in kept if p["name"] in front]
        kept = [p for p in kept if p["name"] not in front]
    root = out / "points"
    root.mkdir(parents=True, exist_ok=True)
    if spec.source.resolve() != (out / "spec.toml").resolve():
        shutil.copy(spec.source, out / "spec.toml")
    tasks = engine.plan_tasks([(p.name, p.config) for p in points], steps, root, spec.from_run)
    for p in points:
        atomic_write_json(root / p.name / "point.json", {"overrides": p.overrides})
    states = {p.name: {"status": "pending", "error": None, "metrics": None, "done": 0, "seconds": 0.0,
                       "total": sum(t.point == p.name for t in tasks), "last": ""} for p in points}
    configs = {p.name: p.config.model_dump(mode="json") for p in points}
    t0 = time.monotonic()
    ray, started = engine.start_ray(address, workers)
    n_workers = int(ray.cluster_resources().get("CPU", 0))
    doc: dict[str, Any] = {"app": spec.app, "preset": spec.preset, "spec": str(spec.source), "mode": spec.mode,
                           "axes": list(spec.axes), "fixed": spec.fixed, "estimate_only": estimate_only,
                           "engine": f"ray {ray.__version__}" + (f" at {address}" if address else " (local)"),
                           "workers": n_workers, "from_run": str(spec.from_run) if spec.from_run else None,
                           "shared_steps": len(points) * len(steps) - len(tasks), "tasks": len(tasks)}
    if route_front:
        doc.update(estimate_only=False, routed_front=sorted(front))

    def write() -> None:
        pts = [_point_doc(p, root, states[p.name]) for p in points] + kept
        for p, flag in zip(pts, results.pareto_flags(pts)):
            p["pareto"] = flag
        doc.update(points=pts, wall_seconds=round(time.monotonic() - t0, 1))
        atomic_write_json(out / "sweep.json", doc)

    def on_done(task, res: dict) -> None:
        st = states[task.point]
        st["seconds"] += res.get("seconds") or 0.0
        if res["status"] == "done":
            st["done"] += 1
            st["last"] = task.step
        elif st["status"] != "failed":
            st.update(status="failed", error=res["error"])
        if st["status"] != "failed" and st["done"] == st["total"]:
            st["status"] = "done"
            rep_path = root / task.point / "report.json"
            st["metrics"] = results.metrics(_read_json(rep_path)) if rep_path.exists() else None
        elif st["status"] == "pending":
            st["status"] = "running"
        progress.update(task.point, st)
        write()

    progress = _Progress([p.name for p in points], {p.name: p.label for p in points}, show)
    write()
    try:
        with progress:
            engine.run_tasks(tasks, configs, steps, root, ray, on_done)
    finally:
        if started:
            ray.shutdown()
    write()
    plots = report.plot(doc["points"], spec.app, out)
    atomic_write_text(out / "sweep.csv", results.write_csv(doc["points"], doc["axes"]))
    atomic_write_text(out / "report.md", report.markdown(doc, plots))
    return doc


def _read_json(path: Path) -> dict:
    import json

    return json.loads(path.read_text())


class _Progress:
    """A bar over points and a line per point with its state (rich, when shown)."""

    def __init__(self, names: list[str], labels: dict[str, str], show: bool) -> None:
        self.names, self.labels, self.show = names, labels, show
        self.states: dict[str, str] = {n: "pending" for n in names}
        self._live = None

    def _render(self):
        from rich.console import Group
        from rich.progress_bar import ProgressBar
        from rich.table import Table

        done = sum(s.startswith(("done", "failed")) for s in self.states.values())
        table = Table(show_header=True, box=None)
        table.add_column("point")
        table.add_column("overrides")
        table.add_column("state")
        for n in self.names:
            table.add_row(n, self.labels[n], self.states[n])
        return Group(f"points {done}/{len(self.names)}", ProgressBar(total=len(self.names), completed=done), table)

    def update(self, name: str, st: dict) -> None:
        if st["status"] == "failed":
            text = f"failed: {(st['error'] or '').splitlines()[0][:90]}"
        elif st["status"] == "done":
            text = "done"
        else:
            text = f"{st['done']}/{st['total']} steps (last: {st['last'] or '-'})"
        self.states[name] = text
        log.info("sweep %s: %s", name, text)
        if self._live is not None:
            self._live.update(self._render())

    def __enter__(self):
        if self.show:
            from rich.live import Live

            self._live = Live(self._render(), refresh_per_second=2, transient=False)
            self._live.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        if self._live is not None:
            self._live.__exit__(*exc)
