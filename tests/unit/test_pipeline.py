from pathlib import Path

import pytest

from insitu.config import build_config
from insitu.pipeline import Step, StepResult, run_steps
from insitu.rundir import RunDir, atomic_write_text


def _steps(calls, interrupt=None):
    def make(name):
        def func(cfg, run):
            calls.append(name)
            if name == interrupt:
                raise KeyboardInterrupt
            p = run.path(f"{name}.txt")
            atomic_write_text(p, f"{name} {cfg.student.weight_bits} {len(calls)}")
            return StepResult([p], {"n": len(calls)})
        return func

    return [Step("a", make("a"), ("data",), (), ""), Step("b", make("b"), ("student",), ("a",), ""),
            Step("c", make("c"), (), ("b",), "")]


def test_resume_skips_finished_steps(tmp_path):
    cfg, run, calls = build_config("tiny"), RunDir(tmp_path), []
    run_steps(_steps(calls), cfg, run)
    run_steps(_steps(calls), cfg, run)
    assert calls == ["a", "b", "c"]
    assert set(run.manifest()["stages"]) == {"a", "b", "c"}


def test_config_change_reruns_the_step_and_everything_after(tmp_path):
    run, calls = RunDir(tmp_path), []
    run_steps(_steps(calls), build_config("tiny"), run)
    run_steps(_steps(calls), build_config("tiny", {"student": {"weight_bits": 3}}), run)
    assert calls == ["a", "b", "c", "b", "c"]


def test_damaged_output_is_rebuilt(tmp_path):
    cfg, run, calls = build_config("tiny"), RunDir(tmp_path), []
    run_steps(_steps(calls), cfg, run)
    (tmp_path / "b.txt").write_text("tampered")
    run_steps(_steps(calls), cfg, run)
    assert calls == ["a", "b", "c", "b", "c"]


def test_forced_step(tmp_path):
    cfg, run, calls = build_config("tiny"), RunDir(tmp_path), []
    run_steps(_steps(calls), cfg, run)
    run_steps(_steps(calls), cfg, run, force=frozenset({"a"}), stop_after="a")
    assert calls == ["a", "b", "c", "a"]


def test_interrupt_keeps_finished_steps_and_resumes(tmp_path):
    cfg, run, calls = build_config("tiny"), RunDir(tmp_path), []
    with pytest.raises(KeyboardInterrupt):
        run_steps(_steps(calls, interrupt="b"), cfg, run)
    a_before = (tmp_path / "a.txt").read_text()
    assert set(run.manifest()["stages"]) == {"a"}
    run_steps(_steps(calls), cfg, run)
    assert calls == ["a", "b", "b", "c"] and (tmp_path / "a.txt").read_text() == a_before


def _save_many(path: str, value: int) -> None:
    import numpy as np

    from insitu.rundir import atomic_savez

    for _ in range(30):
        atomic_savez(Path(path), x=np.full(1000, value))


def test_concurrent_atomic_savez_never_collide(tmp_path):
    """Processes writing the same cache file at once (two runs, or sweep workers, making the same data): each
    writes its own temporary file, and the file is always one whole archive."""
    import multiprocessing as mp

    import numpy as np

    target = tmp_path / "cache.npz"
    ctx = mp.get_context("spawn")
    procs = [ctx.Process(target=_save_many, args=(str(target), v)) for v in (1, 2, 3)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
    assert all(p.exitcode == 0 for p in procs)
    with np.load(target) as z:
        assert len(set(z["x"].tolist())) == 1
    assert not list(tmp_path.glob(".*"))  # no temporary file left behind


def _diamond(calls, barrier=None, fail=None):
    def make(name):
        def func(cfg, run):
            calls.append(name)
            if barrier is not None and name in ("left", "right"):
                barrier.wait(timeout=20)  # passes only when both branches run at the same time
            if name == fail:
                raise RuntimeError(f"{name} broke")
            p = run.path(f"{name}.txt")
            atomic_write_text(p, name)
            return StepResult([p])
        return func

    return [Step("root", make("root"), (), (), ""), Step("left", make("left"), (), ("root",), ""),
            Step("right", make("right"), (), ("root",), ""), Step("join", make("join"), (), ("left", "right"), "")]


def test_independent_steps_run_concurrently(tmp_path):
    import threading

    calls = []
    run_steps(_diamond(calls, threading.Barrier(2)), build_config("tiny"), RunDir(tmp_path), jobs=2, cores=2)
    assert calls[0] == "root" and set(calls[1:3]) == {"left", "right"} and calls[3] == "join"


def test_a_failing_step_keeps_its_sibling_and_stops_its_dependants(tmp_path):
    calls, run = [], RunDir(tmp_path)
    with pytest.raises(RuntimeError, match="left broke"):
        run_steps(_diamond(calls, fail="left"), build_config("tiny"), run, jobs=2)
    assert "join" not in calls and set(run.manifest()["stages"]) == {"root", "right"}
    calls.clear()
    run_steps(_diamond(calls), build_config("tiny"), run, jobs=2)  # resume: only the failed step and after
    assert sorted(calls) == ["join", "left"]


def test_stop_after_runs_only_what_the_target_needs(tmp_path):
    calls = []
    run_steps(_diamond(calls), build_config("tiny"), RunDir(tmp_path), stop_after="left")
    assert calls == ["root", "left"]


def test_ctrl_c_cancels_a_training_loop_running_in_a_worker_thread(tmp_path):
    import _thread
    import signal
    import threading
    import time

    from insitu import cancel

    stopped = []

    def slow(cfg, run):
        t0 = time.monotonic()
        try:
            while time.monotonic() - t0 < 60:  # what fit() does between optimisation steps (bounded: never hangs)
                cancel.check()
                time.sleep(0.01)
        finally:
            stopped.append(time.monotonic())
        return StepResult([])

    steps = [Step("slow", slow, (), (), "")]
    # a background job inherits SIGINT ignored, and then interrupt_main does nothing: handle it as a terminal would
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        threading.Timer(0.5, _thread.interrupt_main).start()
        t0 = time.monotonic()
        with pytest.raises(KeyboardInterrupt):
            run_steps(steps, build_config("tiny"), RunDir(tmp_path))
    finally:
        signal.signal(signal.SIGINT, previous)
    assert stopped and stopped[0] - t0 < 5 and "slow" not in RunDir(tmp_path).manifest()["stages"]
