"""The scheduler's core budget: which steps share the machine, and the cores (torch threads) each is granted."""

import threading
import time

from insitu.config import build_config
from insitu.pipeline import Step, StepResult, cores_granted, needed, run_steps
from insitu.rundir import RunDir, atomic_write_text


def _graph(log, lock, cores):
    """root -> {big (cores[big]), small1, small2} -> join; each records (name, start, end, granted)."""
    def make(name):
        def func(cfg, run):
            t0 = time.monotonic()
            time.sleep(0.3)
            with lock:
                log.append((name, t0, time.monotonic(), cores_granted()))
            p = run.path(f"{name}.txt")
            atomic_write_text(p, name)
            return StepResult([p])
        return func

    return [Step("root", make("root"), (), (), ""),
            Step("big", make("big"), (), ("root",), "", cores=cores.get("big", 1)),
            Step("small1", make("small1"), (), ("root",), "", cores=cores.get("small1", 1)),
            Step("small2", make("small2"), (), ("root",), "", cores=cores.get("small2", 1)),
            Step("join", make("join"), (), ("big", "small1", "small2"), "")]


def _overlap(a, b) -> bool:
    return a[1] < b[2] and b[1] < a[2]


def test_an_all_cores_step_runs_alone_and_is_granted_every_core(tmp_path):
    log, lock = [], threading.Lock()
    run_steps(_graph(log, lock, {"big": 0}), build_config("tiny"), RunDir(tmp_path), jobs=3, cores=2)
    by = {r[0]: r for r in log}
    assert by["big"][3] == 2  # the first ready step, nothing else running: all cores
    assert not _overlap(by["big"], by["small1"]) and not _overlap(by["big"], by["small2"])
    assert _overlap(by["small1"], by["small2"])  # the two 1-core steps share the 2 cores
    assert by["small1"][3] == 1 and by["small2"][3] == 1


def test_one_core_steps_never_exceed_the_budget(tmp_path):
    log, lock = [], threading.Lock()
    run_steps(_graph(log, lock, {}), build_config("tiny"), RunDir(tmp_path), jobs=3, cores=2)
    mids = [r for r in log if r[0] in ("big", "small1", "small2")]
    for r in mids:  # never three at once on two cores
        assert sum(_overlap(r, o) for o in mids if o is not r) <= 1
    assert [r[0] for r in log][0] == "root" and [r[0] for r in log][-1] == "join"


def test_a_step_alone_gets_every_core_and_needed_takes_several_targets(tmp_path):
    log, lock = [], threading.Lock()
    steps = _graph(log, lock, {})
    assert [s.name for s in needed(steps, ("big", "small2"))] == ["root", "big", "small2"]
    run_steps(steps, build_config("tiny"), RunDir(tmp_path), jobs=1, cores=2)
    assert all(r[3] == 2 for r in log)  # one job at a time: each step alone on the machine
