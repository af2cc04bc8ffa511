"""Implementation flows: Verilog -> bitstream (open: Yosys + nextpnr for ECP5 / iCE40) and their reports."""
