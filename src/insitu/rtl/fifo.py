"""Verilog of the elastic pieces of the streaming core: a synchronous FIFO, a lane serializer and a repacker."""

from __future__ import annotations

from insitu.rtl.vlog import clog2


def fifo(name: str, width: int, depth: int, registered: bool = False) -> str:
    """First-word-fall-through FIFO, `depth` a power of two; `count` is exact (every word held).

    `registered`: the head is a flip-flop, loaded from LUT RAM (`ram_style`, read by Yosys and Vivado) a clock
    after the word arrives. A joint's serializer or repacker selects lanes from the head in the same clock, and
    the read of a RAM (ECP5: 5.6 ns from the clock through a LUT RAM or a block RAM) ended the core's critical
    path there; one more clock of latency per joint takes it off."""
    aw = clog2(depth)
    if not registered:
        return f"""module {name} (input clk, input rst, input push, input [{width - 1}:0] din, input pop,
    output [{width - 1}:0] dout, output empty, output reg [{aw}:0] count);
    reg [{width - 1}:0] mem [0:{depth - 1}];
    reg [{aw - 1}:0] wp, rp;
    assign dout = mem[rp];
    assign empty = (count == 0);
    wire do_pop = pop & ~empty;
    always @(posedge clk) begin
        if (rst) begin wp <= 0; rp <= 0; count <= 0; end
        else begin
            if (push) begin mem[wp] <= din; wp <= wp + 1'b1; end
            if (do_pop) rp <= rp + 1'b1;
            count <= count + push - do_pop;
        end
    end
endmodule
"""
    return f"""module {name} (input clk, input rst, input push, input [{width - 1}:0] din, input pop,
    output reg [{width - 1}:0] dout, output empty, output reg [{aw}:0] count);
    (* ram_style = "distributed" *) reg [{width - 1}:0] mem [0:{depth - 1}];
    reg [{aw - 1}:0] wp, rp; reg [{aw}:0] stored; reg hv;  // words in mem; the head register holds one
    assign empty = ~hv;
    wire do_pop = pop & hv;
    wire load = (stored != 0) & (~hv | do_pop);
    always @(posedge clk) begin
        if (rst) begin wp <= 0; rp <= 0; stored <= 0; hv <= 1'b0; count <= 0; end
        else begin
            if (push) begin mem[wp] <= din; wp <= wp + 1'b1; end
            if (load) begin dout <= mem[rp]; rp <= rp + 1'b1; end
            hv <= load | (hv & ~do_pop);
            stored <= stored + push - load;
            count <= count + push - do_pop;
        end
    end
endmodule
"""


def serializer(name: str, lanes: int, lane_width: int) -> str:
    """Pops words of `lanes` pixels with a lane mask from a FIFO and emits the valid pixels one per clock
    (none while `stall`)."""
    q, lw = lanes, lane_width
    pick = "\n".join(
        f"        {'if' if i == 0 else 'else if'} (rem[{i}]) begin sel = {i}; end" for i in range(q))
    # the selected lane as a mux of constant slices (a variable part-select sel * lw becomes a multiplier)
    lane = "\n".join(f"            {i}: lane = cur[{i * lw} +: {lw}];" for i in range(q))
    return f"""module {name} (input clk, input rst, input stall, input empty, input [{q * lw + q - 1}:0] head,
    output pop, output reg out_valid, output reg [{lw - 1}:0] out_data);
    reg [{q * lw - 1}:0] cur; reg [{q - 1}:0] rem;
    reg [{clog2(q) - 1}:0] sel;
    always @(*) begin
        sel = 0;
{pick}
    end
    reg [{lw - 1}:0] lane;
    always @(*) begin
        lane = {{{lw}{{1'b0}}}};
        case (sel)
{lane}
            default: lane = {{{lw}{{1'b0}}}};
        endcase
    end
    wire [{q - 1}:0] after = rem & ~({q}'d1 << sel);
    assign pop = ~stall & ~empty & (after == 0);
    always @(posedge clk) begin
        if (rst) begin rem <= 0; out_valid <= 1'b0; end
        else if (stall) out_valid <= 1'b0;
        else begin
            out_valid <= (rem != 0);
            out_data <= lane;
            if (pop) begin cur <= head[{q * lw - 1}:0]; rem <= head[{q * lw + q - 1}:{q * lw}]; end
            else rem <= after;
        end
    end
endmodule
"""


def repacker(name: str, lanes_in: int, lanes_out: int, pixel_width: int, row: int) -> str:
    """Pops words of `lanes_in` pixels with a lane mask from a FIFO and emits beats of `lanes_out` consecutive
    pixels (the masked pixels compacted, order kept), one beat per clock at most (none while `stall`). Rows of
    `row` pixels: a row that does not fill its last beat is completed with zero pixels (the block after ignores
    the columns past its valid width). A word is popped only when the buffer has room for all of it (and its
    row's completion), so no pixel is ever dropped. Each word holds pixels of one row."""
    q, p, w = lanes_in, lanes_out, pixel_width
    cap = 2 * p + q
    fw, cw, rw = clog2(cap + 1), clog2(q + 1), clog2(row + 1)
    # every slice at a constant index (variable part-selects such as cnt * w become multipliers and shifters):
    # lane i lands at position popcount(m[i-1:0]); compacted pixel j lands at keep + j, keep <= p + 1 on a pop
    before = [" + ".join(f"m[{k}]" for k in range(i)) or "0" for i in range(q)]
    comp = "\n".join(f"        if (m[{i}] && ({before[i]}) == {c}) comp[{c * w} +: {w}] = head[{i * w} +: {w}];"
                      for i in range(q) for c in range(i + 1))
    place = "\n".join(f"        if (pop && {j} < cnt && keep == {k}) nxt[{(k + j) * w} +: {w}] = comp[{j * w} +: {w}];"
                       for k in range(p + 2) for j in range(q) if k + j < cap)
    count = " + ".join(f"m[{i}]" for i in range(q))
    # a division and a product by a p that is not a power of two would be a divider and a multiplier
    table = "\n".join(f"            {fw + 2}'d{g}: rounded = {fw + 2}'d{-(-g // p) * p};" for g in range(p + 2 + q))
    return f"""module {name} (input clk, input rst, input stall, input empty, input [{q * w + q - 1}:0] head,
    output pop, output reg out_valid, output reg [{p * w - 1}:0] out_data);
    reg [{cap * w - 1}:0] pix; reg [{fw - 1}:0] fill; reg [{rw - 1}:0] rc;
    wire [{q - 1}:0] m = head[{q * w + q - 1}:{q * w}];
    reg [{q * w - 1}:0] comp; reg [{cw - 1}:0] cnt;
    always @(*) begin  // the masked pixels, compacted in order
        comp = 0; cnt = {count};
{comp}
    end
    wire emit = (fill >= {p});
    wire [{fw - 1}:0] keep = emit ? fill - {p} : fill;
    assign pop = ~stall & ~empty & (keep <= {p + 1});
    wire row_end = pop & (rc + cnt == {row});
    wire [{fw + 1}:0] grown = keep + (pop ? cnt : {cw}'d0);
    reg [{fw + 1}:0] rounded;  // the row's last beat completed with zeros: ceil(grown / p) * p, a table
    always @(*) begin
        case (grown)
{table}
            default: rounded = {fw + 2}'d0;
        endcase
    end
    reg [{cap * w - 1}:0] nxt;
    always @(*) begin
        nxt = emit ? (pix >> {p * w}) : pix;
{place}
    end
    always @(posedge clk) begin
        if (rst) begin fill <= 0; rc <= 0; pix <= 0; out_valid <= 1'b0; end
        else if (stall) out_valid <= 1'b0;
        else begin
            out_valid <= emit; out_data <= pix[{p * w - 1}:0];
            pix <= nxt; fill <= row_end ? rounded : grown;
            if (pop) rc <= row_end ? {rw}'d0 : rc + cnt;
        end
    end
endmodule
"""
