"""Real place and route with the open tools (yowasp builds from PyPI unless native ones are on PATH)."""

from pathlib import Path

import pytest

from insitu.boards import get_board
from insitu.firmware.open_flow import build

RTL = Path(__file__).parents[1] / "fixtures" / "rtl" / "uart_echo.v"


@pytest.mark.slow
@pytest.mark.parametrize("name,lut_band,fmax_min", [("ulx3s-85f", (120, 320), 60.0), ("icebreaker", (90, 260), 15.0)])
def test_place_and_route_within_bands(tmp_path, name, lut_band, fmax_min):
    board = get_board(name)
    result = build(board, [RTL], "uart_echo", tmp_path, seed=1,
                   parameters={"CLK_HZ": int(board.clock_mhz * 1e6), "NLED": len(board.pins.leds)})
    assert result.bitstream.stat().st_size > 1000 and len(result.bitstream_sha256) == 64
    assert lut_band[0] <= result.report.used["lut"] <= lut_band[1]
    assert result.report.fmax_mhz >= fmax_min and result.report.timing_met
    assert (tmp_path / "logs" / "yosys.log").exists() and (tmp_path / "run.sh").exists()
