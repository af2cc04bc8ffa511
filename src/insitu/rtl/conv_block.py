"""One streaming convolution block: line buffers -> K x K windows -> da4ml kernel per lane -> requant -> max-pool.

Input: one beat per `in_valid`, P consecutive pixels of a row in raster order (pixel p of the beat at bits
[p*C*IB +: C*IB], channel c of a pixel at [c*IB +: IB]). Output: on `out_valid`, Q = P/S pooled pixels (or
one, for P = 1) with a lane mask, same layout. There are no stalls inside: every stage advances on valid.
"""

from __future__ import annotations

from dataclasses import dataclass

from insitu.errors import RTLError
from insitu.ir.fixed import FixedType
from insitu.rtl.kernel import Kernel
from insitu.rtl.vlog import clog2, requant_module, vmax


@dataclass(frozen=True)
class BlockSpec:
    name: str
    lanes: int  # P pixels per beat in
    channels: int  # C
    height: int
    width: int
    k: int
    pool: int  # S (1 = no pooling)
    in_type: FixedType  # integer codes of the input pixels
    out_type: FixedType  # requantised activation
    relu: bool
    acc_frac: int
    out_channels: int

    @property
    def out_lanes(self) -> int:
        return max(1, self.lanes // self.pool)

    @property
    def out_hw(self) -> tuple[int, int]:
        return (self.height - self.k + 1) // self.pool, (self.width - self.k + 1) // self.pool

    @property
    def latency(self) -> int:
        """Clock edges from in_valid to out_valid, given the kernel latency (set by `generate`)."""
        return self._kernel_latency + 3  # type: ignore[attr-defined]


def check(spec: BlockSpec) -> None:
    p, s, k = spec.lanes, spec.pool, spec.k
    if spec.width % p:
        raise RTLError(f"{spec.name}: {p} pixels per clock do not divide the row width {spec.width}",
                       f"choose lanes among the divisors of {spec.width}")
    if p > 1 and s > 1 and (p % s or (k - 1) % s):
        raise RTLError(f"{spec.name}: {p} lanes with {k}x{k} windows and pool {s} would split pooling windows "
                       "across beats", "use 1 lane, or lanes that are a multiple of the pool size")
    if spec.height < k or spec.width < k:
        raise RTLError(f"{spec.name}: a {k}x{k} kernel does not fit a {spec.height}x{spec.width} input",
                       "use a larger image or a smaller kernel")


def generate(spec: BlockSpec, kernel: Kernel) -> str:
    """Verilog of the block module (the requant module and the kernel come with it)."""
    check(spec)
    object.__setattr__(spec, "_kernel_latency", kernel.latency)
    P, C, H, W, K, S = spec.lanes, spec.channels, spec.height, spec.width, spec.k, spec.pool
    O, IB, OB, OW = spec.out_channels, spec.in_type.width, spec.out_type.width, kernel.out_width
    Q = spec.out_lanes
    NB, PX, L = W // P, C * IB, kernel.latency
    hc, wc = H - K + 1, W - K + 1
    hcf, wcf = hc // S * S, wc // S * S
    bxw, yw = clog2(NB), clog2(H)
    n = spec.name
    v = [requant_module(f"{n}_rq", OW + max(0, -kernel.out_frac), spec.acc_frac, spec.relu, spec.out_type)]
    v.append(f"module {n} (input clk, input rst, input in_valid, input [{P * PX - 1}:0] in_data,\n"
             f"    output reg out_valid, output reg [{Q - 1}:0] out_mask, output reg [{Q * O * OB - 1}:0] out_data);")
    v.append(f"    reg [{bxw - 1}:0] bx; reg [{yw - 1}:0] y;")
    v.append("    always @(posedge clk) if (rst) begin bx <= 0; y <= 0; end else if (in_valid) begin\n"
             f"        if (bx == {NB - 1}) begin bx <= 0; y <= (y == {H - 1}) ? {yw}'d0 : y + 1'b1; end\n"
             "        else bx <= bx + 1'b1;\n    end")
    # line buffers: row r (r rows above the current one)
    v.append(f"    wire [{P * PX - 1}:0] row0 = in_data;")
    for r in range(1, K):
        v.append(f"    reg [{P * PX - 1}:0] lb{r} [0:{NB - 1}];")
        v.append(f"    wire [{P * PX - 1}:0] row{r} = lb{r}[bx];")
    if K > 1:
        v.append("    always @(posedge clk) if (in_valid) begin "
                 + " ".join(f"lb{r} <= row{r - 1};".replace(f"lb{r} <=", f"lb{r}[bx] <=") for r in range(1, K))
                 + " end")
    # column history: the K-1 pixels left of the beat, for every row
    VW = (K - 1 + P) * PX
    for r in range(K):
        if K > 1:
            v.append(f"    reg [{(K - 1) * PX - 1}:0] hist{r};")
            v.append(f"    wire [{VW - 1}:0] vec{r} = {{row{r}, hist{r}}};")
            v.append(f"    always @(posedge clk) if (in_valid) hist{r} <= vec{r}[{VW - 1}:{P * PX}];")
        else:
            v.append(f"    wire [{VW - 1}:0] vec{r} = row{r};")
    # windows and kernels, one per lane
    KW = C * K * K * IB
    for j in range(P):
        parts = []
        for c in range(C):
            for ky in range(K):
                for kx in range(K):
                    parts.append(f"vec{K - 1 - ky}[{(j + kx) * PX + c * IB} +: {IB}]")
        v.append(f"    wire [{KW - 1}:0] win{j} = {{{', '.join(reversed(parts))}}};")
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
    v.append(f"    always @(posedge clk) begin qv <= dv[{L - 1}] & ~rst; qbx <= dbx[{L - 1}]; qy <= dy[{L - 1}]; "
             + " ".join(f"rq{j} <= rq{j}w;" for j in range(P)) + " end")
    xw = bxw + clog2(P) + 2
    v.append(f"    wire signed [{xw + 1}:0] x0 = $signed({{2'b0, qbx}}) * {P} - {K - 1};")
    v.append(f"    wire rowok = qy >= {K - 1};")
    signed = spec.out_type.signed
    GW = Q * O * OB
    v.append(f"    reg hv; reg [{Q - 1}:0] hmask; reg [{GW - 1}:0] hp; reg [{bxw - 1}:0] hbx; reg [{yw - 1}:0] hy;")
    if P > 1 or S == 1:
        for g in range(Q):
            lo = g * S
            v.append(f"    wire gok{g} = qv & rowok & (x0 + {lo} >= 0) & (x0 + {lo + S - 1} < {wcf});")
            for o in range(O):
                expr = f"rq{lo}[{o * OB} +: {OB}]"
                for j in range(lo + 1, lo + S):
                    expr = vmax(expr, f"rq{j}[{o * OB} +: {OB}]", signed)
                v.append(f"    wire [{OB - 1}:0] hm{g}_{o} = {expr};")
        gok = "{" + ", ".join(f"gok{g}" for g in reversed(range(Q))) + "}"
        hpw = "{" + ", ".join(f"hm{g}_{o}" for g in reversed(range(Q)) for o in reversed(range(O))) + "}"
        v.append(f"    always @(posedge clk) begin hv <= (|{gok}) & ~rst; hmask <= {gok}; hp <= {hpw}; "
                 "hbx <= qbx; hy <= qy; end")
    else:  # one lane, pooling across beats with a carry register
        v.append(f"    reg [{O * OB - 1}:0] carry; wire [{xw + 1}:0] xph = x0 % {S};")
        v.append(f"    wire lok = qv & rowok & (x0 >= 0) & (x0 < {wcf});")
        for o in range(O):
            v.append(f"    wire [{OB - 1}:0] cm{o} = "
                     + vmax(f"carry[{o * OB} +: {OB}]", f"rq0[{o * OB} +: {OB}]", signed) + ";")
        cm = "{" + ", ".join(f"cm{o}" for o in reversed(range(O))) + "}"
        v.append("    always @(posedge clk) begin\n"
                 f"        if (lok) carry <= (xph == 0) ? rq0 : {cm};\n"
                 f"        hv <= lok & (xph == {S - 1}) & ~rst; hmask <= 1'b1; hp <= {cm}; hbx <= qbx; hy <= qy;\n"
                 "    end")
    # vertical pooling with one row buffer, then the output register
    v.append(f"    wire [{yw + 1}:0] yc = {{2'b0, hy}} - {K - 1};")
    if S == 1:
        v.append("    always @(posedge clk) begin out_valid <= hv; out_mask <= hmask; out_data <= hp; end")
    else:
        v.append(f"    reg [{GW - 1}:0] vbuf [0:{NB - 1}]; wire [{GW - 1}:0] vold = vbuf[hbx];")
        v.append(f"    wire [{yw + 1}:0] yph = yc % {S};")
        vm = "{" + ", ".join(vmax(f"vold[{e * OB} +: {OB}]", f"hp[{e * OB} +: {OB}]", signed)
                             for e in reversed(range(Q * O))) + "}"
        v.append(f"    wire [{GW - 1}:0] vmx = {vm};")
        v.append("    always @(posedge clk) begin\n        out_valid <= 1'b0;\n        if (hv) begin\n"
                 "            vbuf[hbx] <= (yph == 0) ? hp : vmx;\n"
                 f"            out_valid <= (yph == {S - 1}) & (yc < {hcf}) & ~rst; out_mask <= hmask; out_data <= vmx;\n"
                 "        end\n    end")
    v.append("endmodule\n")
    return "\n".join(v)
