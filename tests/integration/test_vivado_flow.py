"""The AMD boards end to end on a tiny run, with the fake `vivado` of tests/fakes on PATH (or none): the shell with
its bitstream on Arty A7, the core as an AXI4-Stream IP for the Coaxlink Octo, and the bundle without Vivado."""

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from .cli import cli

FAKES = Path(__file__).parents[1] / "fakes"
FX = Path(__file__).parents[1] / "fixtures" / "vivado"


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    out = tmp_path_factory.mktemp("amd") / "tiny"
    cli("run", "cells", "--preset", "tiny", "--out", str(out), "--set", "firmware.enabled=false")
    return out


def _env(**extra):
    return {"PATH": f"{FAKES}{os.pathsep}{os.environ['PATH']}", "FAKE_VIVADO_FIXTURES": str(FX), **extra}


@pytest.mark.slow
def test_arty_shell_built_by_vivado(run):
    cli("build", "--board", "arty-a7-100t", "--out", str(run), env=_env())
    bundle = run / "firmware" / "arty-a7-100t"
    doc = json.loads((bundle / "impl.json").read_text())
    impl = doc["impl"]
    assert doc["vivado"] == {"built": True, "mode": "shell", "scripts": "vivado/build.tcl"}
    assert impl["flow"] == "vivado" and impl["lut"] == 31204 and impl["timing_met"] is True
    assert (bundle / impl["bitstream"]).is_file() and impl["fmax_mhz"] > 100
    seen = json.loads((bundle / "vivado" / "seen.json").read_text())
    names = {Path(f).name for f in seen["files"]}
    assert {"insitu_shell.v", "insitu_core.v"} <= names and seen["clock"] == ["10.000", "clk"]
    rep = json.loads((run / "report.json").read_text())
    assert rep["impl"]["board"] == "arty-a7-100t" and rep["latency_us"]["clock"] == "bitstream"
    assert rep["latency_us"]["clock_mhz"] == 100.0


@pytest.mark.slow
def test_coaxlink_core_as_axis_ip(run):
    cli("build", "--board", "coaxlink-octo", "--out", str(run), env=_env())
    bundle = run / "firmware" / "coaxlink-octo"
    doc = json.loads((bundle / "impl.json").read_text())
    assert doc["vivado"]["mode"] == "ip" and doc["impl"]["ip"] == "ip/component.xml"
    seen = json.loads((bundle / "vivado" / "seen.json").read_text())
    assert seen["top"] == "insitu_axis" and seen["ooc"] and "insitu_shell.v" not in {Path(f).name for f in seen["files"]}
    # the wrapper is real Verilog around the real core
    files = [str(bundle / "vivado" / f) for f in seen["files"]]
    proc = subprocess.run([shutil.which("iverilog"), "-g2012", "-o", os.devnull, "-s", "insitu_axis", *files],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    cli("report", "--out", str(run), "--set", "firmware.board=coaxlink-octo")
    assert "AXI4-Stream IP, implemented out of context" in (run / "report.md").read_text()


@pytest.mark.slow
def test_without_vivado_the_bundle_holds_the_scripts(run):
    cli("build", "--board", "pynq-z2", "--out", str(run))
    bundle = run / "firmware" / "pynq-z2"
    doc = json.loads((bundle / "impl.json").read_text())
    assert doc["vivado"]["built"] is False and "not built: vivado not found" in doc["vivado"]["reason"]
    assert doc["impl"]["lut"] > 0 and doc["impl"]["bitstream"] is None  # the Yosys estimate
    assert "synth_design -top insitu_axis -part xc7z020clg400-1 -mode out_of_context" in \
        (bundle / "vivado" / "build.tcl").read_text()
    assert "bash run.sh" in (bundle / "vivado" / "README.txt").read_text()


@pytest.mark.slow
def test_failing_vivado_keeps_the_previous_bundle(run):
    bundle = run / "firmware" / "arty-a7-100t"
    if not bundle.exists():
        cli("build", "--board", "arty-a7-100t", "--out", str(run), env=_env())
    before = (bundle / "impl.json").read_text()
    proc = cli("build", "--board", "arty-a7-100t", "--out", str(run), env=_env(FAKE_VIVADO="fail"), check=False)
    assert proc.returncode == 2 and "'vivado' failed with exit code 1" in proc.stderr
    assert (bundle / "impl.json").read_text() == before


@pytest.mark.slow
def test_hls_step_runs_vitis_when_present(run):
    csim = json.loads((run / "hls" / "csim.json").read_text())
    assert csim["vitis"] == {"run": False, "reason": "not run: vitis-run / vitis_hls / vivado_hls not found"}
    cli("hls", "--out", str(run), env={**_env(), "FAKE_VITIS_FIXTURES": str(FX)})
    v = json.loads((run / "hls" / "csim.json").read_text())["vitis"]
    assert v["csynth"]["latency_max"] == 2402 and v["cosim"]["status"] == "Pass" and v["ip"]
    seen = json.loads((run / "hls" / "project" / "seen_vitis.json").read_text())
    assert seen["name"] == "insitu_cells" and seen["opts"]["synth"] == "1"
    cli("report", "--out", str(run))
    assert "Vitis HLS C synthesis: latency 2391-2402 cycles" in (run / "report.md").read_text()
