"""The latency and resource section of report.json: simulated cycles x the clock the bitstream runs.

Definitions (cycles are clock edges, measured in the RTL simulation with no stalls):
- first_pixel_to_decision: from the edge that accepts the first beat of an image to the edge at which its
  decision is valid;
- after_last_pixel: from the edge that accepts the last beat to the decision (negative when the model never
  reads the last pixels, e.g. rows dropped by floor pooling);
- pixel_in: the beats of one image, i.e. the time the image needs to arrive at P pixels per clock; the
  input-bandwidth floor of first_pixel_to_decision.
The top-level microseconds are at `clock_mhz`, the clock the bitstream runs (the PLL as set after routing,
`clock: "bitstream"`), or, with no bitstream, the configured clock (`clock: "configured"`, not a measured
figure). `at_fmax` gives the same figures at the post-route Fmax of the core clock, labelled as such: a bound,
not what the board runs.
"""

from __future__ import annotations

from typing import Any


def _us(cycles: int | None, mhz: float | None) -> float | None:
    if cycles is None or not mhz:
        return None
    return round(cycles / mhz, 4)


def _figures(first: int | None, last: int | None, beats: int, mhz: float | None) -> dict[str, float | None]:
    return {"first_pixel_to_decision": _us(first, mhz), "after_last_pixel": _us(last, mhz),
            "pixel_in": _us(beats, mhz)}


def latency_section(rtl: dict[str, Any], impl: dict[str, Any] | None, clock_mhz: float | None) -> dict[str, Any]:
    beats = rtl["beats_per_image"]
    first, last = rtl["latency_cycles_first_to_valid"], rtl["latency_cycles_last_to_valid"]
    out: dict[str, Any] = {"cycles": {"first_pixel_to_decision": first, "after_last_pixel": last, "pixel_in": beats,
                                      "ii": rtl.get("ii_cycles")}}
    built = bool(impl and impl.get("bitstream"))
    out["clock_mhz"] = clock_mhz
    out["clock"] = "bitstream" if built else "configured"
    out["timing_met"] = impl.get("timing_met") if impl else None
    out.update(_figures(first, last, beats, clock_mhz))
    out["input_bound_fraction"] = round(beats / first, 4) if first else None
    fmax = impl.get("fmax_mhz") if impl else None
    if fmax:
        out["at_fmax"] = {"mhz": fmax, **_figures(first, last, beats, fmax)}
    return out
