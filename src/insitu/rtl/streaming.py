"""The streaming architecture: an AXI4-Stream image in, class scores and the decision out.

    s_axis (P pixels/beat) -> [pad] -> block 0 (P lanes) -> FIFO + serializer -> ([FIFO + pad] -> block k)...
        -> flatten + dense (streaming accumulation) or global average + dense kernel -> argmax -> result FIFO

`_plan` splits the IR into convolution blocks (`conv_block`, with a pad stage `pad_stream` when the
convolution is zero-padded) and the tail; `stream_top` wires them with their elastic joints. Nothing inside a
block ever stalls; `s_tready` falls only while a FIFO downstream is close to full and at the start of an image
when every result slot is already promised, so a result never waits for anything but `m_ready`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from insitu.errors import RTLError
from insitu.ir import support
from insitu.ir.fixed import FixedType
from insitu.ir.graph import dense_weight
from insitu.ir.layers import AvgPool2D, GlobalAvgPool, GlobalMaxPool
from insitu.ir.model import Conv2D, Dense, Flatten, MaxPool2D, QuantModel, Requant
from insitu.rtl import conv_block, dense_stream, gap_stream, pad_stream, stream_top
from insitu.rtl.kernel import Kernel, make_kernel
from insitu.rtl.vlog import clog2

RESULT_DEPTH = stream_top.RESULT_DEPTH


@dataclass
class StreamDesign:
    """What the simulation, the shell and the report need to know about the generated core."""

    top: str
    lanes: int
    pixel_bits: int
    height: int
    width: int
    n_classes: int
    score_type: FixedType
    files: list[Path] = field(default_factory=list)
    kernels: list[dict] = field(default_factory=list)
    pipeline_cycles: int = 0
    architecture: str = "streaming"
    block_lanes: list[int] = field(default_factory=list)  # pixels per clock of each convolution block

    @property
    def beats(self) -> int:
        return self.height * self.width // self.lanes

    def to_dict(self) -> dict:
        return {"architecture": self.architecture, "top": self.top, "lanes": self.lanes, "pixel_bits": self.pixel_bits,
                "height": self.height, "width": self.width, "beats_per_image": self.beats,
                "n_classes": self.n_classes, "score_type": self.score_type.to_dict(),
                "files": [p.name for p in self.files], "kernels": self.kernels, "block_lanes": self.block_lanes}


def _plan(model: QuantModel, lanes: int):
    """Split the IR into conv blocks and the dense tail, or say which layer does not fit."""
    layers = model.layers[1:]
    c, h, w = model.input.shape
    blocks, i, in_t, acc_frac = [], 0, model.input.out_type, model.input.out_type.frac
    while i < len(layers) and isinstance(layers[i], Conv2D):
        conv = layers[i]
        if i + 1 >= len(layers) or not isinstance(layers[i + 1], Requant):
            raise RTLError(f"{conv.name}: the RTL needs a ReLU/requant after every convolution",
                           "add an activation quantizer after the convolution")
        rq = layers[i + 1]
        nxt = layers[i + 2] if i + 2 < len(layers) else None
        pool = nxt if isinstance(nxt, (MaxPool2D, AvgPool2D)) else None
        kh, kw = conv.weight.shape[2:]
        sh, sw = conv.stride
        if pool is not None and (sh, sw) != (1, 1):
            raise RTLError(f"{conv.name}: a strided convolution followed by pooling ({pool.name}) in one streaming "
                           "block is not supported", "use stride 1 before the pooling, or the unrolled architecture")
        if pool is not None and pool.stride not in (0, pool.size):
            raise RTLError(f"{pool.name}: overlapping pooling (stride {pool.stride} < size {pool.size}) is not "
                           "streamed", "use stride = size, or the unrolled architecture")
        if pool is not None:
            reduce, factor, sy = ("sum" if isinstance(pool, AvgPool2D) else "max"), pool.size, 0
        else:
            reduce, factor, sy = ("first" if (sh, sw) != (1, 1) else "max"), sw, sh
        pt, pbm, pl, pr = conv.padding
        if not blocks:
            p = lanes
            if w % p:
                raise RTLError(f"{conv.name}: {p} pixels per clock do not divide the row width {w}",
                               f"choose lanes among the divisors of {w}")
            pace = (h + pt + pbm) * -(-(w + pl + pr) // p)  # block 0's beats per image set the pace
        else:
            p = later_lanes(h, w, conv.padding, factor, kw, pace, lanes)
        wf = -(-w // p) * p  # a row the lanes do not divide is completed with zeros by the repacker
        pad = None
        if any(conv.padding):
            pad = pad_stream.PadSpec(f"pad{len(blocks)}", p, c * in_t.width, h, wf, pt, pbm, pl,
                                     max(0, pr - (wf - w)))
        valid = w + pl + pr if (pad or wf != w) else 0
        bh, bw = (pad.padded_height, pad.padded_width) if pad else (h, wf)
        spec = conv_block.BlockSpec(f"blk{len(blocks)}", p, c, bh, bw, kh, factor,
                                    FixedType(in_t.signed, in_t.width, 0), rq.out_type, rq.relu, conv.out_type.frac,
                                    conv.weight.shape[0], kw=kw, reduce=reduce,
                                    avg_type=pool.out_type if isinstance(pool, AvgPool2D) else None, stride_y=sy,
                                    valid_width=valid)
        conv_block.check(spec)
        blocks.append((spec, conv, pad))
        c, (h, w) = conv.weight.shape[0], spec.out_hw
        in_t = spec.result_type
        i += 3 if pool is not None else 2
    if not blocks:
        raise RTLError("the streaming architecture needs at least one convolution",
                       "use rtl.architecture=unrolled for models without convolutions")
    tail = layers[i:]
    if len(tail) > 1 and isinstance(tail[0], (GlobalAvgPool, GlobalMaxPool)) and isinstance(tail[1], Flatten):
        tail = [tail[0], *tail[2:]]  # the flatten of a vector is a no-op
    ok = (len(tail) in (2, 3) and isinstance(tail[0], (Flatten, GlobalAvgPool, GlobalMaxPool))
          and isinstance(tail[1], Dense)
          and (len(tail) == 2 or isinstance(tail[2], Requant)))
    if not ok:
        kinds = ", ".join(type(t).__name__ for t in tail)
        raise RTLError(f"the streaming RTL supports convolutions followed by Flatten, GlobalAvgPool or GlobalMaxPool, "
                       f"one Dense "
                       f"and an optional requant; this model ends with: {kinds}",
                       "use a student with a single dense layer")
    return blocks, (c, h, w), in_t, tail


def later_lanes(h: int, w: int, padding: tuple[int, int, int, int], factor: int, kw: int, pace: int,
                most: int) -> int:
    """Lanes of a block after the first: the fewest (up to `most`) whose beats per image (of the padded raster)
    keep up with block 0's `pace`, among the lane counts its reduction allows; else the fastest of those."""
    pt, pb, pl, pr = padding
    ok = [p for p in range(1, most + 1) if p == 1 or factor == 1 or (p % factor == 0 and (kw - 1) % factor == 0)]
    beats = {p: (h + pt + pb) * -(-(w + pl + pr) // p) for p in ok}
    fast = [p for p in ok if beats[p] <= pace]
    return min(fast) if fast else min(ok, key=lambda p: (beats[p], p))


def generate(model: QuantModel, out_dir: Path, lanes: int, latency_cutoff: float, top: str = "insitu_core") -> StreamDesign:
    """Write the Verilog of the streaming core for `model` with `lanes` pixels per clock into out_dir."""
    if lanes < 1:
        raise RTLError(f"lanes={lanes}", "use 1, 2, 4, 8 ...")
    support.require(model, "rtl_streaming", RTLError)
    blocks, (fc, fh, fw), feat_t, tail = _plan(model, lanes)
    out_dir.mkdir(parents=True, exist_ok=True)
    kdir = out_dir
    text, kernels, latency = [], [], 0
    for spec, conv, _ in blocks:
        weight = dense_weight(conv)  # depthwise: block-diagonal, and the adder graph drops the zeros
        k: Kernel = make_kernel(f"{spec.name}_k", weight.reshape(weight.shape[0], -1), conv.bias,
                                spec.in_type, kdir, latency_cutoff)
        kernels.append(k)
        text.append(conv_block.generate(spec, k))
        latency += spec.latency
    dense: Dense = tail[1]
    rq = (tail[2].relu, tail[2].out_type) if len(tail) == 3 else None
    if isinstance(tail[0], (GlobalAvgPool, GlobalMaxPool)):
        dtext, score_t, k, tail_latency = gap_stream.generate("dense", tail[0], dense, (fh, fw), fc, feat_t,
                                                              feat_t.frac, rq, kdir, latency_cutoff)
        kernels.append(k)
        latency += tail_latency
    else:
        dtext, score_t = dense_stream.generate("dense", dense.weight, dense.bias, (fh, fw), fc,
                                               FixedType(feat_t.signed, feat_t.width, 0), dense.weight_type,
                                               dense.out_type.frac, rq)
        latency += 4
    text.append(dtext)
    n_out = dense.weight.shape[0]
    first: conv_block.BlockSpec = blocks[0][0]
    pb = first.in_type.width
    h, w = model.input.shape[1:]
    text.append(stream_top.generate(top, blocks, n_out, score_t, lanes, pb, h * w // lanes, text))
    files = [out_dir / f"{top}.v"]
    (out_dir / f"{top}.v").write_text("`timescale 1ns/1ps\n" + "\n".join(text))
    files += [f for k in kernels for f in k.files]
    return StreamDesign(top, lanes, pb, h, w, n_out, score_t, files, [k.to_dict() for k in kernels], latency,
                        block_lanes=[spec.lanes for spec, _, _ in blocks])
