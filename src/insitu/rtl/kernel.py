"""da4ml constant-matrix kernels: y = W x + b as a pipelined adder graph, exact integers in and out.

Every convolution window and every dense layer of the RTL is one such kernel. The kernel is traced on
integer-valued inputs (the IR's integer codes), so every output is the exact integer accumulator of the
IR. The graph is written as flat Verilog by `adder_graph`: inputs are integer codes of `in_width` bits,
each output a signed integer in a slot of `out_width` bits (`out_frac` is always 0).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from insitu.errors import RTLError
from insitu.ir.fixed import FixedType
from insitu.rtl import adder_graph


@dataclass(frozen=True)
class Kernel:
    name: str
    n_in: int
    n_out: int
    in_width: int  # bits per input slot of the bus (da4ml's regular layout)
    in_signed: bool
    out_width: int  # bits per output slot
    out_frac: int  # fractional bits of each slot (the integer is slot * 2**-out_frac; <= 0 here)
    latency: int  # clock edges from model_inp to model_out
    cost: float
    files: tuple[Path, ...]

    def to_dict(self) -> dict:
        return {"name": self.name, "n_in": self.n_in, "n_out": self.n_out, "in_width": self.in_width,
                "out_width": self.out_width, "out_frac": self.out_frac, "latency": self.latency,
                "cost": self.cost}


def _trace(weight: np.ndarray, bias: np.ndarray, in_type: FixedType):
    from da4ml.trace import FixedVariableArrayInput, comb_trace

    n_in = weight.shape[1]
    inp = FixedVariableArrayInput((n_in,))
    k = 1 if in_type.signed else 0
    x = inp.quantize(k, in_type.width - k, 0)
    y = x @ weight.T.astype(np.float64) + bias.astype(np.float64)
    return comb_trace(inp, y)


def make_kernel(name: str, weight: np.ndarray, bias: np.ndarray, in_type: FixedType, out_dir: Path,
                latency_cutoff: float) -> Kernel:
    """Write the Verilog of `name` (y = weight @ x + bias) into out_dir/name/ and describe its ports."""
    from da4ml.trace import to_pipeline

    weight = np.asarray(weight, np.int64)
    bias = np.asarray(bias, np.int64)
    if weight.ndim != 2 or bias.shape != (weight.shape[0],):
        raise RTLError(f"kernel {name}: weight {weight.shape} and bias {bias.shape} do not form y = Wx + b",
                       "rebuild the IR")
    comb = _trace(weight, bias, in_type)
    _check(comb, weight, bias, in_type, name)
    pipe = to_pipeline(comb, latency_cutoff, verbose=False)
    text, out_width, latency = adder_graph.write(name, pipe, weight.shape[1], in_type.width, in_type.signed)
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"{name}.v"
    path.write_text("`timescale 1ns/1ps\n" + text)
    return Kernel(name, weight.shape[1], weight.shape[0], in_type.width, in_type.signed, out_width, 0, latency,
                  float(comb.cost), (path,))


def _check(comb, weight: np.ndarray, bias: np.ndarray, in_type: FixedType, name: str) -> None:
    """The traced graph must equal numpy on random integer inputs (da4ml's own C++ model)."""
    rng = np.random.default_rng(0)
    lo, hi = in_type.min_int, in_type.max_int
    x = rng.integers(lo, hi + 1, size=(64, weight.shape[1])).astype(np.float64)
    x[0], x[1] = lo, hi
    got = comb.predict(x)
    want = x @ weight.T.astype(np.float64) + bias
    if not np.array_equal(np.asarray(got, np.float64), want):
        raise RTLError(f"kernel {name}: da4ml's adder graph differs from W x + b", "report this model")
