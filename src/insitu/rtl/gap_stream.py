"""Global average (or max) pooling + dense as the streaming tail, then the decision (argmax).

Pixels of the last feature map arrive one per `in_valid` in raster order, channel c of a pixel at
[c*XB +: XB]. One accumulator per channel sums the image's pixels exactly; after the last pixel the sums
become the channel means cast to the GAP layer's type (`vlog.average_module`, as `reference.average`), and a
da4ml constant-matrix kernel computes the dense layer on them (an adder graph: no multipliers, no ROM). Then
the optional requantisation, the argmax, and `out_valid`. The tail takes one pixel per clock with no stall:
a new image's sums start while the previous image's means go through the kernel.
"""

from __future__ import annotations

from pathlib import Path

from insitu.ir.fixed import FixedType
from insitu.ir.layers import Dense, GlobalAvgPool, GlobalMaxPool
from insitu.rtl.kernel import Kernel, make_kernel
from insitu.rtl.vlog import argmax_chain, average_module, clog2, requant_module


def generate(name: str, gap: GlobalAvgPool | GlobalMaxPool, dense: Dense, hw: tuple[int, int], channels: int,
             x_type: FixedType, x_frac: int, requant: tuple[bool, FixedType] | None, out_dir: Path,
             latency_cutoff: float) -> tuple[str, FixedType, Kernel, int]:
    """Verilog of the tail module; returns it, the score type, the dense kernel and the latency (edges from
    the last pixel's in_valid to out_valid). A global max pooling keeps a running maximum per channel instead
    of the sum, and the kernel reads it in the input's type."""
    npos = hw[0] * hw[1]
    C, XB = channels, x_type.width
    is_max = isinstance(gap, GlobalMaxPool)
    gt = x_type if is_max else gap.out_type
    SW_ = XB + 1 if is_max else XB + clog2(npos) + 2  # signed: every partial sum of npos values of x_type
    kernel = make_kernel(f"{name}_k", dense.weight, dense.bias, FixedType(gt.signed, gt.width, 0), out_dir,
                         latency_cutoff)
    OW, L, n_out = kernel.out_width, kernel.latency, dense.weight.shape[0]
    score_t = requant[1] if requant else FixedType(True, OW, dense.out_type.frac)
    SW = score_t.width
    cw = clog2(n_out)
    v = [] if is_max else [average_module(f"{name}_avg", SW_, x_frac, npos, gt)]
    if requant:
        v.append(requant_module(f"{name}_rq", OW, dense.out_type.frac, requant[0], requant[1]))
    v.append(f"module {name} (input clk, input rst, input in_valid, input [{C * XB - 1}:0] in_data,\n"
             f"    output reg out_valid, output reg [{n_out * SW - 1}:0] out_scores, output reg [{cw - 1}:0] out_class);")
    pbits = clog2(npos)
    v.append(f"    reg [{pbits - 1}:0] pos; wire last = (pos == {npos - 1});")
    v.append("    always @(posedge clk) if (rst) pos <= 0; else if (in_valid) "
             f"pos <= last ? {pbits}'d0 : pos + 1'b1;")
    ext = (lambda c: f"$signed(in_data[{c * XB} +: {XB}])") if x_type.signed else \
        (lambda c: f"$signed({{1'b0, in_data[{c * XB} +: {XB}]}})")
    v.append(f"    reg tv; reg [{C * SW_ - 1}:0] tot;")
    for c in range(C):
        if is_max:
            v.append(f"    reg signed [{SW_ - 1}:0] acc{c}; wire signed [{SW_ - 1}:0] nxt{c} = "
                     f"(pos == 0 || {ext(c)} > acc{c}) ? {ext(c)} : acc{c};")
        else:
            v.append(f"    reg signed [{SW_ - 1}:0] acc{c}; wire signed [{SW_ - 1}:0] nxt{c} = "
                     f"(pos == 0 ? {SW_}'sd0 : acc{c}) + {ext(c)};")
    upd = " ".join(f"acc{c} <= nxt{c};" for c in range(C))
    tot = "{" + ", ".join(f"nxt{c}" for c in reversed(range(C))) + "}"
    v.append(f"    always @(posedge clk) begin tv <= in_valid & last & ~rst; if (in_valid) begin {upd} end\n"
             f"        if (in_valid & last) tot <= {tot}; end")
    # the means, registered: the kernel's input
    GW = gt.width
    v.append(f"    wire [{C * GW - 1}:0] mw; reg [{C * GW - 1}:0] mean; reg mv;")
    if is_max:
        v += [f"    assign mw[{c * GW} +: {GW}] = tot[{c * SW_} +: {GW}];" for c in range(C)]
    else:
        v += [f"    {name}_avg u_avg{c} (.x(tot[{c * SW_} +: {SW_}]), .y(mw[{c * GW} +: {GW}]));" for c in range(C)]
    v.append("    always @(posedge clk) begin mv <= tv & ~rst; mean <= mw; end")
    v.append(f"    wire [{n_out * OW - 1}:0] acc_k; {kernel.name} u_k (.clk(clk), .model_inp(mean), .model_out(acc_k));")
    if L > 0:
        v.append(f"    reg [{L - 1}:0] kv; always @(posedge clk) kv <= rst ? 0 : {{kv, mv}};" if L > 1 else
                 "    reg [0:0] kv; always @(posedge clk) kv <= mv & ~rst;")
        kvalid = f"kv[{L - 1}]"
    else:
        kvalid = "mv"
    for k in range(n_out):
        if requant:
            v.append(f"    wire [{SW - 1}:0] sc{k}; {name}_rq r{k} (.x(acc_k[{k * OW} +: {OW}]), .y(sc{k}));")
        else:
            v.append(f"    wire [{SW - 1}:0] sc{k} = acc_k[{k * OW} +: {OW}];")
    am, idx = argmax_chain([f"sc{k}" for k in range(n_out)], SW, score_t.signed)
    v += am
    scores = "{" + ", ".join(f"sc{k}" for k in reversed(range(n_out))) + "}"
    v.append(f"    always @(posedge clk) begin out_valid <= {kvalid} & ~rst; out_scores <= {scores}; "
             f"out_class <= {idx}; end")
    v.append("endmodule\n")
    return "\n".join(v), score_t, kernel, L + 3

