"""insitu: distill a big model into a tiny quantized student and deliver it as bit-exact FPGA firmware."""

__version__ = "0.1.0"
