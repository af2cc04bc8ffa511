import json
from pathlib import Path

import pytest

from insitu.boards import get_board
from insitu.errors import ConfigError, ToolError
from insitu.firmware.nextpnr_report import parse_report
from insitu.firmware.open_flow import write_scripts

FIX = Path(__file__).parents[1] / "fixtures"


def test_report_parser_on_a_checked_in_nextpnr_report():
    r = parse_report(FIX / "nextpnr" / "ulx3s_85f_uart_echo_report.json")
    assert r.fmax_mhz == pytest.approx(153.798828125) and r.target_mhz == 25
    assert r.used == {"lut": 177, "ff": 72, "bram": 0, "dsp": 0, "io": 12} and r.available["lut"] == 83640
    assert r.timing_met and r.percent("lut") == pytest.approx(100 * 177 / 83640)


def test_report_parser_rejects_damaged_reports(tmp_path):
    (tmp_path / "r.json").write_text("{")
    with pytest.raises(ToolError, match="cannot read nextpnr report"):
        parse_report(tmp_path / "r.json")
    (tmp_path / "r.json").write_text(json.dumps({"fmax": {}, "utilization": {}}))
    with pytest.raises(ToolError, match="no clock"):
        parse_report(tmp_path / "r.json")


def test_ecp5_scripts(tmp_path):
    steps = write_scripts(get_board("ulx3s-85f"), [FIX / "rtl" / "uart_echo.v"], "uart_echo", tmp_path, 25.0, 1,
                          {"NLED": 8})
    assert [s[0] for s in steps] == ["yosys", "nextpnr-ecp5", "ecppack"]
    pnr = steps[1]
    assert pnr[1] == "--85k" and pnr[pnr.index("--package") + 1] == "CABGA381" and "--timing-allow-fail" in pnr
    assert all(not a.startswith("/") for s in steps for a in s)  # relative paths only (WASI sandbox)
    ys = (tmp_path / "synth.ys").read_text()
    assert "read_verilog -defer src/uart_echo.v" in ys and "-chparam NLED 8" in ys and "synth_ecp5 -top uart_echo" in ys
    assert (tmp_path / "uart_echo.lpf").read_text().count("LOCATE COMP") == 12
    assert "nextpnr-ecp5 --85k" in (tmp_path / "run.sh").read_text()


def test_ice40_scripts(tmp_path):
    steps = write_scripts(get_board("icebreaker"), [FIX / "rtl" / "uart_echo.v"], "uart_echo", tmp_path, 12.0, 3)
    assert [s[0] for s in steps] == ["yosys", "nextpnr-ice40", "icepack"]
    assert steps[1][1] == "--up5k" and "sg48" in steps[1] and steps[1][steps[1].index("--seed") + 1] == "3"


def test_vendor_boards_are_not_built_by_the_open_flow(tmp_path):
    with pytest.raises(ConfigError, match="not the open flow"):
        write_scripts(get_board("arty-a7-100t"), [FIX / "rtl" / "uart_echo.v"], "uart_echo", tmp_path, 100.0, 1)
