"""One streaming convolution block: line buffers -> KH x KW windows -> da4ml kernel per lane -> requant -> reduce.

The reduction is a max pooling, an average pooling (exact sums, then the average's cast) or the subsampling of
a strided convolution (every stride-th position from the first), horizontally within the beat or across beats,
vertically through one row buffer.

Input: one beat per `in_valid`, P consecutive pixels of a row in raster order (pixel p of the beat at bits
[p*C*IB +: C*IB], channel c of a pixel at [c*IB +: IB]). Output: on `out_valid`, Q = P/S pooled pixels (or
one, for P = 1) with a lane mask, same layout. There are no stalls inside: every stage advances on valid.
"""

from __future__ import annotations

from dataclasses import dataclass

from insitu.errors import RTLError
from insitu.ir.fixed import FixedType
from insitu.rtl.kernel import Kernel
from insitu.rtl.vlog import average_module, clog2, requant_module, vmax


@dataclass(frozen=True)
class BlockSpec:
    name: str
    lanes: int  # P pixels per beat in
    channels: int  # C
    height: int
    width: int
    k: int  # kernel height
    pool: int  # S: the reduction factor (1 = none), pooling size or convolution stride
    in_type: FixedType  # integer codes of the input pixels
    out_type: FixedType  # requantised activation
    relu: bool
    acc_frac: int
    out_channels: int
    kw: int = 0  # kernel width (0: square)
    reduce: str = "max"  # max (max pooling), sum (average pooling, then avg_type), first (a strided convolution)
    avg_type: FixedType | None = None  # the average's type (reduce = sum)
    stride_y: int = 0  # reduce = first: the vertical stride (0: = pool)
    valid_width: int = 0  # of a padded image: the columns of `width` that hold pixels (0: all)

    @property
    def kx(self) -> int:
        return self.kw or self.k

    @property
    def sy(self) -> int:
        return self.stride_y or self.pool

    @property
    def out_lanes(self) -> int:
        return max(1, self.lanes // self.pool)

    @property
    def result_type(self) -> FixedType:
        """The type of the block's output pixels."""
        return self.avg_type if self.reduce == "sum" else self.out_type

    @property
    def out_hw(self) -> tuple[int, int]:
        hc, wc = self.height - self.k + 1, (self.valid_width or self.width) - self.kx + 1
        if self.reduce == "first":  # a strided convolution: every stride-th position from the first
            return (hc - 1) // self.sy + 1, (wc - 1) // self.pool + 1
        return hc // self.pool, wc // self.pool

    @property
    def latency(self) -> int:
        """Clock edges from in_valid to out_valid, given the kernel latency (set by `generate`)."""
        return self._kernel_latency + 3  # type: ignore[attr-defined]


def check(spec: BlockSpec) -> None:
    p, s, k = spec.lanes, spec.pool, spec.kx
    if spec.width % p:
        raise RTLError(f"{spec.name}: {p} pixels per clock do not divide the row width {spec.width}",
                       f"choose lanes among the divisors of {spec.width}")
    what = "strides" if spec.reduce == "first" else "pooling windows"
    if p > 1 and s > 1 and (p % s or (k - 1) % s):
        unit = "stride" if spec.reduce == "first" else "pool size"
        raise RTLError(f"{spec.name}: {p} lanes with {spec.k}x{k} windows and a factor {s} would split {what} "
                       "across beats", f"use 1 lane, or lanes that are a multiple of the {unit} ({s})")
    if spec.height < spec.k or (spec.valid_width or spec.width) < k:
        raise RTLError(f"{spec.name}: a {spec.k}x{k} kernel does not fit a {spec.height}x"
                       f"{spec.valid_width or spec.width} input",
                       "use a larger image or a smaller kernel")


def generate(spec: BlockSpec, kernel: Kernel) -> str:
    """Verilog of the block module (the requant module and the kernel come with it)."""
    check(spec)
    object.__setattr__(spec, "_kernel_latency", kernel.latency)
    P, C, H, W, KH, KW, S, SY = (spec.lanes, spec.channels, spec.height, spec.width, spec.k, spec.kx, spec.pool,
                                 spec.sy)
    O, IB, OB, OW = spec.out_channels, spec.in_type.width, spec.out_type.width, kernel.out_width
    Q, mode, signed = spec.out_lanes, spec.reduce, spec.out_type.signed
    NB, PX, L = W // P, C * IB, kernel.latency
    hc, wc = H - KH + 1, (spec.valid_width or W) - KW + 1
    hcf, wcf = (hc, wc) if mode == "first" else (hc // S * S, wc // S * S)
    EB = OB + clog2(S * S) + 1 if mode == "sum" else OB  # element width through the reduction
    RB = spec.result_type.width
    bxw, yw = clog2(NB), clog2(H)
    n = spec.name

    def ext(e: str) -> str:  # an activation as an EB-bit element of the reduction
        if EB == OB:
            return e
        return f"{{{{{EB - OB}{{{e}[{OB - 1}]}}}}, {e}}}" if signed else f"{{{EB - OB}'d0, {e}}}"

    def comb(a: str, b: str) -> str:
        return {"max": vmax(a, b, signed), "sum": f"({a} + {b})", "first": a}[mode]

    v = [requant_module(f"{n}_rq", OW + max(0, -kernel.out_frac), spec.acc_frac, spec.relu, spec.out_type)]
    if mode == "sum":
        v.append(average_module(f"{n}_avg", EB, spec.out_type.frac, S * S, spec.avg_type))
    v.append(f"module {n} (input clk, input rst, input in_valid, input [{P * PX - 1}:0] in_data,\n"
             f"    output reg out_valid, output reg [{Q - 1}:0] out_mask, output reg [{Q * O * RB - 1}:0] out_data);")
    v.append(f"    reg [{bxw - 1}:0] bx; reg [{yw - 1}:0] y;")
    v.append("    always @(posedge clk) if (rst) begin bx <= 0; y <= 0; end else if (in_valid) begin\n"
             f"        if (bx == {NB - 1}) begin bx <= 0; y <= (y == {H - 1}) ? {yw}'d0 : y + 1'b1; end\n"
             "        else bx <= bx + 1'b1;\n    end")
    # line buffers: row r (r rows above the current one)
    v.append(f"    wire [{P * PX - 1}:0] row0 = in_data;")
    for r in range(1, KH):
        v.append(f"    reg [{P * PX - 1}:0] lb{r} [0:{NB - 1}];")
        v.append(f"    wire [{P * PX - 1}:0] row{r} = lb{r}[bx];")
    if KH > 1:
        v.append("    always @(posedge clk) if (in_valid) begin "
                 + " ".join(f"lb{r}[bx] <= row{r - 1};" for r in range(1, KH)) + " end")
    # column history: the KW-1 pixels left of the beat, for every row
    VW = (KW - 1 + P) * PX
    for r in range(KH):
        if KW > 1:
            v.append(f"    reg [{(KW - 1) * PX - 1}:0] hist{r};")
            v.append(f"    wire [{VW - 1}:0] vec{r} = {{row{r}, hist{r}}};")
            v.append(f"    always @(posedge clk) if (in_valid) hist{r} <= vec{r}[{VW - 1}:{P * PX}];")
        else:
            v.append(f"    wire [{VW - 1}:0] vec{r} = row{r};")
    # windows and kernels, one per lane
    KWB = C * KH * KW * IB
    for j in range(P):
        parts = [f"vec{KH - 1 - ky}[{(j + kx) * PX + c * IB} +: {IB}]"
                 for c in range(C) for ky in range(KH) for kx in range(KW)]
        v.append(f"    wire [{KWB - 1}:0] win{j} = {{{', '.join(reversed(parts))}}};")
        v.append(f"    wire [{O * OW - 1}:0] acc{j};")
        v.append(f"    {kernel.name} k{j} (.clk(clk), .model_inp(win{j}), .model_out(acc{j}));")
    # position pipeline alongside the kernel
    v.append(f"    reg dv [0:{L}]; reg [{bxw - 1}:0] dbx [0:{L}]; reg [{yw - 1}:0] dy [0:{L}];")
    v.append("    integer i;")
    v.append("    always @(posedge clk) begin\n        dv[0] <= in_valid & ~rst; dbx[0] <= bx; dy[0] <= y;\n"
             f"        for (i = 1; i <= {L}; i = i + 1) begin dv[i] <= dv[i-1] & ~rst; dbx[i] <= dbx[i-1]; "
             "dy[i] <= dy[i-1]; end\n    end")
    # requant (registered): stage q, aligned with acc (kernel output registered at L edges)
    v.append(f"    reg qv; reg [{bxw - 1}:0] qbx; reg [{yw - 1}:0] qy;")
    for j in range(P):
        v.append(f"    wire [{O * OB - 1}:0] rq{j}w; reg [{O * OB - 1}:0] rq{j};")
        for o in range(O):
            acc = f"acc{j}[{o * OW} +: {OW}]"
            if kernel.out_frac < 0:
                acc = f"{{{acc}, {-kernel.out_frac}'d0}}"
            v.append(f"    {n}_rq q{j}_{o} (.x({acc}), .y(rq{j}w[{o * OB} +: {OB}]));")
    xw = bxw + clog2(P) + 2
    # x0 = qbx * P - (KW - 1), registered beside qbx (a product by a P that is not a power of two is a multiplier)
    v.append(f"    reg signed [{xw + 1}:0] x0;")
    v.append(f"    always @(posedge clk) begin qv <= dv[{L - 1}] & ~rst; qbx <= dbx[{L - 1}]; qy <= dy[{L - 1}]; "
             f"x0 <= $signed({{2'b0, dbx[{L - 1}]}}) * {P} - {KW - 1}; "
             + " ".join(f"rq{j} <= rq{j}w;" for j in range(P)) + " end")
    v.append(f"    wire rowok = qy >= {KH - 1};")
    v += _horizontal(P, S, Q, O, OB, EB, mode, wc, wcf, bxw, yw, xw, ext, comb)
    v += _vertical(spec, NB, Q, O, EB, RB, KH, S, SY, mode, hc, hcf, yw, comb)
    v.append("endmodule\n")
    return "\n".join(v)


def _horizontal(P, S, Q, O, OB, EB, mode, wc, wcf, bxw, yw, xw, ext, comb) -> list[str]:
    """Groups of S columns reduced within the beat (P > 1) or across beats with a carry register (P = 1):
    registered as hv / hmask / hp (Q groups of O elements of EB bits)."""
    GW = Q * O * EB
    v = [f"    reg hv; reg [{Q - 1}:0] hmask; reg [{GW - 1}:0] hp; reg [{bxw - 1}:0] hbx; reg [{yw - 1}:0] hy;"]
    if P > 1 or S == 1:
        for g in range(Q):
            lo = g * S
            last = lo if mode == "first" else lo + S - 1
            v.append(f"    wire gok{g} = qv & rowok & (x0 + {lo} >= 0) & (x0 + {last} < {wc if mode == 'first' else wcf});")
            for o in range(O):
                expr = ext(f"rq{lo}[{o * OB} +: {OB}]")
                for j in range(lo + 1, lo + S):
                    expr = comb(expr, ext(f"rq{j}[{o * OB} +: {OB}]"))
                v.append(f"    wire [{EB - 1}:0] hm{g}_{o} = {expr};")
        gok = "{" + ", ".join(f"gok{g}" for g in reversed(range(Q))) + "}"
        hpw = "{" + ", ".join(f"hm{g}_{o}" for g in reversed(range(Q)) for o in reversed(range(O))) + "}"
        v.append(f"    always @(posedge clk) begin hv <= (|{gok}) & ~rst; hmask <= {gok}; hp <= {hpw}; "
                 "hbx <= qbx; hy <= qy; end")
        return v
    v.append(f"    wire [{xw + 1}:0] xph = x0 % {S};")
    if mode == "first":  # one lane, a strided convolution: every S-th column from the first
        v.append(f"    wire lok = qv & rowok & (x0 >= 0) & (x0 < {wc}) & (xph == 0);")
        v.append("    always @(posedge clk) begin hv <= lok & ~rst; hmask <= 1'b1; hp <= rq0; hbx <= qbx; "
                 "hy <= qy; end")
        return v
    # one lane, pooling across beats with a carry register
    v.append(f"    reg [{O * EB - 1}:0] carry;")
    v.append(f"    wire lok = qv & rowok & (x0 >= 0) & (x0 < {wcf});")
    for o in range(O):
        v.append(f"    wire [{EB - 1}:0] cm{o} = " + comb(f"carry[{o * EB} +: {EB}]", ext(f"rq0[{o * OB} +: {OB}]")) + ";")
    cm = "{" + ", ".join(f"cm{o}" for o in reversed(range(O))) + "}"
    first = "{" + ", ".join(ext(f"rq0[{o * OB} +: {OB}]") for o in reversed(range(O))) + "}"
    v.append("    always @(posedge clk) begin\n"
             f"        if (lok) carry <= (xph == 0) ? {first} : {cm};\n"
             f"        hv <= lok & (xph == {S - 1}) & ~rst; hmask <= 1'b1; hp <= {cm}; hbx <= qbx; hy <= qy;\n"
             "    end")
    return v


def _vertical(spec, NB, Q, O, EB, RB, KH, S, SY, mode, hc, hcf, yw, comb) -> list[str]:
    """Groups of SY rows: max or sum through one row buffer (then the average's cast), or every SY-th row."""
    GW = Q * O * EB
    v = [f"    wire [{yw + 1}:0] yc = {{2'b0, hy}} - {KH - 1};"]
    if S == 1 and SY == 1:
        return v + ["    always @(posedge clk) begin out_valid <= hv; out_mask <= hmask; out_data <= hp; end"]
    v.append(f"    wire [{yw + 1}:0] yph = yc % {SY};")
    if mode == "first":
        return v + ["    always @(posedge clk) begin out_valid <= hv & (yph == 0) & (yc < "
                    f"{hc}) & ~rst; out_mask <= hmask; out_data <= hp; end"]
    v.append(f"    reg [{GW - 1}:0] vbuf [0:{NB - 1}]; wire [{GW - 1}:0] vold = vbuf[hbx];")
    vm = "{" + ", ".join(comb(f"vold[{e * EB} +: {EB}]", f"hp[{e * EB} +: {EB}]") for e in reversed(range(Q * O))) + "}"
    v.append(f"    wire [{GW - 1}:0] vmx = {vm};")
    if mode == "sum":  # the sums of S x S values as their averages, in the average's type
        v.append(f"    wire [{Q * O * RB - 1}:0] vres;")
        v += [f"    {spec.name}_avg u_avg{e} (.x(vmx[{e * EB} +: {EB}]), .y(vres[{e * RB} +: {RB}]));"
              for e in range(Q * O)]
    else:
        v.append(f"    wire [{GW - 1}:0] vres = vmx;")
    v.append("    always @(posedge clk) begin\n        out_valid <= 1'b0;\n        if (hv) begin\n"
             "            vbuf[hbx] <= (yph == 0) ? hp : vmx;\n"
             f"            out_valid <= (yph == {S - 1}) & (yc < {hcf}) & ~rst; out_mask <= hmask; out_data <= vres;\n"
             "        end\n    end")
    return v
