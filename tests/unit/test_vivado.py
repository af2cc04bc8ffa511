"""The Vivado flow without a licence: the report parsers on fixtures in Vivado's formats, and the flow driven by a
fake `vivado` (tests/fakes/vivado) that checks the script it is handed; a failing, hanging or silent one."""

import json
import os
from pathlib import Path

import pytest

from insitu.boards import get_board
from insitu.errors import ToolError
from insitu.firmware import vivado

FX = Path(__file__).parents[1] / "fixtures" / "vivado"
FAKES = Path(__file__).parents[1] / "fakes"


def test_utilization_7series_and_ultrascale():
    used, avail = vivado.parse_utilization((FX / "utilization_xc7.rpt").read_text())
    assert used == {"lut": 31204, "ff": 18733, "bram": 5.5, "dsp": 144}
    assert avail == {"lut": 63400, "ff": 126800, "bram": 135, "dsp": 240}
    used, avail = vivado.parse_utilization((FX / "utilization_xcu.rpt").read_text())
    assert used["lut"] == 31204 and avail["lut"] == 203128 and avail["dsp"] == 1700


def test_utilization_with_a_missing_row_is_named():
    text = "\n".join(line for line in (FX / "utilization_xc7.rpt").read_text().splitlines() if "DSPs" not in line)
    with pytest.raises(ToolError, match="no dsp row"):
        vivado.parse_utilization(text)
    with pytest.raises(ToolError, match="no lut, ff, bram, dsp row"):
        vivado.parse_utilization("")


def test_timing_summary():
    assert vivado.parse_timing((FX / "timing_summary.rpt").read_text(), "clk") == (1.284, 10.0)
    assert vivado.parse_timing((FX / "timing_summary_ooc.rpt").read_text(), "aclk") == (-0.412, 4.0)
    with pytest.raises(ToolError, match="no clock 'aclk'"):
        vivado.parse_timing((FX / "timing_summary.rpt").read_text(), "aclk")
    with pytest.raises(ToolError, match="no WNS figure"):
        vivado.parse_timing("| Design Timing Summary\n    WNS(ns)\n    -------\n        NA\n", "clk")


@pytest.fixture
def sources(tmp_path):
    files = []
    for name in ("insitu_shell.v", "insitu_core.v", "uart.v"):
        (tmp_path / name).write_text(f"// {name}\n")
        files.append(tmp_path / name)
    return files


@pytest.fixture
def fake(monkeypatch):
    monkeypatch.setenv("PATH", f"{FAKES}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("FAKE_VIVADO_FIXTURES", str(FX))
    exe = vivado.find_vivado()
    assert exe == str(FAKES / "vivado")
    return exe


def test_shell_build_on_arty(tmp_path, sources, fake):
    board = get_board("arty-a7-100t")
    res = vivado.build(board, sources, tmp_path / "b", 100.0, "shell", 60, fake)
    seen = json.loads((tmp_path / "b" / "seen.json").read_text())
    assert sorted(Path(f).name for f in seen["files"]) == sorted(f.name for f in sources)
    assert seen["part"] == "xc7a100tcsg324-1" and seen["top"] == "insitu_shell" and not seen["ooc"]
    assert seen["clock"] == ["10.000", "clk"] and {"E3", "A9", "D10"} <= set(seen["pins"])
    assert seen["commands"][-8:] == ["opt_design", "place_design", "phys_opt_design", "route_design",
                                     "report_utilization", "report_timing_summary", "write_checkpoint",
                                     "write_bitstream"]
    impl = res.impl
    assert impl["lut"] == 31204 and impl["ff"] == 18733 and impl["dsp"] == 144 and impl["bram"] == 5.5
    assert impl["wns_ns"] == 1.284 and impl["timing_met"] is True
    assert impl["fmax_mhz"] == pytest.approx(1000 / (10 - 1.284), abs=0.01) and impl["clock_mhz"] == 100.0
    assert impl["bitstream"] == "insitu_shell.bit" and len(impl["bitstream_sha256"]) == 64
    assert res.tool.startswith("Vivado v2024.2")
    assert "vivado -mode batch" in (tmp_path / "b" / "run.sh").read_text()


def test_ip_build_out_of_context(tmp_path, sources, fake):
    board = get_board("coaxlink-octo")
    res = vivado.build(board, sources, tmp_path / "b", board.clock_mhz, "ip", 60, fake)
    seen = json.loads((tmp_path / "b" / "seen.json").read_text())
    assert seen["ooc"] and seen["top"] == "insitu_axis" and seen["part"] == "xcku035-fbva676-2-e"
    assert seen["clock"] == ["4.000", "aclk"] and seen["pins"] == []
    assert res.impl["timing_met"] is False and res.impl["wns_ns"] == -0.412
    assert res.impl["bitstream"] is None and res.impl["ip"] == "ip/component.xml"
    assert "ipx::package_project" in (tmp_path / "b" / "package_ip.tcl").read_text()


@pytest.mark.parametrize("mode, message", [
    ("fail", "'vivado' failed with exit code 1"),
    ("noreport", "wrote no utilization.rpt"),
])
def test_failing_or_silent_vivado_is_named(tmp_path, sources, fake, monkeypatch, mode, message):
    monkeypatch.setenv("FAKE_VIVADO", mode)
    with pytest.raises(ToolError, match=message) as err:
        vivado.build(get_board("arty-a7-100t"), sources, tmp_path / "b", 100.0, "shell", 60, fake)
    if mode == "fail":
        assert "module 'insitu_core' not found" in str(err.value)  # the log's tail is in the message
    assert (tmp_path / "b" / "build.tcl").is_file()  # the scripts stay to be re-run by hand


def test_hanging_vivado_is_stopped_at_the_timeout(tmp_path, sources, fake, monkeypatch):
    monkeypatch.setenv("FAKE_VIVADO", "hang")
    with pytest.raises(ToolError, match="'vivado' did not finish within 2 s"):
        vivado.build(get_board("arty-a7-100t"), sources, tmp_path / "b", 100.0, "shell", 2, fake)


def test_scripts_without_vivado(tmp_path, sources):
    vivado.write_project(get_board("arty-a7-100t"), sources, tmp_path / "b", 100.0, "shell")
    tcl = (tmp_path / "b" / "build.tcl").read_text()
    assert "synth_design -top insitu_shell -part xc7a100tcsg324-1" in tcl and "read_xdc insitu_shell.xdc" in tcl
    assert "PACKAGE_PIN E3" in (tmp_path / "b" / "insitu_shell.xdc").read_text()
    assert "bash run.sh" in (tmp_path / "b" / "README.txt").read_text()
