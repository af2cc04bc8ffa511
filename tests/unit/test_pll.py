"""The bitstream's clock: legal ECP5 PLL settings, the fastest at or below Fmax, and the post-route rewrite of
the PLL words, proven against a design routed directly at the new frequency."""

import json
import subprocess

import pytest

from insitu.errors import ToolError
from insitu.firmware.nextpnr_report import parse_report
from insitu.firmware.pll import PllSetting, fastest_setting, patch_textcfg, read_textcfg
from insitu.rtl import shell
from insitu.toolexec import find_tool

FRAGMENT = """.tile_group MIB_R4C0:PLL0_UL MIB_R5C0:PLL1_UL
word: CLKI_DIV 0000000
word: CLKFB_DIV 0000001
word: CLKOP_DIV 0000111
word: CLKOP_CPHASE 0000011
word: CLKOP_FPHASE 000
word: CLKOS_DIV 0000111
"""


@pytest.mark.parametrize("fmax", [73.11, 50.0, 100.7, 58.4])
def test_fastest_setting_is_legal_and_no_faster_setting_fits(fmax):
    s = fastest_setting(25.0, fmax)
    assert s.mhz <= fmax and 400 <= s.mhz * s.clkop_div <= 800 and 25.0 / s.clki_div >= 3.125
    assert s.mhz == pytest.approx(25.0 * s.clkfb_div / s.clki_div)
    faster = [o for o in shell.ecp5_pll_settings(25.0) if s.mhz < o[3] <= fmax]
    assert not faster
    assert fmax - s.mhz < 0.05 * fmax  # the legal settings are dense enough to lose little


def test_patch_rewrites_the_divider_words_only(tmp_path):
    cfg = tmp_path / "a.config"
    cfg.write_text(FRAGMENT)
    patch_textcfg(cfg, PllSetting(2, 5, 7, 62.5))
    assert read_textcfg(cfg) == {"CLKI_DIV": 2, "CLKFB_DIV": 5, "CLKOP_DIV": 7, "CLKOP_CPHASE": 2}
    text = cfg.read_text()
    assert "word: CLKOS_DIV 0000111" in text and "word: CLKOP_FPHASE 000" in text
    assert len(text.splitlines()) == len(FRAGMENT.splitlines())


def test_patch_refuses_a_design_without_exactly_one_pll(tmp_path):
    none, two = tmp_path / "none.config", tmp_path / "two.config"
    none.write_text(".tile X\narc: A B\n")
    two.write_text(FRAGMENT + FRAGMENT)
    for path in (none, two):
        before = path.read_text()
        with pytest.raises(ToolError, match="expected one PLL word CLKI_DIV"):
            patch_textcfg(path, PllSetting(2, 5, 7, 62.5))
        assert path.read_text() == before


def test_report_picks_the_core_clock_and_judges_every_clock(tmp_path):
    # the net names of a real shell build: the oscillator's input buffer and the clock generator's output; the
    # oscillator domain is the slower one here, so "the slowest clock" would be the wrong one
    doc = {"fmax": {"$glbnet$clk$TRELLIS_IO_IN": {"achieved": 57.95, "constraint": 25.0},
                    "$glbnet$u_clk.clk": {"achieved": 73.1, "constraint": 50.0}},
           "utilization": {"TRELLIS_COMB": {"used": 10, "available": 100}}}
    (tmp_path / "r.json").write_text(json.dumps(doc))
    rep = parse_report(tmp_path / "r.json")
    assert rep.core_clock == "$glbnet$u_clk.clk" and rep.fmax_mhz == 73.1 and rep.timing_met
    assert rep.with_core_target(72.9).timing_met and not rep.with_core_target(75.0).timing_met
    doc["fmax"]["$glbnet$clk$TRELLIS_IO_IN"]["achieved"] = 20.0  # the oscillator domain fails: the design fails
    (tmp_path / "r.json").write_text(json.dumps(doc))
    assert not parse_report(tmp_path / "r.json").timing_met


COUNTER = """module top(input clk, output [7:0] led);
    wire c, l; insitu_clkgen g(.clk_in(clk), .clk(c), .locked(l));
    reg [23:0] n; always @(posedge c) n <= n + 1'b1; assign led = n[23:16];
endmodule
"""


def _route(tmp_path, name, mhz):
    d = tmp_path / name
    d.mkdir()
    (d / "top.v").write_text(COUNTER)
    (d / "clkgen.v").write_text(shell.clkgen_ecp5(25.0, mhz)[0])
    (d / "top.lpf").write_text('LOCATE COMP "clk" SITE "G2";\nIOBUF PORT "clk" IO_TYPE=LVCMOS33;\n'
                               'FREQUENCY PORT "clk" 25 MHZ;\n')
    run = {"cwd": d, "check": True, "capture_output": True, "timeout": 300}
    synth = "read_verilog top.v clkgen.v; synth_ecp5 -top top -json t.json"
    subprocess.run([find_tool("yosys"), "-q", "-p", synth], **run)
    subprocess.run([find_tool("nextpnr-ecp5"), "--25k", "--package", "CABGA381", "--json", "t.json", "--lpf", "top.lpf",
                    "--lpf-allow-unconstrained", "--textcfg", "t.config", "--seed", "1", "-q"], **run)
    return d / "t.config"


def test_rewritten_config_equals_a_design_routed_at_that_clock(tmp_path):
    at50, at62 = _route(tmp_path, "a", 50.0), _route(tmp_path, "b", 62.5)
    patch_textcfg(at50, fastest_setting(25.0, 62.6))
    assert at50.read_text() == at62.read_text()
