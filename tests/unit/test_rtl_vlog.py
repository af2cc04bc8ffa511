"""The Verilog helpers against the reference, exhaustively over every input code (Icarus)."""

import shutil
import subprocess

import numpy as np
import pytest

from insitu.ir.fixed import FixedType
from insitu.ir.reference import average
from insitu.rtl.vlog import average_module

pytestmark = pytest.mark.skipif(shutil.which("iverilog") is None, reason="needs Icarus Verilog")


def _exhaustive(module: str, in_width: int, out_t: FixedType, tmp_path) -> np.ndarray:
    tb = (f"module tb; reg [{in_width - 1}:0] x; wire [{out_t.width - 1}:0] y; avg u (.x(x), .y(y)); integer i;\n"
          f"initial for (i = 0; i < {1 << in_width}; i = i + 1) begin x = i; #1 $display(\"%0d\", y); end\n"
          "endmodule\n")
    (tmp_path / "t.v").write_text(module + tb)
    subprocess.run(["iverilog", "-o", str(tmp_path / "t"), str(tmp_path / "t.v")], check=True, timeout=60)
    out = subprocess.run(["vvp", str(tmp_path / "t")], capture_output=True, text=True, check=True, timeout=60)
    y = np.array([int(v) for v in out.stdout.split()], np.int64)
    if out_t.signed:
        y = np.where(y >> (out_t.width - 1), y - (1 << out_t.width), y)
    codes = np.arange(1 << in_width)
    order = np.where(codes >> (in_width - 1), codes - (1 << in_width), codes)  # the signed value of code i
    return order, y


@pytest.mark.parametrize("count,frac_in,t", [
    (9, 4, FixedType(True, 6, 4, "TRN", "SAT")),
    (9, 4, FixedType(True, 8, 6, "RND_CONV", "SAT")),
    (6, 3, FixedType(False, 4, 2, "RND_CONV", "SAT")),
    (16, 2, FixedType(True, 6, 3, "RND_CONV", "WRAP")),
    (4, 5, FixedType(False, 5, 2, "RND_CONV", "SAT")),
    (3, 0, FixedType(True, 7, 1, "RND_CONV", "SAT")),
    (12, 2, FixedType(True, 5, 0, "RND_CONV", "SAT")),
    (9, 4, FixedType(True, 8, 6, "RND", "SAT")),  # round half up (HGQ2's default)
    (4, 5, FixedType(False, 5, 2, "RND", "SAT")),
    (6, 3, FixedType(True, 6, 2, "RND", "WRAP")),
])
def test_average_module_equals_the_reference_on_every_sum(count, frac_in, t, tmp_path):
    x, y = _exhaustive(average_module("avg", 9, frac_in, count, t), 9, t, tmp_path)
    assert np.array_equal(y, average(x, count, frac_in, t))
