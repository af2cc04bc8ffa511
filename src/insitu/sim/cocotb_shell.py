"""cocotb testbench of the board shell: image bytes in over a simulated UART, answers and trigger out.

Configuration from $INSITU_SIM_CONFIG: vectors, count, clks_per_bit, n_classes, score_bytes, out.
"""

from __future__ import annotations

import json
import os

import cocotb
import numpy as np
from cocotb.clock import Clock
from cocotb.triggers import FallingEdge, RisingEdge, Timer
from cocotb.utils import get_sim_time

PERIOD_NS = 10


async def _send(dut, data: bytes, bit_ns: int) -> None:
    for byte in data:
        for level in [0] + [(byte >> i) & 1 for i in range(8)] + [1]:
            dut.uart_rx.value = level
            await Timer(bit_ns, unit="ns")


async def _receive(dut, n: int, bit_ns: int, out: list[int]) -> None:
    while len(out) < n:
        await FallingEdge(dut.uart_tx)
        await Timer(bit_ns * 3 // 2, unit="ns")
        value = 0
        for i in range(8):
            value |= int(dut.uart_tx.value) << i
            await Timer(bit_ns, unit="ns")
        if int(dut.uart_tx.value) != 1:
            raise AssertionError(f"byte {len(out)}: no stop bit")
        out.append(value)


async def _pulses(dut, widths: list[int]) -> None:
    while True:
        await RisingEdge(dut.trigger)
        t0 = get_sim_time("ns")
        await FallingEdge(dut.trigger)
        widths.append(round((get_sim_time("ns") - t0) / PERIOD_NS))


@cocotb.test()
async def shell_images(dut):
    with open(os.environ["INSITU_SIM_CONFIG"]) as fh:
        cfg = json.load(fh)
    with np.load(cfg["vectors"], allow_pickle=False) as z:
        images = z["images"][: cfg["count"]]
    bit_ns = cfg["clks_per_bit"] * PERIOD_NS
    nresp = 1 + cfg["n_classes"] * cfg["score_bytes"]
    dut.uart_rx.value = 1
    cocotb.start_soon(Clock(dut.clk, PERIOD_NS, unit="ns").start())
    await Timer(50 * PERIOD_NS, unit="ns")
    got: list[int] = []
    widths: list[int] = []
    cocotb.start_soon(_pulses(dut, widths))
    reader = cocotb.start_soon(_receive(dut, nresp * len(images), bit_ns, got))
    for img in images:
        await _send(dut, img.tobytes(), bit_ns)
    await cocotb.triggers.with_timeout(reader, bit_ns * 10 * (nresp + 4) * len(images) + 10**6, "ns")
    await Timer(bit_ns * 20, unit="ns")
    np.savez(cfg["out"], answers=np.array(got, np.int64).reshape(len(images), nresp),
             trigger_widths=np.array(widths, np.int64), leds=np.array(int(dut.led.value)))
