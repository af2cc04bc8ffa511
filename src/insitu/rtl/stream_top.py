"""The top module of the streaming core: AXI4-Stream in, the blocks with their elastic joints, the tail, the results.

    s_axis -> [pad 0] -> block 0 (P lanes) -> joint -> block 1 (P1 lanes) -> joint ... -> joint -> tail
        -> result FIFO -> m_*
    joint: [FIFO + serializer (to one lane) or repacker (to Pk lanes)] [FIFO + pad stage]

Blocks never stall. Four kinds of stage may hold back, each only when told to (`stall`): the input
(`s_tready`, or the pad stage of block 0), the serializers, the repackers and the pad stages of later
blocks. Every FIFO in the chain tells the nearest such stage upstream of it to stall while it has less room
than the beats already on their way (the latencies of the blocks in between, one clock for the gate, which is a
register, and a margin), so no FIFO ever overflows and nothing is ever dropped. `s_tready` also falls at the
start of an image when every result slot is already promised; `frame_error` is sticky when `s_tlast`
disagrees with the image size.
"""

from __future__ import annotations

from insitu.ir.fixed import FixedType
from insitu.rtl import pad_stream
from insitu.rtl.stream_plan import Block, Join, Point
from insitu.rtl.fifo import fifo, repacker, serializer
from insitu.rtl.vlog import clog2, requant_module

RESULT_DEPTH = 4
ALWAYS = "1'b1"


Chain = tuple[str, int]  # the nearest stallable stage upstream and the clock edges from it


class _Joints:
    """Emits the elastic joints between stages and the back-pressure gates: every FIFO stalls the nearest
    stallable stage upstream of it (on its own path) while its room is less than the beats on their way."""

    def __init__(self, v: list[str], modules: list[str], gates: dict[str, list[str]]) -> None:
        self.v, self.modules, self.gates = v, modules, gates

    def fifo(self, name: str, push: str, din: str, width: int, chain: Chain, extra: int = 0,
             depth: int = 0) -> str:
        """A joint's FIFO (registered head: the stage after it selects lanes from it), or with `depth` a skip
        path's (block RAM, two images deep)."""
        margin = chain[1] + 5  # the beats on their way, one more for the gate's register, plus a margin
        registered = not depth
        depth = depth or 1 << clog2(max(16, 2 * margin + 8 + extra))
        self.modules.append(fifo(f"{name}_fifo", width, depth, registered))
        self.v += [f"    wire {name}_empty, {name}_pop; wire [{clog2(depth)}:0] {name}_count; "
                   f"wire [{width - 1}:0] {name}_head;",
                   f"    {name}_fifo u_{name} (.clk(clk), .rst(rst), .push({push}), .din({din}), .pop({name}_pop), "
                   f".dout({name}_head), .empty({name}_empty), .count({name}_count));"]
        self.gates[chain[0]].append(f"({name}_count <= {depth - margin})")
        return name

    def stage(self, name: str) -> Chain:
        """A stallable stage (gate_<name>) starts here, one register deep."""
        self.gates[name] = []
        return (name, 1)

    def join(self, tag: str, src: Point, chain: Chain, lanes: int, pad, row_beats: int
             ) -> tuple[str, str, Chain]:
        """From point `src` to a consumer with `lanes` lanes and optional PadSpec: (valid, data, chain)."""
        name, q, w = src.prefix, src.lanes, src.pixel_bits
        v, m, d = f"{name}_v", f"{name}_m", f"{name}_d"
        if q == 1 and lanes == 1 and pad is None:
            return v, d, chain
        if q > 1 or lanes > 1:  # FIFO, then a serializer (to one lane) or a repacker (to `lanes` lanes)
            f = self.fifo(f"q{tag}", v, f"{{{m}, {d}}}", q * w + q, chain, row_beats)
            kind = f"ser{tag}" if lanes == 1 else f"rep{tag}"
            chain = self.stage(kind)
            self.modules.append(serializer(kind, q, w) if lanes == 1 else repacker(kind, q, lanes, w, src.width))
            self.v += [f"    wire {kind}_v; wire [{lanes * w - 1}:0] {kind}_d;",
                       f"    {kind} u_{kind} (.clk(clk), .rst(rst), .stall(~gate_{kind}), .empty({f}_empty), "
                       f".head({f}_head), .pop({f}_pop), .out_valid({kind}_v), .out_data({kind}_d));"]
            v, d = f"{kind}_v", f"{kind}_d"
        if pad is None:
            return v, d, chain
        f = self.fifo(f"pf{tag}", v, d, lanes * w, chain)
        chain = self.stage(f"pad{tag}")
        self.modules.append(pad_stream.generate(pad))
        self.v += [f"    wire pad{tag}_v; wire [{lanes * w - 1}:0] pad{tag}_d;",
                   f"    {pad.name} u_pad{tag} (.clk(clk), .rst(rst), .stall(~gate_pad{tag}), "
                   f".src_valid(~{f}_empty), .src_data({f}_head), .src_pop({f}_pop), "
                   f".out_valid(pad{tag}_v), .out_data(pad{tag}_d));"]
        return f"pad{tag}_v", f"pad{tag}_d", chain

    def merge(self, node: Join, chains: dict[str, Chain]) -> Chain:
        """A residual add or a concatenation: both operands repacked to the join's lanes, each into a FIFO deep
        enough for two images (the skip path runs ahead of the other by up to the window geometry), popped
        together; lane by lane the aligned sum or the channels of both, then the optional requant."""
        out, L, jn = node.out, node.out.lanes, node.name
        heads = []
        for side, src in zip("ab", node.srcs):
            v, d, chain = self.join(f"{jn}{side}", src, chains[src.prefix], L, None, src.width)
            beats = src.height * -(-src.width // L)
            f = self.fifo(f"{jn}{side}", v, d, L * src.pixel_bits, chain, depth=1 << clog2(2 * beats + 16))
            heads.append((f, src))
        chain = self.stage(jn)
        (fa, a), (fb, b) = heads
        t, nbj = node.out_type, -(-out.width // L)
        last = out.width - (nbj - 1) * L
        self.v += [f"    wire {jn}_fire = gate_{jn} & ~{fa}_empty & ~{fb}_empty;",
                   f"    assign {fa}_pop = {jn}_fire; assign {fb}_pop = {jn}_fire;",
                   f"    reg [{clog2(nbj) - 1}:0] {jn}_bx;",
                   f"    always @(posedge clk) if (rst) {jn}_bx <= 0; else if ({jn}_fire) "
                   f"{jn}_bx <= ({jn}_bx == {nbj - 1}) ? 0 : {jn}_bx + 1'b1;"]
        lanes_out = []
        rq = node.requant
        if rq is not None:
            iw = t.width + (0 if t.signed else 1)
            self.modules.append(requant_module(f"{jn}_rq", iw, t.frac, rq.relu, rq.out_type))
        for lane in range(L):
            chans = []
            operands = [(fa, a, node.shifts[0]), (fb, b, node.shifts[1])]
            if node.kind == "add":
                for c in range(a.channels):
                    terms = [f"($signed({_fit(f'{f}_head', lane * s.pixel_bits + c * s.type.width, s.type, t.width + 1)})"
                             f" <<< {sh})" for f, s, sh in operands]
                    chans.append(f"{jn}_s{lane}_{c}")
                    self.v.append(f"    wire signed [{t.width}:0] {jn}_s{lane}_{c} = {' + '.join(terms)};")
            else:
                for f, s, sh in operands:
                    for c in range(s.channels):
                        nm = f"{jn}_s{lane}_{len(chans)}"
                        ex = _fit(f"{f}_head", lane * s.pixel_bits + c * s.type.width, s.type, t.width + 1)
                        self.v.append(f"    wire signed [{t.width}:0] {nm} = $signed({ex}) <<< {sh};")
                        chans.append(nm)
            vals = []
            for k, nm in enumerate(chans):
                if rq is None:
                    vals.append(f"{nm}[{t.width - 1}:0]")
                else:
                    ow = rq.out_type.width
                    self.v.append(f"    wire [{ow - 1}:0] {nm}_q; {jn}_rq u_{nm} (.x({nm}[{iw - 1}:0]), .y({nm}_q));")
                    vals.append(f"{nm}_q")
            lanes_out.append("{" + ", ".join(reversed(vals)) + "}")
        mask = f"({jn}_bx == {nbj - 1}) ? {L}'d{(1 << last) - 1} : {L}'d{(1 << L) - 1}"
        self.v += [f"    reg {jn}_v; reg [{L - 1}:0] {jn}_m; reg [{L * out.pixel_bits - 1}:0] {jn}_d;",
                   f"    always @(posedge clk) begin {jn}_v <= {jn}_fire & ~rst; {jn}_m <= {mask}; "
                   f"{jn}_d <= {{{', '.join(reversed(lanes_out))}}}; end"]
        return chain


def _fit(bus: str, lo: int, t: FixedType, to: int) -> str:
    """The t-typed field of `bus` at bit `lo` as a `to`-bit two's complement value."""
    fill = f"{{{to - t.width}{{{bus}[{lo + t.width - 1}]}}}}" if t.signed else f"{to - t.width}'d0"
    return f"{{{fill}, {bus}[{lo} +: {t.width}]}}"


def generate(top: str, nodes: list, last: Point, n_out: int, score_t: FixedType, lanes: int, pb: int, beats: int,
             modules: list[str]) -> str:
    """`nodes`: the plan's blocks and joins in order, `last` the point the tail reads; `beats` per real image;
    the FIFO, serializer, repacker, pad and requant modules are appended to `modules`."""
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
    chains: dict[str, Chain] = {}
    for idx, node in enumerate(nodes):
        if isinstance(node, Join):
            chains[node.out.prefix] = joints.merge(node, chains)
            continue
        spec, pad, bi = node.spec, node.pad, node.out.prefix[1:]
        if node.src.prefix == "x0":
            if pad is not None:
                modules.append(pad_stream.generate(pad))
                body += [f"    wire pad0_v, pad0_pop; wire [{lanes * pb - 1}:0] pad0_d;",
                         f"    {pad.name} u_pad0 (.clk(clk), .rst(rst), .stall(~gate_in), "
                         ".src_valid(s_tvalid & in_ok), .src_data(s_tdata), .src_pop(pad0_pop), "
                         ".out_valid(pad0_v), .out_data(pad0_d));", "    assign s_tready = pad0_pop;"]
                src_v, src_d, chain = "pad0_v", "pad0_d", ("in", 2)
            else:
                # block 0 reads a register, not `accept`: its valid enables every line buffer and window
                # register of every lane, a fan-out that would otherwise end the path through s_tready
                body += ["    assign s_tready = ~rst & gate_in & in_ok;",
                         f"    reg in_v; reg [{lanes * pb - 1}:0] in_d;",
                         "    always @(posedge clk) begin in_v <= accept; in_d <= s_tdata; end"]
                src_v, src_d, chain = "in_v", "in_d", ("in", 2)
        else:
            prev = next(n for n in nodes if n.out is node.src)
            row_beats = prev.spec.width // prev.spec.lanes if isinstance(prev, Block) else node.src.width
            src_v, src_d, chain = joints.join(bi, node.src, chains[node.src.prefix], spec.lanes, pad, row_beats)
        q, ow = spec.out_lanes, spec.out_channels * spec.result_type.width
        body += [f"    wire b{bi}_v; wire [{q - 1}:0] b{bi}_m; wire [{q * ow - 1}:0] b{bi}_d;",
                 f"    blk{bi} u_blk{bi} (.clk(clk), .rst(rst), .in_valid({src_v}), .in_data({src_d}), "
                 f".out_valid(b{bi}_v), .out_mask(b{bi}_m), .out_data(b{bi}_d));"]
        chains[node.out.prefix] = (chain[0], chain[1] + spec.latency)
    tail_v, tail_d, _ = joints.join("t", last, chains[last.prefix], 1, None, last.width)  # the tail: 1 px/clk
    # stall a stage: ~gate. A gate with terms is a register (a clock late, which the FIFO margins count): its
    # FIFO-count comparisons would otherwise lead the stage's whole pop and lane-selection logic
    held = [name for name, terms in gates.items() if terms]
    free = [name for name, terms in gates.items() if not terms]
    v += [f"    reg {', '.join(f'gate_{name}' for name in held)};"] if held else []
    v += [f"    wire {', '.join(f'gate_{name}' for name in free)};"] if free else []
    v += body
    v += [f"    always @(posedge clk) gate_{name} <= ~rst & {' & '.join(gates[name])};" for name in held]
    v += [f"    assign gate_{name} = {ALWAYS};" for name in free]
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
