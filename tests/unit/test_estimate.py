"""Xilinx resource estimates are read from a real `yosys synth_xilinx -flatten` stat table (checked in)."""

from pathlib import Path

from insitu.firmware.estimate import parse_stat, summarise

STAT = Path(__file__).parent.parent / "fixtures" / "yosys" / "synth_xilinx_xc7_stat.txt"


def test_cells_and_resources_from_a_real_stat_table():
    cells = parse_stat(STAT.read_text())
    assert cells["CARRY4"] == 271 and cells["FDRE"] == 959 and cells["DSP48E1"] == 7
    assert "wires" not in cells and "ports" not in cells
    res = summarise(cells)
    assert res["lut"] == 612 + 191 + 78 + 76 + 63
    assert res["ff"] == 959 + 29
    assert res["dsp"] == 7 and res["bram"] == 0 and res["lutram"] == 21 + 13 and res["carry"] == 271
