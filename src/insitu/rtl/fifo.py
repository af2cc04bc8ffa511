"""Verilog of the two elastic pieces of the streaming core: a synchronous FIFO and a lane serializer."""

from __future__ import annotations

from insitu.rtl.vlog import clog2


def fifo(name: str, width: int, depth: int) -> str:
    """First-word-fall-through FIFO, `depth` a power of two; `count` is exact."""
    aw = clog2(depth)
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


def serializer(name: str, lanes: int, lane_width: int) -> str:
    """Pops words of `lanes` pixels with a lane mask from a FIFO and emits the valid pixels one per clock
    (none while `stall`)."""
    q, lw = lanes, lane_width
    pick = "\n".join(
        f"        {'if' if i == 0 else 'else if'} (rem[{i}]) begin sel = {i}; end" for i in range(q))
    return f"""module {name} (input clk, input rst, input stall, input empty, input [{q * lw + q - 1}:0] head,
    output pop, output reg out_valid, output reg [{lw - 1}:0] out_data);
    reg [{q * lw - 1}:0] cur; reg [{q - 1}:0] rem;
    reg [{clog2(q) - 1}:0] sel;
    always @(*) begin
        sel = 0;
{pick}
    end
    wire [{q - 1}:0] after = rem & ~({q}'d1 << sel);
    assign pop = ~stall & ~empty & (after == 0);
    always @(posedge clk) begin
        if (rst) begin rem <= 0; out_valid <= 1'b0; end
        else if (stall) out_valid <= 1'b0;
        else begin
            out_valid <= (rem != 0);
            out_data <= cur[sel * {lw} +: {lw}];
            if (pop) begin cur <= head[{q * lw - 1}:0]; rem <= head[{q * lw + q - 1}:{q * lw}]; end
            else rem <= after;
        end
    end
endmodule
"""
