"""The latency and resource section of report.json: simulated cycles x the post-route clock.

Definitions (cycles are clock edges, measured in the RTL simulation with no stalls):
- first_pixel_to_decision: from the edge that accepts the first beat of an image to the edge at which its
  decision is valid;
- after_last_pixel: from the edge that accepts the last beat to the decision (negative when the model never
  reads the last pixels, e.g. rows dropped by floor pooling);
- pixel_in: the beats of one image, i.e. the time the image needs to arrive at P pixels per clock; the
  input-bandwidth floor of first_pixel_to_decision.
Microseconds are given at the achieved post-route Fmax and, when timing is met, at the clock the bitstream
actually runs (the PLL output).
"""

from __future__ import annotations

from typing import Any


def _us(cycles: int | None, mhz: float | None) -> float | None:
    if cycles is None or not mhz:
        return None
    return round(cycles / mhz, 4)


def latency_section(rtl: dict[str, Any], impl: dict[str, Any] | None, clock_mhz: float | None) -> dict[str, Any]:
    beats = rtl["beats_per_image"]
    first, last = rtl["latency_cycles_first_to_valid"], rtl["latency_cycles_last_to_valid"]
    out: dict[str, Any] = {"cycles": {"first_pixel_to_decision": first, "after_last_pixel": last, "pixel_in": beats,
                                      "ii": rtl.get("ii_cycles")}}
    fmax = impl.get("fmax_mhz") if impl else None
    out["at_mhz"] = fmax
    out["first_pixel_to_decision"] = _us(first, fmax)
    out["after_last_pixel"] = _us(last, fmax)
    out["pixel_in"] = _us(beats, fmax)
    out["input_bound_fraction"] = round(beats / first, 4) if first else None
    if impl and impl.get("timing_met") and clock_mhz:
        out["bitstream_clock"] = {"mhz": clock_mhz, "first_pixel_to_decision": _us(first, clock_mhz),
                                  "after_last_pixel": _us(last, clock_mhz), "pixel_in": _us(beats, clock_mhz)}
    return out
