// 8N1 UART receiver and transmitter, CLKS_PER_BIT clock cycles per bit. Plain Verilog-2005.
`timescale 1ns/1ps
module insitu_uart_rx #(parameter CLKS_PER_BIT = 217) (
    input clk, input rst, input rx,
    output reg valid, output reg [7:0] data, output reg framing_error);
    reg rx_m, rx_s;  // two-flop synchroniser
    reg [1:0] state;
    reg [15:0] cnt;
    reg [2:0] bit_idx;
    localparam IDLE = 2'd0, START = 2'd1, DATA = 2'd2, STOP = 2'd3;
    always @(posedge clk) begin
        rx_m <= rx; rx_s <= rx_m;
        valid <= 1'b0;
        if (rst) begin state <= IDLE; framing_error <= 1'b0; rx_m <= 1'b1; rx_s <= 1'b1; end
        else case (state)
            IDLE: if (!rx_s) begin state <= START; cnt <= CLKS_PER_BIT / 2; end
            START: if (cnt == 0) begin
                    if (!rx_s) begin state <= DATA; cnt <= CLKS_PER_BIT - 1; bit_idx <= 0; end
                    else state <= IDLE;  // a glitch, not a start bit
                end else cnt <= cnt - 1'b1;
            DATA: if (cnt == 0) begin
                    data[bit_idx] <= rx_s; cnt <= CLKS_PER_BIT - 1;
                    if (bit_idx == 3'd7) state <= STOP; else bit_idx <= bit_idx + 1'b1;
                end else cnt <= cnt - 1'b1;
            STOP: if (cnt == 0) begin
                    state <= IDLE;
                    if (rx_s) valid <= 1'b1; else framing_error <= 1'b1;
                end else cnt <= cnt - 1'b1;
        endcase
    end
endmodule

module insitu_uart_tx #(parameter CLKS_PER_BIT = 217) (
    input clk, input rst, input start, input [7:0] data,
    output reg tx, output busy);
    reg [9:0] shift;
    reg [3:0] left;
    reg [15:0] cnt;
    assign busy = (left != 0) | (cnt != 0);
    always @(posedge clk) begin
        if (rst) begin tx <= 1'b1; left <= 0; cnt <= 0; end
        else if (cnt != 0) cnt <= cnt - 1'b1;
        else if (left != 0) begin
            tx <= shift[0]; shift <= {1'b1, shift[9:1]}; left <= left - 1'b1; cnt <= CLKS_PER_BIT - 1;
        end else if (start) begin shift <= {1'b1, data, 1'b0}; left <= 4'd10; end
    end
endmodule
