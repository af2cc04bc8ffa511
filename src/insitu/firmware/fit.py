"""Does the design fit the device? Read from nextpnr's utilisation table when place and route failed."""

from __future__ import annotations

import re
from pathlib import Path

from insitu.boards import Board
from insitu.errors import RTLError

_ROW = re.compile(r"^Info:\s+([A-Za-z0-9_ ]+?):\s+(\d+)/\s*(\d+)\s+\d+%", re.M)


def utilisation(log_text: str) -> dict[str, tuple[int, int]]:
    """Cell type -> (used, available) from every utilisation table in a nextpnr log (the last one wins)."""
    return {m.group(1).strip(): (int(m.group(2)), int(m.group(3))) for m in _ROW.finditer(log_text)}


#: Hard multiplier blocks per device (ECP5 MULT18X18D, iCE40 SB_MAC16).
DEVICE_DSP = {"LFE5U-12F": 28, "LFE5U-25F": 28, "LFE5U-45F": 72, "LFE5U-85F": 156, "LFE5UM-85F": 156,
              "LFE5UM5G-85F": 156, "iCE40UP5K": 8}


def use_dsp(setting: bool | str, multipliers: int, device: str) -> tuple[bool, str]:
    """`firmware.dsp` resolved: True/False as asked; "auto": DSP blocks when the core's variable products fit the
    device's, else LUTs (narrow products are cheap in LUTs). Returns (use, why)."""
    if setting != "auto":
        return bool(setting), f"firmware.dsp={str(setting).lower()}"
    have = DEVICE_DSP.get(device)
    if have is None:
        return True, f"auto: {device} not in the DSP table, DSP blocks allowed"
    if multipliers > have:
        return False, f"auto: {multipliers} products > {have} DSP blocks of {device}: multipliers in LUTs"
    return True, f"auto: {multipliers} products fit the {have} DSP blocks of {device}"


def check_fit_from_log(log: Path, board: Board, lanes: int) -> None:
    """Raise a clear RTLError if the log shows a resource over 100%; return quietly otherwise."""
    try:
        text = log.read_text(errors="replace")
    except OSError:
        return
    over = {k: v for k, v in utilisation(text).items() if v[0] > v[1]}
    if not over:
        return
    parts = ", ".join(f"{k} {u}/{a} ({100 * u / a:.0f}%, {u - a} too many)" for k, (u, a) in over.items())
    dsp = any(k in ("MULT18X18D", "SB_MAC16", "DSP48E1", "DSP48E2") for k in over)
    first = ("map the multipliers to LUTs (--set firmware.dsp=false: narrow products are cheap in LUTs), or "
             if dsp else "")
    raise RTLError(f"the design does not fit {board.name} ({board.device}): {parts}",
                   f"{first}use fewer pixel lanes (rtl.lanes, now {lanes}), fewer weight/activation bits, a larger "
                   "latency_cutoff (fewer pipeline registers) or a larger device")
