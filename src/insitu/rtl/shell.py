"""The board shell: makes the core usable on a real board with a UART, a trigger output and LEDs.

Protocol (8N1, `baud`): send one image as H*W bytes in raster order; the board answers with 1 + n_classes*B
bytes: the class, then every score as a B-byte little-endian two's complement integer (B = ceil(score
width / 8)). `trigger` goes high the clock edge the core decides `trigger_class` (the sorter's gate) and stays
high for at least `trigger_us` (plus two synchroniser delays; a decision during a pulse does not extend it).
A pause of more than `idle_reset_ms` in the middle of an image drops the partial image and resets the core, so one lost byte costs one image, not the alignment of all others.
LEDs: one per class (the last decision), then "receiving", then a sticky error (UART framing, overflow or
frame error).
"""

from __future__ import annotations

from dataclasses import dataclass
from math import ceil
from pathlib import Path

import numpy as np

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
    osc_mhz: float  # the board oscillator: the UART, the idle timer and the trigger pulse count its cycles
    baud: int = 115200
    trigger_class: int = 0
    trigger_us: float = 1.0
    idle_reset_ms: float = 10.0

    @property
    def clks_per_bit(self) -> int:
        return max(4, round(self.osc_mhz * 1e6 / self.baud))

    @property
    def trigger_cycles(self) -> int:
        """Oscillator cycles the trigger pulse lasts at least."""
        return max(1, round(self.trigger_us * self.osc_mhz))

    @property
    def score_bytes(self) -> int:
        return ceil(self.score_width / 8)

    @property
    def value_bytes(self) -> int:
        """UART bytes per input value: its two's complement code, little-endian (one byte up to 8 bits)."""
        return ceil(self.pixel_bits / 8)

    @property
    def image_bytes(self) -> int:
        return self.pixels * self.value_bytes


def encode_values(codes: np.ndarray, bits: int) -> bytes:
    """The UART bytes of one input: each value's `bits`-bit two's complement code, little-endian in
    ceil(bits / 8) bytes, in raster order (what the shell's packer expects)."""
    n = ceil(bits / 8)
    v = np.asarray(codes, np.int64).ravel() & ((1 << bits) - 1)
    return np.stack([(v >> (8 * b)) & 0xFF for b in range(n)], axis=-1).astype(np.uint8).tobytes()


def generate(spec: ShellSpec, core_top: str = "insitu_core") -> str:
    """`insitu_shell` (the clock generator and `insitu_shell_logic`) for the board's top level."""
    nl = max(spec.n_leds, 1)
    return _logic(spec, core_top) + f"""
module insitu_shell (input clk, input uart_rx, output uart_tx, output trigger, output [{nl - 1}:0] led);
    wire cclk, locked;  // the core clock
    insitu_clkgen u_clk (.clk_in(clk), .clk(cclk), .locked(locked));
    insitu_shell_logic u_logic (.clk(clk), .cclk(cclk), .locked(locked), .uart_rx(uart_rx), .uart_tx(uart_tx),
        .trigger(trigger), .led(led));
endmodule
"""


def _sync(name: str, src: str) -> str:
    """A two-flop synchroniser into the core clock, plus the previous value (for edge detection)."""
    return (f"    (* ASYNC_REG = \"TRUE\" *) reg {name}_m, {name}_s; reg {name}_p;\n"
            f"    always @(posedge cclk) begin {name}_m <= {src}; {name}_s <= {name}_m; {name}_p <= {name}_s; end\n")


def _logic(spec: ShellSpec, core_top: str) -> str:
    """Two clock domains. The oscillator domain (clk) holds everything timed in real time: the UART, the idle
    timer and the trigger pulse length, so their constants come from the board's oscillator alone. The core
    domain (cclk, any frequency above a tenth of the oscillator's) holds the image packer, the core and the
    answer sequencer. Bytes cross as held data plus a toggle (the data is stable for a whole byte time before
    the toggle is seen); the trigger rises in the core domain the moment the core decides and falls when the
    oscillator domain has counted its length. Because the core domain's logic has no constant that depends on
    its own frequency, the PLL can be set after routing to whatever the placed design meets."""
    if spec.pixel_bits > 32:
        raise RTLError(f"the UART shell takes inputs of up to 32 bits; this model's input has {spec.pixel_bits}",
                       "use narrower inputs (a multi-channel pixel counts all its channels) or a custom shell")
    if not 0 <= spec.trigger_class < spec.n_classes:
        raise RTLError(f"trigger class {spec.trigger_class} is not one of the {spec.n_classes} classes",
                       f"choose 0..{spec.n_classes - 1}")
    P, K, SW, B = spec.lanes, spec.n_classes, spec.score_width, spec.score_bytes
    VB, PX = spec.value_bytes, spec.pixel_bits
    PB, N = P * VB, spec.image_bytes  # bytes per beat, bytes per input
    nl = max(spec.n_leds, 1)
    trig = spec.trigger_cycles
    idle = max(16, round(spec.idle_reset_ms * 1e3 * spec.osc_mhz))
    nresp = 1 + K * B
    cw = clog2(K)
    led_expr = ["1'b0"] * nl  # led[i] at index i
    for k in range(min(K, max(nl - 2, 0))):
        led_expr[k] = f"(last_class == {k})"
    led_expr[nl - 1] = "err"
    if nl >= 2:
        led_expr[nl - 2] = "receiving"
    led_expr.reverse()
    shift_in = "rx_hold" if PB == 1 else f"{{rx_hold, pack[{PB * 8 - 1}:8]}}"
    # each lane's value: the low PX bits of its VB little-endian bytes (all of them for 8-bit values)
    lanes_of = ("full" if VB * 8 == PX else
                "{" + ", ".join(f"full[{p * VB * 8} +: {PX}]" for p in reversed(range(P))) + "}")
    resp = []
    for k in range(K):
        for b in range(B):
            resp.append(f"            {1 + k * B + b}: tx_byte = sc{k}[{b * 8} +: 8];")
    sc = "".join(f"wire [{B * 8 - 1}:0] sc{k} = {{{{{B * 8 - SW}{{held_scores[{(k + 1) * SW - 1}]}}}}, "
                 f"held_scores[{k * SW} +: {SW}]}};" if B * 8 > SW else
                 f"wire [{B * 8 - 1}:0] sc{k} = held_scores[{k * SW} +: {SW}];" for k in range(K))
    syncs = "".join(_sync(n, src) for n, src in (("rxt", "rx_tog"), ("ql", "quiet_long"), ("fe", "rx_ferr"),
                                                  ("txa", "tx_seen"), ("trd", "trig_done")))
    return f"""`timescale 1ns/1ps
module insitu_shell_logic (input clk, input cclk, input locked, input uart_rx, output uart_tx, output reg trigger,
                           output [{nl - 1}:0] led);
    reg tx_req, trig_req; reg [7:0] tx_byte;  // core domain -> oscillator domain (toggles, held byte)
    // ---- oscillator domain: UART, idle timer, trigger length
    reg [3:0] por_o = 4'd0;
    always @(posedge clk) if (~&por_o) por_o <= por_o + 1'b1;
    wire rst_o = ~&por_o;
    wire rx_v, rx_ferr; wire [7:0] rx_d;
    insitu_uart_rx #(.CLKS_PER_BIT({spec.clks_per_bit})) u_rx (.clk(clk), .rst(rst_o), .rx(uart_rx), .valid(rx_v),
        .data(rx_d), .framing_error(rx_ferr));
    reg [7:0] rx_hold; reg rx_tog, quiet_long; reg [{clog2(idle + 1) - 1}:0] quiet;
    always @(posedge clk) begin
        if (rst_o) begin rx_tog <= 1'b0; quiet <= 0; quiet_long <= 1'b0; end
        else if (rx_v) begin rx_hold <= rx_d; rx_tog <= ~rx_tog; quiet <= 0; quiet_long <= 1'b0; end
        else if (quiet == {idle}) quiet_long <= 1'b1;
        else quiet <= quiet + 1'b1;
    end
    wire tx_busy; reg tx_start, tx_seen; reg [7:0] tx_out;
    insitu_uart_tx #(.CLKS_PER_BIT({spec.clks_per_bit})) u_tx (.clk(clk), .rst(rst_o), .start(tx_start),
        .data(tx_out), .tx(uart_tx), .busy(tx_busy));
    reg [{clog2(trig + 1) - 1}:0] trig_left; reg trig_seen, trig_done;
    (* ASYNC_REG = "TRUE" *) reg tx_req_m, tx_req_o, trig_req_m, trig_req_o;
    always @(posedge clk) begin
        tx_req_m <= tx_req; tx_req_o <= tx_req_m; trig_req_m <= trig_req; trig_req_o <= trig_req_m;
        tx_start <= 1'b0;
        if (rst_o) begin tx_seen <= 1'b0; trig_seen <= 1'b0; trig_done <= 1'b0; trig_left <= 0; end
        else begin
            if (tx_req_o != tx_seen && !tx_busy && !tx_start) begin
                tx_start <= 1'b1; tx_out <= tx_byte; tx_seen <= tx_req_o;
            end
            if (trig_req_o != trig_seen) begin trig_seen <= trig_req_o; trig_left <= {trig}; end
            else if (trig_left != 0) begin
                trig_left <= trig_left - 1'b1;
                if (trig_left == 1) trig_done <= trig_seen;
            end
        end
    end
    // ---- core domain
    reg [3:0] por = 4'd0;
    always @(posedge cclk) if (!locked) por <= 4'd0; else if (~&por) por <= por + 1'b1;
    wire rst = ~&por;
{syncs}
    wire rx_vc = rxt_s ^ rxt_p;  // a byte, held in rx_hold
    reg [{clog2(N + 1) - 1}:0] nbyte; reg [{clog2(PB + 1) - 1}:0] nlane;
    reg [{PB * 8 - 1}:0] pack; reg [{P * PX - 1}:0] beat; reg beat_v, beat_last, overflow;
    wire [{PB * 8 - 1}:0] full = {shift_in};
    wire receiving = (nbyte != 0);
    wire idle_reset = receiving & ql_s & ~ql_p;  // the line went quiet in the middle of an image
    reg core_rst = 1'b1;  // registered: it fans out to every flip-flop of the core
    always @(posedge cclk) core_rst <= rst | idle_reset;
    wire s_tready;
    always @(posedge cclk) begin
        if (core_rst) begin nbyte <= 0; nlane <= 0; beat_v <= 1'b0; end
        else begin
            if (beat_v & s_tready) beat_v <= 1'b0;
            if (rx_vc) begin
                if (nlane == {PB - 1}) begin
                    if (beat_v & ~s_tready) overflow <= 1'b1;
                    beat <= {lanes_of}; beat_v <= 1'b1; beat_last <= (nbyte == {N - 1}); nlane <= 0;
                end else begin
                    pack <= full; nlane <= nlane + 1'b1;
                end
                nbyte <= (nbyte == {N - 1}) ? 0 : nbyte + 1'b1;
            end
        end
        if (rst) overflow <= 1'b0;
    end
    wire m_valid, frame_error, d_valid; wire [{K * SW - 1}:0] m_scores; wire [{cw - 1}:0] m_class, d_class;
    reg m_ready;
    {core_top} u_core (.clk(cclk), .rst(core_rst), .s_tdata(beat), .s_tvalid(beat_v), .s_tready(s_tready),
        .s_tlast(beat_last), .m_valid(m_valid), .m_ready(m_ready), .m_scores(m_scores), .m_class(m_class),
        .frame_error(frame_error), .d_valid(d_valid), .d_class(d_class));
    // trigger: up the clock edge the core decides, down once the oscillator domain has counted its length
    reg [{cw - 1}:0] last_class;
    always @(posedge cclk) begin
        if (rst) begin trigger <= 1'b0; trig_req <= 1'b0; last_class <= 0; end
        else if (d_valid) begin
            last_class <= d_class;
            // one pulse at a time: a decision during a pulse does not extend it
            if (d_class == {spec.trigger_class} && !trigger) begin trigger <= 1'b1; trig_req <= ~trig_req; end
        end else if (trd_s == trig_req) trigger <= 1'b0;
    end
    wire err = fe_s | overflow | frame_error;
    assign led = {{{", ".join(led_expr)}}};
    // answer: class, then the scores, a byte at a time to the oscillator domain (toggle handshake)
    reg [{K * SW - 1}:0] held_scores; reg [{cw - 1}:0] held_class;
    {sc}
    reg [{clog2(nresp + 1) - 1}:0] to_send; reg [{clog2(nresp + 1) - 1}:0] idx;
    always @(*) begin
        tx_byte = 8'd0;
        case (idx)
            0: tx_byte = held_class;
{chr(10).join(resp)}
            default: tx_byte = 8'd0;
        endcase
    end
    reg pending;  // a byte handed to the oscillator domain, not yet taken
    always @(posedge cclk) begin
        m_ready <= 1'b0;
        if (rst) begin to_send <= 0; idx <= 0; tx_req <= 1'b0; pending <= 1'b0; end
        else if (to_send == 0) begin
            if (m_valid & ~m_ready) begin
                held_scores <= m_scores; held_class <= m_class; m_ready <= 1'b1; to_send <= {nresp}; idx <= 0;
            end
        end else if (~pending) begin tx_req <= ~tx_req; pending <= 1'b1; end
        else if (txa_s == tx_req) begin pending <= 1'b0; idx <= idx + 1'b1; to_send <= to_send - 1'b1; end
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


def ecp5_pll_settings(fin_mhz: float) -> list[tuple[int, int, int, float]]:
    """Every distinct (CLKI_DIV, CLKFB_DIV, CLKOP_DIV, f_out) of an ECP5 EHXPLLL fed by fin_mhz with feedback
    from CLKOP: PFD >= 3.125 MHz, VCO 400-800 MHz (the smallest CLKOP_DIV that reaches it), f_out ascending."""
    found: dict[float, tuple[int, int, int, float]] = {}
    for idiv in range(1, 129):
        pfd = fin_mhz / idiv
        if pfd < 3.125:
            break
        for fb in range(1, 81):
            fout = pfd * fb
            for op in range(1, 129):
                if 400 <= fout * op <= 800:
                    found.setdefault(round(fout, 9), (idiv, fb, op, fout))
                    break
    return [found[k] for k in sorted(found)]


def ecp5_pll_params(fin_mhz: float, target_mhz: float, at_most: bool = False) -> tuple[int, int, int, float]:
    """(CLKI_DIV, CLKFB_DIV, CLKOP_DIV, f_out) closest to target (`at_most`: the fastest not above it)."""
    options = ecp5_pll_settings(fin_mhz)
    if at_most:
        options = [o for o in options if o[3] <= target_mhz + 1e-9]
    if not options:
        raise RTLError(f"no ECP5 PLL setting makes {'at most ' if at_most else ''}{target_mhz} MHz from "
                       f"{fin_mhz} MHz", "choose another clock")
    return min(options, key=lambda o: (abs(o[3] - target_mhz), o[0]))


def clkgen_ecp5(fin_mhz: float, target_mhz: float, at_most: bool = False) -> tuple[str, float]:
    idiv, fb, op, fout = ecp5_pll_params(fin_mhz, target_mhz, at_most)
    text = f"""`timescale 1ns/1ps
module insitu_clkgen (input clk_in, output clk, output locked);
    (* FREQUENCY_PIN_CLKI="{fin_mhz:g}" *) (* FREQUENCY_PIN_CLKOP="{fout:.4f}" *)
    (* ICP_CURRENT="12" *) (* LPF_RESISTOR="8" *) (* MFG_ENABLE_FILTEROPAMP="1" *) (* MFG_GMCREF_SEL="2" *)
    EHXPLLL #(.PLLRST_ENA("DISABLED"), .INTFB_WAKE("DISABLED"), .STDBY_ENABLE("DISABLED"),
        .DPHASE_SOURCE("DISABLED"), .OUTDIVIDER_MUXA("DIVA"), .OUTDIVIDER_MUXB("DIVB"),
        .OUTDIVIDER_MUXC("DIVC"), .OUTDIVIDER_MUXD("DIVD"), .CLKI_DIV({idiv}), .CLKOP_ENABLE("ENABLED"),
        .CLKOP_DIV({op}), .CLKOP_CPHASE({pll_cphase(op)}), .CLKOP_FPHASE(0), .FEEDBK_PATH("CLKOP"),
        .CLKFB_DIV({fb})) pll (.RST(1'b0), .STDBY(1'b0), .CLKI(clk_in), .CLKOP(clk), .CLKFB(clk),
        .CLKINTFB(), .PHASESEL0(1'b0), .PHASESEL1(1'b0), .PHASEDIR(1'b1), .PHASESTEP(1'b1),
        .PHASELOADREG(1'b1), .PLLWAKESYNC(1'b0), .ENCLKOP(1'b0), .LOCK(locked));
endmodule
"""
    return text, fout


def pll_cphase(op: int) -> int:
    return max(op // 2 - 1, 0)


def uart_file() -> Path:
    return HDL / "insitu_uart.v"
