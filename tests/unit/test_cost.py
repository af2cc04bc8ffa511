"""The pre-place-and-route cost function: Yosys resources per family and simulated cycles, in tolerance bands."""

import pytest

from insitu.errors import ConfigError
from insitu.firmware.cost import model_cost, synthesise
from insitu.ir.synthetic import random_mlp, random_model


def test_streaming_cost_scales_with_lanes(tmp_path):
    qm = random_model(seed=1, size=10, channels=(2,))
    one = model_cost(qm, tmp_path / "p1", "ecp5", lanes=1, simulator="icarus")
    two = model_cost(qm, tmp_path / "p2", "ecp5", lanes=2, simulator="icarus")
    assert one.architecture == two.architecture == "streaming"
    assert one.ii_cycles == one.beats_per_sample == 100 and two.ii_cycles == two.beats_per_sample == 50
    assert 100 < one.resources["lut"] < two.resources["lut"] < 5000 and one.resources["ff"] > 100
    assert two.latency_cycles_first_to_valid < one.latency_cycles_first_to_valid  # the image arrives faster
    assert one.latency_us(50.0) == pytest.approx(one.latency_cycles_first_to_valid / 50.0)
    d = one.to_dict()
    assert d["kind"].startswith("pre-place-and-route estimate (yosys synth_ecp5)") and d["lut"] == one.resources["lut"]
    assert d["lut"] == d["lut4"] + 2 * d["carry"] + 2 * d["lutram"]  # nextpnr's units


def test_repacked_later_blocks_synthesise(tmp_path):
    """A repacker (to two lanes, completing rows of 7 with a zero) through Yosys, not only the simulators."""
    qm = random_model(seed=2, size=16, channels=(2, 2))  # 16 -> 14 -> 7 -> 5 -> 2
    c = model_cost(qm, tmp_path / "p8", "ecp5", lanes=8, simulator="icarus")
    assert c.ii_cycles == 32 and c.resources["lut"] > 500


@pytest.mark.parametrize("family,lut_cell", [("ice40", "SB_LUT4"), ("xc7", "LUT6")])
def test_unrolled_cost_on_other_families(tmp_path, family, lut_cell):
    c = model_cost(random_mlp(seed=0, size=4, hidden=(6,)), tmp_path, family, simulator="icarus")
    assert c.architecture == "unrolled" and c.ii_cycles == 1 and 2 <= c.latency_cycles_first_to_valid < 40
    assert c.resources["lut"] > 100 and any(name.startswith(lut_cell[:-1]) for name in c.cells)


def test_unknown_family_is_refused(tmp_path):
    with pytest.raises(ConfigError, match="no cost model for the family 'stratix'"):
        synthesise([], "top", "stratix", tmp_path, 10)


def test_skip_paths_synthesise(tmp_path):
    """Joins (a residual add with its requant, a concatenation) and their FIFOs through Yosys."""
    from tests.unit.test_rtl_stream import _residual

    c = model_cost(_residual(3, (10, 10), "add_relu"), tmp_path / "r", "ecp5", lanes=2, simulator="icarus")
    assert c.architecture == "streaming" and c.ii_cycles == 50 and c.resources["lut"] > 500
