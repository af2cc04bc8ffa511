"""cocotb testbench that puts the simulated board shell on a pseudo-terminal: bytes written to the terminal go
into `uart_rx` at the shell's baud, bytes the shell sends on `uart_tx` come out of it. It runs until the
process is stopped (or `seconds` of wall time pass).

Configuration from $INSITU_SIM_CONFIG: clks_per_bit, osc_ps, core_ps, port_file (where the terminal's path is
written), seconds. The top is `insitu_shell_logic` (the bundle's own shell logic, without the board's PLL).
"""

from __future__ import annotations

import json
import os
import time
import tty

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import Timer

from insitu.sim.cocotb_shell import read_byte, send


async def _to_terminal(dut, fd: int, bit_ps: int) -> None:
    while True:
        value, _ = await read_byte(dut, bit_ps)
        os.write(fd, bytes([value]))


@cocotb.test()
async def board(dut):
    with open(os.environ["INSITU_SIM_CONFIG"]) as fh:
        cfg = json.load(fh)
    osc_ps, core_ps = cfg["osc_ps"], cfg["core_ps"]
    bit_ps = cfg["clks_per_bit"] * osc_ps
    master, slave = os.openpty()
    tty.setraw(slave)  # bytes pass unchanged (no echo, no line discipline)
    os.set_blocking(master, False)
    tmp = cfg["port_file"] + ".tmp"
    with open(tmp, "w") as fh:
        fh.write(os.ttyname(slave))
    os.replace(tmp, cfg["port_file"])
    dut.uart_rx.value = 1
    dut.locked.value = 0
    cocotb.start_soon(Clock(dut.clk, osc_ps, unit="ps").start())
    await Timer(core_ps // 3, unit="ps")
    cocotb.start_soon(Clock(dut.cclk, core_ps, unit="ps").start())
    await Timer(20 * osc_ps, unit="ps")
    dut.locked.value = 1
    cocotb.start_soon(_to_terminal(dut, master, bit_ps))
    end = time.monotonic() + cfg["seconds"]
    while time.monotonic() < end:
        try:
            data = os.read(master, 4096)
        except (BlockingIOError, OSError):
            data = b""
        if data:
            await send(dut, data, bit_ps)
        else:  # idle: let wall time pass rather than simulated time (the shell's idle timer counts the latter)
            time.sleep(0.002)
            await Timer(2 * bit_ps, unit="ps")
