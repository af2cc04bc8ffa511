"""Plain Verilog for a da4ml adder graph, one signed wire per operation.

da4ml optimises y = W x + b into a graph of shift-adds and cuts it into pipeline stages; this module writes
that graph as flat Verilog-2005 (`assign` per node, one register per value crossing a stage). Every node is
a signed integer n with value n * 2**-f, f taken from the node's quantisation interval, so the arithmetic
is exact by construction. (da4ml's own writer packs every stage into one wide bus; Icarus evaluates that
form about two orders of magnitude more slowly, which would make RTL simulation of a test set impractical.)
"""

from __future__ import annotations

from math import log2

from insitu.errors import RTLError


def minimal_kif(qint):
    from da4ml.types import minimal_kif as mk

    return mk(qint)


def _frac(step: float) -> int:
    f = -log2(step)
    if f != int(f):
        raise RTLError(f"adder graph step {step} is not a power of two", "report this model")
    return int(f)


def _bits(lo: int, hi: int) -> int:
    """Signed width holding every integer in [lo, hi]."""
    return max(int(max(hi, 0)).bit_length(), int(-lo - 1).bit_length() if lo < 0 else 0) + 1


def _scaled(name: str, shift: int) -> str:
    if shift > 0:
        return f"({name} <<< {shift})"
    if shift < 0:
        return f"({name} >>> {-shift})"
    return name


class _Signal:
    def __init__(self, name: str, frac: int, width: int) -> None:
        self.name, self.frac, self.width = name, frac, width


def _stage(lines: list[str], comb, inputs: list[_Signal], tag: str) -> list[_Signal]:
    """Write the nodes of one stage; return its outputs (value * 2**-frac as signed integers)."""
    sig: dict[int, _Signal] = {}
    for i, op in enumerate(comb.ops):
        lo_v, hi_v, step = op.qint
        f = _frac(step) if step > 0 else 0
        w = _bits(round(lo_v * 2**f), round(hi_v * 2**f)) + 1
        name = f"{tag}n{i}"
        if op.opcode == -1:
            src = inputs[op.id0]
            sfrac = src.frac - int(comb.inp_shifts[op.id0])
            expr = _scaled(src.name, f - sfrac)
        elif op.opcode in (0, 1):
            a, b = sig[op.id0], sig[op.id1]
            top = max(f, a.frac, b.frac - op.data)
            ea, eb = _scaled(a.name, top - a.frac), _scaled(b.name, top - b.frac + op.data)
            w = max(w, a.width + abs(top - a.frac), b.width + abs(top - b.frac + op.data)) + 1
            expr = _scaled(f"({ea} {'+' if op.opcode == 0 else '-'} {eb})", f - top)
        elif op.opcode == 4:
            a = sig[op.id0]
            top = max(f, a.frac)
            bias = int(op.data) << (top - f)
            w = max(w, a.width + abs(top - a.frac), _bits(bias, bias)) + 1
            const = f"{w}'sd{bias}" if bias >= 0 else f"-{w}'sd{-bias}"
            expr = _scaled(f"({_scaled(a.name, top - a.frac)} + {const})", f - top)
        elif op.opcode in (2, -2, 3, -3):  # relu / quantize of +-x: floor to 2**-f, wrap to the node's bits
            a = sig[op.id0]
            kk, ii, ff = minimal_kif(op.qint)
            bits = kk + ii + ff
            src = a.name if op.opcode > 0 else f"(-{a.name})"
            lines.append(f"    wire signed [{a.width + abs(f - a.frac) + 1}:0] {name}_t = {_scaled(src, f - a.frac)};")
            raw = f"{name}_t[{bits - 1}:0]"
            val = f"$signed({raw})" if kk else f"$signed({{1'b0, {raw}}})"
            if abs(op.opcode) == 2:
                val = f"(({name}_t < 0) ? {w}'sd0 : {val})"
            expr = val if bits > 0 else f"{w}'sd0"
        elif op.opcode == 5:
            expr = f"{w}'sd{int(op.data)}" if op.data >= 0 else f"-{w}'sd{-int(op.data)}"
        else:
            raise RTLError(f"adder graph: operation code {op.opcode} is not supported by the Verilog writer",
                           "report this model")
        lines.append(f"    wire signed [{w - 1}:0] {name} = {expr};")
        sig[i] = _Signal(name, f, w)
    outs = []
    for j, idx in enumerate(comb.out_idxs):
        name = f"{tag}o{j}"
        if idx < 0:
            lines.append(f"    wire signed [1:0] {name} = 2'sd0;")
            outs.append(_Signal(name, 0, 2))
            continue
        s = sig[idx]
        neg = "-" if comb.out_negs[j] else ""
        lines.append(f"    wire signed [{s.width}:0] {name} = {neg}{s.name};")
        outs.append(_Signal(name, s.frac - int(comb.out_shifts[j]), s.width + 1))
    return outs


def write(name: str, pipe, n_in: int, in_width: int, in_signed: bool) -> tuple[str, int, int]:
    """Verilog module `name(clk, model_inp, model_out)`; returns (text, out_width, latency in clock edges).

    model_inp carries n_in integer codes of in_width bits; model_out one signed integer per output in
    out_width bits. Inputs are registered on entry and outputs on exit, with a register between stages."""
    lines: list[str] = []
    cur = []
    for k in range(n_in):
        src = f"model_inp[{k * in_width} +: {in_width}]"
        val = f"$signed({src})" if in_signed else f"$signed({{1'b0, {src}}})"
        lines.append(f"    reg signed [{in_width}:0] r0_{k};")
        cur.append((_Signal(f"r0_{k}", 0, in_width + 1), val))
    regs = [cur]
    outs: list[_Signal] = []
    for s, comb in enumerate(pipe.solutions):
        outs = _stage(lines, comb, [c[0] for c in cur], f"s{s}")
        if s + 1 < len(pipe.solutions):
            cur = []
            for k, o in enumerate(outs):
                lines.append(f"    reg signed [{o.width - 1}:0] r{s + 1}_{k};")
                cur.append((_Signal(f"r{s + 1}_{k}", o.frac, o.width), o.name))
            regs.append(cur)
    widths = []
    finals = []
    for j, o in enumerate(outs):
        if o.frac > 0:
            expr, w = f"({o.name} >>> {o.frac})", o.width
        else:
            expr, w = _scaled(o.name, -o.frac), o.width - o.frac
        finals.append(expr)
        widths.append(w)
    ow = max(widths)
    body = ["    always @(posedge clk) begin"]
    for stage in regs:
        body += [f"        {sig.name} <= {src};" for sig, src in stage]
    body += [f"        model_out[{j * ow} +: {ow}] <= {e};" for j, e in enumerate(finals)]
    body.append("    end")
    head = [f"module {name} (input clk, input [{n_in * in_width - 1}:0] model_inp, "
            f"output reg [{len(outs) * ow - 1}:0] model_out);"]
    text = "\n".join(head + lines + body + ["endmodule", ""])
    return text, ow, len(pipe.solutions) + 1
