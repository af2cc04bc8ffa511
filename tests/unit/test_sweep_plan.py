"""Sweep specs, the task graph and its sharing, importing a step between run directories, Pareto flags: no Ray."""

import json
from pathlib import Path

import pytest

from insitu.errors import ConfigError, InsituError
from insitu.pipeline import StepResult, run_steps
from insitu.rundir import RunDir
from insitu.steps import CELLS_STEPS
from insitu.sweep import plan, results, share
from insitu.sweep.spec import load_spec


def _spec(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "s.toml"
    p.write_text(text)
    return p


GRID = '''app = "cells"
preset = "tiny"
set = { "firmware.board" = "ulx3s-85f" }
[grid]
"student.weight_bits" = [3, 4]
"rtl.lanes" = [1, 2]
'''


def test_grid_points_and_stable_names(tmp_path):
    spec = load_spec(_spec(tmp_path, GRID))
    pts = spec.points()
    assert [p.overrides for p in pts] == [{"student.weight_bits": w, "rtl.lanes": n} for w in (3, 4) for n in (1, 2)]
    assert {p.config.student.weight_bits for p in pts} == {3, 4} and pts[0].config.preset == "tiny"
    assert len({p.name for p in pts}) == 4
    assert [p.name for p in load_spec(_spec(tmp_path, GRID)).points()] == [p.name for p in pts]


def test_random_samples_are_seeded_and_distinct(tmp_path):
    text = 'app = "cells"\npreset = "tiny"\n[random]\nn = 3\nseed = 5\n"student.weight_bits" = [2, 3, 4, 5]\n' \
           '"rtl.lanes" = [1, 2]\n'
    a, b = (load_spec(_spec(tmp_path, text)).points() for _ in range(2))
    assert len(a) == 3 and [p.name for p in a] == [p.name for p in b] and len({p.name for p in a}) == 3


@pytest.mark.parametrize("text, named", [
    ('app = "cells"\ncolour = 1\n', "colour"),
    ('app = "cells"\n[grid]\n"student.weight_bitz" = [4]\n', "weight_bitz"),
    ('app = "cells"\n[grid]\n"student.weight_bits" = [4, 99]\n', "weight_bits"),
    ('app = "cells"\nset = { "rtl.architecture" = "magic" }\n', "architecture"),
    ('app = "cells"\n[grid]\n"rtl.lanes" = 4\n', "non-empty list"),
    ('app = "radar"\n', "radar"),
    ('app = "cells"\n[random]\n"rtl.lanes" = [1]\n', "n ="),
    ('app = "cells"\nfrom_run = "nowhere"\n', "from_run"),
    ('app = "cells"\n[grid\n', "not valid TOML"),
])
def test_bad_specs_are_refused_by_name(tmp_path, text, named):
    with pytest.raises(ConfigError) as err:
        load_spec(_spec(tmp_path, text))
    assert named in str(err.value)


def test_plan_shares_teacher_once_student_per_config_rtl_per_lanes(tmp_path):
    pts = [(p.name, p.config) for p in load_spec(_spec(tmp_path, GRID)).points()]
    tasks = plan.build(pts, CELLS_STEPS, tmp_path / "points")
    by_step = {}
    for t in tasks:
        by_step.setdefault(t.step, []).append(t)
    assert len(by_step["data"]) == len(by_step["teacher"]) == 1
    assert len(by_step["distill"]) == len(by_step["export"]) == len(by_step["hls"]) == 2  # per weight width
    assert len(by_step["rtl"]) == len(by_step["rtlsim"]) == len(by_step["firmware"]) == 4
    assert len(by_step["report"]) == 4
    for t in tasks:  # every task comes after those it needs, and imports only what others computed
        assert all(n < t.index for n in t.needs)
        assert all(Path(src).name != t.point for _, src in t.imports)
    second = next(t for t in by_step["rtl"] if t.point == pts[1][0])  # same student, other lanes
    assert [s for s, _ in second.imports] == ["data", "teacher", "distill", "export"]
    assert by_step["teacher"][0].cpus == 1.0  # the sweep's threads = 1 is set by run_sweep; here the config's 0


def test_plan_takes_steps_from_an_existing_run(tmp_path):
    pts = [(p.name, p.config) for p in load_spec(_spec(tmp_path, GRID)).points()]
    lin = plan.lineages(CELLS_STEPS, pts[0][1])
    existing = {lin["data"]: "/elsewhere", lin["teacher"]: "/elsewhere"}
    tasks = plan.build(pts, CELLS_STEPS, tmp_path / "points", existing)
    assert not [t for t in tasks if t.step in ("data", "teacher")]
    assert ("teacher", "/elsewhere") in next(t for t in tasks if t.step == "distill").imports


def _toy_steps(calls):
    from insitu.pipeline import Step

    def a(cfg, run):
        calls.append("a")
        (run.path("a")).mkdir(exist_ok=True)
        run.path("a", "x.txt").write_text("made by a")
        run.path("a", "side.txt").write_text("beside the output")
        return StepResult([run.path("a", "x.txt")], {"n": 1})

    def b(cfg, run):
        calls.append("b")
        run.path("b.txt").write_text(run.path("a", "x.txt").read_text() + run.path("a", "side.txt").read_text())
        return StepResult([run.path("b.txt")])

    return [Step("a", a, ("data",), (), "a"), Step("b", b, ("rtl",), ("a",), "b")]


def test_import_stage_lets_the_importer_resume(tmp_path):
    from insitu.config import build_config

    cfg = build_config("tiny")
    calls = []
    steps = _toy_steps(calls)
    src, dst = RunDir(tmp_path / "src"), RunDir(tmp_path / "dst")
    run_steps(steps, cfg, src, stop_after="a")
    with dst.locked():
        assert share.import_stage(src, dst, "a") is True
        assert share.import_stage(src, dst, "a") is False  # already there, intact
    assert (dst.path("a", "side.txt")).read_text() == "beside the output"  # the whole directory came along
    run_steps(steps, cfg, dst)
    assert calls == ["a", "b"]  # b ran in dst, a was not run again
    assert dst.manifest()["stages"]["a"]["summary"]["imported_from"] == str(src.root)
    with pytest.raises(InsituError, match="not finished"):
        share.import_stage(dst, RunDir(tmp_path / "other"), "zzz")


def test_units_of_outputs():
    assert share.units(["rtl/design.json", "rtl/verilog/a.v", "report.json"]) == ["rtl", "report.json"]
    assert share.units(["firmware/ulx3s-85f/impl.json", "firmware/ulx3s-85f/x.bit"]) == ["firmware/ulx3s-85f"]


def _pt(acc, us, lut, status="done"):
    return {"status": status, "metrics": {"accuracy": acc, "latency_us": us, "lut": lut}}


def test_pareto_flags_on_hand_made_points():
    pts = [_pt(0.90, 10.0, 30000),  # front: the most accurate
           _pt(0.85, 5.0, 20000),  # front: fastest and smallest
           _pt(0.85, 6.0, 20000),  # dominated by the one above (slower, same otherwise)
           _pt(0.80, 12.0, 40000),  # dominated by both
           _pt(0.88, 8.0, 25000),  # front: a trade-off
           _pt(0.99, 1.0, 1, status="failed"),  # failed points never count
           _pt(0.95, None, 10000),  # no latency: not comparable, not on the front
           _pt(0.85, 5.0, 20000)]  # equal to point 1: neither dominates the other
    assert results.pareto_flags(pts) == [True, True, False, False, True, False, False, True]


def test_metrics_from_a_report():
    rep = {"app": "cells", "student": {"accuracy": 0.9, "params": 5000},
           "impl": {"board": "ulx3s-85f", "lut": 100, "ff": 50, "dsp": 2, "bram": 1, "fmax_mhz": 80.0,
                    "bitstream": "x.bit"},
           "latency_us": {"first_pixel_to_decision": 7.5, "clock_mhz": 75.0, "cycles": {"ii": 576}}}
    m = results.metrics(rep)
    assert m == {"accuracy": 0.9, "params": 5000, "lut": 100, "ff": 50, "dsp": 2, "bram": 1, "fmax_mhz": 80.0,
                 "latency_us": 7.5, "ii_cycles": 576, "estimated": False, "clock_mhz": 75.0, "board": "ulx3s-85f"}
    rep["impl"]["bitstream"] = None
    assert results.metrics(rep)["estimated"] is True and results.metrics(rep)["fmax_mhz"] is None
    csv = results.write_csv([{"run_dir": "/x/p-1", "overrides": {"rtl.lanes": 2}, "status": "done", "metrics": m,
                              "pareto": True, "error": None}], ["rtl.lanes"])
    assert csv.splitlines()[1].startswith("p-1,2,done,0.9,5000,100") and json.loads("2") == 2
