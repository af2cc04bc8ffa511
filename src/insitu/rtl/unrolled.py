"""The unrolled architecture: a whole sample per clock through a registered pipeline of flat vector ops.

Any model whose layers the IR knows: `ir.lower` turns the graph into flat ops on C-order vectors, and each op
becomes one pipeline stage: `linear` (convolutions of any padding, stride and groups, dense, scale-shift) a
da4ml constant-matrix kernel; `average` a kernel for the exact sums then `vlog.average_module`; `max` a
comparator tree; `requant` `vlog.requant_module`; `add` and `concat` shifted, exact sums or wires. Every op's
output is registered, and branches that arrive early are delayed to meet the later one, so the core takes a
sample every clock (initiation interval 1) whatever the graph. One beat carries the whole input, element i of
its flat C-order vector at [i*B +: B] (for a one-channel image, pixel p at [p*B +: B], as the streaming core's
lanes), so the ports, the simulation and the board shell are the streaming core's with lanes = inputs and one
beat per sample. `s_tready` falls only when every result slot is promised.
"""

from __future__ import annotations

from pathlib import Path

from insitu.errors import ExportError, RTLError
from insitu.ir import lower, support
from insitu.ir.fixed import FixedType
from insitu.ir.lower import FlatOp
from insitu.ir.model import QuantModel
from insitu.rtl.fifo import fifo
from insitu.rtl.kernel import make_kernel
from insitu.rtl.streaming import RESULT_DEPTH, StreamDesign
from insitu.rtl.vlog import average_module, clog2, requant_module, vmax


def _el(bus: str, i: int, w: int) -> str:
    return f"{bus}[{i * w} +: {w}]"


def _fit(bus: str, i: int, w: int, signed: bool, to: int) -> str:
    """Element i of `bus` (w bits, signed or not) as a `to`-bit two's complement value (low bits when narrower)."""
    if to <= w:
        return f"{bus}[{i * w} +: {to}]"
    fill = f"{{{to - w}{{{bus}[{i * w + w - 1}]}}}}" if signed else f"{to - w}'d0"
    return f"{{{fill}, {_el(bus, i, w)}}}"


class _Pipeline:
    """Verilog text of the ops, with each tensor's bus, type and the clock edge at which it is valid."""

    def __init__(self, out_dir: Path, latency_cutoff: float) -> None:
        self.out_dir, self.cutoff = out_dir, latency_cutoff
        self.modules: list[str] = []
        self.body: list[str] = []
        self.kernels: list = []
        self.at: dict[str, tuple[str, int, FixedType, int]] = {}  # name -> (bus, edge, type, size)
        self._delayed: dict[tuple[str, int], str] = {}

    def bus_at(self, name: str, edge: int) -> str:
        """The bus of `name` delayed to be valid at `edge`."""
        bus, t0, t, size = self.at[name]
        for e in range(t0 + 1, edge + 1):
            key = (name, e)
            if key not in self._delayed:
                prev = self._delayed.get((name, e - 1), bus)
                new = f"{bus}_d{e - t0}"
                self.body.append(f"    reg [{size * t.width - 1}:0] {new}; always @(posedge clk) {new} <= {prev};")
                self._delayed[key] = new
        return self._delayed.get((name, edge), bus)

    def _reg(self, j: int, op: FlatOp, elems: list[str], edge: int) -> None:
        w = op.out_type.width
        bus = f"t{j}"
        self.body.append(f"    reg [{op.size * w - 1}:0] {bus};")
        self.body.append(f"    always @(posedge clk) {bus} <= {_concat(elems)};")
        self.at[op.name] = (bus, edge + 1, op.out_type, op.size)

    def _kernel(self, j: int, op: FlatOp, src: str, bias) -> tuple[str, int, int]:
        bus, edge, t, _ = self.at[src]
        k = make_kernel(f"k{j}", op.matrix, bias, FixedType(t.signed, t.width, 0), self.out_dir, self.cutoff)
        self.kernels.append(k)
        self.body.append(f"    wire [{op.size * k.out_width - 1}:0] a{j}; {k.name} u_k{j} (.clk(clk), "
                         f".model_inp({bus}), .model_out(a{j}));")
        return f"a{j}", k.out_width, edge + k.latency

    def add(self, j: int, op: FlatOp) -> None:
        w = op.out_type.width
        if op.kind == "alias":
            self.at[op.name] = self.at[op.inputs[0]]
        elif op.kind == "linear":
            acc, ow, edge = self._kernel(j, op, op.inputs[0], op.bias)
            self._reg(j, op, [_fit(acc, o, ow, True, w) for o in range(op.size)], edge)
        elif op.kind == "average":
            acc, ow, edge = self._kernel(j, op, op.inputs[0], op.bias)
            self.modules.append(average_module(f"avg{j}", ow, op.in_frac, op.count, op.out_type))
            self.body.append(f"    wire [{op.size * w - 1}:0] m{j};")
            self.body += [f"    avg{j} u_avg{j}_{o} (.x({_el(acc, o, ow)}), .y({_el(f'm{j}', o, w)}));"
                          for o in range(op.size)]
            self._reg(j, op, [_el(f"m{j}", o, w) for o in range(op.size)], edge)
        elif op.kind == "max":
            bus, edge, t, _ = self.at[op.inputs[0]]
            self._reg(j, op, [_tree([_el(bus, int(i), t.width) for i in g], t.signed) for g in op.groups], edge)
        elif op.kind == "requant":
            bus, edge, t, _ = self.at[op.inputs[0]]
            iw = t.width + (0 if t.signed else 1)  # requant_module reads a signed integer
            self.modules.append(requant_module(f"rq{j}", iw, op.in_frac, op.relu, op.out_type))
            self.body.append(f"    wire [{op.size * w - 1}:0] m{j};")
            self.body += [f"    rq{j} u_rq{j}_{o} (.x({_fit(bus, o, t.width, t.signed, iw)}), "
                          f".y({_el(f'm{j}', o, w)}));" for o in range(op.size)]
            self._reg(j, op, [_el(f"m{j}", o, w) for o in range(op.size)], edge)
        else:  # add / concat: operands aligned in time, then in fractional bits
            edge = max(self.at[s][1] for s in op.inputs)
            srcs = [(self.bus_at(s, edge), self.at[s][2], self.at[s][3], sh) for s, sh in zip(op.inputs, op.shifts)]
            if op.kind == "add":
                elems = []
                for o in range(op.size):
                    terms = [f"($signed({_fit(b, o, t.width, t.signed, w + 1)}) <<< {sh})" for b, t, _, sh in srcs]
                    self.body.append(f"    wire signed [{w}:0] s{j}_{o} = {' + '.join(terms)};")
                    elems.append(f"s{j}_{o}[{w - 1}:0]")
                self._reg(j, op, elems, edge)
            else:
                parts = [f"({_fit(b, i, t.width, t.signed, w)} << {sh})" for b, t, n, sh in srcs for i in range(n)]
                self.body.append(f"    wire [{op.size * w - 1}:0] t{j} = {_concat(parts)};")
                self.at[op.name] = (f"t{j}", edge, op.out_type, op.size)


def _concat(elems: list[str]) -> str:
    """{elems[n-1], ..., elems[0]} over several lines (Verilator reads at most 40,000 tokens per line)."""
    rev = list(reversed(elems))
    rows = [", ".join(rev[i:i + 16]) for i in range(0, len(rev), 16)]
    return "{" + ",\n        ".join(rows) + "}"


def _tree(elems: list[str], signed: bool) -> str:
    """A balanced comparator tree: the maximum of `elems`."""
    while len(elems) > 1:
        elems = [vmax(elems[i], elems[i + 1], signed) if i + 1 < len(elems) else elems[i]
                 for i in range(0, len(elems), 2)]
    return elems[0]


def generate(model: QuantModel, out_dir: Path, latency_cutoff: float, top: str = "insitu_core") -> StreamDesign:
    support.require(model, "rtl_unrolled", RTLError)
    try:
        ops = lower.lower(model)
    except ExportError as exc:
        raise RTLError(exc.problem, exc.fix) from exc
    out_dir.mkdir(parents=True, exist_ok=True)
    in_t = model.input.out_type
    n_in, ib = ops[0].size, in_t.width
    pipe = _Pipeline(out_dir, latency_cutoff)
    pipe.at[ops[0].name] = ("s_tdata", 0, in_t, n_in)
    for j, op in enumerate(ops[1:], start=1):
        pipe.add(j, op)
    last_vec, t_end, score_t, n_cls = pipe.at[ops[-1].name]
    sw, cw = score_t.width, clog2(n_cls)
    v = [f"module {top} (input clk, input rst,",
         f"    input [{n_in * ib - 1}:0] s_tdata, input s_tvalid, output s_tready, input s_tlast,",
         f"    output m_valid, input m_ready, output [{n_cls * sw - 1}:0] m_scores, output [{cw - 1}:0] m_class,",
         f"    output reg frame_error, output d_valid, output [{cw - 1}:0] d_class);",
         "    wire accept = s_tvalid & s_tready;"]
    body = list(pipe.body)
    if t_end > 0:
        body.append(f"    reg [{t_end - 1}:0] vp; always @(posedge clk) vp <= rst ? {t_end}'d0 : "
                    + (f"{{vp[{t_end - 2}:0], accept}};" if t_end > 1 else "accept;"))
        last_v = f"vp[{t_end - 1}]"
    else:
        last_v = "accept"
    tree, depth = _argmax_tree(last_vec, n_cls, sw, cw, "$signed" if score_t.signed else "")
    body += tree
    rw = n_cls * sw + cw
    # the result FIFO holds every sample in flight, so s_tready stays high at one sample per clock
    pipeline = t_end + depth + 2
    rdepth = max(RESULT_DEPTH, 1 << clog2(pipeline + 2))
    body += [f"    reg d_v; reg [{n_cls * sw - 1}:0] d_s; reg [{cw - 1}:0] d_c;",
             *(_delay_lines(last_v, last_vec, n_cls * sw, depth)),
             "    always @(posedge clk) if (rst) frame_error <= 1'b0; else if (accept & ~s_tlast) frame_error <= 1'b1;",
             f"    wire r_empty; wire [{clog2(rdepth)}:0] r_count; wire [{rw - 1}:0] r_head;",
             "    wire r_pop = m_valid & m_ready;",
             "    result_fifo u_rf (.clk(clk), .rst(rst), .push(d_v), .din({d_c, d_s}), .pop(r_pop), .dout(r_head), "
             ".empty(r_empty), .count(r_count));",
             "    assign m_valid = ~r_empty; assign d_valid = d_v; assign d_class = d_c;",
             f"    assign m_scores = r_head[{n_cls * sw - 1}:0]; assign m_class = r_head[{rw - 1}:{n_cls * sw}];",
             f"    reg [{clog2(rdepth) + 1}:0] inflight;",
             "    always @(posedge clk) if (rst) inflight <= 0; else inflight <= inflight + accept - d_v;",
             f"    assign s_tready = ~rst & ((inflight + r_count) < {rdepth});",
             "endmodule\n"]
    text = [*dict.fromkeys(pipe.modules), "\n".join(v + body), fifo("result_fifo", rw, rdepth)]
    path = out_dir / f"{top}.v"
    path.write_text("`timescale 1ns/1ps\n" + "\n".join(text))
    shape = model.input.shape
    h, w = (shape[1], shape[2]) if len(shape) == 3 and shape[0] == 1 else (1, n_in)
    files = [f for k in pipe.kernels for f in k.files]
    return StreamDesign(top, n_in, ib, h, w, n_cls, score_t, [path, *files], [k.to_dict() for k in pipe.kernels],
                        pipeline, architecture="unrolled")


def _delay_lines(valid: str, vec: str, width: int, depth: int) -> list[str]:
    """Valid and scores delayed by `depth` cycles alongside the argmax tree, then the decision registers."""
    if depth == 0:
        return [f"    always @(posedge clk) begin d_v <= {valid} & ~rst; d_s <= {vec}; d_c <= t0_i0; end"]
    out = [f"    reg [{depth - 1}:0] av; reg [{width - 1}:0] as_ [0:{depth - 1}];",
           f"    always @(posedge clk) begin av <= rst ? 0 : {{av, {valid}}}; as_[0] <= {vec}; end"]
    out += [f"    always @(posedge clk) as_[{d}] <= as_[{d - 1}];" for d in range(1, depth)]
    out.append(f"    always @(posedge clk) begin d_v <= av[{depth - 1}] & ~rst; d_s <= as_[{depth - 1}]; "
               f"d_c <= t{depth}_i0; end")
    return out


def _argmax_tree(vec: str, n: int, sw: int, cw: int, sgn: str) -> tuple[list[str], int]:
    """Registered binary-tree argmax (ties to the lower index, as numpy): one register level per tree level,
    so the decision adds clog2(n) cycles and the clock is not limited by a chain of n comparators."""
    lines = [f"    wire [{sw - 1}:0] t0_s{k} = {vec}[{k * sw} +: {sw}]; wire [{cw - 1}:0] t0_i{k} = {cw}'d{k};"
             for k in range(n)]
    level, count = 0, n
    while count > 1:
        nxt = (count + 1) // 2
        for k in range(nxt):
            a, b = 2 * k, 2 * k + 1
            lines.append(f"    reg [{sw - 1}:0] t{level + 1}_s{k}; reg [{cw - 1}:0] t{level + 1}_i{k};")
            if b < count:
                g = f"{sgn}(t{level}_s{b}) > {sgn}(t{level}_s{a})"
                lines.append(f"    always @(posedge clk) begin t{level + 1}_s{k} <= ({g}) ? t{level}_s{b} : t{level}_s{a}; "
                             f"t{level + 1}_i{k} <= ({g}) ? t{level}_i{b} : t{level}_i{a}; end")
            else:
                lines.append(f"    always @(posedge clk) begin t{level + 1}_s{k} <= t{level}_s{a}; "
                             f"t{level + 1}_i{k} <= t{level}_i{a}; end")
        level, count = level + 1, nxt
    return lines, level


def has_convolutions(model: QuantModel) -> bool:
    """2-D convolutions: what the streaming core streams (1-D models go unrolled)."""
    return any(getattr(layer, "kind", "") == "conv2d" for layer in model.layers)


def architecture_for(model: QuantModel, requested: str = "auto") -> str:
    """`auto`: streaming for models with 2-D convolutions, unrolled (a sample per clock) for the others."""
    if requested != "auto":
        return requested
    return "streaming" if has_convolutions(model) else "unrolled"

