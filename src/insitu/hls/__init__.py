"""QuantModel -> hls4ml project (Vitis backend) with filled-in testbench data, and its C simulation."""
