"""One handler per ONNX / QONNX op type: `OPS` is the registry (an op that is not in it is refused by name).

Each handler reads its node's inputs from the walk (`Const` or `Act`), checks every attribute it does not
implement, and adds IR layers. Rules of exactness (docs/frontends.md):
- scales are powers of two, zero points are 0; a Quant's clip-then-round equals the IR's round-then-saturate
  because the clip bounds are integers;
- a convolution or matrix product of quantized values with quantized weights is the IR's exact accumulator;
  its bias must lie on the accumulator's grid;
- an average over a power-of-two count is exact (a shift); a Trunc / Quant after it is the IR's cast.
"""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np

from insitu.frontends.inputs import ROUNDING_FUNCS, InputQuant
from insitu.frontends.qonnx_import import Act, Const, Walk
from insitu.ir import graph
from insitu.ir.fixed import FixedType
from insitu.ir.layers import Conv1D, Conv2D, Dense, Flatten, Input, Requant, Reshape

POW2_FIX = ("fixed point needs power-of-two scales: in Brevitas use the *FixedPoint quantizers "
            "(Int8WeightPerTensorFixedPoint, Int8ActPerTensorFixedPoint, Uint8ActPerTensorFixedPoint) or "
            "restrict_scaling_type=RestrictValueType.POWER_OF_TWO; HGQ2's quantizers are power-of-two already")
#: QONNX rounding modes the IR computes; the others have no ap_fixed equivalent or are not implemented.
#: HALF_UP (half away from zero) only on unsigned types, where it is round half up (AP_RND): a negative input
#: rounds to 0 or below and clamps to 0 either way; FINN's thresholds compute it
IR_ROUNDING = {"ROUND": "RND_CONV", "HALF_EVEN": "RND_CONV", "FLOOR": "TRN", "HALF_UP": "RND"}


def _pow2_frac(walk: Walk, node, scale: np.ndarray, what: str) -> np.ndarray:
    s = np.asarray(scale, dtype=np.float64).ravel()
    if s.size == 0 or np.any(s <= 0) or not np.all(np.isfinite(s)):
        raise walk.refuse(node, f"its {what} scale {s[:4]} is not positive and finite", POW2_FIX)
    e = np.log2(s)
    if not np.all(e == np.round(e)):
        bad = s[e != np.round(e)][0]
        raise walk.refuse(node, f"its {what} scale {bad!r} is not a power of two", POW2_FIX)
    return (-np.round(e)).astype(int)


def _int_grid(walk: Walk, node, values: np.ndarray, frac: int, what: str) -> np.ndarray:
    q = values * 2.0 ** frac
    if not np.all(q == np.round(q)):
        raise walk.refuse(node, f"its {what} is not on the grid 2**-{frac} of the accumulator",
                          "quantize the bias with the product of the input and weight scales (Brevitas: "
                          "bias_quant=Int32Bias) or drop it")
    return np.round(q).astype(np.int64)


def _raw_grid(walk: Walk, node, values: np.ndarray, what: str) -> int:
    """The coarsest power-of-two grid (at most 24 fractional bits) holding raw float constants exactly."""
    for f in range(0, 25):
        q = values * 2.0 ** f
        if np.all(q == np.round(q)) and np.max(np.abs(q), initial=0) < 2 ** 24:
            return f
    raise walk.refuse(node, f"its {what} are float values without a quantizer", "quantize them (Brevitas: "
                      "weight_quant=Int8WeightPerTensorFixedPoint): a float weight has no fixed-point value")


def _signed_type(q: np.ndarray, frac: int) -> FixedType:
    lo, hi = int(min(q.min(initial=0), -1)), int(max(q.max(initial=0), 0))
    return FixedType.exact(lo, hi, frac)


def _scalar(walk: Walk, node, idx: int, what: str) -> float:
    c = walk.const(node, node.input[idx], what)
    if c.value.size != 1:
        raise walk.refuse(node, f"its {what} has {c.value.size} values; one is supported")
    return float(c.value.ravel()[0])


def _ir_rounding(walk: Walk, node, mode: str, signed: bool) -> str:
    m = mode.upper()
    if m not in IR_ROUNDING or (m == "HALF_UP" and signed):
        raise walk.refuse(node, f"rounding_mode={mode!r} is not supported{' on a signed type' if signed else ''} "
                                "(supported: ROUND = half to even, FLOOR, and HALF_UP on unsigned types)",
                          "train with round-half-to-even (Brevitas' default) or floor rounding")
    return IR_ROUNDING[m]


def _zero_point(walk: Walk, node, idx: int) -> None:
    z = walk.const(node, node.input[idx], "zero point").value
    if np.any(z != 0):
        raise walk.refuse(node, f"its zero point is {z.ravel()[:4]}, not 0 (asymmetric quantization)",
                          "use symmetric quantizers (zero point 0): an offset has no fixed-point type")


def materialize(walk: Walk, a: Act, node) -> Act:
    """Apply a pending ReLU as an exact requant (unsigned, same grid)."""
    if not a.relu:
        return a
    t = walk.type_of(a.ir)
    if not t.signed:
        return Act(a.ir, a.shape, a.ir_shape)
    out = FixedType(False, max(t.width - 1, 1), t.frac, "TRN", "SAT")
    name = walk.add(Requant(walk.new_name(node, "_relu"), True, out), [a.ir])
    return Act(name, a.shape, a.ir_shape)


def _out(walk: Walk, node, ir: str, relu: bool = False, idx: int = 0) -> None:
    shape = walk.model.get_tensor_shape(node.output[idx])
    onnx_shape = tuple(int(s) for s in shape[1:]) if shape else walk.ir_shape(ir)
    walk.tensors[node.output[idx]] = Act(ir, onnx_shape, walk.ir_shape(ir), relu)


# --- quantizers -----------------------------------------------------------------------------------------------
def quant(walk: Walk, node) -> None:
    from qonnx.custom_op.general.intquant import int_quant

    a = walk.attrs(node)
    signed, narrow, mode = bool(a.get("signed", 1)), bool(a.get("narrow", 0)), str(a.get("rounding_mode", "ROUND"))
    x = walk.get(node, node.input[0])
    scale = walk.const(node, node.input[1], "scale").value
    _zero_point(walk, node, 2)
    bits = _scalar(walk, node, 3, "bit width")
    if bits != int(bits) or bits < 1 or bits > 32:
        raise walk.refuse(node, f"bit width {bits} is not an integer from 1 to 32")
    bits = int(bits)
    fr = _pow2_frac(walk, node, scale, "quantizer")
    if isinstance(x, Const):
        v = int_quant(x.value, scale.astype(np.float64), np.zeros(1), np.float64(bits), signed, narrow, mode)
        walk.tensors[node.output[0]] = Const(np.asarray(v, dtype=np.float64), int(fr.max()))
        return
    if bits == 1 and signed:
        raise walk.refuse(node, "a signed 1-bit Quant is bipolar (+1/-1), not a fixed-point type",
                          "use 2 or more bits")
    if fr.size != 1:
        raise walk.refuse(node, "per-channel activation scales are not supported",
                          "quantize activations per tensor (one scale)")
    if x.ir == "":  # the model's input quantizer: the firmware receives its codes (any rounding; narrow clips)
        if x.relu:
            raise walk.refuse(node, "a ReLU on the float input before its quantizer is not supported")
        if mode.upper() not in ROUNDING_FUNCS:
            raise walk.refuse(node, f"rounding_mode={mode!r} is not a QONNX rounding mode")
        walk.input_quant = InputQuant(int(fr[0]), bits, signed, narrow, mode.upper())
        _out(walk, node, walk.add(Input(walk.new_name(node), tuple(x.shape), FixedType(signed, bits, int(fr[0]))), []))
        return
    if narrow:
        raise walk.refuse(node, f"narrow=1 on an activation ({'signed' if signed else 'unsigned'}): its range is not "
                                "a fixed-point type's", "set narrow_range=False on activation quantizers")
    t = FixedType(signed, bits, int(fr[0]), _ir_rounding(walk, node, mode, signed), "SAT")
    _out(walk, node, walk.add(Requant(walk.new_name(node), x.relu, t), [x.ir]))


def trunc(walk: Walk, node) -> None:
    a = walk.attrs(node)
    signed, narrow, mode = bool(a.get("signed", 1)), bool(a.get("narrow", 0)), str(a.get("rounding_mode", "FLOOR"))
    x = walk.act(node, node.input[0])
    fs = int(_pow2_frac(walk, node, walk.const(node, node.input[1], "scale").value, "input")[0])
    _zero_point(walk, node, 2)
    fo = int(_pow2_frac(walk, node, walk.const(node, node.input[4], "output scale").value, "output")[0])
    bits = int(_scalar(walk, node, 5, "output bit width"))
    t_in = walk.type_of(x.ir)
    if fs < t_in.frac:
        raise walk.refuse(node, f"its input scale 2**-{fs} is coarser than its input's grid 2**-{t_in.frac}: "
                                "a second rounding the IR does not model")
    if narrow:
        raise walk.refuse(node, "narrow=1 is not supported on a Trunc")
    t = FixedType(signed, bits, fo, _ir_rounding(walk, node, mode, signed), "SAT")
    _out(walk, node, walk.add(Requant(walk.new_name(node), x.relu, t), [x.ir]))


def bipolar(walk: Walk, node) -> None:
    raise walk.refuse(node, "BipolarQuant (+1/-1 values) is not a fixed-point type", "use Quant with 2 or more bits")


# --- activations and shapes -----------------------------------------------------------------------------------
def relu(walk: Walk, node) -> None:
    x = walk.act(node, node.input[0])
    walk.tensors[node.output[0]] = Act(x.ir, x.shape, x.ir_shape, True)


def alias(walk: Walk, node) -> None:
    walk.tensors[node.output[0]] = walk.get(node, node.input[0])


def flatten(walk: Walk, node) -> None:
    axis = walk.attrs(node).get("axis", 1)
    if axis != 1:
        raise walk.refuse(node, f"axis={axis}; only axis=1 (keep the batch) is supported")
    _to_vector(walk, node, walk.act(node, node.input[0]))


def _to_vector(walk: Walk, node, x: Act) -> None:
    n = int(np.prod(x.shape))
    if len(x.ir_shape) == 1:
        walk.tensors[node.output[0]] = Act(x.ir, (n,), x.ir_shape, x.relu)
        return
    name = walk.add(Flatten(walk.new_name(node)), [x.ir])
    walk.tensors[node.output[0]] = Act(name, (n,), (n,), x.relu)


def reshape(walk: Walk, node) -> None:
    x = walk.act(node, node.input[0])
    target = [int(v) for v in walk.const(node, node.input[1], "shape").value.ravel()]
    rest = target[1:] if target and target[0] in (0, 1, -1) else None
    n = int(np.prod(x.shape))
    if rest is None or any(v < -1 for v in rest) or rest.count(-1) > 1:
        raise walk.refuse(node, f"reshapes to {target}; the first axis must stay the batch")
    if -1 in rest:
        known = int(np.prod([v for v in rest if v != -1]))
        rest[rest.index(-1)] = n // max(known, 1)
    if int(np.prod(rest)) != n:
        raise walk.refuse(node, f"reshapes {x.shape} to {rest}")
    if len(rest) == 1:
        _to_vector(walk, node, x)
    elif tuple(rest) == tuple(x.ir_shape):
        walk.tensors[node.output[0]] = x
    else:
        name = walk.add(Reshape(walk.new_name(node), tuple(rest)), [x.ir])
        walk.tensors[node.output[0]] = Act(name, tuple(rest), tuple(rest), x.relu)


# --- linear layers --------------------------------------------------------------------------------------------
def _weights(walk: Walk, node, idx: int) -> tuple[np.ndarray, int]:
    w = walk.const(node, node.input[idx], "weights")
    frac = w.frac if w.frac is not None else _raw_grid(walk, node, w.value, "weights")
    return _int_grid(walk, node, w.value, frac, "weights"), frac


def _bias(walk: Walk, node, idx: int, n_out: int, frac: int) -> np.ndarray:
    if len(node.input) <= idx or not node.input[idx]:
        return np.zeros(n_out, np.int64)
    b = walk.const(node, node.input[idx], "bias").value.ravel()
    if b.size == 1:
        b = np.full(n_out, b[0])
    if b.size != n_out:
        raise walk.refuse(node, f"its bias has {b.size} values for {n_out} outputs")
    return _int_grid(walk, node, b, frac, "bias")


def conv(walk: Walk, node) -> None:
    a = walk.attrs(node)
    x = materialize(walk, walk.act(node, node.input[0]), node)
    w, fw = _weights(walk, node, 1)
    dims = w.ndim - 2
    if dims not in (1, 2):
        raise walk.refuse(node, f"a {dims}-D convolution; 1-D and 2-D are supported")
    if any(d != 1 for d in a.get("dilations", [1] * dims)):
        raise walk.refuse(node, f"dilations={list(a['dilations'])}; only 1 is supported")
    auto_pad = a.get("auto_pad", b"NOTSET")
    auto_pad = auto_pad.decode() if isinstance(auto_pad, bytes) else str(auto_pad)
    if auto_pad not in ("NOTSET", ""):
        raise walk.refuse(node, f"auto_pad={auto_pad}", "export with explicit pads")
    t_in = walk.type_of(x.ir)
    fo = t_in.frac + fw
    b = _bias(walk, node, 2, w.shape[0], fo)
    wt, acc = _signed_type(w, fw), graph.exact_acc(w, b, t_in, fo)
    groups = int(a.get("group", 1))
    pads = [int(p) for p in a.get("pads", [0] * 2 * dims)]
    strides = [int(s) for s in a.get("strides", [1] * dims)]
    name = walk.new_name(node)
    if dims == 2:
        layer = Conv2D(name, w, b, wt, acc, stride=(strides[0], strides[1]),
                       padding=(pads[0], pads[2], pads[1], pads[3]), groups=groups)
    else:
        layer = Conv1D(name, w, b, wt, acc, stride=strides[0], padding=(pads[0], pads[1]), groups=groups)
    _out(walk, node, walk.add(layer, [x.ir]))


def _dense(walk: Walk, node, x: Act, w: np.ndarray, fw: int, bias_idx: int | None) -> None:
    x = materialize(walk, x, node)
    if len(x.ir_shape) != 1:
        raise walk.refuse(node, f"a matrix product on a {x.shape} tensor; it must read a vector",
                          "flatten the input first")
    t_in = walk.type_of(x.ir)
    fo = t_in.frac + fw
    b = _bias(walk, node, bias_idx, w.shape[0], fo) if bias_idx is not None else np.zeros(w.shape[0], np.int64)
    layer = Dense(walk.new_name(node), w, b, _signed_type(w, fw), graph.exact_acc(w, b, t_in, fo))
    _out(walk, node, walk.add(layer, [x.ir]))


def gemm(walk: Walk, node) -> None:
    a = walk.attrs(node)
    if float(a.get("alpha", 1.0)) != 1.0 or float(a.get("beta", 1.0)) != 1.0 or int(a.get("transA", 0)):
        raise walk.refuse(node, f"alpha={a.get('alpha', 1.0)}, beta={a.get('beta', 1.0)}, transA="
                                f"{a.get('transA', 0)}; only alpha = beta = 1 and transA = 0 are supported")
    w, fw = _weights(walk, node, 1)
    w = w if int(a.get("transB", 0)) else w.T
    _dense(walk, node, walk.act(node, node.input[0]), w, fw, 2)


def matmul(walk: Walk, node) -> None:
    w, fw = _weights(walk, node, 1)
    if w.ndim != 2:
        raise walk.refuse(node, f"a {w.ndim}-D weight; MatMul by a 2-D constant is supported")
    _dense(walk, node, walk.act(node, node.input[0]), w.T, fw, None)


def finish_output(walk: Walk, name: str) -> str:
    out = SimpleNamespace(name=name, op_type="graph output")
    t = walk.tensors.get(name)
    if not isinstance(t, Act) or not t.ir:
        raise walk.refuse(out, "the model output is not computed from the input")
    t = materialize(walk, t, SimpleNamespace(name="output", op_type="Relu"))
    if walk.layers[-1].name != t.ir:
        raise walk.refuse(out, "the output is not the last layer computed (an unused branch follows it)")
    return t.ir


from insitu.frontends.qonnx_pool import (add, averagepool, concat, global_avg, global_max,  # noqa: E402
                                         maxpool, reduce_mean)

OPS = {
    "Quant": quant, "Trunc": trunc, "BipolarQuant": bipolar, "Relu": relu, "Identity": alias, "Dropout": alias,
    "Flatten": flatten, "Reshape": reshape, "Conv": conv, "Gemm": gemm, "MatMul": matmul, "Add": add,
    "Concat": concat, "MaxPool": maxpool, "AveragePool": averagepool, "GlobalAveragePool": global_avg,
    "GlobalMaxPool": global_max, "ReduceMean": reduce_mean,
}
