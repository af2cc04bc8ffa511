"""The streaming architecture: an AXI4-Stream image in, class scores and the decision out.

    s_axis (P pixels/beat) -> block 0 (P lanes) -> FIFO + serializer -> blocks 1.. (1 pixel/clock)
        -> flatten + dense (streaming accumulation) or global average + dense kernel -> argmax -> result FIFO -> m_* (valid/ready)

`s_tready` falls only (a) while the FIFO after block 0 is close to full, and (b) at the start of an image
when every result slot is already promised to an image in flight; nothing inside ever stalls, so a result
never waits for anything but `m_ready`. `frame_error` is sticky when `s_tlast` disagrees with the image size.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from insitu.errors import RTLError
from insitu.ir import support
from insitu.ir.fixed import FixedType
from insitu.ir.graph import dense_weight
from insitu.ir.layers import AvgPool2D, GlobalAvgPool
from insitu.ir.model import Conv2D, Dense, Flatten, MaxPool2D, QuantModel, Requant
from insitu.rtl import conv_block, dense_stream, gap_stream
from insitu.rtl.fifo import fifo, serializer
from insitu.rtl.kernel import Kernel, make_kernel
from insitu.rtl.vlog import clog2

RESULT_DEPTH = 4


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

    @property
    def beats(self) -> int:
        return self.height * self.width // self.lanes

    def to_dict(self) -> dict:
        return {"architecture": self.architecture, "top": self.top, "lanes": self.lanes, "pixel_bits": self.pixel_bits,
                "height": self.height, "width": self.width, "beats_per_image": self.beats,
                "n_classes": self.n_classes, "score_type": self.score_type.to_dict(),
                "files": [p.name for p in self.files], "kernels": self.kernels}


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
        spec = conv_block.BlockSpec(f"blk{len(blocks)}", lanes if not blocks else 1, c, h, w, kh, factor,
                                    FixedType(in_t.signed, in_t.width, 0), rq.out_type, rq.relu, conv.out_type.frac,
                                    conv.weight.shape[0], kw=kw, reduce=reduce,
                                    avg_type=pool.out_type if isinstance(pool, AvgPool2D) else None, stride_y=sy)
        conv_block.check(spec)
        blocks.append((spec, conv))
        c, (h, w) = conv.weight.shape[0], spec.out_hw
        in_t = spec.result_type
        i += 3 if pool is not None else 2
    if not blocks:
        raise RTLError("the streaming architecture needs at least one convolution",
                       "use rtl.architecture=unrolled for models without convolutions")
    tail = layers[i:]
    if len(tail) > 1 and isinstance(tail[0], GlobalAvgPool) and isinstance(tail[1], Flatten):
        tail = [tail[0], *tail[2:]]  # the flatten of a vector is a no-op
    ok = (len(tail) in (2, 3) and isinstance(tail[0], (Flatten, GlobalAvgPool)) and isinstance(tail[1], Dense)
          and (len(tail) == 2 or isinstance(tail[2], Requant)))
    if not ok:
        kinds = ", ".join(type(t).__name__ for t in tail)
        raise RTLError(f"the streaming RTL supports convolutions followed by Flatten or GlobalAvgPool, one Dense "
                       f"and an optional requant; this model ends with: {kinds}",
                       "use a student with a single dense layer")
    return blocks, (c, h, w), in_t, tail


def generate(model: QuantModel, out_dir: Path, lanes: int, latency_cutoff: float, top: str = "insitu_core") -> StreamDesign:
    """Write the Verilog of the streaming core for `model` with `lanes` pixels per clock into out_dir."""
    if lanes < 1:
        raise RTLError(f"lanes={lanes}", "use 1, 2, 4, 8 ...")
    support.require(model, "rtl_streaming", RTLError)
    blocks, (fc, fh, fw), feat_t, tail = _plan(model, lanes)
    out_dir.mkdir(parents=True, exist_ok=True)
    kdir = out_dir
    text, kernels, latency = [], [], 0
    for spec, conv in blocks:
        weight = dense_weight(conv)  # depthwise: block-diagonal, and the adder graph drops the zeros
        k: Kernel = make_kernel(f"{spec.name}_k", weight.reshape(weight.shape[0], -1), conv.bias,
                                spec.in_type, kdir, latency_cutoff)
        kernels.append(k)
        text.append(conv_block.generate(spec, k))
        latency += spec.latency
    dense: Dense = tail[1]
    rq = (tail[2].relu, tail[2].out_type) if len(tail) == 3 else None
    if isinstance(tail[0], GlobalAvgPool):
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
    text.append(_top(top, blocks, n_out, score_t, lanes, pb, text_fifo=text))
    files = [out_dir / f"{top}.v"]
    (out_dir / f"{top}.v").write_text("`timescale 1ns/1ps\n" + "\n".join(text))
    files += [f for k in kernels for f in k.files]
    h, w = model.input.shape[1:]
    return StreamDesign(top, lanes, pb, h, w, n_out, score_t, files, [k.to_dict() for k in kernels], latency)


def _top(top: str, blocks, n_out: int, score_t: FixedType, lanes: int, pb: int, text_fifo: list[str]) -> str:
    first: conv_block.BlockSpec = blocks[0][0]
    q, o0, ob0 = first.out_lanes, first.out_channels, first.result_type.width
    lw = o0 * ob0
    beats = first.height * first.width // lanes
    sw, cw = score_t.width, clog2(n_out)
    use_fifo = first.lanes > 1
    v = [f"module {top} (input clk, input rst,",
         f"    input [{lanes * pb - 1}:0] s_tdata, input s_tvalid, output s_tready, input s_tlast,",
         f"    output m_valid, input m_ready, output [{n_out * sw - 1}:0] m_scores, output [{cw - 1}:0] m_class,",
         f"    output reg frame_error, output d_valid, output [{cw - 1}:0] d_class);",
         "    wire accept = s_tvalid & s_tready;",
         f"    reg [{clog2(beats) - 1}:0] beat;",
         f"    wire last_beat = (beat == {beats - 1});",
         f"    always @(posedge clk) if (rst) begin beat <= 0; frame_error <= 1'b0; end else if (accept) begin\n"
         f"        beat <= last_beat ? {clog2(beats)}'d0 : beat + 1'b1;\n"
         "        if (s_tlast != last_beat) frame_error <= 1'b1;\n    end",
         f"    wire b0_v; wire [{q - 1}:0] b0_m; wire [{q * lw - 1}:0] b0_d;",
         "    blk0 u_blk0 (.clk(clk), .rst(rst), .in_valid(accept), .in_data(s_tdata), "
         ".out_valid(b0_v), .out_mask(b0_m), .out_data(b0_d));"]
    if use_fifo:
        margin = first.latency + 2
        depth = 1 << clog2(max(16, 2 * margin + first.width // lanes))
        text_fifo.append(fifo("feat_fifo", q * lw + q, depth))
        text_fifo.append(serializer("feat_ser", q, lw))
        v += [f"    wire f_empty, f_pop; wire [{clog2(depth)}:0] f_count; wire [{q * lw + q - 1}:0] f_head;",
              "    feat_fifo u_ff (.clk(clk), .rst(rst), .push(b0_v), .din({b0_m, b0_d}), .pop(f_pop), "
              ".dout(f_head), .empty(f_empty), .count(f_count));",
              f"    wire p0_v; wire [{lw - 1}:0] p0_d;",
              "    feat_ser u_fs (.clk(clk), .rst(rst), .empty(f_empty), .head(f_head), .pop(f_pop), "
              ".out_valid(p0_v), .out_data(p0_d));",
              f"    wire room = (f_count <= {depth - margin});"]
    else:
        v += [f"    wire p0_v = b0_v; wire [{lw - 1}:0] p0_d = b0_d;", "    wire room = 1'b1;"]
    prev = "p0"
    for idx, (spec, _) in enumerate(blocks[1:], start=1):
        ow = spec.out_channels * spec.result_type.width
        v += [f"    wire b{idx}_v; wire b{idx}_m; wire [{ow - 1}:0] b{idx}_d;",
              f"    blk{idx} u_blk{idx} (.clk(clk), .rst(rst), .in_valid({prev}_v), .in_data({prev}_d), "
              f".out_valid(b{idx}_v), .out_mask(b{idx}_m), .out_data(b{idx}_d));"]
        prev = f"b{idx}"
    rw = n_out * sw + cw
    v += [f"    wire d_v; wire [{n_out * sw - 1}:0] d_s; wire [{cw - 1}:0] d_c;",
          f"    dense u_dense (.clk(clk), .rst(rst), .in_valid({prev}_v), .in_data({prev}_d), "
          ".out_valid(d_v), .out_scores(d_s), .out_class(d_c));",
          f"    wire r_empty; wire [{clog2(RESULT_DEPTH)}:0] r_count; wire [{rw - 1}:0] r_head;",
          "    wire r_pop = m_valid & m_ready;",
          "    result_fifo u_rf (.clk(clk), .rst(rst), .push(d_v), .din({d_c, d_s}), .pop(r_pop), "
          ".dout(r_head), .empty(r_empty), .count(r_count));",
          "    assign m_valid = ~r_empty; assign d_valid = d_v; assign d_class = d_c;",
          f"    assign m_scores = r_head[{n_out * sw - 1}:0]; assign m_class = r_head[{rw - 1}:{n_out * sw}];",
          f"    reg [{clog2(RESULT_DEPTH)}:0] inflight;",
          "    wire start = accept & (beat == 0);",
          "    always @(posedge clk) if (rst) inflight <= 0; else inflight <= inflight + start - d_v;",
          f"    wire slot = (inflight + r_count) < {RESULT_DEPTH};",
          "    assign s_tready = ~rst & room & ((beat != 0) | slot);",
          "endmodule\n"]
    text_fifo.append(fifo("result_fifo", rw, RESULT_DEPTH))
    return "\n".join(v)
