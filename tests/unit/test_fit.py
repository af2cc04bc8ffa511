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


def test_dsp_auto_maps_products_to_luts_only_when_they_do_not_fit():
    from insitu.firmware.fit import use_dsp

    assert use_dsp("auto", 192, "LFE5U-85F")[0] is False  # the default student's 64 x 3 dense head
    assert use_dsp("auto", 96, "LFE5U-85F")[0] is True
    assert use_dsp("auto", 96, "LFE5U-45F")[0] is False
    assert use_dsp(True, 1000, "LFE5U-12F") == (True, "firmware.dsp=true")
    assert use_dsp(False, 0, "LFE5U-85F")[0] is False
    assert "not in the DSP table" in use_dsp("auto", 5, "XC7A100T")[1]


def test_streaming_design_counts_its_variable_products(tmp_path):
    from insitu.ir.synthetic import random_model
    from insitu.rtl.streaming import generate

    model = random_model(1, size=12)
    design = generate(model, tmp_path, 2, 2.0)
    dense = next(layer for layer in reversed(model.layers) if layer.kind == "dense")
    last_conv = [layer for layer in model.layers if layer.kind == "conv2d"][-1]
    assert design.to_dict()["multipliers"] == dense.weight.shape[0] * last_conv.weight.shape[0] > 0
