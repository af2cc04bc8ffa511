"""A design that does not fit: read from a real nextpnr log (the cells student, 4 lanes, on an ECP5-12F)."""

from pathlib import Path

import pytest

from insitu.boards import get_board
from insitu.errors import RTLError
from insitu.firmware.fit import check_fit_from_log, utilisation

LOG = Path(__file__).parent.parent / "fixtures" / "nextpnr" / "ulx3s_12f_overfull_nextpnr.log"


def test_utilisation_table_is_read():
    u = utilisation(LOG.read_text())
    assert u["MULT18X18D"] == (48, 28)
    assert u["Total LUT4s"] == (29542, 24288)
    assert u["DP16KD"] == (14, 56)


def test_overfull_design_names_the_resources_and_the_fix():
    with pytest.raises(RTLError) as exc:
        check_fit_from_log(LOG, get_board("ulx3s-12f"), lanes=4)
    msg = str(exc.value)
    assert "does not fit ulx3s-12f" in msg and "MULT18X18D 48/28 (171%, 20 too many)" in msg
    assert "Total LUT4s 29542/24288" in msg and "rtl.lanes, now 4" in msg
    assert "firmware.dsp=false" in msg  # too many multipliers: LUTs are the first way out


def test_a_log_without_overuse_is_not_a_fit_problem(tmp_path):
    ok = tmp_path / "nextpnr.log"
    ok.write_text("Info: Device utilisation:\nInfo: \t          TRELLIS_IO:      12/    365     3%\n")
    check_fit_from_log(ok, get_board("ulx3s-85f"), lanes=1)
    check_fit_from_log(tmp_path / "missing.log", get_board("ulx3s-85f"), lanes=1)
