"""Zero padding as a stream stage: the real image in, the padded image out, P pixels per beat.

The padded image has H + top + bottom rows of NBP beats (NBP * P >= W + left + right pixels: the columns past
the padded width are zeros the convolution block never uses, `BlockSpec.valid_width`). The stage walks the
padded raster, one beat per clock when it may (`stall` low): a beat of padding leaves at once, a beat holding
real pixels leaves when the source has a beat (`src_valid`), which it pops (`src_pop`). Left padding that is
not a multiple of P shifts the real pixels across beats: the last `left % P` pixels of each real beat wait in
a register for the next padded beat. Output registered; the stage never drops or invents a real pixel.
"""

from __future__ import annotations

from dataclasses import dataclass

from insitu.errors import RTLError
from insitu.rtl.vlog import clog2


@dataclass(frozen=True)
class PadSpec:
    name: str
    lanes: int  # P
    pixel_bits: int  # C * B: one pixel, every channel
    height: int  # of the real image
    width: int
    top: int
    bottom: int
    left: int
    right: int

    @property
    def padded_beats(self) -> int:
        """Beats per padded row."""
        return -(-(self.width + self.left + self.right) // self.lanes)

    @property
    def padded_height(self) -> int:
        return self.height + self.top + self.bottom

    @property
    def padded_width(self) -> int:
        """Pixels per padded row as the block buffers it (a multiple of P)."""
        return self.padded_beats * self.lanes

    @property
    def valid_width(self) -> int:
        return self.width + self.left + self.right


def generate(spec: PadSpec) -> str:
    P, PX, H, W = spec.lanes, spec.pixel_bits, spec.height, spec.width
    if W % P:
        raise RTLError(f"{spec.name}: {P} pixels per clock do not divide the row width {W}",
                       f"choose lanes among the divisors of {W}")
    NB, NBP, HP = W // P, spec.padded_beats, spec.padded_height
    bo, sh = spec.left // P, spec.left % P
    bw, yw = clog2(NBP) + 1, clog2(HP) + 1
    n = spec.name
    v = [f"module {n} (input clk, input rst, input stall, input src_valid, input [{P * PX - 1}:0] src_data,",
         f"    output src_pop, output reg out_valid, output reg [{P * PX - 1}:0] out_data);",
         f"    reg [{bw - 1}:0] pbx; reg [{yw - 1}:0] py;",
         f"    wire inrow = (py >= {spec.top}) & (py < {spec.top + H});",
         f"    wire signed [{bw + 1}:0] rb = $signed({{2'b0, pbx}}) - {bo};  // the real beat whose pixels lead",
         f"    wire need = inrow & (rb >= 0) & (rb < {NB});",
         "    wire fire = ~rst & ~stall & (~need | src_valid);",
         "    assign src_pop = fire & need;"]
    if sh:
        v += [f"    reg [{sh * PX - 1}:0] tail;  // the last {sh} pixels of the previous real beat",
              f"    wire tail_ok = inrow & (rb >= 1) & (rb <= {NB});",
              f"    wire [{sh * PX - 1}:0] lo = tail_ok ? tail : {sh * PX}'d0;",
              f"    wire [{(P - sh) * PX - 1}:0] hi = need ? src_data[{(P - sh) * PX - 1}:0] : {(P - sh) * PX}'d0;",
              f"    wire [{P * PX - 1}:0] beat = {{hi, lo}};",
              f"    always @(posedge clk) if (src_pop) tail <= src_data[{P * PX - 1}:{(P - sh) * PX}];"]
    else:
        v.append(f"    wire [{P * PX - 1}:0] beat = need ? src_data : {P * PX}'d0;")
    v += ["    always @(posedge clk) begin",
          "        if (rst) begin pbx <= 0; py <= 0; out_valid <= 1'b0; end",
          "        else begin",
          "            out_valid <= fire; out_data <= beat;",
          f"            if (fire) begin if (pbx == {NBP - 1}) begin pbx <= 0; py <= (py == {HP - 1}) ? "
          f"{yw}'d0 : py + 1'b1; end else pbx <= pbx + 1'b1; end",
          "        end",
          "    end",
          "endmodule\n"]
    return "\n".join(v)
