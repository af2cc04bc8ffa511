"""Golden files of the generated build scripts for every built-in board (INSITU_UPDATE_GOLDEN=1 rewrites them)."""

import os
from pathlib import Path

import pytest

from insitu.boards import all_boards
from insitu.errors import ConfigError
from insitu.firmware import estimate
from insitu.firmware.open_flow import write_scripts

FIX = Path(__file__).parents[1] / "fixtures"
GOLDEN = Path(__file__).parents[1] / "golden" / "scripts"
SOURCES = [FIX / "rtl" / "uart_echo.v"]


def _check(name: str, text: str) -> None:
    path = GOLDEN / name
    if os.environ.get("INSITU_UPDATE_GOLDEN"):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    assert path.exists(), f"missing golden file {path}; run with INSITU_UPDATE_GOLDEN=1 once and review it"
    assert text == path.read_text(), f"{name} differs from its golden file"


@pytest.mark.parametrize("name", sorted(all_boards()))
def test_scripts_match_golden(name, tmp_path):
    board = all_boards()[name]
    if board.flow in ("open-ecp5", "open-ice40") and not board.has_shell_pins:
        with pytest.raises(ConfigError, match="no UART/clock pins"):  # e.g. OrangeCrab: USB only, no UART
            write_scripts(board, SOURCES, "insitu_shell", tmp_path, 50.0, 1)
    elif board.flow in ("open-ecp5", "open-ice40"):
        write_scripts(board, SOURCES, "insitu_shell", tmp_path, 50.0, 1, router="router2")
        _check(f"{name}/synth.ys", (tmp_path / "synth.ys").read_text())
        _check(f"{name}/run.sh", (tmp_path / "run.sh").read_text())
    else:
        script = estimate.write_script(board, SOURCES, "insitu_core", tmp_path)
        _check(f"{name}/estimate.ys", script.read_text())


def test_multipliers_in_luts_on_request(tmp_path):
    board = all_boards()["ulx3s-85f"]
    write_scripts(board, SOURCES, "insitu_shell", tmp_path / "a", 50.0, 1)
    write_scripts(board, SOURCES, "insitu_shell", tmp_path / "b", 50.0, 1, dsp=False)
    assert "-nodsp" not in (tmp_path / "a" / "synth.ys").read_text()
    assert "synth_ecp5 -nodsp -top insitu_shell" in (tmp_path / "b" / "synth.ys").read_text()
