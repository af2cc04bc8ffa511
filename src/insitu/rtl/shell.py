"""The board shell: makes the core usable on a real board with a UART, a trigger output and LEDs.

Protocol (8N1, `baud`): send one image as H*W bytes in raster order; the board answers with 1 + n_classes*B
bytes: the class, then every score as a B-byte little-endian two's complement integer (B = ceil(score
width / 8)). `trigger` goes high for `trigger_cycles` clock cycles the moment the core decides
`trigger_class` (the sorter's gate). A pause of more than `idle_reset_ms` in the middle of an image drops
the partial image and resets the core, so one lost byte costs one image, not the alignment of all others.
LEDs: one per class (the last decision), then "receiving", then a sticky error (UART framing, overflow or
frame error).
"""

from __future__ import annotations

from dataclasses import dataclass
from math import ceil
from pathlib import Path

from insitu.errors import RTLError
from insitu.rtl.vlog import clog2

HDL = Path(__file__).parent / "hdl"


@dataclass(frozen=True)
class ShellSpec:
    lanes: int
    pixel_bits: int
    pixels: int
    n_classes: int
    score_width: int
    n_leds: int
    clock_mhz: float  # the shell's (and core's) clock after the clock generator
    baud: int = 115200
    trigger_class: int = 0
    trigger_us: float = 1.0
    idle_reset_ms: float = 10.0

    @property
    def clks_per_bit(self) -> int:
        return max(4, round(self.clock_mhz * 1e6 / self.baud))

    @property
    def score_bytes(self) -> int:
        return ceil(self.score_width / 8)


def generate(spec: ShellSpec, core_top: str = "insitu_core") -> str:
    if spec.pixel_bits != 8:
        raise RTLError(f"the UART shell sends 8-bit pixels; this model's input has {spec.pixel_bits} bits",
                       "use 8-bit inputs or a custom shell")
    if not 0 <= spec.trigger_class < spec.n_classes:
        raise RTLError(f"trigger class {spec.trigger_class} is not one of the {spec.n_classes} classes",
                       f"choose 0..{spec.n_classes - 1}")
    P, N, K, SW, B = spec.lanes, spec.pixels, spec.n_classes, spec.score_width, spec.score_bytes
    nl = max(spec.n_leds, 1)
    trig = max(1, round(spec.trigger_us * spec.clock_mhz))
    idle = max(16, round(spec.idle_reset_ms * 1e3 * spec.clock_mhz))
    nresp = 1 + K * B
    cw = clog2(K)
    led_expr = ["1'b0"] * nl  # led[i] at index i
    for k in range(min(K, max(nl - 2, 0))):
        led_expr[k] = f"(last_class == {k})"
    led_expr[nl - 1] = "err"
    if nl >= 2:
        led_expr[nl - 2] = "receiving"
    led_expr.reverse()
    shift_in = "rx_d" if P == 1 else f"{{rx_d, pack[{P * 8 - 1}:8]}}"
    resp = []
    for k in range(K):
        for b in range(B):
            resp.append(f"            {1 + k * B + b}: tx_byte = sc{k}[{b * 8} +: 8];")
    return f"""`timescale 1ns/1ps
module insitu_shell (input clk, input uart_rx, output uart_tx, output trigger, output [{nl - 1}:0] led);
    wire cclk, locked;  // the core clock
    insitu_clkgen u_clk (.clk_in(clk), .clk(cclk), .locked(locked));
    reg [3:0] por = 4'd0;
    always @(posedge cclk) if (!locked) por <= 4'd0; else if (~&por) por <= por + 1'b1;
    wire rst = ~&por;
    // UART in -> beats of {P} pixels
    wire rx_v, rx_ferr; wire [7:0] rx_d;
    insitu_uart_rx #(.CLKS_PER_BIT({spec.clks_per_bit})) u_rx (.clk(cclk), .rst(rst), .rx(uart_rx), .valid(rx_v),
        .data(rx_d), .framing_error(rx_ferr));
    reg [{clog2(N + 1) - 1}:0] nbyte; reg [{clog2(P + 1) - 1}:0] nlane;
    reg [{P * 8 - 1}:0] pack, beat; reg beat_v, beat_last, overflow;
    reg [{clog2(idle + 1) - 1}:0] quiet;
    wire receiving = (nbyte != 0);
    wire idle_reset = receiving & (quiet == {idle});
    wire core_rst = rst | idle_reset;
    wire s_tready;
    always @(posedge cclk) begin
        if (core_rst) begin nbyte <= 0; nlane <= 0; beat_v <= 1'b0; quiet <= 0; end
        else begin
            if (beat_v & s_tready) beat_v <= 1'b0;
            quiet <= rx_v ? 0 : (receiving ? quiet + 1'b1 : 0);
            if (rx_v) begin
                if (nlane == {P - 1}) begin
                    if (beat_v & ~s_tready) overflow <= 1'b1;
                    beat <= {shift_in}; beat_v <= 1'b1; beat_last <= (nbyte == {N - 1}); nlane <= 0;
                end else begin
                    pack <= {shift_in}; nlane <= nlane + 1'b1;
                end
                nbyte <= (nbyte == {N - 1}) ? 0 : nbyte + 1'b1;
            end
        end
        if (rst) overflow <= 1'b0;
    end
    // the core
    wire m_valid, frame_error, d_valid; wire [{K * SW - 1}:0] m_scores; wire [{cw - 1}:0] m_class, d_class;
    reg m_ready;
    {core_top} u_core (.clk(cclk), .rst(core_rst), .s_tdata(beat), .s_tvalid(beat_v), .s_tready(s_tready),
        .s_tlast(beat_last), .m_valid(m_valid), .m_ready(m_ready), .m_scores(m_scores), .m_class(m_class),
        .frame_error(frame_error), .d_valid(d_valid), .d_class(d_class));
    // trigger and LEDs
    reg [{clog2(trig + 1) - 1}:0] trig_left; reg [{cw - 1}:0] last_class;
    assign trigger = (trig_left != 0);
    always @(posedge cclk) begin
        if (rst) begin trig_left <= 0; last_class <= 0; end
        else if (d_valid) begin
            last_class <= d_class;
            trig_left <= (d_class == {spec.trigger_class}) ? {trig} : 0;
        end else if (trig_left != 0) trig_left <= trig_left - 1'b1;
    end
    wire err = rx_ferr | overflow | frame_error;
    assign led = {{{", ".join(led_expr)}}};
    // answer: class, then the scores
    reg [{K * SW - 1}:0] held_scores; reg [{cw - 1}:0] held_class;
    {"".join(f"wire [{B * 8 - 1}:0] sc{k} = {{{{{B * 8 - SW}{{held_scores[{(k + 1) * SW - 1}]}}}}, held_scores[{k * SW} +: {SW}]}};" if B * 8 > SW else f"wire [{B * 8 - 1}:0] sc{k} = held_scores[{k * SW} +: {SW}];" for k in range(K))}
    reg [{clog2(nresp + 1) - 1}:0] to_send; reg [{clog2(nresp + 1) - 1}:0] idx; reg tx_start; reg [7:0] tx_byte;
    wire tx_busy;
    insitu_uart_tx #(.CLKS_PER_BIT({spec.clks_per_bit})) u_tx (.clk(cclk), .rst(rst), .start(tx_start),
        .data(tx_byte), .tx(uart_tx), .busy(tx_busy));
    always @(*) begin
        tx_byte = 8'd0;
        case (idx)
            0: tx_byte = held_class;
{chr(10).join(resp)}
            default: tx_byte = 8'd0;
        endcase
    end
    always @(posedge cclk) begin
        m_ready <= 1'b0; tx_start <= 1'b0;
        if (rst) begin to_send <= 0; idx <= 0; end
        else if (to_send == 0) begin
            if (m_valid & ~m_ready) begin
                held_scores <= m_scores; held_class <= m_class; m_ready <= 1'b1; to_send <= {nresp}; idx <= 0;
            end
        end else if (~tx_busy & ~tx_start) begin
            tx_start <= 1'b1;
        end else if (tx_start) begin
            idx <= idx + 1'b1; to_send <= to_send - 1'b1;
        end
    end
endmodule
"""


def clkgen_passthrough() -> str:
    return """`timescale 1ns/1ps
module insitu_clkgen (input clk_in, output clk, output locked);
    assign clk = clk_in;
    assign locked = 1'b1;
endmodule
"""


def ecp5_pll_params(fin_mhz: float, target_mhz: float) -> tuple[int, int, int, float]:
    """(CLKI_DIV, CLKFB_DIV, CLKOP_DIV, f_out) for an ECP5 EHXPLLL closest to target (VCO 400-800 MHz)."""
    best = None
    for idiv in range(1, 129):
        pfd = fin_mhz / idiv
        if pfd < 3.125:
            break
        for fb in range(1, 81):
            fout = pfd * fb
            for op in range(1, 129):
                vco = fout * op
                if 400 <= vco <= 800:
                    err = abs(fout - target_mhz)
                    if best is None or err < best[3] - 1e-9:
                        best = (idiv, fb, op, err, fout)
                    break
    if best is None:
        raise RTLError(f"no ECP5 PLL setting makes {target_mhz} MHz from {fin_mhz} MHz", "choose another clock")
    return best[0], best[1], best[2], best[4]


def clkgen_ecp5(fin_mhz: float, target_mhz: float) -> tuple[str, float]:
    idiv, fb, op, fout = ecp5_pll_params(fin_mhz, target_mhz)
    text = f"""`timescale 1ns/1ps
module insitu_clkgen (input clk_in, output clk, output locked);
    (* FREQUENCY_PIN_CLKI="{fin_mhz:g}" *) (* FREQUENCY_PIN_CLKOP="{fout:.4f}" *)
    (* ICP_CURRENT="12" *) (* LPF_RESISTOR="8" *) (* MFG_ENABLE_FILTEROPAMP="1" *) (* MFG_GMCREF_SEL="2" *)
    EHXPLLL #(.PLLRST_ENA("DISABLED"), .INTFB_WAKE("DISABLED"), .STDBY_ENABLE("DISABLED"),
        .DPHASE_SOURCE("DISABLED"), .OUTDIVIDER_MUXA("DIVA"), .OUTDIVIDER_MUXB("DIVB"),
        .OUTDIVIDER_MUXC("DIVC"), .OUTDIVIDER_MUXD("DIVD"), .CLKI_DIV({idiv}), .CLKOP_ENABLE("ENABLED"),
        .CLKOP_DIV({op}), .CLKOP_CPHASE({max(op // 2 - 1, 0)}), .CLKOP_FPHASE(0), .FEEDBK_PATH("CLKOP"),
        .CLKFB_DIV({fb})) pll (.RST(1'b0), .STDBY(1'b0), .CLKI(clk_in), .CLKOP(clk), .CLKFB(clk),
        .CLKINTFB(), .PHASESEL0(1'b0), .PHASESEL1(1'b0), .PHASEDIR(1'b1), .PHASESTEP(1'b1),
        .PHASELOADREG(1'b1), .PLLWAKESYNC(1'b0), .ENCLKOP(1'b0), .LOCK(locked));
endmodule
"""
    return text, fout


def uart_file() -> Path:
    return HDL / "insitu_uart.v"
