"""Small helpers that write plain Verilog-2005 text: widths, constants, requantisation and max."""

from __future__ import annotations

from insitu.ir.fixed import FixedType


def clog2(n: int) -> int:
    """Bits needed to count 0..n-1 (at least 1)."""
    return max(1, (max(n, 1) - 1).bit_length())


def const(value: int, width: int) -> str:
    """A width-bit two's complement constant."""
    return f"{width}'h{value & ((1 << width) - 1):x}"


def requant_module(name: str, in_width: int, in_frac: int, relu: bool, t: FixedType) -> str:
    """Module `name`: signed in_width-bit integer at in_frac fractional bits -> optional ReLU -> type t
    (TRN = floor, RND = round half up, RND_CONV = round half to even; SAT clamps, WRAP keeps the low bits).
    Combinational."""
    shift = in_frac - t.frac
    w = in_width
    lines = [f"module {name} (input [{w - 1}:0] x, output [{t.width - 1}:0] y);",
             f"    wire signed [{w - 1}:0] xs = x;"]
    if relu:
        lines.append(f"    wire signed [{w - 1}:0] r = xs[{w - 1}] ? {w}'sd0 : xs;")
    else:
        lines.append(f"    wire signed [{w - 1}:0] r = xs;")
    if shift > 0:
        fw = max(w - shift, 1) + 1
        lines.append(f"    wire signed [{fw - 1}:0] fl = r >>> {shift};")
        if t.rounding == "RND_CONV":
            rest = f"(|r[{shift - 2}:0])" if shift >= 2 else "1'b0"
            lines.append(f"    wire up = r[{shift - 1}] & ({rest} | fl[0]);")
        elif t.rounding == "RND":
            lines.append(f"    wire up = r[{shift - 1}];")
        else:
            lines.append("    wire up = 1'b0;")
        qw = max(fw + 1, t.width + 1)
        lines.append(f"    wire signed [{qw - 1}:0] q = fl + $signed({{1'b0, up}});")
    else:
        qw = max(w - shift + 1, t.width + 1)
        lines.append(f"    wire signed [{qw - 1}:0] q = r <<< {-shift};")
    lines += _cast_out("q", qw, t)
    lines.append("endmodule\n")
    return "\n".join(lines)


def _cast_out(q: str, qw: int, t: FixedType) -> list[str]:
    """y = the qw-bit signed `q` saturated (SAT) or wrapped (WRAP) into type t."""
    if t.saturation == "SAT":
        hi, lo = const(t.max_int, qw), const(t.min_int, qw)
        return [f"    wire signed [{qw - 1}:0] hi = {hi};", f"    wire signed [{qw - 1}:0] lo = {lo};",
                f"    wire signed [{qw - 1}:0] c = ({q} > hi) ? hi : (({q} < lo) ? lo : {q});",
                f"    assign y = c[{t.width - 1}:0];"]
    return [f"    assign y = {q}[{t.width - 1}:0];"]


def average_module(name: str, in_width: int, in_frac: int, count: int, t: FixedType) -> str:
    """Module `name`: the exact signed sum of `count` values at in_frac -> their mean cast to t (t's rounding,
    then its saturation), as `reference.average`. A power-of-two count is a shift (the requant module);
    any other count divides by the constant: floor quotient and remainder, then the rounding (half to even or
    half up)."""
    d = t.frac - in_frac
    num_sh, den = (d, count) if d >= 0 else (0, count << (-d))
    if den & (den - 1) == 0:
        # round(x * 2**num_sh / 2**k): the requantisation of x read at t.frac + k - num_sh fractional bits
        return requant_module(name, in_width, t.frac + den.bit_length() - 1 - num_sh, False, t)
    nw = max(in_width + num_sh, den.bit_length()) + 2
    lines = [f"module {name} (input [{in_width - 1}:0] x, output [{t.width - 1}:0] y);",
             f"    wire signed [{in_width - 1}:0] xs = x;",
             f"    wire signed [{nw - 1}:0] num = xs <<< {num_sh};",
             f"    wire signed [{nw - 1}:0] den = {nw}'sd{den};",
             "    wire signed [%d:0] qt = num / den;" % (nw - 1),
             "    wire signed [%d:0] rt = num - qt * den;" % (nw - 1),
             f"    wire neg = rt[{nw - 1}];",
             f"    wire signed [{nw - 1}:0] fl = neg ? qt - 1 : qt;",
             f"    wire signed [{nw - 1}:0] r = neg ? rt + den : rt;"]
    if t.rounding == "RND_CONV":
        lines.append("    wire up = ((r <<< 1) > den) | (((r <<< 1) == den) & fl[0]);")
    elif t.rounding == "RND":
        lines.append("    wire up = (r <<< 1) >= den;")
    else:
        lines.append("    wire up = 1'b0;")
    qw = max(nw + 1, t.width + 1)
    lines.append(f"    wire signed [{qw - 1}:0] q = fl + $signed({{1'b0, up}});")
    lines += _cast_out("q", qw, t)
    lines.append("endmodule\n")
    return "\n".join(lines)


def argmax_chain(scores: list[str], width: int, signed: bool) -> tuple[list[str], str]:
    """Combinational argmax of `scores` (ties to the lower index, as numpy): the lines and the index wire."""
    cw = clog2(len(scores))
    sgn = "$signed" if signed else ""
    v = [f"    wire [{width - 1}:0] am_b0 = {scores[0]}; wire [{cw - 1}:0] am_i0 = 0;"]
    for k in range(1, len(scores)):
        v.append(f"    wire am_g{k} = {sgn}({scores[k]}) > {sgn}(am_b{k - 1});")
        v.append(f"    wire [{width - 1}:0] am_b{k} = am_g{k} ? {scores[k]} : am_b{k - 1}; "
                 f"wire [{cw - 1}:0] am_i{k} = am_g{k} ? {cw}'d{k} : am_i{k - 1};")
    return v, f"am_i{len(scores) - 1}"


def vmax(a: str, b: str, signed: bool) -> str:
    if signed:
        return f"(($signed({a}) > $signed({b})) ? {a} : {b})"
    return f"(({a} > {b}) ? {a} : {b})"
