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
    (TRN = floor, RND_CONV = round half to even; SAT clamps, WRAP keeps the low bits). Combinational."""
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
        else:
            lines.append("    wire up = 1'b0;")
        qw = max(fw + 1, t.width + 1)
        lines.append(f"    wire signed [{qw - 1}:0] q = fl + $signed({{1'b0, up}});")
    else:
        qw = max(w - shift + 1, t.width + 1)
        lines.append(f"    wire signed [{qw - 1}:0] q = r <<< {-shift};")
    if t.saturation == "SAT":
        hi, lo = const(t.max_int, qw), const(t.min_int, qw)
        lines.append(f"    wire signed [{qw - 1}:0] hi = {hi};")
        lines.append(f"    wire signed [{qw - 1}:0] lo = {lo};")
        lines.append("    wire signed [%d:0] c = (q > hi) ? hi : ((q < lo) ? lo : q);" % (qw - 1))
        lines.append(f"    assign y = c[{t.width - 1}:0];")
    else:
        lines.append(f"    assign y = q[{t.width - 1}:0];")
    lines.append("endmodule\n")
    return "\n".join(lines)


def vmax(a: str, b: str, signed: bool) -> str:
    if signed:
        return f"(($signed({a}) > $signed({b})) ? {a} : {b})"
    return f"(({a} > {b}) ? {a} : {b})"
