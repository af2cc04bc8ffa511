"""`insitu sweep` on a local Ray with 2 workers: a 4-point tiny sweep (estimate only), a failing point, and a
sweep killed midway and resumed."""

import json
import signal
import subprocess
import time
from pathlib import Path

import pytest

from insitu.steps import APP_STEPS
from insitu.sweep import load_spec, run_sweep

from .cli import INSITU, cli

FAST = '"firmware.shell_sim_images" = 0\n"hls.csim_vectors" = 20\n"rtl.sim_vectors" = 10\n'


def _spec(path: Path, grid: str, fixed: str = FAST) -> Path:
    path.write_text(f'app = "cells"\npreset = "tiny"\n[set]\n{fixed}\n[grid]\n{grid}')
    return path


@pytest.fixture(scope="module")
def sweep4(tmp_path_factory):
    d = tmp_path_factory.mktemp("sweep")
    spec = _spec(d / "s.toml", '"student.weight_bits" = [3, 4]\n"rtl.lanes" = [1, 2]\n')
    doc = run_sweep(load_spec(spec), d / "out", APP_STEPS.__getitem__, workers=2, estimate_only=True, show=False)
    return d / "out", doc


@pytest.mark.slow
def test_four_point_sweep(sweep4):
    out, doc = sweep4
    on_disk = json.loads((out / "sweep.json").read_text())
    assert on_disk["points"] == doc["points"] and doc["workers"] == 2 and doc["estimate_only"] is True
    assert [p["status"] for p in doc["points"]] == ["done"] * 4
    for p in doc["points"]:
        run = Path(p["run_dir"])
        assert run.parent == out / "points"
        rep = json.loads((run / "report.json").read_text())
        cfg = json.loads((run / "config.json").read_text())
        assert cfg["student"]["weight_bits"] == p["overrides"]["student.weight_bits"]
        assert cfg["rtl"]["lanes"] == p["overrides"]["rtl.lanes"] and cfg["firmware"]["estimate_only"] is True
        m = p["metrics"]
        assert m["accuracy"] == rep["student"]["accuracy"] and m["lut"] == rep["impl"]["lut"] > 0
        assert m["estimated"] is True and m["fmax_mhz"] is None and m["ff"] > 0
        assert m["latency_us"] == rep["latency_us"]["first_pixel_to_decision"] > 0
        assert rep["rtl"]["bit_exact_vectors"] == rep["rtl"]["vectors"] > 0
        assert rep["csim"]["bit_exact_vectors"] == rep["csim"]["vectors"] > 0
    # sharing: one teacher for the sweep, one student per weight width
    stages = [json.loads((Path(p["run_dir"]) / "manifest.json").read_text())["stages"] for p in doc["points"]]
    trained = [s for s in stages if "imported_from" not in s["teacher"]["summary"]]
    assert len(trained) == 1
    assert sum("imported_from" not in s["distill"]["summary"] for s in stages) == 2
    assert len({s["teacher"]["outputs"]["teacher/teacher.pt"] for s in stages}) == 1
    assert sum("imported_from" not in s["ablation"]["summary"] for s in stages) == 2
    assert doc["shared_steps"] == 4 * 11 - doc["tasks"] == 14  # 11 steps a point (shellsim included)
    # Pareto flags as the definition says, and the files
    pts = doc["points"]
    for p in pts:
        m = p["metrics"]
        beaten = any(q is not p and q["metrics"]["accuracy"] >= m["accuracy"] and
                     q["metrics"]["latency_us"] <= m["latency_us"] and q["metrics"]["lut"] <= m["lut"] and
                     (q["metrics"]["accuracy"], -q["metrics"]["latency_us"], -q["metrics"]["lut"]) !=
                     (m["accuracy"], -m["latency_us"], -m["lut"]) for q in pts)
        assert p["pareto"] is (not beaten)
    assert any(p["pareto"] for p in pts)
    rows = (out / "sweep.csv").read_text().splitlines()
    assert len(rows) == 5 and rows[0].startswith("point,student.weight_bits,rtl.lanes,status,accuracy")
    md = (out / "report.md").read_text()
    assert md.count("| p-") == 4 and "estimate only" in md
    for png in ("pareto_latency.png", "pareto_lut.png"):
        assert (out / png).stat().st_size > 5000 and png in md


@pytest.mark.slow
def test_second_run_reruns_nothing(sweep4):
    out, doc = sweep4
    before = {p["name"]: (Path(p["run_dir"]) / "manifest.json").read_text() for p in doc["points"]}
    again = run_sweep(load_spec(out / "spec.toml"), out, APP_STEPS.__getitem__, workers=2, estimate_only=True,
                      show=False)
    assert [p["status"] for p in again["points"]] == ["done"] * 4
    for p in again["points"]:
        stages = json.loads((Path(p["run_dir"]) / "manifest.json").read_text())["stages"]
        assert stages == json.loads(before[p["name"]])["stages"]


@pytest.mark.slow
def test_route_front_builds_bitstreams_for_the_estimated_front(sweep4):
    out, doc = sweep4
    front = {p["name"] for p in doc["points"] if p["pareto"]}
    routed = run_sweep(load_spec(out / "spec.toml"), out, APP_STEPS.__getitem__, workers=2, show=False,
                       route_front=True)
    assert set(routed["routed_front"]) == front and routed["estimate_only"] is False
    by_name = {p["name"]: p for p in routed["points"]}
    assert set(by_name) == {p["name"] for p in doc["points"]}
    for name, p in by_name.items():
        m = p["metrics"]
        if name in front:
            rep = json.loads((Path(p["run_dir"]) / "report.json").read_text())
            assert p["status"] == "done" and m["estimated"] is False and m["fmax_mhz"] > 0
            assert rep["impl"]["bitstream"] and rep["latency_us"]["clock"] == "bitstream"
            assert m["latency_us"] == rep["latency_us"]["first_pixel_to_decision"]
            stages = json.loads((Path(p["run_dir"]) / "manifest.json").read_text())["stages"]
            assert "imported_from" in stages["teacher"]["summary"] or name == routed["points"][0]["name"]
        else:
            assert m["estimated"] is True
    assert "placed and routed" in (out / "report.md").read_text()


@pytest.mark.slow
def test_a_failing_point_is_recorded_and_the_others_finish(tmp_path):
    spec = _spec(tmp_path / "s.toml", '"rtl.lanes" = [2, 5]\n')  # 5 lanes do not divide the 24-pixel rows
    proc = cli("sweep", str(spec), "--out", str(tmp_path / "out"), "--workers", "2", "--estimate-only", check=False)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    doc = json.loads((tmp_path / "out" / "sweep.json").read_text())
    by_lanes = {p["overrides"]["rtl.lanes"]: p for p in doc["points"]}
    assert by_lanes[2]["status"] == "done" and by_lanes[2]["metrics"]["lut"] > 0
    bad = by_lanes[5]
    assert bad["status"] == "failed" and bad["metrics"] is None and not bad["pareto"]
    assert bad["error"].startswith("rtl: ") and "divide the row width 24" in bad["error"]
    assert "1/2 points done" in proc.stdout + proc.stderr
    assert "Failed points" in (tmp_path / "out" / "report.md").read_text()
    rows = (tmp_path / "out" / "sweep.csv").read_text()
    assert "failed" in rows and "divide the row width" in rows


@pytest.mark.slow
def test_killed_sweep_resumes_without_rerunning_finished_points(tmp_path):
    spec = _spec(tmp_path / "s.toml", '"student.weight_bits" = [3, 4, 5]\n"rtl.lanes" = [1, 2]\n')
    out = tmp_path / "out"
    proc = subprocess.Popen([INSITU, "sweep", str(spec), "--out", str(out), "--workers", "2", "--estimate-only"],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.monotonic() + 600
    done: list[dict] = []
    while time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.5)
        try:
            pts = json.loads((out / "sweep.json").read_text())["points"]
        except (OSError, ValueError):
            continue
        done = [p for p in pts if p["status"] == "done"]
        if done:
            break
    assert done and proc.poll() is None, "the sweep ended before it could be interrupted"
    proc.send_signal(signal.SIGINT)
    text = proc.communicate(timeout=120)[0]
    assert proc.returncode == 130, text
    assert "run the same command to resume" in " ".join(text.split())
    pts = json.loads((out / "sweep.json").read_text())["points"]
    assert any(p["status"] != "done" for p in pts), "nothing was left to resume"
    kept = {p["name"]: json.loads((Path(p["run_dir"]) / "manifest.json").read_text())["stages"]
            for p in pts if p["status"] == "done"}
    doc = run_sweep(load_spec(spec), out, APP_STEPS.__getitem__, workers=2, estimate_only=True, show=False)
    assert [p["status"] for p in doc["points"]] == ["done"] * 6
    for name, stages in kept.items():  # finished points: every step record as it was (nothing re-run)
        now = json.loads((out / "points" / name / "manifest.json").read_text())["stages"]
        assert {k: v["finished"] for k, v in now.items()} == {k: v["finished"] for k, v in stages.items()}


@pytest.mark.slow
def test_a_model_sweep_over_lanes(tmp_path):
    """model = a QONNX file: the import and its check run once, the RTL once per lane count."""
    from insitu.api import _export_brevitas, compile_section
    from tests.unit.brevitas_models import CNN, calibrated

    _export_brevitas(calibrated(CNN(), (1, 16, 16)), (1, 16, 16), tmp_path / "cnn.onnx", True)
    (tmp_path / "s.toml").write_text('model = "cnn.onnx"\n[set]\n"compile.n_random" = 40\n"firmware.enabled" = true\n'
                                     '"firmware.shell_sim_images" = 0\n[grid]\n"rtl.lanes" = [1, 2]\n')
    doc = run_sweep(load_spec(tmp_path / "s.toml", compile_section), tmp_path / "out", APP_STEPS.__getitem__,
                    workers=2, estimate_only=True, show=False)
    assert doc["app"] == "compile" and [p["status"] for p in doc["points"]] == ["done", "done"]
    by_lanes = {p["overrides"]["rtl.lanes"]: p["metrics"] for p in doc["points"]}
    assert by_lanes[1]["accuracy"] is None and by_lanes[1]["params"] > 500
    assert by_lanes[2]["latency_us"] < by_lanes[1]["latency_us"] and by_lanes[2]["lut"] > 0
    stages = [json.loads((Path(p["run_dir"]) / "manifest.json").read_text())["stages"] for p in doc["points"]]
    assert sum("imported_from" in s["import"]["summary"] for s in stages) == 1
