"""Flatten + dense as a streaming accumulation, then the decision (argmax).

Pixels of the last feature map arrive one per `in_valid` in raster order; pixel (y, x) with channel c is
flattened input c*H*W + y*W + x (channel-major, as in the IR). Each pixel multiplies its C values by the
weight columns read from a ROM at its position and adds them into one accumulator per class, which starts
at the bias. After the last pixel the scores (optionally requantised) and the argmax leave on out_valid.
"""

from __future__ import annotations

import numpy as np

from insitu.ir.fixed import FixedType
from insitu.rtl.vlog import clog2, const, requant_module


def acc_type(weight: np.ndarray, bias: np.ndarray, x_type: FixedType) -> FixedType:
    """An accumulator wide enough for every partial sum (not only the final one)."""
    w = weight.astype(np.int64)
    pos, neg = np.clip(w, 0, None), np.clip(w, None, 0)
    hi = pos.sum(1) * x_type.max_int + neg.sum(1) * x_type.min_int
    lo = neg.sum(1) * x_type.max_int + pos.sum(1) * x_type.min_int
    return FixedType.exact(int(min(0, (lo + np.minimum(bias, 0)).min())), int((hi + np.maximum(bias, 0)).max()), 0)


def generate(name: str, weight: np.ndarray, bias: np.ndarray, hw: tuple[int, int], channels: int,
             x_type: FixedType, w_type: FixedType, out_frac: int, requant: tuple[bool, FixedType] | None) -> tuple[str, FixedType]:
    """Verilog of the dense module; returns it and the type of the scores it outputs."""
    n_out = weight.shape[0]
    npos = hw[0] * hw[1]
    C, XB, WB = channels, x_type.width, w_type.width
    at = acc_type(weight, bias, x_type)
    AW = at.width
    score_t = requant[1] if requant else FixedType(True, AW, out_frac)
    SW = score_t.width
    cw = clog2(n_out)
    v = []
    if requant:
        v.append(requant_module(f"{name}_rq", AW, out_frac, requant[0], requant[1]))
    v.append(f"module {name} (input clk, input rst, input in_valid, input [{C * XB - 1}:0] in_data,\n"
             f"    output reg out_valid, output reg [{n_out * SW - 1}:0] out_scores, output reg [{cw - 1}:0] out_class);")
    pbits = clog2(npos)
    v.append(f"    reg [{pbits - 1}:0] pos;")
    v.append("    always @(posedge clk) if (rst) pos <= 0; else if (in_valid) "
             f"pos <= (pos == {npos - 1}) ? {pbits}'d0 : pos + 1'b1;")
    RW = n_out * C * WB
    v.append(f"    reg [{RW - 1}:0] rom; reg [{C * XB - 1}:0] x1; reg v1, first1, last1;")
    v.append("    always @(posedge clk) begin\n        v1 <= in_valid & ~rst; x1 <= in_data; "
             f"first1 <= (pos == 0); last1 <= (pos == {npos - 1});\n        case (pos)")
    for p in range(npos):
        word = 0
        for k in range(n_out):
            for c in range(C):
                word |= (int(weight[k, c * npos + p]) & ((1 << WB) - 1)) << ((k * C + c) * WB)
        v.append(f"            {p}: rom <= {RW}'h{word:x};")
    v.append(f"            default: rom <= {RW}'h0;\n        endcase\n    end")
    # pipeline: ROM word re-registered (block-RAM outputs are slow), products registered, then an adder
    # tree with a register after every 4-input level, then the accumulation
    v.append(f"    reg [{RW - 1}:0] w2; reg [{C * XB - 1}:0] x2;")
    v.append("    always @(posedge clk) begin w2 <= rom; x2 <= x1; end")
    xs = "$signed({1'b0, x2[%d +: %d]})" if not x_type.signed else "$signed(x2[%d +: %d])"
    pw0 = WB + XB + 1
    level = [[f"p{k}_{c}" for c in range(C)] for k in range(n_out)]
    prods = []
    for k in range(n_out):
        for c in range(C):
            v.append(f"    reg signed [{pw0 - 1}:0] p{k}_{c};")
            prods.append(f"p{k}_{c} <= $signed(w2[{(k * C + c) * WB} +: {WB}]) * {xs % (c * XB, XB)};")
    v.append("    always @(posedge clk) begin\n        " + "\n        ".join(prods) + "\n    end")
    depth, width = 0, pw0
    while len(level[0]) > 1:
        depth += 1
        width += 2
        nxt = []
        body = []
        for k in range(n_out):
            groups = [level[k][i:i + 4] for i in range(0, len(level[k]), 4)]
            names = []
            for g, terms in enumerate(groups):
                nm = f"t{depth}_{k}_{g}"
                v.append(f"    reg signed [{width - 1}:0] {nm};")
                body.append(f"{nm} <= " + " + ".join(terms) + ";")
                names.append(nm)
            nxt.append(names)
        v.append("    always @(posedge clk) begin\n        " + "\n        ".join(body) + "\n    end")
        level = nxt
    lag = 2 + depth  # dv[i] is valid i + 1 edges after in_valid: w2 (2), products (3), each tree level (+1)
    v.append(f"    reg dv [1:{lag}]; reg df [1:{lag}]; reg dl [1:{lag}]; reg v3; integer i;")
    v.append("    always @(posedge clk) begin\n        dv[1] <= v1 & ~rst; df[1] <= first1; dl[1] <= last1;\n"
             f"        for (i = 2; i <= {lag}; i = i + 1) begin dv[i] <= dv[i-1] & ~rst; df[i] <= df[i-1]; "
             "dl[i] <= dl[i-1]; end\n    end")
    for k in range(n_out):
        v.append(f"    reg signed [{AW - 1}:0] acc{k};")
    init = "\n            ".join(
        f"acc{k} <= (df[{lag}] ? $signed({const(int(bias[k]), AW)}) : acc{k}) + {level[k][0]};" for k in range(n_out))
    v.append(f"    always @(posedge clk) begin\n        v3 <= dv[{lag}] & dl[{lag}] & ~rst;\n        if (dv[{lag}]) begin"
             f"\n            {init}\n        end\n    end")
    # scores (optionally requantised) and argmax (the first maximum wins, as numpy's argmax)
    for k in range(n_out):
        if requant:
            v.append(f"    wire [{SW - 1}:0] sc{k}; {name}_rq r{k} (.x(acc{k}), .y(sc{k}));")
        else:
            v.append(f"    wire [{SW - 1}:0] sc{k} = acc{k};")
    sgn = "$signed" if score_t.signed else ""
    v.append(f"    wire [{SW - 1}:0] b0 = sc0; wire [{cw - 1}:0] i0 = 0;")
    for k in range(1, n_out):
        v.append(f"    wire g{k} = {sgn}(sc{k}) > {sgn}(b{k - 1});")
        v.append(f"    wire [{SW - 1}:0] b{k} = g{k} ? sc{k} : b{k - 1}; wire [{cw - 1}:0] i{k} = g{k} ? {cw}'d{k} : i{k - 1};")
    scores = "{" + ", ".join(f"sc{k}" for k in reversed(range(n_out))) + "}"
    v.append(f"    always @(posedge clk) begin out_valid <= v3 & ~rst; out_scores <= {scores}; "
             f"out_class <= i{n_out - 1}; end")
    v.append("endmodule\n")
    return "\n".join(v), score_t
