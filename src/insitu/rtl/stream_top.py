"""The top module of the streaming core: AXI4-Stream in, the blocks with their elastic joints, the tail, the results.

    s_axis -> [pad 0] -> block 0 (P lanes) -> [FIFO + serializer] -> ([FIFO + pad k] -> block k)...
        -> tail (dense or global average + dense) -> result FIFO -> m_*

Blocks never stall. Three kinds of stage may hold back, each only when told to (`stall`): the input
(`s_tready`, or the pad stage of block 0), the serializer after block 0, and the pad stage of a padded later
block. Every FIFO in the chain tells the nearest such stage upstream of it to stall while it has less room
than the beats already on their way (the latencies of the blocks in between, plus a margin), so no FIFO ever
overflows and nothing is ever dropped. `s_tready` also falls at the start of an image when every result slot
is already promised; `frame_error` is sticky when `s_tlast` disagrees with the image size.
"""

from __future__ import annotations

from insitu.ir.fixed import FixedType
from insitu.rtl import pad_stream
from insitu.rtl.conv_block import BlockSpec
from insitu.rtl.fifo import fifo, serializer
from insitu.rtl.vlog import clog2

RESULT_DEPTH = 4
ALWAYS = "1'b1"


def generate(top: str, blocks: list, n_out: int, score_t: FixedType, lanes: int, pb: int, beats: int,
             modules: list[str]) -> str:
    """`blocks`: (BlockSpec, conv layer, PadSpec or None) per block; `beats` per real image; the FIFO,
    serializer and pad modules are appended to `modules`."""
    first: BlockSpec = blocks[0][0]
    q, lw = first.out_lanes, first.out_channels * first.result_type.width
    sw, cw = score_t.width, clog2(n_out)
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
         f"    reg [{clog2(RESULT_DEPTH)}:0] inflight; wire r_empty; wire [{clog2(RESULT_DEPTH)}:0] r_count;",
         f"    wire slot = (inflight + r_count) < {RESULT_DEPTH};",
         "    wire in_ok = (beat != 0) | slot;  // an image starts only with a result slot free"]
    gates: dict[str, list[str]] = {"in": [], "ser": []}
    # stallable stages upstream of each block input, nearest last: (name, latency from there to here)
    chain: list[tuple[str, int]] = [("in", 1)]
    pad0 = blocks[0][2]
    if pad0 is not None:
        modules.append(pad_stream.generate(pad0))
        v += [f"    wire pad0_v, pad0_pop; wire [{lanes * pb - 1}:0] pad0_d;",
              f"    {pad0.name} u_pad0 (.clk(clk), .rst(rst), .stall(~gate_in), .src_valid(s_tvalid & in_ok), "
              ".src_data(s_tdata), .src_pop(pad0_pop), .out_valid(pad0_v), .out_data(pad0_d));",
              "    assign s_tready = pad0_pop;", "    wire b0_in_v = pad0_v;", f"    wire [{lanes * pb - 1}:0] b0_in_d = pad0_d;"]
        chain = [("in", 2)]
    else:
        v += ["    assign s_tready = ~rst & gate_in & in_ok;", "    wire b0_in_v = accept;",
              f"    wire [{lanes * pb - 1}:0] b0_in_d = s_tdata;"]
    v += [f"    wire b0_v; wire [{q - 1}:0] b0_m; wire [{q * lw - 1}:0] b0_d;",
          "    blk0 u_blk0 (.clk(clk), .rst(rst), .in_valid(b0_in_v), .in_data(b0_in_d), "
          ".out_valid(b0_v), .out_mask(b0_m), .out_data(b0_d));"]
    chain = [(name, lat + first.latency) for name, lat in chain]
    if first.lanes > 1:  # P lanes -> one pixel per clock
        margin = chain[-1][1] + 2
        depth = 1 << clog2(max(16, 2 * margin + first.width // lanes))
        modules += [fifo("feat_fifo", q * lw + q, depth), serializer("feat_ser", q, lw)]
        v += [f"    wire f_empty, f_pop; wire [{clog2(depth)}:0] f_count; wire [{q * lw + q - 1}:0] f_head;",
              "    feat_fifo u_ff (.clk(clk), .rst(rst), .push(b0_v), .din({b0_m, b0_d}), .pop(f_pop), "
              ".dout(f_head), .empty(f_empty), .count(f_count));",
              f"    wire p0_v; wire [{lw - 1}:0] p0_d;",
              "    feat_ser u_fs (.clk(clk), .rst(rst), .stall(~gate_ser), .empty(f_empty), .head(f_head), "
              ".pop(f_pop), .out_valid(p0_v), .out_data(p0_d));"]
        gates[chain[-1][0]].append(f"(f_count <= {depth - margin})")
        chain = [("ser", 1)]
    else:
        v += [f"    wire p0_v = b0_v; wire [{lw - 1}:0] p0_d = b0_d;"]
    prev, prev_w = "p0", lw
    for idx, (spec, _, pad) in enumerate(blocks[1:], start=1):
        src = prev
        if pad is not None:  # a FIFO, then the pad stage (which may stall) in front of the block
            margin = chain[-1][1] + 4
            depth = 1 << clog2(max(16, 2 * margin + 8))
            modules += [fifo(f"pf{idx}_fifo", prev_w, depth), pad_stream.generate(pad)]
            gates[f"pad{idx}"] = []
            v += [f"    wire pf{idx}_empty, pf{idx}_pop; wire [{clog2(depth)}:0] pf{idx}_count; "
                  f"wire [{prev_w - 1}:0] pf{idx}_head;",
                  f"    pf{idx}_fifo u_pf{idx} (.clk(clk), .rst(rst), .push({prev}_v), .din({prev}_d), "
                  f".pop(pf{idx}_pop), .dout(pf{idx}_head), .empty(pf{idx}_empty), .count(pf{idx}_count));",
                  f"    wire pad{idx}_v; wire [{prev_w - 1}:0] pad{idx}_d;",
                  f"    {pad.name} u_pad{idx} (.clk(clk), .rst(rst), .stall(~gate_pad{idx}), "
                  f".src_valid(~pf{idx}_empty), .src_data(pf{idx}_head), .src_pop(pf{idx}_pop), "
                  f".out_valid(pad{idx}_v), .out_data(pad{idx}_d));"]
            gates[chain[-1][0]].append(f"(pf{idx}_count <= {depth - margin})")
            chain = [(f"pad{idx}", 1)]
            src = f"pad{idx}"
        ow = spec.out_channels * spec.result_type.width
        v += [f"    wire b{idx}_v; wire b{idx}_m; wire [{ow - 1}:0] b{idx}_d;",
              f"    blk{idx} u_blk{idx} (.clk(clk), .rst(rst), .in_valid({src}_v), .in_data({src}_d), "
              f".out_valid(b{idx}_v), .out_mask(b{idx}_m), .out_data(b{idx}_d));"]
        chain = [(name, lat + spec.latency) for name, lat in chain]
        prev, prev_w = f"b{idx}", ow
    if first.lanes == 1:
        del gates["ser"]
    v[5:5] = [f"    wire {', '.join(f'gate_{name}' for name in gates)};  // stall a stage: ~gate"]
    v += [f"    assign gate_{name} = {' & '.join(terms or [ALWAYS])};" for name, terms in gates.items()]
    rw = n_out * sw + cw
    v += [f"    wire d_v; wire [{n_out * sw - 1}:0] d_s; wire [{cw - 1}:0] d_c;",
          f"    dense u_dense (.clk(clk), .rst(rst), .in_valid({prev}_v), .in_data({prev}_d), "
          ".out_valid(d_v), .out_scores(d_s), .out_class(d_c));",
          f"    wire [{rw - 1}:0] r_head;",
          "    wire r_pop = m_valid & m_ready;",
          "    result_fifo u_rf (.clk(clk), .rst(rst), .push(d_v), .din({d_c, d_s}), .pop(r_pop), "
          ".dout(r_head), .empty(r_empty), .count(r_count));",
          "    assign m_valid = ~r_empty; assign d_valid = d_v; assign d_class = d_c;",
          f"    assign m_scores = r_head[{n_out * sw - 1}:0]; assign m_class = r_head[{rw - 1}:{n_out * sw}];",
          "    wire start = accept & (beat == 0);",
          "    always @(posedge clk) if (rst) inflight <= 0; else inflight <= inflight + start - d_v;",
          "endmodule\n"]
    modules.append(fifo("result_fifo", rw, RESULT_DEPTH))
    return "\n".join(v)
