"""The latency section: simulated cycles divided by the post-route clock, with the definitions kept."""

import pytest

from insitu.reports.latency import latency_section

RTL = {"beats_per_image": 576, "latency_cycles_first_to_valid": 587, "latency_cycles_last_to_valid": 12,
       "ii_cycles": 576}


def test_microseconds_at_fmax_and_at_the_bitstream_clock():
    impl = {"fmax_mhz": 58.7, "timing_met": True}
    lat = latency_section(RTL, impl, 50.0)
    assert lat["first_pixel_to_decision"] == pytest.approx(587 / 58.7, abs=1e-4)
    assert lat["after_last_pixel"] == pytest.approx(12 / 58.7, abs=1e-4)
    assert lat["pixel_in"] == pytest.approx(576 / 58.7, abs=1e-4)
    assert lat["bitstream_clock"]["first_pixel_to_decision"] == pytest.approx(587 / 50.0, abs=1e-4)
    assert lat["cycles"] == {"first_pixel_to_decision": 587, "after_last_pixel": 12, "pixel_in": 576, "ii": 576}


def test_missed_timing_has_no_bitstream_clock_figure_and_no_impl_has_no_microseconds():
    lat = latency_section(RTL, {"fmax_mhz": 40.0, "timing_met": False}, 100.0)
    assert "bitstream_clock" not in lat and lat["at_mhz"] == 40.0
    none = latency_section(RTL, None, None)
    assert none["first_pixel_to_decision"] is None and none["cycles"]["pixel_in"] == 576
