"""cocotb testbench of the board shell: image bytes in over a simulated UART, answers and trigger out.

Configuration from $INSITU_SIM_CONFIG: vectors, count, clks_per_bit, n_classes, score_bytes, osc_ps, core_ps, out.
The top is `insitu_shell_logic`: the oscillator clock `clk`, the core clock `cclk` and the PLL's `locked`.
"""

from __future__ import annotations

import json
import os

import cocotb
import numpy as np
from cocotb.clock import Clock
from cocotb.triggers import FallingEdge, RisingEdge, Timer
from cocotb.utils import get_sim_time

from insitu.rtl.shell import encode_values

async def send(dut, data: bytes, bit_ps: int) -> None:
    for byte in data:
        for level in [0] + [(byte >> i) & 1 for i in range(8)] + [1]:
            dut.uart_rx.value = level
            await Timer(bit_ps, unit="ps")


async def read_byte(dut, bit_ps: int) -> tuple[int, bool]:
    """The next byte on uart_tx (8N1) and whether its stop bit was there."""
    await FallingEdge(dut.uart_tx)
    await Timer(bit_ps * 3 // 2, unit="ps")
    value = 0
    for i in range(8):
        value |= int(dut.uart_tx.value) << i
        await Timer(bit_ps, unit="ps")
    return value, int(dut.uart_tx.value) == 1


async def _receive(dut, n: int, bit_ps: int, out: list[int]) -> None:
    while len(out) < n:
        value, stop = await read_byte(dut, bit_ps)
        if not stop:
            raise AssertionError(f"byte {len(out)}: no stop bit")
        out.append(value)


async def _pulses(dut, widths: list[int]) -> None:
    while True:
        await RisingEdge(dut.trigger)
        t0 = get_sim_time("ps")
        await FallingEdge(dut.trigger)
        widths.append(round(get_sim_time("ps") - t0))


@cocotb.test()
async def shell_images(dut):
    with open(os.environ["INSITU_SIM_CONFIG"]) as fh:
        cfg = json.load(fh)
    with np.load(cfg["vectors"], allow_pickle=False) as z:
        images = z["images"][: cfg["count"]]
    osc_ps, core_ps = cfg["osc_ps"], cfg["core_ps"]
    bit_ps = cfg["clks_per_bit"] * osc_ps
    nresp = 1 + cfg["n_classes"] * cfg["score_bytes"]
    dut.uart_rx.value = 1
    dut.locked.value = 0
    cocotb.start_soon(Clock(dut.clk, osc_ps, unit="ps").start())
    await Timer(core_ps // 3, unit="ps")  # unrelated phases
    cocotb.start_soon(Clock(dut.cclk, core_ps, unit="ps").start())
    await Timer(20 * osc_ps, unit="ps")
    dut.locked.value = 1
    await Timer(30 * osc_ps, unit="ps")
    got: list[int] = []
    widths: list[int] = []
    cocotb.start_soon(_pulses(dut, widths))
    reader = cocotb.start_soon(_receive(dut, nresp * len(images), bit_ps, got))
    for img in images:
        await send(dut, encode_values(img, cfg["value_bits"]), bit_ps)
    await cocotb.triggers.with_timeout(reader, bit_ps * 10 * (nresp + 4) * len(images) + 10**9, "ps")
    await Timer(bit_ps * 20, unit="ps")
    np.savez(cfg["out"], answers=np.array(got, np.int64).reshape(len(images), nresp),
             trigger_widths=np.array(widths, np.int64), leds=np.array(int(dut.led.value)))
