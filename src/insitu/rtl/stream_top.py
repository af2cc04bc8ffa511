"""The top module of the streaming core: AXI4-Stream in, the blocks with their elastic joints, the tail, the results.

    s_axis -> [pad 0] -> block 0 (P lanes) -> joint -> block 1 (P1 lanes) -> joint ... -> joint -> tail
        -> result FIFO -> m_*
    joint: [FIFO + serializer (to one lane) or repacker (to Pk lanes)] [FIFO + pad stage]

Blocks never stall. Four kinds of stage may hold back, each only when told to (`stall`): the input
(`s_tready`, or the pad stage of block 0), the serializers, the repackers and the pad stages of later
blocks. Every FIFO in the chain tells the nearest such stage upstream of it to stall while it has less room
than the beats already on their way (the latencies of the blocks in between, plus a margin), so no FIFO ever
overflows and nothing is ever dropped. `s_tready` also falls at the start of an image when every result slot
is already promised; `frame_error` is sticky when `s_tlast` disagrees with the image size.
"""

from __future__ import annotations

from insitu.ir.fixed import FixedType
from insitu.rtl import pad_stream
from insitu.rtl.conv_block import BlockSpec
from insitu.rtl.fifo import fifo, repacker, serializer
from insitu.rtl.vlog import clog2

RESULT_DEPTH = 4
ALWAYS = "1'b1"


class _Joints:
    """Emits the elastic joints between blocks and keeps the back-pressure chain: the nearest stallable stage
    upstream of the current point and the clock edges from it to here."""

    def __init__(self, v: list[str], modules: list[str], gates: dict[str, list[str]]) -> None:
        self.v, self.modules, self.gates = v, modules, gates
        self.chain: tuple[str, int] = ("in", 1)

    def advance(self, edges: int) -> None:
        self.chain = (self.chain[0], self.chain[1] + edges)

    def fifo(self, name: str, push: str, din: str, width: int, extra: int = 0) -> str:
        """A FIFO that stalls the nearest stallable stage upstream; returns its name (ports name_empty, _head,
        _pop, _count)."""
        margin = self.chain[1] + 4
        depth = 1 << clog2(max(16, 2 * margin + 8 + extra))
        self.modules.append(fifo(f"{name}_fifo", width, depth))
        self.v += [f"    wire {name}_empty, {name}_pop; wire [{clog2(depth)}:0] {name}_count; "
                   f"wire [{width - 1}:0] {name}_head;",
                   f"    {name}_fifo u_{name} (.clk(clk), .rst(rst), .push({push}), .din({din}), .pop({name}_pop), "
                   f".dout({name}_head), .empty({name}_empty), .count({name}_count));"]
        self.gates[self.chain[0]].append(f"({name}_count <= {depth - margin})")
        return name

    def stage(self, name: str) -> None:
        """A stallable stage (gate_<name>) starts here, one register deep."""
        self.gates[name] = []
        self.chain = (name, 1)

    def join(self, idx: int, src: tuple[str, int, int], lanes: int, pad, row_beats: int, row: int
             ) -> tuple[str, str]:
        """From producer `src` (prefix, lanes with a mask, pixel width) to the input of block idx with `lanes`
        lanes and optional PadSpec (`row`: pixels per row of the producer's output): (valid, data)."""
        name, q, w = src
        v, m, d = f"{name}_v", f"{name}_m", f"{name}_d"
        if q == 1 and lanes == 1 and pad is None:
            return v, d
        if q > 1 or lanes > 1:  # FIFO, then a serializer (to one lane) or a repacker (to `lanes` lanes)
            f = self.fifo(f"j{idx}", v, f"{{{m}, {d}}}", q * w + q, row_beats)
            kind = "ser" if lanes == 1 else "rep"
            self.stage(f"{kind}{idx}")
            self.modules.append(serializer(f"{kind}{idx}", q, w) if lanes == 1 else
                                repacker(f"{kind}{idx}", q, lanes, w, row))
            self.v += [f"    wire {kind}{idx}_v; wire [{lanes * w - 1}:0] {kind}{idx}_d;",
                       f"    {kind}{idx} u_{kind}{idx} (.clk(clk), .rst(rst), .stall(~gate_{kind}{idx}), "
                       f".empty({f}_empty), .head({f}_head), .pop({f}_pop), .out_valid({kind}{idx}_v), "
                       f".out_data({kind}{idx}_d));"]
            v, d = f"{kind}{idx}_v", f"{kind}{idx}_d"
        if pad is None:
            return v, d
        f = self.fifo(f"pf{idx}", v, d, lanes * w)
        self.stage(f"pad{idx}")
        self.modules.append(pad_stream.generate(pad))
        self.v += [f"    wire pad{idx}_v; wire [{lanes * w - 1}:0] pad{idx}_d;",
                   f"    {pad.name} u_pad{idx} (.clk(clk), .rst(rst), .stall(~gate_pad{idx}), "
                   f".src_valid(~{f}_empty), .src_data({f}_head), .src_pop({f}_pop), "
                   f".out_valid(pad{idx}_v), .out_data(pad{idx}_d));"]
        return f"pad{idx}_v", f"pad{idx}_d"


def generate(top: str, blocks: list, n_out: int, score_t: FixedType, lanes: int, pb: int, beats: int,
             modules: list[str]) -> str:
    """`blocks`: (BlockSpec, conv layer, PadSpec or None) per block; `beats` per real image; the FIFO,
    serializer, repacker and pad modules are appended to `modules`."""
    first: BlockSpec = blocks[0][0]
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
    gates: dict[str, list[str]] = {"in": []}
    body: list[str] = []
    joints = _Joints(body, modules, gates)
    pad0 = blocks[0][2]
    if pad0 is not None:
        modules.append(pad_stream.generate(pad0))
        body += [f"    wire pad0_v, pad0_pop; wire [{lanes * pb - 1}:0] pad0_d;",
                 f"    {pad0.name} u_pad0 (.clk(clk), .rst(rst), .stall(~gate_in), .src_valid(s_tvalid & in_ok), "
                 ".src_data(s_tdata), .src_pop(pad0_pop), .out_valid(pad0_v), .out_data(pad0_d));",
                 "    assign s_tready = pad0_pop;"]
        src_v, src_d = "pad0_v", "pad0_d"
        joints.advance(1)
    else:
        body.append("    assign s_tready = ~rst & gate_in & in_ok;")
        src_v, src_d = "accept", "s_tdata"
    prod = None
    for idx, (spec, _, pad) in enumerate(blocks):
        if idx:
            prev: BlockSpec = blocks[idx - 1][0]
            src_v, src_d = joints.join(idx, prod, spec.lanes, pad, prev.width // prev.lanes, prev.out_hw[1])
        q, ow = spec.out_lanes, spec.out_channels * spec.result_type.width
        body += [f"    wire b{idx}_v; wire [{q - 1}:0] b{idx}_m; wire [{q * ow - 1}:0] b{idx}_d;",
                 f"    blk{idx} u_blk{idx} (.clk(clk), .rst(rst), .in_valid({src_v}), .in_data({src_d}), "
                 f".out_valid(b{idx}_v), .out_mask(b{idx}_m), .out_data(b{idx}_d));"]
        joints.advance(spec.latency)
        prod = (f"b{idx}", q, ow)
    last: BlockSpec = blocks[-1][0]
    tail_v, tail_d = joints.join(len(blocks), prod, 1, None, last.width // last.lanes, last.out_hw[1])  # 1 px/clk
    v.append(f"    wire {', '.join(f'gate_{name}' for name in gates)};  // stall a stage: ~gate")
    v += body
    v += [f"    assign gate_{name} = {' & '.join(terms or [ALWAYS])};" for name, terms in gates.items()]
    rw = n_out * sw + cw
    v += [f"    wire d_v; wire [{n_out * sw - 1}:0] d_s; wire [{cw - 1}:0] d_c;",
          f"    dense u_dense (.clk(clk), .rst(rst), .in_valid({tail_v}), .in_data({tail_d}), "
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
