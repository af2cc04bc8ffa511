"""cocotb testbench of the streaming core: drives images over AXI4-Stream and records every result.

Run by `insitu.sim.rtl` in a child process (never imported by the package itself). The configuration comes
as a JSON file named by $INSITU_SIM_CONFIG: vectors (npz with `images`), count, lanes, pixel_bits,
n_classes, score_width, score_signed, valid_prob, ready_prob, seed, out (npz to write).

Cycle stamps are clock-edge indices: a beat is "accepted at edge e" when tvalid & tready were high just
before edge e; a result is "valid at edge e" when m_valid rose at edge e.
"""

from __future__ import annotations

import json
import os

import cocotb
import numpy as np
from cocotb.clock import Clock
from cocotb.triggers import RisingEdge


def _beats(images: np.ndarray, lanes: int, bits: int) -> list[list[int]]:
    out = []
    shifts, mask = [p * bits for p in range(lanes)], (1 << bits) - 1
    for img in images:
        px = img.reshape(-1, lanes).astype(object)
        out.append([sum((int(v) & mask) << s for v, s in zip(row, shifts)) for row in px])  # signed codes too
    return out


def _signed(v: int, width: int, signed: bool) -> int:
    if signed and v >> (width - 1):
        return v - (1 << width)
    return v


@cocotb.test()
async def stream_images(dut):
    with open(os.environ["INSITU_SIM_CONFIG"]) as fh:
        cfg = json.load(fh)
    with np.load(cfg["vectors"], allow_pickle=False) as z:
        images = z["images"][: cfg["count"]]
    index = np.array_split(np.arange(len(images)), cfg.get("shards", 1))[cfg.get("shard", 0)]
    images = images[index]
    lanes, n_cls, sw = cfg["lanes"], cfg["n_classes"], cfg["score_width"]
    rng = np.random.default_rng(cfg["seed"])
    pv, pr = cfg["valid_prob"], cfg["ready_prob"]
    beats = _beats(images, lanes, cfg["pixel_bits"])
    n = len(beats)
    first, last, valid_at = np.full(n, -1), np.full(n, -1), np.full(n, -1)
    scores, classes = np.zeros((n, n_cls), np.int64), np.zeros(n, np.int64)
    cocotb.start_soon(Clock(dut.clk, 10, unit="ns").start())
    dut.rst.value = 1
    dut.s_tvalid.value = 0
    dut.s_tlast.value = 0
    dut.s_tdata.value = 0
    dut.m_ready.value = 0
    for _ in range(4):
        await RisingEdge(dut.clk)
    dut.rst.value = 0
    img, beat, got, edge = 0, 0, 0, 0
    driving, ready_out, prev_mvalid, prev_taken = False, False, False, False
    limit = (n + 2) * (len(beats[0]) * 8 + 4000) if n else 0
    while got < n:
        await RisingEdge(dut.clk)
        edge += 1
        if edge > limit:
            raise TimeoutError(f"no result after {edge} cycles: {got} of {n} images came back")
        # what happened at this edge (values just before it)
        if driving and int(dut.s_tready.value):
            if beat == 0:
                first[img] = edge
            beat += 1
            if beat == len(beats[img]):
                last[img] = edge
                img, beat = img + 1, 0
        mvalid = bool(int(dut.m_valid.value))
        if mvalid and (not prev_mvalid or prev_taken):
            valid_at[got] = edge - 1
        prev_taken = False
        if mvalid and ready_out:
            word = int(dut.m_scores.value)
            scores[got] = [_signed((word >> (k * sw)) & ((1 << sw) - 1), sw, cfg["score_signed"]) for k in range(n_cls)]
            classes[got] = int(dut.m_class.value)
            got += 1
            prev_taken = True
        prev_mvalid = mvalid
        # drive the next cycle
        driving = img < n and (pv >= 1.0 or rng.random() < pv)
        if driving:
            dut.s_tdata.value = beats[img][beat]
            dut.s_tlast.value = int(beat == len(beats[img]) - 1)
        dut.s_tvalid.value = int(driving)
        ready_out = pr >= 1.0 or rng.random() < pr
        dut.m_ready.value = int(ready_out)
    np.savez(cfg["out"], index=index, scores=scores, classes=classes, first=first, last=last, valid=valid_at,
             frame_error=np.array(int(dut.frame_error.value)), edges=np.array(edge))
