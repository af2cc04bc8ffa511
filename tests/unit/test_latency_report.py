"""The latency section: simulated cycles divided by the bitstream's clock, Fmax figures labelled beside."""

import pytest

from insitu.reports.latency import latency_section

RTL = {"beats_per_image": 576, "latency_cycles_first_to_valid": 587, "latency_cycles_last_to_valid": 12,
       "ii_cycles": 576}


def test_microseconds_at_the_bitstream_clock_and_at_fmax():
    impl = {"fmax_mhz": 58.7, "timing_met": True, "bitstream": "insitu_shell.bit"}
    lat = latency_section(RTL, impl, 58.3333)
    assert lat["clock"] == "bitstream" and lat["clock_mhz"] == 58.3333 and lat["timing_met"] is True
    assert lat["first_pixel_to_decision"] == pytest.approx(587 / 58.3333, abs=1e-4)
    assert lat["after_last_pixel"] == pytest.approx(12 / 58.3333, abs=1e-4)
    assert lat["pixel_in"] == pytest.approx(576 / 58.3333, abs=1e-4)
    assert lat["at_fmax"]["mhz"] == 58.7
    assert lat["at_fmax"]["first_pixel_to_decision"] == pytest.approx(587 / 58.7, abs=1e-4)
    assert lat["cycles"] == {"first_pixel_to_decision": 587, "after_last_pixel": 12, "pixel_in": 576, "ii": 576}


def test_estimates_are_labelled_and_no_impl_has_no_fmax_figures():
    est = latency_section(RTL, {"fmax_mhz": None, "timing_met": None, "bitstream": None}, 100.0)
    assert est["clock"] == "configured" and est["first_pixel_to_decision"] == pytest.approx(5.87)
    assert "at_fmax" not in est
    missed = latency_section(RTL, {"fmax_mhz": 40.0, "timing_met": False, "bitstream": "b.bit"}, 100.0)
    assert missed["timing_met"] is False and missed["at_fmax"]["mhz"] == 40.0
    none = latency_section(RTL, None, None)
    assert none["first_pixel_to_decision"] is None and none["cycles"]["pixel_in"] == 576


def test_student_bits_label_names_the_layers_at_their_own_width():
    from insitu.reports.render import _bits_label

    base = {"weight_bits": 6, "act_bits": 6}
    assert _bits_label(base) == "6-bit weights / 6-bit activations"
    assert _bits_label({**base, "pointwise_weight_bits": 4, "first_weight_bits": 6, "weight_scale": "channel"}) == \
        "6-bit weights (4-bit pointwise), scaled per channel / 6-bit activations"
    assert _bits_label({**base, "pointwise_weight_bits": 4, "first_weight_bits": 4}) == \
        "6-bit weights (4-bit first conv, 4-bit pointwise) / 6-bit activations"
