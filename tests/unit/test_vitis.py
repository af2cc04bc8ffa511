"""Vitis HLS without a licence: the csynth / cosim parsers on fixtures, the reports read when files are missing,
and the build driven by a fake `vitis-run` (tests/fakes) that checks the project it runs in."""

import json
import os
from pathlib import Path

import pytest

from insitu.errors import ToolError
from insitu.hls import vitis

FX = Path(__file__).parents[1] / "fixtures" / "vivado"
FAKES = Path(__file__).parents[1] / "fakes"


def test_csynth_report():
    r = vitis.parse_csynth(FX / "insitu_cells_csynth.xml")
    assert (r["latency_min"], r["latency_max"], r["ii_min"], r["ii_max"]) == (2391, 2402, 2305, 2305)
    assert r["estimated_clock_ns"] == 3.412 and r["target_clock_ns"] == 4.0 and r["estimated_fmax_mhz"] == 293.08
    assert r["resources"] == {"bram_18k": 18, "dsp": 97, "ff": 24518, "lut": 41277, "uram": 0}
    assert r["available"]["lut"] == 203128


def test_csynth_with_missing_fields_and_bad_xml(tmp_path):
    p = tmp_path / "x.xml"
    p.write_text("<profile><AreaEstimates><Resources><DSP48E>3</DSP48E></Resources></AreaEstimates></profile>")
    r = vitis.parse_csynth(p)
    assert r["latency_max"] is None and r["estimated_fmax_mhz"] is None and r["resources"] == {"dsp": 3}
    p.write_text("<profile><Perf")
    with pytest.raises(ToolError, match="not valid XML"):
        vitis.parse_csynth(p)


def test_cosim_report():
    r = vitis.parse_cosim((FX / "insitu_cells_cosim.rpt").read_text())
    assert r == {"rtl": "Verilog", "status": "Pass", "latency_min": 2391, "latency_avg": 2391, "latency_max": 2402,
                 "ii_min": 2305, "ii_avg": 2305, "ii_max": 2305}
    assert vitis.parse_cosim("nothing here") == {"status": None}


def test_reports_of_an_empty_project_do_not_crash(tmp_path):
    r = vitis.read_reports(tmp_path, "insitu_cells")
    assert "csynth" not in r and r["ip"] is None
    assert r["missing"] == ["insitu_cells_prj/solution1/syn/report/insitu_cells_csynth.xml",
                            "insitu_cells_prj/solution1/sim/report/insitu_cells_cosim.rpt"]


@pytest.fixture
def project(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", f"{FAKES}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("FAKE_VITIS_FIXTURES", str(FX))
    (tmp_path / "project.tcl").write_text('set project_name "insitu_cells"\nset part "xcku035-fbva676-2-e"\n'
                                          "set clock_period 4.0\n")
    (tmp_path / "build_prj.tcl").write_text("# hls4ml's script\n")
    assert vitis.find_tool() == str(FAKES / "vitis-run")
    return tmp_path


def test_synthesis_cosim_and_export(project):
    r = vitis.synthesize(project, "insitu_cells", 60, vitis.find_tool())
    seen = json.loads((project / "seen_vitis.json").read_text())
    assert seen["opts"] == {"reset": "0", "csim": "0", "synth": "1", "cosim": "1", "validation": "0",
                            "export": "1", "vsynth": "0", "fifo_opt": "0"}
    assert seen["part"] == "xcku035-fbva676-2-e" and seen["clock"] == "4.0"
    assert r["csynth"]["latency_max"] == 2402 and r["cosim"]["status"] == "Pass" and r["missing"] == []
    assert r["ip"].endswith("xilinx_com_hls_insitu_cells_1_0.zip") and r["tool"].startswith("vitis-run v2024.2")


@pytest.mark.parametrize("mode, timeout, message", [
    ("fail", 60, "'vitis-run' failed with exit code 1"),
    ("hang", 2, "'vitis-run' did not finish within 2 s"),
    ("noreport", 60, "wrote no C-synthesis report"),
    ("cosimfail", 60, "co-simulation of the hls4ml project reports FAIL"),
])
def test_failing_hanging_or_silent_vitis(project, monkeypatch, mode, timeout, message):
    monkeypatch.setenv("FAKE_VITIS", mode)
    with pytest.raises(ToolError, match=message):
        vitis.synthesize(project, "insitu_cells", timeout, vitis.find_tool())
