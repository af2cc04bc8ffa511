"""The bitstream's clock: after routing, the ECP5 PLL is set to the fastest legal frequency the placed design
meets, by rewriting its divider words in nextpnr's text configuration before packing.

Why this is sound: the routed delays, and so the Fmax nextpnr reports for the core clock, do not depend on the
PLL's dividers (the PLL is a clock source; its output net, placement and routing stay as they are). The shell
keeps every real-time constant (baud rate, trigger length, idle timeout) in the board oscillator's domain
(`insitu.rtl.shell`), so nothing in the core clock's domain depends on that clock's frequency either.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from insitu.errors import ToolError
from insitu.rtl.shell import ecp5_pll_params, pll_cphase

WORDS = ("CLKI_DIV", "CLKFB_DIV", "CLKOP_DIV", "CLKOP_CPHASE")


@dataclass(frozen=True)
class PllSetting:
    clki_div: int
    clkfb_div: int
    clkop_div: int
    mhz: float

    def words(self) -> dict[str, int]:
        """The value each 7-bit word holds (the divider minus one)."""
        return {"CLKI_DIV": self.clki_div - 1, "CLKFB_DIV": self.clkfb_div - 1, "CLKOP_DIV": self.clkop_div - 1,
                "CLKOP_CPHASE": pll_cphase(self.clkop_div)}

    def sed_script(self) -> str:
        """The same rewrite as `patch_textcfg`, for the bundle's run.sh."""
        return "".join(f"s/^word: {k} [01]*$/word: {k} {v:07b}/;" for k, v in self.words().items())


def fastest_setting(fin_mhz: float, fmax_mhz: float) -> PllSetting:
    idiv, fb, op, fout = ecp5_pll_params(fin_mhz, fmax_mhz, at_most=True)
    return PllSetting(idiv, fb, op, fout)


def patch_textcfg(path: Path, setting: PllSetting) -> None:
    """Rewrite the PLL's divider words in the text configuration `path` in place. The design must hold exactly
    one PLL (one of each word); anything else is refused before the file is touched."""
    text = path.read_text()
    for key, value in setting.words().items():
        pattern = re.compile(rf"^word: {key} ([01]+)$", re.M)
        hits = pattern.findall(text)
        if len(hits) != 1:
            raise ToolError(f"{path}: expected one PLL word {key}, found {len(hits)}",
                            "the bitstream clock can be retuned only for a design with one EHXPLLL; set "
                            "firmware.pll=asked to keep the PLL as synthesised")
        if len(hits[0]) != 7:
            raise ToolError(f"{path}: PLL word {key} has {len(hits[0])} bits, not 7", "this is a bug; please report it")
        text = pattern.sub(f"word: {key} {value:07b}", text)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    tmp.replace(path)


def read_textcfg(path: Path) -> dict[str, int]:
    """The PLL words of a text configuration, as divider values (the inverse of PllSetting.words)."""
    text = path.read_text()
    out = {}
    for key in WORDS:
        m = re.search(rf"^word: {key} ([01]+)$", text, re.M)
        if m is None:
            raise ToolError(f"{path}: no PLL word {key}", "the design has no EHXPLLL")
        out[key] = int(m.group(1), 2) + (0 if key == "CLKOP_CPHASE" else 1)
    return out
