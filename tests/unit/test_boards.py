from pathlib import Path

import pytest

from insitu.boards import all_boards, constraints, get_board, parse_board_file
from insitu.errors import ConfigError

GOLDEN = Path(__file__).parents[1] / "golden" / "constraints"
EXT = {"open-ecp5": "lpf", "open-ice40": "pcf", "vivado": "xdc"}
# Boards without shell pins, and why (their I/O is not a UART on FPGA pins):
NO_SHELL = {"orangecrab-25f": "USB goes straight to the FPGA; no USB-UART bridge",
            "pynq-z2": "I/O through the Zynq PS", "zcu102": "I/O through the Zynq PS",
            "coaxlink-octo": "frame-grabber CustomLogic", "alveo-u250": "PCIe shell"}


def test_the_boards_named_by_the_project_exist():
    names = set(all_boards())
    assert {"ulx3s-12f", "ulx3s-25f", "ulx3s-45f", "ulx3s-85f", "orangecrab-25f", "icebreaker", "arty-a7-100t",
            "pynq-z2", "zcu102", "coaxlink-octo", "alveo-u250"} <= names
    assert get_board("coaxlink-octo").device == "xcku035-fbva676-2-e"
    assert get_board("ulx3s-85f").nextpnr_device == "--85k" and get_board("icebreaker").nextpnr_device == "--up5k"


@pytest.mark.parametrize("name", sorted(all_boards()))
def test_constraints_match_golden_files(name):
    board = get_board(name)
    if name in NO_SHELL:
        assert not board.has_shell_pins
        with pytest.raises(ConfigError, match="no UART/clock pins"):
            constraints(board)
        return
    golden = GOLDEN / f"{name}.{EXT[board.flow]}"
    assert constraints(board) == golden.read_text()


def test_unknown_board_lists_the_known_ones():
    with pytest.raises(ConfigError, match="unknown board 'ulx3s-99f'") as e:
        get_board("ulx3s-99f")
    assert "ulx3s-85f" in e.value.fix


def test_program_command():
    assert get_board("ulx3s-85f").program_command("b.bit") == ["openFPGALoader", "--board", "ulx3s", "b.bit"]
    with pytest.raises(ConfigError, match="no programmer"):
        get_board("zcu102").program_command("b.bit")


BAD_FLOW = """
name = 'x'
vendor = 'v'
family = 'f'
package = ''
speed = ''
flow = 'magic'
[clock]
[pins]
[variants.a]
"""


@pytest.mark.parametrize("text,msg", [("name = ", "not valid TOML"), ("name = 'x'", "lacks"),
                                      (BAD_FLOW, "flow 'magic' is unknown"),
                                      (BAD_FLOW.replace("magic", "open-ecp5"), "variant 'a' has no device")])
def test_bad_board_files(text, msg):
    with pytest.raises(ConfigError, match=msg):
        parse_board_file(text, "bad.toml")
