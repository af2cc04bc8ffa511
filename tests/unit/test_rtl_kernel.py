"""da4ml adder graphs written as flat Verilog: exact on random integer matrices, signed and unsigned inputs."""

import shutil
import subprocess

import numpy as np
import pytest

from insitu.errors import RTLError
from insitu.ir.fixed import FixedType
from insitu.rtl.kernel import make_kernel

pytestmark = pytest.mark.skipif(shutil.which("iverilog") is None, reason="needs Icarus Verilog")


def _simulate(kernel, x: np.ndarray, tmp_path) -> np.ndarray:
    """Drive the kernel with one input row per clock (plain Icarus testbench) and read every output."""
    n, iw, ow = kernel.n_in, kernel.in_width, kernel.out_width
    words = []
    for row in x:
        w = 0
        for i, v in enumerate(row):
            w |= (int(v) & ((1 << iw) - 1)) << (i * iw)
        words.append(f"{w:x}")
    (tmp_path / "in.hex").write_text("\n".join(words) + "\n")
    lat, rows = kernel.latency, len(x)
    tb = f"""`timescale 1ns/1ps
module tb;
  reg clk = 0; reg [{n * iw - 1}:0] mem [0:{rows - 1}]; reg [{n * iw - 1}:0] xin = 0;
  wire [{kernel.n_out * ow - 1}:0] y;
  {kernel.name} dut (.clk(clk), .model_inp(xin), .model_out(y));
  integer i, f;
  initial begin
    $readmemh("in.hex", mem); f = $fopen("out.txt", "w");
    for (i = 0; i < {rows + lat}; i = i + 1) begin
      if (i < {rows}) xin = mem[i];
      #5 clk = 1; #5 clk = 0;
      if (i >= {lat - 1}) $fdisplay(f, "%h", y);
    end
    $fclose(f); $finish;
  end
endmodule
"""
    (tmp_path / "tb.v").write_text(tb)
    subprocess.run(["iverilog", "-g2005", "-o", "sim", "tb.v", *map(str, kernel.files)], cwd=tmp_path, check=True,
                   timeout=120)
    subprocess.run(["vvp", "-n", "sim"], cwd=tmp_path, check=True, timeout=300, capture_output=True)
    out = []
    for line in (tmp_path / "out.txt").read_text().split()[:rows]:
        v = int(line, 16)
        vals = [(v >> (k * ow)) & ((1 << ow) - 1) for k in range(kernel.n_out)]
        out.append([u - (1 << ow) if u >> (ow - 1) else u for u in vals])
    return np.array(out, np.int64)


@pytest.mark.parametrize("signed,bits,cutoff,shape", [(False, 8, 2, (5, 9)), (True, 6, 1, (4, 12)),
                                                      (False, 4, 4, (7, 20)), (True, 3, 8, (3, 6))])
def test_kernel_is_exact(tmp_path, signed, bits, cutoff, shape):
    rng = np.random.default_rng(bits)
    w = rng.integers(-31, 32, shape)
    w[0] = 0  # an all-zero row: the output is the bias alone
    w[:, 1] = 0  # an unused input
    b = rng.integers(-500, 500, shape[0])
    t = FixedType(signed, bits, 0)
    k = make_kernel("kut", w, b, t, tmp_path / "v", cutoff)
    assert k.latency >= 2 and k.out_frac == 0
    x = rng.integers(t.min_int, t.max_int + 1, (40, shape[1]))
    x[0], x[1] = t.min_int, t.max_int
    got = _simulate(k, x, tmp_path)
    np.testing.assert_array_equal(got, x @ w.T + b)


def test_kernel_rejects_inconsistent_bias(tmp_path):
    with pytest.raises(RTLError, match="do not form"):
        make_kernel("bad", np.ones((3, 4), int), np.ones(2, int), FixedType(False, 8, 0), tmp_path, 2)
