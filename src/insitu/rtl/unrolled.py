"""The unrolled architecture: a whole sample per clock through a registered chain of da4ml kernels.

For models without convolutions (MLPs, e.g. one lidar column of beams x features): Input -> Flatten ->
Dense -> [Requant] -> Dense -> ... -> [Requant]. One beat carries the whole input (every pixel of every
channel, pixel-major like the streaming core: pixel p at [p*C*B +: C*B], channel c inside it), so the ports,
the simulation and the board shell are the streaming core's, with lanes = H*W and one beat per sample.
Initiation interval 1; `s_tready` falls only when every result slot is promised.
"""

from __future__ import annotations

from pathlib import Path

from insitu.errors import RTLError
from insitu.ir import support
from insitu.ir.fixed import FixedType
from insitu.ir.model import Dense, Flatten, QuantModel, Requant
from insitu.rtl.fifo import fifo
from insitu.rtl.kernel import make_kernel
from insitu.rtl.streaming import RESULT_DEPTH, StreamDesign
from insitu.rtl.vlog import clog2, requant_module


def _plan(model: QuantModel) -> list[tuple[Dense, Requant | None]]:
    layers = model.layers[1:]
    if layers and isinstance(layers[0], Flatten):
        layers = layers[1:]
    out, i = [], 0
    while i < len(layers):
        d = layers[i]
        if not isinstance(d, Dense):
            raise RTLError(f"the unrolled RTL supports Dense and Requant layers only, not {type(d).__name__} "
                           f"({d.name})", "use the streaming architecture for convolutional models")
        rq = layers[i + 1] if i + 1 < len(layers) and isinstance(layers[i + 1], Requant) else None
        out.append((d, rq))
        i += 2 if rq else 1
    if not out:
        raise RTLError("the model has no dense layer", "export a model with at least one Dense layer")
    return out


def generate(model: QuantModel, out_dir: Path, latency_cutoff: float, top: str = "insitu_core") -> StreamDesign:
    support.require(model, "rtl_unrolled", RTLError)
    chain = _plan(model)
    out_dir.mkdir(parents=True, exist_ok=True)
    c, h, w = model.input.shape
    in_t = model.input.out_type
    n_in, ib = c * h * w, in_t.width
    text, files, kernels = [], [], []
    # flatten order (c, y, x) from the bus order (pixel-major, channel-minor)
    flat = [f"s_tdata[{((i % (h * w)) * c + i // (h * w)) * ib} +: {ib}]" for i in range(n_in)]
    v = [f"module {top} (input clk, input rst,",
         f"    input [{n_in * ib - 1}:0] s_tdata, input s_tvalid, output s_tready, input s_tlast,"]
    body = [f"    wire [{n_in * ib - 1}:0] x0 = {{{', '.join(reversed(flat))}}};",
            "    wire accept = s_tvalid & s_tready;", "    wire v0 = accept;"]
    cur, cur_t, cur_frac = "x0", FixedType(in_t.signed, in_t.width, 0), in_t.frac
    score_t = None
    for j, (dense, rq) in enumerate(chain):
        k = make_kernel(f"fc{j}_k", dense.weight, dense.bias, cur_t, out_dir, latency_cutoff)
        kernels.append(k)
        files += list(k.files)
        n_out, ow = dense.weight.shape[0], k.out_width
        body.append(f"    wire [{n_out * ow - 1}:0] a{j}; {k.name} u_k{j} (.clk(clk), .model_inp({cur}), "
                    f".model_out(a{j}));")
        body.append(f"    reg [{k.latency - 1}:0] vd{j}; always @(posedge clk) vd{j} <= rst ? 0 : "
                    f"{{vd{j}[{max(k.latency - 2, 0)}:0], v{j}}};" if k.latency > 1 else
                    f"    reg vd{j}; always @(posedge clk) vd{j} <= v{j} & ~rst;")
        if rq is not None:
            rt = rq.out_type
            text.append(requant_module(f"rq{j}", ow, dense.out_type.frac, rq.relu, rt))
            body.append(f"    wire [{n_out * rt.width - 1}:0] q{j}w;")
            body += [f"    rq{j} u_rq{j}_{o} (.x(a{j}[{o * ow} +: {ow}]), .y(q{j}w[{o * rt.width} +: {rt.width}]));"
                     for o in range(n_out)]
            body.append(f"    reg [{n_out * rt.width - 1}:0] q{j}; reg v{j + 1}; always @(posedge clk) begin "
                        f"q{j} <= q{j}w; v{j + 1} <= vd{j}[{k.latency - 1}] & ~rst; end")
            cur, cur_t, cur_frac = f"q{j}", FixedType(rt.signed, rt.width, 0), rt.frac
            score_t = rt
            last_v, last_vec, last_w = f"v{j + 1}", f"q{j}", rt.width
        else:
            body.append(f"    reg [{n_out * ow - 1}:0] q{j}; reg v{j + 1}; always @(posedge clk) begin "
                        f"q{j} <= a{j}; v{j + 1} <= vd{j}[{k.latency - 1}] & ~rst; end")
            score_t = FixedType(True, ow, dense.out_type.frac)
            cur, cur_t = f"q{j}", FixedType(True, ow, 0)
            last_v, last_vec, last_w = f"v{j + 1}", f"q{j}", ow
        if j + 1 < len(chain) and rq is None:
            raise RTLError(f"{dense.name}: a dense layer feeding another needs a requant between them",
                           "add an activation quantizer after every hidden dense layer")
    n_cls = chain[-1][0].weight.shape[0]
    sw, cw = last_w, clog2(n_cls)
    sgn = "$signed" if score_t.signed else ""
    tree, depth = _argmax_tree(last_vec, n_cls, sw, cw, sgn)
    body += tree
    rw = n_cls * sw + cw
    # the result FIFO holds every column in flight, so s_tready stays high at one column per clock
    pipeline = sum(k.latency + 1 for k in kernels) + depth + 2
    rdepth = max(RESULT_DEPTH, 1 << clog2(pipeline + 2))
    v += [f"    output m_valid, input m_ready, output [{n_cls * sw - 1}:0] m_scores, output [{cw - 1}:0] m_class,",
          f"    output reg frame_error, output d_valid, output [{cw - 1}:0] d_class);"]
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
    text.append("\n".join(v + body))
    text.append(fifo("result_fifo", rw, rdepth))
    path = out_dir / f"{top}.v"
    path.write_text("`timescale 1ns/1ps\n" + "\n".join(text))
    if c != 1:
        raise RTLError(f"the unrolled core takes single-channel inputs; this model has {c} channels",
                       "flatten the channels into the width of the input")
    return StreamDesign(top, h * w, ib, 1, h * w, n_cls, score_t, [path, *files], [k.to_dict() for k in kernels],
                        architecture="unrolled")


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
    return any(getattr(layer, "kind", "") in ("conv2d", "conv1d") for layer in model.layers)


def architecture_for(model: QuantModel, requested: str = "auto") -> str:
    """`auto`: streaming for models with convolutions, unrolled (a sample per clock) for the others."""
    if requested != "auto":
        return requested
    return "streaming" if has_convolutions(model) else "unrolled"

