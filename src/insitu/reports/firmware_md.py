"""The firmware part of report.md and its latency-vs-resources plot."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from insitu.reports.render import save_figure


def latency_plot(points: list[dict[str, Any]], path: Path) -> Path | None:
    """Decision latency (µs) against LUTs, one point per lane count / board built in this run."""
    pts = [p for p in points if p.get("us") is not None and p.get("lut")]
    if not pts:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    for p in pts:
        ax.scatter(p["lut"], p["us"], s=40)
        ax.annotate(f"P={p['lanes']} {p['board']}", (p["lut"], p["us"]), textcoords="offset points", xytext=(5, 5))
    ax.axhline(14.5, color="grey", ls="--", lw=1)
    ax.text(ax.get_xlim()[0], 14.5, " 14.5 µs (published sorter, 250 MHz KU035)", va="bottom", fontsize=8)
    ax.set_xlabel("LUTs (post place and route)")
    ax.set_ylabel("first pixel → decision (µs at the bitstream clock)")
    ax.set_ylim(bottom=0)
    ax.margins(x=0.2)  # room for the labels of the outermost points
    ax.grid(alpha=0.3)
    return save_figure(fig, path)


def section(report: dict[str, Any], plot_name: str | None) -> list[str]:
    rtl, impl, lat = report.get("rtl"), report.get("impl"), report.get("latency_us")
    if not rtl:
        return []
    ok = "bit-exact" if rtl["vectors"] == rtl["bit_exact_vectors"] else "MISMATCH"
    cyc = lat["cycles"] if lat else {}
    lines = ["## Firmware", "",
             f"- RTL ({rtl['lanes']} pixel lanes, da4ml pipeline cut {rtl['latency_cutoff']}) simulated with "
             f"{rtl['simulator']} + cocotb: **{rtl['bit_exact_vectors']} / {rtl['vectors']} images {ok}**.",
             f"- Cycles: first pixel → decision {cyc.get('first_pixel_to_decision')}, last pixel → decision "
             f"{cyc.get('after_last_pixel')}, pixel-in {cyc.get('pixel_in')} beats, initiation interval "
             f"{cyc.get('ii')} (back-to-back images)."]
    shell = report.get("shell_sim")
    if shell:
        trig = (f"{shell['triggers']} trigger pulses of {shell['trigger_us']} µs" if shell["triggers"]
                else "no trigger pulse")
        lines.append(f"- Board shell simulated over its UART: {shell['exact_answers']} / {shell['images']} answers "
                     f"exact, {trig} (expected {shell['expected_triggers']}).")
    if impl and impl.get("flow") == "vivado" and not impl.get("bitstream"):
        met = "met" if impl["timing_met"] else f"**NOT met** (WNS {impl['wns_ns']} ns)"
        lines.append(f"- {impl['board']} ({impl['device']}): the core as an AXI4-Stream IP, implemented out of "
                     f"context by Vivado at {impl['clock_mhz']} MHz: timing {met}, Fmax {impl['fmax_mhz']} MHz; "
                     f"LUT {impl['lut']:,}, FF {impl['ff']:,}, DSP {impl['dsp']}, BRAM {impl['bram']}; IP "
                     f"`{impl.get('ip')}` in the bundle's vivado/ folder.")
    elif impl and impl.get("fmax_mhz"):
        met = "met" if impl["timing_met"] else f"**NOT met** (at {impl['target_mhz']} MHz)"
        pc = impl.get("percent", {})
        pll = impl.get("pll") or {}
        how = (f"the PLL set after routing to the fastest legal setting at or below Fmax (placed at "
               f"{pll.get('asked_mhz')} MHz)" if pll.get("mode") == "fastest" else "the clock as configured")
        fx = lat.get("at_fmax") or {}
        lines += [f"- {impl['board']} ({impl['device']}): the bitstream runs at **{lat['clock_mhz']} MHz** ({how}); "
                  f"post-route Fmax of the core clock {impl['fmax_mhz']} MHz, timing {met}; LUT {impl['lut']:,} "
                  f"({pc.get('lut', 0):.1f}%), FF {impl['ff']:,} ({pc.get('ff', 0):.1f}%), DSP {impl['dsp']} "
                  f"({pc.get('dsp', 0):.1f}%), BRAM {impl['bram']} ({pc.get('bram', 0):.1f}%). Bitstream sha256 "
                  f"`{impl['bitstream_sha256'][:16]}…`.",
                  "",
                  f"| latency | µs at the bitstream's {lat['clock_mhz']} MHz | µs at Fmax {fx.get('mhz')} MHz "
                  "(bound) |",
                  "|---|---:|---:|",
                  f"| first pixel → decision | **{lat['first_pixel_to_decision']}** | "
                  f"{fx.get('first_pixel_to_decision')} |",
                  f"| compute after the last pixel | {lat['after_last_pixel']} | {fx.get('after_last_pixel')} |",
                  f"| pixel-in time (input-bandwidth floor) | {lat['pixel_in']} | {fx.get('pixel_in')} |",
                  "",
                  f"Receiving the image at {rtl['lanes']} pixels per clock takes {lat['pixel_in']} µs of the "
                  f"{lat['first_pixel_to_decision']} µs: the core finishes {lat['after_last_pixel']} µs after the "
                  "last pixel (negative: it never reads the last rows), so more pixel lanes, not a faster core, is "
                  "what shortens the decision."]
    elif impl:
        kind = (impl.get("estimate") or {}).get("kind", "pre-place-and-route estimate")
        lines.append(f"- {impl['board']} ({impl['device']}): **{kind}**: "
                     f"LUT {impl['lut']:,}, FF {impl['ff']:,}, DSP {impl['dsp']}, BRAM {impl['bram']}; no timing.")
    viv = report.get("vivado")
    if viv and not viv.get("built"):
        lines.append(f"- Vivado ({viv['mode']} mode): {viv['reason']}; the scripts are in the bundle "
                     f"(`{viv['scripts']}`).")
    if plot_name:
        lines += ["", f"![latency vs resources]({plot_name})"]
    return lines + [""]
